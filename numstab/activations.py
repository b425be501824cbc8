"""One registry of activation functions: name -> function, derivative, Taylor check at 0.

Every :class:`Activation` works on torch tensors and numpy arrays alike and returns the type it
was given (a Python float gives a numpy float). This module imports torch only when it is handed
a tensor or a user callable that needs autograd, so :mod:`numstab.theory` stays torch-free.

The chapter (D2L "Numerical Stability and Initialization") argues from the Taylor expansion at 0:
an activation with f(0) = 0 and f'(0) = 1 behaves like the identity for small inputs, so a
variance-preserving initialization (Xavier) keeps working through it. tanh(x) = x - x^3/3 + ... and
relu (x >= 0) pass; sigmoid(x) = 1/2 + x/4 - ... fails; the chapter's fix 4*sigmoid(x) - 2 =
x - x^3/12 + ... passes.

Examples:
    >>> import numpy as np
    >>> from numstab import activations
    >>> act = activations.get("scaled_sigmoid")
    >>> float(act.fn(np.array(0.0))), float(act.derivative(np.array(0.0)))
    (0.0, 1.0)
    >>> activations.get("sigmoid").taylor().identity_near_zero
    False
    >>> sorted(activations.names())[:3]
    ['elu', 'erf', 'gelu']
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.special

from numstab.errors import NumstabTypeError, UnknownNameError

__all__ = [
    "Activation",
    "TaylorCheck",
    "get",
    "from_module",
    "names",
    "leaky_relu",
    "elu",
    "TAYLOR_TOL",
]

#: Tolerance of the Taylor check: |f(0)| and |f'(0+) - 1| below it count as "identity near 0".
TAYLOR_TOL = 1e-6

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


# ---------------------------------------------------------------------------------------------
# Array namespaces: the same closed form evaluates on numpy or torch.


class _NumpyOps:
    exp = staticmethod(np.exp)
    abs = staticmethod(np.abs)
    expm1 = staticmethod(np.expm1)
    tanh = staticmethod(np.tanh)
    erf = staticmethod(scipy.special.erf)
    sigmoid = staticmethod(scipy.special.expit)
    where = staticmethod(np.where)

    @staticmethod
    def softplus(x: Any) -> Any:
        return np.logaddexp(0.0, x)

    @staticmethod
    def ones_like(x: Any) -> Any:
        return np.ones_like(x)


class _TorchOps:
    def __init__(self, torch: Any) -> None:
        self.exp = torch.exp
        self.abs = torch.abs
        self.expm1 = torch.expm1
        self.tanh = torch.tanh
        self.erf = torch.erf
        self.sigmoid = torch.sigmoid
        self.where = torch.where
        self.softplus = torch.nn.functional.softplus
        self.ones_like = torch.ones_like


def _torch_tensor_type() -> type | None:
    torch = sys.modules.get("torch")
    return None if torch is None else torch.Tensor


def _dispatch(x: Any) -> tuple[Any, Any, Callable[[Any], Any]]:
    """Return (array, ops, restore) for x: torch tensors stay tensors, the rest become float64 numpy."""
    tensor_type = _torch_tensor_type()
    if tensor_type is not None and isinstance(x, tensor_type):
        return x, _TorchOps(sys.modules["torch"]), lambda y: y
    if isinstance(x, np.ndarray):
        arr = x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)
        return arr, _NumpyOps, lambda y: y
    arr = np.asarray(x, dtype=np.float64)
    return arr, _NumpyOps, lambda y: y[()] if isinstance(y, np.ndarray) and y.ndim == 0 else y


def _elementwise(form: Callable[[Any, Any], Any]) -> Callable[[Any], Any]:
    def apply(x: Any) -> Any:
        arr, ops, restore = _dispatch(x)
        return restore(form(arr, ops))

    return apply


# ---------------------------------------------------------------------------------------------
# The registry.


@dataclass(frozen=True)
class TaylorCheck:
    """The chapter's test of an activation at 0.

    Attributes:
        name: the activation's name.
        f0: f(0).
        df0: f'(0+), the derivative just right of 0 (one-sided at a kink, as for relu).
        df0_left: f'(0-), the derivative just left of 0.
        identity_near_zero: |f(0)| < tol and |f'(0+) - 1| < tol: f(x) ~ x for small x >= 0.
        tol: the tolerance used.
    """

    name: str
    f0: float
    df0: float
    df0_left: float
    identity_near_zero: bool
    tol: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Activation:
    """An activation with its derivative.

    Attributes:
        name: registry name (or the callable's ``__name__`` for a user function).
        fn: f(x), on torch tensors or numpy arrays, returning the same type.
        derivative: f'(x), closed form where one exists, autograd otherwise.
        positively_homogeneous: f(a x) = a f(x) for a > 0 (identity, relu, leaky_relu); then
            chi_1 does not depend on the pre-activation variance.
        kink_at_zero: f' jumps at 0 (relu, leaky_relu, elu with alpha != 1): quadrature must
            split the Gaussian integral there.
        torch_name: the name torch.nn.init.calculate_gain knows it by, if any.
        torch_param: the parameter passed to calculate_gain (leaky_relu's slope).
    """

    name: str
    fn: Callable[[Any], Any]
    derivative: Callable[[Any], Any]
    positively_homogeneous: bool = False
    kink_at_zero: bool = False
    torch_name: str | None = None
    torch_param: float | None = None

    def __call__(self, x: Any) -> Any:
        return self.fn(x)

    def taylor(self, tol: float = TAYLOR_TOL) -> TaylorCheck:
        """Evaluate f(0), f'(0-) and f'(0+) and say whether f is the identity near 0.

        Examples:
            >>> get("tanh").taylor().identity_near_zero
            True
        """
        tiny = 1e-12
        f0 = float(self.fn(np.array(0.0)))
        right = float(self.derivative(np.array(tiny)))
        left = float(self.derivative(np.array(-tiny)))
        ok = abs(f0) < tol and abs(right - 1.0) < tol
        return TaylorCheck(self.name, f0, right, left, bool(ok), tol)


def leaky_relu(negative_slope: float = 0.01) -> Activation:
    """Leaky ReLU max(x, a x) with slope ``a`` for x < 0 (torch's default a = 0.01).

    Examples:
        >>> leaky_relu(0.2).name
        'leaky_relu(0.2)'
    """
    a = float(negative_slope)
    name = "leaky_relu" if a == 0.01 else f"leaky_relu({a:g})"
    return Activation(
        name,
        _elementwise(lambda x, o: o.where(x > 0, x, a * x)),
        _elementwise(lambda x, o: o.where(x > 0, o.ones_like(x), a * o.ones_like(x))),
        positively_homogeneous=True,
        kink_at_zero=True,
        torch_name="leaky_relu",
        torch_param=a,
    )


def elu(alpha: float = 1.0, scale: float = 1.0, name: str | None = None) -> Activation:
    """scale * (x if x > 0 else alpha * (exp(x) - 1)); selu is elu(1.6733, 1.0507).

    Examples:
        >>> float(elu().derivative(np.array(-1.0)))  # exp(-1)
        0.36787944117144233
    """
    a, s = float(alpha), float(scale)
    return Activation(
        name or ("elu" if a == 1.0 else f"elu({a:g})"),
        _elementwise(lambda x, o: s * o.where(x > 0, x, a * o.expm1(o.where(x > 0, 0 * x, x)))),
        _elementwise(lambda x, o: s * o.where(x > 0, o.ones_like(x), a * o.exp(o.where(x > 0, 0 * x, x)))),
        kink_at_zero=(a * s != s),
        torch_name="selu" if name == "selu" else None,
    )


def _tanh_derivative(x: Any, o: Any) -> Any:
    # sech^2 x = 4 e^{-2|x|} / (1 + e^{-2|x|})^2: unlike 1 - tanh(x)^2 it does not round to 0 for |x| > 19
    e = o.exp(-2 * o.abs(x))
    return 4 * e / (1 + e) ** 2


def _gelu_tanh_derivative(x: Any, o: Any) -> Any:
    inner = _SQRT_2_OVER_PI * (x + 0.044715 * x**3)
    t = o.tanh(inner)
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)


def _build_registry() -> dict[str, Activation]:
    """The registry's entries: one table of closed forms (long because it lists every activation)."""
    inv_sqrt_2pi = 1.0 / math.sqrt(2.0 * math.pi)
    entries = [
        Activation(
            "identity",
            _elementwise(lambda x, o: x * 1),
            _elementwise(lambda x, o: o.ones_like(x)),
            positively_homogeneous=True,
            torch_name="linear",
        ),
        Activation(
            "relu",
            _elementwise(lambda x, o: o.where(x > 0, x, 0 * x)),
            _elementwise(lambda x, o: o.where(x > 0, o.ones_like(x), 0 * x)),
            positively_homogeneous=True,
            kink_at_zero=True,
            torch_name="relu",
        ),
        leaky_relu(0.01),
        Activation(
            "sigmoid",
            _elementwise(lambda x, o: o.sigmoid(x)),
            _elementwise(lambda x, o: o.sigmoid(x) * o.sigmoid(-x)),
            torch_name="sigmoid",
        ),
        Activation(
            "tanh",
            _elementwise(lambda x, o: o.tanh(x)),
            _elementwise(_tanh_derivative),
            torch_name="tanh",
        ),
        Activation(
            "scaled_sigmoid",
            _elementwise(lambda x, o: 4 * o.sigmoid(x) - 2),
            _elementwise(lambda x, o: 4 * o.sigmoid(x) * o.sigmoid(-x)),
        ),
        elu(1.0),
        elu(_SELU_ALPHA, _SELU_SCALE, name="selu"),
        Activation(
            "gelu",
            _elementwise(lambda x, o: 0.5 * x * (1 + o.erf(x / math.sqrt(2.0)))),
            _elementwise(
                lambda x, o: 0.5 * (1 + o.erf(x / math.sqrt(2.0))) + x * inv_sqrt_2pi * o.exp(-0.5 * x * x)
            ),
        ),
        Activation(
            "gelu_tanh",
            _elementwise(lambda x, o: 0.5 * x * (1 + o.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x**3)))),
            _elementwise(_gelu_tanh_derivative),
        ),
        Activation(
            "silu",
            _elementwise(lambda x, o: x * o.sigmoid(x)),
            _elementwise(lambda x, o: o.sigmoid(x) * (1 + x * o.sigmoid(-x))),
        ),
        Activation(
            "softplus",
            _elementwise(lambda x, o: o.softplus(x)),
            _elementwise(lambda x, o: o.sigmoid(x)),
        ),
        Activation(
            "erf",
            _elementwise(lambda x, o: o.erf(x)),
            _elementwise(lambda x, o: (2.0 / math.sqrt(math.pi)) * o.exp(-x * x)),
        ),
    ]
    return {a.name: a for a in entries}


_REGISTRY: dict[str, Activation] = _build_registry()
_ALIASES = {"linear": "identity", "swish": "silu", "4*sigmoid(x)-2": "scaled_sigmoid"}


def names() -> list[str]:
    """The registered activation names, in registry order.

    Examples:
        >>> names()[:4]
        ['identity', 'relu', 'leaky_relu', 'sigmoid']
    """
    return list(_REGISTRY)


def get(activation: str | Activation | Callable[[Any], Any]) -> Activation:
    """Look up an activation by name, pass an :class:`Activation` through, or wrap a callable.

    torch's own activations (``torch.tanh``, ``F.relu``, ``nn.Tanh()``, ``nn.LeakyReLU(0.2)``, ...) resolve
    to the registered entry they compute, so ``init.gain(torch.tanh)`` is torch's 5/3 like
    ``init.gain("tanh")``. Any other callable gets its derivative by autograd (torch, float64) when it
    accepts tensors, and by a Richardson-extrapolated central difference when it only accepts numpy arrays.

    Args:
        activation: a registered name (see :func:`names`), an Activation, or a callable f(x).

    Raises:
        UnknownNameError: an unregistered name; the message lists the valid ones.
        NumstabTypeError: neither a string nor a callable.

    Examples:
        >>> get("relu").name
        'relu'
        >>> import numpy as np
        >>> act = get(np.sin)
        >>> round(float(act.derivative(np.array(0.0))), 9)
        1.0
    """
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str):
        key = _ALIASES.get(activation, activation)
        if key in _REGISTRY:
            return _REGISTRY[key]
        raise UnknownNameError("activation", activation, names(), hint="in Python, also a callable f(x)")
    if callable(activation):
        known = _from_torch(activation)
        if known is not None:
            return known
        name = getattr(activation, "__name__", type(activation).__name__)
        return Activation(name, _wrap_user_fn(activation), _user_derivative(activation))
    raise NumstabTypeError(
        f"activation must be a name or a callable, got {activation!r} ({type(activation).__name__}); "
        f"use one of {', '.join(names())} or pass f(x)"
    )


