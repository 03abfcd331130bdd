"""Deflated Sharpe ratio and PBO by CSCV: hand-computed cases and independent implementations."""

from __future__ import annotations

import itertools
import math
import statistics

import numpy as np
import pytest
from scipy import stats as sps

from finchan.trade.sweeps import (
    deflated_sharpe_ratio,
    expected_max_sharpe,
    pbo_cscv,
    sharpe_per_period,
)

# mean 0.005, deviations +-0.015: skew 0, raw kurtosis 1, Sharpe 0.005 / sqrt(0.0003) = 1 / (2 sqrt 3)
SYMMETRIC = [0.02, -0.01, 0.02, -0.01]


def test_one_trial_dsr_is_the_probabilistic_sharpe_ratio_by_hand() -> None:
    out = deflated_sharpe_ratio(SYMMETRIC, [sharpe_per_period(SYMMETRIC)])
    assert out["sharpe"] == pytest.approx(1 / (2 * math.sqrt(3)))
    assert out["skew"] == pytest.approx(0.0, abs=1e-12)
    assert out["kurtosis"] == pytest.approx(1.0)
    assert out["sr0"] == 0.0 and out["trials"] == 1 and out["periods"] == 4
    # (SR - 0) * sqrt(T - 1) / sqrt(1 - 0 + (1 - 1) / 4 * SR^2) = 1 / (2 sqrt 3) * sqrt 3 = 0.5
    assert out["dsr"] == pytest.approx(0.6914624612740131)  # Phi(0.5)


def test_expected_max_sharpe_of_two_trials_by_hand() -> None:
    # N = 2: Z(1 - 1/2) = 0, so E[max] = sqrt(V) * g * Z(1 - 1/(2e)); Z(0.8160602794) = 0.9004 (table)
    assert expected_max_sharpe(4.0, 2) == pytest.approx(2 * 0.5772156649 * 0.90040, rel=1e-4)
    assert expected_max_sharpe(4.0, 1) == 0.0


def _dsr_scipy(best: np.ndarray, sharpes: np.ndarray) -> float:
    """Bailey and López de Prado (2014) written out again with scipy.stats."""
    sr = best.mean() / best.std(ddof=1)
    n_trials = len(sharpes)
    var = np.var(sharpes, ddof=1)
    gamma = np.euler_gamma
    sr0 = math.sqrt(var) * ((1 - gamma) * sps.norm.ppf(1 - 1 / n_trials)
                            + gamma * sps.norm.ppf(1 - 1 / (n_trials * math.e)))
    g3 = sps.skew(best)
    g4 = sps.kurtosis(best, fisher=False)
    z = (sr - sr0) * math.sqrt(len(best) - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)
    return float(sps.norm.cdf(z))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_dsr_equals_an_independent_scipy_implementation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    trials = rng.standard_t(5, size=(500, 30)) * 0.01 + rng.normal(0.0005, 0.0005, 30)
    sharpes = np.array([sharpe_per_period(trials[:, j]) for j in range(30)])
    best = trials[:, int(np.argmax(sharpes))]
    out = deflated_sharpe_ratio(best, sharpes)
    assert out["dsr"] == pytest.approx(_dsr_scipy(best, sharpes), rel=1e-9, abs=1e-12)
    assert out["skew"] == pytest.approx(sps.skew(best))
    assert out["kurtosis"] == pytest.approx(sps.kurtosis(best, fisher=False))


def test_pbo_is_one_when_the_in_sample_best_always_loses_out_of_sample() -> None:
    # two blocks of two periods; A is best in block 0 and worst in block 1, B the reverse
    a = [0.03, 0.01, -0.01, 0.0]  # block Sharpes: 0.02/0.01414 = 1.41; -0.005/0.00707 = -0.71
    b = [0.01, 0.0, 0.02, 0.01]  # 0.005/0.00707 = 0.71; 0.015/0.00707 = 2.12
    out = pbo_cscv(np.column_stack([a, b]), blocks=2)
    # each split: the IS best ranks 1 of 2 out of sample: w = 1/3, logit = log(1/2)
    assert out["splits"] == 2
    assert out["logits"] == pytest.approx([math.log(0.5), math.log(0.5)])
    assert out["pbo"] == 1.0


def test_pbo_is_zero_when_the_in_sample_best_always_wins_out_of_sample() -> None:
    a = [0.03, 0.01, 0.02, 0.03]
    b = [0.01, 0.0, -0.01, 0.0]
    out = pbo_cscv(np.column_stack([a, b]), blocks=2)
    assert out["logits"] == pytest.approx([math.log(2.0), math.log(2.0)])  # w = 2/3
    assert out["pbo"] == 0.0


def _pbo_loops(matrix: np.ndarray, blocks: int) -> float:
    """CSCV written with plain loops and the statistics module."""
    t, n = matrix.shape
    size = t // blocks
    rows = matrix[t - size * blocks:]
    parts = [rows[i * size:(i + 1) * size] for i in range(blocks)]
    below = 0
    splits = list(itertools.combinations(range(blocks), blocks // 2))
    for chosen in splits:
        ins = np.vstack([parts[i] for i in chosen])
        outs = np.vstack([parts[i] for i in range(blocks) if i not in chosen])
        sr_in = [statistics.mean(ins[:, j]) / statistics.stdev(ins[:, j]) for j in range(n)]
        sr_out = [statistics.mean(outs[:, j]) / statistics.stdev(outs[:, j]) for j in range(n)]
        best = sr_in.index(max(sr_in))
        rank = sum(1 for v in sr_out if v < sr_out[best]) + 1
        w = rank / (n + 1)
        below += math.log(w / (1 - w)) <= 0
    return below / len(splits)


def test_pbo_equals_a_loop_implementation_on_random_trials() -> None:
    rng = np.random.default_rng(11)
    matrix = rng.normal(0.0, 0.01, size=(203, 7))  # 3 leading rows dropped for 8 blocks of 25
    out = pbo_cscv(matrix, blocks=8)
    assert out["splits"] == 70
    assert out["pbo"] == pytest.approx(_pbo_loops(matrix, 8))


def test_pbo_refuses_an_odd_number_of_blocks() -> None:
    with pytest.raises(ValueError, match="even number"):
        pbo_cscv(np.zeros((10, 2)), blocks=3)
