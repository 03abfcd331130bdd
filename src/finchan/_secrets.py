"""Masking secrets (passwords in URLs) in any text finchan shows or writes.

One function for every place text leaves the process: CLI error lines and
``-vvv`` tracebacks, log records, config values echoed in error messages and
the ``config.yml`` of a run directory. A secret is the password part of a URL
(``redis://:pw@host``, ``redis://user:pw@host``) or the value of a
``password=`` query option.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["mask_secrets", "mask_values"]

#: scheme://[user]:password@  ->  scheme://[user]:***@
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@'\"]*:)[^\s/'\"]*(?=@)")
#: ?password=... or &password=... (also passwd, pwd, token, secret, *key)
_QUERY = re.compile(
    r"(?P<head>[?&;](?:password|passwd|pwd|token|secret|access_key|secret_key|api_key)=)"
    r"[^&\s'\"#]*",
    re.IGNORECASE,
)


def mask_secrets(text: str) -> str:
    """``text`` with URL passwords and ``password=`` values replaced by ``***``."""
    if "://" not in text and "=" not in text:
        return text
    text = _USERINFO.sub(r"\g<head>***", text)
    return _QUERY.sub(r"\g<head>***", text)


def mask_values(data: Any) -> Any:
    """A copy of a config mapping with every string value masked."""
    if isinstance(data, dict):
        return {key: mask_values(value) for key, value in data.items()}
    if isinstance(data, list):
        return [mask_values(value) for value in data]
    if isinstance(data, str):
        return mask_secrets(data)
    return data
