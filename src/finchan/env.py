"""The run environment: one Env per system run.

An :class:`Env` holds the config, the dispatcher, the extension manager, the
objects extensions publish for each other, and the run's clock and seed.
Several Envs in one process are independent (parameter sweeps run many).

``from finchan.env import env`` gives the Env that is running in the current
context (thread or asyncio task), or, outside any run, a default Env that
scripts can configure and run as in the original documentation.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finchan._mode import RunMode
from finchan._time import get_tz
from finchan.errors import ConfigError, ExtensionError

if TYPE_CHECKING:
    from types import ModuleType

    from finchan.config import FinchanConfig
    from finchan.dispatcher import Dispatcher
    from finchan.dispatcher._base import RunSummary
    from finchan.exts import ExtManager

__all__ = ["Env", "RunMode", "current_env", "env", "running_env"]

logger = logging.getLogger("finchan.env")

_current: contextvars.ContextVar[Env | None] = contextvars.ContextVar("finchan_env", default=None)
_default_env: Env | None = None


class Env:
    """The environment of one finchan run.

    Parameters
    ----------
    config:
        a validated :class:`~finchan.config.FinchanConfig`, or a mapping like
        the YAML config (validated here), or None for the defaults.
    run_mode:
        overrides the config's ``run_mode`` (``backtest``/``backtrack`` or
        ``live``/``live_track``).

    Example
    -------
    >>> from finchan.env import Env
    >>> env = Env({"dispatcher.backtest": {"start_dt": "2020-01-01", "end_dt": "2020-01-02"}})
    >>> str(env.run_mode), env.now.isoformat()
    ('backtrack', '2020-01-01T00:00:00+00:00')
    """

    def __init__(
        self,
        config: FinchanConfig | Mapping[str, Any] | None = None,
        run_mode: str | RunMode | None = None,
    ) -> None:
        from finchan.config import FinchanConfig, normalize_mode, validate_config

        if not isinstance(config, FinchanConfig):
            config = validate_config(config or {})
        self.config = config
        #: the run mode, a :class:`RunMode` (equal to ``"backtrack"`` or ``"live_track"``)
        self.run_mode: RunMode = normalize_mode(run_mode or config.run_mode)
        self.tz: tzinfo = get_tz(config.timezone)
        self.seed: int = config.seed
        #: a random generator seeded with ``seed``, for extensions that need one
        self.random = random.Random(self.seed)
        #: ids of the events created in this Env
        self.event_ids = itertools.count(1)
        #: True when the user asked for no output but errors (the CLI's ``--quiet``)
        self.quiet = False
        self._ext_objs: dict[str, Any] = {}
        self._ext_option_overrides: dict[str, dict[str, Any]] = {}
        self._work_dir = config.resolve_path(config.work_dir)
        self._dispatcher: Dispatcher
        self._ext_manager: ExtManager
        self.set_dispatcher(self._make_dispatcher())
        from finchan.exts import ExtManager

        manager = config.ext_manager
        self.set_ext_manager(
            ExtManager(
                self,
                [str(config.resolve_path(p)) for p in manager.ext_paths],
                ext_path=[str(config.resolve_path(p)) for p in manager.ext_path],
            )
        )

    def _make_dispatcher(self) -> Dispatcher:
        from finchan.dispatcher import BackTrackDispatcher, LiveDispatcher

        if self.run_mode is RunMode.BACKTEST:
            opts = self.config.dispatcher_backtrack
            return BackTrackDispatcher(
                self,
                start_dt=opts.start_dt,
                end_dt=opts.end_dt,
                time_step=opts.time_step,
                trace_process_time=opts.trace_process_time,
                on_callback_error=opts.on_callback_error,
            )
        live = self.config.dispatcher_live_track
        return LiveDispatcher(
            self,
            stop_check_interval=live.stop_check_interval,
            on_callback_error=live.on_callback_error,
        )

    # -- documented members ------------------------------------------------------
    @property
    def now(self) -> datetime:
        """Current datetime (simulated in backtest, wall clock in live); ``dispatcher.now``."""
        return self._dispatcher.now

    @property
    def now_ts(self) -> float:
        """Current time as POSIX seconds."""
        return self._dispatcher.now_ts

    @property
    def dispatcher(self) -> Dispatcher:
        """The dispatcher."""
        return self._dispatcher

    @property
    def ext_manager(self) -> ExtManager:
        """The extension manager."""
        return self._ext_manager

    def set_dispatcher(self, dispatcher: Dispatcher) -> bool:
        """Use another dispatcher (before the run)."""
        self._dispatcher = dispatcher
        return True

    def set_ext_manager(self, ext_manager: ExtManager) -> bool:
        """Use another extension manager (before loading extensions)."""
        self._ext_manager = ext_manager
        return True

    @property
    def options(self) -> dict[str, Any]:
        """The config as a mapping (what was read, before defaults)."""
        return self.config.raw

    @property
    def work_dir(self) -> Path:
        """Where logs, state and run outputs go (created when first asked for)."""
        try:
            self._work_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            from finchan.errors import ConfigError

            what = "is a file" if isinstance(exc, FileExistsError) else "cannot be created"
            raise ConfigError(
                f"{self.config.source}: work_dir: {self._work_dir} {what} "
                f"({exc.strerror or exc})"
            ) from None
        return self._work_dir

    @property
    def config_dir(self) -> Path | None:
        """Directory of the config; extensions resolve relative paths from it."""
        return self.config.config_dir

    @property
    def ext_groups(self) -> Mapping[str, list[str]]:
        return self.config.ext_groups

    def get_ext_options(self, ext_name: str) -> dict[str, Any]:
        """Options of extension ``ext_name`` for the current run mode (``{}`` if none)."""
        if ext_name in self._ext_option_overrides:
            return dict(self._ext_option_overrides[ext_name])
        options = self.config.ext_options(self.run_mode).get(ext_name)
        return dict(options) if options else {}

    def set_ext_options(self, ext_name: str, options: Mapping[str, Any]) -> None:
        """Give extension ``ext_name`` these options instead of the config's."""
        self._ext_option_overrides[ext_name] = dict(options)

    def set_ext_obj(self, ext_name: str, obj: Any) -> None:
        """Publish an object for other extensions (the timer publishes its scheduler)."""
        self._ext_objs[ext_name] = obj

    def get_ext_obj(self, ext_name: str, default: Any = ...) -> Any:
        """The object extension ``ext_name`` published; ``default`` if given and none."""
        try:
            return self._ext_objs[ext_name]
        except KeyError:
            if default is not ...:
                return default
            raise ExtensionError(
                f"no object published by extension {ext_name!r} (is it loaded?)"
            ) from None

    def load_exts(self, *exts: str | ModuleType) -> list[str]:
        """Load extensions by name, group or module; with none, those enabled in the config."""
        names = list(exts) if exts else self.config.enabled_exts(self.run_mode)
        with self.activated():
            return self.ext_manager.load_exts(names)

    def run(self) -> RunSummary:
        """Run: load the enabled extensions if none are loaded, then the whole lifecycle.

        Raises :class:`~finchan.errors.FinchanError` subclasses for what users
        cause; cleanups have run by then.
        """
        with self.activated():
            if not self.ext_manager.loaded:
                self._check_live_has_work()
                self.load_exts()
            from finchan.config import check_ext_option_names

            check_ext_option_names(self)  # options nobody reads are a typo, not a default
            return self.dispatcher.run(lifespan=self.ext_manager.lifespan)

    def _check_live_has_work(self) -> None:
        """A live run with nothing to do would wait for a signal, silently.

        Nothing: no extension enabled, and no source, subscriber or queued
        event given from Python (those are a run wired by hand).
        """
        if (
            self.run_mode != RunMode.LIVE
            or self.config.enabled_exts(RunMode.LIVE)
            or self.dispatcher.is_wired
        ):
            return
        hint = ""
        if self.config.enabled_exts(RunMode.BACKTEST):
            hint = (
                " (this config enables extensions for backtests only: list them under "
                "enabled_live_exts too, with a live source such as finchan.exts.redis_stream, "
                "or finchan.exts.bars to replay its files on the wall clock)"
            )
        raise ConfigError(f"{self.config.source}: live mode: enabled_live_exts is empty{hint}")

    def stop(self) -> None:
        """Ask the run to stop (same as a first SIGINT)."""
        self.dispatcher.stop()

    def close(self) -> None:
        """Give back what the Env took from the process: its ``ext_paths`` on ``sys.path``.

        Also what leaving ``with Env(...) as env:`` does. The Env can still be
        inspected afterwards; extensions not yet imported may no longer be found.
        """
        self.ext_manager.close()

    def __enter__(self) -> Env:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- context ---------------------------------------------------------------------
    @contextmanager
    def activated(self) -> Iterator[Env]:
        """Make this the Env that ``from finchan.env import env`` gives, inside the block."""
        token = _current.set(self)
        try:
            yield self
        finally:
            _current.reset(token)

    def __repr__(self) -> str:
        return f"<Env {self.run_mode} config={self.config.source!r}>"


def running_env() -> Env | None:
    """The Env active in this context, or None (never creates one)."""
    return _current.get()


def current_env() -> Env:
    """The Env active in this context, else the process's default Env."""
    active = _current.get()
    if active is not None:
        return active
    global _default_env
    if _default_env is None:
        _default_env = Env()
    return _default_env


class _CurrentEnv:
    """``env``: stands for :func:`current_env` wherever it is used."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        return getattr(current_env(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(current_env(), name, value)

    def __repr__(self) -> str:
        return f"<current {current_env()!r}>"


#: the Env running in this context (see the module docstring)
env: Env = _CurrentEnv()  # type: ignore[assignment]
