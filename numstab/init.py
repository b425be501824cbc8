"""Initializers torch.nn.init lacks: whole-model schemes, critical init, delta-orthogonal, LSUV.

The chapter (D2L "Numerical Stability and Initialization") ends with Xavier initialization: pick
the weight variance so that the variance of the signal neither grows nor shrinks from layer to
layer. This module applies that idea, and its successors, to a whole ``nn.Module``:

- :func:`apply_` initializes every Linear / Conv / ConvTranspose layer by one scheme (Xavier,
  Kaiming, orthogonal, critical, the book's raw ``normal``, or the chapter's ``constant`` symmetry
  trap), reusing :mod:`torch.nn.init`;
- :func:`gain` extends ``torch.nn.init.calculate_gain`` to any activation by quadrature;
- :func:`critical_` samples at the edge of chaos of mean-field theory (Poole et al. 2016);
- :func:`delta_orthogonal_` makes a convolution an isometry at initialization (Xiao et al. 2018);
- :func:`lsuv_` rescales layer by layer until each output has unit variance (Mishkin & Matas 2016).

Every random function takes ``generator=``: the same seeded generator gives bit-identical weights.

Examples:
    >>> import torch
    >>> from torch import nn
    >>> from numstab import init
    >>> model = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 2))
    >>> _ = init.apply_(model, "xavier_normal", activation="tanh", generator=torch.Generator().manual_seed(0))
    >>> bool(model[0].bias.abs().sum() == 0)
    True
    >>> round(init.gain("relu"), 6), round(init.gain("gelu"), 6)
    (1.414214, 1.53353)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, get_args

import scipy.integrate
import torch
from torch import nn
from torch.nn import init as nn_init

from numstab import activations
from numstab.activations import Activation
from numstab.errors import (
    BadInputError,
    InvalidArgumentError,
    ModelError,
    NoCriticalPointError,
    NumstabTypeError,
    UnknownNameError,
    check_int_at_least,
    check_nonnegative,
    check_positive,
)

__all__ = [
    "Scheme",
    "FanMode",
    "SCHEMES",
    "LAYER_TYPES",
    "fans",
    "gain",
    "critical_",
    "delta_orthogonal_",
    "apply_",
    "lsuv_",
]

Scheme = Literal[
    "xavier_normal",
    "xavier_uniform",
    "kaiming_normal",
    "kaiming_uniform",
    "orthogonal",
    "critical",
    "normal",
    "constant",
]
FanMode = Literal["fan_in", "fan_out"]
ActivationLike = str | Activation | Callable[[Any], Any]

#: The schemes :func:`apply_` knows.
SCHEMES: tuple[str, ...] = get_args(Scheme)
_FAN_MODES: tuple[str, ...] = get_args(FanMode)

#: The layers :func:`apply_` initializes (subclasses included); every other module is left alone.
LAYER_TYPES: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)

# Names torch.nn.init.calculate_gain defines without going through an activation.
_TORCH_LINEAR_NAMES = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
)


# ---------------------------------------------------------------------------------------------
# Fans and gains.


def fans(tensor: torch.Tensor) -> tuple[int, int]:
    """Return (fan_in, fan_out) of a weight, with torch.nn.init's convention.

    For a weight of shape ``(out, in, *kernel)``, fan_in = in * prod(kernel) and
    fan_out = out * prod(kernel).

    Note:
        The convention assumes ``y = x @ W.T``. A ConvTranspose weight is stored ``(in, out, *kernel)``,
        so its "fan_in" counts output channels; torch does the same and so do we.

    Raises:
        BadInputError: the tensor has fewer than 2 dimensions; the message names its shape.

    Examples:
        >>> fans(torch.empty(16, 3, 5, 5))
        (75, 400)
    """
    shape = tuple(tensor.shape)
    if len(shape) < 2:
        raise BadInputError(
            f"a weight needs at least 2 dimensions (out, in, *kernel) to have fans, got shape {shape}: "
            "pass a Linear or convolution weight, not a bias or a scalar"
        )
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _scalar_fn(act: Activation) -> Callable[[float], float]:
    """f on Python floats; a callable that only takes tensors (torch.nn.functional.gelu) gets 0-d ones."""
    try:
        float(act.fn(0.5))
        return lambda z: float(act.fn(z))
    except TypeError:
        return lambda z: float(act.fn(torch.tensor(z, dtype=torch.float64)))


def _phi_weighted_square(f: Callable[[float], float]) -> Callable[[float], float]:
    inv_sqrt_2pi = 1.0 / math.sqrt(2.0 * math.pi)
    return lambda z: f(z) ** 2 * math.exp(-0.5 * z * z) * inv_sqrt_2pi


@lru_cache(maxsize=64)
def _quadrature_gain(act: Activation) -> float:
    integrand = _phi_weighted_square(_scalar_fn(act))
    # Split at 0: a kink there (relu-like) would cost quad its accuracy.
    halves = [scipy.integrate.quad(integrand, lo, hi, epsabs=1e-14, epsrel=1e-12, limit=200)[0]
              for lo, hi in ((-math.inf, 0.0), (0.0, math.inf))]
    second_moment = sum(halves)
    if not (math.isfinite(second_moment) and second_moment > 0):
        raise InvalidArgumentError(
            f"activation {act.name!r} has E[f(z)^2] = {second_moment!r} for z ~ N(0, 1), so no gain "
            "keeps the forward variance: use an activation that is not zero almost everywhere"
        )
    return 1.0 / math.sqrt(second_moment)


def gain(activation: ActivationLike) -> float:
    """Return the gain that keeps the forward second moment of a layer followed by ``activation``.

    Where torch defines it (linear, conv*, sigmoid, tanh, relu, leaky_relu with its slope, selu) this
    is exactly ``torch.nn.init.calculate_gain`` (He et al. 2015 for the rectifiers, the empirical 5/3
    and 3/4 for tanh and selu). For any other activation, registered or a callable, it is

    .. math::
        g = \\frac{1}{\\sqrt{E[f(z)^2]}}, \\qquad z \\sim N(0, 1),

    by adaptive quadrature split at the kink at 0, so that ``Var(W) = g^2 / fan_in`` keeps
    ``E[x^2]`` fixed from layer to layer (the argument of Glorot & Bengio 2010 with the
    activation's own second moment; for relu it gives sqrt(2), torch's value).

    Args:
        activation: a registered name, one of torch's linear names (``"conv2d"``, ...), an
            :class:`~numstab.activations.Activation` or a callable f(x).

    Raises:
        UnknownNameError: an unknown name; the message lists the valid ones.

    Examples:
        >>> gain("tanh") == 5 / 3, gain("conv_transpose2d")
        (True, 1.0)
        >>> round(gain("silu"), 6)
        1.676532
    """
    if isinstance(activation, str) and activation in _TORCH_LINEAR_NAMES:
        return float(nn_init.calculate_gain(activation))
    act = activations.get(activation)
    if act.torch_name is not None:
        return float(nn_init.calculate_gain(act.torch_name, act.torch_param))
    return _quadrature_gain(act)


# ---------------------------------------------------------------------------------------------
# Single-tensor initializers.


def _check_generator(generator: torch.Generator | None) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise NumstabTypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}: "
            "pass torch.Generator().manual_seed(seed)"
        )


def _critical_weight_std(activation: ActivationLike, bias_std: float) -> float:
    from numstab.theory import critical_weight_std  # numpy/scipy only; loaded on first use

    sigma_w = float(critical_weight_std(activation, bias_std))
    if not (math.isfinite(sigma_w) and sigma_w > 0):
        name = activations.get(activation).name
        raise NoCriticalPointError(
            f"activation {name!r} has no critical weight_std at bias_std={bias_std} (got {sigma_w!r}): "
            "choose a smaller bias_std or another scheme"
        )
    return sigma_w


def _normal_critical_(
    tensor: torch.Tensor, sigma_w: float, generator: torch.Generator | None
) -> torch.Tensor:
    return nn_init.normal_(tensor, 0.0, sigma_w / math.sqrt(fans(tensor)[0]), generator=generator)


def critical_(
    tensor: torch.Tensor,
    activation: ActivationLike,
    *,
    bias_std: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Fill ``tensor`` from N(0, sigma_w^2 / fan_in) with sigma_w at the edge of chaos.

    Mean-field theory (Poole et al. 2016; Schoenholz et al. 2017) says a deep network with
    W ~ N(0, sigma_w^2 / fan_in), b ~ N(0, sigma_b^2) propagates gradients without growth or decay
    when

    .. math::
        \\chi_1 = \\sigma_w^2\\, E\\big[f'(\\sqrt{q^*} z)^2\\big] = 1,

    q* being the fixed point of the variance map. sigma_w comes from
    :func:`numstab.theory.critical_weight_std`: sqrt(2) for relu (He et al. 2015), 1 for tanh at
    sigma_b = 0. Pair it with biases drawn from N(0, bias_std^2), which :func:`apply_` does.

    Args:
        tensor: a weight with at least 2 dimensions (out, in, *kernel).
        activation: the activation after this layer (name, Activation or callable).
        bias_std: sigma_b, the standard deviation of the biases (>= 0).
        generator: the torch Generator to sample from.

    Examples:
        >>> w = critical_(torch.empty(256, 512), "relu", generator=torch.Generator().manual_seed(0))
        >>> round(float(w.std() * 512**0.5), 1)  # sqrt(2)
        1.4
    """
    fans(tensor)
    _check_generator(generator)
    sigma_w = _critical_weight_std(activation, check_nonnegative("bias_std", bias_std))
    return _normal_critical_(tensor, sigma_w, generator)


