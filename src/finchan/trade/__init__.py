"""The trading kit: bars, strategies, a simulated broker, portfolio, statistics, reports.

Built on the finchan core; the core never imports this package.
"""
