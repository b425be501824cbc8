"""DESIGN.md's contract details, checked as written (names, keys and values an acceptance check relies on)."""

from __future__ import annotations

import torch
from torch import nn

import numstab
from numstab import precision
from numstab.probe.stats import range_fractions


def test_diagnose_out_of_range_keys_are_the_formats_names() -> None:
    # DESIGN.md: "`out_of_range` keys are the `formats()` names" -- all six of them
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), nn.Tanh())
    report = numstab.diagnose(model, torch.randn(8, 4, generator=g))
    for layer in report.layers:
        assert list(layer.out_of_range) == list(precision.formats())


def test_float64_values_out_of_float32_range_are_counted_in_float32_only() -> None:
    # 1e39 > float32's max 3.4028235e38; 1e-46 < 2**-150 = 7.0e-46, half float32's smallest subnormal,
    # so it flushes; 1e-44 is a float32 subnormal and stays. float64 holds all of them.
    x = torch.tensor([1e39, 1e-46, 1e-44, 1.0], dtype=torch.float64)
    over, under, _ = range_fractions(x, ("float32", "float64"), max_abs=1e39)
    assert (over["float32"], under["float32"]) == (0.25, 0.25)
    assert (over["float64"], under["float64"]) == (0.0, 0.0)
    counts = precision.classify(x.numpy(), "float32")
    assert (counts["overflow"], counts["underflow"], counts["subnormal"]) == (1, 1, 1)


def test_float32_values_never_leave_float32_or_float64_range() -> None:
    # the float32/float64 thresholds round to inf in a float32 comparison: only inf and NaN count
    x = torch.tensor([3.4028235e38, 1.4e-45, float("inf"), float("nan"), 0.0])
    over, under, _ = range_fractions(x, ("float32", "float64"), max_abs=3.4028235e38)
    assert over == {"float32": 0.4, "float64": 0.4} and under == {"float32": 0.0, "float64": 0.0}
