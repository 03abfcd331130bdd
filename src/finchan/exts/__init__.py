"""The extension manager, and finchan's built-in extensions as submodules.

Built-in extensions: :mod:`finchan.exts.timer_source` (timer event source and
scheduler), :mod:`finchan.exts.timer_callback` (an example using the timer).
"""

from finchan.exts._manager import ENTRY_POINT_GROUP, ExtManager

__all__ = ["ENTRY_POINT_GROUP", "ExtManager"]
