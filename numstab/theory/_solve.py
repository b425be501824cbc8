"""Vectorized bracketed root finding shared by the mean-field solvers (internal).

A plain fixed-point iteration q <- V(q) converges arbitrarily slowly near criticality, where the
map's slope at q* tends to 1. These solvers keep a bracket [lo, hi] around the root of a function
that is positive at ``lo`` and negative at ``hi``, take Newton steps where one lands inside the
bracket and bisect otherwise (the "rtsafe" safeguard, Press et al., Numerical Recipes 9.4), for
every element of an array at once.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: Relative tolerance on the root.
RTOL = 1e-14
_MAX_ITER = 200
_QUADRATIC = 1e-8


def _midpoint(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Geometric mean across wide positive brackets (scale-free), arithmetic mean otherwise."""
    wide = (lo > 0) & (hi > 16 * lo)
    return np.where(wide, np.sqrt(np.where(wide, lo * hi, 1.0)), 0.5 * (lo + hi))


def bracketed_newton(
    fun: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    lo: np.ndarray,
    hi: np.ndarray,
    x0: np.ndarray,
) -> np.ndarray:
    """Root of fun in [lo, hi] per element; ``fun(idx, x) -> (value, derivative)`` at elements idx.

    ``fun`` must be >= 0 at lo and <= 0 at hi. All arrays are 1-D and of one length.
    """
    lo, hi = lo.astype(float).copy(), hi.astype(float).copy()
    x = np.clip(x0.astype(float), lo, hi)
    active = np.arange(x.size)
    for _ in range(_MAX_ITER):
        if active.size == 0:
            break
        xa, la, ha = x[active], lo[active], hi[active]
        val, der = fun(active, xa)
        la, ha = np.where(val > 0, xa, la), np.where(val > 0, ha, xa)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = xa - val / der
        inside = np.isfinite(step) & (step > la) & (step < ha)
        new = np.where(inside, step, _midpoint(la, ha))
        # Newton converges quadratically: after an accepted step of relative size 1e-8 the error
        # is ~1e-16, so one more evaluation would change nothing.
        tiny_newton = inside & (np.abs(new - xa) <= _QUADRATIC * np.abs(xa))
        small = (np.abs(new - xa) <= RTOL * np.abs(xa)) | (ha - la <= RTOL * np.abs(ha))
        done = (val == 0) | tiny_newton | small
        x[active] = np.where(val == 0, xa, new)
        lo[active], hi[active] = la, ha
        active = active[~done]
    return x


def bisect(
    fun: Callable[[np.ndarray, np.ndarray], np.ndarray], lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """Root of fun in [lo, hi] per element by bisection; ``fun(idx, x)`` is <= 0 at lo, > 0 at hi."""
    lo, hi = lo.astype(float).copy(), hi.astype(float).copy()
    active = np.arange(lo.size)
    for _ in range(_MAX_ITER):
        if active.size == 0:
            break
        mid = _midpoint(lo[active], hi[active])
        positive = fun(active, mid) > 0
        hi[active] = np.where(positive, mid, hi[active])
        lo[active] = np.where(positive, lo[active], mid)
        converged = hi[active] - lo[active] <= RTOL * np.abs(hi[active])
        active = active[~converged]
    return 0.5 * (lo + hi)
