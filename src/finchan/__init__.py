"""finchan: an event-driven framework for trading systems.

The core is small: :class:`~finchan.event.Event`, event sources
(:mod:`finchan.interface.event_source`), the dispatchers
(:mod:`finchan.dispatcher`), the run environment (:mod:`finchan.env`) and the
extension manager (:mod:`finchan.exts`). Importing ``finchan`` imports none of
them, so ``import finchan`` and ``finchan --version`` stay fast.
"""

__version__ = "0.5.0"

__all__ = ["__version__"]
