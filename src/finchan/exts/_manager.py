"""Loading, ordering, setting up and cleaning up extensions.

An extension is an importable module with ``load_finchan_ext(env)``; it may
also define ``setup(env)``, ``cleanup(env)`` (plain or async),
``unload_finchan_ext(env)``, ``required_exts`` and ``ext_name``.

The order is a contract:

* an extension's ``required_exts`` are loaded before it (depth first, in the
  order listed); then extensions in the order they were asked for;
* ``load_finchan_ext`` runs at load time, ``setup`` at the start of the run in
  load order, ``cleanup`` at the end in reverse load order, always, also when
  the run or another cleanup failed; only extensions whose setup was reached
  and succeeded are cleaned up;
* ``unload_finchan_ext`` runs when an extension is unloaded, in reverse order.

Names are resolved as: a group of ``ext_groups`` in the config, else an
entry point of the ``finchan.exts`` group (how installed packages announce
extensions, and how the trading kit's extensions keep the names configs use,
``finchan.exts.bars`` for :mod:`finchan.trade.exts.bars`), else an importable
module (``ext_paths`` are put on ``sys.path`` first). Python code can also
hand over the module itself (:meth:`ExtManager.load_exts`).
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import sys
import traceback
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from types import ModuleType
from typing import TYPE_CHECKING, Any

from finchan._process import release_sys_path, use_sys_path
from finchan.errors import ExtensionError, FinchanError, RunError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from finchan.env import Env

__all__ = ["ENTRY_POINT_GROUP", "ExtManager"]

logger = logging.getLogger("finchan.exts")

#: entry-point group where installed packages register extensions
ENTRY_POINT_GROUP = "finchan.exts"


# entry points of ENTRY_POINT_GROUP by name, for the sys.path they were read
# from: reading them scans every installed distribution (~15 ms), once per path
_entry_point_cache: tuple[tuple[str, ...], dict[str, EntryPoint]] | None = None


def _entry_points() -> dict[str, EntryPoint]:
    global _entry_point_cache
    key = tuple(sys.path)
    cached = _entry_point_cache
    if cached is not None and cached[0] == key:
        return cached[1]
    from importlib.metadata import entry_points  # not at import: it costs startup time

    found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    _entry_point_cache = (key, found)
    return found


def _normalize_paths(paths: Any) -> list[str]:
    if not paths:
        return []
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    return [os.path.abspath(os.path.expanduser(os.fspath(p))) for p in paths]


def _where(exc: BaseException) -> str:
    """`` (file:line)`` of where an import error happened, if it is known."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f" ({exc.filename}:{exc.lineno})"
    frames = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(frames):
        if "importlib" not in frame.filename:
            return f" ({frame.filename}:{frame.lineno})"
    return ""


async def _maybe_await(result: Any) -> Any:
    if inspect.isawaitable(result):
        return await result
    return result


