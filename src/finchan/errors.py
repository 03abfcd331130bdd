"""finchan's exception hierarchy.

Every error a user can cause (a bad config, an extension that will not import,
a malformed data file, a failing callback when the run is set to stop on it) is
a :class:`FinchanError`. Its ``str()`` is the one line the CLI prints, and its
``exit_code`` is the process exit status. Anything else reaching the CLI is a
bug in finchan or in user code and is reported as such.
"""

from __future__ import annotations

__all__ = [
    "CallbackError",
    "ConfigError",
    "DataError",
    "ExtensionError",
    "FinchanError",
    "RunError",
    "StoreError",
    "WrongTypeError",
]


class FinchanError(Exception):
    """Base of every error finchan reports to users as one line."""

    #: process exit status the CLI uses for this error
    exit_code: int = 1


class ConfigError(FinchanError):
    """The configuration is unreadable or invalid (names the file and key)."""

    exit_code = 2


class ExtensionError(FinchanError):
    """An extension cannot be found, imported or ordered (names the extension)."""

    exit_code = 2


class DataError(FinchanError):
    """A data file is malformed (names the file, line and column)."""

    exit_code = 2


class RunError(FinchanError):
    """The run started but failed (an extension's setup, a source, a callback)."""

    exit_code = 1


class CallbackError(RunError):
    """A subscriber raised and the run is configured to stop on callback errors."""


class StoreError(FinchanError):
    """A key-value store cannot be opened or reached (names the URL)."""

    exit_code = 2


class WrongTypeError(FinchanError, TypeError):
    """A key-value operation hit a key holding another type (Redis's WRONGTYPE)."""

    exit_code = 1
