"""Rules that turn a pass's numbers into findings about training at step 0, each with its threshold.

The chapter's diagnosis, carried to the networks people train. What decides whether SGD can train a
network is whether every layer gets a useful update: the signal must reach the loss at a scale the
loss and the nonlinearities can use, and the gradient must reach the bottom layers. The rules judge
both *where a product of Jacobians really happens*, and nowhere else:

- **Segments.** A normalization layer (LayerNorm, RMSNorm, BatchNorm, GroupNorm: any layer whose class
  name contains "Norm") resets the signal's scale, and an embedding lookup sets it without a
  previous one, so nothing is compared across them. The network is cut into *segments*: each starts at
  the network's input, a normalization's output or an embedding's output, and holds the dense/conv
  layers (a ``weight`` of two or more dimensions: Linear, Conv, HF ``Conv1D``) until the next cut. In
  a plain net the whole net is one segment; in a Transformer a segment is one residual branch (norm,
  projections, back into the stream) or the head.
- **Forward gain of a segment**, :math:`\\max_l \\log_2 E[y_l^2] / E[x_\\text{start}^2]` over its
  layers. Above :data:`EXPLODING_LOG2` it explodes: between two normalizations a signal 2^8 times
  larger in E[x²] (16× in magnitude) saturates softmax, GELU and the loss, and no deliberate
  convention comes near it (the largest at a default init: 2^5.0, HF ResNet-50's 1x1 fan_out convs).
- **Vanishing toward the loss**: the last segment (the one that feeds the loss) falling below
  :data:`VANISHING_LOG2`. Residual branches that start small (GPT-2's projections at
  0.02/sqrt(2 n_layer), attention averaging over positions, zero-γ BatchNorm, layer-scale gates) are
  deliberate and are not judged by their forward gain: the residual stream carries the signal past them.
- **Starved normalization**: a LayerNorm/RMSNorm/GroupNorm whose output E[y²] is below E[γ²] by more
  than :data:`STARVED_LOG2`: its input's variance is below its ``eps``, so it cannot normalize and
  passes a vanishing signal on (GPT-2 at ``initializer_range=1e-5``). BatchNorm is left out: in eval
  mode it divides by running statistics, not by the batch's.
- **Relative gradients** :math:`r = \\lVert \\nabla W \\rVert / \\lVert W \\rVert` (the relative
  change an SGD step makes to W) in networks without normalization: the median of
  :math:`\\log_2 r^2` over the bottom quarter of the layers against the top quarter. A spread beyond
  :data:`SPREAD_LOG2` means no single learning rate trains both ends: the chapter's vanishing
  (sigmoid) or exploding gradient. It is not applied across normalizations: measured on the corpus,
  healthy BERT's query/key projections sit 2^25 below its feed-forward layers at step 0 (near-uniform
  attention passes almost no gradient to them), and EfficientNet's squeeze-excitation 2^200 below.

Deliberate scales are recognized and reported as ``info``: layer-scale gates (a constant parameter
vector, ConvNeXt's 1e-6), zero-γ normalization (the last BatchNorm of a residual block), and zero
heads (every gradient but the head's is 0 at step 0; the body gets gradients after the first update).
Tied parameters are judged once, under their first owner (:attr:`LayerReport.shared_with`).

A finding about scale offers ``rescale`` (every weight times one factor, which keeps every ratio the
model's authors chose between layers) or an init scheme; :func:`numstab.diagnose` applies each offered
fix to a copy and withdraws it (:func:`withdrawn`) unless the copy is healthy.

Thresholds are in powers of two of a second moment: 8 is a factor 256 in E[x²], 16 in magnitude.

Examples:
    >>> EXPLODING_LOG2, VANISHING_LOG2, STARVED_LOG2, SPREAD_LOG2
    (8.0, 16.0, 4.0, 10.0)
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace

from numstab import activations
from numstab.errors import UnknownNameError
from numstab.probe.report import KINDS, SEVERITIES, Finding, LayerReport, NonfiniteOrigin

__all__ = [
    "evaluate",
    "verdict",
    "withdrawn",
    "segments",
    "Segment",
    "forward_gain_log2",
    "backward_gain_log2",
    "EXPLODING_LOG2",
    "VANISHING_LOG2",
    "STARVED_LOG2",
    "SPREAD_LOG2",
    "ERROR_FACTOR",
    "DEAD_FRACTION",
    "DEAD_MIN_VALUES",
    "SYMMETRIC_FRACTION",
    "FP16_GRAD_UNDERFLOW",
]

#: log2 of the largest E[y²] / E[x_start²] inside a segment above which the signal explodes (warning).
EXPLODING_LOG2 = 8.0
#: -log2 of the last segment's smallest E[y²] / E[x_start²] beyond which the signal vanishes before the
#: loss (warning). Deliberately small heads (std 0.01, as torchvision's VGG) reach 2^-10 in the corpus.
VANISHING_LOG2 = 16.0
#: log2 E[γ²] / E[y²] of a normalization's output beyond which it is starved (its input is below eps).
STARVED_LOG2 = 4.0
#: |log2 r²_bottom / r²_top| of relative gradients, plain networks only, beyond which one end does not
#: train at the other's learning rate (warning). Healthy plain nets in the corpus stay within 2^4.
SPREAD_LOG2 = 10.0
#: A finding is an error when its measure is beyond ERROR_FACTOR times its warning threshold.
ERROR_FACTOR = 2.0
#: A rectifier layer with at least this fraction of units that are 0 for the whole batch is dead.
DEAD_FRACTION = 0.5
#: ... judged only when each unit was seen in at least this many values: a unit seen in 4 values (a
#: squeeze-excitation unit, batch 4) is 0 in all of them by chance 1 time in 16.
DEAD_MIN_VALUES = 16
#: A layer with at least this fraction of its weight rows duplicating another row is symmetric.
SYMMETRIC_FRACTION = 0.5
#: Fraction of a layer's non-zero gradient entries that flush to zero in float16 worth an info finding
#: (a GradScaler, which mixed-precision training uses, recovers them).
FP16_GRAD_UNDERFLOW = 0.01
#: After a rescale the worst gain is brought to this many powers of two inside the healthy band.
_RESCALE_TARGET_LOG2 = 0.0
#: One layer whose own step carries this share of a flagged segment's gain is its cause (rescaled alone).
_CULPRIT_SHARE = 0.75
#: A starved normalization's input is brought this far above its eps.
_STARVED_MARGIN_LOG2 = 8.0

_RECTIFIERS = {"ReLU", "ReLU6"}
_SATURATING = {"Sigmoid", "Tanh", "Hardsigmoid", "Hardtanh", "Softsign", "LogSigmoid"}
_RELU_LIKE = {"ReLU", "LeakyReLU", "ReLU6", "PReLU", "RReLU", "ELU", "CELU", "SELU", "GELU", "SiLU", "Mish"}


def is_norm(layer: LayerReport) -> bool:
    """True for a normalization layer: its class name contains "Norm" (LayerNorm, LlamaRMSNorm, ...)."""
    return "norm" in layer.kind.lower()


def is_weighted(layer: LayerReport) -> bool:
    """True for a dense/conv layer: its ``weight`` has two or more dimensions and is not a lookup table."""
    return layer.fan_in is not None and not layer.lookup


@dataclass(frozen=True)
class Segment:
    """Dense/conv layers between two cuts (input, normalization or embedding outputs).

    Attributes:
        starts: the layers whose output starts the segment (a normalization, or the embeddings feeding
            it); empty when it starts at the network's input.
        start_second_moment: E[x²] where the segment starts: what its first layer reads (in a residual
            network, the stream), else the cut's output.
        members: its dense/conv layer calls with a non-zero output, in forward order.
        end: the normalization that ends it, or None when it runs to the output (the last segment).
    """

    starts: tuple[LayerReport, ...]
    start_second_moment: float
    members: tuple[LayerReport, ...]
    end: LayerReport | None

    def gains_log2(self) -> list[float]:
        """log2 E[y_l²] / E[x_start²] for each member."""
        return [_log2_ratio(m.activation_second_moment, self.start_second_moment) for m in self.members]


def segments(layers: Sequence[LayerReport], input_second_moment: float) -> list[Segment]:
    """Cut the calls at normalizations and embeddings into :class:`Segment` s (empty ones dropped).

    An embedding cuts only where it starts the stream (no dense/conv layer since the last cut); one read
    inside a segment (T5's relative position bias) is a side input and does not cut it.

    Examples:
        >>> calls = [_layer("0", dense=True), _layer("n", kind="LayerNorm"), _layer("1", dense=True)]
        >>> segs = segments(calls, 1.0)
        >>> [([s.name for s in seg.starts], [m.name for m in seg.members]) for seg in segs]
        [([], ['0']), (['n'], ['1'])]
    """
    out: list[Segment] = []
    starts: list[LayerReport] = []
    start = input_second_moment
    members: list[LayerReport] = []
    for la in layers:
        if is_norm(la):
            if members:
                out.append(Segment(tuple(starts), start, tuple(members), la))
            starts, members, start = [la], [], la.activation_second_moment
        elif la.lookup and not members:  # embeddings start the stream (token + position: their sum)
            starts = [s for s in starts if s.lookup] + [la]
            start = sum(s.activation_second_moment for s in starts)
        elif is_weighted(la) and la.weight_rms != 0 and la.activation_second_moment > 0:
            if not members and la.input_second_moment:  # what it really reads: a residual stream grows
                start = la.input_second_moment          # with depth by design, past the last norm
            members.append(la)  # a zero layer (a zero head) is a deliberate gate, not a gain
        # a lookup read while a segment runs (T5's relative position bias) is a side input: no cut
    if members:
        out.append(Segment(tuple(starts), start, tuple(members), None))
    return out


def forward_gain_log2(layers: Sequence[LayerReport], input_second_moment: float) -> float | None:
    """The most extreme segment gain: log2 E[y²]/E[x_start²] furthest from 0 (None when undefined).

    The largest gain over every segment, or the last segment's smallest when that is further from 0.

    Examples:
        >>> forward_gain_log2([_layer("0", act=2.0**-30, dense=True)], 1.0)
        -30.0
    """
    segs = [s for s in segments(layers, input_second_moment) if _judgeable(s)]
    if not segs:
        return None
    top = max(max(s.gains_log2()) for s in segs)
    low = min(segs[-1].gains_log2())
    return low if abs(low) > abs(top) else top


def backward_gain_log2(layers: Sequence[LayerReport]) -> float | None:
    """log2 of the bottom quarter's median r² over the top quarter's (plain networks; None elsewhere).

    Negative: the gradient vanishes toward the input relative to the weights it must move.

    Examples:
        >>> backward_gain_log2([_layer(str(i), rel=2.0**i, dense=True) for i in range(8)])
        -12.0
    """
    ranked = _relative_gradients(layers)
    if len(ranked) < 4:
        return None
    k = max(1, len(ranked) // 4)
    bottom = statistics.median(v for _, v in ranked[:k])
    top = statistics.median(v for _, v in ranked[-k:])
    return bottom - top


def evaluate(
    layers: Sequence[LayerReport],
    *,
    input_second_moment: float,
    first_nonfinite: NonfiniteOrigin | None = None,
) -> list[Finding]:
    """Apply every rule; return the findings, most severe first.

    Args:
        layers: the per-call statistics, in the order calls finished.
        input_second_moment: E[x²] of the floating-point inputs (NaN for token ids).
        first_nonfinite: where the first NaN/inf appeared, if anywhere.

    Examples:
        >>> evaluate([_layer("0", dense=True), _layer("1", dense=True)], input_second_moment=1.0)
        []
    """
    findings = _nonfinite(layers, first_nonfinite)
    if first_nonfinite is None:
        findings += _starved(layers) + _segment_gains(layers, input_second_moment) + _spread(layers)
    findings += _out_of_range(layers) + _dead(layers) + _symmetric(layers) + _deliberate(layers)
    return sorted(findings, key=lambda f: (SEVERITIES.index(f.severity), KINDS.index(f.kind)))


def verdict(findings: Sequence[Finding]) -> str:
    """The most severe warning or error's kind, or "healthy" (findings sorted as :func:`evaluate` sorts).

    Examples:
        >>> verdict([Finding("init", "info", ("0",), "a zero head", "nothing to do")])
        'healthy'
    """
    serious = [f for f in findings if f.severity != "info"]
    return serious[0].kind if serious else "healthy"


def withdrawn(finding: Finding) -> Finding:
    """The finding without its scheme: the re-check did not call the fixed copy healthy.

    Examples:
        >>> f = Finding("symmetric", "error", ("0",), "alike", "re-init", "xavier_normal", {"layers": ("0",)})
        >>> withdrawn(f).scheme, withdrawn(f).fix.startswith("re-init")
        (None, True)
    """
    note = " (numstab's re-initialization was tried on a copy and did not make it healthy: no scheme offered)"
    base = finding.fix.split(": report.with_fix(")[0]
    return replace(finding, fix=base + note, scheme=None, options={})


# -- the rules ---------------------------------------------------------------------------------------


def _nonfinite(layers: Sequence[LayerReport], origin: NonfiniteOrigin | None) -> list[Finding]:
    if origin is None:
        return []
    hit = [la.name for la in layers if la.nonfinite]
    where = f"{origin.module}'s {'output' if origin.phase == 'forward' else 'backward pass'}"
    message = (
        f"the first NaN/inf appeared in the {origin.phase} pass, in {where}; {len(hit)} layer(s) carry "
        "non-finite values after it (a value past float32's 3.4e38 becomes inf, and inf - inf or 0 · inf NaN)"
    )
    if origin.phase != "forward":
        fix = (
            f"look at {origin.module}'s backward (a custom autograd Function, sqrt or log at 0, division by "
            "a tiny number); clip with torch.nn.utils.clip_grad_norm_ only after fixing the cause"
        )
        return [Finding("nonfinite", "error", (origin.module,), message, fix)]
    layer = next((la for la in layers if la.name == origin.module), None)
    fix = f"look at {origin.module}: its weights' scale, and exp/log/division in its forward"
    if layer is None or not is_weighted(layer):
        return [Finding("nonfinite", "error", (origin.module,), message, fix)]
    scheme = _scheme_for(layers)
    options = {"layers": (layer.module_name,)}
    fix += f": report.with_fix({scheme!r}, layers={options['layers']!r}) re-initializes it"
    return [Finding("nonfinite", "error", (origin.module,), message, fix, scheme, options)]


def _starved(layers: Sequence[LayerReport]) -> list[Finding]:
    """Normalizations whose output is far below γ: their input is below eps, the signal vanished."""
    starved = [(la, _deficit(la)) for la in layers if _per_sample_norm(la)]
    starved = [(la, d) for la, d in starved if d > STARVED_LOG2]
    if not starved:
        return []
    first, deficit = starved[0]
    names = tuple(dict.fromkeys([la.name for la in _feeding(layers, first)] + [la.name for la, _ in starved]))
    factor = 2.0 ** ((deficit + _STARVED_MARGIN_LOG2) / 2)
    message = (
        f"{len(starved)} normalization layer(s) output E[y²] 2^{-deficit:.1f} of their γ² "
        f"(the first is {first.name}): the signal reaching them is below their eps, so they cannot "
        "normalize it and pass a vanishing signal on; what feeds them is out of scale"
    )
    fix = (f"raise the weight scale (e.g. the init's std or initializer_range): report.with_fix('rescale', "
           f"factor={factor:.3g}) multiplies every weight, keeping the ratios between layers")
    severity = "error" if deficit > ERROR_FACTOR * STARVED_LOG2 else "warning"
    return [Finding("vanishing", severity, names, message, fix, "rescale", {"factor": _round(factor)})]


def _segment_gains(layers: Sequence[LayerReport], input_second_moment: float) -> list[Finding]:
    segs = [s for s in segments(layers, input_second_moment) if _judgeable(s)]
    findings = []
    exploding = [(s, max(s.gains_log2())) for s in segs]
    exploding = [(s, g) for s, g in exploding if g > EXPLODING_LOG2]
    if exploding:
        worst, gain = max(exploding, key=lambda sg: sg[1])
        findings.append(_gain_finding("exploding", worst, gain, [s for s, _ in exploding], EXPLODING_LOG2))
    if segs and segs[-1].end is None:
        low = min(segs[-1].gains_log2())
        if low < -VANISHING_LOG2:
            findings.append(_gain_finding("vanishing", segs[-1], low, [segs[-1]], VANISHING_LOG2))
    return findings


def _gain_finding(
    kind: str, worst: Segment, gain: float, segs: Sequence[Segment], threshold: float
) -> Finding:
    """The finding for a segment whose gain crossed ``threshold``: one layer to rescale, or all of them.

    When one layer's own step (its log2 gain over the previous member's) is beyond the threshold by
    itself and carries at least :data:`_CULPRIT_SHARE` of the segment's gain, its scale causes the
    problem: it is named first and alone rescaled (an ``init`` problem of that layer). Otherwise every
    weight is rescaled by the factor that brings the worst gain to 0 over its k layers:
    :math:`2^{-G/(2k)}`.
    """
    gains = worst.gains_log2()
    k = 1 + gains.index(gain)
    steps = [g - prev for g, prev in zip(gains[:k], [0.0, *gains[: k - 1]], strict=True)]
    step = max(steps) if kind == "exploding" else min(steps)
    names = tuple(dict.fromkeys(m.name for s in segs for m in s.members))
    if abs(step) > threshold and step / gain >= _CULPRIT_SHARE:
        culprit = worst.members[steps.index(step)]
        factor = 2.0 ** (-step / 2)
        names = (culprit.name, *(n for n in names if n != culprit.name))
        message = (f"the signal E[x²] changes by 2^{gain:+.1f} over a segment, 2^{step:+.1f} of it in "
                   f"{culprit.name} alone: that layer's weight scale causes it")
        fix = (f"rescale {culprit.module_name}'s weight: report.with_fix('rescale', factor={factor:.3g}, "
               f"layers={(culprit.module_name,)!r})")
        options: dict[str, object] = {"factor": _round(factor), "layers": (culprit.module_name,)}
    else:
        factor = 2.0 ** ((_RESCALE_TARGET_LOG2 - gain) / (2 * k))
        where = "between normalization layers" if any(s.starts or s.end for s in segs) else "from the input"
        message = (
            f"the signal E[x²] changes by 2^{gain:+.1f} {where} over {k} dense/conv layer(s) "
            f"({names[0]} first): each multiplies it by about 2^{gain / k:+.2f}, and depth turns a small "
            f"factor into {'an' if kind == 'exploding' else 'a'} {kind} product (the chapter's product of "
            "Jacobians)"
        )
        verb = "lower" if kind == "exploding" else "raise"
        fix = (f"{verb} the weight scale of these layers: report.with_fix('rescale', factor={factor:.3g}) "
               "multiplies every weight, keeping the ratios between layers")
        options = {"factor": _round(factor)}
    severity = "error" if abs(gain) > ERROR_FACTOR * threshold else "warning"
    return Finding(kind, severity, names, message, fix, "rescale", options)


def _spread(layers: Sequence[LayerReport]) -> list[Finding]:
    if any(is_norm(la) for la in layers):
        return []
    spread = backward_gain_log2(layers)
    if spread is None or abs(spread) <= SPREAD_LOG2:
        return []
    kind = "vanishing" if spread < 0 else "exploding"
    names = tuple(name for name, _ in _relative_gradients(layers))
    message = (
        f"the relative gradient ||∇W||²/||W||² of the bottom layers is 2^{spread:+.1f} that of the top "
        f"layers ({len(names)} dense/conv layers, no normalization): no single learning rate moves both "
        f"ends, the gradient {kind} toward the input (the chapter's product of Jacobians, backward)"
    )
    kinds = {la.kind for la in layers}
    act = _activation_name(layers)
    if kind == "vanishing" and kinds & _SATURATING:
        fix = ("replace the saturating activation by tanh or 4·sigmoid − 2 (activation 'scaled_sigmoid'), or "
               "initialize at the edge of chaos")
        scheme, options = "critical", {"activation": act}
    else:
        fix = "use the init that keeps the gradient's scale for this activation"
        scheme, options = _scheme_for(layers), {}
    fix += f": report.with_fix({scheme!r}{''.join(f', {k}={v!r}' for k, v in options.items())})"
    severity = "error" if abs(spread) > ERROR_FACTOR * SPREAD_LOG2 else "warning"
    return [Finding(kind, severity, names, message, fix, scheme, options)]


def _out_of_range(layers: Sequence[LayerReport]) -> list[Finding]:
    findings = []
    over = [la for la in layers if la.out_of_range and _frac(la.out_of_range, "float16", la) > 0]
    if over:
        room = min(la.headroom_log2.get("float16", math.inf) for la in over)
        message = (f"{len(over)} layer(s) produce values beyond float16's 65504 (largest 2^{-room:.1f} above "
                   "it): they become inf under float16 autocast")
        findings.append(Finding("out_of_range", "warning", _names(over), message,
                                "use bfloat16 (float32's range) for these layers, or scale the inputs down"))
    under = [la for la in layers if la.grad_out_of_range.get("float16", 0.0) > FP16_GRAD_UNDERFLOW]
    if under:
        worst = max(la.grad_out_of_range["float16"] for la in under)
        message = (f"{len(under)} layer(s) have gradients that float16 flushes to zero or overflows (up to "
                   f"{worst:.0%} of the entries): float16 training needs a GradScaler (bfloat16 does not)")
        findings.append(Finding("out_of_range", "info", _names(under), message,
                                "use bfloat16 or a GradScaler (torch.amp.GradScaler scales the loss by 2^k)"))
    return findings


def _frac(table: dict[str, float], fmt: str, layer: LayerReport) -> float:
    """Overflow part of a layer's out-of-range fraction (underflow of activations is harmless)."""
    return table.get(fmt, 0.0) if layer.headroom_log2.get(fmt, math.inf) < 0 else 0.0


