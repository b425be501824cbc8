"""The chapter's four exercises, answered by computation (numstab.lab.exercises)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from numstab import lab, theory
from numstab.lab.exercises import SAME_ACCURACY, equal_start, product_bounds, tied_units


def test_conv_channels_and_attention_heads_stay_tied_under_constant_init_only():
    units = tied_units(steps=30)
    assert [(u.layer, u.init) for u in units] == [
        ("conv channels", "constant"), ("conv channels", "random"),
        ("attention heads", "constant"), ("attention heads", "random"),
    ]
    # the argument is exact (equal parameters, equal gradients), so no tolerance: bit for bit 0.0
    assert [u.difference == 0.0 for u in units] == [True, False, True, False]
    assert min(units[1].difference, units[3].difference) > 0.1  # random init: far apart


def test_regression_from_equal_weights_reaches_the_accuracy_of_a_random_start():
    linear, softmax = equal_start(steps=100)
    for e in (linear, softmax):
        assert abs(e.equal_accuracy - e.random_accuracy) <= SAME_ACCURACY
        assert e.equal_accuracy > 0.85  # ten classes: chance is 0.1
        assert e.columns_differ > 0.01  # the labels broke the tie between the classes' weights


def test_singular_values_of_a_product_stay_within_the_bounds_and_spread_at_the_lyapunov_rates():
    b = product_bounds(trials=50, factors=200)
    assert b.violations == 0 and b.lower_ratio >= 1.0 and b.upper_ratio <= 1.0
    assert np.all(np.abs(b.lyapunov - b.lyapunov_theory) < 4 * b.lyapunov_stderr + 0.02)
    assert b.orthogonal_condition == pytest.approx(1.0, abs=1e-9)  # orthogonal factors: kappa = 1
    assert b.log10_condition > 20  # Gaussian factors: (lambda_1 - lambda_4) * 200 / ln 10 ~ 104


def test_the_lyapunov_spectrum_closed_forms():
    # k = 1: E ln|s z| = ln s - (gamma + ln 2) / 2 for z ~ N(0, 1)
    gamma = 0.5772156649015329
    assert theory.lyapunov_spectrum(1, 2.0)[0] == pytest.approx(math.log(2.0) - (gamma + math.log(2)) / 2)
    spectrum = theory.lyapunov_spectrum(4, 0.5)
    assert spectrum[0] == pytest.approx(theory.lyapunov_exponent(4, 0.5), rel=1e-15)
    assert spectrum == sorted(spectrum, reverse=True)


def test_the_exercise_rows_agree_and_the_rules_can_disagree():
    r = lab.exercises(quick=True)
    rows = r.comparisons()
    assert [row.agreement for row in rows] == ["yes"] * 9
    assert rows[-1].quantity.startswith("4. LARS vs SGD") and "diverged" in rows[-1].measured
    tied = dataclasses.replace(r.tied[0], difference=1e-300)  # any gap under constant init disagrees
    assert dataclasses.replace(r, tied=(tied, *r.tied[1:])).comparisons()[0].agreement == "no"
    off = dataclasses.replace(r.bounds, lyapunov=r.bounds.lyapunov + 0.1)
    assert dataclasses.replace(r, bounds=off).comparisons()[7].agreement == "no"
    far = dataclasses.replace(r.regressions[0], random_accuracy=r.regressions[0].equal_accuracy - 0.05)
    assert dataclasses.replace(r, regressions=(far, r.regressions[1])).comparisons()[4].agreement == "no"
