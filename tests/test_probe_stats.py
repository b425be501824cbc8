"""numstab.probe.stats: float64 streaming statistics, exact where torch's float32 reductions are not."""

from __future__ import annotations

import math

import pytest
import torch

from numstab import precision
from numstab.probe.stats import (
    RANGE_FORMATS,
    dead_fraction,
    duplicate_rows,
    merge,
    range_fractions,
    summarize,
    unit_census,
    unit_rows,
)


def test_float32_norm_fails_at_the_extremes_that_summarize_gets_right() -> None:
    # The motivation, measured: torch squares float32 entries without rescaling.
    tiny = torch.full((1000,), 1e-23)
    huge = torch.full((1000,), 1e19)
    assert float(torch.linalg.vector_norm(tiny)) == 0.0
    assert math.isinf(float(torch.linalg.vector_norm(huge)))
    t, h = summarize(tiny), summarize(huge)
    f32_tiny, f32_huge = float(torch.tensor(1e-23)), float(torch.tensor(1e19))
    assert t.second_moment == pytest.approx(f32_tiny**2, rel=1e-12)
    assert h.second_moment == pytest.approx(f32_huge**2, rel=1e-12)
    assert h.nonfinite == 0 and math.isfinite(h.std)


def test_gradient_of_1e_minus_30_reads_1e_minus_30_and_1e25_is_finite() -> None:
    g = summarize(torch.tensor([1e-30, -1e-30]))
    assert g.std == pytest.approx(float(torch.tensor(1e-30)), rel=1e-12)
    big = summarize(torch.tensor([1e25, -1e25, 3e38]))
    assert big.nonfinite == 0
    assert big.max_abs == pytest.approx(3e38, rel=1e-6)


def test_float64_input_is_scaled_by_its_max_so_squares_do_not_overflow() -> None:
    s = summarize(torch.tensor([1e200, -1e200], dtype=torch.float64))
    assert s.std == pytest.approx(1e200, rel=1e-12)
    assert s.mean == 0.0 and s.nonfinite == 0
    assert s.second_moment == math.inf  # 1e400 itself has no float64; the std above stays exact


def test_moments_match_a_float64_oracle(generator: torch.Generator) -> None:
    x = torch.randn(3, 50, generator=generator) * 3 + 1.5
    s = summarize(x)
    ref = x.double()
    assert s.mean == pytest.approx(float(ref.mean()), rel=1e-12)
    assert s.std == pytest.approx(float(ref.std(correction=0)), rel=1e-12)
    assert s.second_moment == pytest.approx(float((ref**2).mean()), rel=1e-12)
    assert s.max_abs == float(ref.abs().max())


def test_nonfinite_entries_are_counted_apart_from_the_moments() -> None:
    s = summarize(torch.tensor([1.0, 3.0, float("nan"), float("inf"), -float("inf")]))
    assert (s.count, s.nonfinite, s.mean) == (5, 3, 2.0)
    assert s.std == pytest.approx(1.0, rel=1e-12)


def test_merge_equals_the_summary_of_the_concatenation(generator: torch.Generator) -> None:
    a = torch.randn(100, generator=generator) + 4.0
    b = torch.randn(37, generator=generator) * 0.1 - 2.0
    m = merge(summarize(a, formats=("float16",)), summarize(b, formats=("float16",)))
    whole = summarize(torch.cat([a, b]), formats=("float16",))
    assert m.count == whole.count
    assert m.mean == pytest.approx(whole.mean, rel=1e-12)
    assert m.std == pytest.approx(whole.std, rel=1e-12)
    assert m.max_abs == whole.max_abs
    assert merge(None, whole) is whole


def test_range_fractions_follow_precision_classify() -> None:
    x = torch.tensor([1e5, 1e-9, 1.0, 0.0, 70000.0, -3e38, 1e-45, 5.0])
    over, under, room = range_fractions(x, RANGE_FORMATS, max_abs=3e38)
    n = x.numel()
    for name in RANGE_FORMATS:
        counts = precision.classify(x, name)
        assert over[name] == (counts["overflow"] + counts["nonfinite"]) / n
        assert under[name] == counts["underflow"] / n
    # float16: 1e5, 7e4 and 3e38 overflow; 1e-9 and 1e-45 flush (below 2^-25).
    assert (over["float16"], under["float16"]) == (3 / 8, 2 / 8)
    # bfloat16 has float32's exponent range: only 1e-45 (below half of bfloat16's 2^-133) flushes.
    assert (over["bfloat16"], under["bfloat16"]) == (0.0, 1 / 8)
    assert room["float16"] == pytest.approx(math.log2(65504.0 / 3e38), rel=1e-12)


