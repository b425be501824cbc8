"""numstab.theory.products: Newman's Lyapunov exponent, its zero, and Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest

from numstab import theory
from numstab.errors import InvalidArgumentError


def test_golden_exponent_for_k4():
    assert theory.lyapunov_exponent(4, 1.0) == pytest.approx(0.5580, abs=1e-4)
    assert theory.lyapunov_exponent(4, 1.0) == pytest.approx(0.55797, abs=1e-5)


def test_critical_scale_for_k4_and_its_zero():
    s = theory.critical_scale(4)
    assert s == pytest.approx(0.572, abs=1e-3)
    assert theory.lyapunov_exponent(4, s) == pytest.approx(0.0, abs=1e-14)


def test_exponent_is_log_linear_in_scale():
    assert theory.lyapunov_exponent(10, 0.5) - theory.lyapunov_exponent(10, 1.0) == pytest.approx(
        math.log(0.5), abs=1e-14
    )


def test_large_k_tends_to_one_over_sqrt_k():
    # psi(k/2) ~ ln(k/2) - 1/k: the critical scale approaches 1 / sqrt(k)
    assert theory.critical_scale(10_000) * math.sqrt(10_000) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_monte_carlo_mean_log_growth_within_2_percent(scale):
    # 1000 products of 100 factors each, numpy seed 0
    est = theory.sample_log_growth(4, scale, steps=100, trials=1000, seed=0)
    exact = theory.lyapunov_exponent(4, scale)
    assert est.trials == 1000
    assert est.mean == pytest.approx(exact, rel=0.02)


def test_sampling_is_reproducible_by_seed():
    a = theory.sample_log_growth(4, 1.0, steps=10, trials=50, seed=3)
    b = theory.sample_log_growth(4, 1.0, steps=10, trials=50, seed=3)
    c = theory.sample_log_growth(4, 1.0, steps=10, trials=50, seed=4)
    assert a == b and a.mean != c.mean
    assert set(a.to_dict()) == {"k", "scale", "steps", "trials", "mean", "std_error", "seed"}


@pytest.mark.parametrize(
    ("k", "scale", "match"),
    [(0, 1.0, "k must be >= 1"), (4, 0.0, "scale must be"), (4, -1.0, "scale must be"),
     (4, math.nan, "scale must be")],
)
def test_bad_arguments_name_themselves(k, scale, match):
    with pytest.raises(InvalidArgumentError, match=match):
        theory.lyapunov_exponent(k, scale)


def test_chapter_experiment_explodes_like_the_exponent_says():
    # the chapter: 100 products of 4x4 N(0, 1) matrices; log of the entries ~ 100 * 0.558 = 55.8
    rng = np.random.default_rng(0)
    logs = []
    for _ in range(200):
        m = np.eye(4)
        for _ in range(100):
            m = m @ rng.normal(size=(4, 4))
        logs.append(math.log(np.linalg.norm(m, 2)))
    assert np.mean(logs) / 100 == pytest.approx(theory.lyapunov_exponent(4, 1.0), rel=0.03)
