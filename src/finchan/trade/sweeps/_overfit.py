"""Overfitting statistics of a sweep: the deflated Sharpe ratio and PBO by CSCV.

Formulas and sources are in ``docs/sweeps.md``. Both work on per-period
returns (one row per period, one column per trial) and per-period Sharpe
ratios ``mean / std`` (sample std, ``ddof=1``), never annualised ones: the
formulas are stated for the Sharpe ratio at the frequency of the returns.
"""

from __future__ import annotations

import math
from functools import cache
from itertools import chain, combinations
from statistics import NormalDist
from typing import Any

import numpy as np

__all__ = [
    "EULER_GAMMA",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "pbo_cscv",
    "sharpe_per_period",
]

#: the Euler-Mascheroni constant of the expected maximum of N normals
EULER_GAMMA = 0.5772156649015329

_NORMAL = NormalDist()
# splits per slice of pbo_cscv's element-wise work
_SLICE = 512


def sharpe_per_period(returns: Any) -> float:
    """``mean / std`` (``ddof=1``) of ``returns``; 0 when the std is 0 or undefined."""
    r = np.asarray(returns, dtype="float64")
    if len(r) < 2:
        return 0.0
    std = float(r.std(ddof=1))
    return float(r.mean()) / std if std > 0 else 0.0


def expected_max_sharpe(variance: float, trials: int) -> float:
    """``E[max SR]`` of ``trials`` independent Sharpe ratios with true value 0.

    ``sqrt(V) * ((1 - g) * Z(1 - 1/N) + g * Z(1 - 1/(N e)))``, ``Z`` the normal
    quantile and ``g`` the Euler-Mascheroni constant (Bailey and López de
    Prado 2014, eq. 4). One trial: 0 (nothing was selected).
    """
    if trials < 2 or variance <= 0:
        return 0.0
    z1 = _NORMAL.inv_cdf(1.0 - 1.0 / trials)
    z2 = _NORMAL.inv_cdf(1.0 - 1.0 / (trials * math.e))
    return math.sqrt(variance) * ((1.0 - EULER_GAMMA) * z1 + EULER_GAMMA * z2)


def deflated_sharpe_ratio(best_returns: Any, trial_sharpes: Any) -> dict[str, float]:
    """The deflated Sharpe ratio of the selected trial (Bailey and López de Prado 2014).

    Parameters
    ----------
    best_returns:
        per-period returns of the selected (best) trial.
    trial_sharpes:
        the per-period Sharpe ratio of every trial of the search, the best
        included; their sample variance (``ddof=1``) and count give the
        benchmark ``SR0`` (:func:`expected_max_sharpe`).

    Returns
    -------
    dict
        ``dsr`` (a probability), ``sharpe`` (per period), ``sr0``, ``trials``,
        ``periods``, ``skew``, ``kurtosis`` (raw: 3 for normal returns) and
        ``sharpe_variance``. ``dsr`` is NaN with fewer than 3 periods or a
        non-positive variance term.
    """
    r = np.asarray(best_returns, dtype="float64")
    sharpes = np.asarray(trial_sharpes, dtype="float64")
    sharpes = sharpes[np.isfinite(sharpes)]
    n = len(r)
    trials = len(sharpes)
    variance = float(sharpes.var(ddof=1)) if trials > 1 else 0.0
    sr = sharpe_per_period(r)
    sr0 = expected_max_sharpe(variance, trials)
    skew = kurt = math.nan
    dsr = math.nan
    if n >= 3:
        centred = r - r.mean()
        m2 = float((centred**2).mean())
        if m2 > 0:
            skew = float((centred**3).mean()) / m2**1.5
            kurt = float((centred**4).mean()) / m2**2
            denominator = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr**2
            if denominator > 0:
                dsr = _NORMAL.cdf((sr - sr0) * math.sqrt(n - 1) / math.sqrt(denominator))
    return {
        "dsr": dsr,
        "sharpe": sr,
        "sr0": sr0,
        "trials": float(trials),
        "periods": float(n),
        "skew": skew,
        "kurtosis": kurt,
        "sharpe_variance": variance,
    }


