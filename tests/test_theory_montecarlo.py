"""Mean-field predictions against Monte Carlo in torch: wide random networks at initialization.

Width 1000, float64, fixed seeds; sample counts and tolerances are stated in each test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from numstab import activations, theory

WIDTH = 1000
DEPTH = 20


def _layer(width: int, weight_std: float, bias_std: float, gen: torch.Generator):
    # drawn in float32 (5x faster than float64 draws on CPU), propagated in float64
    w = torch.randn(width, width, generator=gen).double() * (weight_std / math.sqrt(width))
    b = torch.randn(width, generator=gen).double() * bias_std
    return w, b


def _predicted_variances(name, weight_std, bias_std, q0, depth):
    q = [q0]
    for _ in range(depth):
        q.append(theory.variance_map(name, weight_std, bias_std, q[-1]))
    return np.array(q)


def _measured_variances(name, weight_std, bias_std, q0, gen, *, networks: int, inputs: int):
    """Mean of h_l^2 over units, inputs and independent networks, for l = 0..DEPTH."""
    act = activations.get(name)
    total = np.zeros(DEPTH + 1)
    for _ in range(networks):
        h = torch.randn(inputs, WIDTH, generator=gen, dtype=torch.float64) * math.sqrt(q0)
        total[0] += float(h.pow(2).mean())
        for layer in range(1, DEPTH + 1):
            w, b = _layer(WIDTH, weight_std, bias_std, gen)
            h = act.fn(h) @ w.T + b
            total[layer] += float(h.pow(2).mean())
    return total / networks


@pytest.mark.parametrize(
    ("name", "weight_std", "bias_std", "q0", "networks", "inputs"),
    [
        ("tanh", 1.1, 0.3, 2.0, 6, 16),  # ordered
        ("tanh", 1.5, 0.3, 2.0, 6, 16),  # chaotic: inputs decorrelate, so inputs average too
        ("relu", 1.0, 0.5, 1.0, 16, 2),  # inputs correlate (shared bias, relu's mean): average networks
    ],
)
def test_pre_activation_variance_follows_the_variance_map(name, weight_std, bias_std, q0, networks, inputs):
    # width 1000; one network's q_l fluctuates by several % per layer (sqrt(2 / 1000) = 4.5% from the
    # weights alone), so q_l is averaged over independent networks and inputs; every layer within 5%
    gen = torch.Generator().manual_seed(1)
    measured = _measured_variances(name, weight_std, bias_std, q0, gen, networks=networks, inputs=inputs)
    predicted = _predicted_variances(name, weight_std, bias_std, q0, DEPTH)
    np.testing.assert_allclose(measured[1:], predicted[1:], rtol=0.05)


def _gradient_ratio(name, weight_std, bias_std, q0, gen):
    """||dL/dh_0||^2 / ||dL/dh_L||^2 over 16 inputs, with dL/dh_L ~ N(0, 1)."""
    act = activations.get(name)
    h0 = (torch.randn(16, WIDTH, generator=gen, dtype=torch.float64) * math.sqrt(q0)).requires_grad_(True)
    h = h0
    for _ in range(DEPTH):
        w, b = _layer(WIDTH, weight_std, bias_std, gen)
        h = act.fn(h) @ w.T + b
    top = torch.randn(h.shape, generator=gen, dtype=torch.float64)
    (grad,) = torch.autograd.grad((h * top).sum(), h0)
    return float(grad.pow(2).sum() / top.pow(2).sum())


@pytest.mark.parametrize(
    ("name", "weight_std"),
    [("tanh", 1.0), ("tanh", 1.33), ("tanh", 1.8), ("relu", 1.2), ("relu", 2**0.5), ("relu", 1.6)],
)
def test_gradient_norm_ratio_after_20_layers_is_chi1_to_the_20(name, weight_std):
    # inputs at the variance fixed point (q0 = 1 for relu, whose chi_1 does not depend on q);
    # one network of width 1000, 16 inputs; within a factor 1.5 of chi_1^20
    bias_std = 0.05**0.5 if name == "tanh" else 0.0
    q0 = theory.fixed_point(name, weight_std, bias_std) if name == "tanh" else 1.0
    gen = torch.Generator().manual_seed(2)
    measured = _gradient_ratio(name, weight_std, bias_std, q0, gen)
    predicted = theory.predict_gradient_norms(name, weight_std, bias_std, DEPTH)[-1]
    assert predicted / 1.5 <= measured <= predicted * 1.5, (measured, predicted)