def _orthogonal_matrix(rows: int, cols: int, generator: torch.Generator | None) -> torch.Tensor:
    """A (rows x cols) Haar-distributed semi-orthogonal matrix in float64 (torch's QR recipe)."""
    return nn_init.orthogonal_(torch.empty(rows, cols, dtype=torch.float64), generator=generator)


def delta_orthogonal_(
    conv_weight: torch.Tensor, gain: float = 1.0, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Fill a convolution weight with zeros except an orthogonal matrix at the spatial centre tap.

    The delta-orthogonal initialization of Xiao et al. 2018 ("Dynamical Isometry and a Mean Field
    Theory of CNNs"): with H an (out x in) matrix with orthonormal columns,

    .. math::
        W[:, :, k_c] = g\\,H, \\qquad W[:, :, k] = 0 \\; (k \\neq k_c), \\qquad H^\\top H = I,

    so at initialization the convolution maps each pixel's channels by an isometry (times g) and
    10,000-layer vanilla CNNs train. The centre tap is ``k // 2`` along each spatial axis.

    Args:
        conv_weight: a Conv1d/2d/3d weight, shape (out, in, *kernel), 3 to 5 dims, out >= in.
        gain: the scale g.
        generator: the torch Generator to sample from.

    Raises:
        BadInputError: fewer than 3 or more than 5 dims, or out < in (no isometry exists).

    Examples:
        >>> w = delta_orthogonal_(torch.empty(8, 4, 3, 3), generator=torch.Generator().manual_seed(0))
        >>> centre = w[:, :, 1, 1]
        >>> bool(torch.allclose(centre.T @ centre, torch.eye(4), atol=1e-6)), float(w[:, :, 0, 0].abs().sum())
        (True, 0.0)
    """
    shape = tuple(conv_weight.shape)
    if not 3 <= len(shape) <= 5:
        raise BadInputError(
            f"delta_orthogonal_ needs a Conv1d/2d/3d weight (out, in, *kernel) with 3 to 5 dims, got shape "
            f"{shape}: for a Linear weight use torch.nn.init.orthogonal_"
        )
    if shape[0] < shape[1]:
        raise BadInputError(
            f"delta_orthogonal_ needs out_channels >= in_channels for an isometry, got shape {shape} "
            f"({shape[0]} < {shape[1]}): widen the layer to at least {shape[1]} output channels or use "
            "torch.nn.init.orthogonal_"
        )
    _check_generator(generator)
    centre = (slice(None), slice(None), *(k // 2 for k in shape[2:]))
    block = _orthogonal_matrix(shape[0], shape[1], generator) * gain
    with torch.no_grad():
        conv_weight.zero_()
        conv_weight[centre] = block.to(conv_weight.dtype)
    return conv_weight


# ---------------------------------------------------------------------------------------------
# Whole-model schemes.


@dataclass(frozen=True)
class _Plan:
    """A validated apply_ call: everything a layer needs, computed before any weight changes."""

    scheme: str
    gain: float = 1.0
    mode: str = "fan_in"
    sigma_w: float = 0.0
    scale: float = 0.0
    value: float = 0.0
    bias_std: float = 0.0


def _kaiming_std(w: torch.Tensor, plan: _Plan) -> float:
    fan_in, fan_out = fans(w)
    # Same arithmetic as torch.nn.init.kaiming_*: bit-identical weights where torch defines the gain.
    return plan.gain / math.sqrt(fan_in if plan.mode == "fan_in" else fan_out)


def _symmetric_uniform_(w: torch.Tensor, bound: float, generator: torch.Generator | None) -> torch.Tensor:
    return nn_init.uniform_(w, -bound, bound, generator=generator)


_FILLERS: dict[str, Callable[[torch.Tensor, _Plan, torch.Generator | None], Any]] = {
    "xavier_normal": lambda w, p, g: nn_init.xavier_normal_(w, p.gain, generator=g),
    "xavier_uniform": lambda w, p, g: nn_init.xavier_uniform_(w, p.gain, generator=g),
    "kaiming_normal": lambda w, p, g: nn_init.normal_(w, 0.0, _kaiming_std(w, p), generator=g),
    "kaiming_uniform": lambda w, p, g: _symmetric_uniform_(w, math.sqrt(3.0) * _kaiming_std(w, p), g),
    "orthogonal": lambda w, p, g: nn_init.orthogonal_(w, p.gain, generator=g),
    "critical": lambda w, p, g: _normal_critical_(w, p.sigma_w, g),
    "normal": lambda w, p, g: nn_init.normal_(w, 0.0, p.scale, generator=g),
    "constant": lambda w, p, g: nn_init.constant_(w, p.value),
}


def _scheme_gain(scheme: str, activation: ActivationLike | None) -> float:
    if scheme.startswith("kaiming"):
        return gain("relu" if activation is None else activation)
    if scheme.startswith("xavier") or scheme == "orthogonal":
        return 1.0 if activation is None else gain(activation)
    if activation is not None:
        activations.get(activation)  # validated even where it does not matter
    return 1.0


def _required(scheme: str, needs: str, name: str, got: float | None, example: str) -> float | None:
    """The scheme-specific number: present exactly when the scheme needs it."""
    if scheme == needs and got is None:
        raise InvalidArgumentError(
            f"scheme={needs!r} needs {name}=: e.g. apply_(model, {needs!r}, {example})"
        )
    if scheme != needs and got is not None:
        raise InvalidArgumentError(
            f"{name}= only applies to scheme={needs!r}, got scheme={scheme!r}: drop {name}="
        )
    return got


def _plan(
    scheme: str,
    activation: ActivationLike | None,
    bias_std: float,
    scale: float | None,
    value: float | None,
    mode: str,
) -> _Plan:
    if not isinstance(scheme, str) or scheme not in SCHEMES:
        raise UnknownNameError("scheme", scheme, SCHEMES)
    if mode not in _FAN_MODES:
        raise UnknownNameError("mode", mode, _FAN_MODES)
    bias_std = check_nonnegative("bias_std", bias_std)
    scale = _required(scheme, "normal", "scale", scale, "scale=0.01 (the std of each entry)")
    value = _required(scheme, "constant", "value", value, "value=0.5")
    if scale is not None and not _as_number("scale", scale) >= 0:
        raise InvalidArgumentError(
            f"scale must be a finite standard deviation >= 0, got {scale!r}: pass e.g. scale=0.01"
        )
    if scheme == "critical" and activation is None:
        raise InvalidArgumentError(
            "scheme='critical' needs activation=: e.g. apply_(model, 'critical', activation='tanh')"
        )
    return _Plan(
        scheme=scheme,
        gain=_scheme_gain(scheme, activation),
        mode=mode,
        sigma_w=_critical_weight_std(activation, bias_std) if scheme == "critical" else 0.0,
        scale=0.0 if scale is None else float(scale),
        value=0.0 if value is None else _as_number("value", value),
        bias_std=bias_std,
    )


def _as_number(name: str, value: Any) -> float:
    """float(value) for a finite real number (int, float, numpy or 0-d tensor), else raise naming it."""
    try:
        number = math.nan if isinstance(value, bool | str) else float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise InvalidArgumentError(f"{name} must be a finite number, got {value!r} ({type(value).__name__})")
    return number


def _layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    found = [(name, m) for name, m in model.named_modules() if isinstance(m, LAYER_TYPES)]
    lazy = [name for name, m in found if isinstance(m.weight, nn.parameter.UninitializedParameter)]
    if lazy:
        raise ModelError(
            f"layer {lazy[0]!r} is lazy and has no weight shape yet: run one forward pass, then apply_"
        )
    if not found:
        raise ModelError(
            f"{type(model).__name__} has no Linear, Conv or ConvTranspose layer for apply_ to initialize: "
            "use torch.nn.init on your own parameters"
        )
    return found


def _new_values(
    layers: list[tuple[str, nn.Module]], plan: _Plan, generator: torch.Generator | None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(parameter, new value) pairs, sampled into fresh tensors so the model is untouched on failure."""
    for _, layer in layers:
        weight = torch.empty_like(layer.weight)
        _FILLERS[plan.scheme](weight, plan, generator)
        yield layer.weight, weight
        if layer.bias is not None:
            bias = torch.zeros_like(layer.bias)
            if plan.bias_std > 0:
                nn_init.normal_(bias, 0.0, plan.bias_std, generator=generator)
            yield layer.bias, bias


def apply_(
    model: nn.Module,
    scheme: Scheme,
    *,
    activation: ActivationLike | None = None,
    bias_std: float = 0.0,
    generator: torch.Generator | None = None,
    scale: float | None = None,
    value: float | None = None,
    mode: FanMode = "fan_in",
) -> nn.Module:
    """Initialize every Linear, Conv1d/2d/3d and ConvTranspose1d/2d/3d layer of ``model`` in place.

    Weights by ``scheme``; biases to zero, or from N(0, bias_std^2) when ``bias_std > 0``; every
    other module untouched. With gain g (:func:`gain` of ``activation``) and the fans of
    :func:`fans`:

    ==================  =====================================================================
    scheme              weight law
    ==================  =====================================================================
    xavier_normal       N(0, g^2 * 2 / (fan_in + fan_out))  (Glorot & Bengio 2010)
    xavier_uniform      U(-a, a), a = g * sqrt(6 / (fan_in + fan_out))
    kaiming_normal      N(0, g^2 / fan), fan = fan_in or fan_out by ``mode`` (He et al. 2015)
    kaiming_uniform     U(-b, b), b = g * sqrt(3 / fan)
    orthogonal          g times a Haar semi-orthogonal matrix (Saxe et al. 2014)
    critical            N(0, sigma_w^2 / fan_in), sigma_w at chi_1 = 1 (see :func:`critical_`)
    normal              N(0, scale^2): ``scale`` is the raw std of each entry (the book's convention)
    constant            every entry ``value``: the chapter's symmetry trap
    ==================  =====================================================================

    ``activation=None`` means g = 1 for xavier and orthogonal and relu for kaiming (torch's
    defaults), so the results are bit-identical to torch.nn.init's with the same generator.
    Everything is validated and every new value sampled before the first weight is written: a
    failed call leaves the model bit-identical.

    Args:
        model: the module to initialize.
        scheme: one of :data:`SCHEMES`.
        activation: the activation that follows the layers (name, Activation or callable).
        bias_std: standard deviation of the biases (>= 0); 0 zeroes them.
        generator: the torch Generator to sample from, layer after layer in ``named_modules`` order.
        scale: the std of each entry; required by ``"normal"`` and only there.
        value: the constant; required by ``"constant"`` and only there.
        mode: ``"fan_in"`` (keeps the forward variance) or ``"fan_out"`` (the backward); kaiming only.

    Raises:
        NumstabTypeError: ``model`` is not an ``nn.Module``.
        UnknownNameError: an unknown scheme, mode or activation (the message lists the valid ones).
        InvalidArgumentError: a missing, superfluous or negative ``scale``/``value``/``bias_std``.
        ModelError: the model has no layer to initialize.

    Examples:
        >>> net = nn.Sequential(nn.Linear(4, 4), nn.Sigmoid(), nn.Linear(4, 1))
        >>> _ = apply_(net, "constant", value=0.5)
        >>> net[0].weight.unique().tolist(), net[0].bias.unique().tolist()
        ([0.5], [0.0])
    """
    if not isinstance(model, nn.Module):
        raise NumstabTypeError(
            f"model must be a torch.nn.Module, got {type(model).__name__}: to initialize one tensor use "
            "torch.nn.init or numstab.init.critical_ / delta_orthogonal_"
        )
    _check_generator(generator)
    plan = _plan(scheme, activation, bias_std, scale, value, mode)
    pending = list(_new_values(_layers(model), plan, generator))
    with torch.no_grad():
        for param, new in pending:
            param.copy_(new)
    return model


# ---------------------------------------------------------------------------------------------
# LSUV.


def _weighted_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules owning a ``weight`` parameter with >= 2 dims (Linear, Conv*, Embedding, ...)."""
    return [
        (name or type(m).__name__, m)
        for name, m in model.named_modules()
        if isinstance(getattr(m, "weight", None), nn.Parameter) and m.weight.dim() >= 2
    ]


class _OutputStd:
    """Forward hooks recording each layer's output std and the order layers first ran in."""

    def __init__(self, layers: list[tuple[str, nn.Module]]) -> None:
        self.order: list[str] = []
        self.std: dict[str, float] = {}
        self.handles = [m.register_forward_hook(self._hook(name)) for name, m in layers]

    def _hook(self, name: str) -> Callable[..., None]:
        def record(module: nn.Module, args: Any, output: Any) -> None:
            if name in self.std:  # a layer called twice: its first output counts
                return
            if not isinstance(output, torch.Tensor):
                raise ModelError(f"lsuv_: layer {name!r} returned {type(output).__name__}, not a tensor")
            self.order.append(name)
            self.std[name] = float(output.detach().double().std())

        return record

    def run(self, model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> dict[str, float]:
        self.order.clear()
        self.std.clear()
        model(*inputs)
        return self.std

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def _rescale_layer(
    name: str,
    layer: nn.Module,
    measure: Callable[[], dict[str, float]],
    settings: tuple[float, float, int],
) -> None:
    target, tol, max_iter = settings
    for _ in range(max_iter):
        std = measure()[name]
        if not (math.isfinite(std) and std > 0):
            raise ModelError(
                f"lsuv_: layer {name!r} has output std {std!r} on these inputs, so no rescaling reaches "
                f"target_std={target}: check that its input is not constant (dead units, zero inputs)"
            )
        if abs(std - target) <= tol:
            return
        layer.weight.mul_(target / std)


def _as_input_tuple(inputs: Any) -> tuple[torch.Tensor, ...]:
    args = tuple(inputs) if isinstance(inputs, tuple | list) else (inputs,)
    if not args or not all(isinstance(a, torch.Tensor) for a in args):
        raise NumstabTypeError(
            f"inputs must be a tensor or a tuple of tensors for model(*inputs), got {type(inputs).__name__}"
        )
    return args


def lsuv_(
    model: nn.Module,
    inputs: torch.Tensor | tuple[torch.Tensor, ...],
    *,
    target_std: float = 1.0,
    tol: float = 0.05,
    max_iter: int = 10,
    generator: torch.Generator | None = None,
) -> nn.Module:
    """Layer-sequential unit-variance initialization (Mishkin & Matas 2016, "All you need is a good init").

    Every module with a weight of >= 2 dims is first set to an orthogonal matrix (Saxe et al. 2014);
    then, in the order the layers run, each weight is rescaled by the output's std until

    .. math::
        \\big|\\operatorname{std}(\\text{layer}(x)) - \\text{target\\_std}\\big| \\le \\text{tol}
        \\qquad\\text{via}\\qquad W \\leftarrow W \\cdot \\frac{\\text{target\\_std}}{\\operatorname{std}},

    with at most ``max_iter`` forward passes per layer. Biases are left as they are. The passes run
    under ``torch.no_grad()`` in eval mode (dropout off, BatchNorm running statistics untouched);
    each module's train/eval flag is restored and every hook removed, also on error, and on error
    every weight is restored. No global state is touched.

    Args:
        model: the module to initialize in place.
        inputs: a batch, or a tuple of arguments for ``model(*inputs)``.
        target_std: the wanted std of every layer's output (> 0).
        tol: accepted distance from ``target_std`` (> 0).
        max_iter: forward passes per layer at most (>= 1).
        generator: the torch Generator for the orthogonal pre-initialization.

    Raises:
        ModelError: a layer's output has zero (or non-finite) variance; the message names it.

    Examples:
        >>> net = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 8))
        >>> x = torch.randn(64, 16, generator=torch.Generator().manual_seed(0))
        >>> _ = lsuv_(net, x, generator=torch.Generator().manual_seed(0))
        >>> with torch.no_grad():
        ...     abs(float(net(x).std()) - 1.0) <= 0.05
        True
    """
    if not isinstance(model, nn.Module):
        raise NumstabTypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    args = _as_input_tuple(inputs)
    target_std, tol = check_positive("target_std", target_std), check_positive("tol", tol)
    check_int_at_least("max_iter", max_iter, 1)
    _check_generator(generator)
    layers = _weighted_layers(model)
    if not layers:
        raise ModelError(f"lsuv_: {type(model).__name__} has no module with a weight of >= 2 dims")
    _lsuv_guarded(model, args, layers, (target_std, tol, max_iter), generator)
    return model


def _lsuv_guarded(
    model: nn.Module,
    args: tuple[torch.Tensor, ...],
    layers: list[tuple[str, nn.Module]],
    settings: tuple[float, float, int],
    generator: torch.Generator | None,
) -> None:
    """Run LSUV with hooks, modes and (on error) weights restored in ``finally``."""
    modes = [(m, m.training) for m in model.modules()]
    saved = [(m.weight, m.weight.detach().clone()) for _, m in layers]
    recorder = _OutputStd(layers)
    done = False
    try:
        model.eval()
        with torch.no_grad():
            _lsuv_passes(model, args, layers, recorder, settings, generator)
        done = True
    finally:
        recorder.remove()
        for module, training in modes:
            module.training = training
        if not done:
            with torch.no_grad():
                for weight, old in saved:
                    weight.copy_(old)


def _lsuv_passes(
    model: nn.Module,
    args: tuple[torch.Tensor, ...],
    layers: list[tuple[str, nn.Module]],
    recorder: _OutputStd,
    settings: tuple[float, float, int],
    generator: torch.Generator | None,
) -> None:
    for _, layer in layers:
        nn_init.orthogonal_(layer.weight, generator=generator)
    by_name = dict(layers)

    def measure() -> dict[str, float]:
        return recorder.run(model, args)

    for name in list(measure()):  # forward order of the first call
        _rescale_layer(name, by_name[name], measure, settings)
