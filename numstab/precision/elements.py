"""Element formats: what one value of a low-precision recipe is rounded to, and how the result is counted.

A recipe (:mod:`numstab.precision.recipes`) scales a tensor and then rounds every scaled value to an
*element format* with round-to-nearest-even. Four of the five element formats are torch dtypes, and
rounding to them **is** torch's cast, so the simulation is bit for bit what torch (and hardware that
follows IEEE 754 / OCP OFP8 rounding) produces:

- ``bfloat16`` and ``float16``: ``x.to(dtype)``; beyond the range they give ±inf (IEEE 754).
- ``float8_e4m3fn`` and ``float8_e5m2`` (OCP OFP8, Micikevicius et al. 2022): values beyond ``max`` are
  clamped first when the element :attr:`~Element.saturates` (every scaled recipe does, as torchao's
  ``to_fp8_saturated`` and TE's ``satfinite`` casts), then ``x.to(dtype)``. Decoding reads a 256-entry
  table built from torch's own cast of every code (8x faster than casting back on CPU).
- ``float4_e2m1fn`` (the NVFP4 and MXFP4 element, OCP MX v1.0 section 5.3.3) has no torch cast: values
  0, 0.5, 1, 1.5, 2, 3, 4, 6. Rounding adds and subtracts :math:`c = 1.5 \\cdot 2^{22+e}` with
  :math:`e = \\min(\\max(\\lfloor\\log_2|v|\\rfloor, 0), 2)`: in float32 arithmetic that rounds ``v``
  to a multiple of the element's spacing :math:`2^{e-1}` with ties to even (the classic "magic number"
  rounding; exact because ``c`` and ``c + v`` share one binade).

Counting (for :func:`numstab.precision.measure`) reads the rounded codes: how many came out as zero and
how many landed on a subnormal of the element format.

Examples:
    >>> import torch
    >>> e2m1 = ELEMENTS["float4_e2m1fn"]
    >>> e2m1.round(torch.tensor([0.25, 0.3, 0.75, 1.25, 2.5, 3.5, 5.0, 7.0])).tolist()
    [0.0, 0.5, 1.0, 1.0, 2.0, 4.0, 4.0, 6.0]
    >>> ELEMENTS["float8_e4m3fn"].round(torch.tensor([300.0, 1000.0])).tolist()
    [288.0, 448.0]
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from numstab.precision.ranges import Format, formats

__all__ = ["Element", "ELEMENTS", "E2M1", "Rounded"]

#: OCP MX v1.0 FP4 E2M1: 1 sign, 2 exponent (bias 1), 1 mantissa bit; no inf, no NaN; max 6, min normal 1.
E2M1 = Format(
    name="float4_e2m1fn",
    bits=4,
    mantissa_bits=1,
    exponent_bits=2,
    max=6.0,
    smallest_normal=1.0,
    smallest_subnormal=0.5,
    eps=0.5,
    has_inf=False,
)


@dataclass(frozen=True)
class Rounded:
    """Values rounded to an element format (in the element's own units), with their category counts.

    Attributes:
        values: float32, the shape of the input: each value as the element format holds it.
        zeros: 0-dim int64 tensor: how many rounded values are ±0.
        subnormals: 0-dim int64 tensor: how many landed on a subnormal of the element format.
    """

    values: torch.Tensor
    zeros: torch.Tensor
    subnormals: torch.Tensor


@dataclass(frozen=True)
class Element:
    """An element format: rounding to it with round-to-nearest-even, and counting the result.

    Attributes:
        fmt: the format's limits (:class:`numstab.precision.Format`).
        saturates: values beyond ``fmt.max`` are clamped to ±max before rounding (else they round to
            ±inf, as IEEE casts do).
    """

    fmt: Format
    saturates: bool

    @property
    def name(self) -> str:
        """The element format's name (a torch dtype name, or ``"float4_e2m1fn"``)."""
        return self.fmt.name

    def round(self, scaled: torch.Tensor) -> torch.Tensor:
        """Round float32 ``scaled`` (already in element units) to this format; float32 result.

        Examples:
            >>> ELEMENTS["float16"].round(torch.tensor([1e6, 65519.0])).tolist()
            [inf, 65504.0]
        """
        return self.round_counted(scaled, count=False).values

    def round_counted(self, scaled: torch.Tensor, *, count: bool = True) -> Rounded:
        """Round like :meth:`round`, and count zeros and subnormals among the results.

        Examples:
            >>> r = ELEMENTS["float16"].round_counted(torch.tensor([1e-8, 1e-6, 1.0, 0.0]))
            >>> int(r.zeros), int(r.subnormals)
            (2, 1)
        """
        if self.saturates:
            scaled = scaled.clamp(-self.fmt.max, self.fmt.max)
        if self.name == E2M1.name:
            return _round_e2m1(scaled, count=count)
        if self.fmt.bits == 8:
            return _round_fp8(scaled, self.fmt, count=count)
        return _round_16bit(scaled, self.fmt, count=count)


def _zero() -> torch.Tensor:
    return torch.zeros((), dtype=torch.int64)


def _round_fp8(scaled: torch.Tensor, fmt: Format, *, count: bool) -> Rounded:
    """torch's cast; decoded through a table of all 256 codes; counted from the code histogram."""
    codes = scaled.to(fmt.dtype).view(torch.uint8)
    values = _decode_table(fmt.name, scaled.device).index_select(0, codes.reshape(-1).to(torch.int32))
    values = values.view(scaled.shape)
    if not count:
        return Rounded(values, _zero(), _zero())
    hist = torch.bincount(codes.reshape(-1), minlength=256)
    # codes 0x00 / 0x80 are ±0; exponent field 0 with a non-zero mantissa is subnormal
    sub = hist[1 : 1 << fmt.mantissa_bits].sum() + hist[129 : 128 + (1 << fmt.mantissa_bits)].sum()
    return Rounded(values, hist[0] + hist[128], sub)


@functools.cache
def _decode_table_cpu(name: str) -> torch.Tensor:
    return torch.arange(256, dtype=torch.uint8).view(getattr(torch, name)).to(torch.float32)


def _decode_table(name: str, device: torch.device) -> torch.Tensor:
    table = _decode_table_cpu(name)
    return table if device.type == "cpu" else table.to(device)


def _round_16bit(scaled: torch.Tensor, fmt: Format, *, count: bool) -> Rounded:
    low = scaled.to(fmt.dtype)
    values = low.to(torch.float32)
    if not count:
        return Rounded(values, _zero(), _zero())
    zeros = low.numel() - torch.count_nonzero(low)
    exponent_mask = ((1 << fmt.exponent_bits) - 1) << fmt.mantissa_bits  # 0x7F80 (bf16), 0x7C00 (fp16)
    small = torch.count_nonzero((low.view(torch.int16) & exponent_mask) == 0)  # zeros and subnormals
    return Rounded(values, zeros, small - zeros)


def _round_e2m1(scaled: torch.Tensor, *, count: bool) -> Rounded:
    """Round to E2M1 by adding and subtracting 1.5 * 2**(22 + e), e the binade of |v| clamped to [0, 2].

    In place on two temporaries (a chain of 8 cheap ops: this is the hot loop of the NVFP4 recipe).
    """
    rounded = scaled.abs()
    magic = rounded.view(torch.int32) >> 23  # biased float32 exponent of |v|; |v| <= 6 keeps it <= 129
    magic.clamp_(min=127).bitwise_left_shift_(23).add_((22 << 23) | 0x400000)
    rounded.add_(magic.view(torch.float32)).sub_(magic.view(torch.float32))
    values = torch.copysign(rounded, scaled, out=rounded)  # -0.2 rounds to -0, as the sign bit says
    if not count:
        return Rounded(values, _zero(), _zero())
    halves = (values.abs() * 2).reshape(-1).to(torch.int32)  # 0, 1 (the subnormal 0.5), 2, 3, 4, 6, 8, 12
    hist = torch.bincount(halves.clamp_(0, 12), minlength=13)
    return Rounded(values, hist[0], hist[1])


def _elements() -> dict[str, Element]:
    table = formats()
    return {
        "bfloat16": Element(table["bfloat16"], saturates=False),
        "float16": Element(table["float16"], saturates=False),
        "float8_e4m3fn": Element(table["float8_e4m3fn"], saturates=True),
        "float8_e5m2": Element(table["float8_e5m2"], saturates=True),
        E2M1.name: Element(E2M1, saturates=True),
    }


#: The element formats of the recipes, by name; float8 ones saturate (the unscaled ``e5m2_cast`` recipe
#: uses its own non-saturating variant, torch's plain cast).
ELEMENTS: dict[str, Element] = _elements()
