"""Rules that turn a pass's numbers into findings, each with a documented threshold and a concrete fix.

The chapter's diagnosis, made mechanical. A deep network multiplies one Jacobian per layer, so the
second moment of the signal and of the gradient change geometrically with depth:

.. math::

    \\log_2 \\frac{E[x_L^2]}{E[x_0^2]} = \\sum_{l=1}^{L} \\log_2 \\chi^{\\text{fwd}}_l, \\qquad
    \\log_2 \\frac{E[g_1^2]}{E[g_L^2]} = \\sum_{l=2}^{L} \\log_2 \\chi_l

With ReLU and Xavier's variance 2/(fan_in + fan_out) each square layer halves the signal (He et al. 2015),
so 30 layers give log2 = -30; Kaiming's 2/fan_in gives 0. The thresholds below are in powers of two of the
*second moment*: 10 means a factor 1024 in E[x²], 32 in the typical magnitude.

Both ratios are taken over the network's *trunk*: the layers whose output has as many elements as the
first layer's. A head that pools or projects (global average pooling divides each gradient entry by the
number of positions) changes E[g²] without any instability, so it is left out.

Examples:
    >>> GAIN_LOG2_WARNING, DEAD_FRACTION, FP16_GRAD_UNDERFLOW
    (10.0, 0.5, 0.01)
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from numstab.probe.report import KINDS, SEVERITIES, Finding, LayerReport, NonfiniteOrigin

__all__ = [
    "evaluate",
    "verdict",
    "forward_gain_log2",
    "backward_gain_log2",
    "GAIN_LOG2_WARNING",
    "GAIN_LOG2_ERROR",
    "DEAD_FRACTION",
    "SYMMETRIC_FRACTION",
    "FP16_GRAD_UNDERFLOW",
    "INIT_OUTLIER",
]

#: |log2| of a second-moment ratio across the network above which it is vanishing/exploding (warning).
GAIN_LOG2_WARNING = 10.0
#: ... and above which it is an error (a factor 10^6 in E[x²], 1000 in magnitude).
GAIN_LOG2_ERROR = 20.0
#: A layer with at least this fraction of units that are 0 for the whole batch is dead.
DEAD_FRACTION = 0.5
#: A layer with at least this fraction of its live units duplicating another is symmetric.
SYMMETRIC_FRACTION = 0.5
#: Fraction of a layer's non-zero gradient entries that flush to zero in float16 worth a finding.
FP16_GRAD_UNDERFLOW = 0.01
#: A layer whose weight std differs from the stack's median (relative to its fan reference) by more than
#: this factor is an initialization outlier.
INIT_OUTLIER = 4.0

_RELU_LIKE = {"ReLU", "LeakyReLU", "ReLU6", "PReLU", "RReLU", "ELU", "CELU", "SELU", "GELU", "SiLU", "Mish"}
_SATURATING = {"Sigmoid", "Hardsigmoid", "LogSigmoid"}


def forward_gain_log2(layers: Sequence[LayerReport], input_second_moment: float) -> float | None:
    """log2 E[x_L²] / E[x_0²]: the last layer's output against the inputs (None when undefined).

    Examples:
        >>> forward_gain_log2([_layer("0", act=2.0**-30)], 1.0)
        -30.0
    """
    trunk = _trunk(layers)
    if not trunk or not input_second_moment > 0 or trunk[-1].forward_nonfinite:
        return None
    return _log2_ratio(trunk[-1].activation_second_moment, input_second_moment)


def backward_gain_log2(layers: Sequence[LayerReport]) -> float | None:
    """log2 E[g_first²] / E[g_last²]: the gradient at the first layer's output against the last one's.

    Negative: the gradient vanishes toward the input. None without a finite gradient at both ends.

    Examples:
        >>> backward_gain_log2([_layer("0", grad=2.0**-20), _layer("1", grad=1.0)])
        -20.0
    """
    with_grad = [la for la in _trunk(layers) if la.grad_second_moment is not None and not la.grad_nonfinite]
    if len(with_grad) < 2 or with_grad[-1].grad_second_moment == 0:
        return None
    return _log2_ratio(with_grad[0].grad_second_moment or 0.0, with_grad[-1].grad_second_moment or 0.0)


def _trunk(layers: Sequence[LayerReport]) -> list[LayerReport]:
    """The layers whose output has the first layer's number of elements (all of them if that leaves < 2)."""
    trunk = [la for la in layers if la.numel == layers[0].numel] if layers else []
    return trunk if len(trunk) >= 2 else list(layers)


