"""numstab.probe.inputs: what each dense/conv or normalization layer reads, per call, with every hook
removed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from numstab.probe.inputs import InputMoments


class _Twice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4, bias=False)
        self.norm = nn.LayerNorm(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(self.norm(x) + self.lin(x))


def test_each_call_records_the_second_moment_of_what_it_reads() -> None:
    model = _Twice()
    with torch.no_grad():
        model.lin.weight.copy_(torch.eye(4))
    x = torch.tensor([[1.0, -1.0, 3.0, -3.0]])  # E[x²] = 5; LayerNorm's output has E = 5 / (5 + eps)
    with InputMoments(model) as moments:
        model(x)
    assert set(moments.values) == {"lin", "norm", "lin#2"}  # normalizations are recorded too
    assert moments.values["lin"] == pytest.approx(5.0, rel=1e-12)
    assert moments.values["norm"] == pytest.approx(5.0, rel=1e-12)
    # the second call reads norm(x) + x: the residual sum, not the norm's output
    expected = float(((x / torch.sqrt(torch.tensor(5.0 + 1e-5)) + x) ** 2).mean())
    assert moments.values["lin#2"] == pytest.approx(expected, rel=1e-6)


def test_hooks_are_removed_also_when_the_model_raises() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(3, 3))
    with pytest.raises(RuntimeError), InputMoments(model):
        model(torch.ones(2, 4))
    assert all(not m._forward_pre_hooks for m in model)


class _Reduction(nn.Module):
    """A conv whose output, reshaped, goes straight into a LayerNorm (Segformer's sequence reduction), and a
    Linear whose output is added to its input before the next LayerNorm (a residual branch)."""

    def __init__(self) -> None:
        super().__init__()
        self.sr, self.sr_norm = nn.Conv1d(4, 4, 1), nn.LayerNorm(4)
        self.fc, self.norm = nn.Linear(4, 4), nn.LayerNorm(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.sr_norm(self.sr(x.transpose(1, 2)).transpose(1, 2))
        return self.norm(h + self.fc(h))


def test_a_layer_read_as_is_by_the_next_normalization_is_told_from_a_residual_branch() -> None:
    model = _Reduction()
    with InputMoments(model) as moments:
        model(torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(0)))
    assert moments.feeds_norm == {"sr"}
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
