"""numstab.precision: the format table against IEEE 754 / OCP literals, classify against real casts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from numstab import precision
from numstab.errors import InvalidArgumentError, NumstabTypeError, UnknownNameError
from numstab.precision import CATEGORIES, classify, formats

# (max, smallest_normal, smallest_subnormal, eps, mantissa_bits): IEEE 754-2008 binary16/32/64,
# bfloat16 (1 + 8 + 7 bits), OCP OFP8 E4M3FN / E5M2 (Micikevicius et al. 2022, table 1).
GOLDEN = {
    "float16": (65504.0, 2.0**-14, 2.0**-24, 2.0**-10, 10),
    "bfloat16": (3.3895313892515355e38, 2.0**-126, 2.0**-133, 2.0**-7, 7),
    "float32": (3.4028234663852886e38, 2.0**-126, 2.0**-149, 2.0**-23, 23),
    "float64": (1.7976931348623157e308, 2.0**-1022, 5e-324, 2.0**-52, 52),
    "float8_e4m3fn": (448.0, 2.0**-6, 2.0**-9, 2.0**-3, 3),
    "float8_e5m2": (57344.0, 2.0**-14, 2.0**-16, 2.0**-2, 2),
}
# Where round-to-nearest leaves the range: max + half an ulp of max.
OVERFLOW_AT = {"float16": 65520.0, "bfloat16": 2.0**128 - 2.0**119, "float8_e5m2": 61440.0}
NARROW = ["float16", "bfloat16", "float8_e4m3fn", "float8_e5m2"]


def one(value: float, fmt: str) -> str:
    """The single category of one value."""
    (category,) = [name for name, count in classify([value], fmt).items() if count]
    return category


def category_of_cast(x: torch.Tensor, fmt: str) -> list[str]:
    """Oracle: the category read off torch's actual cast of each (finite, non-zero) value."""
    cast = x.to(getattr(torch, fmt)).to(torch.float64).abs()
    normal = formats()[fmt].smallest_normal

    def name(c: float) -> str:
        if math.isinf(c):
            return "overflow"
        return "underflow" if c == 0 else "subnormal" if c < normal else "normal"

    return [name(c) for c in cast.tolist()]


@pytest.mark.parametrize("name", list(GOLDEN))
def test_table_equals_ieee_and_ocp_values(name):
    fmt = formats()[name]
    assert (fmt.max, fmt.smallest_normal, fmt.smallest_subnormal, fmt.eps, fmt.mantissa_bits) == GOLDEN[name]
    assert fmt.smallest_normal == torch.finfo(getattr(torch, name)).smallest_normal
    assert fmt.bits == 1 + fmt.exponent_bits + fmt.mantissa_bits
    assert fmt.dtype == getattr(torch, name)
    assert set(fmt.to_dict()) >= {"name", "max", "smallest_normal", "smallest_subnormal", "eps"}


def test_bfloat16_max_is_about_3_39e38_and_only_e4m3fn_lacks_inf():
    assert formats()["bfloat16"].max == pytest.approx(3.39e38, rel=1e-3)
    assert [n for n, f in formats().items() if not f.has_inf] == ["float8_e4m3fn"]


@pytest.mark.parametrize("name", list(GOLDEN))
def test_smallest_subnormal_is_representable_and_half_of_it_flushes(name):
    fmt = formats()[name]
    dtype = getattr(torch, name)
    s = torch.tensor(fmt.smallest_subnormal, dtype=torch.float64)
    assert s.to(dtype).to(torch.float64).item() == fmt.smallest_subnormal
    assert (s / 2).to(dtype).to(torch.float64).item() == 0.0
    assert one(fmt.smallest_subnormal, name) == "subnormal"
    if name != "float64":  # s/2 is not a float64 number at all
        assert one(fmt.smallest_subnormal / 2, name) == "underflow"


def test_chapter_examples_overflow_and_underflow_in_float16_only():
    big, small = 1.5**100, 0.8**100  # ~4.07e17 and ~2.04e-10 (D2L 5.4)
    assert big == pytest.approx(4.0656e17, rel=1e-4) and small == pytest.approx(2.0370e-10, rel=1e-4)
    assert one(big, "float16") == "overflow" and one(small, "float16") == "underflow"
    for fmt in ("float32", "bfloat16", "float64"):
        assert one(big, fmt) == "normal" and one(small, fmt) == "normal"


@pytest.mark.parametrize("name", ["float16", "bfloat16", "float8_e5m2"])
def test_overflow_threshold_is_max_plus_half_ulp_with_ties_to_inf(name):
    t = OVERFLOW_AT[name]
    assert formats()[name].overflow_threshold == t
    below = float(np.nextafter(np.float32(t), np.float32(0)))
    probe = torch.tensor([below, t, -t], dtype=torch.float32)
    assert category_of_cast(probe, name) == ["normal", "overflow", "overflow"]
    assert [one(v, name) for v in probe.tolist()] == ["normal", "overflow", "overflow"]


def test_e4m3fn_has_no_inf_so_the_tie_at_464_rounds_down_to_448():
    assert formats()["float8_e4m3fn"].overflow_threshold == 464.0
    assert torch.tensor([464.0]).to(torch.float8_e4m3fn).float().item() == 448.0
    assert one(464.0, "float8_e4m3fn") == "normal"
    assert one(float(np.nextafter(464.0, 500.0)), "float8_e4m3fn") == "overflow"
    # torch saturates 1e6 to 448 on CPU: only a check before the cast sees the overflow.
    assert classify(torch.tensor([1e6, -1e6]), "float8_e4m3fn")["overflow"] == 2


