"""numstab.probe.analytic: torch modules map to registered activations; predictions vs Monte Carlo."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from numstab.probe import diagnose
from numstab.probe.analytic import activation_of


@pytest.mark.parametrize(("module", "name"), [
    (nn.ReLU(), "relu"), (nn.Tanh(), "tanh"), (nn.Sigmoid(), "sigmoid"), (nn.GELU(), "gelu"),
    (nn.GELU(approximate="tanh"), "gelu_tanh"), (nn.SiLU(), "silu"), (nn.SELU(), "selu"),
    (nn.LeakyReLU(0.2), "leaky_relu(0.2)"), (nn.ELU(), "elu"), (nn.Softplus(), "softplus"),
])
def test_activation_modules_map_to_the_registry(module: nn.Module, name: str) -> None:
    act = activation_of(module)
    assert act is not None and act.name == name
    x = torch.linspace(-3, 3, 13)
    torch.testing.assert_close(act.fn(x), module(x), rtol=1e-6, atol=1e-6)


def test_modules_the_theory_does_not_cover_map_to_none() -> None:
    assert activation_of(nn.Softmax(dim=1)) is None and activation_of(nn.Softplus(beta=2)) is None


def test_tanh_stack_prediction_matches_a_wide_monte_carlo() -> None:
    # Poole et al. 2016 at sigma_w = 1.5, sigma_b = 0.3: the prediction of each layer's E[h²] from the
    # previous layer's measured one, against a width-2048 network (1024 samples): within 5%.
    g = torch.Generator().manual_seed(0)
    width, sw, sb = 2048, 1.5, 0.3
    layers: list[nn.Module] = []
    for _ in range(4):
        lin = nn.Linear(width, width)
        nn.init.normal_(lin.weight, std=sw / math.sqrt(width), generator=g)
        nn.init.normal_(lin.bias, std=sb, generator=g)
        layers += [lin, nn.Tanh()]
    report = diagnose(nn.Sequential(*layers), torch.randn(256, width, generator=g))
    dense = [la for la in report.layers if la.kind == "Linear"][1:]
    assert len(dense) == 3
    for la in dense:
        assert la.theory_second_moment == pytest.approx(la.activation_second_moment, rel=0.05)
        assert la.theory_grad_factor == pytest.approx(la.measured_grad_factor, rel=0.1)