def _from_torch(fn: Any) -> Activation | None:
    """The registered activation a torch function or activation module computes; None for anything else."""
    torch = sys.modules.get("torch")
    if torch is None:  # no torch callable exists before torch is imported
        return None
    if isinstance(fn, torch.nn.Module):
        return from_module(fn)
    functional = torch.nn.functional
    table = (
        (torch.tanh, "tanh"), (functional.tanh, "tanh"), (torch.sigmoid, "sigmoid"),
        (functional.sigmoid, "sigmoid"), (torch.relu, "relu"), (functional.relu, "relu"),
        (torch.selu, "selu"), (functional.selu, "selu"), (functional.elu, "elu"),
        (functional.leaky_relu, "leaky_relu"), (functional.gelu, "gelu"), (functional.silu, "silu"),
        (functional.softplus, "softplus"), (torch.erf, "erf"),
    )  # each at its default parameters, which are the registry's
    return next((_REGISTRY[name] for f, name in table if f is fn), None)


#: torch activation modules whose default parameters are the registry's, by class name.
_MODULES = {"ReLU": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid", "SiLU": "silu", "SELU": "selu"}


def from_module(module: Any) -> Activation | None:
    """The registered :class:`Activation` a torch activation module computes, or None for any other module.

    Parametrized modules map to the matching registry entry (``nn.LeakyReLU(0.2)`` to ``leaky_relu(0.2)``,
    ``nn.ELU(alpha)``, ``nn.GELU(approximate="tanh")`` to ``gelu_tanh``; ``nn.Softplus`` at beta = 1 only).

    Examples:
        >>> import torch
        >>> from_module(torch.nn.LeakyReLU(0.2)).name, from_module(torch.nn.Softmax(dim=-1))
        ('leaky_relu(0.2)', None)
    """
    import torch  # a module instance exists, so torch is loaded

    nn = torch.nn
    kind = type(module).__name__
    if kind in _MODULES:
        return get(_MODULES[kind])
    if isinstance(module, nn.LeakyReLU):
        return leaky_relu(module.negative_slope)
    if isinstance(module, nn.ELU):
        return elu(module.alpha)
    if isinstance(module, nn.GELU):
        return get("gelu_tanh" if module.approximate == "tanh" else "gelu")
    if isinstance(module, nn.Softplus) and module.beta == 1:
        return get("softplus")
    return None


def _wrap_user_fn(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def apply(x: Any) -> Any:
        tensor_type = _torch_tensor_type()
        if tensor_type is not None and isinstance(x, tensor_type):
            return fn(x)
        arr = np.asarray(x, dtype=np.float64)
        try:
            out = fn(arr)
        except (TypeError, AttributeError):  # tensor-only (F.gelu, nn.SiLU(), x.softmax): evaluate in torch
            import torch

            with torch.no_grad():
                out = fn(torch.from_numpy(np.array(arr)))
            tensor_type = torch.Tensor
        if tensor_type is not None and isinstance(out, tensor_type):
            out = out.detach().cpu().numpy()
        out = np.asarray(out, dtype=np.float64)
        return out[()] if out.ndim == 0 and not isinstance(x, np.ndarray) else out

    return apply


def _user_derivative(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def derivative(x: Any) -> Any:
        tensor_type = _torch_tensor_type()
        if tensor_type is not None and isinstance(x, tensor_type):
            return _autograd_derivative(fn, x)
        arr = np.asarray(x, dtype=np.float64)
        out = _numpy_derivative(fn, arr)
        return out[()] if out.ndim == 0 and not isinstance(x, np.ndarray) else out

    return derivative


def _autograd_derivative(fn: Callable[[Any], Any], x: Any) -> Any:
    import torch

    with torch.enable_grad():
        xg = x.detach().clone().requires_grad_(True)
        y = fn(xg)
        (grad,) = torch.autograd.grad(y.sum(), xg, allow_unused=True)
    return torch.zeros_like(x) if grad is None else grad.to(x.dtype)


def _numpy_derivative(fn: Callable[[Any], Any], x: np.ndarray) -> np.ndarray:
    try:
        import torch

        t = torch.from_numpy(np.array(x, dtype=np.float64))
        return _autograd_derivative(fn, t).numpy()
    except Exception:  # the callable is numpy-only: fall back to finite differences
        pass
    # Richardson extrapolation of central differences: error O(h^4).
    h = 1e-3 * np.maximum(1.0, np.abs(x))

    def central(step: np.ndarray) -> np.ndarray:
        return (np.asarray(fn(x + step), float) - np.asarray(fn(x - step), float)) / (2 * step)

    return (4 * central(h / 2) - central(h)) / 3
