"""The order-to-chaos phase diagram over a (weight_std, bias_std) grid, vectorized.

Schoenholz et al. 2017, Fig. 1: chi_1 and the correlation depth scale xi_c over the plane of
initializations, with the critical line chi_1 = 1 between the ordered phase (gradients vanish) and
the chaotic phase (gradients explode). Every grid point is solved at once:

- q* bracketed from one table of E[f(sqrt(q) z)^2] on a log grid of q, then polished by bracketed
  Newton on all points together (two or three quadrature passes);
- chi_1 from one quadrature pass at q*;
- in the ordered phase c* = 1 and xi_c = -1 / ln chi_1; in the chaotic phase the correlation map is
  the power series sum_k a_k^2 c^k in the Hermite coefficients a_k of f(sqrt(q*) z) (Mehler's
  formula), so c* and chi_c come from Newton on a polynomial, again for all points at once; where
  the series' tail could move xi_c by more than 1e-9 (kinked derivatives near c* = 1) the point is
  polished with the kink-exact 2-D rule;
- the critical line from its parametrization by q* (:func:`numstab.theory.meanfield.critical_weight_stds`).

Examples:
    >>> import numpy as np
    >>> pd = phase_diagram("tanh", np.linspace(0.5, 3.0, 6), [0.0, 0.3])
    >>> pd.chi1.shape, pd.phase()[0].tolist()
    ((2, 6), ['ordered', 'critical', 'chaotic', 'chaotic', 'chaotic', 'chaotic'])
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.interpolate

from numstab import display
from numstab._repr import short_repr
from numstab.activations import Activation
from numstab.errors import NumstabError
from numstab.resources import check_memory
from numstab.theory import _solve, meanfield
from numstab.theory.quadrature import DEFAULT_NODES, hermite_coefficients, kernel_and_slope

__all__ = ["PhaseDiagram", "phase_diagram", "HERMITE_ORDER"]

#: Terms of the Hermite (Mehler) series used for the correlation map in the chaotic phase.
HERMITE_ORDER = 96
_NEWTON_STEPS = 60
#: (order, nodes per panel) of the longer series for points near c* = 1.
_LONG_SERIES = (512, 256)
#: Relative accuracy promised for xi_c on the grid; points the series cannot reach are polished.
_XI_RTOL = 1e-9
#: Variances at which V(q) is tabulated to bracket q* on a grid (100 per decade); _Q0 indexes q = 1.
_TABLE_Q = np.logspace(-8, 8, 1601)
_Q0 = 800
_TABLE_Q[_Q0] = 1.0  # exactly q0


@dataclass(frozen=True, repr=False)
class PhaseDiagram(display.Displayed):
    """chi_1 and xi_c over a grid of initializations, and the critical line.

    Attributes:
        activation: the activation's name.
        weight_stds: sigma_w values, shape (n_w,), as given.
        bias_stds: sigma_b values, shape (n_b,), as given.
        q_star: the variance fixed point, shape (n_b, n_w); inf where the variance diverges.
        chi1: gradient growth per layer, shape (n_b, n_w).
        xi_c: correlation depth scale, shape (n_b, n_w); inf on the critical line and where q* = inf.
        critical_weight_stds: sigma_w with chi_1 = 1 for each sigma_b, shape (n_b,); NaN where none exists.
    """

    activation: str
    weight_stds: np.ndarray
    bias_stds: np.ndarray
    q_star: np.ndarray = field(repr=False)
    chi1: np.ndarray = field(repr=False)
    xi_c: np.ndarray = field(repr=False)
    critical_weight_stds: np.ndarray = field(repr=False)

    def phase(self, *, rtol: float = meanfield.CRITICAL_RTOL) -> np.ndarray:
        """"ordered" / "critical" / "chaotic" per grid point (|chi_1 - 1| <= rtol is critical).

        Examples:
            >>> phase_diagram("relu", [1.0, 2**0.5, 2.0], [0.0]).phase().tolist()
            [['ordered', 'critical', 'chaotic']]
        """
        return np.where(
            np.abs(self.chi1 - 1.0) <= rtol, "critical", np.where(self.chi1 < 1.0, "ordered", "chaotic")
        )

    def trainable_depth(self) -> np.ndarray:
        """6 xi_c per grid point (Schoenholz et al. 2017), shape (n_b, n_w)."""
        return 6.0 * self.xi_c

    __repr__ = short_repr

    def to_dict(self) -> dict[str, Any]:
        """Plain lists (JSON-ready; non-finite values stay floats)."""
        return {
            "activation": self.activation,
            "weight_stds": self.weight_stds.tolist(),
            "bias_stds": self.bias_stds.tolist(),
            "q_star": self.q_star.tolist(),
            "chi1": self.chi1.tolist(),
            "xi_c": self.xi_c.tolist(),
            "critical_weight_stds": self.critical_weight_stds.tolist(),
        }


def _frozen(arr: np.ndarray) -> np.ndarray:
    """A read-only array, so the frozen result cannot be changed through its fields either."""
    arr = np.array(arr, dtype=float)
    arr.setflags(write=False)
    return arr


_grid_axis = meanfield.std_array


#: Peak memory of :func:`phase_diagram` per grid point, rounded up from 8.3 kB measured at 200 x 200 (tanh).
_BYTES_PER_POINT = 10e3


def _length(slope: np.ndarray) -> np.ndarray:
    """-1 / ln(slope) elementwise, inf where slope >= 1 - CRITICAL_RTOL."""
    with np.errstate(divide="ignore"):
        inside = np.isfinite(slope) & (slope < 1.0 - meanfield.CRITICAL_RTOL)
        return np.where(inside, -1.0 / np.log(np.where(inside, slope, 0.5)), math.inf)


def _horner(coef_t: np.ndarray, c: np.ndarray) -> np.ndarray:
    """sum_k coef_t[k] c^k for each column (coef_t: (K, m), contiguous rows; c: (m,))."""
    out = coef_t[-1].copy()
    for row in coef_t[-2::-1]:
        np.multiply(out, c, out=out)
        np.add(out, row, out=out)
    return out


def _chaotic_chi_c(act: Activation, w2: np.ndarray, b2: np.ndarray, q: np.ndarray) -> np.ndarray:
    """chi_c at the correlation fixed point c* < 1 for chaotic points (flat arrays, finite q > 0).

    The Mehler series with HERMITE_ORDER terms first; points where its tail could move xi_c by more
    than _XI_RTOL (c* near 1) get a longer series, and any still out of reach the polar 2-D rule.
    """
    slope_c, c, rough = _series_chi_c(act, w2, b2, q, HERMITE_ORDER, 2 * DEFAULT_NODES)
    if rough.any():
        idx = np.flatnonzero(rough)
        # the truncated series under-estimates p, so its c* is left of the true one: a valid start
        slope_c[idx], c[idx], still = _series_chi_c(
            act, w2[idx], b2[idx], q[idx], *_LONG_SERIES, start=c[idx]
        )
        rough[idx] = still
    if rough.any():  # kinked f' (selu, elu) near c* = 1: the series converges slowly there
        slope_c[rough] = _polar_chi_c(act, w2[rough], b2[rough], q[rough], c[rough])
    return slope_c


def _series_chi_c(
    act: Activation, w2: np.ndarray, b2: np.ndarray, q: np.ndarray, order: int, nodes: int,
    *, start: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(chi_c, c*, rough) from the Mehler series truncated at ``order``.

    p(c) = (w2 sum_k a_k^2 c^k + b2) / q is convex on [0, 1] with p(0) >= 0, so Newton on p(c) - c
    from c = 0 (or any ``start`` left of c*) increases monotonically to c*; chi_c = p'(c*). ``rough``
    flags points whose series tail could move xi_c by more than _XI_RTOL.
    """
    a2 = hermite_coefficients(act.fn, q, order=order, nodes=nodes) ** 2  # (m, K)
    coef = np.ascontiguousarray((w2[:, None] * a2 / q[:, None]).T)  # (K, m): rows are powers of c
    coef[0] += b2 / q
    slope_coef = np.ascontiguousarray(coef[1:] * np.arange(1, order)[:, None])
    c = _newton_on_series(coef, slope_coef, np.zeros(q.size) if start is None else start.copy())
    slope_c = _horner(slope_coef, c)
    rough = _series_error(w2, b2, q, a2, c) > _XI_RTOL * slope_c * np.abs(np.log(slope_c))
    return slope_c, c, rough