def _dead(layers: Sequence[LayerReport]) -> list[Finding]:
    dead = [la for la in layers if la.kind in _RECTIFIERS and la.units >= 2
            and la.dead_fraction >= DEAD_FRACTION and la.numel >= DEAD_MIN_VALUES * la.units]
    if not dead:
        return []
    worst = max(la.dead_fraction for la in dead)
    message = (f"{len(dead)} layer(s) have at least {DEAD_FRACTION:.0%} of their units at exactly 0 for the "
               f"whole batch (up to {worst:.0%}): a dead ReLU gets no gradient and never recovers")
    fix = "use leaky_relu or a smaller negative bias in the layer before"
    return [Finding("dead", "warning", _names(dead), message, fix)]


def _symmetric(layers: Sequence[LayerReport]) -> list[Finding]:
    sym = [la for la in _first_calls(layers) if is_weighted(la) and la.shared_with is None and la.units >= 2
           and la.weight_rms and la.duplicate_weight_rows >= SYMMETRIC_FRACTION * la.units]
    if not sym:
        return []
    message = (f"{len(sym)} layer(s) have most weight rows identical to another row: units initialized "
               "alike get the same gradient and stay alike, so the layer computes like a single unit (the "
               "chapter's symmetry)")
    scheme = _scheme_for(layers)
    options = {"layers": tuple(la.module_name for la in sym)}
    fix = f"break the symmetry with a random init: report.with_fix({scheme!r}, layers={options['layers']!r})"
    return [Finding("symmetric", "error", _names(sym), message, fix, scheme, options)]


