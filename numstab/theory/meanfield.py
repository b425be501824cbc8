"""Mean-field signal propagation for any activation: variance map, fixed point, chi_1, depth scales.

A fully connected network with weights W_ij ~ N(0, weight_std^2 / fan_in) and biases
b_i ~ N(0, bias_std^2) sends a pre-activation variance q to the next layer by the *variance map*
(Poole et al. 2016). Its fixed point q* and the slope chi_1 of the gradient second moment there
say whether a deep network forgets its input (ordered, chi_1 < 1: vanishing gradients), amplifies
small differences (chaotic, chi_1 > 1: exploding gradients) or sits at the edge of chaos
(chi_1 = 1), and over how many layers (Schoenholz et al. 2017).

Every function accepts an activation name, an :class:`numstab.activations.Activation` or a user
callable; user callables are called on float64 numpy arrays. Gaussian integrals use
:mod:`numstab.theory.quadrature` (split at the kink at 0, so relu is exact).

Examples:
    >>> round(critical_weight_std("relu"), 12)
    1.414213562373
    >>> round(chi1("tanh", 1.5**0.5, 0.05**0.5), 4)
    0.9386
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.optimize

from numstab import activations
from numstab.activations import Activation
from numstab.errors import (
    InvalidArgumentError,
    NoCriticalPointError,
    check_int_at_least,
    check_nonnegative,
    check_real_array,
)
from numstab.resources import check_memory
from numstab.theory import _solve
from numstab.theory.quadrature import (
    DEFAULT_NODES,
    DEFAULT_POLAR_NODES,
    bivariate_expectation,
    call_finite,
    gaussian_expectation,
    half_line_rule,
)

__all__ = [
    "variance_map",
    "fixed_point",
    "chi1",
    "chi1_at",
    "critical_weight_std",
    "correlation_map",
    "correlation_fixed_point",
    "chi_c",
    "depth_scales",
    "at_fixed_point",
    "trainable_depth",
    "predict_gradient_norms",
    "CRITICAL_RTOL",
]

#: |chi_1 - 1| <= CRITICAL_RTOL counts as the critical line (depth scales are infinite there).
CRITICAL_RTOL = 1e-9
#: Above this the variance is taken to diverge (q* = inf).
_Q_MAX = 1e15
#: A stand-in for +-infinity when taking limits of f' at q* = inf.
_X_FAR = 1e100
#: q* = 0 is replaced by this in the correlation map, whose q -> 0 limit is wanted there.
_Q_SMALL = 1e-100


# ---------------------------------------------------------------------------------------------
# Gaussian moments of an activation, vectorized over q.


def resolve(activation: str | Activation | Callable[[Any], Any]) -> Activation:
    """The registry's :class:`Activation` for a name, an Activation or a callable (see activations.get).

    Examples:
        >>> resolve("relu").positively_homogeneous
        True
    """
    return activations.get(activation)


def _homogeneous_slopes(act: Activation) -> tuple[float, float]:
    """(f(1), -f(-1)): the slopes of a positively homogeneous activation on each side of 0."""
    return float(act.fn(np.array(1.0))), -float(act.fn(np.array(-1.0)))


def _homogeneous_moments(act: Activation) -> tuple[float, float]:
    """(E[f(z)^2], E[f'(z)^2]) for a positively homogeneous f; both equal (a^2 + b^2) / 2."""
    right, left = _homogeneous_slopes(act)
    m = 0.5 * (right * right + left * left)
    return m, m


def moments(act: Activation, q: np.ndarray, nodes: int = DEFAULT_NODES) -> tuple[np.ndarray, ...]:
    """(E f^2, d/dq E f^2, E f'^2) at sqrt(q) z for finite q >= 0, one quadrature pass.

    The q-derivative uses Stein's lemma, d/dq E[f(sqrt(q) z)^2] = E[z f f'] / sqrt(q), so no second
    derivative of f is needed.

    Examples:
        >>> second, slope, deriv = moments(resolve("relu"), np.array([2.0]))
        >>> second.round(12).tolist(), slope.round(12).tolist(), deriv.round(12).tolist()
        ([1.0], [0.5], [0.5])
    """
    z, w = half_line_rule(nodes)
    root = np.sqrt(np.maximum(q, 1e-300))[..., None]
    x = root * z
    f, df = call_finite(act.fn, x), call_finite(act.derivative, x)
    second = (f * f) @ w
    slope = ((z * f * df) @ w) / root[..., 0]
    return second, slope, (df * df) @ w


def derivative_moment(act: Activation, q: np.ndarray, nodes: int = DEFAULT_NODES) -> np.ndarray:
    """E[f'(sqrt(q) z)^2], with its q -> inf limit (f'(+inf)^2 + f'(-inf)^2) / 2 where q = inf.

    Examples:
        >>> derivative_moment(resolve("gelu"), np.array([0.0, np.inf])).round(12).tolist()
        [0.25, 0.5]
    """
    q = np.asarray(q, dtype=float)
    if act.positively_homogeneous:
        return np.full(q.shape, _homogeneous_moments(act)[1])
    z, w = half_line_rule(nodes)
    finite = np.where(np.isfinite(q), q, 1.0)
    df = call_finite(act.derivative, np.sqrt(np.maximum(finite, 1e-300))[..., None] * z)
    far = call_finite(act.derivative, np.array([_X_FAR, -_X_FAR]))
    return np.where(np.isfinite(q), (df * df) @ w, 0.5 * float(far @ far))


# ---------------------------------------------------------------------------------------------
# The fixed point q*, vectorized.


def _homogeneous_fixed_point(act: Activation, w2: np.ndarray, b2: np.ndarray, q0: np.ndarray) -> np.ndarray:
    """Closed form: V(q) = w2 m q + b2 is linear, so q* = b2 / (1 - w2 m), inf at or above w2 m = 1."""
    growth = w2 * _homogeneous_moments(act)[0]  # V(q) = growth * q + b2
    critical = np.abs(growth - 1.0) <= CRITICAL_RTOL  # (2 ** 0.5) ** 2 is 2.0000000000000004
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where((growth < 1.0) & ~critical, b2 / (1.0 - growth), math.inf)
    return np.where(critical & (b2 == 0.0), q0, q)


def gap_function(
    act: Activation, w2: np.ndarray, b2: np.ndarray, nodes: int = DEFAULT_NODES
) -> Callable[..., Any]:
    """fun(idx, q) -> (g, g'): g(q) = V(q) - q at elements idx of (w2, b2); its root is q*.

    Examples:
        >>> fun = gap_function(resolve("relu"), np.array([1.0]), np.array([0.25]))
        >>> [v.round(12).tolist() for v in fun(np.array([0]), np.array([0.5]))]  # q* = 0.5 for relu here
        [[0.0], [-0.5]]
    """

    def fun(idx: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        second, slope, _ = moments(act, q, nodes)
        return w2[idx] * second + b2[idx] - q, w2[idx] * slope - 1.0

    return fun


def _search_up(fun: Callable[..., Any], idx: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Grow hi from lo (x4 a step) until g(hi) < 0; inf where g stays >= 0 up to _Q_MAX."""
    hi = np.where(lo > 0, 2.0 * lo, 1.0)
    active = np.arange(idx.size)
    while active.size:
        val, _ = fun(idx[active], hi[active])
        grow = val >= 0
        hi[active[grow]] *= 4.0
        gone = hi[active] > _Q_MAX
        hi[active[gone]] = math.inf
        active = active[grow & ~gone]
    return hi


def _search_down(fun: Callable[..., Any], idx: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Halve lo from hi until g(lo) > 0; 0 where none is found before underflow."""
    lo = 0.5 * hi
    active = np.arange(idx.size)
    for _ in range(1100):
        if not active.size:
            break
        val, _ = fun(idx[active], lo[active])
        lo[active[val <= 0]] *= 0.5
        active = active[val <= 0]
    lo[active] = 0.0
    return lo


def solve_fixed_point(
    act: Activation, w2: np.ndarray, b2: np.ndarray, q0: float = 1.0, nodes: int = DEFAULT_NODES
) -> np.ndarray:
    """q* for every (w2, b2) pair (flat arrays): the fixed point the variance map reaches from q0.

    For a map increasing in q (every registered activation) iteration from q0 converges to the
    nearest root of g(q) = V(q) - q in the direction of g(q0): the smallest root above q0 when the
    variance grows, the largest below when it shrinks. That root is bracketed and solved for.

    Examples:
        >>> solve_fixed_point(resolve("tanh"), np.array([0.81, 2.25]), np.array([0.0, 0.0])).round(6).tolist()
        [0.0, 0.793354]
    """
    w2, b2 = np.broadcast_arrays(np.asarray(w2, float).ravel(), np.asarray(b2, float).ravel())
    start = np.full(w2.shape, float(q0))
    if act.positively_homogeneous:
        return _homogeneous_fixed_point(act, w2, b2, start)
    fun = gap_function(act, w2, b2, nodes)
    all_idx = np.arange(w2.size)
    g0, _ = fun(all_idx, start)
    q = np.where(g0 == 0, start, np.nan)
    up = all_idx[g0 > 0]
    hi_up = _search_up(fun, up, start[up])
    q[up[np.isinf(hi_up)]] = math.inf
    down = all_idx[g0 < 0]
    lo_down, solve_down = _lower_bracket(act, fun, w2, b2, down, start[down], nodes)
    q[down[~solve_down]] = 0.0
    idx = np.concatenate([up[np.isfinite(hi_up)], down[solve_down]])
    lo = np.concatenate([start[up][np.isfinite(hi_up)], lo_down[solve_down]])
    hi = np.concatenate([hi_up[np.isfinite(hi_up)], start[down][solve_down]])
    if idx.size:
        q[idx] = _solve.bracketed_newton(lambda i, x: fun(idx[i], x), lo, hi, hi)
    return q


def _lower_bracket(
    act: Activation, fun: Callable[..., Any], w2: np.ndarray, b2: np.ndarray, idx: np.ndarray,
    hi: np.ndarray, nodes: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(lo, solve): a lower end with g(lo) >= 0 below q0, and False where q = 0 is the fixed point reached."""
    _, slope_zero, _ = moments(act, np.zeros(idx.size), nodes)
    g_zero = w2[idx] * float(act.fn(np.array(0.0))) ** 2 + b2[idx]  # V(0) = f(0)^2 exactly
    lo = np.zeros(idx.size)
    # g(0) = 0 with slope <= 1 there: q = 0 is a stable fixed point, and the one reached from above.
    solve = (g_zero > 0) | (w2[idx] * slope_zero > 1.0 + CRITICAL_RTOL)
    unstable = (g_zero == 0) & solve
    if unstable.any():
        lo[unstable] = _search_down(fun, idx[unstable], hi[unstable])
        solve[unstable] = lo[unstable] > 0
    return lo, solve


# ---------------------------------------------------------------------------------------------
# Argument checks.


#: The largest weight_std or bias_std the theory takes: its square (1e200) times a Gaussian moment stays
#: finite in float64; 1e200 would overflow once squared.
STD_MAX = 1e100


def check_std(name: str, value: float) -> float:
    """Return ``float(value)`` if it is a std in [0, :data:`STD_MAX`], else raise naming ``name``.

    Examples:
        >>> check_std("weight_std", 1.5)
        1.5
    """
    value = check_nonnegative(name, value)
    if value > STD_MAX:
        raise InvalidArgumentError(
            f"{name} must be <= 1e100, got {value!r}: a larger std overflows float64 once squared; pass a "
            f"smaller {name}"
        )
    return value


def std_array(name: str, values: Any) -> np.ndarray:
    """``values`` as a non-empty 1-D float64 array of stds in [0, :data:`STD_MAX`], or raise naming ``name``.

    Examples:
        >>> std_array("bias_stds", 0.5).tolist()
        [0.5]
    """
    arr = np.atleast_1d(check_real_array(name, values))
    if arr.ndim != 1 or arr.size == 0:
        raise InvalidArgumentError(
            f"{name} must be a non-empty 1-D sequence of stds >= 0, got shape {arr.shape}: "
            f"pass e.g. numpy.linspace(0.5, 3.0, 200)"
        )
    bad = ~(np.isfinite(arr) & (arr >= 0) & (arr <= STD_MAX))
    if bad.any():
        raise InvalidArgumentError(
            f"{name} must hold finite stds >= 0, got {float(arr[bad][0])!r}: pass stds in [0, 1e100]"
        )
    return arr


_std = check_std


def _point(activation: Any, weight_std: float, bias_std: float) -> tuple[Activation, float, float]:
    act = resolve(activation)
    return act, _std("weight_std", weight_std) ** 2, _std("bias_std", bias_std) ** 2


# ---------------------------------------------------------------------------------------------
# Public scalar API.


def variance_map(
    activation: str | Activation | Callable[[Any], Any], weight_std: float, bias_std: float, q: Any
) -> float | np.ndarray:
    """Map the pre-activation variance q of one layer to the next (Poole et al. 2016, eq. 3).

    .. math::
        q' = \\sigma_w^2\\, E_{z\\sim N(0,1)}\\big[f(\\sqrt{q}\\,z)^2\\big] + \\sigma_b^2

    Args:
        activation: a registered name, an Activation or a callable f(x) on numpy arrays.
        weight_std: sigma_w (weights ~ N(0, sigma_w^2 / fan_in)), >= 0.
        bias_std: sigma_b (biases ~ N(0, sigma_b^2)), >= 0.
        q: variance(s) >= 0; an array gives an array.

    Examples:
        >>> round(variance_map("relu", 2**0.5, 0.0, 3.0), 12)  # He et al. 2015: variance preserved
        3.0
    """
    act, w2, b2 = _point(activation, weight_std, bias_std)
    second = gaussian_expectation(lambda x: act.fn(x) ** 2, q)
    return w2 * second + b2


def fixed_point(
    activation: str | Activation | Callable[[Any], Any],
    weight_std: float,
    bias_std: float,
    *,
    q0: float = 1.0,
    nodes: int = DEFAULT_NODES,
) -> float:
    """Solve q* = V(q*) for the fixed point the variance map reaches from q0; ``math.inf`` if it diverges.

    Poole et al. 2016. The root is bracketed and found by safeguarded Newton, which stays fast
    near criticality, where q* -> 0 and plain iteration q <- V(q) converges arbitrarily slowly.
    Positively homogeneous activations use the closed form q* = sigma_b^2 / (1 - sigma_w^2 E[f(z)^2]).

    .. math::
        q^* = \\sigma_w^2\\, E\\big[f(\\sqrt{q^*}\\,z)^2\\big] + \\sigma_b^2

    Args:
        activation: a registered name, an Activation or a callable.
        weight_std: sigma_w >= 0.
        bias_std: sigma_b >= 0.
        q0: the starting variance (only matters where several fixed points exist, e.g. relu at
            sigma_w = sqrt(2), sigma_b = 0, where every q is fixed and q0 is returned).
        nodes: Gauss-Legendre nodes per quadrature panel (the default is converged to ~1e-14;
            doubling it is how the tests check convergence).

    Examples:
        >>> round(fixed_point("tanh", 1.5**0.5, 0.05**0.5), 6)
        0.418037
        >>> fixed_point("relu", 2.0, 0.1)
        inf
    """
    act, w2, b2 = _point(activation, weight_std, bias_std)
    check_nonnegative("q0", q0)
    return float(solve_fixed_point(act, np.array([w2]), np.array([b2]), float(q0), nodes)[0])


def chi1(
    activation: str | Activation | Callable[[Any], Any],
    weight_std: float,
    bias_std: float,
    *,
    q0: float = 1.0,
    nodes: int = DEFAULT_NODES,
) -> float:
    """Per-layer growth factor of the gradient second moment at the fixed point (Schoenholz et al. 2017).

    chi_1 < 1: gradients vanish geometrically with depth; > 1: they explode; = 1: critical.
    For positively homogeneous activations (relu, leaky_relu, identity) E[f'^2] does not depend
    on q, so chi_1 is exact even where q* diverges; elsewhere at q* = inf the limit
    (f'(+inf)^2 + f'(-inf)^2) / 2 is used.

    .. math::
        \\chi_1 = \\sigma_w^2\\, E\\big[f'(\\sqrt{q^*}\\,z)^2\\big]

    Args:
        activation: a registered name, an Activation or a callable.
        weight_std: sigma_w >= 0.
        bias_std: sigma_b >= 0.
        q0: starting variance for :func:`fixed_point`.
        nodes: quadrature nodes per panel (see :func:`fixed_point`).

    Examples:
        >>> chi1("relu", 2**0.5, 1.0)
        1.0000000000000002
        >>> round(chi1("tanh", 1.0, 0.0), 12)  # q* = 0, f'(0) = 1
        1.0
    """
    act, w2, _ = _point(activation, weight_std, bias_std)
    return _chi1_given_q(act, w2, fixed_point(act, weight_std, bias_std, q0=q0, nodes=nodes), nodes)


def _chi1_given_q(act: Activation, w2: float, q: float, nodes: int) -> float:
    """sigma_w^2 E[f'(sqrt(q*) z)^2] at a solved q* (its q -> inf limit where q* = inf)."""
    return float(w2 * derivative_moment(act, np.array(q), nodes))


def chi1_at(
    activation: str | Activation | Callable[[Any], Any], weight_std: float, q: Any
) -> float | np.ndarray:
    """Gradient growth of one layer whose pre-activations have variance q (not necessarily q*).

    The per-layer factor of Schoenholz et al. 2017 evaluated at a measured variance, for comparing a
    real network layer by layer (q may be an array, e.g. one variance per layer).

    .. math::
        \\sigma_w^2\\, E\\big[f'(\\sqrt{q}\\,z)^2\\big]

    Args:
        activation: a registered name, an Activation or a callable.
        weight_std: sigma_w >= 0.
        q: pre-activation variance(s) >= 0.

    Examples:
        >>> chi1_at("relu", 2**0.5, [0.1, 10.0]).round(12).tolist()  # relu: sigma_w^2 / 2 at any q
        [1.0, 1.0]
        >>> round(float(chi1_at("tanh", 1.0, 0.0)), 12)  # tanh'(0) = 1
        1.0
    """
    act = resolve(activation)
    w2 = _std("weight_std", weight_std) ** 2
    return w2 * gaussian_expectation(lambda x: act.derivative(x) ** 2, q)


def _critical_line_bias(act: Activation, q: np.ndarray, nodes: int) -> np.ndarray:
    """sigma_b^2 on the critical line as a function of q*: q - V(q) / D(q) (and sigma_w^2 = 1 / D(q))."""
    second, _, deriv = moments(act, q, nodes)
    second = np.where(q == 0, float(act.fn(np.array(0.0))) ** 2, second)  # V(0) = f(0)^2 exactly
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(deriv > 0, q - second / deriv, -math.inf)


def critical_weight_stds(
    activation: str | Activation | Callable[[Any], Any], bias_stds: Any, *, nodes: int = DEFAULT_NODES
) -> np.ndarray:
    """The critical sigma_w for every sigma_b in ``bias_stds`` (NaN where none exists), vectorized.

    The critical line chi_1 = 1 is parametrized by q*: sigma_w^2 = 1 / E[f'(sqrt(q) z)^2] and
    sigma_b^2 = q - sigma_w^2 E[f(sqrt(q) z)^2]; for each sigma_b the smallest q on that curve is
    bracketed on a log grid and bisected.

    Examples:
        >>> critical_weight_stds("tanh", [0.0]).round(9)
        array([1.])
    """
    act = resolve(activation)
    b2 = std_array("bias_stds", bias_stds) ** 2
    if act.positively_homogeneous:
        return np.full(b2.shape, 1.0 / math.sqrt(_homogeneous_moments(act)[1]))
    grid = np.concatenate([[0.0], np.logspace(-12, math.log10(_Q_MAX), 271)])
    curve = _critical_line_bias(act, grid, nodes)
    above = curve[None, :] >= b2[:, None]
    found = above.any(axis=1)
    first = np.argmax(above, axis=1)
    q = np.full(b2.shape, math.nan)
    exact = found & (first == 0) | found & (curve[first] == b2)
    q[exact] = grid[first[exact]]
    todo = np.flatnonzero(found & ~exact)
    if todo.size:
        q[todo] = _solve.bisect(
            lambda i, x: _critical_line_bias(act, x, nodes) - b2[todo[i]],
            grid[first[todo] - 1], grid[first[todo]],
        )
    deriv = derivative_moment(act, np.where(np.isnan(q), 1.0, q), nodes)
    return np.where(np.isnan(q), math.nan, 1.0 / np.sqrt(deriv))


def critical_weight_std(activation: str | Activation | Callable[[Any], Any], bias_std: float = 0.0) -> float:
    """Return the sigma_w at which chi_1 = 1: the edge of chaos (Poole et al. 2016; Schoenholz et al. 2017).

    relu gives sqrt(2) (He et al. 2015), leaky_relu(a) sqrt(2 / (1 + a^2)), tanh with sigma_b = 0
    gives 1, tanh with sigma_b^2 = 0.05 gives sigma_w^2 = 1.761 (with q* = 0.570).

    .. math::
        \\sigma_w^2\\, E\\big[f'(\\sqrt{q^*}\\,z)^2\\big] = 1

    Args:
        activation: a registered name, an Activation or a callable.
        bias_std: sigma_b >= 0.

    Raises:
        NoCriticalPointError: no weight std makes chi_1 = 1 at this bias std.

    Examples:
        >>> round(critical_weight_std("tanh", 0.05**0.5) ** 2, 3)
        1.761
    """
    act = resolve(activation)
    _std("bias_std", bias_std)
    value = float(critical_weight_stds(act, [bias_std])[0])
    if math.isnan(value):
        raise NoCriticalPointError(
            f"activation {act.name!r} has no critical weight_std at bias_std={bias_std!r}: chi_1 never "
            f"reaches 1 for q* up to {_Q_MAX:g}; try a smaller bias_std or another activation"
        )
    return value


# ---------------------------------------------------------------------------------------------
# Correlations and depth scales.


def _polar(nodes: int) -> tuple[int, int]:
    """Polar rule matching ``nodes``: DEFAULT_NODES gives DEFAULT_POLAR_NODES."""
    radial = max(2, nodes * DEFAULT_POLAR_NODES[0] // DEFAULT_NODES)
    return radial, max(2, nodes * DEFAULT_POLAR_NODES[1] // DEFAULT_NODES)


def _kernel_scale(act: Activation, w2: float, b2: float, q: float) -> tuple[float, float, float]:
    """(q used, w2, b2) for the correlation map: the q -> 0 and q -> inf limits where q* is degenerate."""
    if math.isinf(q):
        if not act.positively_homogeneous:
            raise InvalidArgumentError(
                f"the variance diverges (q* = inf) for {act.name!r} at this weight_std: the correlation map "
                f"at the fixed point is undefined; choose weight_std below critical_weight_std or a "
                f"bounded activation"
            )
        return 1.0, 1.0 / _homogeneous_moments(act)[0], 0.0  # bias negligible: c' = K(c) / K(1)
    return max(q, _Q_SMALL), w2, b2


def correlation_map(
    activation: str | Activation | Callable[[Any], Any],
    weight_std: float,
    bias_std: float,
    c: Any,
    *,
    q0: float = 1.0,
    nodes: int = DEFAULT_NODES,
) -> float | np.ndarray:
    """Map the correlation c of two inputs' pre-activations to the next layer (Poole et al. 2016, eq. 5).

    Both inputs sit at the variance fixed point q*. For relu at sigma_w = sqrt(2), sigma_b = 0 this
    is the arc-cosine kernel (Cho & Saul 2009): c' = (sqrt(1 - c^2) + (pi - arccos c) c) / pi.

    .. math::
        c' = \\frac{\\sigma_w^2\\, E[f(u_1) f(u_2)] + \\sigma_b^2}{q^*},\\quad
        u_1 = \\sqrt{q^*} z_1,\\ u_2 = \\sqrt{q^*}\\,(c z_1 + \\sqrt{1 - c^2}\\, z_2)

    Args:
        activation: a registered name, an Activation or a callable.
        weight_std: sigma_w >= 0.
        bias_std: sigma_b >= 0.
        c: correlation(s) in [-1, 1].
        q0: starting variance for :func:`fixed_point`.
        nodes: quadrature nodes per panel (see :func:`fixed_point`); the 2-D rule uses 3/4 as many.

    Examples:
        >>> round(correlation_map("relu", 2**0.5, 0.0, 0.0), 12)  # 1 / pi
        0.318309886184
    """
    act, w2, b2 = _point(activation, weight_std, bias_std)
    q = fixed_point(act, weight_std, bias_std, q0=q0, nodes=nodes)
    return _correlation_map_given_q(act, w2, b2, q, c, nodes)


def _correlation_map_given_q(act: Activation, w2: float, b2: float, q: float, c: Any, nodes: int) -> Any:
    """The correlation map at a solved q* (see :func:`correlation_map`)."""
    q, w2, b2 = _kernel_scale(act, w2, b2, q)
    return (w2 * bivariate_expectation(act.fn, act.fn, q, q, c, nodes=_polar(nodes)) + b2) / q


def chi_c(
    activation: str | Activation | Callable[[Any], Any],
    weight_std: float,
    bias_std: float,
    c: float,
    *,
    q0: float = 1.0,
    nodes: int = DEFAULT_NODES,
) -> float:
    """Slope of the correlation map at c: sigma_w^2 E[f'(u1) f'(u2)] (Schoenholz et al. 2017, eq. 7).

    At c = 1 it equals chi_1.

    Examples:
        >>> round(chi_c("relu", 2**0.5, 0.0, 1.0), 12)
        1.0
    """
    act, w2, b2 = _point(activation, weight_std, bias_std)
    return _chi_c_given_q(act, w2, b2, fixed_point(act, weight_std, bias_std, q0=q0, nodes=nodes), c, nodes)


def _chi_c_given_q(act: Activation, w2: float, b2: float, q: float, c: float, nodes: int) -> float:
    """The correlation map's slope at c, at a solved q* (see :func:`chi_c`)."""
    q, w2, _ = _kernel_scale(act, w2, b2, q)
    return float(w2 * bivariate_expectation(act.derivative, act.derivative, q, q, c, nodes=_polar(nodes)))


def correlation_fixed_point(
    activation: str | Activation | Callable[[Any], Any],
    weight_std: float,
    bias_std: float,
    *,
    q0: float = 1.0,
    nodes: int = DEFAULT_NODES,
) -> float:
    """The stable fixed point c* of the correlation map (Schoenholz et al. 2017).

    c* = 1 in the ordered phase (chi_1 <= 1); in the chaotic phase the map is convex on [0, 1]
    with c'(0) >= 0 and slope chi_1 > 1 at c = 1, so c* is its unique root in [0, 1), found by brentq.

    Examples:
        >>> correlation_fixed_point("tanh", 0.5, 0.1)
        1.0
        >>> round(correlation_fixed_point("tanh", 2.0, 0.0), 12)  # odd f, no bias
        0.0
    """
    act, w2, b2 = _point(activation, weight_std, bias_std)
    q = fixed_point(act, weight_std, bias_std, q0=q0, nodes=nodes)
    return _correlation_fixed_point_given_q(act, w2, b2, q, nodes)


def _correlation_fixed_point_given_q(act: Activation, w2: float, b2: float, q: float, nodes: int) -> float:
    """c* at a solved q* (see :func:`correlation_fixed_point`)."""
    if _chi1_given_q(act, w2, q, nodes) <= 1.0 + CRITICAL_RTOL:
        return 1.0

    def gap(c: float) -> float:
        return float(_correlation_map_given_q(act, w2, b2, q, c, nodes)) - c

    if gap(0.0) <= 1e-15:
        return 0.0
    top = next((1.0 - 10.0**-k for k in range(1, 16) if gap(1.0 - 10.0**-k) < 0), None)
    if top is None:  # chi_1 is within rounding of 1: c* merges with 1
        return 1.0
    return float(scipy.optimize.brentq(gap, 0.0, top, xtol=1e-15, rtol=1e-15))


def _length(slope: float) -> float:
    """-1 / ln(slope): the number of layers over which a deviation shrinks by e (inf at slope >= 1)."""
    if not math.isfinite(slope) or slope >= 1.0 - CRITICAL_RTOL:
        return math.inf
    return -1.0 / math.log(slope) if slope > 0 else 0.0


def depth_scales(
    activation: str | Activation | Callable[[Any], Any],
    weight_std: float,
    bias_std: float,
    *,
    q0: float = 1.0,
    nodes: int = DEFAULT_NODES,
) -> tuple[float, float]:
    """Return (xi_q, xi_c): depths over which the variance and the correlation reach their fixed points.

    Schoenholz et al. 2017, eqs. 5 and 9: perturbations of q and c decay like exp(-l / xi). Both are
    infinite on the critical line chi_1 = 1, and where q* diverges (the signal never settles).

    .. math::
        \\xi_q^{-1} = -\\ln\\Big(\\sigma_w^2\\,\\frac{d}{dq} E[f(\\sqrt{q} z)^2]\\Big|_{q^*}\\Big),\\qquad
        \\xi_c^{-1} = -\\ln\\big(\\sigma_w^2\\, E[f'(u_1) f'(u_2)]\\big|_{c^*}\\big)

    Args:
        activation: a registered name, an Activation or a callable.
        weight_std: sigma_w >= 0.
        bias_std: sigma_b >= 0.
        q0: starting variance for :func:`fixed_point`.
        nodes: quadrature nodes per panel (see :func:`fixed_point`).

    Examples:
        >>> xi_q, xi_c = depth_scales("tanh", 1.5**0.5, 0.05**0.5)
        >>> round(xi_c, 1)
        15.8
    """
    act, w2, b2 = _point(activation, weight_std, bias_std)
    q = fixed_point(act, weight_std, bias_std, q0=q0, nodes=nodes)
    return _depth_scales_given_q(act, w2, b2, q, nodes)


def _depth_scales_given_q(act: Activation, w2: float, b2: float, q: float, nodes: int) -> tuple[float, float]:
    """(xi_q, xi_c) at a solved q* (see :func:`depth_scales`)."""
    if math.isinf(q):
        return math.inf, math.inf
    if act.positively_homogeneous:
        q_slope = w2 * _homogeneous_moments(act)[0]
    else:
        q_slope = float(w2 * moments(act, np.array(q), nodes)[1])
    c_star = _correlation_fixed_point_given_q(act, w2, b2, q, nodes)
    if c_star == 1.0:
        slope_c = _chi1_given_q(act, w2, q, nodes)
    else:
        slope_c = _chi_c_given_q(act, w2, b2, q, c_star, nodes)
    return _length(q_slope), _length(slope_c)


def at_fixed_point(
    activation: str | Activation | Callable[[Any], Any],
    weight_std: float,
    bias_std: float,
    *,
    q0: float = 1.0,
    nodes: int = DEFAULT_NODES,
) -> tuple[float, float, float, float]:
    """Return (q*, chi_1, xi_q, xi_c) with q* solved once (each alone would solve it again).

    The same numbers as :func:`fixed_point`, :func:`chi1` and :func:`depth_scales` (Schoenholz et al.
    2017), bit for bit.

    Examples:
        >>> q, growth, xi_q, xi_c = at_fixed_point("tanh", 1.5**0.5, 0.05**0.5)
        >>> round(q, 6), round(growth, 4), round(xi_c, 1)
        (0.418037, 0.9386, 15.8)
    """
    act, w2, b2 = _point(activation, weight_std, bias_std)
    q = fixed_point(act, weight_std, bias_std, q0=q0, nodes=nodes)
    xi_q, xi_c = _depth_scales_given_q(act, w2, b2, q, nodes)
    return q, _chi1_given_q(act, w2, q, nodes), xi_q, xi_c


def trainable_depth(
    activation: str | Activation | Callable[[Any], Any],
    weight_std: float,
    bias_std: float,
    *,
    q0: float = 1.0,
) -> float:
    """Return 6 xi_c: roughly the deepest network that still trains (Schoenholz et al. 2017, Fig. 5).

    Examples:
        >>> round(trainable_depth("tanh", 1.5**0.5, 0.05**0.5))
        95
    """
    return 6.0 * depth_scales(activation, weight_std, bias_std, q0=q0)[1]


def predict_gradient_norms(
    activation: str | Activation | Callable[[Any], Any],
    weight_std: float,
    bias_std: float,
    depth: int,
    *,
    q0: float = 1.0,
) -> np.ndarray:
    """Predict the squared gradient norm l layers below the output, relative to the output: chi_1^l.

    Schoenholz et al. 2017, eq. 12: at the fixed point each layer multiplies the expected squared
    norm of the back-propagated gradient by chi_1.

    .. math::
        E\\|\\partial \\mathcal{L}/\\partial h_{L-l}\\|^2
            \\,/\\, E\\|\\partial \\mathcal{L}/\\partial h_L\\|^2 = \\chi_1^{\\,l}

    Args:
        activation: a registered name, an Activation or a callable.
        weight_std: sigma_w >= 0.
        bias_std: sigma_b >= 0.
        depth: number of layers, >= 1.
        q0: starting variance for :func:`fixed_point`.

    Returns:
        float64 array of length depth + 1; entry 0 is 1.

    Examples:
        >>> predict_gradient_norms("relu", 1.0, 0.0, 3)
        array([1.   , 0.5  , 0.25 , 0.125])
    """
    check_int_at_least("depth", depth, 1)
    check_memory(f"depth={depth}", 16.0 * (depth + 1), "pass a smaller depth")
    growth = chi1(activation, weight_std, bias_std, q0=q0)
    return growth ** np.arange(depth + 1, dtype=float)
