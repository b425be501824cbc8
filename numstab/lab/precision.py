"""Number formats and the chapter's arithmetic: 1.5^100 overflows float16, 0.8^100 flushes to zero.

The study notes compare 1.5^100 ~ 4e17 and 0.8^100 ~ 2e-10 with float16's largest value 65504 and its
smallest step 2^-24 ~ 6e-8. :func:`precision` puts the format table of :mod:`numstab.precision` beside
those two powers in every format, and runs a deep product of random matrices in float16, bfloat16 and
float32 to show the layer at which each format overflows or underflows, against a float64 reference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from numstab import precision as _precision
from numstab.errors import InvalidArgumentError, check_finite, check_int_at_least, check_seed
from numstab.lab._result import LabResult
from numstab.lab._validate import scales_tuple
from numstab.lab.comparison import SILENT, Comparison
from numstab.notation import fmt, power10
from numstab.resources import check_memory

__all__ = ["precision", "Precision", "PowerRow", "DeepProduct", "RUN_FORMATS"]

#: Formats the running products are computed in (torch has no arithmetic for the 8-bit formats on CPU).
RUN_FORMATS = ("float16", "bfloat16", "float32")


@dataclass(frozen=True, repr=False)
class PowerRow(LabResult):
    """base**exponent in one format.

    Attributes:
        base, exponent: the power.
        fmt: the format's name.
        log10_exact: log10 of the exact value.
        category: where the exact value lands (:func:`numstab.precision.classify`): "overflow", "normal",
            "subnormal" or "underflow".
        computed: the running product base * base * ... computed in ``fmt`` (NaN for the 8-bit formats,
            which torch cannot multiply on CPU), as a float.
        first_overflow: the first step whose running product is inf (None if never).
        first_subnormal: the first step whose running product is subnormal (None if never).
        first_zero: the first step whose running product is 0 (None if never).
    """

    base: float
    exponent: int
    fmt: str
    log10_exact: float
    category: str
    computed: float
    first_overflow: int | None
    first_subnormal: int | None
    first_zero: int | None


@dataclass(frozen=True, repr=False)
class DeepProduct(LabResult):
    """A product of ``depth`` random k x k matrices (N(0, scale^2)) run in several formats.

    Attributes:
        scale: standard deviation of the entries.
        formats: the formats it ran in.
        log10_max: log10 max |entry| after each layer l = 0..depth, per format, shape (F, depth + 1);
            +inf once the product overflowed (or turned NaN), -inf once it is exactly 0.
        reference_log10_max: the same in float64 with renormalization (never leaves the range), (depth + 1,).
        first_overflow: per format, the first layer with a non-finite entry (None if never).
        first_subnormal: per format, the first layer whose largest entry is below the smallest normal.
        first_zero: per format, the first layer where every entry is 0.
        predicted_overflow: per format, the first layer where the reference exceeds the format's max.
        predicted_zero: per format, the first layer where the reference's largest entry is below half the
            smallest subnormal (rounds to 0).
        lyapunov: top Lyapunov exponent per layer (nats), the theory's growth rate.
    """

    scale: float
    formats: tuple[str, ...]
    log10_max: np.ndarray
    reference_log10_max: np.ndarray
    first_overflow: tuple[int | None, ...]
    first_subnormal: tuple[int | None, ...]
    first_zero: tuple[int | None, ...]
    predicted_overflow: tuple[int | None, ...]
    predicted_zero: tuple[int | None, ...]
    lyapunov: float


@dataclass(frozen=True, repr=False)
class Precision(LabResult):
    """Result of :func:`precision`.

    Attributes:
        formats: the format table (:class:`numstab.precision.Format` for every format).
        powers: one :class:`PowerRow` per (power, format), powers outer.
        products: one :class:`DeepProduct` per scale.
        k, depth, seed: settings of the deep products.
    """

    formats: tuple[_precision.Format, ...]
    powers: tuple[PowerRow, ...]
    products: tuple[DeepProduct, ...]
    k: int
    depth: int
    seed: int

    def power(self, base: float, fmt: str) -> PowerRow:
        """Return the row of ``base`` in format ``fmt``."""
        return next(p for p in self.powers if p.base == base and p.fmt == fmt)

    def comparisons(self) -> list[Comparison]:
        """The chapter's powers in float16, bfloat16 and float32, then each deep product's first bad layer.

        A power's regime is where its exact value lands (:func:`numstab.precision.classify`; "ok" for a
        normal number); it agrees (with the chapter for float16, else with that regime) when the computed
        power is wrong exactly where the exact value leaves the format (:func:`_lands_as_predicted`).
        Agreement of a deep product: the layer at which the format overflowed (or hit 0)
        is within ``max(3, 5%)`` layers of the one the float64 reference predicts, or neither happened.

        Examples:
            >>> [(row.regime, row.agreement) for row in precision(depth=30, scales=[1.0]).comparisons()][:2]
            [('overflow', 'yes'), ('ok', 'theory: yes')]
        """
        rows = [_power_row(p) for p in self.powers if p.fmt in ("float16", "bfloat16", "float32")]
        for d in self.products:
            for j, name in enumerate(d.formats):
                got = d.first_overflow[j] or d.first_zero[j]
                want = d.predicted_overflow[j] or d.predicted_zero[j]
                rows.append(
                    Comparison(
                        f"{name}, scale {d.scale:g}: {'inf' if d.lyapunov > 0 else '0'} from layer",
                        "-",
                        got if got is not None else f"none in {self.depth}",
                        want if want is not None else f"none in {self.depth}",
                        regime=("overflow" if d.lyapunov > 0 else "underflow") if got is not None else "ok",
                        agrees=_same_layer(got, want),
                    )
                )
        return rows


def _same_layer(got: int | None, want: int | None) -> bool:
    """Both None, or within max(3, 5% of the prediction) layers of each other."""
    if got is None or want is None:
        return got is None and want is None
    return abs(got - want) <= max(3, 0.05 * want)


def _lands_as_predicted(p: PowerRow) -> bool:
    """The computed power is wrong exactly where the exact value leaves the format.

    Overflow: the running product is inf. Underflow: it is 0 or more than 2x off (a subnormal that got
    stuck). A normal or subnormal value: finite, non-zero and within 2x of the exact value.
    """
    if p.category == "overflow":
        return math.isinf(p.computed)
    off = p.computed == 0 or not math.isfinite(p.computed)
    off = off or abs(math.log10(p.computed) - p.log10_exact) > _LOG10_2
    return off if p.category == "underflow" else not off


_LOG10_2 = math.log10(2.0)


def _power_row(p: PowerRow) -> Comparison:
    chapter = ("overflows (> 65504)" if p.base > 1 else "flushes (< 2^-24)") if p.fmt == "float16" else SILENT
    step = p.first_overflow or p.first_zero
    note_cell = f" (from step {step})" if step else ""
    fields: tuple[tuple[str, Any], ...] = ()
    if not step and p.category == "underflow" and p.first_subnormal:
        note_cell = f" (subnormal from step {p.first_subnormal}, then stuck)"
        fields = (
            ("power", f"{p.base:g}^{p.exponent}"), ("fmt", p.fmt), ("base", f"{p.base:g}"),
            ("computed", fmt(p.computed)), ("factor", 10 ** (math.log10(p.computed) - p.log10_exact)),
        )  # fmt: skip
    return Comparison(
        f"{p.base:g}^{p.exponent} in {p.fmt}",
        chapter,
        ("n/a" if math.isnan(p.computed) else fmt(p.computed)) + note_cell,
        f"{power10(p.log10_exact)}: {p.category}",
        regime=p.category if p.category != "normal" else "ok",
        agrees=None if math.isnan(p.computed) else _lands_as_predicted(p),
        note_key="note.stuck" if fields else "",
        note_fields=fields,
    )


def precision(
    *,
    powers: Sequence[tuple[float, int]] = ((1.5, 100), (0.8, 100)),
    scales: Sequence[float] = (1.0, 0.25),
    depth: int = 200,
    k: int = 4,
    run_formats: Sequence[str] = RUN_FORMATS,
    seed: int = 0,
) -> Precision:
    """Tabulate the formats, place the chapter's powers in each, and run a deep product per format.

    A format with p mantissa bits and exponent range [e_min, e_max] holds magnitudes up to
    (2 - 2^-p) 2^e_max; below 2^e_min values are subnormal and below 2^(e_min - p - 1) they round to 0.
    A product growing at the Lyapunov rate lambda (Newman 1986) leaves the range after about

    .. math::
        l^* \\approx \\frac{\\ln \\text{max}}{\\lambda}

    layers (float16: 65504 is e^11.1; float32 and bfloat16: 3.4e38 is e^88.7).

    Args:
        powers: (base, exponent) pairs; the notes: 1.5^100 and 0.8^100.
        scales: entry standard deviations of the deep products (1.0 grows, 0.25 decays for k = 4).
        depth: layers of the deep products.
        k: matrix size.
        run_formats: formats to run the products in (any of float16, bfloat16, float32, float64).
        seed: seed of the torch generator (the same draws in every format).

    Examples:
        >>> r = precision(depth=30)
        >>> r.power(1.5, "float16").category, r.power(1.5, "float16").first_overflow
        ('overflow', 28)
        >>> r.power(0.8, "float16").category, r.power(0.8, "float32").category
        ('underflow', 'normal')
    """
    depth = check_int_at_least("depth", depth, 1)
    k = check_int_at_least("k", k, 1)
    scale_values = scales_tuple("scales", scales)
    fmts = [_precision.get_format(f).name for f in run_formats]
    table = _precision.formats()
    seed = check_seed("seed", seed)
    pairs = _check_powers(powers)
    rows = tuple(_power(b, e, f) for b, e in pairs for f in table.values())
    # the (depth, k, k) draws, a scaled copy per format, the log curves; two products alive per layer
    need = 8.0 * depth * k * k * (2 + len(fmts)) + 64.0 * depth * len(fmts) * len(scale_values)
    check_memory(f"depth={depth}, k={k}", need, "pass a smaller depth or k")
    gen = torch.Generator().manual_seed(seed)
    draws = torch.randn(depth, k, k, generator=gen, dtype=torch.float64)
    products = tuple(_deep(s, draws, fmts) for s in scale_values)
    return Precision(
        formats=tuple(table.values()), powers=rows, products=products, k=k, depth=depth, seed=seed
    )


#: Bytes per step of a running power kept (a 0-d float64 tensor and its list slot), per format run.
_BYTES_PER_STEP = 4 * 200


def _check_powers(powers: Sequence[tuple[float, int]]) -> list[tuple[float, int]]:
    """(base, exponent) pairs with finite bases and exponents >= 1 whose running powers fit in memory."""
    pairs = []
    for i, pair in enumerate(powers):
        if isinstance(pair, (str, bytes)) or not hasattr(pair, "__len__") or len(pair) != 2:
            raise InvalidArgumentError(
                f"powers[{i}] must be a (base, exponent) pair, got {pair!r}: e.g. (1.5, 100)"
            )
        base = check_finite(f"powers[{i}] base", pair[0])
        pairs.append((base, check_int_at_least(f"powers[{i}] exponent", pair[1], 1)))
    steps = sum(e for _, e in pairs)
    check_memory(f"powers with {steps} steps in all", _BYTES_PER_STEP * steps, "use smaller exponents")
    return pairs


def _power(base: float, exponent: int, fmt: _precision.Format) -> PowerRow:
    log10_exact = exponent * math.log10(abs(base)) if base else -math.inf
    exact = torch.tensor([float(base) ** exponent if log10_exact < 300 else math.inf], dtype=torch.float64)
    counts = _precision.classify(exact, fmt)
    category = next(name for name, count in counts.items() if count)
    if fmt.name not in ("float16", "bfloat16", "float32", "float64"):
        return PowerRow(base, exponent, fmt.name, log10_exact, category, math.nan, None, None, None)
    values = _running_power(float(base), exponent, fmt.dtype)
    return PowerRow(
        base,
        exponent,
        fmt.name,
        log10_exact,
        category,
        float(values[-1]),
        _first(~torch.isfinite(values)),
        _first((values != 0) & (values.abs() < fmt.smallest_normal)),
        _first(values == 0),
    )


def _running_power(base: float, exponent: int, dtype: torch.dtype) -> torch.Tensor:
    """base, base^2, ..., base^exponent, each step multiplied and rounded in ``dtype`` (as float64 values)."""
    factor = torch.tensor(base, dtype=dtype)
    value, out = factor.clone(), [factor.double()]
    for _ in range(exponent - 1):
        value = value * factor
        out.append(value.double())
    return torch.stack(out)


def _first(mask: torch.Tensor) -> int | None:
    """1-based index of the first True (a step or layer number), None when there is none."""
    hits = torch.nonzero(mask.reshape(-1))
    return int(hits[0]) + 1 if len(hits) else None


def _deep(scale: float, draws: torch.Tensor, fmts: list[str]) -> DeepProduct:
    reference = _reference(scale * draws)
    curves, over, sub, zero, pred_over, pred_zero = [], [], [], [], [], []
    for name in fmts:
        spec = _precision.get_format(name)
        curve = _in_format(scale * draws, spec.dtype)
        curves.append(curve)
        finite = np.isfinite(curve)
        over.append(_first(torch.from_numpy(np.isposinf(curve[1:]))))
        sub.append(_first(torch.from_numpy(finite[1:] & (curve[1:] < math.log10(spec.smallest_normal)))))
        zero.append(_first(torch.from_numpy(np.isneginf(curve[1:]))))
        pred_over.append(_first(torch.from_numpy(reference[1:] > math.log10(spec.max))))
        pred_zero.append(_first(torch.from_numpy(reference[1:] < math.log10(spec.smallest_subnormal / 2))))
    from numstab import theory

    return DeepProduct(
        scale=scale,
        formats=tuple(fmts),
        log10_max=np.stack(curves),
        reference_log10_max=reference,
        first_overflow=tuple(over),
        first_subnormal=tuple(sub),
        first_zero=tuple(zero),
        predicted_overflow=tuple(pred_over),
        predicted_zero=tuple(pred_zero),
        lyapunov=float(theory.lyapunov_exponent(draws.shape[-1], scale)),
    )


def _in_format(draws: torch.Tensor, dtype: torch.dtype) -> np.ndarray:
    """log10 max |entry| of Y_l = W_l Y_{l-1} computed in ``dtype``; +inf after overflow or NaN, -inf at 0."""
    y = torch.eye(draws.shape[-1], dtype=dtype)
    out = [0.0]
    for w in draws:
        y = w.to(dtype) @ y
        top = y.abs().max().double()
        out.append(math.inf if not torch.isfinite(top) or out[-1] == math.inf else float(top.log10()))
    return np.array(out)


def _reference(draws: torch.Tensor) -> np.ndarray:
    """The same curve in float64, renormalized every layer so it never leaves the range."""
    y = torch.eye(draws.shape[-1], dtype=torch.float64)
    log_scale, out = 0.0, [0.0]
    for w in draws:
        y = w @ y
        top = float(y.abs().max())
        y, log_scale = y / top, log_scale + math.log10(top)
        out.append(log_scale)
    return np.array(out)