def _deliberate(layers: Sequence[LayerReport]) -> list[Finding]:
    """Info findings: scales that look alarming and are deliberate, with the reason."""
    findings = []
    firsts = _first_calls(layers)
    gates = [la for la in firsts if not is_norm(la) and not is_weighted(la) and not la.lookup
             and la.weight_std == 0 and la.weight_rms is not None and 0 < la.weight_rms < 1]
    if gates:
        findings.append(Finding(
            "init", "info", _names(gates),
            f"{len(gates)} layer-scale gate(s) (a constant parameter vector, {gates[0].weight_rms:.2g} in "
            f"{gates[0].name}): each residual branch enters the stream scaled down and its gradients "
            "alike, by design (Touvron et al. 2021, CaiT; ConvNeXt): the gates grow as training needs them",
            "nothing to do: deliberate"))
    zero_norms = [la for la in firsts  # Gemma's RMSNorm stores γ - 1: a zero weight there is γ = 1
                  if is_norm(la) and la.weight_rms == 0 and la.activation_second_moment == 0]
    if zero_norms:
        findings.append(Finding(
            "init", "info", _names(zero_norms),
            f"{len(zero_norms)} normalization layer(s) with γ = 0: each residual block starts as the "
            "identity (Goyal et al. 2017) and the layers inside it get zero gradient until γ moves, after "
            "the first update",
            "nothing to do: deliberate"))
    zero = [la for la in firsts if is_weighted(la) and la.weight_rms == 0]
    if zero:
        findings.append(Finding(
            "init", "info", _names(zero),
            f"{len(zero)} zero-initialized layer(s) ({zero[0].name}): at step 0 every layer before a zero "
            "head gets exactly 0 gradient; the first update moves the head, and gradients reach the body "
            "after it",
            "nothing to do: deliberate (a zero head starts from uniform predictions)"))
    return findings


