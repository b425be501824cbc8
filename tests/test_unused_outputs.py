"""Tensor hooks on an output the loss never uses receive None (cuDNN's LSTM does this on a GPU).

Both capture paths — diagnose's statistics and locate_nonfinite's replay — must skip it, not crash.
"""

from __future__ import annotations

import torch
from torch import nn

import numstab
from numstab.monitor import locate_nonfinite


class _TwoOutputs(torch.autograd.Function):
    """y = 2x and z = 3x from one node; with materialize_grads off, an unused gradient stays None."""

    @staticmethod
    def forward(ctx, x):  # noqa: ANN001, ANN205
        ctx.set_materialize_grads(False)
        return 2 * x, 3 * x

    @staticmethod
    def backward(ctx, gy, gz):  # noqa: ANN001, ANN205
        return (0 if gy is None else 2 * gy) + (0 if gz is None else 3 * gz)


class _Split(nn.Module):
    """Owns a parameter, so diagnose measures it (and hooks both of its outputs)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return _TwoOutputs.apply(x * self.scale)


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.fc = nn.Linear(8, 8)
        with torch.no_grad():
            self.fc.weight.copy_(torch.randn(8, 8, generator=gen) / 8**0.5)
        self.split = _Split()
        self.head = nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        unused, used = self.split(self.fc(x))  # the first (main) output is the unused one
        return self.head(used)


def _inputs() -> torch.Tensor:
    return torch.randn(4, 8, generator=torch.Generator().manual_seed(1))


def test_diagnose_skips_a_none_gradient() -> None:
    report = numstab.diagnose(_Net(), _inputs(), loss_fn=lambda out: out.pow(2).mean())
    names = [layer.name for layer in report.layers]
    assert {"fc", "split", "head"} <= set(names)
    fc = report.layers[names.index("fc")]
    assert fc.grad_std is not None and fc.grad_std > 0 and not fc.nonfinite


def test_locate_nonfinite_skips_a_none_gradient() -> None:
    assert locate_nonfinite(_Net(), _inputs(), lambda out: out.pow(2).mean()) is None