@pytest.mark.parametrize("name", NARROW)
def test_subnormal_and_flush_boundaries_match_real_casts(name):
    fmt = formats()[name]
    s, n = fmt.smallest_subnormal, fmt.smallest_normal
    points = [s / 2, n - s / 2, 1.5 * s, n]
    f32 = np.float32
    probe = [float(np.nextafter(f32(p), f32(d))) for p in points for d in (0.0, 1.0)] + points
    x = torch.tensor(probe, dtype=torch.float32)
    expected = category_of_cast(x, name)
    assert [one(v, name) for v in x.tolist()] == expected
    # The exact ties: s/2 -> 0 (even), n - s/2 -> n (even mantissa), 1.5 s -> 2 s.
    assert expected[-4:] == ["underflow", "normal", "subnormal", "normal"]


@pytest.mark.parametrize("name", NARROW)
def test_categorize_agrees_with_torch_cast_on_random_float32_bit_patterns(name):
    gen = np.random.default_rng(20240601)
    bits = gen.integers(0, 2**32, size=20_000, dtype=np.uint64).astype(np.uint32)
    x = torch.from_numpy(bits.view(np.float32).copy())
    x = x[torch.isfinite(x) & (x != 0)]
    if name == "float8_e4m3fn":  # CPU casts saturate: no oracle above the threshold
        x = x[x.abs() <= 464.0]
    codes = precision.categorize(x, name).tolist()
    assert [CATEGORIES[c] for c in codes] == category_of_cast(x, name)
    assert len(set(codes)) >= 3


def test_float32_format_boundaries_from_float64_values_match_casts():
    t = formats()["float32"].overflow_threshold
    assert t == 2.0**128 - 2.0**103  # max = 2**128 - 2**104, half ulp 2**103
    points = [np.nextafter(t, 0.0), t, 2.0**-150, np.nextafter(2.0**-150, 1.0)]
    probe = torch.tensor(points, dtype=torch.float64)
    assert category_of_cast(probe, "float32") == ["normal", "overflow", "underflow", "subnormal"]
    assert [one(v, "float32") for v in probe.tolist()] == ["normal", "overflow", "underflow", "subnormal"]


def test_classification_uses_the_exact_value_not_torchs_double_rounding():
    # 65520 - 2**-30 lies below the tie: correctly rounded it is 65504. (torch's float64 -> float16
    # cast goes through float32, which rounds it up to the tie 65520 and then to inf.)
    assert one(65520.0 - 2.0**-30, "float16") == "normal"
    assert one(2.0**-25 + 2.0**-60, "float16") == "subnormal"


def test_counts_zero_nonfinite_signs_and_every_input_type():
    values = [0.0, -0.0, math.nan, math.inf, -math.inf, -1e5, 1.0, -1e-6, 1e-9]
    expected = {"overflow": 1, "normal": 1, "subnormal": 1, "underflow": 1, "zero": 2, "nonfinite": 3}
    assert classify(values, "float16") == expected
    assert classify(np.array(values, dtype=np.float32), "float16") == expected
    assert classify(torch.tensor(values, dtype=torch.float32).reshape(3, 3), torch.float16) == expected
    assert classify(torch.tensor([1.0, 70000.0], dtype=torch.bfloat16), "float16")["overflow"] == 1
    assert classify(7, "float16")["normal"] == 1
    e4m3 = torch.tensor([1.0, 448.0, 2.0**-9]).to(torch.float8_e4m3fn)  # an 8-bit tensor as input
    assert classify(e4m3, "float8_e4m3fn") == {**dict.fromkeys(CATEGORIES, 0), "normal": 2, "subnormal": 1}
    assert classify(torch.tensor([1, 70000]), "float16")["overflow"] == 1  # integer tensors too
    assert classify(torch.zeros(0), "float16") == dict.fromkeys(CATEGORIES, 0)
    assert list(classify(1.0, "float16")) == list(CATEGORIES)


def test_fractions_and_headroom():
    fr = precision.fractions(torch.tensor([1e5, 1.0, 1e-9, 0.0]), "float16")
    assert fr == {"overflow": 0.25, "normal": 0.25, "subnormal": 0.0, "underflow": 0.25, "zero": 0.25,
                  "nonfinite": 0.0}
    assert precision.fractions([], "float16")["normal"] == 0.0
    assert precision.headroom_bits(65504.0 / 1024, "float16") == 10.0
    assert precision.headroom_bits(448.0 * 4, "float8_e4m3fn") == -2.0
    assert precision.headroom_bits(0.0, "bfloat16") == math.inf


def test_formats_returns_a_fresh_dict():
    table = formats()
    table.pop("float16")
    assert "float16" in formats()


def test_bad_input_names_the_argument_and_the_valid_choices():
    with pytest.raises(UnknownNameError, match=r"'float12'.*float16, bfloat16, float32, float64"):
        classify([1.0], "float12")
    with pytest.raises(UnknownNameError, match="float8_e5m2"):
        precision.get_format(torch.int8)
    with pytest.raises(NumstabTypeError, match="fmt must be"):
        precision.get_format(16)
    with pytest.raises(NumstabTypeError, match="values must be"):
        classify({"a": 1}, "float16")
    with pytest.raises(InvalidArgumentError, match="max_abs"):
        precision.headroom_bits(-1.0, "float16")
