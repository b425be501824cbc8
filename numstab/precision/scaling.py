"""The scales of each recipe, and one chunk of a tensor scaled, rounded and read back.

:func:`plan` computes a recipe's scales for a whole tensor (laid out by
:class:`numstab.precision.recipes.Layout` in rows of 32 along the reduction dimension);
:func:`round_chunk` applies them to a chunk of rows. The arithmetic of each recipe, and its sources,
are in :mod:`numstab.precision.recipes`; this module does exactly that arithmetic, in float32 wherever
the recipe does it in float32:

- plain casts: nothing (or a power-of-two loss scale ``prescale``, read back by dividing by it);
- per-tensor (current or delayed) scaling: :math:`s = \\text{float32}(\\text{max}_{fp8} /
  \\max(a, 10^{-12}))` computed in float64 (torchao ``amax_to_scale``), read back as ``q / s``;
- MX: the E8M0 exponent is read off the float32 bits of each block's maximum:
  :math:`\\lfloor\\log_2 m\\rfloor` is the biased exponent field minus 127 for a normal ``m``, and for a
  float32-subnormal or zero ``m`` the clamp to :math:`2^{-127}` gives what the exact floor would;
- NVFP4: tensor scale ``t = amax / 2688``, block scales rounded to E4M3 (clamped to [2^-6, 448]),
  encode by ``x * ((1 / t) / b)``, decode by ``q * (t * b)``, all float32 as torchao 0.18 does.

Examples:
    >>> import torch
    >>> from numstab.precision.recipes import RECIPES, Layout
    >>> layout = Layout.of(torch.tensor([[3.0, 0.5, -0.25]]), -1)
    >>> scales = plan(RECIPES["mxfp8_e4m3"], RowMax.of(layout.rows))
    >>> float(scales.decode[0, 0])  # 2**(floor(log2 3) - 8)
    0.0078125
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from numstab.errors import InvalidArgumentError, check_nonnegative, check_positive
from numstab.precision.elements import E2M1, Rounded
from numstab.precision.recipes import LAYOUT_BLOCK, Recipe

__all__ = ["RowMax", "Scales", "plan", "round_chunk", "Chunk"]

#: torchao's floor on a tensor's amax before dividing by it (``float8_utils.EPS``).
_AMAX_FLOOR = 1e-12
#: NVFP4's tensor scale maps the tensor's amax to the largest block scale times the largest element.
_NVFP4_RANGE = 448.0 * 6.0
#: E4M3's smallest normal value: the floor on NVFP4 block scales (torchao ``E4M3_EPS``).
_E4M3_TINY = 2.0**-6


@dataclass(frozen=True)
class RowMax:
    """Largest magnitudes of a laid-out tensor, shared by every recipe measured on it.

    Attributes:
        half: ``(2 n_rows,)`` max |x| over each 16 values (NVFP4 blocks); NaN where a NaN is.
        row: ``(n_rows,)`` max |x| over each row of 32 (MX blocks).
        tensor: 0-dim max |x| over the tensor.
    """

    half: torch.Tensor
    row: torch.Tensor
    tensor: torch.Tensor

    @classmethod
    def of(cls, rows: torch.Tensor) -> RowMax:
        """One pass over ``rows`` (``(n, 32)`` float32)."""
        magnitude = rows.abs()
        # a tree of maxima over halves of each row: twice as fast as amax over 16 contiguous values
        eight = torch.maximum(magnitude[:, 0:8], magnitude[:, 8:16]), torch.maximum(magnitude[:, 16:24],
                                                                                    magnitude[:, 24:32])
        four = [torch.maximum(e[:, :4], e[:, 4:]) for e in eight]
        two = [torch.maximum(f[:, :2], f[:, 2:]) for f in four]
        # torch.maximum propagates NaN, as amax does
        half = torch.stack([torch.maximum(t[:, 0], t[:, 1]) for t in two], dim=1).reshape(-1)
        row = torch.maximum(half[0::2], half[1::2])
        tensor = row.amax() if row.numel() else torch.zeros((), device=rows.device)
        return cls(half, row, tensor)


@dataclass(frozen=True)
class Scales:
    """One recipe's scales for a laid-out tensor.

    Attributes:
        width: values per scale row: 32 (one scale per row, or one for the tensor) or 16 (NVFP4).
        encode: multiplier into the element's units: 0-dim, or ``(n_rows * 32 / width, 1)``.
        decode: 0-dim divisor when :attr:`divide`, else a multiplier shaped like :attr:`encode`.
        divide: read back by dividing by :attr:`decode` (per-tensor recipes) instead of multiplying.
        max_scaled: the largest |x * encode| (0-dim, or one per scale row): overflow and headroom.
        identity: the scale is exactly 1 (a plain cast): no multiplication at all.
    """

    width: int
    encode: torch.Tensor
    decode: torch.Tensor
    divide: bool
    max_scaled: torch.Tensor
    identity: bool = False


def plan(
    recipe: Recipe, maxima: RowMax, *, amax: float | None = None, prescale: float | None = None
) -> Scales:
    """The scales ``recipe`` uses on the tensor whose maxima are ``maxima``.

    Args:
        recipe: the recipe.
        maxima: :meth:`RowMax.of` the laid-out tensor.
        amax: per-tensor and delayed recipes: the amax to scale by (default the tensor's).
        prescale: plain casts only: multiply by this power of two first and divide after (a loss scale).

    Raises:
        InvalidArgumentError: ``amax`` or ``prescale`` given to a recipe that has no use for it, or
            not a finite number >= 0 (> 0 for ``prescale``).

    Examples:
        >>> from numstab.precision.recipes import RECIPES
        >>> m = RowMax.of(torch.tensor([[2.0] + [0.0] * 31]))
        >>> float(plan(RECIPES["e4m3_tensor"], m).encode)
        224.0
    """
    if amax is not None and recipe.scaling not in ("tensor", "delayed"):
        raise InvalidArgumentError(
            f"amax applies to per-tensor recipes (e4m3_tensor, e5m2_tensor, e4m3_delayed, e5m2_delayed), "
            f"not to {recipe.name!r}: leave amax=None"
        )
    if prescale is not None and recipe.scaling != "none":
        raise InvalidArgumentError(
            f"prescale (a loss scale) applies to the plain casts, not to the scaled recipe {recipe.name!r}, "
            "whose own scale absorbs it: leave prescale=None"
        )
    if recipe.scaling == "none":
        return _cast_scales(maxima, prescale)
    if recipe.scaling in ("tensor", "delayed"):
        given = None if amax is None else check_nonnegative("amax", amax)
        return _tensor_scales(recipe, maxima, given)
    if recipe.scaling == "mx":
        return _mx_scales(recipe, maxima)
    return _nvfp4_scales(maxima)


def _cast_scales(maxima: RowMax, prescale: float | None) -> Scales:
    value = 1.0 if prescale is None else check_positive("prescale", prescale)
    scale = torch.tensor(value, dtype=torch.float32, device=maxima.tensor.device)
    return Scales(LAYOUT_BLOCK, scale, scale, True, maxima.tensor * scale, identity=value == 1.0)


def _tensor_scales(recipe: Recipe, maxima: RowMax, amax: float | None) -> Scales:
    reference = maxima.tensor.to(torch.float64) if amax is None else torch.tensor(amax, dtype=torch.float64)
    reference = reference.to(maxima.tensor.device)
    scale = (recipe.element.fmt.max / reference.clamp(min=_AMAX_FLOOR)).to(torch.float32)
    return Scales(LAYOUT_BLOCK, scale, scale, True, maxima.tensor * scale)


def _mx_scales(recipe: Recipe, maxima: RowMax) -> Scales:
    emax_elem = math.frexp(recipe.element.fmt.max)[1] - 1  # exponent of the largest normal: 8 for 448
    floor_log2 = ((maxima.row.view(torch.int32) >> 23) & 0xFF) - 127
    exponent = (floor_log2 - emax_elem).clamp_(-127, 127).to(torch.float64)
    one = torch.ones((), dtype=torch.float64, device=exponent.device)
    decode = torch.ldexp(one, exponent).to(torch.float32)  # 2**-127 is a float32 subnormal: exact
    encode = torch.ldexp(one, -exponent).to(torch.float32)
    nonfinite = ~torch.isfinite(maxima.row)
    decode = decode.masked_fill_(nonfinite, float("nan"))  # the E8M0 NaN scale: the block reads back NaN
    encode = encode.masked_fill_(nonfinite, float("nan"))
    return Scales(LAYOUT_BLOCK, encode[:, None], decode[:, None], False, maxima.row * encode)


def _nvfp4_scales(maxima: RowMax) -> Scales:
    device = maxima.tensor.device
    if float(maxima.tensor) == 0.0:  # all zeros: nothing to scale (torchao divides 0 by 0 here)
        one = torch.ones((maxima.half.numel(), 1), device=device)
        return Scales(16, one, one, False, maxima.half * 0.0)
    tensor_scale = maxima.tensor / _NVFP4_RANGE
    block = (maxima.half / E2M1.max / tensor_scale).clamp(_E4M3_TINY, 448.0)
    block = block.to(torch.float8_e4m3fn).to(torch.float32)
    encode = (1.0 / tensor_scale) / block
    decode = tensor_scale * block
    return Scales(16, encode[:, None], decode[:, None], False, maxima.half * encode)


@dataclass(frozen=True)
class Chunk:
    """A chunk of rows quantized and read back.

    Attributes:
        values: the values read back, float32, shaped like the chunk.
        rounded: the element-unit values with their zero and subnormal counts.
        overflow: 0-dim int64: values whose scaled magnitude left the element's range (saturated or inf).
    """

    values: torch.Tensor
    rounded: Rounded
    overflow: torch.Tensor


def round_chunk(recipe: Recipe, rows: torch.Tensor, scales: Scales, first_row: int, *, count: bool) -> Chunk:
    """Scale, round and read back ``rows`` (``(k, 32)``, starting at row ``first_row`` of the layout).

    Examples:
        >>> from numstab.precision.recipes import RECIPES, Layout
        >>> layout = Layout.of(torch.tensor([1000.0, 1.0]), -1)
        >>> s = plan(RECIPES["e4m3_cast"], RowMax.of(layout.rows))
        >>> c = round_chunk(RECIPES["e4m3_cast"], layout.rows, s, 0, count=True)
        >>> c.values[0, :2].tolist(), int(c.overflow)
        ([448.0, 1.0], 1)
    """
    view = rows.view(-1, scales.width)
    per_row = scales.encode.dim() > 0
    per = LAYOUT_BLOCK // scales.width  # scale rows per layout row
    span = slice(first_row * per, (first_row + rows.shape[0]) * per)
    encode, decode = (scales.encode[span], scales.decode[span]) if per_row else (scales.encode, scales.decode)
    scaled = view if scales.identity else view * encode
    if count:
        overflow = _overflow(recipe, scaled, scales.max_scaled[span] if per_row else scales.max_scaled)
    else:
        overflow = torch.zeros((), dtype=torch.int64)
    rounded = recipe.element.round_counted(scaled, count=count)
    if scales.identity:
        values = rounded.values
    else:
        values = rounded.values / decode if scales.divide else rounded.values * decode
    return Chunk(values.view(rows.shape), rounded, overflow)


def _overflow(recipe: Recipe, scaled: torch.Tensor, max_scaled: torch.Tensor) -> torch.Tensor:
    """Count values beyond the element's overflow threshold, looking only at rows that reach it."""
    fmt = recipe.element.fmt
    threshold = fmt.overflow_threshold

    def beyond(t: torch.Tensor) -> torch.Tensor:
        return t >= threshold if fmt.has_inf else t > threshold

    reaching = beyond(max_scaled)
    if not bool(reaching.any()):
        return torch.zeros((), dtype=torch.int64, device=scaled.device)
    suspects = scaled if reaching.dim() == 0 else scaled[reaching]
    return beyond(suspects.abs()).sum()
