"""The key-value store of a run (the built-in ``finchan.exts.kvstore``).

It lives with the stores rather than in ``finchan.exts`` because it opens
backends, and the core never imports ``finchan.kvstore``; configs name it
``finchan.exts.kvstore`` through an entry point (see ``pyproject.toml``).

It opens one store when loaded and publishes it with
``env.set_ext_obj("finchan.exts.kvstore", store)``; ``cleanup`` closes it.
Options (under ``backtrack_exts`` or ``live_track_exts``):

``url``
    ``memory://``, ``sqlite:///path/to/file.db`` (or a plain path; a
    relative one is taken from ``work_dir``) or ``redis://host:port/db``.
    Default: ``work_dir/state.db`` in live mode, ``memory://`` in backtest,
    so a backtest never touches live state unless a ``url`` says so.
``prefix``
    prepended to every key name, so several strategies share one store.

Example config::

    live_track_exts:
      finchan.exts.kvstore: {url: state.db, prefix: "sma:"}
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from finchan.env import RunMode
from finchan.errors import StoreError
from finchan.kvstore import open_store

if TYPE_CHECKING:
    from finchan.env import Env
    from finchan.interface.kvstore import AbsKvStore

__all__ = ["DEFAULT_FILE", "cleanup", "ext_name", "load_finchan_ext", "unload_finchan_ext"]

ext_name = "finchan.exts.kvstore"

#: the live store's file under ``work_dir`` when no ``url`` is given
DEFAULT_FILE = "state.db"

logger = logging.getLogger(__name__)


def load_finchan_ext(env: Env) -> None:
    """Open the store the options name and publish it."""
    from finchan.config import KvStoreOptions, validate_ext_options

    options = validate_ext_options(env, ext_name, KvStoreOptions)
    url = options.url
    if url is None:
        url = "memory://" if env.run_mode == RunMode.BACKTEST else str(env.work_dir / DEFAULT_FILE)
    prefix = options.prefix
    try:
        store = open_store(url, prefix=prefix, base_dir=env.work_dir)
    except StoreError as exc:
        # name the config file and key, like every other option error
        from finchan.config import ext_option_error

        key = "prefix" if str(exc).startswith("kvstore prefix") else "url"
        raise StoreError(str(ext_option_error(env, ext_name, f"{key}: {exc}"))) from None
    env.set_ext_obj(ext_name, store)
    logger.info("kvstore %r opened (prefix %r)", store, prefix)


def cleanup(env: Env) -> None:
    """Close the store at the end of the run."""
    _close(env)


def unload_finchan_ext(env: Env) -> None:
    """Close the store if the run did not (it was loaded but never run)."""
    _close(env)


def _close(env: Env) -> None:
    store: AbsKvStore | None = env.get_ext_obj(ext_name, None)
    if store is not None:
        store.close()