def _newton_on_series(coef: np.ndarray, slope_coef: np.ndarray, c: np.ndarray) -> np.ndarray:
    """c* per column: Newton on p(c) - c from c (left of c*), which climbs monotonically (p is convex)."""
    active = np.arange(c.size)  # columns still moving; coef/slope hold only those
    for _ in range(_NEWTON_STEPS):
        if not active.size:
            break
        ca = c[active]
        value = _horner(coef, ca) - ca
        slope = _horner(slope_coef, ca) - 1.0
        step = np.where(slope < 0, value / -np.where(slope < 0, slope, -1.0), 0.0)
        c[active] = np.clip(ca + np.maximum(step, 0.0), 0.0, 1.0)
        moving = step > 1e-13  # a step <= 0 is rounding
        if not moving.all():  # copy out the converged columns once, not every step
            active, coef, slope_coef = active[moving], coef[:, moving], slope_coef[:, moving]
    return c


def _series_error(
    w2: np.ndarray, b2: np.ndarray, q: np.ndarray, a2: np.ndarray, c: np.ndarray
) -> np.ndarray:
    """Bound on the truncation error of chi_c: the tail mass R = E f^2 - sum a_k^2 at its worst power.

    For k >= K, k c^(k-1) peaks at k = -1 / ln c (value 1 / (e c |ln c|)) when that exceeds K, and
    at k = K otherwise.
    """
    tail = np.clip((q - b2) / w2 - a2.sum(axis=1), 0.0, None)
    k = a2.shape[1]
    safe = np.clip(c, 1e-300, 1.0 - 1e-16)
    peak_k = -1.0 / np.log(safe)
    worst = np.where(peak_k > k, 1.0 / (math.e * safe * np.abs(np.log(safe))), k * safe ** (k - 1))
    return w2 / q * tail * worst


