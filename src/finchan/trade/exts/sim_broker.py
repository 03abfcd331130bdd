"""The simulated broker extension ``finchan.exts.sim_broker``.

Publishes a :class:`~finchan.trade.account.SimAccount` (the
:class:`~finchan.trade.broker.SimBroker` fed by bar events) as
``env.get_ext_obj("finchan.exts.sim_broker")``. Options::

    finchan.exts.sim_broker:
      cash: 1000000
      commission: {rate: 0.001, minimum: 1.0}   # or {per_share: 0.005} or {fixed: 4.95}
      slippage: {bps: 5}                        # or {ticks: 1, tick_size: 0.01}
      fill_at: next_open         # or close: market orders at the signal bar's close
      volume_limit: 0.1          # at most 10 % of a bar's volume, the rest later
      allow_short: false
      check_submit: true         # check cash when an order is submitted, as backtrader
      backtrader_quirks: false   # backtrader 1.9.78's questionable corners (docs/broker.md)
      record_prices: true        # keep each bar's close for the report
      lots: {BTC: {size: 0.0001, minimum: 0.001}}   # fractional units per symbol
      contracts:                 # per-symbol terms ("*": every other symbol), docs/broker.md
        ES: {multiplier: 50, margin: 12000, maintenance_margin: 11000}
        EURUSD: {leverage: 30, maintenance_ratio: 0.5}
        XYZ: {borrow_rate: 0.03}  # annual, charged on shorts
      margin_call: true          # close positions when equity < maintenance margin

Fill rules and order states: ``docs/broker.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from finchan.env import Env

__all__ = [
    "BrokerOptions",
    "build_commission",
    "build_slippage",
    "ext_name",
    "load_finchan_ext",
    "make_account",
]

ext_name = "finchan.exts.sim_broker"
required_exts: list[str] = []


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CommissionOptions(_Strict):
    rate: float | None = Field(None, ge=0)
    per_share: float | None = Field(None, ge=0)
    fixed: float | None = Field(None, ge=0)
    minimum: float = Field(0.0, ge=0)


class SlippageOptions(_Strict):
    bps: float | None = Field(None, ge=0)
    ticks: float | None = Field(None, ge=0)
    tick_size: float = Field(0.01, gt=0)


_COMMISSION_FORMS = ("rate", "per_share", "fixed")
_SLIPPAGE_FORMS = ("bps", "ticks")


def _number(key: str, value: Any, positive: bool = False) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
        or (positive and value == 0)
    ):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{key} must be a number {bound}, not {value!r}")
    return float(value)


def _check_form(value: Mapping[str, Any], forms: tuple[str, ...], extra: tuple[str, ...]) -> None:
    # one message naming the valid keys, whatever was wrong, instead of
    # pydantic's per-branch errors that name the option classes
    valid = ", ".join((*forms, *extra))
    for key in value:
        if key not in forms and key not in extra:
            raise ValueError(f"unknown key {key!r} (valid: {valid})")
    chosen = [key for key in forms if value.get(key) is not None]
    if len(chosen) != 1:
        raise ValueError(
            f"takes exactly one of {', '.join(forms)} (given: {', '.join(chosen) or 'none'})"
        )
class LotOptions(_Strict):
    size: float = Field(1.0, gt=0)
    minimum: float = Field(0.0, ge=0)


class BrokerOptions(_Strict):
    cash: float = Field(100_000.0, gt=0)
    commission: CommissionOptions | float | None = None  # a bare number is a rate
    slippage: SlippageOptions | None = None
    fill_at: Literal["next_open", "close"] = "next_open"
    volume_limit: float | None = Field(None, gt=0, le=1)
    allow_short: bool = False
    check_submit: bool = True
    backtrader_quirks: bool = False
    record_prices: bool = True
    lots: dict[str, LotOptions | tuple[float, float]] = Field(default_factory=dict)
    contracts: dict[str, Any] | None = None
    margin_call: bool = True

    @field_validator("contracts", mode="before")
    @classmethod
    def _contracts_form(cls, value: Any) -> Any:
        from finchan.trade.margin import parse_contracts

        try:
            parse_contracts(value, "contracts")
        except Exception as exc:  # ConfigError: one line naming the symbol and key
            raise ValueError(str(exc)) from None
        return value

    @field_validator("commission", mode="before")
    @classmethod
    def _commission_form(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, Mapping):
            if isinstance(value, int | float) and not isinstance(value, bool):
                return _number("a rate", value)
            raise ValueError(
                "expected a rate (0.001 is 0.1 % of the value) or a mapping with one of "
                "rate, per_share, fixed, and optionally minimum"
            )
        _check_form(value, _COMMISSION_FORMS, ("minimum",))
        return CommissionOptions(**{k: _number(k, v) for k, v in value.items() if v is not None})

    @field_validator("slippage", mode="before")
    @classmethod
    def _slippage_form(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise ValueError(
                "expected a mapping with one of bps, ticks (and tick_size with ticks)"
            )
        _check_form(value, _SLIPPAGE_FORMS, ("tick_size",))
        return SlippageOptions(
            **{k: _number(k, v, positive=k == "tick_size") for k, v in value.items()}
        )


def build_commission(options: CommissionOptions | float | None) -> Any:
    """The commission model for the options (None: no commission)."""
    from finchan.errors import ConfigError
    from finchan.trade.costs import FixedPerOrder, PercentOfValue, PerShare

    if options is None:
        return None
    if isinstance(options, (int, float)):
        return PercentOfValue(float(options))
    chosen = [k for k in ("rate", "per_share", "fixed") if getattr(options, k) is not None]
    if len(chosen) != 1:
        raise ConfigError(
            f"{ext_name}: commission takes exactly one of rate, per_share, fixed "
            f"(got {chosen or 'none'})"
        )
    if options.rate is not None:
        return PercentOfValue(options.rate, minimum=options.minimum)
    if options.per_share is not None:
        return PerShare(options.per_share, minimum=options.minimum)
    assert options.fixed is not None  # one form is set: checked above
    return FixedPerOrder(options.fixed)


def build_slippage(options: SlippageOptions | None) -> Any:
    """The slippage model for the options (None: no slippage)."""
    from finchan.errors import ConfigError
    from finchan.trade.costs import BpsSlippage, TickSlippage

    if options is None:
        return None
    if (options.bps is None) == (options.ticks is None):
        raise ConfigError(f"{ext_name}: slippage takes exactly one of bps, ticks")
    if options.bps is not None:
        return BpsSlippage(options.bps)
    assert options.ticks is not None  # exactly one form is set: checked above
    return TickSlippage(options.ticks, options.tick_size)


def make_account(env: Env, options: BrokerOptions) -> Any:
    """A new SimAccount (a SimBroker, or a MarginBroker with ``contracts``) for ``options``."""
    from finchan.trade.account import SimAccount
    from finchan.trade.broker import SimBroker

    margin: dict[str, Any] = {}
    broker_class: Any = SimBroker
    if options.contracts:
        # only an account with contract terms pays for them, per bar
        from finchan.trade.margin import MarginBroker

        broker_class = MarginBroker
        margin = {"contracts": options.contracts, "margin_call": options.margin_call}
    broker = broker_class(
        options.cash,
        **margin,
        commission=build_commission(options.commission),
        slippage=build_slippage(options.slippage),
        fill_at=options.fill_at,
        volume_limit=options.volume_limit,
        allow_short=options.allow_short,
        check_submit=options.check_submit,
        tz=env.tz,
        backtrader_quirks=options.backtrader_quirks,
        lots={
            s: (lot.size, lot.minimum) if isinstance(lot, LotOptions) else lot
            for s, lot in options.lots.items()
        },
    )
    return SimAccount(env, broker, record_prices=options.record_prices)


def load_finchan_ext(env: Env) -> None:
    from finchan.config import validate_ext_options

    options: BrokerOptions = validate_ext_options(env, ext_name, BrokerOptions)
    env.set_ext_obj(ext_name, make_account(env, options))
