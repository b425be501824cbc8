"""numstab.activations: closed-form derivatives against autograd, types preserved, Taylor check."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from numstab import activations
from numstab.errors import NumstabTypeError, UnknownNameError

CONTRACT_NAMES = [
    "identity", "relu", "leaky_relu", "sigmoid", "tanh", "scaled_sigmoid",
    "elu", "selu", "gelu", "silu", "softplus",
]

TORCH_REFERENCE = {
    "identity": lambda x: x,
    "relu": torch.relu,
    "leaky_relu": torch.nn.functional.leaky_relu,  # default slope 0.01
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "scaled_sigmoid": lambda x: 4 * torch.sigmoid(x) - 2,
    "elu": torch.nn.functional.elu,
    "selu": torch.nn.functional.selu,
    "gelu": torch.nn.functional.gelu,  # exact erf form
    "gelu_tanh": lambda x: torch.nn.functional.gelu(x, approximate="tanh"),
    "silu": torch.nn.functional.silu,
    "softplus": torch.nn.functional.softplus,
    "erf": torch.erf,
}


def test_registry_has_the_contract_names():
    assert set(CONTRACT_NAMES) <= set(activations.names())


@pytest.mark.parametrize("name", sorted(TORCH_REFERENCE))
def test_fn_matches_torch_reference(name):
    x = torch.linspace(-8, 8, 1601, dtype=torch.float64)
    torch.testing.assert_close(activations.get(name).fn(x), TORCH_REFERENCE[name](x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", activations.names())
def test_derivative_matches_autograd(name):
    # grid avoids the kink at exactly 0, where autograd picks a one-sided value by convention
    x = torch.linspace(-6, 6, 1200, dtype=torch.float64) + 1e-3
    act = activations.get(name)
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(act.fn(xg).sum(), xg)
    torch.testing.assert_close(act.derivative(x), grad, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", activations.names())
def test_numpy_and_torch_agree_and_keep_type(name):
    act = activations.get(name)
    x_np = np.linspace(-4, 4, 81)
    x_t = torch.from_numpy(x_np)
    for f in (act.fn, act.derivative):
        y_np, y_t = f(x_np), f(x_t)
        assert isinstance(y_np, np.ndarray) and isinstance(y_t, torch.Tensor)
        assert y_t.dtype == torch.float64
        np.testing.assert_allclose(y_np, y_t.numpy(), rtol=1e-12, atol=1e-14)


def test_float32_tensor_stays_float32():
    y = activations.get("gelu").derivative(torch.ones(3, dtype=torch.float32))
    assert y.dtype == torch.float32


@pytest.mark.parametrize(
    ("name", "identity_near_zero"),
    [("tanh", True), ("relu", True), ("sigmoid", False), ("scaled_sigmoid", True), ("identity", True),
     ("gelu", False), ("softplus", False)],
)
def test_taylor_verdicts_follow_the_chapter(name, identity_near_zero):
    assert activations.get(name).taylor().identity_near_zero is identity_near_zero


def test_taylor_values_in_closed_form():
    sig = activations.get("sigmoid").taylor()
    assert sig.f0 == 0.5 and math.isclose(sig.df0, 0.25, rel_tol=1e-12)
    relu = activations.get("relu").taylor()
    assert (relu.df0, relu.df0_left) == (1.0, 0.0)  # one-sided at the kink
    gelu = activations.get("gelu").taylor()
    assert math.isclose(gelu.df0, 0.5, rel_tol=1e-9)


def test_leaky_relu_slope_and_default():
    assert activations.get("leaky_relu").torch_param == 0.01
    act = activations.leaky_relu(0.2)
    assert float(act.fn(-1.0)) == -0.2 and float(act.derivative(-3.0)) == 0.2
    assert act.positively_homogeneous and act.kink_at_zero


def test_user_callable_torch_uses_autograd():
    act = activations.get(lambda x: x**3)
    np.testing.assert_allclose(act.derivative(np.array([2.0, -1.0])), [12.0, 3.0], rtol=1e-12)


def test_user_callable_numpy_only_uses_finite_differences():
    def numpy_only(x):
        return np.arctan(np.asarray(x))  # np.arctan on a tensor with requires_grad raises

    act = activations.get(numpy_only)
    x = np.linspace(-3, 3, 31)
    np.testing.assert_allclose(act.derivative(x), 1 / (1 + x**2), rtol=1e-9, atol=1e-10)


def test_unknown_name_lists_valid_ones():
    with pytest.raises(UnknownNameError, match="relu.*tanh"):
        activations.get("relu6")
    with pytest.raises(ValueError):
        activations.get("nope")


def test_non_callable_is_a_type_error():
    with pytest.raises(NumstabTypeError, match="activation"):
        activations.get(3.0)  # type: ignore[arg-type]


def test_tensor_only_callable_works_on_numpy():
    act = activations.get(torch.nn.functional.gelu)
    x = np.linspace(-3, 3, 13)
    y = act.fn(x)
    assert isinstance(y, np.ndarray)
    np.testing.assert_allclose(y, activations.get("gelu").fn(x), rtol=1e-12, atol=1e-15)
    expected = activations.get("gelu").derivative(x)
    np.testing.assert_allclose(act.derivative(x), expected, rtol=1e-9, atol=1e-12)
    module = activations.get(torch.nn.SiLU())
    np.testing.assert_allclose(module.fn(x), activations.get("silu").fn(x), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    ("name", "closed_form"),
    [
        ("sigmoid", lambda x: np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))) ** 2),
        ("scaled_sigmoid", lambda x: 4 * np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))) ** 2),
        ("tanh", lambda x: 4 * np.exp(-2 * np.abs(x)) / (1 + np.exp(-2 * np.abs(x))) ** 2),
    ],
)
def test_saturated_derivatives_are_tiny_not_zero(name, closed_form):
    # 1 - s with s rounding to 1 would give exactly 0 beyond |x| ~ 37 (sigmoid) or ~ 19 (tanh)
    x = np.array([-60.0, -40.0, 25.0, 40.0, 60.0])
    d = activations.get(name).derivative(x)
    assert np.all(d > 0)
    np.testing.assert_allclose(d, closed_form(x), rtol=1e-12)
