"""Strategies of the sweep tests; importable by Dask workers (this directory is on their path)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, ClassVar

from finchan.trade import Strategy
from finchan.trade.examples import SmaCross

# a held task waits for the release file at most this long, then fails loudly
_HOLD_DEADLINE_S = 120.0


class GatedSmaCross(SmaCross):
    """SmaCross that records each start in ``gate`` and holds the ``hold`` combination.

    ``hold`` is ``"fast/slow"``: that combination writes its start marker,
    then waits until ``gate/release`` exists (polled, with a deadline), so a
    test can kill the process running it at a known moment.
    """

    params: ClassVar[dict[str, Any]] = {**SmaCross.params, "gate": "", "hold": ""}

    def on_start(self) -> None:
        super().on_start()
        gate = self.params.gate
        if not gate:
            return
        me = f"{self.params.fast}-{self.params.slow}"
        (Path(gate) / f"started-{me}-{os.getpid()}-{time.monotonic_ns()}").touch()
        if self.params.hold != f"{self.params.fast}/{self.params.slow}":
            return
        release = Path(gate) / "release"
        deadline = time.monotonic() + _HOLD_DEADLINE_S
        while not release.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{me}: never released")
            time.sleep(0.01)  # polling the release file, with a deadline


class Hold(Strategy):
    """Buys ``qty`` on the first bar when ``side`` is 1 and holds; does nothing when 0."""

    params: ClassVar[dict[str, Any]] = {"side": 0, "qty": 10}

    def on_start(self) -> None:
        self.done = False

    def on_bar(self, bar: Any) -> None:
        if not self.done:
            self.done = True
            if self.params.side == 1:
                self.buy(bar.symbol, self.params.qty)


class Boom(Hold):
    """:class:`Hold` that raises in ``on_bar`` when ``fail`` is 1."""

    params: ClassVar[dict[str, Any]] = {**Hold.params, "fail": 0}

    def on_bar(self, bar: Any) -> None:
        if self.params.fail == 1:
            raise RuntimeError("boom")
        super().on_bar(bar)
