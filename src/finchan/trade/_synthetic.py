"""The old private name of :mod:`finchan.trade.synthetic`, kept so existing imports work."""

from finchan.trade.synthetic import make_bars

__all__ = ["make_bars"]
