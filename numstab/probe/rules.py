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
- **Vanishing toward the loss**: the output of the last segment (what feeds the loss) falling below
  :data:`VANISHING_LOG2` against the segment's start. Residual branches that start small (GPT-2's
  projections at 0.02/sqrt(2 n_layer), attention averaging over positions, zero-γ BatchNorm, layer-scale
  gates) are deliberate and are not judged by their forward gain: the residual stream carries the signal
  past them.
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

import torch

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
    "DEAD_MIN_UNITS",
    "DEAD_MIN_SAMPLES",
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
#: ... or, in a layer of at least DEAD_MIN_UNITS units, in at least DEAD_MIN_SAMPLES values each (a
#: Linear layer of a batch of 4): see :func:`_dead_is_judged`.
DEAD_MIN_UNITS = 32
DEAD_MIN_SAMPLES = 4
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

    def own_steps(self) -> list[float]:
        """log2 E[y_l²] / E[x_l²] for each member, x_l what it reads (:attr:`LayerReport.input_second_moment`;
        where not measured, the previous member's output, or the start for the first): its own gain, not
        its output over a parallel sibling's (Segformer's reduction conv after q_proj)."""
        steps, prev = [], self.start_second_moment
        for m in self.members:
            read = m.input_second_moment if m.input_second_moment else prev
            steps.append(_log2_ratio(m.activation_second_moment, read))
            prev = m.activation_second_moment
        return steps

    def growth_log2(self) -> float:
        """The largest gain of a member whose output is a product, not mostly its bias
        (:func:`_bias_dominated`), and not read by a normalization as it is (:attr:`LayerReport.feeds_norm`:
        its scale is normalized away, as Segformer's reduction conv's by its LayerNorm); -inf when none."""
        gains = [g for g, m in zip(self.gains_log2(), self.members, strict=True)
                 if not _bias_dominated(m) and not m.feeds_norm]
        return max(gains, default=-math.inf)


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
        if is_norm(la):  # an eval-mode BatchNorm too: judged as training sees it (see _deliberate)
            if members:
                out.append(Segment(tuple(starts), start, tuple(members), la))
            starts, members, start = [la], [], la.activation_second_moment
        elif la.lookup and not members:  # embeddings start the stream (token + position: their sum)
            starts = [s for s in starts if s.lookup] + [la]
            start = sum(s.activation_second_moment for s in starts)
        elif is_weighted(la) and la.weight_rms != 0 and la.activation_second_moment > 0:
            if not members and la.input_second_moment:  # what it really reads: a residual stream grows
                start = max(start, la.input_second_moment)  # with depth by design, past the last norm
                # (the larger: a parameter-free scale before the first layer, T5's tied lm_head reading
                # d_model^-1/2 times the last norm's output, is not a gain of that layer)
            members.append(la)  # a zero layer (a zero head) is a deliberate gate, not a gain
        # a lookup read while a segment runs (T5's relative position bias) is a side input: no cut
    if members:
        out.append(Segment(tuple(starts), start, tuple(members), None))
    return out


def forward_gain_log2(layers: Sequence[LayerReport], input_second_moment: float) -> float | None:
    """The most extreme segment gain: log2 E[y²]/E[x_start²] furthest from 0 (None when undefined).

    The largest gain over every segment, or the last segment's output (what reaches the loss) when that
    is further from 0.

    Examples:
        >>> forward_gain_log2([_layer("0", act=2.0**-30, dense=True)], 1.0)
        -30.0
    """
    segs = [s for s in segments(layers, input_second_moment) if _judgeable(s)]
    if not segs:
        return None
    top = max(seg.growth_log2() for seg in segs)
    low = segs[-1].gains_log2()[-1]
    return low if abs(low) > abs(top) else top