def _sharpe_of(sums: np.ndarray, squares: np.ndarray, count: int) -> np.ndarray:
    """Per-period Sharpe (``ddof=1``) per column from sums and sums of squares."""
    mean = sums / count
    var = (squares - count * mean**2) / (count - 1)
    std = np.sqrt(np.maximum(var, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(std > 1e-15, mean / np.where(std > 1e-15, std, 1.0), 0.0)
    return out


@cache
def _splits(blocks: int) -> np.ndarray:
    """Every split at once: a (splits x blocks) 0/1 matrix whose rows pick the in-sample
    blocks, in ``combinations`` order (the order of the logits). Built without a Python
    loop per split (C(16, 8) = 12,870 rows: 130 ms by row, 15 ms so), once per process."""
    half = blocks // 2
    count = math.comb(blocks, half)
    picked = np.fromiter(chain.from_iterable(combinations(range(blocks), half)),
                         dtype=np.intp, count=count * half).reshape(count, half)
    chosen = np.zeros((count, blocks))
    np.put_along_axis(chosen, picked, 1.0, axis=1)
    chosen.flags.writeable = False
    return chosen


def pbo_cscv(returns: Any, blocks: int = 16) -> dict[str, Any]:
    """Probability of backtest overfitting by combinatorially symmetric cross-validation.

    Bailey, Borwein, López de Prado and Zhu (2017): the ``T x N`` matrix of
    per-period returns (``N`` trials) is cut into ``blocks`` (``S``, even)
    consecutive blocks of ``T // S`` rows (the first ``T mod S`` rows are
    dropped). For every one of the ``C(S, S/2)`` ways to pick half the blocks
    as the in-sample set (the rest out-of-sample), the trial with the best
    in-sample Sharpe ratio is found, its relative rank ``w = rank / (N + 1)``
    among the out-of-sample Sharpe ratios is taken (rank 1 = worst, ties
    averaged), and its logit ``log(w / (1 - w))``. PBO is the share of splits
    whose logit is ``<= 0``: the in-sample best did no better than the
    median out of sample.

    Returns ``{"pbo", "logits", "splits", "blocks", "trials"}``; ``pbo`` is
    NaN with fewer than 2 trials or fewer than 2 rows per block.
    """
    m = np.asarray(returns, dtype="float64")
    if m.ndim != 2:
        raise ValueError("pbo_cscv: returns must be a 2-d array (periods x trials)")
    if blocks < 2 or blocks % 2:
        raise ValueError(f"pbo_cscv: blocks must be an even number >= 2, got {blocks}")
    t, n = m.shape
    size = t // blocks
    empty = {"pbo": math.nan, "logits": [], "splits": 0, "blocks": blocks, "trials": n}
    if n < 2 or size < 2:
        return empty
    m = m[t - size * blocks :]
    cut = m.reshape(blocks, size, n)
    sums = cut.sum(axis=1)  # blocks x trials
    squares = (cut**2).sum(axis=1)
    total_sum, total_sq = sums.sum(axis=0), squares.sum(axis=0)
    half = blocks // 2
    count = half * size
    chosen = _splits(blocks)
    all_in_sum, all_in_sq = chosen @ sums, chosen @ squares
    parts = []
    # the element-wise work a slice of splits at a time: its temporaries stay in the
    # cache (whole, each one is splits x trials doubles, 6.6 MB for 64 trials, and
    # costs a fresh allocation of that size); each split's figures are its own
    for first in range(0, len(chosen), _SLICE):
        in_sum, in_sq = all_in_sum[first:first + _SLICE], all_in_sq[first:first + _SLICE]
        in_sharpe = _sharpe_of(in_sum, in_sq, count)
        out_sharpe = _sharpe_of(total_sum - in_sum, total_sq - in_sq, count)
        best = np.argmax(in_sharpe, axis=1)
        best_out = out_sharpe[np.arange(len(best)), best][:, None]
        # rank 1 = lowest out-of-sample Sharpe, ties averaged
        ranks = ((out_sharpe < best_out).sum(axis=1)
                 + ((out_sharpe == best_out).sum(axis=1) + 1) / 2)
        w = ranks / (n + 1)
        parts.append(np.log(w / (1.0 - w)))
    logits = np.concatenate(parts).tolist()
    pbo = float(np.mean(np.asarray(logits) <= 0.0))
    return {"pbo": pbo, "logits": logits, "splits": len(logits), "blocks": blocks, "trials": n}
