"""numstab.theory.meanfield: golden values from the papers, closed forms, convergence, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from numstab import activations, theory
from numstab.errors import (
    BadInputError,
    InvalidArgumentError,
    NoCriticalPointError,
    NumstabTypeError,
    UnknownNameError,
)

TANH_BIAS = 0.05**0.5  # Schoenholz et al. 2017 use sigma_b^2 = 0.05


# ---------------------------------------------------------------------------------------------
# Golden values.


def test_relu_is_critical_at_sqrt2_for_any_bias():
    assert theory.critical_weight_std("relu") == pytest.approx(1.4142135623730951, abs=1e-12)
    for bias_std in (0.0, 0.1, 1.0, 3.0):
        assert theory.chi1("relu", 1.4142135623730951, bias_std) == pytest.approx(1.0, abs=1e-9)
        assert theory.critical_weight_std("relu", bias_std) == pytest.approx(1.4142135623730951, abs=1e-12)


@pytest.mark.parametrize("slope", [0.01, 0.2, 0.5])
def test_leaky_relu_critical_weight_std(slope):
    act = activations.leaky_relu(slope)
    assert theory.critical_weight_std(act) == pytest.approx(math.sqrt(2 / (1 + slope**2)), abs=1e-12)


def test_tanh_without_bias_is_critical_at_one_with_q_star_zero():
    assert theory.critical_weight_std("tanh", 0.0) == pytest.approx(1.0, abs=1e-6)
    assert theory.fixed_point("tanh", 1.0, 0.0) == 0.0
    assert theory.fixed_point("tanh", 0.9, 0.0) == 0.0


def test_tanh_critical_point_at_schoenholz_bias():
    sigma_w = theory.critical_weight_std("tanh", TANH_BIAS)
    assert sigma_w**2 == pytest.approx(1.761, abs=2e-3)
    assert theory.fixed_point("tanh", sigma_w, TANH_BIAS) == pytest.approx(0.570, abs=1e-3)
    assert theory.chi1("tanh", sigma_w, TANH_BIAS) == pytest.approx(1.0, abs=1e-9)


def test_tanh_ordered_point_chi1_and_depth_scale():
    # reference values for tanh at sigma_w^2 = 1.5, sigma_b^2 = 0.05 (Schoenholz et al. 2017's setting):
    # chi_1 = 0.9386, xi_c = 15.8; independently, in the ordered phase c* = 1 and chi_c(c*) = chi_1, so
    # their xi_c = -1 / ln chi_c(c*) must equal -1 / ln chi_1
    chi = theory.chi1("tanh", 1.5**0.5, TANH_BIAS)
    _, xi_c = theory.depth_scales("tanh", 1.5**0.5, TANH_BIAS)
    assert chi == pytest.approx(0.9386, abs=1e-4)
    assert xi_c == pytest.approx(15.8, abs=0.05)
    assert xi_c == pytest.approx(-1 / math.log(chi), rel=1e-9)
    assert theory.trainable_depth("tanh", 1.5**0.5, TANH_BIAS) == pytest.approx(6 * xi_c, rel=1e-15)


def test_relu_correlation_map_is_the_arccos_kernel():
    c = np.array([-0.9, -0.3, 0.0, 0.25, 0.6, 0.99, 1.0])
    expected = (np.sqrt(1 - c**2) + (np.pi - np.arccos(c)) * c) / np.pi
    np.testing.assert_allclose(theory.correlation_map("relu", 2**0.5, 0.0, c), expected, atol=1e-12)
    assert theory.correlation_map("relu", 2**0.5, 0.0, 0.0) == pytest.approx(1 / math.pi, abs=1e-12)
    assert theory.chi_c("relu", 2**0.5, 0.0, 1.0) == pytest.approx(1.0, abs=1e-12)  # slope 1 at c = 1


def test_homogeneous_closed_forms_hold_where_q_star_diverges():
    assert theory.fixed_point("relu", 2.0, 0.1) == math.inf
    assert theory.chi1("relu", 2.0, 0.1) == pytest.approx(2.0, abs=1e-12)
    assert theory.fixed_point("relu", 1.0, 0.3) == pytest.approx(0.09 / 0.5, rel=1e-14)  # b2 / (1 - w2 / 2)
    assert theory.depth_scales("relu", 2.0, 0.1) == (math.inf, math.inf)


def test_identity_chi1_is_weight_variance():
    assert theory.chi1("identity", 0.7, 0.2) == pytest.approx(0.49, abs=1e-14)


# ---------------------------------------------------------------------------------------------
# Consistency and convergence.


@pytest.mark.parametrize("name", ["tanh", "gelu", "selu", "erf", "softplus"])
def test_fixed_point_is_a_fixed_point(name):
    q = theory.fixed_point(name, 1.1, 0.3)
    assert theory.variance_map(name, 1.1, 0.3, q) == pytest.approx(q, rel=1e-13)


def test_solver_is_robust_near_criticality_where_iteration_crawls():
    # tanh, sigma_b = 0: V(q) = w2 (q - 2 q^2 + ...), so q* ~ (w2 - 1) / (2 w2) -> 0 as w2 -> 1+
    for eps in (1e-3, 1e-5):
        w2 = 1.0 + 2 * eps
        q = theory.fixed_point("tanh", w2**0.5, 0.0)
        assert q == pytest.approx((w2 - 1) / (2 * w2), rel=1e-2)
        assert theory.variance_map("tanh", w2**0.5, 0.0, q) == pytest.approx(q, rel=1e-12)


@pytest.mark.parametrize("name", ["tanh", "relu", "gelu", "selu", "erf"])
@pytest.mark.parametrize(("weight_std", "bias_std"), [(0.8, 0.1), (1.2, 0.3), (2.0, 0.3)])
def test_doubling_the_nodes_changes_nothing(name, weight_std, bias_std):
    coarse, fine = theory.quadrature.DEFAULT_NODES, 2 * theory.quadrature.DEFAULT_NODES
    for fn in (theory.fixed_point, theory.chi1, lambda *a, **k: theory.depth_scales(*a, **k)[1]):
        a, b = fn(name, weight_std, bias_std, nodes=coarse), fn(name, weight_std, bias_std, nodes=fine)
        assert a == b if math.isinf(a) else abs(a - b) <= 1e-8 * max(1.0, abs(a))


def test_chi1_at_a_measured_variance():
    np.testing.assert_allclose(theory.chi1_at("relu", 1.2, [1e-4, 1.0, 1e4]), 0.72, rtol=1e-13)
    q = theory.fixed_point("tanh", 1.3, 0.2)
    assert theory.chi1_at("tanh", 1.3, q) == pytest.approx(theory.chi1("tanh", 1.3, 0.2), rel=1e-14)


def test_chi1_equals_chi_c_at_c_one():
    assert theory.chi_c("tanh", 1.3, 0.2, 1.0) == pytest.approx(theory.chi1("tanh", 1.3, 0.2), rel=1e-10)


def test_chaotic_correlation_fixed_point():
    c_star = theory.correlation_fixed_point("tanh", 2.0, TANH_BIAS)
    assert 0.0 < c_star < 1.0
    assert theory.correlation_map("tanh", 2.0, TANH_BIAS, c_star) == pytest.approx(c_star, abs=1e-12)
    assert theory.correlation_fixed_point("tanh", 2.0, 0.0) == 0.0  # odd f, no bias


def test_depth_scales_ordered_without_bias_are_closed_form():
    # tanh, sigma_w < 1, sigma_b = 0: q* = 0, both slopes are sigma_w^2
    xi_q, xi_c = theory.depth_scales("tanh", 0.5, 0.0)
    assert xi_q == pytest.approx(-1 / math.log(0.25), rel=1e-12)
    assert xi_c == pytest.approx(-1 / math.log(0.25), rel=1e-12)


def test_depth_scales_diverge_at_criticality():
    sigma_w = theory.critical_weight_std("tanh", TANH_BIAS)
    assert theory.depth_scales("tanh", sigma_w, TANH_BIAS)[1] == math.inf


def test_predict_gradient_norms_is_chi1_powers():
    norms = theory.predict_gradient_norms("tanh", 1.5**0.5, TANH_BIAS, 20)
    chi = theory.chi1("tanh", 1.5**0.5, TANH_BIAS)
    assert norms.shape == (21,) and norms[0] == 1.0
    np.testing.assert_allclose(norms, chi ** np.arange(21), rtol=1e-14)


def test_variance_map_accepts_arrays():
    q = np.array([0.5, 1.0, 2.0])
    np.testing.assert_allclose(theory.variance_map("relu", 1.0, 0.5, q), q / 2 + 0.25, rtol=1e-14)


def test_user_callable_is_called_on_float64_numpy():
    seen = []

    def f(x):
        seen.append((type(x), x.dtype))
        return np.tanh(x)

    assert theory.variance_map(f, 1.2, 0.1, 0.7) == pytest.approx(theory.variance_map("tanh", 1.2, 0.1, 0.7))
    assert set(seen) == {(np.ndarray, np.dtype("float64"))}


# ---------------------------------------------------------------------------------------------
# Bad input.


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf])
@pytest.mark.parametrize("arg", ["weight_std", "bias_std"])
def test_bad_std_names_the_argument(arg, bad):
    kwargs = {"weight_std": 1.0, "bias_std": 0.1, arg: bad}
    with pytest.raises(InvalidArgumentError, match=rf"{arg} must be a finite number >= 0, got"):
        theory.chi1("tanh", **kwargs)


def test_activation_returning_nan_is_an_error():
    with pytest.raises(BadInputError, match="non-finite"):
        theory.fixed_point(np.log, 1.0, 0.1)


def test_activation_not_callable_or_unknown():
    with pytest.raises(NumstabTypeError, match="activation must be a name or a callable"):
        theory.chi1(42, 1.0, 0.0)
    with pytest.raises(UnknownNameError, match="unknown activation 'tanhh': use one of"):
        theory.chi1("tanhh", 1.0, 0.0)


def test_depth_below_one_is_rejected():
    with pytest.raises(InvalidArgumentError, match="depth must be >= 1, got 0"):
        theory.predict_gradient_norms("tanh", 1.0, 0.0, 0)


def test_no_critical_point_is_an_error_naming_the_fix():
    # softplus: chi_1 reaches 1 only where q* diverges
    with pytest.raises(NoCriticalPointError, match=r"no critical weight_std at bias_std=0.1.*try"):
        theory.critical_weight_std("softplus", 0.1)
    assert issubclass(NoCriticalPointError, InvalidArgumentError)


def test_correlation_map_where_variance_diverges_is_an_error():
    with pytest.raises(InvalidArgumentError, match="variance diverges"):
        theory.correlation_map("gelu", 3.0, 0.1, 0.5)


def test_fixed_point_and_chi1_against_scipy_quad_oracle():
    # an independent oracle: adaptive quadrature (scipy.integrate.quad) and brentq on the scalar map
    from scipy import integrate, optimize

    def expect(g, q):
        return integrate.quad(lambda z: g(math.sqrt(q) * z) * math.exp(-z * z / 2) / math.sqrt(2 * math.pi),
                              -12, 12, epsabs=1e-14, epsrel=1e-13)[0]

    w2, b2 = 2.25, 0.04
    def gap(q):
        return w2 * expect(lambda x: math.tanh(x) ** 2, q) + b2 - q

    q_ref = optimize.brentq(gap, 0.05, 5, xtol=1e-15)
    chi_ref = w2 * expect(lambda x: (1 - math.tanh(x) ** 2) ** 2, q_ref)
    assert theory.fixed_point("tanh", 1.5, 0.2) == pytest.approx(q_ref, rel=1e-11)
    assert theory.chi1("tanh", 1.5, 0.2) == pytest.approx(chi_ref, rel=1e-11)
