"""numstab.probe.hooks: what is measured, per-call names, nested outputs, hooks always removed."""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from numstab.instrument import float_tensors
from numstab.probe.hooks import Capture, is_activation, measured_modules, owns_parameters


def _hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_measured_modules_are_parameter_owners_and_activations() -> None:
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Dropout(), nn.Sequential(nn.LayerNorm(2), nn.GELU()))
    assert sorted(measured_modules(net).values()) == ["0", "1", "3.0", "3.1"]
    assert is_activation(nn.Softplus()) and not is_activation(nn.MultiheadAttention(4, 2))
    assert owns_parameters(nn.MultiheadAttention(4, 2))


def test_capture_removes_every_hook_also_when_the_forward_raises() -> None:
    net = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(4, 1))
    with pytest.raises(RuntimeError):
        with Capture(net) as cap:
            net(torch.ones(2, 3))
    assert _hook_count(net) == 0
    assert cap.stack[-1] == "2"  # the innermost module whose forward was running


def test_calls_are_named_per_call_and_counted_in_finish_order() -> None:
    lin = nn.Linear(2, 2)
    net = nn.Sequential(lin, nn.Tanh(), lin)
    with Capture(net) as cap:
        net(torch.ones(1, 2)).sum().backward()
    assert [r.name for r in cap.records] == ["0", "1", "0#2"]
    assert [r.call for r in cap.records] == [1, 1, 2]
    assert all(r.grad is not None and r.grad.count == 2 for r in cap.records)


def test_gradient_statistics_come_from_tensor_hooks_and_survive_in_place_relu() -> None:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        lin = nn.Linear(4, 4)
    for inplace in (True, False):
        net = nn.Sequential(lin, nn.ReLU(inplace=inplace))
        x = torch.randn(8, 4, generator=torch.Generator().manual_seed(1))
        with Capture(net) as cap:
            out = net(x)
            out.backward(torch.ones_like(out))
        pre = lin(x).detach()
        relu_grad = (pre > 0).double()  # d sum(relu(h)) / d h
        assert cap.records[0].grad.second_moment == pytest.approx(float(relu_grad.square().mean()), rel=1e-12)
        assert cap.records[1].grad.second_moment == 1.0 and cap.records[1].grad.std == 0.0
        assert cap.records[0].forward.mean == pytest.approx(float(pre.double().mean()), rel=1e-6)


Pair = namedtuple("Pair", "a b")


@dataclass
class _Box:
    value: torch.Tensor
    label: str


def test_float_tensors_walks_nested_outputs_once_each() -> None:
    t = torch.ones(2)
    out = {"x": Pair(t, [torch.zeros(1), t]), "y": _Box(torch.full((3,), 2.0), "z"), "i": torch.arange(2)}
    assert [x.tolist() for x in float_tensors(out)] == [[1.0, 1.0], [0.0], [2.0, 2.0, 2.0]]


def test_units_are_channels_after_convolutions_and_features_otherwise() -> None:
    net = nn.Sequential(nn.Conv1d(2, 5, 3), nn.ReLU(), nn.Flatten(), nn.Linear(5 * 4, 3), nn.ReLU())
    with Capture(net) as cap:
        net(torch.randn(7, 2, 6, generator=torch.Generator().manual_seed(0)))
    assert [(r.name, r.units) for r in cap.records] == [("0", 5), ("1", 5), ("3", 3), ("4", 3)]


def test_no_tensor_hook_is_left_on_the_callers_inputs() -> None:
    from numstab.probe import diagnose

    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0)).requires_grad_()
    diagnose(nn.Sequential(nn.Linear(3, 3), nn.Tanh()), x)
    assert not x._backward_hooks  # the input-gradient probe was removed with the rest
    assert x.grad is None
