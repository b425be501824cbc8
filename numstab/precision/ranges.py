"""Number formats and where values land in them: overflow, normal, subnormal, flushed to zero.

The chapter (D2L "Numerical Stability and Initialization") worries that a product of 100 factors
1.5 overflows and a product of 100 factors 0.8 underflows. Whether that happens depends on the
number format: float16 overflows beyond 65504 and flushes values below 2^-25 to zero, float32 does
neither for those two numbers. :func:`formats` gives the limits of the formats deep learning uses
(IEEE 754 binary16/32/64, bfloat16, and the OCP 8-bit formats E4M3FN and E5M2 of Micikevicius
et al. 2022, "FP8 Formats for Deep Learning"), read from :class:`torch.finfo`.

:func:`classify` counts, *before* any cast, what round-to-nearest-even conversion would do to each
value. It has to be done before: on CPU torch saturates float8_e4m3fn casts (1e6 becomes 448, even
inf becomes 448), so a check after the cast misses the overflow.

Examples:
    >>> from numstab import precision
    >>> f16 = precision.formats()["float16"]
    >>> f16.max, f16.smallest_normal == 2**-14, f16.smallest_subnormal == 2**-24
    (65504.0, True, True)
    >>> precision.classify([1.5**100, 0.8**100, 1.0, 0.0], "float16")
    {'overflow': 1, 'normal': 1, 'subnormal': 0, 'underflow': 1, 'zero': 1, 'nonfinite': 0}
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

from numstab.errors import (
    InvalidArgumentError,
    NumstabTypeError,
    UnknownNameError,
    check_nonnegative,
    check_real_array,
)
from numstab.resources import check_memory

__all__ = [
    "CATEGORIES",
    "FORMAT_NAMES",
    "Format",
    "formats",
    "get_format",
    "categorize",
    "classify",
    "fractions",
    "headroom_bits",
]

#: The formats :func:`formats` describes, narrowest range last.
FORMAT_NAMES: tuple[str, ...] = (
    "float16",
    "bfloat16",
    "float32",
    "float64",
    "float8_e4m3fn",
    "float8_e5m2",
)

#: The categories of :func:`classify`, in the order of the codes :func:`categorize` returns.
CATEGORIES: tuple[str, ...] = ("overflow", "normal", "subnormal", "underflow", "zero", "nonfinite")

_CODE = {name: code for code, name in enumerate(CATEGORIES)}


@dataclass(frozen=True)
class Format:
    """A binary floating-point format: its range and its resolution.

    With ``m`` mantissa (fraction) bits, ``eps = 2**-m`` and
    ``smallest_subnormal = smallest_normal * eps``; torch.finfo has no subnormal field, so it is
    derived that way.

    Attributes:
        name: the torch dtype's name, e.g. ``"float16"``.
        bits: storage width in bits.
        mantissa_bits: explicitly stored fraction bits ``m`` (10 for float16, 7 for bfloat16).
        exponent_bits: exponent field width, ``bits - 1 - m``.
        max: the largest finite value.
        smallest_normal: the smallest positive normal value, ``2**(1 - bias)``.
        smallest_subnormal: the smallest positive value, ``smallest_normal * 2**-m``.
        eps: the gap between 1 and the next value, ``2**-m``.
        has_inf: whether the format encodes infinities; the OCP "fn" formats (float8_e4m3fn) do not.

    Examples:
        >>> f = formats()["float8_e5m2"]
        >>> f.exponent_bits, f.mantissa_bits, f.overflow_threshold, f.dtype
        (5, 2, 61440.0, torch.float8_e5m2)
    """

    name: str
    bits: int
    mantissa_bits: int
    exponent_bits: int
    max: float
    smallest_normal: float
    smallest_subnormal: float
    eps: float
    has_inf: bool

    @property
    def dtype(self) -> torch.dtype:
        """The torch dtype of this format."""
        return getattr(torch, self.name)

    @property
    def overflow_threshold(self) -> float:
        """max + half an ulp of max: the magnitude from which round-to-nearest leaves the range.

        .. math::
            T = \\text{max} + \\tfrac12\\, 2^{\\lfloor \\log_2 \\text{max} \\rfloor} \\epsilon

        ``math.inf`` for float64 (no float64 value lies beyond it).
        """
        half_ulp = math.ldexp(self.eps, math.frexp(self.max)[1] - 2)
        return self.max + half_ulp

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return asdict(self)


def _from_finfo(name: str) -> Format:
    info = torch.finfo(getattr(torch, name))
    mantissa_bits = -math.frexp(info.eps)[1] + 1  # eps = 2**-m exactly
    return Format(
        name=name,
        bits=info.bits,
        mantissa_bits=mantissa_bits,
        exponent_bits=info.bits - 1 - mantissa_bits,
        max=float(info.max),
        smallest_normal=float(info.smallest_normal),
        smallest_subnormal=math.ldexp(float(info.smallest_normal), -mantissa_bits),
        eps=float(info.eps),
        # OCP naming: a trailing "fn" means "finite and NaN only", no infinity encoding.
        has_inf=not name.endswith("fn"),
    )


@functools.cache
def _formats() -> dict[str, Format]:
    return {name: _from_finfo(name) for name in FORMAT_NAMES}


def formats() -> dict[str, Format]:
    """The number formats deep learning uses, keyed by torch dtype name, read from torch.finfo.

    IEEE 754-2008 binary16/32/64, bfloat16 (Kalamkar et al. 2019) and the OCP 8-bit formats
    E4M3FN and E5M2 (Micikevicius et al. 2022).

    Returns:
        A fresh dict ``name -> Format`` with the keys of :data:`FORMAT_NAMES`.

    Examples:
        >>> table = formats()
        >>> table["float8_e4m3fn"].max, table["float8_e5m2"].max
        (448.0, 57344.0)
        >>> table["bfloat16"].mantissa_bits, table["float16"].eps == 2**-10
        (7, True)
    """
    return dict(_formats())


def get_format(fmt: str | Format | torch.dtype) -> Format:
    """Resolve a format name, a :class:`Format` or a torch dtype to a :class:`Format`.

    Raises:
        UnknownNameError: the name (or dtype) is not one of :data:`FORMAT_NAMES`.

    Examples:
        >>> get_format(torch.bfloat16).name
        'bfloat16'
    """
    if isinstance(fmt, Format):
        return fmt
    name = str(fmt).removeprefix("torch.") if isinstance(fmt, torch.dtype) else fmt
    if not isinstance(name, str):
        raise NumstabTypeError(
            f"fmt must be a format name, a Format or a torch dtype, got {fmt!r} ({type(fmt).__name__}); "
            f"use one of {', '.join(FORMAT_NAMES)}"
        )
    table = _formats()
    if name not in table:
        raise UnknownNameError("number format", fmt, FORMAT_NAMES)
    return table[name]


#: Bytes per value while categorizing: the float64 copy, its magnitude, int8 codes, masks, int64 codes.
_BYTES_PER_VALUE = 32


def _as_float64(values: Any) -> torch.Tensor:
    """values as a float64 tensor, exactly; a tensor keeps its device (MPS has no float64: CPU).

    Only real numbers with data are accepted: a complex, boolean, sparse, quantized or meta tensor, None,
    strings and integers beyond float64 raise an error that says what to pass instead.
    """
    if not isinstance(values, torch.Tensor):
        array = check_real_array("values", values)
        check_memory(f"values with {array.size} elements", _BYTES_PER_VALUE * array.size,
                     "classify in chunks")
        return torch.from_numpy(array)
    tensor = values.detach()
    _check_tensor(tensor)
    if tensor.device.type == "cpu":
        check_memory(f"values with {tensor.numel()} elements", _BYTES_PER_VALUE * tensor.numel(),
                     "classify in chunks (e.g. over values.split(...))")
    if tensor.device.type == "mps":
        tensor = tensor.cpu()
    return tensor.to(torch.float64)


def _check_tensor(tensor: torch.Tensor) -> None:
    if tensor.device.type == "meta":
        raise InvalidArgumentError(
            "values is a meta tensor (a shape without data): materialize it first, e.g. "
            "model.to_empty(device='cpu') and initialize the weights"
        )
    if tensor.layout != torch.strided or tensor.is_quantized:
        raise NumstabTypeError(
            f"values is a {tensor.layout} {'quantized ' if tensor.is_quantized else ''}tensor: pass a dense "
            "real tensor (values.to_dense(), or values.dequantize() for a quantized one)"
        )
    if tensor.is_complex():
        raise NumstabTypeError(
            f"values is complex ({tensor.dtype}): classify the real and imaginary parts separately "
            "(values.real, values.imag)"
        )
    if tensor.dtype == torch.bool:
        raise NumstabTypeError(
            "values is a boolean tensor: pass numbers (values.float() if you mean 0 and 1)"
        )


def categorize(values: Any, fmt: str | Format | torch.dtype) -> torch.Tensor:
    """The category code of each value, as round-to-nearest-even conversion to ``fmt`` would leave it.

    Codes index :data:`CATEGORIES`. With ``S`` the smallest subnormal, ``N`` the smallest normal and
    ``T`` the :attr:`Format.overflow_threshold` (IEEE 754 section 4.3.1, ties to even):

    .. math::
        |x| \\le S/2 \\to \\text{underflow (0)}, \\quad
        S/2 < |x| < N - S/2 \\to \\text{subnormal}, \\quad
        N - S/2 \\le |x| < T \\to \\text{normal}, \\quad |x| \\ge T \\to \\text{overflow}.

    The ties go where round-to-even sends them: S/2 to 0, N - S/2 up to N, T to infinity. In a
    format without infinity (float8_e4m3fn) the tie at T rounds down to max (whose mantissa is even),
    so there only ``|x| > T`` overflows. ``x == 0`` is "zero"; NaN and ±inf are "nonfinite".

    Note:
        The rule is applied to the exact value. torch's float64 -> float16/bfloat16 cast rounds
        through float32 first, so for a float64 value within float32 rounding of a tie point the
        cast can land on the other side; float32 inputs cast exactly as classified.

    Args:
        values: a torch tensor of any dtype (kept on its device), a numpy array, a float or a list.
        fmt: a name from :data:`FORMAT_NAMES`, a :class:`Format` or a torch dtype.

    Returns:
        An int8 tensor of the shape of ``values``.

    Examples:
        >>> categorize([70000.0, 1e-3, 1e-6, 1e-8, 0.0], "float16").tolist()
        [0, 1, 2, 3, 4]
    """
    spec = get_format(fmt)
    x = _as_float64(values)
    mag = x.abs()
    s = spec.smallest_subnormal
    codes = torch.full(x.shape, _CODE["normal"], dtype=torch.int8, device=x.device)
    codes[mag < spec.smallest_normal - s / 2] = _CODE["subnormal"]
    codes[mag <= s / 2] = _CODE["underflow"]
    codes[mag == 0] = _CODE["zero"]
    threshold = spec.overflow_threshold
    codes[(mag >= threshold) if spec.has_inf else (mag > threshold)] = _CODE["overflow"]
    codes[~torch.isfinite(x)] = _CODE["nonfinite"]
    return codes


def classify(values: Any, fmt: str | Format | torch.dtype) -> dict[str, int]:
    """Count the values that would overflow, stay normal, become subnormal or flush to zero in ``fmt``.

    Computed from the exact values before any cast; the boundary rule is the one of
    :func:`categorize`. "underflow" counts non-zero values that round to zero, "zero" the exact
    zeros, "nonfinite" NaN and ±inf already present.

    Args:
        values: a torch tensor of any dtype, a numpy array, a float or a list of floats.
        fmt: a name from :data:`FORMAT_NAMES`, a :class:`Format` or a torch dtype.

    Returns:
        A dict with the keys of :data:`CATEGORIES`, in that order.

    Examples:
        >>> classify(torch.tensor([1.5**100, 0.8**100]), "float32")["normal"]
        2
        >>> import numpy as np
        >>> classify(np.array([448.0, 464.0, 465.0]), "float8_e4m3fn")["overflow"]
        1
    """
    codes = categorize(values, fmt).reshape(-1).to(torch.int64)
    counts = torch.bincount(codes, minlength=len(CATEGORIES)).tolist()  # one device sync
    return dict(zip(CATEGORIES, (int(c) for c in counts), strict=True))


def fractions(values: Any, fmt: str | Format | torch.dtype) -> dict[str, float]:
    """:func:`classify`'s counts divided by the number of values (all 0.0 for an empty input).

    Examples:
        >>> fractions([1e5, 1.0, 2.0, 3.0], "float16")["overflow"]
        0.25
    """
    counts = classify(values, fmt)
    total = sum(counts.values())
    return {name: (count / total if total else 0.0) for name, count in counts.items()}


def headroom_bits(max_abs: float, fmt: str | Format | torch.dtype) -> float:
    """Powers of two a value of magnitude ``max_abs`` can still grow before it exceeds ``fmt.max``.

    .. math::
        h = \\log_2 \\frac{\\text{max}}{|x|_{\\max}}

    Negative when ``max_abs`` is already out of range; ``math.inf`` when it is 0. A loss scale of
    ``2**k`` (mixed-precision training, Micikevicius et al. 2018) needs ``k < h``.

    Args:
        max_abs: the largest magnitude, >= 0.
        fmt: a name from :data:`FORMAT_NAMES`, a :class:`Format` or a torch dtype.

    Examples:
        >>> headroom_bits(65504.0 / 8, "float16")
        3.0
    """
    spec = get_format(fmt)
    value = check_nonnegative("max_abs", max_abs)
    if value == 0:
        return math.inf
    return math.log2(spec.max) - math.log2(value)
