"""When a GEMM operand loses its signal under a recipe: the thresholds of :func:`numstab.precision.audit`.

Every recipe costs every tensor some precision; what matters is whether a tensor loses more than the
format costs a well-scaled tensor. The reference is a standard normal tensor: the *floor* of a recipe is
what it does to :math:`2^{20}` values :math:`z \\sim N(0, 1)` (blocks along the last dimension), measured
once (:data:`GAUSSIAN_FLOOR`; ``tests/test_probe_precision_rules.py`` re-measures it). For the plain
floating formats it has a closed form: rounding to :math:`m` mantissa bits leaves an error uniform over
half an ulp, so

.. math::
    \\text{rel\\_mse} \\approx \\frac{E[4^{\\lfloor \\log_2 |z| \\rfloor}]}{12} 4^{-m}
    = 0.04524 \\cdot 4^{-m},

7.07e-4 for E4M3 (m = 3), 2.76e-6 for bfloat16 (m = 7). The issue's example threshold, relative MSE
1e-4, lies below E4M3's floor: it would reject every fp8 tensor, so the limits here are relative to the
floor. An operand is **outside the limits** of a recipe when

- its relative MSE exceeds :data:`REL_MSE_FACTOR` (4) times the floor: a signal-to-noise ratio 6 dB
  (one bit) worse than a Gaussian tensor gets;
- or more than :data:`UNDERFLOW_MARGIN` (5 percentage points) of its non-zero values beyond the floor's
  underflow become zero (TE's debug tools report this "underflows %"; NVFP4 flushes 6.8% of a Gaussian
  block by design, so its limit is 11.8%);
- or any value overflows to ±inf (a plain float16 or E5M2 cast): one inf makes the GEMM's outputs inf.

A layer *tolerates* a recipe when its input, weight and output gradient all stay within the limits. A
layer that tolerates none of the audited recipes narrower than 16 bits should **keep high precision**
(bf16 or fp32), as production fp8 recipes do for the layers that need it: DeepSeek-V3 (2024) keeps its
embedding, output head, MoE gating and attention in BF16/FP32, Megatron-Core's ``first_last_layers_bf16``
keeps the first and last transformer layers in BF16, and Transformer Engine's debug features
(``DisableFP8Layer``, ``DisableFP8GEMM``) turn fp8 off per layer or per GEMM from the same statistics.

Examples:
    >>> limits("e4m3_tensor").rel_mse
    0.002796
    >>> limits("nvfp4").underflow
    0.1182
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from numstab.precision import RECIPES

__all__ = [
    "GAUSSIAN_FLOOR", "REL_MSE_FACTOR", "UNDERFLOW_MARGIN", "Limits", "limits", "problem", "severity",
    "shortfall_db", "is_low_precision",
]

#: ``recipe: (underflow fraction, relative MSE)`` of a standard normal tensor of 2**20 values (seed 0).
GAUSSIAN_FLOOR: dict[str, tuple[float, float]] = {
    "bfloat16": (0.0, 2.76e-06),
    "float16": (0.0, 4.309e-08),
    "e4m3_cast": (0.000799, 0.0007063),
    "e5m2_cast": (4.77e-06, 0.002787),
    "e4m3_tensor": (5.72e-06, 0.000699),
    "e5m2_tensor": (0.0, 0.002771),
    "e4m3_delayed": (5.72e-06, 0.000699),
    "e5m2_delayed": (0.0, 0.002771),
    "mxfp8_e4m3": (4.77e-06, 0.0008613),
    "mxfp8_e5m2": (0.0, 0.002906),
    "nvfp4": (0.0682, 0.00906),
}

#: An operand whose relative MSE exceeds this many times the recipe's floor is outside the limits (6 dB).
REL_MSE_FACTOR = 4.0

#: An operand whose underflow exceeds the recipe's floor by this fraction of its non-zero values is outside.
UNDERFLOW_MARGIN = 0.05


@dataclass(frozen=True)
class Limits:
    """The limits of one recipe.

    Attributes:
        rel_mse: the largest relative MSE within the limits.
        underflow: the largest underflow fraction (of non-zero values) within the limits.
        overflow_to_inf: whether the recipe's overflow produces ±inf (then any overflow is outside).
    """

    rel_mse: float
    underflow: float
    overflow_to_inf: bool


def limits(recipe: str) -> Limits:
    """The :class:`Limits` of ``recipe`` (rounded to 4 significant digits, as they are printed).

    Examples:
        >>> limits("float16").overflow_to_inf, limits("e4m3_cast").overflow_to_inf
        (True, False)
    """
    under, rel = GAUSSIAN_FLOOR[recipe]
    element = RECIPES[recipe].element
    return Limits(
        rel_mse=float(f"{REL_MSE_FACTOR * rel:.4g}"),
        underflow=float(f"{under + UNDERFLOW_MARGIN:.4g}"),
        overflow_to_inf=element.fmt.has_inf and not element.saturates,
    )


def problem(recipe: str, *, overflow: float, underflow: float, rel_mse: float) -> str | None:
    """Why an operand is outside ``recipe``'s limits (fractions of its non-zero values), or None.

    Examples:
        >>> problem("e4m3_tensor", overflow=0.0, underflow=0.31, rel_mse=0.002)
        'underflow 31% > 5%'
        >>> problem("e4m3_tensor", overflow=0.0, underflow=0.0, rel_mse=7e-4) is None
        True
    """
    lim = limits(recipe)
    if lim.overflow_to_inf and overflow > 0:
        return f"overflow to inf {_pct(overflow)}"
    if underflow > lim.underflow:
        return f"underflow {_pct(underflow)} > {_pct(lim.underflow)}"
    if not rel_mse <= lim.rel_mse:  # NaN included
        return f"rel MSE {rel_mse:.2g} > {lim.rel_mse:.2g} ({_ratio(rel_mse, GAUSSIAN_FLOOR[recipe][1])})"
    return None


def severity(recipe: str, *, overflow: float, underflow: float, rel_mse: float) -> tuple[bool, float]:
    """Sort key of an operand's problem (larger: worse): overflow to inf first, then the larger ratio of
    underflow or relative MSE to its limit.

    Examples:
        >>> severity("e4m3_cast", overflow=0.0, underflow=0.3, rel_mse=0.0)  # 0.3 / 0.0508
        (False, 5.905511811023622)
    """
    lim = limits(recipe)
    ratio = max(underflow / lim.underflow, rel_mse / lim.rel_mse if math.isfinite(rel_mse) else math.inf)
    return (lim.overflow_to_inf and overflow > 0, ratio)


def shortfall_db(recipe: str, rel_mse: float) -> float:
    """How many dB of SQNR an operand has below a Gaussian tensor in ``recipe`` (negative: better).

    Examples:
        >>> round(shortfall_db("e4m3_tensor", 4 * 0.000699), 2)
        6.02
    """
    floor = GAUSSIAN_FLOOR[recipe][1]
    if rel_mse == 0:
        return -math.inf
    return 10.0 * math.log10(rel_mse / floor) if math.isfinite(rel_mse) else math.inf


def is_low_precision(recipe: str) -> bool:
    """Whether ``recipe``'s elements are narrower than 16 bits (fp8, fp4).

    Examples:
        >>> is_low_precision("mxfp8_e4m3"), is_low_precision("bfloat16")
        (True, False)
    """
    return RECIPES[recipe].element.fmt.bits < 16


def _pct(fraction: float) -> str:
    return f"{100 * fraction:.3g}%"


def _ratio(value: float, floor: float) -> str:
    return f"{value / floor:.3g}x the Gaussian floor" if math.isfinite(value) else "not finite"