# -- helpers -----------------------------------------------------------------------------------------


def _judgeable(segment: Segment) -> bool:
    """A segment with a finite, non-zero start (a zero-γ norm's output starts none)."""
    return (
        segment.start_second_moment > 0
        and math.isfinite(segment.start_second_moment)
        and bool(segment.members)
    )


def _feeding(layers: Sequence[LayerReport], norm: LayerReport) -> list[LayerReport]:
    """The dense/conv and embedding layers between the previous normalization and ``norm``."""
    before = list(layers[: layers.index(norm)])
    cut = max((i for i, la in enumerate(before) if is_norm(la)), default=-1)
    return [la for la in before[cut + 1:] if is_weighted(la) or la.lookup]


def _per_sample_norm(layer: LayerReport) -> bool:
    return is_norm(layer) and "batch" not in layer.kind.lower() and bool(layer.weight_rms)


def _deficit(layer: LayerReport) -> float:
    """log2 E[γ²] / E[y²] of a normalization's output (0 when it normalizes)."""
    expected = (layer.weight_rms or 0.0) ** 2
    return -_log2_ratio(layer.activation_second_moment, expected)


def _relative_gradients(layers: Sequence[LayerReport]) -> list[tuple[str, float]]:
    """(name, log2 r²) of each dense/conv weight's first call, in forward order, where r is finite and > 0."""
    out = []
    for la in _first_calls(layers):
        r = la.relative_grad
        if is_weighted(la) and la.shared_with is None and r is not None and 0 < r < math.inf:
            out.append((la.name, 2 * math.log2(r)))
    return out


