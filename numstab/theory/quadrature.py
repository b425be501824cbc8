"""Gaussian expectations by quadrature that is exact across a kink at 0.

Mean-field theory is a handful of Gaussian integrals E[g(sqrt(q) z)], z ~ N(0, 1). Plain
Gauss-Hermite with an odd node count puts a node on x = 0, where relu's derivative jumps, and gets
relu's chi_1 wrong by several percent; even node counts converge only algebraically across the
kink. Here every integral is split at the kink instead: the 1-D integral becomes two half-line
integrals, each done by Gauss-Legendre on graded panels of [0, Z] (Z = 10 standard deviations; the
Gaussian mass beyond is below 1e-22), where the integrand is smooth for every registered activation and the
rule converges exponentially. The 2-D integral of a correlated pair is done in polar coordinates,
where both kink lines (u1 = 0 and u2 = 0) are rays, so the angle is split at them.

Everything is vectorized: ``q`` (and ``c``) may be arrays of any shape; the callable is evaluated
once on a float64 array of shape ``q.shape + (nodes,)``.

Examples:
    >>> import numpy as np
    >>> relu = lambda x: np.maximum(x, 0.0)
    >>> round(float(gaussian_expectation(lambda x: relu(x) ** 2, 3.0)), 12)  # E[relu(u)^2] = q / 2
    1.5
    >>> round(float(gaussian_expectation(np.cos, 1.0)), 12)  # exp(-q / 2)
    0.606530659713
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np

from numstab.errors import BadInputError, InvalidArgumentError, check_int_at_least, check_real_array
from numstab.resources import check_memory

__all__ = [
    "DEFAULT_NODES",
    "DEFAULT_POLAR_NODES",
    "gaussian_expectation",
    "bivariate_expectation",
    "kernel_and_slope",
    "hermite_coefficients",
    "half_line_rule",
    "call_finite",
]

#: Gauss-Legendre nodes per panel (three panels per half line) for the 1-D integrals.
DEFAULT_NODES = 32
#: (radial nodes per panel, angular nodes per sector) for the 2-D integrals.
DEFAULT_POLAR_NODES = (24, 24)
#: The integrals are truncated at |z| = _Z_MAX standard deviations.
_Z_MAX = 10.0
#: Panels of each half line: graded towards the kink at 0.
_PANELS = ((0.0, 0.25), (0.25, 2.0), (2.0, _Z_MAX))
#: Standing in for q = 0 keeps x = sqrt(q) z on the correct side of a kink.
_TINY_Q = 1e-300


def _check_nodes(name: str, nodes: int) -> int:
    """``nodes`` if an integer >= 2 whose Gauss-Legendre rule fits in memory (leggauss solves an n x n
    eigenproblem: ~8 n^2 bytes)."""
    check_int_at_least(name, nodes, 2)
    check_memory(f"{name}={nodes}", 16.0 * nodes * nodes, f"use fewer {name} (the default is converged)")
    return nodes


def _panel_rule(nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss-Legendre on the graded panels of [0, Z] (plain dz weights)."""
    t, tw = np.polynomial.legendre.leggauss(nodes)
    z = np.concatenate([a + 0.5 * (b - a) * (t + 1.0) for a, b in _PANELS])
    return z, np.concatenate([0.5 * (b - a) * tw for a, b in _PANELS])