def test_summarize_with_formats_reports_headroom_in_powers_of_two() -> None:
    s = summarize(torch.tensor([65504.0 / 8]), formats=("float16",))
    assert s.headroom_log2["float16"] == pytest.approx(3.0, abs=1e-12)
    assert s.out_of_range == {"float16": 0.0}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_flush_fractions_equal_their_definition_across_chunks(dtype: torch.dtype) -> None:
    """underflow[f] = #{0 < |x| <= half f's smallest subnormal} / n, counted directly in float64, on
    300 000 entries (two chunks) spanning 1 to 1e-300 with zeros, -0.0, NaN and +-inf among them."""
    g = torch.Generator().manual_seed(0)
    scales = torch.logspace(0, -300, 300_000, dtype=torch.float64)
    x = torch.randn(300_000, generator=g, dtype=torch.float64) * scales
    x[::7], x[1::11] = 0.0, -0.0
    x[5], x[6], x[299_999] = float("nan"), float("inf"), -float("inf")
    x = x.to(dtype)
    _, under, _ = range_fractions(x, RANGE_FORMATS, max_abs=float(x[torch.isfinite(x)].abs().max()))
    magnitude = x.double().abs()
    for name in RANGE_FORMATS:
        flush = precision.get_format(name).smallest_subnormal / 2
        assert under[name] == int(((magnitude > 0) & (magnitude <= flush)).sum()) / x.numel(), name


def test_dead_fraction_counts_units_zero_for_every_sample() -> None:
    x = torch.tensor([[0.0, 1.0, 0.0, 2.0], [0.0, 0.0, 0.0, 3.0]])
    assert dead_fraction(x, 1) == 0.5  # units 0 and 2
    conv = torch.zeros(2, 4, 3, 3)
    conv[:, 1] = 1.0
    assert dead_fraction(conv, 1) == 0.75


def test_duplicate_rows_counts_bitwise_copies_and_skips_dead_rows() -> None:
    w = torch.tensor([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0], [3.0, 4.0], [0.0, 0.0], [0.0, 0.0]])
    assert duplicate_rows(w) == 2
    assert duplicate_rows(w, skip_zero=False) == 3
    assert duplicate_rows(torch.tensor([[1.0, 2.0], [1.0, 2.0 + 2**-20]])) == 0


def test_unit_census_counts_dead_and_duplicate_channels_of_a_strided_output() -> None:
    """A conv-shaped output (batch 3, 7 channels, 9x9): channel 0 dead, 2 and 4 copies of 1, channel 6 equal
    to 5 in its first 64 entries only (a hash collision that the full comparison must reject), channel 3
    holds a NaN (never alive, never equal)."""
    x = torch.randn(3, 7, 9, 9, generator=torch.Generator().manual_seed(0))
    x[:, 0] = 0.0
    x[:, 2] = x[:, 1]
    x[:, 4] = x[:, 1]
    x[:, 6] = x[:, 5]
    x[2, 6, 8, 8] += 1.0  # the last entry of the row (243 entries; 64 are hashed)
    x[0, 3, 0, 0] = float("nan")
    dead, duplicates = unit_census(x, 1)
    assert (dead, duplicates) == (dead_fraction(x, 1), duplicate_rows(unit_rows(x, 1)))
    assert dead == pytest.approx(2 / 7, abs=1e-15) and duplicates == 2
    assert duplicate_rows(x.movedim(1, 0)) == 2  # a strided view, as the hooks pass it


def test_summarize_keeps_no_reference_to_the_tensor() -> None:
    import gc
    import weakref

    x = torch.randn(10, generator=torch.Generator().manual_seed(0))
    ref = weakref.ref(x)
    s = summarize(x, formats=RANGE_FORMATS)
    del x
    gc.collect()
    assert ref() is None and s.count == 10