def _log2_ratio(num: float, den: float) -> float:
    if num == 0:
        return -math.inf
    return math.log2(num) - math.log2(den)


def evaluate(
    layers: Sequence[LayerReport],
    *,
    input_second_moment: float,
    first_nonfinite: NonfiniteOrigin | None = None,
) -> list[Finding]:
    """Apply every rule; return the findings, most severe first.

    Args:
        layers: the per-call statistics, in the order calls finished.
        input_second_moment: E[x²] of the inputs.
        first_nonfinite: where the first NaN/inf appeared, if anywhere.

    Examples:
        >>> evaluate([_layer("0", grad=1.0), _layer("1", grad=1.0)], input_second_moment=1.0)
        []
    """
    findings = _nonfinite(layers, first_nonfinite)
    if first_nonfinite is None or first_nonfinite.phase != "forward":
        findings += _gains(layers, input_second_moment)
    findings += _out_of_range(layers) + _dead(layers) + _symmetric(layers) + _init_outliers(layers)
    return sorted(findings, key=lambda f: (SEVERITIES.index(f.severity), KINDS.index(f.kind)))


def verdict(findings: Sequence[Finding]) -> str:
    """The most severe finding's kind, or "healthy" (findings must be sorted as :func:`evaluate` sorts).

    Examples:
        >>> verdict([])
        'healthy'
    """
    return findings[0].kind if findings else "healthy"


def _nonfinite(layers: Sequence[LayerReport], origin: NonfiniteOrigin | None) -> list[Finding]:
    if origin is None:
        return []
    hit = [la.name for la in layers if la.nonfinite]
    where = f"{origin.module}'s {'output' if origin.phase == 'forward' else 'backward pass'}"
    message = (
        f"the first NaN/inf appeared in the {origin.phase} pass, in {where}; {len(hit)} layer(s) carry "
        "non-finite values after it (a value past float32's 3.4e38 becomes inf, and inf - inf or 0 · inf NaN)"
    )
    if origin.phase == "forward":
        fix = (
            f"look at {origin.module}: lower its weight scale (numstab.init.apply_(model, 'kaiming_normal')) "
            "and guard exp/log/division in its forward"
        )
    else:
        fix = (
            f"look at {origin.module}'s backward (a custom autograd Function, sqrt or log at 0, division by "
            "a tiny number); clip with torch.nn.utils.clip_grad_norm_ only after fixing the cause"
        )
    return [Finding("nonfinite", "error", (origin.module,), message, fix)]


def _gains(layers: Sequence[LayerReport], input_second_moment: float) -> list[Finding]:
    findings = []
    fwd = forward_gain_log2(layers, input_second_moment)
    bwd = backward_gain_log2(layers)
    names = tuple(la.name for la in layers if la.weight_std is not None) or tuple(la.name for la in layers)
    for gain, what in ((fwd, "the signal E[x²] from the input to the output"),
                       (bwd, "the gradient E[g²] from the output back to the first layer")):
        if gain is None or abs(gain) <= GAIN_LOG2_WARNING:
            continue
        kind = "vanishing" if gain < 0 else "exploding"
        severity = "error" if abs(gain) > GAIN_LOG2_ERROR else "warning"
        article = "an" if kind == "exploding" else "a"
        message = (
            f"{what} changes by 2^{gain:.1f} over {len(names)} layers: each layer multiplies it by about "
            f"2^{gain / max(len(names), 1):.2f}, and depth turns a small factor into {article} {kind} "
            "product (the chapter's product of Jacobians)"
        )
        findings.append(Finding(kind, severity, names, message, init_fix(layers, kind)))
    return findings


def init_fix(layers: Sequence[LayerReport], kind: str) -> str:
    """The fix for a vanishing or exploding stack, chosen from its activations and its current init.

    Examples:
        >>> init_fix([_layer("0", kind="Sigmoid")], "vanishing").split(",")[0]
        "replace sigmoid by tanh or 4·sigmoid − 2 (activation 'scaled_sigmoid')"
        >>> init_fix([_layer("0", kind="ReLU")], "exploding")
        "numstab.init.apply_(model, 'kaiming_normal')"
    """
    kinds = {la.kind for la in layers}
    if kind == "vanishing" and kinds & _SATURATING:
        return ("replace sigmoid by tanh or 4·sigmoid − 2 (activation 'scaled_sigmoid'), "
                "then numstab.init.apply_(model, 'xavier_normal')")
    relu = bool(kinds & _RELU_LIKE)
    ratios = [la.kaiming_ratio if relu else la.xavier_ratio for la in layers if la.weight_std is not None]
    ratios = [r for r in ratios if r is not None]
    if ratios and 0.8 <= statistics.median(ratios) <= 1.25:
        return ("the init already matches its reference: add residual connections or normalization "
                "(LayerNorm/BatchNorm), or use numstab.init.apply_(model, 'critical')")
    if relu:
        return "numstab.init.apply_(model, 'kaiming_normal')"
    return "numstab.init.apply_(model, 'xavier_normal')"


