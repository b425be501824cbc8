"""precision: 1.5^100 and 0.8^100 per format; where a deep product leaves each format's range."""

from __future__ import annotations

import pytest

from numstab.errors import InvalidArgumentError
from numstab.lab import precision


@pytest.fixture(scope="module")
def result():
    return precision()


def test_powers_land_where_the_notes_say(result):
    assert result.power(1.5, "float16").category == "overflow"  # 4.07e17 > 65504
    assert result.power(0.8, "float16").category == "underflow"  # 2.04e-10 < 2^-25
    for fmt in ("bfloat16", "float32", "float64"):
        assert result.power(1.5, fmt).category == "normal"
        assert result.power(0.8, fmt).category == "normal"
    assert result.power(1.5, "float64").log10_exact == pytest.approx(17.6091259, abs=1e-7)


def test_running_powers_in_float16_are_bit_exact(result):
    # 1.5^27 = 56815 < 65504 < 1.5^28 = 85222: the running product overflows at step 28
    assert result.power(1.5, "float16").first_overflow == 28
    # 0.8^k turns subnormal (< 2^-14) at k = 44 (0.8^44 = 5.4e-5) and then sticks at 2 ulps = 2^-23:
    # 0.8 * 2^-23 = 1.6 ulps rounds back to 2 ulps, so it never reaches 0
    p = result.power(0.8, "float16")
    assert p.first_subnormal == 44
    assert p.first_zero is None and p.computed == 2.0**-23
    assert result.power(0.8, "float32").computed == pytest.approx(0.8**100, rel=1e-5)


def test_deep_products_leave_the_range_where_the_float64_reference_does(result):
    grow, decay = result.products
    assert grow.lyapunov > 0 > decay.lyapunov
    fp16, bf16, fp32 = (
        grow.formats.index("float16"),
        grow.formats.index("bfloat16"),
        grow.formats.index("float32"),
    )
    assert grow.first_overflow[fp16] < grow.first_overflow[fp32]  # 65504 is e^11, 3.4e38 is e^89
    # float32 rounds at 2^-24: its overflow layer is the reference's, give or take one layer
    assert abs(grow.first_overflow[fp32] - grow.predicted_overflow[fp32]) <= 1
    assert abs(grow.first_overflow[fp16] - grow.predicted_overflow[fp16]) <= 1
    # bfloat16 keeps 8 bits: rounding drifts by a few layers over 160
    assert abs(grow.first_overflow[bf16] - grow.predicted_overflow[bf16]) <= 8
    assert decay.first_zero[fp16] < decay.first_zero[fp32]
    assert abs(decay.first_zero[fp32] - decay.predicted_zero[fp32]) <= 1


def test_format_table_has_every_format(result):
    assert [f.name for f in result.formats] == [
        "float16", "bfloat16", "float32", "float64", "float8_e4m3fn", "float8_e5m2",
    ]  # fmt: skip


def test_bad_input():
    with pytest.raises(InvalidArgumentError, match="depth must be >= 1"):
        precision(depth=0)
    with pytest.raises(InvalidArgumentError, match=r"scales\[0\]"):
        precision(scales=(0.0,))
