"""Positions, cash, equity and round-trip trades of one account.

:class:`Portfolio` is fed with fills (:meth:`Portfolio.apply_fill`) and last
prices (:meth:`Portfolio.mark`, once per bar). It keeps:

- one :class:`Position` per traded symbol: signed quantity, average price
  (average cost: buying more moves it, selling does not), realised P&L;
- cash: a buy pays ``qty * price + commission``, a sell (also a short sale)
  receives ``qty * price - commission``;
- ``equity = cash + sum(qty * last price)``, kept as a running value so that
  reading it costs O(1) whatever the number of symbols;
- round trips (:class:`Trade`): a trade opens when a position leaves 0 and
  closes when it returns to 0; a fill that flips the position through 0
  closes the trade and opens a new one at the fill price.

Identity: ``equity == initial cash + realized_pnl - commission + unrealized_pnl``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from finchan.trade.orders import Fill, Side

__all__ = ["Portfolio", "Position", "Trade"]

# |qty| at or below this is flat: keeps fractional quantities (0.1 + 0.2 - 0.3)
# from leaving a dust position that never closes its trade
_QTY_EPS = 1e-9


@dataclass(slots=True)
class Trade:
    """A round trip: from a position leaving 0 to its return to 0 (or flip).

    Attributes
    ----------
    symbol:
        the instrument.
    side:
        ``"LONG"`` or ``"SHORT"``.
    qty:
        total quantity entered during the trade (= total quantity exited), so
        that ``(exit_price - entry_price) * qty`` is the gross P&L of a long.
    entry_time, exit_time:
        POSIX seconds of the first and of the last fill (``exit_time`` is
        ``None`` for a trade still open, see :meth:`Portfolio.open_trades`).
    entry_price, exit_price:
        quantity-weighted average prices of the entering and exiting fills
        (for an open trade, ``exit_price`` is the last marked price).
    pnl:
        gross P&L minus every commission paid by the trade's fills (a fill
        that flips the position shares its commission pro rata).
    pnl_pct:
        ``pnl / (entry_price * qty)``, a fraction (0.01 is 1 %).
    commission:
        commissions of the trade's fills.
    bars_held:
        number of :meth:`Portfolio.mark` calls for the symbol while the trade
        was open: with one mark per bar after that bar's fills, the number of
        bars from the entry fill's bar to the exit fill's bar.
    """

    symbol: str
    side: str
    qty: float
    entry_time: float
    exit_time: float | None
    entry_price: float
    exit_price: float
    pnl: float
    pnl_pct: float
    commission: float
    bars_held: int

    #: column names of :meth:`to_row`
    COLUMNS: ClassVar[tuple[str, ...]] = (
        "symbol",
        "side",
        "qty",
        "entry_time",
        "exit_time",
        "entry_price",
        "exit_price",
        "pnl",
        "pnl_pct",
        "commission",
        "bars_held",
    )

    def to_row(self) -> tuple:
        """The trade as a tuple in the order of :attr:`COLUMNS` (times are POSIX seconds)."""
        return (
            self.symbol,
            self.side,
            self.qty,
            self.entry_time,
            self.exit_time,
            self.entry_price,
            self.exit_price,
            self.pnl,
            self.pnl_pct,
            self.commission,
            self.bars_held,
        )


class Position:
    """The holding of one symbol.

    Attributes
    ----------
    symbol:
        the instrument.
    qty:
        signed quantity: positive long, negative short, 0 flat.
    avg_price:
        average entry price of the open quantity (0 when flat).
    last_price:
        last marked price (or the last fill price if marked since).
    realized_pnl:
        gross P&L realised by reducing fills, commissions not deducted.
    commission:
        commissions paid on this symbol.
    """

    __slots__ = (
        "_t_bars",
        "_t_comm",
        "_t_entry_qty",
        "_t_entry_ts",
        "_t_entry_value",
        "_t_exit_qty",
        "_t_exit_value",
        "_t_gross",
        "avg_price",
        "commission",
        "last_price",
        "mult",
        "qty",
        "realized_pnl",
        "settles",
        "symbol",
    )

    def __init__(self, symbol: str, last_price: float) -> None:
        self.symbol = symbol
        self.qty = 0.0
        self.avg_price = 0.0
        self.last_price = last_price
        self.realized_pnl = 0.0
        self.commission = 0.0
        #: contract multiplier (trade/margin.py sets it; 1 for stocks)
        self.mult = 1.0
        #: margin-traded: P&L settles into cash, no notional paid (trade/margin.py)
        self.settles = False
        self._open_trade(0.0, 0.0, 0.0, 0.0)

    def _open_trade(self, ts: float, qty: float, price: float, commission: float) -> None:
        self._t_entry_ts = ts
        self._t_entry_qty = qty
        self._t_entry_value = qty * price
        self._t_exit_qty = 0.0
        self._t_exit_value = 0.0
        self._t_comm = commission
        self._t_gross = 0.0
        self._t_bars = 0

    @property
    def market_value(self) -> float:
        """``qty * last_price * mult`` (negative for a short)."""
        return self.qty * self.last_price * self.mult

    @property
    def unrealized_pnl(self) -> float:
        """``(last_price - avg_price) * qty * mult``."""
        return (self.last_price - self.avg_price) * self.qty * self.mult if self.qty else 0.0

    def __repr__(self) -> str:
        return (
            f"<Position {self.symbol} qty={self.qty:g} avg={self.avg_price:g} "
            f"last={self.last_price:g} realized={self.realized_pnl:g}>"
        )


class Portfolio:
    """Cash, positions, equity and round trips of one account.

    Parameters
    ----------
    cash:
        starting cash.

    Example
    -------
    >>> from finchan.trade.orders import Fill, Side
    >>> from finchan.trade.portfolio import Portfolio
    >>> pf = Portfolio(10_000.0)
    >>> pf.apply_fill(Fill(1, "X", Side.BUY, 10, 100.0, 1.0, 0.0))
    >>> pf.mark("X", 105.0)
    >>> pf.cash, pf.equity, pf.unrealized_pnl
    (8999.0, 10049.0, 50.0)
    """

    __slots__ = (
        "_mv",
        "_open",
        "cash",
        "commission",
        "initial_cash",
        "positions",
        "realized_pnl",
        "trades",
    )

    def __init__(self, cash: float = 100_000.0) -> None:
        self.initial_cash = cash
        self.cash = cash
        #: every symbol ever traded, flat ones included
        self.positions: dict[str, Position] = {}
        #: closed round trips, in closing order
        self.trades: list[Trade] = []
        #: gross P&L realised so far, all symbols
        self.realized_pnl = 0.0
        #: commissions paid so far, all symbols
        self.commission = 0.0
        # positions with qty != 0, and the running sum of their qty * last
        self._open: dict[str, Position] = {}
        self._mv = 0.0

    @property
    def equity(self) -> float:
        """Cash plus the market value of every position at its last price."""
        return self.cash + self._mv

    @property
    def market_value(self) -> float:
        """Sum of ``qty * last_price`` over open positions (shorts count negative)."""
        return self._mv

    @property
    def unrealized_pnl(self) -> float:
        """Sum of ``(last_price - avg_price) * qty`` over open positions."""
        return sum((p.last_price - p.avg_price) * p.qty * p.mult for p in self._open.values())

    def qty(self, symbol: str) -> float:
        """Signed quantity held in ``symbol`` (0.0 if never traded)."""
        pos = self.positions.get(symbol)
        return pos.qty if pos is not None else 0.0

    def mark(self, symbol: str, price: float) -> None:
        """Record the last price of ``symbol`` (call once per bar, after its fills).

        Symbols never traded are ignored. Each call while a position is open
        counts one bar towards the trade's ``bars_held``.
        """
        pos = self.positions.get(symbol)
        if pos is None:
            return
        qty = pos.qty
        if qty:
            self._mv += qty * (price - pos.last_price)
            pos._t_bars += 1
        pos.last_price = price

    def apply_fill(self, fill: Fill) -> None:
        """Update cash, the position, realised P&L and round trips with one fill."""
        symbol = fill.symbol
        price = fill.price
        qty = fill.qty
        comm = fill.commission
        ts = fill.timestamp
        signed = qty if fill.side == Side.BUY else -qty
        pos = self.positions.get(symbol)
        if pos is None:
            pos = self.positions[symbol] = self._new_position(symbol, price)
        mult = pos.mult
        settles = pos.settles
        # a margin-traded position pays no notional: only its P&L moves cash
        self.cash -= comm if settles else signed * price * mult + comm
        self.commission += comm
        pos.commission += comm
        old = pos.qty
        new = old + signed
        if -_QTY_EPS <= new <= _QTY_EPS:
            new = 0.0
        if old == 0.0:
            pos.avg_price = price
            pos._open_trade(ts, qty, price, comm)
        elif (old > 0.0) == (signed > 0.0):
            # adding: average cost moves, the open trade grows
            pos.avg_price = (old * pos.avg_price + signed * price) / new
            pos._t_entry_qty += qty
            pos._t_entry_value += qty * price
            pos._t_comm += comm
        else:
            closed = qty if qty < abs(old) else abs(old)
            gross = (price - pos.avg_price) * closed * mult
            if old < 0.0:
                gross = -gross
            if settles:
                self.cash += gross
            pos.realized_pnl += gross
            self.realized_pnl += gross
            close_comm = comm if closed == qty else comm * closed / qty
            pos._t_exit_qty += closed
            pos._t_exit_value += closed * price
            pos._t_comm += close_comm
            pos._t_gross += gross
            if new == 0.0:
                self._close_trade(pos, ts, old > 0.0)
                pos.avg_price = 0.0
            elif (new > 0.0) != (old > 0.0):
                self._close_trade(pos, ts, old > 0.0)
                pos.avg_price = price
                pos._open_trade(ts, abs(new), price, comm - close_comm)
        pos.qty = new
        if new == 0.0:
            self._open.pop(symbol, None)
        else:
            self._open[symbol] = pos
        # re-anchor the running market value exactly, so that float drift of
        # mark()'s increments never outlives the next fill
        self._mv = self._revalue()

    def _new_position(self, symbol: str, price: float) -> Position:
        # MarginPortfolio (trade/margin.py) sets the contract terms here
        return Position(symbol, price)

    def _revalue(self) -> float:
        # the exact sum of what open positions add to equity
        return sum(p.qty * p.last_price for p in self._open.values())

    def _close_trade(self, pos: Position, ts: float, long: bool) -> None:
        qty = pos._t_entry_qty
        entry_value = pos._t_entry_value
        pnl = pos._t_gross - pos._t_comm
        self.trades.append(
            Trade(
                pos.symbol,
                "LONG" if long else "SHORT",
                qty,
                pos._t_entry_ts,
                ts,
                entry_value / qty,
                pos._t_exit_value / pos._t_exit_qty,
                pnl,
                pnl / (entry_value * pos.mult) if entry_value else 0.0,
                pos._t_comm,
                pos._t_bars,
            )
        )

    def open_trades(self) -> list[Trade]:
        """Trades still open, valued at the last price (``exit_time`` is ``None``).

        ``qty`` is the quantity entered so far, ``exit_price`` the last price,
        ``pnl`` the P&L if the open quantity were closed there without
        commission, net of the commissions already paid.
        """
        out = []
        for pos in self._open.values():
            long = pos.qty > 0.0
            unreal = (pos.last_price - pos.avg_price) * pos.qty * pos.mult
            pnl = pos._t_gross + unreal - pos._t_comm
            entry_value = pos._t_entry_value
            out.append(
                Trade(
                    pos.symbol,
                    "LONG" if long else "SHORT",
                    pos._t_entry_qty,
                    pos._t_entry_ts,
                    None,
                    entry_value / pos._t_entry_qty,
                    pos.last_price,
                    pnl,
                    pnl / (entry_value * pos.mult) if entry_value else 0.0,
                    pos._t_comm,
                    pos._t_bars,
                )
            )
        return out

    def __repr__(self) -> str:
        return f"<Portfolio cash={self.cash:.2f} equity={self.equity:.2f} open={len(self._open)}>"
