"""Fused norms: exact at the extremes of float32, every inf/NaN caught, float64 oracle elsewhere."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from numstab.monitor import GradientMonitor
from numstab.monitor.norms import exact_norms, fast_norms, group_norms, needs_exact


def _monitored_step(net: nn.Module, fill: dict[str, torch.Tensor]) -> object:
    """Run a backward, overwrite the gradients with ``fill`` and return the monitor's stats."""
    with GradientMonitor(net, group_by="parameter") as monitor:
        net(torch.ones(2, net[0].in_features)).sum().backward()
        with torch.no_grad():
            for name, p in net.named_parameters():
                p.grad.copy_(fill[name])
        return monitor.step()


def test_torch_float32_norm_fails_at_the_extremes() -> None:
    # the problem the monitor solves, as measured: squares under/overflow float32
    assert torch.linalg.vector_norm(torch.full((10,), 1e-23)).item() == 0.0
    assert torch.linalg.vector_norm(torch.full((10,), 1e19)).item() == math.inf


@pytest.mark.parametrize("value", [1e-30, 1e-23, 1e19, 1e25, 3e38])
def test_extreme_finite_gradients_have_true_norms_and_no_alarm(value: float) -> None:
    net = nn.Sequential(nn.Linear(4, 3))
    fill = {n: torch.full_like(p, value) for n, p in net.named_parameters()}
    stats = _monitored_step(net, fill)
    v32 = float(np.float32(value))  # the float32 entry actually stored
    # closed form: n equal entries v have norm sqrt(n) * v
    assert stats.layer_norms["0.weight"] == pytest.approx(math.sqrt(12) * v32, rel=1e-6)
    assert stats.layer_norms["0.bias"] == pytest.approx(math.sqrt(3) * v32, rel=1e-6)
    assert stats.global_norm == pytest.approx(math.sqrt(15) * v32, rel=1e-6)
    assert not stats.nonfinite and stats.culprits == ()
    # no non-finite alarm; tiny gradients are (rightly) a vanishing event, under the 1e-8 default
    assert [e.kind for e in stats.events] == (["vanishing"] if value < 1e-8 else [])


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
@pytest.mark.parametrize("where", [0, 5, 11])
@pytest.mark.parametrize("background", [1e-30, 1.0, 1e25])
def test_single_non_finite_element_is_always_caught(bad: float, where: int, background: float) -> None:
    net = nn.Sequential(nn.Linear(4, 3))
    fill = {n: torch.full_like(p, background) for n, p in net.named_parameters()}
    fill["0.weight"].view(-1)[where] = bad
    stats = _monitored_step(net, fill)
    assert stats.nonfinite and stats.culprits == ("0.weight",)
    assert not math.isfinite(stats.global_norm) and math.isfinite(stats.layer_norms["0.bias"])


@settings(max_examples=60, deadline=None)
@given(
    exponents=st.lists(st.integers(-44, 37), min_size=1, max_size=6),
    size=st.integers(1, 300),
)
def test_norms_match_float64_oracle_at_any_magnitude(exponents: list[int], size: int) -> None:
    grads = [torch.full((size,), 10.0**e, dtype=torch.float32) for e in exponents]
    fast = fast_norms(grads).numpy().astype(np.float64)
    redo = needs_exact(fast.tolist())
    if redo:
        fast[redo] = exact_norms([grads[i] for i in redo]).numpy()
    oracle = [math.sqrt(size) * float(np.float32(10.0**e)) for e in exponents]
    np.testing.assert_allclose(fast, oracle, rtol=1e-6)


def test_fast_norms_match_float64_on_ordinary_gradients(generator: torch.Generator) -> None:
    grads = [torch.randn(s, generator=generator) * 10.0 ** (i - 3) for i, s in enumerate([7, 300, 4096, 1])]
    oracle = [torch.linalg.vector_norm(g.double()).item() for g in grads]
    assert needs_exact(fast_norms(grads).tolist()) == []
    np.testing.assert_allclose(fast_norms(grads).numpy(), oracle, rtol=1e-6)


