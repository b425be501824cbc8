"""numstab.theory.quadrature: Gaussian integrals against closed forms, exact across relu's kink."""

from __future__ import annotations

import math

import numpy as np
import pytest

from numstab import activations
from numstab.errors import BadInputError, InvalidArgumentError
from numstab.theory.quadrature import (
    bivariate_expectation,
    gaussian_expectation,
    half_line_rule,
    hermite_coefficients,
)


def arccos_kernel(c):
    """E[relu(u1) relu(u2)] for unit variances (Cho & Saul 2009)."""
    c = np.asarray(c, dtype=float)
    return (np.sqrt(1 - c * c) + (np.pi - np.arccos(c)) * c) / (2 * np.pi)


@pytest.mark.parametrize(
    ("power", "moment"), [(0, 1.0), (2, 1.0), (4, 3.0), (6, 15.0), (8, 105.0), (10, 945.0)]
)
def test_rule_integrates_gaussian_moments(power, moment):
    z, w = half_line_rule()
    assert float(w @ z**power) == pytest.approx(moment, rel=1e-13)


def test_closed_forms_over_an_array_of_variances():
    q = np.array([0.0, 1e-6, 0.3, 1.0, 7.0, 50.0])
    # cos(sqrt(50) z) oscillates fast: its exp(-25) is resolved to 1e-13 absolute, not relative
    np.testing.assert_allclose(gaussian_expectation(np.cos, q), np.exp(-q / 2), rtol=1e-13, atol=1e-13)
    expected_abs = np.sqrt(2 * q / np.pi)
    np.testing.assert_allclose(gaussian_expectation(np.abs, q), expected_abs, rtol=1e-13, atol=1e-15)
    relu = activations.get("relu")
    relu_sq = gaussian_expectation(lambda x: relu.fn(x) ** 2, q)
    np.testing.assert_allclose(relu_sq, q / 2, rtol=1e-13, atol=1e-300)


def test_relu_derivative_is_exact_where_odd_gauss_hermite_is_not():
    relu = activations.get("relu")
    ours = gaussian_expectation(lambda x: relu.derivative(x) ** 2, 1.0)
    assert ours == pytest.approx(0.5, abs=1e-15)
    # the trap the split avoids: an odd Gauss-Hermite rule has a node on the kink
    z, w = np.polynomial.hermite_e.hermegauss(21)
    naive = float(w @ relu.derivative(z) ** 2) / math.sqrt(2 * math.pi)
    assert abs(naive - 0.5) > 0.01


def test_scalar_in_scalar_out_and_shape_kept():
    assert isinstance(gaussian_expectation(np.cos, 1.0), float)
    assert gaussian_expectation(np.cos, np.ones((3, 2))).shape == (3, 2)


@pytest.mark.parametrize("c", [-1.0, -0.7, 0.0, 0.3, 0.9, 0.999, 1.0])
def test_relu_kernel_matches_the_arccos_kernel(c):
    relu = activations.get("relu")
    assert bivariate_expectation(relu.fn, relu.fn, 1.0, 1.0, c) == pytest.approx(arccos_kernel(c), abs=1e-14)


def test_erf_kernel_matches_williams_closed_form():
    # E[erf(u1) erf(u2)] = (2 / pi) arcsin(2 S12 / sqrt((1 + 2 S11)(1 + 2 S22)))  (Williams 1997)
    q1, q2 = 0.7, 2.5
    c = np.array([-0.8, -0.2, 0.0, 0.4, 0.95, 1.0])
    s12 = c * math.sqrt(q1 * q2)
    expected = 2 / np.pi * np.arcsin(2 * s12 / np.sqrt((1 + 2 * q1) * (1 + 2 * q2)))
    erf = activations.get("erf").fn
    # the default polar rule (24 x 24 nodes per panel / sector) is good to ~1e-11
    np.testing.assert_allclose(bivariate_expectation(erf, erf, q1, q2, c), expected, rtol=1e-11, atol=1e-15)


def test_mehler_series_reproduces_the_kernel_for_tanh():
    tanh = activations.get("tanh").fn
    a = hermite_coefficients(tanh, 2.0, order=96)
    for c in (0.0, 0.5, 0.9):
        series = float((a**2) @ c ** np.arange(96))
        assert series == pytest.approx(bivariate_expectation(tanh, tanh, 2.0, 2.0, c), abs=1e-12)


@pytest.mark.parametrize("q", [-1.0, math.nan, math.inf])
def test_bad_variance_is_rejected_with_its_name(q):
    with pytest.raises(InvalidArgumentError, match=r"q must be finite and >= 0"):
        gaussian_expectation(np.cos, q)


def test_correlation_outside_unit_interval_is_rejected():
    with pytest.raises(InvalidArgumentError, match=r"c must be a correlation in \[-1, 1\], got 1.5"):
        bivariate_expectation(np.tanh, np.tanh, 1.0, 1.0, 1.5)


def test_function_returning_nan_is_reported_not_integrated():
    with pytest.raises(BadInputError, match="returned non-finite values"):
        gaussian_expectation(np.log, 1.0)  # log of negative nodes is NaN
