"""Simulate a recipe on a tensor: the values it yields (:func:`quantize`) and what it cost (:func:`measure`).

:func:`measure` quantizes a tensor under several recipes in one sweep (1 Mi values at a time, every
recipe on each chunk while it is in cache) and reports, per recipe, the counts of values that overflow,
underflow (non-zero values that read back as zero) or land on a subnormal of the element format, and the
error energy, from which the relative mean squared error

.. math::
    \\text{rel\\_mse} = \\frac{\\sum_i (q_i - x_i)^2}{\\sum_i x_i^2}, \\qquad
    \\text{SQNR} = -10 \\log_{10} \\text{rel\\_mse}\\ \\text{dB},

and the headroom :math:`\\log_2(\\text{max}_{elem} / \\max_i |x_i s_i|)` in bits (negative: some values
saturate or overflow; ``s_i`` the scale of the value's block). NVIDIA Transformer Engine's precision
debug tools report the same quantities per GEMM input (``LogFp8TensorStats``: underflows %, MSE).

Examples:
    >>> import torch
    >>> x = torch.tensor([[1.0, 1000.0, 0.001, -3.3]])
    >>> quantize(x, "e4m3_cast").tolist()  # 1000 saturates; 0.001 rounds to the subnormal 2**-9
    [[1.0, 448.0, 0.001953125, -3.25]]
    >>> quantize(x, "mxfp8_e4m3").tolist()  # one block, X = 2**(9 - 8): 1000 / 2 saturates at 448
    [[1.0, 896.0, 0.0, -3.25]]
    >>> m = measure(x, ["e4m3_cast"])["e4m3_cast"]
    >>> m.overflow, m.underflow, m.subnormal, round(m.headroom_bits, 3)
    (1, 0, 1, -1.158)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from numstab.errors import InvalidArgumentError
from numstab.precision.recipes import Layout, Recipe, get_recipe
from numstab.precision.scaling import RowMax, plan, round_chunk

__all__ = ["quantize", "measure", "Measurement"]


def quantize(
    x: torch.Tensor, recipe: str | Recipe, *, dim: int = -1, amax: float | None = None
) -> torch.Tensor:
    """Quantize ``x`` under ``recipe`` and read it back: the values the recipe feeds the GEMM.

    Blocks (MX, NVFP4) run along ``dim``, the GEMM's reduction dimension: ``-1`` for an activation
    ``(..., in_features)`` or a ``Linear`` weight ``(out, in)``; for the per-tensor recipes and the
    plain casts ``dim`` does not matter. Each recipe's arithmetic is in :mod:`numstab.precision.recipes`.

    Args:
        x: a floating-point tensor (taken in float32, the precision the recipes start from; float64
            values are rounded to float32 first).
        recipe: a name from :data:`numstab.precision.RECIPE_NAMES`.
        dim: the dimension along which blocks of values share a scale.
        amax: per-tensor and delayed recipes only: the amax the scale is computed from (delayed
            scaling's history maximum); default the tensor's own.

    Returns:
        A float32 tensor of the shape of ``x`` (``x`` itself is never written).

    Raises:
        NumstabTypeError: ``x`` is not a real floating-point tensor.
        UnknownNameError: an unknown recipe (the message lists the valid ones).
        InvalidArgumentError: ``dim`` out of range, ``x`` on the meta device, or ``amax`` negative,
            non-finite or given to a recipe without a per-tensor scale.

    Examples:
        >>> x = torch.tensor([3.0, 0.5, -1e-4])
        >>> quantize(x, "e4m3_tensor").tolist()  # s = 448 / 3: 0.5 s = 74.67 rounds to 72
        [3.0, 0.4821428656578064, -0.00010463169746799394]
        >>> quantize(x, "nvfp4").tolist()  # E2M1 has 6 and 1 (times 0.5), nothing near 1e-4 / 0.5
        [3.0, 0.5, -0.0]
    """
    spec = get_recipe(recipe)
    layout = Layout.of(x, dim)
    scales = plan(spec, RowMax.of(layout.rows), amax=amax)
    out = torch.empty_like(layout.rows)
    for start, rows in layout.chunks():
        out[start : start + rows.shape[0]] = round_chunk(spec, rows, scales, start, count=False).values
    return layout.restore(out)


@dataclass(frozen=True)
class Measurement:
    """What one recipe did to one tensor.

    Counts are of values; the fractions divide them by the number of non-zero values (zeros cannot
    overflow, underflow or be subnormal), as TE's "underflows %" does.

    Attributes:
        recipe: the recipe's name.
        numel: number of values.
        nonzero: number of non-zero values.
        overflow: values whose scaled magnitude left the element's range (saturated, or became ±inf).
        underflow: non-zero values that read back as zero.
        subnormal: values that landed on a subnormal of the element format.
        error_energy: :math:`\\sum (q - x)^2` (float64 sum of float32 chunk sums).
        energy: :math:`\\sum x^2`.
        headroom_bits: :math:`\\log_2(\\text{max}_{elem} / \\max |x s|)`; ``inf`` for an all-zero tensor.
    """

    recipe: str
    numel: int
    nonzero: int
    overflow: int
    underflow: int
    subnormal: int
    error_energy: float
    energy: float
    headroom_bits: float

    @property
    def rel_mse(self) -> float:
        """Relative mean squared error :math:`\\sum (q-x)^2 / \\sum x^2` (0 for an all-zero tensor)."""
        if self.energy == 0:
            return 0.0 if self.error_energy == 0 else math.inf
        return self.error_energy / self.energy

    @property
    def sqnr_db(self) -> float:
        """Signal to quantization noise ratio, :math:`-10 \\log_{10}` rel_mse, in dB (inf when exact)."""
        rel = self.rel_mse
        return math.inf if rel == 0 else (-10.0 * math.log10(rel) if math.isfinite(rel) else -math.inf)

    def fraction(self, count: int) -> float:
        """``count`` over the number of non-zero values (0.0 when there are none)."""
        return count / self.nonzero if self.nonzero else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The fields and the derived ``rel_mse`` and ``sqnr_db``, JSON-ready."""
        return {**asdict(self), "rel_mse": self.rel_mse, "sqnr_db": self.sqnr_db}


def measure(
    x: torch.Tensor,
    recipes: Sequence[str],
    *,
    dim: int = -1,
    amax: Mapping[str, float] | None = None,
    prescale: Mapping[str, float] | None = None,
) -> dict[str, Measurement]:
    """Quantize ``x`` under each recipe (as :func:`quantize` does) and measure what was lost.

    Args:
        x: a floating-point tensor.
        recipes: recipe names (see :data:`numstab.precision.RECIPE_NAMES`).
        dim: the GEMM's reduction dimension (where blocks run).
        amax: ``{recipe: amax}`` for per-tensor recipes scaled by another amax (delayed scaling).
        prescale: ``{recipe: scale}`` for plain casts of a tensor first multiplied by a power of two
            (a gradient under a loss scale); errors are relative, so the scale cancels.

    Returns:
        ``{recipe: Measurement}`` in the order given.

    Examples:
        >>> g = torch.full((64,), 1e-6)
        >>> m = measure(g, ["float16"], prescale={"float16": 2.0**16})["float16"]
        >>> m.subnormal, m.underflow, m.rel_mse < 1e-6
        (0, 0, True)
        >>> measure(g, ["float16"])["float16"].subnormal
        64
    """
    specs = _check_recipes(recipes, amax, prescale)
    layout = Layout.of(x, dim)
    maxima = RowMax.of(layout.rows)
    scales = {
        s.name: plan(s, maxima, amax=(amax or {}).get(s.name), prescale=(prescale or {}).get(s.name))
        for s in specs
    }
    totals = {s.name: _Totals.zero(layout.rows.device) for s in specs}
    whole = _Totals.zero(layout.rows.device)  # the tensor itself: zeros before rounding, energy
    for start, rows in layout.chunks():
        flat = rows.reshape(-1)
        whole.zeros += flat.numel() - torch.count_nonzero(flat)
        whole.error += _sum_of_squares(flat)  # the energy of x
        whole.numel += flat.numel()
        for spec in specs:
            totals[spec.name].add(round_chunk(spec, rows, scales[spec.name], start, count=True), flat)
    return {s.name: totals[s.name].result(s, scales[s.name].max_scaled, x.numel(), whole) for s in specs}


def _check_recipes(
    recipes: Sequence[str], amax: Mapping[str, float] | None, prescale: Mapping[str, float] | None
) -> list[Recipe]:
    if isinstance(recipes, str):
        recipes = [recipes]
    specs = [get_recipe(r) for r in recipes]
    if len({s.name for s in specs}) != len(specs):
        raise InvalidArgumentError(f"recipes must not repeat a name, got {list(recipes)!r}")
    for option, given in (("amax", amax), ("prescale", prescale)):
        stray = set(given or {}) - {s.name for s in specs}
        if stray:
            raise InvalidArgumentError(
                f"{option} names recipe(s) {sorted(stray)} that are not measured: add them to recipes or "
                "drop them"
            )
    return specs


@dataclass
class _Totals:
    """Running sums of one recipe over the chunks of one tensor (tensors: one device sync at the end).

    For the unrounded tensor itself (``whole``), ``error`` holds its energy and ``numel`` its padded size.
    """

    zeros: torch.Tensor
    subnormal: torch.Tensor
    overflow: torch.Tensor
    error: torch.Tensor
    numel: int = 0

    @classmethod
    def zero(cls, device: torch.device) -> _Totals:
        def count() -> torch.Tensor:
            return torch.zeros((), dtype=torch.int64, device=device)

        return cls(count(), count(), count(), torch.zeros((), dtype=torch.float64, device=device))

    def add(self, chunk: Any, flat: torch.Tensor) -> None:
        self.error += _sum_of_squares(chunk.values.reshape(-1) - flat)
        self.zeros += chunk.rounded.zeros.to(self.zeros.device)
        self.subnormal += chunk.rounded.subnormals.to(self.zeros.device)
        self.overflow += chunk.overflow.to(self.zeros.device)

    def result(self, spec: Recipe, max_scaled: torch.Tensor, numel: int, whole: _Totals) -> Measurement:
        """The measurement, given the totals of the unrounded tensor (``whole``: its zeros and energy).

        Zero counts include the layout's padding on both sides, so their difference is exact.
        """
        top = float(max_scaled.max()) if max_scaled.numel() else 0.0
        zeros_before = int(whole.zeros)
        padding = whole.numel - numel
        return Measurement(
            recipe=spec.name,
            numel=numel,
            nonzero=numel + padding - zeros_before,
            overflow=int(self.overflow),
            underflow=int(self.zeros) - zeros_before,
            subnormal=int(self.subnormal),
            error_energy=float(self.error),
            energy=float(whole.error),
            headroom_bits=_headroom(spec.element.fmt.max, top),
        )


def _sum_of_squares(flat: torch.Tensor) -> torch.Tensor:
    """Sum of squares in float32 (BLAS), again in float64 when that overflowed (values beyond ~1e19)."""
    total = torch.dot(flat, flat)
    if bool(torch.isinf(total)):
        return torch.dot(flat.to(torch.float64), flat.to(torch.float64))
    return total.to(torch.float64)


def _headroom(limit: float, top: float) -> float:
    """log2(limit / top): inf for top 0, -inf for top inf, NaN for NaN."""
    if top == 0:
        return math.inf
    return math.log2(limit / top) if math.isfinite(top) else (-math.inf if top > 0 else math.nan)