def test_group_norms_sum_squares_and_propagate_non_finite() -> None:
    layer, total = group_norms(np.array([3.0, 4.0, 5.0, 12.0]), np.array([0, 0, 1, 1]), 3)
    assert layer.tolist() == [5.0, 13.0, 0.0] and total == math.sqrt(194.0)
    layer, total = group_norms(np.array([1.0, math.nan, 2.0]), np.array([0, 1, 1]), 2)
    assert layer[0] == 1.0 and math.isnan(layer[1]) and math.isnan(total)


@pytest.mark.parametrize("value", [1e-30, 1e25])
def test_large_constant_gradients_are_exact(value: float) -> None:
    # equal entries are the worst case of float32 accumulation (1.4e-4 relative at this size); the extremes
    # go through the float64 recheck, which the closed form sqrt(n) * v checks to 1e-12
    net = nn.Sequential(nn.Linear(512, 512))
    fill = {n: torch.full_like(p, value) for n, p in net.named_parameters()}
    stats = _monitored_step(net, fill)
    v32 = float(np.float32(value))
    assert stats.layer_norms["0.weight"] == pytest.approx(512 * v32, rel=1e-12)
    assert stats.global_norm == pytest.approx(math.sqrt(512 * 513) * v32, rel=1e-12)


def test_exact_norms_chunked_equals_unchunked(generator: torch.Generator) -> None:
    g = torch.randn(10_001, generator=generator) * 1e-30
    whole = exact_norms([g]).item()
    assert exact_norms([g], chunk=1000).item() == pytest.approx(whole, rel=1e-14)
    assert whole == pytest.approx(torch.linalg.vector_norm(g.double()).item(), rel=1e-14)


def test_half_precision_gradients_beyond_float16_range_are_not_alarms() -> None:
    # 12 entries of 6e4 have norm 2.1e5 > float16's max 65504: a float16 norm says inf, the monitor must not
    net = nn.Sequential(nn.Linear(4, 3)).to(torch.float16)
    with GradientMonitor(net, group_by="parameter") as monitor:
        net(torch.ones(2, 4, dtype=torch.float16)).float().sum().backward()
        with torch.no_grad():
            net[0].weight.grad.fill_(6e4)
            net[0].bias.grad.zero_()
        stats = monitor.step()
    assert not stats.nonfinite and stats.layer_norms["0.bias"] == 0.0
    assert stats.layer_norms["0.weight"] == pytest.approx(math.sqrt(12) * float(np.float16(6e4)), rel=1e-12)


def test_monitor_layer_sums_equal_group_norms_bit_for_bit() -> None:
    # the monitor sums squares in plain floats; group_norms is the numpy statement of the same formula
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 2))
    net.add_module("unused", nn.Linear(2, 2))  # no gradient: left out of both
    with GradientMonitor(net) as monitor:
        net[:5](torch.randn(3, 4)).sum().backward()
        stats = monitor.step()
    used = [(n, p) for n, p in net.named_parameters() if p.grad is not None]
    norms = np.array([torch.linalg.vector_norm(p.grad).item() for _, p in used])
    layer, total = group_norms(norms, np.array([0, 0, 1, 1, 2, 2]), 3)
    assert list(stats.layer_norms.values()) == layer.tolist() and list(stats.layer_norms) == ["0", "2", "4"]
    assert stats.global_norm == pytest.approx(total, rel=1e-15)


@pytest.mark.parametrize("value", [1e200, 1e-200])
def test_float64_gradients_beyond_squaring_range_are_exact_and_not_alarms(value: float) -> None:
    # float64 squares leave the range above ~1.3e154 (and flush below ~1e-162): scaled by the largest entry
    model = nn.Linear(4, 3).double()
    with GradientMonitor(model) as monitor:
        model(torch.ones(2, 4, dtype=torch.float64)).sum().backward()
        for p in model.parameters():
            p.grad.fill_(value)
        stats = monitor.step()
    assert not stats.nonfinite and stats.culprits == ()
    # 12 weights + 3 biases
    assert stats.global_norm == pytest.approx(math.sqrt(15) * value, rel=1e-12, abs=0)
    assert stats.layer_norms["(root)"] == pytest.approx(math.sqrt(15) * value, rel=1e-12, abs=0)
