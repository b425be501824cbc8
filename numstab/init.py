"""Initializers torch.nn.init lacks: whole-model schemes, critical init, delta-orthogonal, LSUV.

The chapter (D2L "Numerical Stability and Initialization") ends with Xavier initialization: pick
the weight variance so that the variance of the signal neither grows nor shrinks from layer to
layer. This module applies that idea, and its successors, to a whole ``nn.Module``:

- :func:`apply_` initializes every Linear / Conv / ConvTranspose / HF Conv1D / MultiheadAttention
  layer by one scheme (Xavier, Kaiming, orthogonal, critical, the book's raw ``normal``, or the
  chapter's ``constant`` symmetry trap), reusing :mod:`torch.nn.init`, each fan along its layer's
  own layout and each tied parameter once (:mod:`numstab.layers`);
- :func:`gain` extends ``torch.nn.init.calculate_gain`` to any activation by the theory's quadrature;
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
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, get_args

import numpy as np
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
    check_seed,
)
from numstab.instrument import ModelState
from numstab.layers import TORCH_LAYER_TYPES, WeightLayer, fans, own_weight, owners, scan

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

#: The torch layers :func:`apply_` initializes (subclasses included), beside HF ``Conv1D`` and
#: MultiheadAttention's in-projection.
LAYER_TYPES: tuple[type[nn.Module], ...] = TORCH_LAYER_TYPES

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


#: theory takes an activation's limits out to |x| = 1e100 (q* = inf); init asks the same of a gain.
_X_FAR = 1e100


def _check_no_overflow(act: Activation) -> None:
    """Refuse an activation that is not finite on float64 inputs up to |x| = _X_FAR (torch.exp)."""
    with np.errstate(all="ignore"):
        far = np.asarray(act.fn(np.array([-_X_FAR, _X_FAR])), dtype=np.float64)
    if not np.all(np.isfinite(far)):
        raise InvalidArgumentError(
            f"activation {act.name!r} overflows: f(-1e100), f(1e100) = {far[0]!r}, {far[1]!r} in float64, so "
            "no gain keeps the second moment of a deep net finite (a layer whose output spread grows "
            "overflows the next): bound it, e.g. clamp its input, or use a registered activation"
        )


@lru_cache(maxsize=64)
def _quadrature_gain(act: Activation) -> float:
    from numstab.theory.quadrature import gaussian_expectation  # numpy only; loaded on first use

    _check_no_overflow(act)
    try:
        second_moment = float(gaussian_expectation(lambda x: np.square(act.fn(x)), 1.0))
    except BadInputError:  # non-finite on the quadrature nodes (|z| <= 10)
        second_moment = math.inf
    if not (math.isfinite(second_moment) and second_moment > 0):
        raise InvalidArgumentError(
            f"activation {act.name!r} has E[f(z)^2] = {second_moment!r} for z ~ N(0, 1), so no gain "
            "keeps the forward variance: use an activation that is finite and not zero almost everywhere"
        )
    return 1.0 / math.sqrt(second_moment)


def gain(activation: ActivationLike) -> float:
    """Return the gain that keeps the forward second moment of a layer followed by ``activation``.

    Where torch defines it (linear, conv*, sigmoid, tanh, relu, leaky_relu with its slope, selu) this
    is exactly ``torch.nn.init.calculate_gain`` (He et al. 2015 for the rectifiers, the empirical 5/3
    and 3/4 for tanh and selu). For any other activation, registered or a callable, it is

    .. math::
        g = \\frac{1}{\\sqrt{E[f(z)^2]}}, \\qquad z \\sim N(0, 1),

    by :func:`numstab.theory.gaussian_expectation` (Gauss-Legendre split at the kink at 0, the
    quadrature of the mean-field theory), so that ``Var(W) = g^2 / fan_in`` keeps ``E[x^2]``
    fixed from layer to layer (the argument of Glorot & Bengio 2010 with the activation's own
    second moment; for relu it gives sqrt(2), torch's value).

    Args:
        activation: a registered name, one of torch's linear names (``"conv2d"``, ...), an
            :class:`~numstab.activations.Activation` or a callable f(x).

    Raises:
        UnknownNameError: an unknown name; the message lists the valid ones.
        InvalidArgumentError: an activation that overflows float64 for |x| <= 1e100 (``torch.exp``:
            the theory's limits do not exist), or whose second moment is 0 or not finite.

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

    Raises:
        BadInputError: fewer than 2 dims, or fan_in = 0.
        NoCriticalPointError: no sigma_w reaches chi_1 = 1 at this bias_std.

    Examples:
        >>> w = critical_(torch.empty(256, 512), "relu", generator=torch.Generator().manual_seed(0))
        >>> round(float(w.std() * 512**0.5), 1)  # sqrt(2)
        1.4
    """
    if fans(tensor)[0] == 0:
        raise BadInputError(
            f"critical_ needs a weight with fan_in >= 1, got shape {tuple(tensor.shape)}: N(0, sigma_w^2 / "
            "fan_in) has no variance at fan_in = 0; give the layer at least one input"
        )
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

    def cause(self, bias: bool) -> str:
        """The argument behind a sampled value, for an error message."""
        if bias:
            return f"bias_std={self.bias_std!r}"
        if self.scheme in ("normal", "constant"):
            name = "scale" if self.scheme == "normal" else "value"
            return f"scheme={self.scheme!r} with {name}={getattr(self, name)!r}"
        return f"scheme={self.scheme!r} (gain {self.gain:.4g}, from activation=)"

    def nonzero(self, bias: bool) -> bool:
        """True when the values asked for are not all zero (so a tensor of zeros means they flushed)."""
        if bias:
            return self.bias_std > 0
        return {"normal": self.scale, "constant": self.value}.get(self.scheme, 1.0) != 0


def _kaiming_std(w: torch.Tensor, plan: _Plan) -> float:
    fan_in, fan_out = fans(w)
    # Same arithmetic as torch.nn.init.kaiming_*: bit-identical weights where torch defines the gain.
    return plan.gain / math.sqrt(fan_in if plan.mode == "fan_in" else fan_out)


def _symmetric_uniform_(w: torch.Tensor, bound: float, generator: torch.Generator | None) -> torch.Tensor:
    return nn_init.uniform_(w, -bound, bound, generator=generator)


#: The dtypes torch's QR (behind orthogonal_) runs in on every device.
_QR_DTYPES = (torch.float32, torch.float64)


def _orthogonal_(w: torch.Tensor, gain: float, generator: torch.Generator | None) -> torch.Tensor:
    """torch.nn.init.orthogonal_, computed in float32 and rounded for float16/bfloat16 (no QR there)."""
    if w.dtype in _QR_DTYPES:
        return nn_init.orthogonal_(w, gain, generator=generator)
    work = torch.empty(w.shape, dtype=torch.float32, device=w.device)
    return w.copy_(nn_init.orthogonal_(work, gain, generator=generator))


_FILLERS: dict[str, Callable[[torch.Tensor, _Plan, torch.Generator | None], Any]] = {
    "xavier_normal": lambda w, p, g: nn_init.xavier_normal_(w, p.gain, generator=g),
    "xavier_uniform": lambda w, p, g: nn_init.xavier_uniform_(w, p.gain, generator=g),
    "kaiming_normal": lambda w, p, g: nn_init.normal_(w, 0.0, _kaiming_std(w, p), generator=g),
    "kaiming_uniform": lambda w, p, g: _symmetric_uniform_(w, math.sqrt(3.0) * _kaiming_std(w, p), g),
    "orthogonal": lambda w, p, g: _orthogonal_(w, p.gain, g),
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
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if not math.isfinite(number):
        raise InvalidArgumentError(f"{name} must be a finite number, got {value!r} ({type(value).__name__})")
    return number


def _generator(generator: torch.Generator | None, seed: int | None) -> torch.Generator | None:
    """The generator to draw from: ``generator``, or a CPU one seeded with ``seed`` (never both)."""
    _check_generator(generator)
    if seed is None:
        return generator
    check_seed("seed", seed)
    if generator is not None:
        raise InvalidArgumentError("pass seed= or generator=, not both: seed=N means generator=torch."
                                   "Generator().manual_seed(N)")
    return torch.Generator().manual_seed(seed)


def _check_writable(name: str, param: torch.Tensor) -> None:
    """Refuse, before anything is written, a parameter that cannot take new floating-point values."""
    where = f"model parameter {name!r}"
    if param.is_meta:
        raise ModelError(f"{where} is on the meta device and holds no values: materialize the model first, "
                         "e.g. model.to_empty(device='cpu')")
    if param.is_inference() and not torch.is_inference_mode_enabled():
        raise ModelError(f"{where} was created under torch.inference_mode() and cannot be written outside "
                         "it: build the model outside inference_mode, or call apply_ inside it too")
    if not param.is_floating_point():
        raise ModelError(f"{where} holds {param.dtype} values, not floating point: an initializer draws real "
                         "numbers; cast the model first (model.float())")


def _targets(
    model: nn.Module, scheme: str, only: Iterable[str] | None
) -> tuple[list[WeightLayer], list[tuple[str, str]]]:
    """The layers apply_ writes (owning a weight or bias, none lazy or empty) and the unknown it skips."""
    found, unknown = scan(model)  # owners over the whole model, also when only some layers are asked for
    if only is not None:
        only = _module_names(model, only)
        found = [la for la in found if _within(la.name, only)]
        unknown = [(name, kind) for name, kind in unknown if _within(name, only)]
    lazy = [la.name for la in found if any(isinstance(w, nn.parameter.UninitializedParameter)
                                          for _, w in _weights(la))]
    if lazy:
        raise ModelError(
            f"layer {lazy[0]!r} is lazy and has no weight shape yet: run one forward pass, then apply_"
        )
    todo = [la for la in found if la.weights or la.biases]
    if not todo:
        skipped = f"; modules with a weight of unknown fan convention: {_listing(unknown)}" if unknown else ""
        among = "" if only is None else f" within layers={only!r}"
        raise ModelError(
            f"scheme={scheme!r} cannot apply to any layer of {type(model).__name__}{among}: it has no "
            "Linear, Conv, ConvTranspose, HF Conv1D or MultiheadAttention layer whose weight it owns"
            f"{skipped}: use torch.nn.init on your own parameters"
        )
    for layer in todo:
        for _, weight in _weights(layer):
            if weight.numel() == 0:
                raise ModelError(
                    f"model layer {layer.name!r} ({type(layer.module).__name__}) has a weight with no "
                    f"entries, shape {tuple(weight.shape)}: no fan to scale by; give it at least one input "
                    "and one output feature, or leave it out of the model"
                )
    return todo, unknown


def _module_names(model: nn.Module, only: Iterable[str]) -> list[str]:
    """``only`` as a list of names of ``model.named_modules()``, each checked."""
    names = list(only) if not isinstance(only, str) and isinstance(only, Iterable) else None
    if names is None or not all(isinstance(name, str) for name in names):
        raise NumstabTypeError(
            f"layers must be a list of module names (as in model.named_modules()), got {only!r}: e.g. "
            "layers=['encoder.0']"
        )
    known = dict(model.named_modules())
    for name in names:
        if name not in known:
            shown = [n for n in known if n][:8] + (["..."] if len(known) > 9 else [])
            raise UnknownNameError("layers entry", name, shown, hint="the names of model.named_modules()")
    return names


def _within(name: str, selected: list[str]) -> bool:
    """True when module ``name`` is one of ``selected`` or inside one (the root, "", holds all)."""
    return any(n == "" or name == n or name.startswith(n + ".") for n in selected)


def _weights(layer: WeightLayer) -> list[tuple[str, torch.Tensor]]:
    return [(name, getattr(layer.module, name)) for name in layer.weights]


def _biases(layer: WeightLayer) -> list[tuple[str, torch.Tensor]]:
    return [(name, getattr(layer.module, name)) for name in layer.biases]


def _listing(named: list[tuple[str, str]], limit: int = 5) -> str:
    shown = ", ".join(f"{name!r} ({kind})" for name, kind in named[:limit])
    return shown + (f" and {len(named) - limit} more" if len(named) > limit else "")


def _draw(shape: torch.Size | tuple[int, ...], like: torch.Tensor, generator: torch.Generator | None,
          fill: Callable[[torch.Tensor], Any]) -> torch.Tensor:
    """A fresh tensor of ``like``'s dtype, filled on the generator's device (the parameter's without one)."""
    device = like.device if generator is None else generator.device
    new = torch.empty(shape, dtype=like.dtype, device=device)
    fill(new)
    return new


def _new_values(
    targets: list[WeightLayer], plan: _Plan, generator: torch.Generator | None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(parameter, new value) pairs, each checked representable in its dtype; the model is not touched."""
    for layer in targets:
        for name, w in _weights(layer):
            qualified = _qualified(layer.name, name)
            if plan.scheme == "constant" and abs(plan.value) > torch.finfo(w.dtype).max:  # fill_ would raise
                raise _beyond(w.dtype, qualified, plan.cause(bias=False))
            yield w, _representable(_new_weight(layer, w, plan, generator), qualified, plan, bias=False)
        for name, b in _biases(layer):
            def fill(t: torch.Tensor) -> None:
                if plan.bias_std > 0:
                    nn_init.normal_(t, 0.0, plan.bias_std, generator=generator)
                else:
                    t.zero_()

            new = _draw(b.shape, b, generator, fill)
            yield b, _representable(new, _qualified(layer.name, name), plan, bias=True)


def _new_weight(
    layer: WeightLayer, w: torch.Tensor, plan: _Plan, generator: torch.Generator | None
) -> torch.Tensor:
    """A new value for ``w``: drawn in torch's (out, in, *kernel) layout, block by block along dim 0."""
    shape = tuple(w.shape)[::-1] if layer.transposed else tuple(w.shape)  # HF Conv1D: drawn (out, in)
    block = (shape[0] // layer.blocks, *shape[1:])  # MultiheadAttention's packed q, k, v: three (E, E) maps
    parts = [_draw(block, w, generator, lambda t: _FILLERS[plan.scheme](t, plan, generator))
             for _ in range(layer.blocks)]
    new = parts[0] if layer.blocks == 1 else torch.cat(parts)
    return new.T if layer.transposed else new


def _representable(new: torch.Tensor, name: str, plan: _Plan, *, bias: bool) -> torch.Tensor:
    """``new`` if its dtype holds what was asked: no inf (overflow), not all zeros when non-zero was asked."""
    if not bool(torch.isfinite(new).all()):
        raise _beyond(new.dtype, name, plan.cause(bias))
    if plan.nonzero(bias) and new.numel() > 0 and not bool(new.any()):
        tiny = torch.finfo(new.dtype).smallest_normal
        raise InvalidArgumentError(
            f"{plan.cause(bias)} flushes every value of model parameter {name!r} to zero in "
            f"{str(new.dtype).removeprefix('torch.')} (smallest normal {tiny:.4g}): pass a larger number, or "
            "0 if zeros are meant"
        )
    return new


def _beyond(dtype: torch.dtype, name: str, cause: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"{cause} gives values beyond {str(dtype).removeprefix('torch.')} (largest "
        f"{torch.finfo(dtype).max:.4g}) in model parameter {name!r}: pass a smaller number, or cast the "
        "model to a wider dtype first"
    )


@contextmanager
def _global_rng_kept_on_error(params: list[torch.Tensor]) -> Iterator[None]:
    """Put torch's global RNGs (CPU, and the CUDA devices of ``params``) back if the block raises."""
    cuda = sorted({p.device.index or 0 for p in params if p.device.type == "cuda"})
    cpu, gpu = torch.get_rng_state(), [torch.cuda.get_rng_state(i) for i in cuda]
    try:
        yield
    except BaseException:
        torch.set_rng_state(cpu)
        for index, state in zip(cuda, gpu, strict=True):
            torch.cuda.set_rng_state(state, index)
        raise


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
    seed: int | None = None,
    layers: Iterable[str] | None = None,
) -> nn.Module:
    """Initialize every Linear, Conv, ConvTranspose, HF Conv1D and MultiheadAttention layer of ``model``.

    In place. Weights by ``scheme``; biases to zero, or from N(0, bias_std^2) when ``bias_std > 0``;
    every other module untouched. With gain g (:func:`gain` of ``activation``) and the fans of
    :func:`numstab.layers.fans` (HF ``Conv1D`` stores its weight ``(in, out)``: fan_in is its first
    dim; MultiheadAttention's packed ``in_proj_weight`` is its query, key and value maps, each
    ``(E, E)`` and initialized as one; ``bias_k``/``bias_v`` are left alone):

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

    Note:
        A parameter shared by several modules (GPT-2's ``lm_head.weight`` is ``transformer.wte.weight``)
        is initialized once, under its first owner in ``named_modules()`` order, and only if that
        owner is a layer above: a Linear tied to an embedding keeps the embedding's values.
        Embeddings have no fans and are left alone; any other module with a >= 2-D ``weight``
        (``nn.Bilinear``, a custom layer) is skipped with a warning that names it.

    Everything is validated and every new value sampled (and checked finite in its parameter's
    dtype) before the first weight is written: a failed call leaves the model bit-identical, and
    the global RNG as it was. Orthogonal weights of float16/bfloat16 layers are computed in float32.

    Args:
        model: the module to initialize.
        scheme: one of :data:`SCHEMES`.
        activation: the activation that follows the layers (name, Activation or callable).
        bias_std: standard deviation of the biases (>= 0); 0 zeroes them.
        generator: the torch Generator to sample from, layer after layer in ``named_modules`` order
            (on its device; without one, torch's global RNG of each parameter's device).
        scale: the std of each entry; required by ``"normal"`` and only there.
        value: the constant; required by ``"constant"`` and only there.
        mode: ``"fan_in"`` (keeps the forward variance) or ``"fan_out"`` (the backward); kaiming only.
        seed: instead of ``generator``: draw from ``torch.Generator().manual_seed(seed)``.
        layers: only the layers within these modules (names of ``model.named_modules()``; a name
            selects its whole subtree). Ties are still judged over the whole model: a selected
            Linear tied to an embedding outside the selection keeps the embedding's values.

    Raises:
        NumstabTypeError: ``model`` is not an ``nn.Module``; ``generator`` is not a Generator;
            ``layers`` is not a list of names.
        UnknownNameError: an unknown scheme, mode, activation or ``layers`` entry (the message lists
            valid ones).
        InvalidArgumentError: a missing, superfluous or negative ``scale``/``value``/``bias_std``, a
            number whose values would overflow the parameter's dtype, an activation that overflows, a
            bad ``seed`` or both ``seed`` and ``generator``.
        ModelError: no layer the scheme applies to; a lazy, empty, non-float, meta or inference-mode
            parameter.

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
    generator = _generator(generator, seed)
    plan = _plan(scheme, activation, bias_std, scale, value, mode)
    targets, unknown = _targets(model, scheme, layers)
    for param, name in _parameters(targets):
        _check_writable(name, param)
    with _global_rng_kept_on_error([p for p, _ in _parameters(targets)]):
        pending = list(_new_values(targets, plan, generator))
    with torch.no_grad():
        for param, new in pending:
            param.copy_(new)
    if unknown:
        warnings.warn(
            f"apply_ left {len(unknown)} module(s) whose weight's fan convention it does not know: "
            f"{_listing(unknown)}; initialize them with torch.nn.init", stacklevel=2
        )
    return model


def _parameters(targets: list[WeightLayer]) -> Iterator[tuple[torch.Tensor, str]]:
    """(parameter, name) of every tensor apply_ writes."""
    for layer in targets:
        for name, param in _weights(layer) + _biases(layer):
            yield param, _qualified(layer.name, name)


def _qualified(module: str, param: str) -> str:
    """The parameter's name in ``model.named_parameters()``."""
    return f"{module}.{param}" if module else param


# ---------------------------------------------------------------------------------------------
# LSUV.


def _weighted_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules owning a ``weight`` parameter with >= 2 dims (Linear, Conv*, Embedding, HF Conv1D, ...);
    a shared weight counts once, under its first owner."""
    owner = owners(model)
    return [
        (name or type(m).__name__, m)
        for name, m in model.named_modules()
        if (w := own_weight(m)) is not None and owner[id(w)] == name
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
        return dict(self.std)

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def _rescale_layer(
    name: str,
    layer: nn.Module,
    measure: Callable[[], dict[str, float]],
    stds: dict[str, float],
    settings: tuple[float, float, int],
) -> dict[str, float]:
    """Rescale ``layer`` until its output std is within tol of the target, one pass after each rescaling.

    Returns the last pass's stds; raises, naming the layer and its last std, when max_iter rescalings
    do not get there.
    """
    target, tol, max_iter = settings
    for _ in range(max_iter):
        std = stds[name]
        if not (math.isfinite(std) and std > 0):
            raise ModelError(
                f"lsuv_: layer {name!r} has output std {std!r} on these inputs, so no rescaling reaches "
                f"target_std={target}: check that its input is not constant (dead units, zero inputs)"
            )
        if abs(std - target) <= tol:
            return stds
        layer.weight.mul_(target / std)
        stds = measure()
    if abs(stds[name] - target) > tol:
        raise ModelError(
            f"lsuv_: layer {name!r} has output std {stds[name]!r} after max_iter={max_iter} rescalings, "
            f"not within tol={tol} of target_std={target}: a constant or zero batch, or a dominating bias, "
            "keeps the spread from following the weight; pass a batch of real inputs, or a larger max_iter "
            "or tol"
        )
    return stds


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
    seed: int | None = None,
) -> nn.Module:
    """Layer-sequential unit-variance initialization (Mishkin & Matas 2016, "All you need is a good init").

    Every module with a weight of >= 2 dims is first set to an orthogonal matrix (Saxe et al. 2014);
    then, in the order the layers run, each weight is rescaled by the output's std until

    .. math::
        \\big|\\operatorname{std}(\\text{layer}(x)) - \\text{target\\_std}\\big| \\le \\text{tol}
        \\qquad\\text{via}\\qquad W \\leftarrow W \\cdot \\frac{\\text{target\\_std}}{\\operatorname{std}},

    with at most ``max_iter`` rescalings (each followed by one forward pass) per layer; a layer that
    does not get there is an error. Biases are left as they are; a weight shared by several modules
    is set and rescaled once, under its first owner. The passes run under ``torch.no_grad()`` in eval
    mode (dropout off, BatchNorm running statistics untouched); each module's train/eval flag is
    restored and every hook removed, also on error, and on error every weight is restored. No global
    state is touched: without ``generator=`` the orthogonal draws come from a fork of torch's global
    RNG, which is left as it was.

    Args:
        model: the module to initialize in place.
        inputs: a batch, or a tuple of arguments for ``model(*inputs)``.
        target_std: the wanted std of every layer's output (> 0).
        tol: accepted distance from ``target_std`` (> 0).
        max_iter: rescalings (and forward passes) per layer at most (>= 1).
        generator: the torch Generator for the orthogonal pre-initialization.
        seed: instead of ``generator``: draw from ``torch.Generator().manual_seed(seed)``.

    Raises:
        ModelError: a layer's output has zero (or non-finite) variance, or is still not within ``tol``
            of ``target_std`` after ``max_iter`` rescalings (a constant batch); the message names the
            layer and its last std. A weight that cannot be written (inference mode, meta, integer).

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
    generator = _generator(generator, seed)
    found = _weighted_layers(model)
    if not found:
        raise ModelError(f"lsuv_: {type(model).__name__} has no module with a weight of >= 2 dims")
    for name, layer in found:
        _check_writable(_qualified(name, "weight"), layer.weight)
    _lsuv_guarded(model, args, found, (target_std, tol, max_iter), _forked(generator))
    return model


def _forked(generator: torch.Generator | None) -> torch.Generator:
    """``generator``, or a CPU generator seeded from a fork of torch's global RNG (which does not move)."""
    if generator is not None:
        return generator
    with torch.random.fork_rng(devices=[]):
        return torch.Generator().manual_seed(int(torch.randint(0, 2**62, ())))


def _lsuv_guarded(
    model: nn.Module,
    args: tuple[torch.Tensor, ...],
    found: list[tuple[str, nn.Module]],
    settings: tuple[float, float, int],
    generator: torch.Generator,
) -> None:
    """Run LSUV with hooks removed, modes and buffers restored in ``finally``, and on error the weights too
    (:class:`numstab.instrument.ModelState`)."""
    state = ModelState.save(model, parameters="all", rng=False)
    recorder = _OutputStd(found)
    done = False
    try:
        model.eval()
        with torch.no_grad():
            _lsuv_passes(model, args, found, recorder, settings, generator)
        done = True
    finally:
        recorder.remove()
        state.restore(parameters=not done)


def _lsuv_passes(
    model: nn.Module,
    args: tuple[torch.Tensor, ...],
    found: list[tuple[str, nn.Module]],
    recorder: _OutputStd,
    settings: tuple[float, float, int],
    generator: torch.Generator,
) -> None:
    for _, layer in found:
        layer.weight.copy_(_draw(layer.weight.shape, layer.weight, generator,
                                 lambda t: _orthogonal_(t, 1.0, generator)))
    by_name = dict(found)

    def measure() -> dict[str, float]:
        return recorder.run(model, args)

    stds = measure()
    for name in list(stds):  # forward order of the first call
        stds = _rescale_layer(name, by_name[name], measure, stds, settings)
