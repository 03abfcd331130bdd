"""The trading kit's extensions: bar data, the simulated broker, the strategy runner.

Configs name them by their original names, which entry points of the
``finchan.exts`` group map to these modules (see ``pyproject.toml``):

================================  ====================================
name in a config                  module
================================  ====================================
``finchan.exts.bars``             :mod:`finchan.trade.exts.bars`
``finchan.exts.sim_broker``       :mod:`finchan.trade.exts.sim_broker`
``finchan.exts.strategy``         :mod:`finchan.trade.exts.strategy`
================================  ====================================

Python code imports them from here; :func:`finchan.trade.backtest` loads
them as modules, without looking a name up.
"""
