"""The run mode: one enum inside, every documented spelling accepted at the edges."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["RunMode"]


class RunMode(StrEnum):
    """How a run is driven: history on a simulated clock, or the wall clock.

    The values are the original spellings (``backtrack``, ``live_track``), so
    a member compares equal to them and prints as them: code and configs
    written against the original documentation keep working. Parse any
    accepted spelling with :meth:`parse`.

    >>> RunMode.parse("backtest") is RunMode.BACKTEST, str(RunMode.LIVE)
    (True, 'live_track')
    """

    BACKTEST = "backtrack"
    LIVE = "live_track"

    @classmethod
    def parse(cls, mode: str | RunMode) -> RunMode:
        """The mode for ``backtest``/``backtrack``/``live``/``live_track`` (any case)."""
        if isinstance(mode, RunMode):
            return mode
        try:
            return _ALIASES[str(mode).strip().lower()]
        except KeyError:
            raise ValueError(
                f"unknown run mode {mode!r}: use backtest (backtrack) or live (live_track)"
            ) from None


_ALIASES = {
    "backtest": RunMode.BACKTEST,
    "backtrack": RunMode.BACKTEST,
    "live": RunMode.LIVE,
    "live_track": RunMode.LIVE,
}
