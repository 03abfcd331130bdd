"""The SMA cross keeping a few variables in ``self.state`` (tests of live state)."""

from __future__ import annotations

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
