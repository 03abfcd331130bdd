"""Linked orders of :class:`~finchan.trade.broker.SimBroker`: OCO groups and brackets.

backtrader 1.9.78's rules (``BackBroker._ococheck``, ``_bracketize``):

- OCO: any fill (partial too), cancellation, expiry or rejection of a member
  cancels the group's other open members; the group is then dissolved.
- bracket ``[parent, stop, take]``: the children wait (``ACCEPTED``, not in the
  book) until the parent is completely ``FILLED``, and first meet the bar
  after the one it filled on. A child ``FILLED`` (partial fills do not count)
  cancels the rest of the bracket; a member cancelled, expired or rejected
  cancels all the others.

The broker creates a :class:`Links` at the first linked order only: without
one its matching loop is the plain one (see ``SimBroker._match``).
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Any

from .orders import Order, OrderStatus

if TYPE_CHECKING:
    from .bar import Bar
    from .broker import Notice, SimBroker

__all__: list[str] = []

_CANCELLED = OrderStatus.CANCELLED
_FILLED = OrderStatus.FILLED
_ACCEPTED = OrderStatus.ACCEPTED


def _oid(order: Order) -> int:
    return order.id


class Links:
    """OCO groups and brackets of one broker, and the matching step that applies them."""

    __slots__ = (
        "_activate",
        "_bracket",
        "_broker",
        "_dirty",
        "_held",
        "_oco",
        "_parents",
        "linked",
    )

    def __init__(self, broker: SimBroker) -> None:
        self._broker = broker
        #: ids of every order in a live group or bracket (the cheap test)
        self.linked: set[int] = set()
        # order id -> the members of its OCO group (one list shared by the group)
        self._oco: dict[int, list[Order]] = {}
        # order id -> its bracket's live members, parent first while unfilled
        self._bracket: dict[int, list[Order]] = {}
        # ids of children waiting for their parent (not in any book)
        self._held: set[int] = set()
        # ids of bracket parents not filled yet
        self._parents: set[int] = set()
        # children to put in the books once the current pass is over
        self._activate: list[Order] = []
        # orders cancelled by a link during a pass, to take out of the books
        self._dirty: list[Order] = []

    # a snapshot of a live run pickles the links without their broker (the
    # broker's configuration is rebuilt from the config on restart)
    def __getstate__(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__ if name != "_broker"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    def attach(self, broker: SimBroker) -> None:
        """Make a restored :class:`Links` the links of ``broker``."""
        self._broker = broker

    # -- linking ---------------------------------------------------------------------------

    def add_oco(self, order: Order, other: Order) -> list[Order]:
        """Put ``order`` in ``other``'s OCO group; return the orders this cancelled.

        As backtrader: if ``other``'s group is dissolved already (one of its
        members filled or was cancelled) ``order`` stays unlinked; if ``order``
        itself was rejected, the group's other members are cancelled.
        """
        if order.id in self._oco:
            raise ValueError(f"oco: order #{order.id} is already in an OCO group")
        group = self._oco.get(other.id)
        if group is None:
            if not other.is_open:
                return []
            group = [other]
            self._oco[other.id] = group
            self.linked.add(other.id)
        group.append(order)
        self._oco[order.id] = group
        self.linked.add(order.id)
        if order.is_open:
            return []
        cancelled: list[Order] = []
        self.on_event(order, cancelled_out=cancelled)
        self.sweep()
        return cancelled

    def hold(self, parent: Order, children: list[Order]) -> None:
        """Register an accepted bracket; ``children`` are accepted but kept out of the book."""
        members = [parent, *children]
        for member in members:
            self._bracket[member.id] = members
            self.linked.add(member.id)
        self._held.update(c.id for c in children)
        self._parents.add(parent.id)

    def is_held(self, order: Order) -> bool:
        return order.id in self._held

    # -- events ----------------------------------------------------------------------------

    def match(self, order: Order, bar: Bar, cap: float, notices: list[Notice]) -> float:
        """``SimBroker._match_order`` plus the consequences for linked orders."""
        if not order.is_open:
            return cap  # cancelled by a link earlier in this pass
        before = order.filled_qty
        cap = self._broker._match_order(order, bar, cap, notices)
        if order.id in self.linked and (order.filled_qty != before or not order.is_open):
            self.on_event(order, notices)
        return cap

    def on_event(
        self,
        order: Order,
        notices: list[Notice] | None = None,
        cancelled_out: list[Order] | None = None,
    ) -> None:
        """Apply the links after ``order`` filled (partly) or became final."""
        from .broker import Notice

        work = [order]
        while work:
            current = work.pop(0)
            victims: list[Order] = []
            group = self._oco.get(current.id)
            if group is not None:
                # any event of a member dissolves the group (backtrader's _ococheck)
                for member in group:
                    self._oco.pop(member.id, None)
                    if member is not current:
                        victims.append(member)
            members = self._bracket.get(current.id)
            status = current.status
            if members is not None and (status is not OrderStatus.PARTIALLY_FILLED):
                is_parent = current.id in self._parents
                self._parents.discard(current.id)
                if status is _FILLED and is_parent:
                    # the parent filled: its children go live on the next bar
                    members.pop(0)
                    del self._bracket[current.id]
                    for child in members:
                        self._held.discard(child.id)
                        self._activate.append(child)
                else:
                    for member in members:
                        self._bracket.pop(member.id, None)
                        if member is not current:
                            victims.append(member)
            if status is not OrderStatus.PARTIALLY_FILLED:
                self.linked.discard(current.id)
            why = f"linked order #{current.id} {'filled' if current.filled_qty else 'closed'}"
            for victim in sorted(victims, key=_oid):
                if not victim.is_open:
                    continue
                victim.status = _CANCELLED
                victim.reason = f"cancelled: {why}"
                if victim.id in self._held:
                    self._held.discard(victim.id)
                else:
                    self._dirty.append(victim)
                if notices is not None:
                    notices.append(Notice(victim, _CANCELLED, None))
                if cancelled_out is not None:
                    cancelled_out.append(victim)
                work.append(victim)

    def sweep(self) -> None:
        """After a pass: drop cancelled orders from the books, book the activated children."""
        books = self._broker._books
        for order in self._dirty:
            book = books.get(order.symbol)
            if book is not None and order in book:
                book.remove(order)
                if not book:
                    del books[order.symbol]
        self._dirty.clear()
        for child in self._activate:
            if not child.is_open:
                continue
            book = books.get(child.symbol)
            if book is None:
                books[child.symbol] = [child]
            else:
                # books are in submission (id) order
                bisect.insort(book, child, key=_oid)
        self._activate.clear()