def _polar_chi_c(act: Activation, w2: np.ndarray, b2: np.ndarray, q: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Polish c* by Newton with the polar (kink-exact) 2-D rule and return chi_c there.

    The series' c* is already close, so three quadratically converging steps leave c* exact to
    rounding; chi_c is taken from the last pass (c moved by ~1e-13 after it).
    """
    for _ in range(3):
        kernel, slope = kernel_and_slope(act.fn, act.derivative, q, c)
        slope = w2 * slope
        c = np.clip(c - ((w2 * kernel + b2) / q - c) / (slope - 1.0), 0.0, 1.0)
    return slope


def _table_brackets(act: Activation, w2: np.ndarray, b2: np.ndarray) -> tuple[np.ndarray, ...]:
    """Bracket q* for every grid point from one table of V(q) = E[f(sqrt(q) z)^2] on a log grid.

    g(q) = w2 V(q) + b2 - q is positive exactly where S_b(q) = (q - b2) / V(q) < w2, and S_b depends
    only on the row's bias. As in :func:`numstab.theory.meanfield.solve_fixed_point` the root wanted
    is the one the map reaches from q0 = 1: the first sign change above q0 where g(q0) > 0, the last
    one below q0 otherwise. Returns (lo, hi, guess, found, grows), each of shape (n_b, n_w).
    """
    second, slope, _ = meanfield.moments(act, _TABLE_Q)
    lo, hi, guess = (np.full(w2.shape, math.nan) for _ in range(3))
    found, grows = np.zeros(w2.shape, dtype=bool), np.zeros(w2.shape, dtype=bool)
    for row in range(w2.shape[0]):
        with np.errstate(divide="ignore"):
            ratio = (_TABLE_Q - b2[row, 0]) / second  # S_b(q), shape (M,)
        positive = ratio[None, :] < w2[row][:, None]  # g(q_i) > 0, shape (n_w, M)
        up, down = ~positive[:, _Q0 + 1 :], positive[:, :_Q0]
        grows[row] = positive[:, _Q0]
        upper = np.where(grows[row], _Q0 + 1 + np.argmax(up, axis=1), _Q0 - np.argmax(down[:, ::-1], axis=1))
        found[row] = np.where(grows[row], up.any(axis=1), down.any(axis=1))
        j, i = np.flatnonzero(found[row]), upper[found[row]]
        lo[row, j], hi[row, j] = _TABLE_Q[i - 1], _TABLE_Q[i]
        frac = (w2[row, j] - ratio[i - 1]) / (ratio[i] - ratio[i - 1])
        guess[row, j] = _TABLE_Q[i - 1] + frac * (_TABLE_Q[i] - _TABLE_Q[i - 1])
    guess[found] = _refine(second, slope, w2[found], b2[found], lo[found], hi[found], guess[found])
    return lo, hi, guess, found, grows


def _refine(
    second: np.ndarray, slope: np.ndarray, w2: np.ndarray, b2: np.ndarray, lo: np.ndarray, hi: np.ndarray,
    q: np.ndarray,
) -> np.ndarray:
    """Newton on a cubic Hermite interpolant of the table: a guess good to ~1e-10, for free."""
    spline = scipy.interpolate.CubicHermiteSpline(_TABLE_Q, second, slope)
    for _ in range(4):
        value = w2 * spline(q) + b2 - q
        q = np.clip(q - value / (w2 * spline(q, 1) - 1.0), lo, hi)
    return q


def _diverges(act: Activation, w2: np.ndarray) -> np.ndarray:
    """w2 lim V(q)/q > 1: the variance grows without bound (False where the limit is not finite)."""
    try:
        limit = float(meanfield.derivative_moment(act, np.array(math.inf)))
    except NumstabError:  # f' is not finite far out: no verdict from the limit
        return np.zeros(w2.shape, dtype=bool)
    return w2 * limit > 1.0 + meanfield.CRITICAL_RTOL


def _grid_fixed_point(act: Activation, w2: np.ndarray, b2: np.ndarray) -> np.ndarray:
    """q* on a (n_b, n_w) grid: table brackets polished by Newton, the rest by the general solver."""
    if act.positively_homogeneous:
        return meanfield.solve_fixed_point(act, w2.ravel(), b2.ravel()).reshape(w2.shape)
    lo, hi, guess, found, grows = _table_brackets(act, w2, b2)
    q = np.full(w2.shape, math.nan)
    gap = meanfield.gap_function(act, w2[found], b2[found])
    q[found] = _solve.bracketed_newton(gap, lo[found], hi[found], guess[found])
    infinite = ~found & grows & _diverges(act, w2)  # no root above q0 in the table, and V(q) ~ q growth
    q[infinite] = math.inf
    rest = ~found & ~infinite
    if rest.any():
        q[rest] = meanfield.solve_fixed_point(act, w2[rest], b2[rest])
    return q


def phase_diagram(
    activation: str | Activation | Callable[[Any], Any], weight_stds: Any, bias_stds: Any
) -> PhaseDiagram:
    """Compute chi_1, xi_c and the critical line on a grid of (sigma_w, sigma_b), all points at once.

    Schoenholz et al. 2017 (Fig. 1; eqs. 7-9). Agrees with :func:`numstab.theory.chi1` and
    :func:`numstab.theory.depth_scales` point by point (the tests check to 1e-6 relative).

    .. math::
        \\chi_1 = \\sigma_w^2 E[f'(\\sqrt{q^*} z)^2],\\qquad
        \\xi_c = -1/\\ln\\big(\\sigma_w^2 E[f'(u_1) f'(u_2)]\\big|_{c^*}\\big)

    Args:
        activation: a registered name, an Activation or a callable.
        weight_stds: sigma_w values (1-D, >= 0, non-empty).
        bias_stds: sigma_b values (1-D, >= 0, non-empty).

    Returns:
        A :class:`PhaseDiagram` whose grids have shape (len(bias_stds), len(weight_stds)).

    Examples:
        >>> pd = phase_diagram("relu", [1.0, 2.0], [0.1])
        >>> pd.chi1.tolist(), pd.critical_weight_stds.round(12).tolist()
        ([[0.5, 2.0]], [1.414213562373])
    """
    act = meanfield.resolve(activation)
    ws, bs = _grid_axis("weight_stds", weight_stds), _grid_axis("bias_stds", bias_stds)
    # measured: ~8 kB per point at peak (quadrature nodes and Hermite coefficients of every point at once)
    check_memory(f"a {bs.size} x {ws.size} grid (bias_stds x weight_stds)",
                 _BYTES_PER_POINT * ws.size * bs.size, "use fewer points on each axis")
    w2, b2 = np.meshgrid(ws**2, bs**2)  # (n_b, n_w)
    q = _grid_fixed_point(act, w2, b2).ravel()
    growth = w2.ravel() * meanfield.derivative_moment(act, q)
    slope_c = growth.copy()  # ordered phase: c* = 1, chi_c = chi_1
    chaotic = np.flatnonzero((growth > 1.0 + meanfield.CRITICAL_RTOL) & np.isfinite(q))
    if chaotic.size:
        slope_c[chaotic] = _chaotic_chi_c(act, w2.ravel()[chaotic], b2.ravel()[chaotic], q[chaotic])
    xi_c = np.where(np.isfinite(q), _length(slope_c), math.inf)
    shape = w2.shape
    return PhaseDiagram(
        activation=act.name,
        weight_stds=_frozen(ws),
        bias_stds=_frozen(bs),
        q_star=_frozen(q.reshape(shape)),
        chi1=_frozen(growth.reshape(shape)),
        xi_c=_frozen(xi_c.reshape(shape)),
        critical_weight_stds=_frozen(meanfield.critical_weight_stds(act, bs)),
    )