def backward_gain_log2(layers: Sequence[LayerReport]) -> float | None:
    """log2 of the bottom quarter's median r² over the top quarter's (plain networks; None elsewhere).

    Negative: the gradient vanishes toward the input relative to the weights it must move. The last
    dense/conv layer (the head) is left out: a head initialized small (std 0.01, or zero) has a large
    r = ‖∇W‖/‖W‖ because ‖W‖ is small, and scales every gradient below it alike; the product of
    Jacobians that vanishes or explodes is the body's. Defined from 4 body layers on (a quarter of them
    is then at least one).

    Examples:
        >>> backward_gain_log2([_layer(str(i), rel=2.0**i, dense=True) for i in range(9)])
        -12.0
    """
    ranked = _relative_gradients(layers)[:-1]  # the body: the head's r follows its own init scale
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
    symmetric = _symmetric(layers)
    closed = _closed_main_path(layers)
    if symmetric:  # a norm that outputs 0 with a non-zero weight reads a constant: the symmetry is the cause
        closed = [la for la in closed if not (is_norm(la) and la.weight_rms)]
    if first_nonfinite is None:
        findings += _closed_finding(layers, closed)
        if not findings:  # behind a closed path every scale below is a consequence, not a cause
            findings += _starved(layers) + _segment_gains(layers, input_second_moment) + _spread(layers)
    findings += _out_of_range(layers) + _dead(layers) + symmetric + _deliberate(layers, closed)
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
    dtype = origin.dtype if origin.dtype is not None and origin.dtype.is_floating_point else torch.float32
    fmt, limit = str(dtype).removeprefix("torch."), torch.finfo(dtype).max
    message = (
        f"the first NaN/inf appeared in the {origin.phase} pass, in {where}; {len(hit)} layer(s) carry "
        f"non-finite values after it (a value past {fmt}'s {limit:.3g} becomes inf, and inf - inf or 0 · inf "
        "NaN)"
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


def _closed_main_path(layers: Sequence[LayerReport]) -> list[LayerReport]:
    """The zero layers every signal goes through: a γ = 0 normalization (output exactly 0) or an all-zero
    dense/conv weight, such that every dense/conv/embedding layer before it is trainable and got exactly 0
    gradient (nothing bypasses it; at least one such layer exists; a frozen one, as LoRA's base model,
    may carry the signal past it, and its gradient is not measured). A zero γ at the end of a residual
    branch is not one: the layers before the branch get gradients through the skip connection."""
    firsts = _first_calls(layers)
    closed = []
    for i, la in enumerate(firsts):
        if not _is_zero(la):
            continue
        before = [b for b in firsts[:i] if is_weighted(b) or b.lookup]
        # a frozen layer before it (weight_grad_norm None: LoRA's base model) may carry the signal past it
        if before and all(b.weight_grad_norm == 0 for b in before):
            closed.append(la)
    heads = [la for la in closed if _is_head(layers, la)]
    # a zero head gives every layer before it 0 gradient: the zeros before it cannot be told apart from
    # branch gates at step 0 (a ResNet's zero-γ BatchNorms under a zero classifier), the head explains it
    return heads or closed


def _is_zero(layer: LayerReport) -> bool:
    if is_norm(layer):  # output exactly 0: γ = 0 in effect (Gemma's norms multiply by 1 + weight: weight
        return layer.activation_second_moment == 0  # -1 there), or an input constant over the features
    return is_weighted(layer) and layer.weight_rms == 0


def _zero_what(layer: LayerReport) -> str:
    if not is_norm(layer):
        return "all-zero weight"
    if layer.weight_rms == 0:
        return "γ = 0"
    return "output exactly 0 with a non-zero weight: γ = 0 in effect, e.g. weight -1 in a (1 + weight) norm"


def _is_head(layers: Sequence[LayerReport], layer: LayerReport) -> bool:
    """The last dense/conv layer: no dense/conv layer finishes after it."""
    return is_weighted(layer) and not any(is_weighted(la) for la in layers[layers.index(layer) + 1:])


def _closed_finding(layers: Sequence[LayerReport], closed: Sequence[LayerReport]) -> list[Finding]:
    """A warning (an error for several in series) for zero layers on the main path, the head excepted."""
    shut = [la for la in closed if not _is_head(layers, la)]
    if not shut:
        return []
    first = shut[0]
    message = (
        f"{len(shut)} zero layer(s) on the path every signal takes ({first.name} first, "
        f"{_zero_what(first)}): the output does not depend on the input at "
        "step 0 and every layer before it gets exactly 0 gradient. The zero layer gets a gradient and moves "
        "in the first update, and each one in series costs one more update before the input connects; a "
        "zero γ is deliberate at the end of a residual branch (Goyal et al. 2017), not on the main path"
    )
    severity = "error" if len(shut) > 1 else "warning"
    norms = [la.module_name for la in shut if is_norm(la)]
    dense = tuple(la.module_name for la in shut if not is_norm(la))
    if norms:
        fix = ("set their γ to 1: for name in " + repr(norms) +
               ": torch.nn.init.ones_(model.get_submodule(name).weight)")
        if any(la.weight_rms for la in shut if is_norm(la)):  # output 0 with a non-zero weight
            fix += (" (zeros_ instead for a norm that multiplies by 1 + weight, as Gemma's and Nemotron's; "
                    "if the weight is not the cause, the norm's input is constant across features)")
        return [Finding("vanishing", severity, _names(shut), message, fix)]
    scheme = _scheme_for(layers)
    fix = f"initialize them randomly: report.with_fix({scheme!r}, layers={dense!r})"
    return [Finding("vanishing", severity, _names(shut), message, fix, scheme, {"layers": dense})]


def _starved(layers: Sequence[LayerReport]) -> list[Finding]:
    """Normalizations whose output is far below γ: their input is below eps, the signal vanished."""
    starved = [(la, _deficit(la)) for la in layers if _per_sample_norm(la)]
    starved = [(la, d) for la, d in starved if d > STARVED_LOG2]
    if not starved:
        return []
    first, deficit = starved[0]
    feeding = [_feeding(layers, la) for la, _ in starved]
    if all(f and all(la.lookup for la in f) for f in feeding):
        return [_small_init(starved, feeding)]
    names = tuple(dict.fromkeys([la.name for la in feeding[0]] + [la.name for la, _ in starved]))
    if not math.isfinite(deficit):  # output exactly 0 with γ != 0: its input is constant over the features
        message = (f"{first.name} outputs exactly 0 though its γ is not 0: its input is the same in every "
                   "feature (all zeros, or a constant), so the signal is gone before it; look at what "
                   "feeds it")
        return [Finding("vanishing", "error", names, message, "look at the layers feeding it")]
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


def _small_init(
    starved: Sequence[tuple[LayerReport, float]], feeding: Sequence[Sequence[LayerReport]]
) -> Finding:
    """Info: normalizations below eps fed by embeddings alone (SmallInit, as RWKV initializes)."""
    tables = tuple(dict.fromkeys(la.name for f in feeding for la in f))
    message = (
        f"{len(starved)} normalization layer(s) read embeddings initialized tiny ({', '.join(tables)}; "
        f"{starved[0][0].name} outputs 2^{-starved[0][1]:.1f} of its γ²): small embeddings followed by a "
        "LayerNorm (SmallInit, as RWKV does) are deliberate; the embeddings grow over the first updates "
        "and the norm's output with them, while every layer after it trains from step 0"
    )
    return Finding("init", "info", (*tables, *(la.name for la, _ in starved)), message,
                   "nothing to do: deliberate (raise the embeddings' std if this was not meant)")


def _segment_gains(layers: Sequence[LayerReport], input_second_moment: float) -> list[Finding]:
    segs = [s for s in segments(layers, input_second_moment) if _judgeable(s)]
    findings = []
    exploding = [(s, s.growth_log2()) for s in segs]
    exploding = [(s, g) for s, g in exploding if g > EXPLODING_LOG2]
    if exploding:
        worst, gain = max(exploding, key=lambda sg: sg[1])
        findings.append(_gain_finding("exploding", worst, gain, [s for s, _ in exploding], EXPLODING_LOG2))
    if segs and segs[-1].end is None:
        low = segs[-1].gains_log2()[-1]  # what reaches the loss: branch layers inside it (a gate's logits)
        if low < -VANISHING_LOG2:         # do not feed the loss directly
            head = _small_head(layers, segs[-1], low)
            findings.append(head or _gain_finding("vanishing", segs[-1], low, [segs[-1]], VANISHING_LOG2))
    return findings


def _small_head(layers: Sequence[LayerReport], seg: Segment, low: float) -> Finding | None:
    """Info when the head alone makes the last segment vanish (its own step carries at least
    :data:`_CULPRIT_SHARE` of it): a head initialized small, like a zero head, starts from near-uniform
    predictions and trains; the body's signal reaches it at scale."""
    gains = seg.gains_log2()
    if not _is_head(layers, seg.members[-1]) or gains[-1] != low:
        return None
    step = gains[-1] - (gains[-2] if len(gains) > 1 else 0.0)  # a head alone after the last norm: all of it
    if step / low < _CULPRIT_SHARE:
        return None
    head = seg.members[-1]
    message = (f"the head {head.name} is initialized small (its output E[y²] is 2^{step:+.1f} of what it "
               "reads): predictions start near uniform, as with a zero head, and the head grows in the "
               "first updates; the body's signal reaches it at scale")
    return Finding("init", "info", (head.name,), message, "nothing to do if deliberate")


def _gain_finding(
    kind: str, worst: Segment, gain: float, segs: Sequence[Segment], threshold: float
) -> Finding:
    """The finding for a segment whose gain crossed ``threshold``: one layer to rescale, or all of them.

    When one layer's own step (log2 of its output's E[y²] over what it reads, :meth:`Segment.own_steps`)
    is beyond the threshold by itself and carries at least :data:`_CULPRIT_SHARE` of the segment's gain,
    its scale causes the problem: it is named first and alone rescaled (an ``init`` problem of that layer).
    Otherwise every weight is rescaled by the factor that brings the worst gain to 0 over its k layers:
    :math:`2^{-G/(2k)}`.
    """
    gains = worst.gains_log2()
    k = 1 + gains.index(gain)
    steps = worst.own_steps()[:k]
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
    names = tuple(name for name, _ in _relative_gradients(layers)[:-1])
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
    if any(la.running_stats for la in layers):  # eval-mode BatchNorm does not center: judged in train mode
        return []
    dead = [la for la in layers if la.kind in _RECTIFIERS and la.units >= 2
            and la.dead_fraction >= DEAD_FRACTION and _dead_is_judged(la)]
    if not dead:
        return []
    worst = max(la.dead_fraction for la in dead)
    message = (f"{len(dead)} layer(s) have at least {DEAD_FRACTION:.0%} of their units at exactly 0 for the "
               f"whole batch (up to {worst:.0%}): a dead ReLU gets no gradient and never recovers")
    fix = "use leaky_relu or a smaller negative bias in the layer before"
    return [Finding("dead", "warning", _names(dead), message, fix)]


def _dead_is_judged(layer: LayerReport) -> bool:
    """Enough values per unit for "0 in every one" not to be chance: :data:`DEAD_MIN_VALUES` per unit, or
    :data:`DEAD_MIN_SAMPLES` per unit in a layer of at least :data:`DEAD_MIN_UNITS` units. A live unit is 0
    on n independent inputs with probability about 2^-n; half of 32 such units at n = 4 (p = 1/16 each)
    has a binomial tail near 1e-9, while a squeeze-excitation layer of 4 units at n = 4 would be half dead
    by chance about 2 % of the time."""
    per_unit = layer.numel / layer.units
    return per_unit >= DEAD_MIN_VALUES or (layer.units >= DEAD_MIN_UNITS and per_unit >= DEAD_MIN_SAMPLES)


def _symmetric(layers: Sequence[LayerReport]) -> list[Finding]:
    sym = [la for la in _first_calls(layers) if (is_weighted(la) or la.lookup) and la.shared_with is None
           and _rows(la) >= 2 and la.weight_rms
           and la.duplicate_weight_rows >= SYMMETRIC_FRACTION * _rows(la)]
    if not sym:
        return []
    message = (f"{len(sym)} layer(s) have most weight rows identical to another row: units initialized "
               "alike get the same gradient and stay alike, so the layer computes like a single unit (the "
               "chapter's symmetry; for an embedding, tokens that start alike)")
    tables = [la.module_name for la in sym if la.lookup]
    if tables:  # numstab.init has no scheme for lookup tables
        fix = ("break the symmetry with a random init: for name in " + repr(tables) +
               ": torch.nn.init.normal_(model.get_submodule(name).weight, std=0.02)")
        return [Finding("symmetric", "error", _names(sym), message, fix)]
    scheme = _scheme_for(layers)
    options = {"layers": tuple(la.module_name for la in sym)}
    fix = f"break the symmetry with a random init: report.with_fix({scheme!r}, layers={options['layers']!r})"
    return [Finding("symmetric", "error", _names(sym), message, fix, scheme, options)]


def _rows(layer: LayerReport) -> int:
    """Rows of the weight that :attr:`LayerReport.duplicate_weight_rows` counts: output units, or an
    embedding's entries (its ``fan_out``: a table is (num_embeddings, dim))."""
    return (layer.fan_out or 0) if layer.lookup else layer.units


def _deliberate(layers: Sequence[LayerReport], closed: Sequence[LayerReport] = ()) -> list[Finding]:
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
    frozen_stats = [la for la in firsts if la.running_stats]
    if frozen_stats:
        findings.append(Finding(
            "init", "info", _names(frozen_stats),
            f"{len(frozen_stats)} BatchNorm layer(s) run in eval mode: they divide by their running "
            "statistics (at a fresh init mean 0 and variance 1: they do not normalize), while training "
            "divides by each batch's; numstab judges the scale between them as training sees it, the "
            "activations' range (float16 overflow) as this pass saw it, and dead units not at all (without "
            "centering, a unit can be negative on the whole batch)",
            "call model.train() before numstab.diagnose to measure what training sees"))
    zero_norms = [la for la in firsts
                  if is_norm(la) and _is_zero(la) and la.weight_rms == 0 and la not in closed]
    if zero_norms:
        findings.append(Finding(
            "init", "info", _names(zero_norms),
            f"{len(zero_norms)} normalization layer(s) with γ = 0: each residual block starts as the "
            "identity (Goyal et al. 2017) and the layers inside it get zero gradient until γ moves, after "
            "the first update",
            "nothing to do: deliberate"))
    heads = [la for la in closed if _is_head(layers, la)]
    if heads:
        findings.append(Finding(
            "init", "info", _names(heads),
            f"a zero-initialized head ({heads[0].name}): at step 0 every layer before it gets exactly 0 "
            "gradient; the first update moves the head, and gradients reach the body after it",
            "nothing to do: deliberate (a zero head starts from uniform predictions)"))
    branches = [la for la in firsts if is_weighted(la) and la.weight_rms == 0 and la not in closed]
    if branches:
        findings.append(Finding(
            "init", "info", _names(branches),
            f"{len(branches)} zero-initialized layer(s) off the main path ({branches[0].name}): each outputs "
            "0 at step 0, so the branch or gate it ends starts closed (LoRA's B, adaLN-Zero, a zero-"
            "initialized residual projection) while the rest of the network trains; the layers feeding only "
            "it get 0 "
            "gradient until it moves, after the first update",
            "nothing to do: deliberate"))
    return findings


# -- helpers -----------------------------------------------------------------------------------------


def _judgeable(segment: Segment) -> bool:
    """A segment with a finite, non-zero start (a zero-γ norm's output starts none), not started by an
    eval-mode BatchNorm (its output is not at the scale training gives it, so no gain from it means much)."""
    return (
        not any(s.running_stats for s in segment.starts)
        and segment.start_second_moment > 0
        and math.isfinite(segment.start_second_moment)
        and bool(segment.members)
    )


def _bias_dominated(layer: LayerReport) -> bool:
    """True when a layer's output is mostly its bias: E[y²] < 2 · std(b)², so E[(Wx)²] < E[b²]. Its output
    scale does not follow its input's (a classifier reading a signal that vanished outputs its bias), so
    it is not a gain; what vanished is judged at the layers that made it vanish."""
    return bool(layer.bias_std) and layer.activation_second_moment < 2 * layer.bias_std**2


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