@lru_cache(maxsize=16)
def half_line_rule(nodes: int = DEFAULT_NODES) -> tuple[np.ndarray, np.ndarray]:
    """Return (z, w): nodes and weights with sum(w * g(z)) = E[g(z)], z ~ N(0, 1), split at 0.

    Each half line [0, Z] is cut into graded panels (_PANELS) with ``nodes`` Gauss-Legendre points
    each: the narrow first panel resolves f(sqrt(q) z) for large q, where its features shrink to
    z ~ 1 / sqrt(q). The first half of the points lie on (0, Z], the rest are their mirror images;
    the weights include the Gaussian density.

    .. math::
        E[g(z)] = \\int_0^{Z} \\varphi(z)\\,[g(z) + g(-z)]\\,dz

    Args:
        nodes: Gauss-Legendre nodes per panel (>= 2).

    Examples:
        >>> z, w = half_line_rule(32)
        >>> z.shape, round(float(w.sum()), 12), round(float((w * z**2).sum()), 12)
        ((192,), 1.0, 1.0)
    """
    _check_nodes("nodes", nodes)
    z, w = _panel_rule(nodes)
    w = w * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    z_all, w_all = np.concatenate([z, -z]), np.concatenate([w, w])
    z_all.setflags(write=False)
    w_all.setflags(write=False)
    return z_all, w_all


#: The largest variance taken: sqrt(q) z and f(sqrt(q) z)**2 stay finite in float64 for |f(x)| <= |x|.
Q_MAX = 1e200


def _as_variance(name: str, q: Any) -> np.ndarray:
    arr = check_real_array(name, q)
    if arr.size and not (np.all(np.isfinite(arr)) and np.all(arr >= 0) and np.all(arr <= Q_MAX)):
        bad = float(arr[~(np.isfinite(arr) & (arr >= 0) & (arr <= Q_MAX))].flat[0])
        raise InvalidArgumentError(f"{name} must be finite and >= 0 (a variance, at most 1e200), got {bad!r}")
    return arr


def call_finite(f: Callable[[np.ndarray], Any], x: np.ndarray) -> np.ndarray:
    """Evaluate ``f`` on the float64 array ``x`` and insist on finite results of the same shape.

    Raises:
        BadInputError: ``f`` returned NaN or inf (the message says to make ``f`` finite).

    Examples:
        >>> import numpy as np
        >>> call_finite(np.tanh, np.zeros(3))
        array([0., 0., 0.])
    """
    with np.errstate(all="ignore"):  # non-finite results are reported below, as an error
        out = np.asarray(f(x), dtype=np.float64)
    if out.shape != x.shape:
        out = np.broadcast_to(out, x.shape)
    if not np.all(np.isfinite(out)):
        name = getattr(f, "__name__", type(f).__name__)
        raise BadInputError(
            f"the function {name} returned non-finite values (NaN or inf) on finite Gaussian inputs: "
            f"make it finite for every real x, e.g. clip or rewrite the formula"
        )
    return out


def _restore(arr: np.ndarray, like: np.ndarray) -> Any:
    return float(arr) if like.ndim == 0 else arr


def gaussian_expectation(
    f: Callable[[np.ndarray], Any], q: Any, *, nodes: int = DEFAULT_NODES
) -> float | np.ndarray:
    """Compute E[f(sqrt(q) z)], z ~ N(0, 1), for every variance in ``q`` at once.

    The Gaussian integral of mean-field theory (Poole et al. 2016), split at the kink at 0 so that
    relu-like functions are integrated exactly (see the module docstring).

    .. math::
        E[f(\\sqrt{q}\\,z)] = \\int \\frac{e^{-z^2/2}}{\\sqrt{2\\pi}} f(\\sqrt{q}\\,z)\\,dz

    Args:
        f: a function of a float64 numpy array, elementwise (an activation's ``fn``, a lambda).
        q: a variance (>= 0) or an array of them; the result has its shape.
        nodes: Gauss-Legendre nodes per panel (three panels per half line).

    Raises:
        InvalidArgumentError: a negative or non-finite variance.
        BadInputError: ``f`` returned NaN or inf.

    Examples:
        >>> import numpy as np
        >>> gaussian_expectation(np.square, np.array([0.5, 2.0])).round(12)
        array([0.5, 2. ])
    """
    q_arr = _as_variance("q", q)
    z, w = half_line_rule(nodes)
    x = np.sqrt(np.maximum(q_arr, _TINY_Q))[..., None] * z
    return _restore(call_finite(f, x) @ w, q_arr)


