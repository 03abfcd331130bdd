"""Event dispatchers: the engine that runs a finchan system.

:class:`BackTrackDispatcher` replays history on a simulated clock,
deterministically and as fast as the machine allows; :class:`LiveDispatcher`
runs on the wall clock with asyncio until it is stopped. Both share the
subscription API of :class:`Dispatcher`.
"""

from finchan.dispatcher._backtrack import BackTrackDispatcher
from finchan.dispatcher._base import Dispatcher
from finchan.dispatcher._live import LiveDispatcher

__all__ = [
    "BackTrackDispatcher",
    "Dispatcher",
    "LiveDispatcher",
]
