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

Fill rules and order states: ``docs/broker.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from finchan.env import Env

__all__ = ["BrokerOptions", "build_commission", "build_slippage", "ext_name", "load_finchan_ext"]

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


def build_commission(options: CommissionOptions | float | None) -> Any:
    """The commission model for the options (None: no commission)."""
    from finchan.errors import ConfigError
    from finchan.trade.broker import FixedPerOrder, PercentOfValue, PerShare

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
    return FixedPerOrder(options.fixed)  # type: ignore[arg-type]


def build_slippage(options: SlippageOptions | None) -> Any:
    """The slippage model for the options (None: no slippage)."""
    from finchan.errors import ConfigError
    from finchan.trade.broker import BpsSlippage, TickSlippage

    if options is None:
        return None
    if (options.bps is None) == (options.ticks is None):
        raise ConfigError(f"{ext_name}: slippage takes exactly one of bps, ticks")
    if options.bps is not None:
        return BpsSlippage(options.bps)
    return TickSlippage(options.ticks, options.tick_size)  # type: ignore[arg-type]


def load_finchan_ext(env: Env) -> None:
    from finchan.config import validate_ext_options
    from finchan.trade.account import SimAccount
    from finchan.trade.broker import SimBroker

    options: BrokerOptions = validate_ext_options(env, ext_name, BrokerOptions)
    broker = SimBroker(
        options.cash,
        commission=build_commission(options.commission),
        slippage=build_slippage(options.slippage),
        fill_at=options.fill_at,
        volume_limit=options.volume_limit,
        allow_short=options.allow_short,
        check_submit=options.check_submit,
        tz=env.tz,
        backtrader_quirks=options.backtrader_quirks,
    )
    env.set_ext_obj(ext_name, SimAccount(env, broker, record_prices=options.record_prices))