def _out_of_range(layers: Sequence[LayerReport]) -> list[Finding]:
    findings = []
    over = [la for la in layers if la.out_of_range and _frac(la.out_of_range, "float16", la) > 0]
    if over:
        room = min(la.headroom_log2.get("float16", math.inf) for la in over)
        message = (f"{len(over)} layer(s) produce values beyond float16's 65504 (largest 2^{-room:.1f} above "
                   "it): they become inf under float16 autocast")
        findings.append(Finding("out_of_range", "warning", _names(over), message,
                                "use bfloat16 (float32's range) for these layers, or rescale their init"))
    under = [la for la in layers if la.grad_out_of_range.get("float16", 0.0) > FP16_GRAD_UNDERFLOW]
    if under:
        worst = max(la.grad_out_of_range["float16"] for la in under)
        message = (f"{len(under)} layer(s) have gradients that float16 flushes to zero or overflows (up to "
                   f"{worst:.0%} of the entries): those updates would be lost in mixed precision")
        findings.append(Finding("out_of_range", "warning", _names(under), message,
                                "use bfloat16 or a GradScaler (torch.amp.GradScaler scales the loss by 2^k)"))
    return findings


def _frac(table: dict[str, float], fmt: str, layer: LayerReport) -> float:
    """Overflow part of a layer's out-of-range fraction (underflow of activations is harmless)."""
    return table.get(fmt, 0.0) if layer.headroom_log2.get(fmt, math.inf) < 0 else 0.0


def _dead(layers: Sequence[LayerReport]) -> list[Finding]:
    dead = [la for la in layers if la.units >= 2 and la.dead_fraction >= DEAD_FRACTION]
    if not dead:
        return []
    worst = max(la.dead_fraction for la in dead)
    message = (f"{len(dead)} layer(s) have at least {DEAD_FRACTION:.0%} of their units at exactly 0 for the "
               f"whole batch (up to {worst:.0%}): a dead ReLU gets no gradient and never recovers")
    fix = "use leaky_relu or a smaller negative bias, and numstab.init.apply_(model, 'kaiming_normal')"
    return [Finding("dead", "warning", _names(dead), message, fix)]


def _symmetric(layers: Sequence[LayerReport]) -> list[Finding]:
    sym = [la for la in layers if la.units >= 2 and la.duplicate_units >= SYMMETRIC_FRACTION * la.units]
    if not sym:
        return []
    message = (f"{len(sym)} layer(s) have most units identical to another unit: units initialized alike get "
               "the same gradient and stay alike, so the layer computes like a single unit (the chapter's "
               "symmetry)")
    fix = "break the symmetry with a random init: numstab.init.apply_(model, 'kaiming_normal')"
    return [Finding("symmetric", "error", _names(sym), message, fix)]


def _init_outliers(layers: Sequence[LayerReport]) -> list[Finding]:
    relu = bool({la.kind for la in layers} & _RELU_LIKE)
    scored = [(la, la.kaiming_ratio if relu else la.xavier_ratio) for la in layers
              if la.kind.startswith(("Linear", "Conv")) and la.weight_std]
    scored = [(la, r) for la, r in scored if r]
    if len(scored) < 3:
        return []
    median = statistics.median(r for _, r in scored)
    findings = []
    for la, r in scored:
        if max(r / median, median / r) > INIT_OUTLIER:
            target = la.weight_std / r * median
            message = (f"the weight std of {la.name} is {r / median:.2g}× that of the other layers (relative "
                       f"to its fans): one layer out of scale scales the whole signal")
            findings.append(Finding("init", "warning", (la.name,), message,
                                    f"set the std of {la.module_name} to {target:.2g}"))
    return findings


def _names(layers: Sequence[LayerReport]) -> tuple[str, ...]:
    return tuple(la.name for la in layers)


def _layer(name: str, *, act: float = 1.0, grad: float | None = None, kind: str = "Linear") -> LayerReport:
    """A minimal LayerReport for the examples above."""
    return LayerReport(name, kind, 0.0, math.sqrt(act), None if grad is None else math.sqrt(grad), None, None,
                       0.0, 0, {}, 0, activation_second_moment=act, grad_second_moment=grad)