class ExtManager:
    """Extension manager for finchan.

    Parameters
    ----------
    env:
        the Env extensions are loaded into.
    ext_paths:
        a directory or list of directories added to ``sys.path``.
    **kwargs:
        ``ext_path`` (the original singular key) is accepted too.
    """

    def __init__(self, env: Env, ext_paths: Any = "", **kwargs: Any) -> None:
        self.env = env
        self.ext_paths = _normalize_paths(ext_paths) + _normalize_paths(
            kwargs.pop("ext_path", None)
        )
        if kwargs:
            raise TypeError(f"unexpected ExtManager options: {', '.join(sorted(kwargs))}")
        # released by close(): sys.path is the process's, shared with other Envs
        self._sys_paths = use_sys_path(self.ext_paths)
        self._loaded: dict[str, ModuleType] = {}
        self._set_up: list[str] = []

    def close(self) -> None:
        """Take this manager's ``ext_paths`` off ``sys.path`` (unless another Env uses them).

        Modules already imported from them stay imported.
        """
        paths, self._sys_paths = self._sys_paths, []
        release_sys_path(paths)

    # -- introspection ------------------------------------------------------------
    @property
    def loaded(self) -> tuple[str, ...]:
        """Names of the loaded extensions, in load order."""
        return tuple(self._loaded)

    def get_ext(self, name: str) -> ModuleType:
        """The module of a loaded extension."""
        try:
            return self._loaded[name]
        except KeyError:
            raise ExtensionError(f"extension {name!r} is not loaded") from None

    # -- loading ------------------------------------------------------------------
    def expand(self, names: Iterable[str]) -> list[str]:
        """Replace group names by their members (recursively), keep order, drop repeats."""
        groups: Mapping[str, list[str]] = self.env.ext_groups
        result: list[str] = []

        def visit(name: str, chain: tuple[str, ...]) -> None:
            if name in groups:
                if name in chain:
                    raise ExtensionError(f"ext_groups: group cycle: {' -> '.join((*chain, name))}")
                for member in groups[name]:
                    visit(member, (*chain, name))
            elif name not in result:
                result.append(name)

        for name in names:
            if not isinstance(name, str) or not name:
                raise ExtensionError(f"extension names must be non-empty strings, got {name!r}")
            visit(name, ())
        return result

    def load_exts(self, exts: Iterable[str | ModuleType] | Mapping[str, Any]) -> list[str]:
        """Load extensions (names, groups or modules), their requirements first.

        ``exts`` may also be a mapping of extension name to options, as in the
        original API; those options then override the config's. A module given
        instead of a name is used as is, under its ``ext_name`` (else its
        module name), with no lookup: how code that imported an extension
        wires it (``backtest()`` does).
        """
        if isinstance(exts, Mapping):
            for name, options in exts.items():
                if options:
                    self.env.set_ext_options(name, dict(options))
            exts = list(exts)
        given: dict[str, ModuleType] = {}
        names: list[str] = []
        for item in exts:
            if isinstance(item, ModuleType):
                name = getattr(item, "ext_name", None) or item.__name__
                given[name] = item
                names.append(name)
            else:
                names.append(item)
        newly: list[str] = []
        for name in self.expand(names):
            self._load(name, (), newly, given)
        return newly

    def load_ext(self, name: str) -> ModuleType:
        """Load one extension (and its requirements); return its module."""
        self.load_exts([name])
        return self._loaded[name]

    def _load(
        self,
        name: str,
        chain: tuple[str, ...],
        newly: list[str],
        given: Mapping[str, ModuleType],
    ) -> None:
        if name in self._loaded:
            return
        if name in chain:
            raise ExtensionError(f"extension dependency cycle: {' -> '.join((*chain, name))}")
        module = given.get(name) or self._import(name)
        required = getattr(module, "required_exts", None) or ()
        if isinstance(required, str):
            required = [required]
        for dependency in required:
            self._load(dependency, (*chain, name), newly, given)
        loader = getattr(module, "load_finchan_ext", None)
        if not callable(loader):
            raise ExtensionError(
                f"extension {name!r} ({module.__file__}) has no load_finchan_ext(env) function"
            )
        try:
            with self.env.activated():
                loader(self.env)
        except FinchanError:
            raise
        except Exception as exc:
            logger.debug("traceback of load_finchan_ext", exc_info=exc)
            raise ExtensionError(
                f"extension {name!r} failed in load_finchan_ext: "
                f"{type(exc).__name__}: {exc}{_where(exc)}"
            ) from exc
        self._loaded[name] = module
        newly.append(name)
        logger.info("loaded extension %s", name)

    def _import(self, name: str) -> ModuleType:
        entry_point = _entry_points().get(name)
        if entry_point is not None:
            return self._import_entry_point(name, entry_point)
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as exc:
            missing = exc.name or ""
            if not (name == missing or name.startswith(missing + ".")):
                # the extension exists but something it imports does not
                raise ExtensionError(
                    f"extension {name!r} failed to import: {type(exc).__name__}: {exc}{_where(exc)}"
                ) from exc
            raise ExtensionError(
                f"extension {name!r} not found: no module {missing!r} on the Python path "
                f"(ext_paths: {self.ext_paths or 'none'}) and no entry point {name!r} "
                f"in group {ENTRY_POINT_GROUP!r}"
            ) from exc
        except Exception as exc:
            logger.debug("traceback of the import", exc_info=exc)
            raise ExtensionError(
                f"extension {name!r} failed to import: {type(exc).__name__}: {exc}{_where(exc)}"
            ) from exc

    def _import_entry_point(self, name: str, entry_point: EntryPoint) -> ModuleType:
        try:
            target = entry_point.load()
        except Exception as exc:
            logger.debug("traceback of the import", exc_info=exc)
            raise ExtensionError(
                f"extension {name!r} (entry point {entry_point.value}) failed to import: "
                f"{type(exc).__name__}: {exc}{_where(exc)}"
            ) from exc
        if isinstance(target, ModuleType):
            return target
        return importlib.import_module(entry_point.module)

    # -- unloading ----------------------------------------------------------------
    def unload_ext(self, name: str) -> None:
        """Unload one extension: its ``unload_finchan_ext(env)`` runs."""
        module = self._loaded.pop(name, None)
        if module is None:
            raise ExtensionError(f"extension {name!r} is not loaded")
        unloader = getattr(module, "unload_finchan_ext", None)
        if callable(unloader):
            try:
                with self.env.activated():
                    unloader(self.env)
            except Exception as exc:
                logger.error(
                    "extension %s failed in unload_finchan_ext: %s: %s",
                    name,
                    type(exc).__name__,
                    exc,
                )

    def unload_exts(self) -> None:
        """Unload every extension, in reverse load order."""
        for name in reversed(list(self._loaded)):
            self.unload_ext(name)

    # -- setup / cleanup ------------------------------------------------------------
    async def asetup(self) -> None:
        """Run each extension's ``setup(env)`` in load order (awaiting async ones).

        Stops at the first failure with :class:`~finchan.errors.RunError`; the
        extensions set up before it are still cleaned up by :meth:`acleanup`.
        """
        self._set_up = []
        for name, module in self._loaded.items():
            hook = getattr(module, "setup", None)
            if callable(hook):
                try:
                    await _maybe_await(hook(self.env))
                except FinchanError:
                    raise
                except Exception as exc:
                    logger.debug("traceback of setup", exc_info=exc)
                    raise RunError(
                        f"extension {name!r} failed in setup: {type(exc).__name__}: {exc}"
                    ) from exc
            self._set_up.append(name)

    async def acleanup(self) -> None:
        """Run ``cleanup(env)`` of every set-up extension, in reverse order.

        Every cleanup runs even when one fails; the first failure is raised
        afterwards as :class:`~finchan.errors.RunError`.
        """
        first_failure: FinchanError | None = None
        while self._set_up:
            name = self._set_up.pop()
            hook = getattr(self._loaded.get(name), "cleanup", None)
            if not callable(hook):
                continue
            try:
                await _maybe_await(hook(self.env))
            except Exception as exc:
                message = f"extension {name!r} failed in cleanup: {type(exc).__name__}: {exc}"
                logger.error(message)
                logger.debug("traceback of cleanup", exc_info=exc)
                if first_failure is None:
                    first_failure = exc if isinstance(exc, FinchanError) else RunError(message)
        if first_failure is not None:
            raise first_failure

    @asynccontextmanager
    async def lifespan(self, env: Env | None = None) -> AsyncIterator[None]:
        """Setup on entry, cleanup on exit: what :meth:`Env.run <finchan.env.Env.run>`
        hands to the dispatcher (starlette's lifespan pattern).

        When a setup fails, the extensions set up before it are cleaned up
        before the setup error is raised (a cleanup failure then is logged,
        the setup error is what the run reports). On exit every cleanup runs;
        the first cleanup failure is raised.
        """
        try:
            await self.asetup()
        except BaseException:
            try:
                await self.acleanup()
            except FinchanError:
                pass  # logged by acleanup; the setup error is the run's error
            raise
        try:
            yield
        finally:
            await self.acleanup()

    def setup(self) -> None:
        """Initialize all extensions (synchronous form of :meth:`asetup`)."""
        _run_sync(self.asetup())

    def cleanup(self) -> None:
        """Clean up all extensions (synchronous form of :meth:`acleanup`)."""
        _run_sync(self.acleanup())


def _run_sync(coro: Any) -> Any:
    import asyncio

    return asyncio.run(coro)
