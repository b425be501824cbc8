"""numstab.probe.gemm: which layers are GEMM-like, their reduction dimensions, and the operand hooks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from numstab.probe.gemm import GemmCapture, gemm_layers, gemm_spec

transformers = pytest.importorskip("transformers")


def test_every_gemm_kind_with_its_reduction_dimensions():
    from transformers.pytorch_utils import Conv1D

    net = nn.ModuleDict({
        "fc": nn.Linear(4, 8), "conv1": nn.Conv1d(3, 5, 3), "conv2": nn.Conv2d(3, 5, 3),
        "conv3": nn.Conv3d(2, 2, 1), "hf": Conv1D(8, 4), "attn": nn.MultiheadAttention(8, 2),
        "norm": nn.LayerNorm(4), "emb": nn.Embedding(10, 4), "lstm": nn.LSTM(4, 4),
    })
    dims = {n: (s.kind, s.input_dim, s.weight_dim, s.grad_dim, s.called) for n, s in gemm_layers(net).items()}
    assert dims == {
        "fc": ("Linear", -1, 1, -1, True),
        "conv1": ("Conv1d", -2, 1, -2, True),
        "conv2": ("Conv2d", -3, 1, -3, True),
        "conv3": ("Conv3d", -4, 1, -4, True),
        "hf": ("Conv1D", -1, 0, -1, True),  # weight stored (in, out): the reduction runs along dim 0
        "attn": ("MultiheadAttention", -1, 1, None, True),
        "attn.out_proj": ("NonDynamicallyQuantizableLinear", -1, 1, None, False),
    }
    assert gemm_layers(net)["attn"].weight is net["attn"].in_proj_weight
    assert gemm_spec(nn.Linear(2, 2).to(torch.float64)) is not None


def run_capture(net: nn.Module, x: torch.Tensor) -> list[tuple[str, str, str, tuple[int, ...], int]]:
    seen = []

    def hook(kind: str):
        return lambda call, module, t, dim: seen.append((kind, call, module, tuple(t.shape), dim, t.clone()))

    with GemmCapture(net, gemm_layers(net), on_input=hook("in"), on_grad=hook("grad")):
        net(x).square().sum().backward()
    return seen


def test_capture_sees_inputs_and_the_gradient_before_an_inplace_op(generator):
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(inplace=True), nn.Linear(4, 2))
    x = torch.randn(5, 3, generator=generator)
    seen = run_capture(net, x)
    assert [(k, c, s) for k, c, _, s, _, _ in seen] == [
        ("in", "0", (5, 3)), ("in", "2", (5, 4)), ("grad", "2", (5, 2)), ("grad", "0", (5, 4))]
    # oracle: the gradient of the loss with respect to the first Linear's output, before the in-place ReLU
    h = nn.functional.linear(x, net[0].weight, net[0].bias).detach().requires_grad_(True)
    y = net[2](torch.relu(h))
    (expected,) = torch.autograd.grad(y.square().sum(), h)
    torch.testing.assert_close(seen[3][5], expected, rtol=0, atol=0)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())


def test_a_module_called_twice_gets_name_and_name_2(generator):
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.tanh(self.fc(x)))

    seen = run_capture(Twice(), torch.randn(2, 3, generator=generator))
    assert [(k, c, m) for k, c, m, *_ in seen] == [
        ("in", "fc", "fc"), ("in", "fc#2", "fc"), ("grad", "fc#2", "fc"), ("grad", "fc", "fc")]


def test_conv_operands_are_blocked_along_channels_and_mha_has_no_gradient(generator):
    seen = run_capture(nn.Conv2d(3, 4, 3), torch.randn(2, 3, 6, 6, generator=generator))
    assert [(k, s, d) for k, _, _, s, d, _ in seen] == [("in", (2, 3, 6, 6), -3), ("grad", (2, 4, 4, 4), -3)]
    mha = nn.MultiheadAttention(8, 2)
    q = torch.randn(5, 2, 8, generator=generator)
    out = []
    record = out.append
    with GemmCapture(mha, gemm_layers(mha), on_input=lambda *a: record(a[:2]), on_grad=lambda *a: record(a)):
        mha(q, q, q)[0].sum().backward()
    assert out == [("", "")]  # the query of the fused projections; no output gradient is observable