def _polar_rule(c: np.ndarray, nodes: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Polar nodes (cos, sin, weight) for each correlation in ``c``; shape c.shape + (m,)."""
    n_r, n_t = nodes
    r, wr = _panel_rule(n_r)
    wr = wr * r * np.exp(-0.5 * r * r) / (2.0 * math.pi)
    t, wt = np.polynomial.legendre.leggauss(n_t)
    s = np.sqrt(np.clip(1.0 - c * c, 0.0, None))
    ray = np.mod(np.arctan2(-c, s), np.pi)  # u2 = 0 on the rays ray and ray + pi
    cuts = np.stack(np.broadcast_arrays(0.0, 0.5 * np.pi, 1.5 * np.pi, ray, ray + np.pi, 2 * np.pi), -1)
    cuts = np.sort(cuts, axis=-1)
    lo, width = cuts[..., :-1, None], np.diff(cuts, axis=-1)[..., None]
    theta = (lo + 0.5 * width * (t + 1.0)).reshape(c.shape + (-1,))
    w_theta = (0.5 * width * wt).reshape(c.shape + (-1,))
    weights = (w_theta[..., :, None] * wr).reshape(c.shape + (-1,))
    cos = (np.cos(theta)[..., :, None] * r).reshape(c.shape + (-1,))
    sin = (np.sin(theta)[..., :, None] * r).reshape(c.shape + (-1,))
    return cos, sin, weights


def bivariate_expectation(
    f: Callable[[np.ndarray], Any],
    g: Callable[[np.ndarray], Any],
    q1: Any,
    q2: Any,
    c: Any,
    *,
    nodes: tuple[int, int] = DEFAULT_POLAR_NODES,
) -> float | np.ndarray:
    """Compute E[f(u1) g(u2)] for a centred Gaussian pair with variances q1, q2 and correlation c.

    The two-input kernel of mean-field theory (Poole et al. 2016; Schoenholz et al. 2017), with
    u1 = sqrt(q1) z1 and u2 = sqrt(q2) (c z1 + sqrt(1 - c^2) z2). In polar coordinates
    (z1, z2) = r (cos t, sin t) the kinks u1 = 0 and u2 = 0 are rays, so the angle is split there
    and Gauss-Legendre is used on each sector and on the graded panels of the radius.

    .. math::
        E[f(u_1) g(u_2)] = \\frac{1}{2\\pi}\\int_0^{2\\pi}\\!\\!\\int_0^\\infty
            f(u_1) g(u_2)\\, e^{-r^2/2} r\\,dr\\,dt

    Args:
        f, g: elementwise functions of float64 numpy arrays.
        q1, q2: variances (>= 0); broadcast with ``c``.
        c: correlation(s) in [-1, 1].
        nodes: (radial nodes per panel, angular nodes per sector).

    Examples:
        >>> import numpy as np
        >>> relu = lambda x: np.maximum(x, 0.0)
        >>> round(float(bivariate_expectation(relu, relu, 1.0, 1.0, 0.0)), 12)  # 1 / (2 pi)
        0.159154943092
    """
    u1, u2, w, like = _polar_points(q1, q2, c, nodes)
    return _restore(np.sum(call_finite(f, u1) * call_finite(g, u2) * w, axis=-1), like)


def _polar_points(
    q1: Any, q2: Any, c: Any, nodes: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(u1, u2, weights, broadcast c) of the polar rule, after checking the arguments."""
    if not (isinstance(nodes, tuple) and len(nodes) == 2):
        raise InvalidArgumentError(f"nodes must be a pair (radial, angular), got {nodes!r}: e.g. (24, 24)")
    _check_nodes("radial nodes", nodes[0])
    _check_nodes("angular nodes", nodes[1])
    q1_arr, q2_arr = _as_variance("q1", q1), _as_variance("q2", q2)
    c_arr = check_real_array("c", c)
    if not np.all(np.abs(c_arr) <= 1.0):
        bad = float(c_arr[~(np.abs(c_arr) <= 1)].flat[0])
        raise InvalidArgumentError(f"c must be a correlation in [-1, 1], got {bad!r}")
    q1_b, q2_b, c_b = np.broadcast_arrays(q1_arr, q2_arr, c_arr)
    cos, sin, w = _polar_rule(c_b, nodes)
    s = np.sqrt(np.clip(1.0 - c_b * c_b, 0.0, None))[..., None]
    u1 = np.sqrt(np.maximum(q1_b, _TINY_Q))[..., None] * cos
    u2 = np.sqrt(np.maximum(q2_b, _TINY_Q))[..., None] * (c_b[..., None] * cos + s * sin)
    return u1, u2, w, c_b


def kernel_and_slope(
    f: Callable[[np.ndarray], Any],
    df: Callable[[np.ndarray], Any],
    q: Any,
    c: Any,
    *,
    nodes: tuple[int, int] = DEFAULT_POLAR_NODES,
) -> tuple[np.ndarray, np.ndarray]:
    """(E[f(u1) f(u2)], E[f'(u1) f'(u2)]) for equal variances q, from one polar rule.

    Examples:
        >>> import numpy as np
        >>> k, d = kernel_and_slope(np.sin, np.cos, 1.0, 1.0)
        >>> round(float(k + d), 12)  # E[sin^2 + cos^2]
        1.0
    """
    u1, u2, w, _ = _polar_points(q, q, c, nodes)
    kernel = np.sum(call_finite(f, u1) * call_finite(f, u2) * w, axis=-1)
    return kernel, np.sum(call_finite(df, u1) * call_finite(df, u2) * w, axis=-1)


@lru_cache(maxsize=8)
def _hermite_table(order: int, nodes: int) -> np.ndarray:
    """Weighted normalized Hermite polynomials w_j He_k(z_j) / sqrt(k!), shape (2 nodes, order)."""
    z, w = half_line_rule(nodes)
    table = np.empty((z.size, order))
    prev, cur = np.zeros_like(z), np.ones_like(z)
    for k in range(order):
        table[:, k] = cur
        prev, cur = cur, (z * cur - math.sqrt(k) * prev) / math.sqrt(k + 1)
    out = table * w[:, None]
    out.setflags(write=False)
    return out


def hermite_coefficients(
    f: Callable[[np.ndarray], Any], q: Any, *, order: int = 64, nodes: int = 2 * DEFAULT_NODES
) -> np.ndarray:
    """Return a_k = E[f(sqrt(q) z) He_k(z)] / sqrt(k!) for k < ``order``; shape q.shape + (order,).

    With these, the two-input kernel is a power series in the correlation (Mehler's formula; the
    "dual activation" of Daniely et al. 2016), which is what makes the phase diagram vectorizable:

    .. math::
        E[f(u_1) f(u_2)] = \\sum_k a_k^2\\, c^k

    Args:
        f: elementwise function of float64 numpy arrays.
        q: variance(s) >= 0.
        order: number of coefficients.
        nodes: Gauss-Legendre nodes per panel (high orders oscillate: use more than for E[f]).

    Examples:
        >>> import numpy as np
        >>> hermite_coefficients(lambda x: x**2, 1.0, order=4).round(12) + 0.0  # z^2 = h_0 + sqrt(2) h_2
        array([1.        , 0.        , 1.41421356, 0.        ])
    """
    check_int_at_least("order", order, 1)
    check_memory(f"order={order}", 8.0 * order * 12 * _check_nodes("nodes", nodes), "use a smaller order")
    q_arr = _as_variance("q", q)
    z, _ = half_line_rule(nodes)
    x = np.sqrt(np.maximum(q_arr, _TINY_Q))[..., None] * z
    return call_finite(f, x) @ _hermite_table(order, nodes)
