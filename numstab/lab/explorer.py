"""What ``numstab explore`` draws, computed: settings in, per-layer measurement and theory out.

A batch of real random networks (torch, ``seeds`` of them, width ``width``, ``depth`` layers) is run
forward and backward by hand, layer after layer,

.. math::
    u_l = \\mathrm{LN}(h_{l-1})\\ \\text{or}\\ h_{l-1},\\quad a_l = W_l u_l + b_l,\\quad
    h_l = h_{l-1} + f(a_l)\\ \\text{(residual)}\\ \\text{or}\\ f(a_l),\\qquad
    g_{l-1} = \\frac{\\partial \\ell}{\\partial h_{l-1}}

with inputs x = h_0 ~ N(0, I) and the loss l = <r, h_L>, r ~ N(0, I) rescaled to unit RMS, so the
gradient at the output has RMS 1. The forward pass runs in float32, as a network does; the backward
pass is linear in g, so it is rescaled to unit RMS after every layer and the scale carried in float64:
the gradients' true size is known even where float32 would flush it to zero.

Beside the measurement stands mean-field theory (:mod:`numstab.theory`; Poole et al. 2016, Schoenholz
et al. 2017) for plain fully connected layers: the pre-activation variance q_l follows the variance map
from q_1 = sigma_w^2 E[x^2] + sigma_b^2, and each layer multiplies the squared gradient by
chi_1(q_l) = sigma_w^2 E[f'(sqrt(q_l) z)^2]. Residual and LayerNorm networks are outside that theory:
no line is drawn for them and :attr:`ExplorerData.theory_note` says why.

The weights are :func:`numstab.init.apply_`'s draws. Every scheme's weights are one shared draw at
sigma_w = 1 times the scheme's sigma_w (Gaussian schemes share one draw, uniform ones another,
orthogonal a third), drawn once per (width, seeds, seed) and extended layer by layer as depth grows:
moving sigma_w, sigma_b or depth rescales or slices the same networks instead of drawing new ones,
which is what makes an update fast enough for a slider (see ``benchmarks/explore_update.py``).

Examples:
    >>> data = explore(ExplorerSettings(activation="relu", init="kaiming_normal", depth=20, width=64))
    >>> data.weight_std == 2**0.5, data.forward_rms.shape
    (True, (4, 21))
    >>> bool(0.5 < data.backward_center[0] < 2.0)   # He init keeps relu's gradients at scale
    True
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch

from numstab import activations, jsonio, precision, theory
from numstab import init as ns_init
from numstab._repr import short_repr
from numstab.errors import (
    InvalidArgumentError,
    NumstabTypeError,
    UnknownNameError,
    check_int_at_least,
    check_nonnegative,
)
from numstab.resources import check_memory

__all__ = [
    "explore",
    "ExplorerSettings",
    "ExplorerData",
    "FormatExit",
    "explorer_weights",
    "explorer_inputs",
    "phase_view",
    "INITS",
    "FORMATS",
    "MAX_DEPTH",
    "MAX_WIDTH",
    "MAX_SEEDS",
    "MAX_BATCH",
    "MAX_SEED",
    "MAX_STD",
    "LEAVE_FRACTION",
]

#: The init schemes the explorer offers: numstab.init.apply_'s, plus "standard_normal", the chapter's
#: N(0, 1) entries (apply_'s "normal" with scale=1). "normal" means N(0, sigma_w^2 / width).
INITS = (
    "normal", "standard_normal", "xavier_normal", "xavier_uniform", "kaiming_normal", "kaiming_uniform",
    "orthogonal", "critical",
)
#: The number formats whose limits the explorer draws (keys of numstab.precision.formats()).
FORMATS = ("float32", "bfloat16", "float16", "float8_e4m3fn", "float8_e5m2")
MAX_DEPTH = 200
MAX_WIDTH = 512
#: At the largest depth and width, 8 networks hold 1.7 GB of float32 weights.
MAX_SEEDS = 8
MAX_BATCH = 1024
#: sigma_w and sigma_b beyond this say nothing the slider's range does not (and overflow float32's alpha).
MAX_STD = 1000.0
#: Seeds stay far below the inputs' generator seed (see explorer_inputs) and within 32 bits.
MAX_SEED = 999_000
#: A layer's values "leave the format" when more than this share of them would overflow or flush to zero.
LEAVE_FRACTION = 0.01
#: The (sigma_w, sigma_b) grid of the phase diagram.
PHASE_WEIGHT_STDS = np.linspace(0.05, 4.0, 80)
PHASE_BIAS_STDS = np.linspace(0.0, 1.0, 41)
#: Values per layer and seed that the format check classifies (the first samples of the batch).
_CHECKED_SAMPLES = 4
_LAYER_NORM_EPS = 1e-5  # torch.nn.LayerNorm's default
#: The inputs' generator seed is this plus ``seed``, far from the networks' seeds (seed, seed + 1, ...).
_FLOAT32_TINY = torch.finfo(torch.float32).tiny
_INPUT_SEED_OFFSET = 1_000_003  # < 2**32: torch keeps only the low 32 bits of a CPU seed


@dataclass(frozen=True)
class ExplorerSettings:
    """Everything the explorer's controls set. Validated on construction.

    Attributes:
        activation: a registry name (:func:`numstab.activations.names`).
        init: one of :data:`INITS`.
        weight_std: sigma_w of the "normal" init, weights ~ N(0, sigma_w^2 / width), 0 .. :data:`MAX_STD`;
            other inits set their own (see :attr:`ExplorerData.weight_std`).
        bias_std: sigma_b, biases ~ N(0, sigma_b^2), every init, 0 .. :data:`MAX_STD`.
        depth: layers, 1 .. :data:`MAX_DEPTH`.
        width: units per layer (and of the input), 2 .. :data:`MAX_WIDTH`.
        residual: h_l = h_{l-1} + f(a_l) instead of f(a_l).
        layer_norm: normalize each layer's input over its units (LayerNorm without affine, pre-norm).
        fmt: the number format whose limits are checked, one of :data:`FORMATS`.
        seeds: independent networks (seed, seed + 1, ...), 1 .. :data:`MAX_SEEDS`.
        batch: input samples per network, 1 .. :data:`MAX_BATCH`.
        seed: the first network's seed, 0 .. :data:`MAX_SEED`.
    """

    activation: str = "tanh"
    init: str = "normal"
    weight_std: float = 1.0
    bias_std: float = 0.0
    depth: int = 50
    width: int = 256
    residual: bool = False
    layer_norm: bool = False
    fmt: str = "float16"
    seeds: int = 4
    batch: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        if self.activation not in activations.names():
            raise UnknownNameError("activation", self.activation, activations.names())
        if self.init not in INITS:
            raise UnknownNameError("init", self.init, INITS)
        if self.fmt not in FORMATS:
            raise UnknownNameError("fmt", self.fmt, FORMATS)
        for name in ("weight_std", "bias_std"):
            if check_nonnegative(name, getattr(self, name)) > MAX_STD:
                raise InvalidArgumentError(
                    f"{name} must be <= {MAX_STD:g}, got {getattr(self, name)!r}: pass {MAX_STD:g} or less"
                )
        limits = (("depth", 1, MAX_DEPTH), ("width", 2, MAX_WIDTH), ("seeds", 1, MAX_SEEDS),
                  ("batch", 1, MAX_BATCH), ("seed", 0, MAX_SEED))
        for name, low, high in limits:
            value = check_int_at_least(name, getattr(self, name), low)
            if value > high:
                raise InvalidArgumentError(f"{name} must be <= {high}, got {value}: pass {high} or less")
        for name in ("residual", "layer_norm"):
            if not isinstance(getattr(self, name), bool):
                raise NumstabTypeError(f"{name} must be True or False, got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class FormatExit:
    """The first layer whose values leave the format (more than :data:`LEAVE_FRACTION` of them).

    Attributes:
        layer: the layer index (0 = the input, L = the output).
        kind: "overflow" (beyond the format's largest value, or already non-finite) or "underflow"
            (non-zero values that round to zero).
        fraction: the share of the layer's checked values that do so.
    """

    layer: int
    kind: str
    fraction: float


@dataclass(frozen=True, repr=False)
class ExplorerData:
    """What :func:`explore` computed for one :class:`ExplorerSettings`. ``S`` seeds, ``L`` layers.

    Attributes:
        settings: the settings.
        weight_std: the effective sigma_w = std(W) * sqrt(width) of the chosen init.
        layers: 0 .. L, shape (L + 1,).
        forward_rms: root mean square of the values entering each layer's activation: the input x at
            layer 0, the pre-activations a_l after; squared, the forward second moment. Shape (S, L + 1);
            inf/NaN where float32 overflowed.
        backward_rms: RMS of the gradient dl/dh_l, 1 at layer L; shape (S, L + 1).
        theory_forward_rms: mean-field sqrt(q_l), shape (L + 1,), or None where theory does not apply.
        theory_backward_rms: mean-field sqrt(prod_{j > l} chi_1(q_j)), shape (L + 1,), or None.
        theory_note: why no theory line is drawn ("" when it is).
        chi1: mean-field chi_1 at the fixed point q* (NaN where theory does not apply).
        critical_weight_std: the sigma_w with chi_1 = 1 at this sigma_b (NaN where none exists, or where
            theory does not apply).
        phase: "ordered", "critical" or "chaotic" at (weight_std, bias_std); "" where theory does not apply.
        format: the :class:`numstab.precision.Format` of ``settings.fmt``.
        forward_exit: where forward values first leave the format, or None.
        backward_exit: where the backward pass (from the output) first leaves the format, or None.
        phase_diagram: the (sigma_w, sigma_b) plane for this activation (:func:`phase_view`).
        verdict: one line in words.
    """

    settings: ExplorerSettings
    weight_std: float
    layers: np.ndarray
    forward_rms: np.ndarray
    backward_rms: np.ndarray
    theory_forward_rms: np.ndarray | None
    theory_backward_rms: np.ndarray | None
    theory_note: str
    chi1: float
    critical_weight_std: float
    phase: str
    format: precision.Format
    forward_exit: FormatExit | None
    backward_exit: FormatExit | None
    phase_diagram: theory.PhaseDiagram = field(repr=False)
    verdict: str = field(default="")

    __repr__ = short_repr

    def __str__(self) -> str:
        depth = len(self.layers) - 1
        return f"{self.settings.activation}, sigma_w {self.weight_std:.4g}, depth {depth}: {self.verdict}"

    @property
    def forward_center(self) -> np.ndarray:
        """Geometric mean of :attr:`forward_rms` over the seeds, shape (L + 1,)."""
        return _geometric_mean(self.forward_rms)

    @property
    def backward_center(self) -> np.ndarray:
        """Geometric mean of :attr:`backward_rms` over the seeds, shape (L + 1,)."""
        return _geometric_mean(self.backward_rms)

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain Python values (arrays become nested lists)."""
        return jsonio.plain(self)

    def curves(self, direction: str) -> dict[str, np.ndarray]:
        """The plotted columns of one pass: layer, center (geometric mean over seeds), low and high (the
        band: min and max over seeds) and theory (NaN where no theory line is drawn), each (L + 1,).

        Examples:
            >>> sorted(explore(depth=3, width=8).curves("backward"))
            ['center', 'high', 'layer', 'low', 'theory']
        """
        if direction not in ("forward", "backward"):
            raise UnknownNameError("direction", direction, ("forward", "backward"))
        rms = self.forward_rms if direction == "forward" else self.backward_rms
        predicted = self.theory_forward_rms if direction == "forward" else self.theory_backward_rms
        if predicted is None:
            predicted = np.full(self.layers.shape, np.nan)
        with np.errstate(invalid="ignore"):
            low, high = rms.min(axis=0), rms.max(axis=0)
        return {"layer": self.layers, "center": _geometric_mean(rms), "low": low, "high": high,
                "theory": predicted}


def explore(settings: ExplorerSettings | None = None, **changes: Any) -> ExplorerData:
    """Measure a batch of random networks at ``settings`` and set mean-field theory beside it.

    Args:
        settings: the explorer's settings (default: :class:`ExplorerSettings`'s defaults).
        **changes: fields to replace, e.g. ``explore(depth=100, activation="sigmoid")``.

    Raises:
        UnknownNameError, InvalidArgumentError: a setting out of range (see :class:`ExplorerSettings`);
            "critical" where the activation has no critical sigma_w at this sigma_b.

    Examples:
        >>> d = explore(activation="sigmoid", init="xavier_normal", depth=30, width=64)
        >>> d.verdict.split(":")[0], round(d.chi1**0.5, 3)   # theory: the norm shrinks to 0.236 per layer
        ('gradients shrink 77% per layer', 0.236)
    """
    settings = replace(settings or ExplorerSettings(), **changes)
    _check_memory(settings)
    sigma_w = _effective_weight_std(settings)
    forward_rms, backward_rms, forward_checked, (grads_checked, scale) = _measure(settings, sigma_w)
    fmt = precision.formats()[settings.fmt]
    forward_exit = _first_exit(forward_checked, fmt, range(settings.depth + 1))
    backward_exit = _first_exit(grads_checked, fmt, range(settings.depth, -1, -1), scale)
    prediction = _theory(settings, sigma_w)
    data = ExplorerData(
        settings=settings, weight_std=sigma_w, layers=np.arange(settings.depth + 1),
        forward_rms=forward_rms, backward_rms=backward_rms, format=fmt,
        forward_exit=forward_exit, backward_exit=backward_exit,
        phase_diagram=phase_view(settings.activation), **prediction,
    )
    return replace(data, verdict=_verdict(data))


# ---------------------------------------------------------------------------------------------
# The networks: numstab.init.apply_'s draws, cached per (family, width, seeds, seed).


def _check_memory(s: ExplorerSettings) -> None:
    """Refuse, before drawing, networks whose weights (twice while they grow) and per-layer values
    (pre-activations, slopes, gradients, in float32) do not fit."""
    weights = 2 * s.seeds * s.depth * s.width * (s.width + 1) * 4
    values = 4 * (s.depth + 1) * s.seeds * s.batch * s.width * 4
    check_memory(f"width={s.width}, depth={s.depth}, seeds={s.seeds}, batch={s.batch}", weights + values,
                 "pass a smaller width, depth, seeds or batch")


def _effective_weight_std(settings: ExplorerSettings) -> float:
    """sigma_w = std(W) * sqrt(width) of each init for square layers, as apply_ sets it."""
    scheme = settings.init
    if scheme == "normal":
        return float(settings.weight_std)
    if scheme == "standard_normal":
        return math.sqrt(settings.width)
    if scheme.startswith("xavier"):
        return 1.0  # gain 1 (apply_'s activation=None, the chapter's Xavier): sqrt(2 / (n + n)) * sqrt(n)
    if scheme == "critical":
        return float(theory.critical_weight_std(settings.activation, settings.bias_std))
    return ns_init.gain(settings.activation)  # kaiming (fan_in) and orthogonal with the activation's gain


def _family(scheme: str) -> str:
    """The apply_ scheme whose draw at sigma_w = 1, times sigma_w, gives ``scheme``'s weights."""
    if scheme.endswith("uniform"):
        return "xavier_uniform"  # U(-sqrt(3/n), sqrt(3/n)); kaiming_uniform is its gain times it
    if scheme == "orthogonal":
        return "orthogonal"
    return "normal"  # N(0, 1/n): normal, standard_normal, xavier/kaiming normal and critical


class _Draws:
    """One family's unit weights and biases for ``seeds`` networks, grown a layer range at a time."""

    def __init__(self, family: str, width: int, seeds: int, seed: int) -> None:
        self.family, self.width = family, width
        self.generators = [torch.Generator().manual_seed(seed + k) for k in range(seeds)]
        self.weights = torch.empty(seeds, 0, width, width)  # (S, L, out, in)
        self.biases = torch.empty(seeds, 0, width)

    def grow(self, depth: int) -> None:
        """Draw layers len .. depth - 1 with each network's generator (apply_ goes layer by layer, so the
        first layers of a deeper draw are the shallower draw)."""
        extra = depth - self.weights.shape[1]
        if extra <= 0:
            return
        new_w, new_b = [], []
        for generator in self.generators:
            layers = [torch.nn.utils.skip_init(torch.nn.Linear, self.width, self.width) for _ in range(extra)]
            net = torch.nn.Sequential(*layers)
            kwargs = {"scale": 1.0 / math.sqrt(self.width)} if self.family == "normal" else {}
            ns_init.apply_(net, self.family, bias_std=1.0, generator=generator, **kwargs)
            new_w.append(torch.stack([layer.weight.detach() for layer in layers]))
            new_b.append(torch.stack([layer.bias.detach() for layer in layers]))
        self.weights = torch.cat([self.weights, torch.stack(new_w)], dim=1)
        self.biases = torch.cat([self.biases, torch.stack(new_b)], dim=1)


@functools.lru_cache(maxsize=1)
def _draws(family: str, width: int, seeds: int, seed: int) -> _Draws:
    # One entry: at width 512 and depth 200 four networks hold 840 MB of weights.
    return _Draws(family, width, seeds, seed)


def _unit_parameters(settings: ExplorerSettings) -> tuple[torch.Tensor, torch.Tensor]:
    draws = _draws(_family(settings.init), settings.width, settings.seeds, settings.seed)
    draws.grow(settings.depth)
    return draws.weights[:, : settings.depth], draws.biases[:, : settings.depth]


def explorer_weights(settings: ExplorerSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """The weights (S, L, out, in) and biases (S, L, out) of the networks :func:`explore` runs.

    ``apply_(net, settings.init, ...)``'s values with each seed's generator (up to float32 rounding of
    the rescaling), except that the biases are always drawn (apply_ skips them at bias_std = 0, which
    shifts later layers' draws) and scaled by sigma_b, so moving sigma_b changes only the biases.

    Examples:
        >>> w, b = explorer_weights(ExplorerSettings(init="xavier_normal", depth=3, width=8, seeds=2))
        >>> tuple(w.shape), tuple(b.shape)
        ((2, 3, 8, 8), (2, 3, 8))
    """
    unit_w, unit_b = _unit_parameters(settings)
    return unit_w * _effective_weight_std(settings), unit_b * settings.bias_std


# ---------------------------------------------------------------------------------------------
# Forward and backward by hand.


def explorer_inputs(settings: ExplorerSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """The inputs x ~ N(0, I) and the output cotangent r (unit RMS per network), shape (S, B, n) each.

    Examples:
        >>> x, r = explorer_inputs(ExplorerSettings(width=8, seeds=2, batch=3))
        >>> tuple(x.shape), round(float(r[0].square().mean()), 6)
        ((2, 3, 8), 1.0)
    """
    # Not the weights' stream: seeded like network k's generator, x would repeat its first layer's rows.
    generator = torch.Generator().manual_seed(_INPUT_SEED_OFFSET + settings.seed)
    shape = (settings.seeds, settings.batch, settings.width)
    x = torch.randn(shape, generator=generator)
    r = torch.randn(shape, generator=generator)
    return x, r / _rms(r)


def _rms(t: torch.Tensor) -> torch.Tensor:
    """RMS over every dimension but the first (the network), shaped to broadcast: (S, 1, 1)."""
    return t.square().mean(dim=(1, 2), keepdim=True).sqrt()


def _layer_norm(h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """LayerNorm without affine over the units, and the std it divided by."""
    centred = h - h.mean(dim=-1, keepdim=True)
    std = (centred.square().mean(dim=-1, keepdim=True) + _LAYER_NORM_EPS).sqrt()
    return centred / std, std


def _layer_norm_backward(grad: torch.Tensor, normed: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """d/dh of LayerNorm applied to ``grad`` (the gradient w.r.t. its output)."""
    mean_grad = grad.mean(dim=-1, keepdim=True)
    mean_proj = (grad * normed).mean(dim=-1, keepdim=True)
    return (grad - mean_grad - normed * mean_proj) / std


def _forward(settings, act, sigma_w, unit_w, biases, x) -> tuple[torch.Tensor, list]:
    """Pre-activations of every layer (L, S, B, n), and what the backward pass needs per layer.

    sigma_w multiplies inside the matmul (alpha): scaling the cached weights would copy all of them."""
    pre = torch.empty((settings.depth, *x.shape))
    saved, h = [], x
    for layer in range(settings.depth):
        normed, std = _layer_norm(h) if settings.layer_norm else (h, None)
        weight_t = unit_w[:, layer].transpose(1, 2)
        torch.baddbmm(biases[:, layer, None, :], normed, weight_t, alpha=sigma_w, out=pre[layer])
        out = act.fn(pre[layer])
        h = h + out if settings.residual else out
        saved.append((normed, std))
    return pre, saved


def _backward(settings, slopes, saved, unit_w, r) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients dl/dh_l rescaled to unit RMS (L + 1, S, B, n), and the scales (L + 1, S) in float64 that
    multiply them back: true gradient = grads[l] * scale[l].

    ``slopes`` are sigma_w f'(a_l): the backward pass through W_l = sigma_w U_l. An RMS below float32's
    smallest normal is divided by that instead (an all-zero gradient stays zero), the same number in the
    division and in the scale, so the product stays exact."""
    depth = settings.depth
    grads = torch.empty((depth + 1, *r.shape))
    rms_all = torch.ones(depth + 1, r.shape[0])
    grads[depth] = g = r
    per_entry = 1.0 / math.sqrt(settings.batch * settings.width)
    for layer in range(depth - 1, -1, -1):
        normed, std = saved[layer]
        upstream = torch.bmm(g * slopes[layer], unit_w[:, layer])
        if settings.layer_norm:
            upstream = _layer_norm_backward(upstream, normed, std)
        g = g + upstream if settings.residual else upstream
        rms = torch.linalg.vector_norm(g, dim=(1, 2), keepdim=True).mul_(per_entry).clamp_min_(_FLOAT32_TINY)
        rms_all[layer] = rms.reshape(-1)
        g = torch.div(g, rms, out=grads[layer])
    log_rms = rms_all.double().log()
    scale = log_rms.flip(0).cumsum(0).flip(0).exp()  # scale[l] = prod_{j >= l} rms_j (rms_L = 1)
    return grads, scale


def _measure(settings: ExplorerSettings, sigma_w: float) -> tuple[Any, ...]:
    """forward_rms, backward_rms (S, L + 1), and the values to check against the format: the forward
    values (L + 1, S, B, n) and the rescaled gradients with their scales."""
    act = activations.get(settings.activation)
    unit_w, unit_b = _unit_parameters(settings)
    x, r = explorer_inputs(settings)
    with torch.no_grad():
        pre, saved = _forward(settings, act, sigma_w, unit_w, unit_b * settings.bias_std, x)
        slopes = act.derivative(pre).mul_(sigma_w)
        grads, scale = _backward(settings, slopes, saved, unit_w, r)
    forward = torch.cat([x[None], pre])  # (L + 1, S, B, n)
    per_entry = math.sqrt(settings.batch * settings.width)  # float64 accumulation: no float32 overflow
    forward_rms = (torch.linalg.vector_norm(forward, dim=(2, 3), dtype=torch.float64) / per_entry).T.numpy()
    grad_norm = torch.linalg.vector_norm(grads, dim=(2, 3), dtype=torch.float64) / per_entry
    backward_rms = (grad_norm * scale).T.numpy()
    checked = slice(0, _CHECKED_SAMPLES)
    return forward_rms, backward_rms, forward[:, :, checked], (grads[:, :, checked], scale)


def _first_exit(
    values: torch.Tensor, fmt: precision.Format, order: range, scale: torch.Tensor | None = None
) -> FormatExit | None:
    """The first layer, in ``order``, where more than LEAVE_FRACTION of ``values * scale`` leave ``fmt``.

    ``values`` (L + 1, S, ...) in float32, ``scale`` (L + 1, S) in float64 or None. Non-finite values
    (float32 itself overflowed) count as overflow. Only layers whose extremes come near a limit are
    classified (:func:`numstab.precision.categorize`, exact, in float64)."""
    magnitude = values.abs()
    peak = magnitude.amax(dim=(2, 3)).double()
    least = torch.where(magnitude > 0, magnitude, torch.inf).amin(dim=(2, 3)).double()
    if scale is not None:
        peak, least = peak * scale, least * scale
    near = (~torch.isfinite(peak) | (peak > fmt.max) | (least < fmt.smallest_subnormal)).any(dim=1).tolist()
    code = precision.CATEGORIES.index
    for layer in (layer for layer in order if near[layer]):
        exact = values[layer].double() * (1.0 if scale is None else scale[layer, :, None, None])
        codes = precision.categorize(exact, fmt)
        over = float(((codes == code("overflow")) | (codes == code("nonfinite"))).double().mean())
        under = float((codes == code("underflow")).double().mean())
        if over > LEAVE_FRACTION:
            return FormatExit(layer, "overflow", over)
        if under > LEAVE_FRACTION:
            return FormatExit(layer, "underflow", under)
    return None


def _geometric_mean(rms: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.exp(np.log(rms).mean(axis=0))


# ---------------------------------------------------------------------------------------------
# Theory and words.


def _theory(settings: ExplorerSettings, sigma_w: float) -> dict[str, Any]:
    """Mean-field sqrt(q_l) and gradient RMS for a plain net; None and the reason for the others."""
    if settings.residual or settings.layer_norm:
        parts = (("residual", settings.residual), ("LayerNorm", settings.layer_norm))
        what = " and ".join(name for name, on in parts if on)
        note = (
            f"no mean-field line for {what} networks: numstab.theory's variance map and chi_1 describe "
            "plain fully connected layers (Poole et al. 2016; Schoenholz et al. 2017), and so does the phase "
            "diagram; the measured curves are still the real networks'"
        )
        return {"theory_forward_rms": None, "theory_backward_rms": None, "theory_note": note,
                "chi1": math.nan, "critical_weight_std": math.nan, "phase": ""}
    act, sigma_b, depth = settings.activation, settings.bias_std, settings.depth
    with np.errstate(over="ignore", invalid="ignore"):
        q_all = _variances(act, sigma_w, sigma_b, depth)
        growth = np.asarray(theory.chi1_at(act, sigma_w, np.where(np.isfinite(q_all), q_all, 0.0)))
        growth = np.where(np.isfinite(q_all), growth, np.nan)
        # E g_{l-1}^2 = chi_1(q_l) E g_l^2, E g_L^2 = 1
        backward = np.sqrt(np.append(np.cumprod(growth[::-1])[::-1], 1.0))
    chi1 = theory.chi1(act, sigma_w, sigma_b)
    return {
        "theory_forward_rms": np.sqrt(np.concatenate([[1.0], q_all])),
        "theory_backward_rms": backward,
        "theory_note": "",
        "chi1": chi1,
        "critical_weight_std": _critical_weight_std(act, sigma_b),
        "phase": theory.classify_phase(chi1),
    }


@functools.lru_cache(maxsize=256)
def _critical_weight_std(activation: str, sigma_b: float) -> float:
    return float(theory.critical_weight_stds(activation, [sigma_b])[0])  # NaN where none exists


@functools.lru_cache(maxsize=64)
def _variance_sequence(activation: str, sigma_w: float, sigma_b: float) -> list[float]:
    """q_1, q_2, ... so far for one initialization; :func:`_variances` extends it (a depth change costs
    nothing once the deepest depth asked is known)."""
    return [sigma_w**2 * 1.0 + sigma_b**2]  # q_1 = sigma_w^2 E[x^2] + sigma_b^2, E[x^2] = 1


def _variances(activation: str, sigma_w: float, sigma_b: float, depth: int) -> np.ndarray:
    """Mean-field q_1 .. q_depth: q_{l+1} = theory.variance_map(q_l)."""
    q = _variance_sequence(activation, sigma_w, sigma_b)
    while len(q) < depth:
        q.append(float(theory.variance_map(activation, sigma_w, sigma_b, q[-1])))
    return np.asarray(q[:depth])


def _sci(value: float) -> str:
    """1e-3 for 0.001, 0.45 for 0.45: a number a student reads at a glance."""
    if value == 0 or not math.isfinite(value):
        return str(value)
    if 1e-2 <= abs(value) < 1e3:
        return f"{float(f'{value:.2g}'):g}"
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _gradient_words(data: ExplorerData) -> str:
    depth = data.settings.depth
    first, last = data.backward_center[0], data.backward_center[depth]
    if not (np.isfinite(first) and np.isfinite(last) and last > 0):
        return "gradients are not finite (the forward pass overflowed float32)"
    if first == 0:
        return f"gradients vanish: after {depth} layers the first layer gets exactly 0"
    ratio = first / last
    per_layer = ratio ** (1.0 / depth)
    share = f"{_sci(ratio)} of" if ratio < 1 else f"{_sci(ratio)}×"
    tail = f"after {depth} layers the first layer gets {share} the last layer's gradient"
    if 0.5 <= ratio <= 2.0:
        return f"gradients keep their scale: {tail}"
    change = abs(per_layer - 1.0) * 100
    rate = f"{change:.0f}%" if change >= 1 else f"{change:.1f}%"
    if per_layer >= 2:
        rate = f"×{per_layer:.3g}"
    return f"gradients {'shrink' if per_layer < 1 else 'grow'} {rate} per layer: {tail}"


def _format_words(data: ExplorerData) -> str:
    name = data.format.name
    verbs = {"overflow": "overflow", "underflow": "flush to zero"}
    parts = [f"{what} {verbs[leaves.kind]} at layer {leaves.layer}"
             for what, leaves in (("forward values", data.forward_exit), ("gradients", data.backward_exit))
             if leaves is not None]
    return f"{name}: {' and '.join(parts)}" if parts else f"everything fits in {name}"


def _verdict(data: ExplorerData) -> str:
    return f"{_gradient_words(data)}; {_format_words(data)}"


@functools.lru_cache(maxsize=32)
def phase_view(activation: str) -> theory.PhaseDiagram:
    """The (sigma_w, sigma_b) phase diagram the explorer shows for ``activation`` (cached per activation).

    Examples:
        >>> phase_view("tanh").chi1.shape
        (41, 80)
    """
    return theory.phase_diagram(activation, PHASE_WEIGHT_STDS, PHASE_BIAS_STDS)
