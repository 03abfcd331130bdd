"""The extension manager, and the core's own extensions as submodules.

What is here:

* :class:`ExtManager` (in ``_manager``): loads extensions by name, group,
  entry point or module, requirements first; runs their ``setup`` and
  ``cleanup`` around a run as the lifespan the Env hands to the dispatcher.
* :mod:`finchan.exts.timer_source`: the timer event source and its scheduler
  (``env.get_ext_obj("finchan.exts.timer_source")``).
* :mod:`finchan.exts.timer_callback`: an example extension using the timer.

What is not: the trading kit's extensions (``finchan.exts.bars``,
``finchan.exts.sim_broker``, ``finchan.exts.strategy``) live in
:mod:`finchan.trade.exts`, the key-value store's (``finchan.exts.kvstore``) in
:mod:`finchan.kvstore.ext`; configs keep naming them ``finchan.exts.*``
through entry points of the :data:`ENTRY_POINT_GROUP` group. The core imports
neither package.
"""

from finchan.exts._manager import ENTRY_POINT_GROUP, ExtManager

__all__ = ["ENTRY_POINT_GROUP", "ExtManager"]