def _first_calls(layers: Sequence[LayerReport]) -> list[LayerReport]:
    return [la for la in layers if "#" not in la.name]


def _activation_name(layers: Sequence[LayerReport]) -> str | None:
    """The registered name of the network's most common activation (None: none the registry knows)."""
    kinds = [la.kind for la in layers if la.kind in _SATURATING | _RELU_LIKE]
    if not kinds:
        return None
    try:
        return activations.get(statistics.mode(kinds).lower()).name
    except UnknownNameError:  # a kind the registry does not know: no activation for the scheme
        return None


def _scheme_for(layers: Sequence[LayerReport]) -> str:
    """kaiming_normal for rectifier-like networks, xavier_normal otherwise."""
    return "kaiming_normal" if {la.kind for la in layers} & _RELU_LIKE else "xavier_normal"


def _round(x: float) -> float:
    return float(f"{x:.3g}")


def _log2_ratio(num: float, den: float) -> float:
    if num == 0:
        return -math.inf
    if den == 0:
        return math.inf
    return math.log2(num) - math.log2(den)


def _names(layers: Sequence[LayerReport]) -> tuple[str, ...]:
    return tuple(la.name for la in layers)


def _layer(name: str, *, act: float = 1.0, grad: float | None = None, kind: str = "Linear",
           dense: bool = False, rel: float | None = None) -> LayerReport:
    """A minimal LayerReport for the examples above."""
    return LayerReport(name, kind, 0.0, math.sqrt(act), None if grad is None else math.sqrt(grad), None, None,
                       0.0, 0, {}, 0, activation_second_moment=act, grad_second_moment=grad,
                       fan_in=8 if dense else None, fan_out=8 if dense else None, relative_grad=rel,
                       weight_rms=1.0 if kind.endswith("Norm") else None)
