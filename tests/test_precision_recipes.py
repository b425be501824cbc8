"""numstab.precision.quantize / measure against torch's casts and an independent reference from the specs.

The reference below is written from the specifications, element by element in Python floats (float64,
in which every float32 value and every scaled value here is exact), with no code shared with numstab:

- rounding to a minifloat with m mantissa bits and smallest normal exponent emin: quantum
  2**(max(floor(log2|v|), emin) - m), round half to even, then saturate or overflow beyond max
  (IEEE 754 section 4.3.1; OCP OFP8 v1.0 for E4M3/E5M2; OCP MX v1.0 section 5.3.3 for E2M1);
- MX (OCP MX v1.0 section 6.3, algorithm 1): per block of 32, X = 2**(floor(log2 max|V|) - emax_elem)
  clamped to the E8M0 range [2**-127, 2**127] (NaN when the block holds NaN or inf); P = round(V / X)
  saturated; read back P * X rounded once to float32;
- NVFP4: tensor scale t = amax / (448 * 6), block scale E4M3(clamp(max|block| / 6 / t, 2**-6, 448)),
  elements E2M1(clamp(x * ((1 / t) / b), -6, 6)), read back P * (t * b), in float32 (numpy.float32
  scalars) in that order, as torchao 0.18's nvfp4_quantize does it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from numstab import precision
from numstab.errors import InvalidArgumentError, NumstabTypeError, UnknownNameError
from numstab.precision import RECIPE_NAMES, measure, quantize

f32 = np.float32
# (mantissa bits, smallest normal exponent, max, saturates)
E4M3 = (3, -6, 448.0, True)
E5M2 = (2, -14, 57344.0, True)
E5M2_CAST = (2, -14, 57344.0, False)
E2M1 = (1, 0, 6.0, True)


def ref_round(v: float, spec: tuple[int, int, float, bool]) -> float:
    """Round v (exact in float64) to the minifloat `spec`, ties to even."""
    m, emin, top, saturates = spec
    if math.isnan(v):
        return math.nan
    if math.isinf(v):
        return math.copysign(top, v) if saturates else v
    if v == 0:
        return v
    exponent = max(math.frexp(abs(v))[1] - 1, emin)
    quantum = 2.0 ** (exponent - m)
    r = math.copysign(float(round(v / quantum)), v) * quantum  # Python's round: half to even
    if abs(r) > top:
        return math.copysign(top if saturates else math.inf, v)
    return r


def ref_mx(row: list[float], spec: tuple[int, int, float, bool]) -> list[float]:
    """One block of the OCP MX v1.0 conversion, read back in float32."""
    amax = max(abs(v) for v in row) if row else 0.0
    if any(math.isnan(v) for v in row) or math.isinf(amax):
        return [math.nan] * len(row)
    emax_elem = math.frexp(spec[2])[1] - 1
    shared = -127 if amax == 0 else math.frexp(amax)[1] - 1 - emax_elem
    x = 2.0 ** min(max(shared, -127), 127)
    return [float(f32(ref_round(v / x, spec) * x)) for v in row]


def ref_nvfp4(blocks: list[list[float]]) -> list[list[float]]:
    """NVFP4 two-level scaling in float32 scalar arithmetic; blocks of 16 values."""
    flat = [v for b in blocks for v in b]
    if any(math.isnan(v) or math.isinf(v) for v in flat):
        return [[math.nan] * len(b) for b in blocks]
    amax = f32(max(abs(v) for v in flat))
    if amax == 0:
        return [[0.0] * len(b) for b in blocks]
    t = amax / f32(2688.0)
    out = []
    for block in blocks:
        bmax = f32(max(abs(v) for v in block))
        scale = f32(ref_round(float(min(max(bmax / f32(6.0) / t, f32(2.0**-6)), f32(448.0))), E4M3))
        encode, decode = (f32(1.0) / t) / scale, t * scale
        out.append([float(f32(ref_round(float(max(min(f32(v) * encode, 6), -6)), E2M1)) * decode)
                    for v in block])
    return out


def blocks_of(x: torch.Tensor, size: int) -> list[list[float]]:
    """Rows of `x` (last dim) split into blocks of `size`, the last one short."""
    rows = x.reshape(-1, x.shape[-1]).tolist()
    return [row[i : i + size] for row in rows for i in range(0, len(row), size)]


def assert_same_bits(got: torch.Tensor, expected: torch.Tensor) -> None:
    """Equal float32 bit patterns (the sign of zero included); NaN matches NaN whatever its payload."""
    assert got.dtype == expected.dtype == torch.float32 and got.shape == expected.shape
    nan = torch.isnan(expected)
    assert torch.equal(torch.isnan(got), nan), "NaN in different places"
    bad = (got.view(torch.int32) != expected.view(torch.int32)) & ~nan
    assert not bad.any(), f"{int(bad.sum())} values differ, first: {got[bad][:4]} vs {expected[bad][:4]}"


def adversarial(generator: torch.Generator, cols: int = 96) -> torch.Tensor:
    """Rows of 96 float32 values: random magnitudes over 2**-60..2**60, and blocks meant to break things."""
    rows = torch.randn(24, cols, generator=generator)
    rows *= torch.exp2(torch.randint(-60, 60, (24, 1), generator=generator).float())
    rows[0, :32] = 0.0  # an all-zero block
    rows[1, :32] = torch.randn(32, generator=generator) * 1e-3
    rows[1, 5] = 3e4  # one huge value in the block: the rest flushes
    rows[2, :32] = torch.randn(32, generator=generator) * 1e-40  # float32-subnormal only
    rows[3, 32:64] = torch.randn(32, generator=generator) * 2.0**-20  # element-subnormal after scaling
    rows[4, 7], rows[5, 40], rows[6, 70] = math.nan, math.inf, -math.inf
    # exact ties of E4M3 rounding: the block max 448 * 8 makes X = 2**(11 - 8) = 8, so V / X = 17, 19, ...
    # (midpoints of the spacing 2 in [16, 32)) and 1 + (2j + 1) / 16 (midpoints of 1/8 in [1, 2))
    odd = torch.arange(8, dtype=torch.float32) * 2 + 1
    rows[7, :32] = torch.cat([8 * (16 + odd), 8 * (1 + odd / 16), -8 * (16 + odd), -8 * (1 + odd / 16)])
    rows[7, 0] = 448.0 * 8
    return rows


NAN_FREE_ROWS = [0, 1, 2, 3, 7] + list(range(8, 24))


# -- element casts ---------------------------------------------------------------------------------


def all_float32_probes() -> torch.Tensor:
    """Every float32 with 8 random mantissa patterns per exponent, plus ties, zeros, inf and NaN."""
    gen = np.random.default_rng(7)
    exps = np.arange(0, 255, dtype=np.uint32)
    mant = gen.integers(0, 1 << 23, size=(255, 8), dtype=np.uint32)
    bits = (exps[:, None] << 23 | mant).ravel()
    values = np.concatenate([bits.view(np.float32), -bits.view(np.float32)])
    ties = [448.0, 464.0, 480.0, 57344.0, 61440.0, 2.0**-10, 3 * 2.0**-11, 2.0**-17, 0.0, -0.0]
    return torch.from_numpy(np.concatenate([values, np.array(ties + [math.inf, -math.inf, math.nan], f32)]))


@pytest.mark.parametrize(("recipe", "dtype", "spec"), [
    ("e4m3_cast", torch.float8_e4m3fn, E4M3), ("e5m2_cast", torch.float8_e5m2, E5M2_CAST)])
def test_fp8_casts_equal_torchs_casts_and_the_reference(recipe, dtype, spec):
    x = all_float32_probes()
    torch_cast = x.to(dtype).to(torch.float32)
    assert_same_bits(quantize(x, recipe), torch_cast)
    reference = torch.tensor([ref_round(v, spec) for v in x.tolist()], dtype=torch.float32)
    assert_same_bits(reference, torch_cast)  # the reference itself is right where torch has an oracle


@pytest.mark.parametrize(("recipe", "dtype"), [("bfloat16", torch.bfloat16), ("float16", torch.float16)])
def test_16_bit_recipes_are_torchs_casts(recipe, dtype):
    x = all_float32_probes()
    assert_same_bits(quantize(x, recipe), x.to(dtype).to(torch.float32))


def test_e2m1_rounding_equals_the_reference_on_every_tie_and_between():
    # every multiple of 1/64 in [-8, 8] (all E2M1 ties are multiples of 1/4) and their float32 neighbours
    grid = np.arange(-512, 513, dtype=np.float64) / 64
    probe = np.concatenate([grid, np.nextafter(grid.astype(f32), f32(np.inf)),
                            np.nextafter(grid.astype(f32), f32(-np.inf))]).astype(f32)
    x = torch.from_numpy(probe)
    expected = torch.tensor([ref_round(float(v), E2M1) for v in probe], dtype=torch.float32)
    assert_same_bits(precision.elements.ELEMENTS["float4_e2m1fn"].round(x), expected)
    assert sorted(set(expected.abs().tolist())) == [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]


# -- block-scaled recipes --------------------------------------------------------------------------


@pytest.mark.parametrize(("recipe", "spec"), [("mxfp8_e4m3", E4M3), ("mxfp8_e5m2", E5M2)])
def test_mx_equals_the_spec_reference_on_random_and_adversarial_blocks(recipe, spec, generator):
    x = adversarial(generator)
    expected = [v for block in blocks_of(x, 32) for v in ref_mx(block, spec)]
    assert_same_bits(quantize(x, recipe), torch.tensor(expected).reshape(x.shape))


@pytest.mark.parametrize("recipe", ["mxfp8_e4m3", "nvfp4"])
def test_blocks_run_along_dim_and_short_blocks_are_padded(recipe, generator):
    x = torch.randn(5, 45, 3, generator=generator) * torch.exp2(torch.randint(-8, 8, (5, 45, 3),
                                                                          generator=generator).float())
    along = x.movedim(1, -1)  # (5, 3, 45): rows of 45 = a block of 32 and a short one of 13
    if recipe == "nvfp4":
        expected = torch.tensor([v for b in ref_nvfp4(blocks_of(along, 16)) for v in b])
    else:
        expected = torch.tensor([v for b in blocks_of(along, 32) for v in ref_mx(b, E4M3)])
    assert_same_bits(quantize(x, recipe, dim=1), expected.reshape(along.shape).movedim(-1, 1).contiguous())
    assert not torch.equal(quantize(x, recipe, dim=1), quantize(x, recipe, dim=-1))


@pytest.mark.parametrize("rows", [NAN_FREE_ROWS, list(range(24))])
def test_nvfp4_equals_the_reference(rows, generator):
    x = adversarial(generator)[rows]
    expected = torch.tensor([v for b in ref_nvfp4(blocks_of(x, 16)) for v in b]).reshape(x.shape)
    assert_same_bits(quantize(x, "nvfp4"), expected)


def test_nan_and_inf_rules():
    x = torch.ones(2, 32)
    x[0, 3] = math.inf
    mx = quantize(x, "mxfp8_e4m3")
    assert mx[0].isnan().all() and torch.equal(mx[1], torch.ones(32))  # only the block with inf
    assert quantize(x, "e4m3_tensor").isnan().all() and quantize(x, "nvfp4").isnan().all()
    assert quantize(x, "e4m3_cast")[0, 3] == 448.0 and quantize(x, "e5m2_cast")[0, 3] == math.inf
    for recipe in RECIPE_NAMES:
        assert torch.equal(quantize(torch.zeros(3, 40), recipe), torch.zeros(3, 40)), recipe


@pytest.mark.parametrize("recipe", ["e4m3_tensor", "e5m2_tensor"])
def test_per_tensor_scaling_maps_the_amax_to_the_format_max(recipe, generator):
    x = torch.randn(64, 48, generator=generator) * 1e-3
    fmax = 448.0 if recipe.startswith("e4m3") else 57344.0
    s = f32(fmax / float(x.abs().max()))  # float64 quotient, rounded once to float32
    spec = E4M3 if fmax == 448.0 else E5M2
    values = x.reshape(-1).tolist()
    expected = torch.tensor([float(f32(ref_round(float(f32(v) * s), spec)) / s) for v in values])
    assert_same_bits(quantize(x, recipe), expected.reshape(x.shape))
    assert quantize(x, recipe).abs().max() == x.abs().max()  # the amax itself survives within rounding
    delayed = quantize(x, recipe.replace("tensor", "delayed"), amax=float(x.abs().max()) / 4)
    assert delayed.abs().max() < x.abs().max() / 3  # an amax history 4x too small saturates


# -- measure ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("recipe", ["e4m3_cast", "e5m2_cast", "float16", "bfloat16"])
def test_measure_counts_equal_classify_on_the_unscaled_casts(recipe, generator):
    low = -145 if recipe == "bfloat16" else -30  # down into bfloat16's subnormals (2**-133 and below)
    x = torch.randn(40, 50, generator=generator) * torch.exp2(torch.randint(low, 20, (40, 50),
                                                                           generator=generator).float())
    x[0, 0] = 3.4e38  # beyond bfloat16's overflow threshold (2**128 - 2**119)
    fmt = {"e4m3_cast": "float8_e4m3fn", "e5m2_cast": "float8_e5m2"}.get(recipe, recipe)
    m = measure(x, [recipe])[recipe]
    counts = precision.classify(x, fmt)
    assert (m.overflow, m.underflow, m.subnormal) == (counts["overflow"], counts["underflow"],
                                                      counts["subnormal"])
    assert m.nonzero == int(torch.count_nonzero(x)) and m.numel == 2000
    assert m.energy == pytest.approx(float((x.double() ** 2).sum()), rel=1e-6)  # beyond float32's range
    assert counts["overflow"] > 0 and counts["underflow"] > 0 and counts["subnormal"] > 0


@pytest.mark.parametrize("recipe", RECIPE_NAMES)
def test_measure_agrees_with_quantize(recipe, generator):
    x = torch.randn(7, 100, generator=generator) * torch.exp2(torch.randint(-12, 12, (7, 1),
                                                                           generator=generator).float())
    x[0, :40] = 0.0
    q = quantize(x, recipe)
    m = measure(x, [recipe])[recipe]
    x64, q64 = x.double(), q.double()
    assert m.underflow == int(((x != 0) & (q == 0)).sum())
    assert m.nonzero == int((x != 0).sum()) == 660
    finite = torch.isfinite(q64)
    expected = float(((q64 - x64)[finite] ** 2).sum() / (x64**2).sum()) if finite.all() else math.inf
    assert m.rel_mse == pytest.approx(expected, rel=1e-5)
    assert m.sqnr_db == pytest.approx(-10 * math.log10(m.rel_mse), rel=1e-12)


def test_measure_with_a_loss_scale_and_headroom():
    g = torch.full((100,), 2.0**-20)
    plain = measure(g, ["float16"])["float16"]
    scaled = measure(g, ["float16"], prescale={"float16": 2.0**10})["float16"]
    assert plain.subnormal == 100 and scaled.subnormal == 0 and scaled.rel_mse == 0.0
    assert scaled.headroom_bits == pytest.approx(math.log2(65504.0) + 10)
    mx = measure(torch.tensor([500.0, 1.0]), ["mxfp8_e4m3"])["mxfp8_e4m3"]
    assert mx.headroom_bits == pytest.approx(math.log2(448 / 500))  # X = 2**(8 - 8): 500 saturates
    assert mx.overflow == 1


# -- bad input -------------------------------------------------------------------------------------


def test_bad_input_names_the_argument_and_the_valid_choices():
    with pytest.raises(UnknownNameError, match=r"'fp8'.*bfloat16, float16, e4m3_cast"):
        quantize(torch.ones(3), "fp8")
    with pytest.raises(NumstabTypeError, match="x must be a real floating-point tensor"):
        quantize(torch.ones(3, dtype=torch.int64), "nvfp4")
    with pytest.raises(NumstabTypeError, match="x must be a torch.Tensor"):
        quantize([1.0], "nvfp4")
    with pytest.raises(InvalidArgumentError, match=r"dim must be an integer in \[-2, 1\]"):
        quantize(torch.ones(2, 3), "nvfp4", dim=2)
    with pytest.raises(InvalidArgumentError, match="amax applies to per-tensor recipes"):
        quantize(torch.ones(3), "nvfp4", amax=1.0)
    with pytest.raises(InvalidArgumentError, match="amax must be a finite number >= 0"):
        quantize(torch.ones(3), "e4m3_delayed", amax=-1.0)
    with pytest.raises(InvalidArgumentError, match="meta device"):
        quantize(torch.ones(3, device="meta"), "nvfp4")
    with pytest.raises(InvalidArgumentError, match="prescale names recipe"):
        measure(torch.ones(3), ["float16"], prescale={"bfloat16": 2.0})
    x = torch.ones(4)
    quantize(x, "nvfp4")
    assert torch.equal(x, torch.ones(4))
