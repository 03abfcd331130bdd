"""The SMA cross keeping a few variables in ``self.state`` (tests of live state)."""

from __future__ import annotations

from finchan.trade import Strategy
from finchan.trade.examples import SmaCross


class StatefulSma(SmaCross):
    def on_bar(self, bar):
        super().on_bar(bar)
        state = self.state
        state["bars"] = state.get("bars", 0) + 1
        state["last_close"] = bar.close
        state["closes"] = round(state.get("closes", 0.0) + bar.close, 6)

    def on_fill(self, fill):
        fills = self.state.setdefault("fills", [])
        fills.append([fill.symbol, fill.qty])
        self.state["fills"] = fills[-3:]


class Ticking(Strategy):
    """Trades one unit on a 1-second timer (live: the wall clock; replay: the journal)."""

    def on_start(self):
        self.last_symbol = None
        scheduler = self.env.get_ext_obj("finchan.exts.timer_source")
        scheduler.run_every(1).seconds().do(self.tick)

    def on_bar(self, bar):
        self.last_symbol = bar.symbol
        self.state["bars"] = self.state.get("bars", 0) + 1

    def tick(self, env):
        ticks = self.state.setdefault("ticks", [])
        ticks.append(self.state.get("bars", 0))
        if self.last_symbol is not None:
            if self.position(self.last_symbol):
                self.sell(self.last_symbol, 1)
            else:
                self.buy(self.last_symbol, 1)
