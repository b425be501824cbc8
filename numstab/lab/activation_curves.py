"""The chapter's first figure: sigmoid and its gradient on arange(-8, 8, 0.1), by autograd.

D2L "Numerical Stability and Initialization" computes ``y = torch.sigmoid(x)`` on
``x = torch.arange(-8.0, 8.0, 0.1, requires_grad=True)`` and ``y.backward(torch.ones_like(x))``;
the gradient peaks at 0.25 at x = 0 and is about 3.35e-4 at x = -8: it vanishes for large |x|.
:func:`activation_curves` does the same for any registered activation and says where the gradient
falls under a threshold (the vanishing region), next to the closed-form derivative of the registry.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from numstab.errors import InvalidArgumentError, check_finite, check_positive
from numstab.lab._result import LabResult
from numstab.lab._validate import activation_list
from numstab.lab.comparison import Comparison
from numstab.notation import fmt
from numstab.resources import check_memory

__all__ = ["activation_curves", "ActivationCurves", "Curve", "CHAPTER_CURVES"]

#: The chapter's sigmoid plus the activations the lecture compares it with.
CHAPTER_CURVES = ("sigmoid", "tanh", "relu", "scaled_sigmoid")


@dataclass(frozen=True, repr=False)
class Curve(LabResult):
    """One activation's values and autograd gradient on the grid.

    Attributes:
        name: the activation's registry name.
        values: f(x), shape (n,).
        gradient: df/dx by autograd (float32, as the book), shape (n,).
        closed_form_error: max |autograd - registry derivative| over the grid.
        max_gradient: the largest gradient on the grid.
        argmax: the x where it is reached (first one).
        gradient_at_lo: the gradient at the grid's first point (x = lo).
        gradient_at_end: the gradient at the grid's last point (just below hi).
        vanishing: maximal runs [x_start, x_end] of grid points whose |gradient| < threshold.
        vanishing_fraction: the share of grid points in those runs.
    """

    name: str
    values: np.ndarray
    gradient: np.ndarray
    closed_form_error: float
    max_gradient: float
    argmax: float
    gradient_at_lo: float
    gradient_at_end: float
    vanishing: tuple[tuple[float, float], ...]
    vanishing_fraction: float


@dataclass(frozen=True, repr=False)
class ActivationCurves(LabResult):
    """Result of :func:`activation_curves`.

    Attributes:
        x: the grid ``torch.arange(lo, hi, step)`` as float64 numbers, shape (n,).
        threshold: |gradient| under this counts as vanishing.
        curves: one :class:`Curve` per activation, in the order asked.
    """

    x: np.ndarray
    threshold: float
    curves: tuple[Curve, ...]

    def curve(self, name: str) -> Curve:
        """Return the curve of activation ``name``."""
        for c in self.curves:
            if c.name == name:
                return c
        raise InvalidArgumentError(
            f"no curve {name!r} in this result: it holds {[c.name for c in self.curves]}"
        )

    def comparisons(self) -> list[Comparison]:
        """The chapter's sigmoid claims, then each activation's vanishing region.

        Agreement: the sigmoid's largest gradient is 1/4 at x = 0 (both within 1e-6); its gradient at the
        grid's first point is the closed form sigma(lo)(1 - sigma(lo)) within a relative 1e-3; autograd
        equals the registry's closed-form derivative within 1e-5 everywhere on the grid.

        Examples:
            >>> [row.verdict for row in activation_curves(["sigmoid"]).comparisons()]
            ['agrees', 'agrees', 'agrees']
        """
        rows = _sigmoid_rows(self) if any(c.name == "sigmoid" for c in self.curves) else []
        for c in self.curves:
            region = ", ".join(f"[{a:.1f}, {b:.1f}]" for a, b in c.vanishing) or "none"
            rows.append(
                Comparison(
                    f"{c.name}: |f'| < {fmt(self.threshold)} on", "-", region,
                    f"autograd = closed form to {fmt(c.closed_form_error)}",
                    agrees=c.closed_form_error < 1e-5,
                )
            )
        return rows


def _sigmoid_rows(r: ActivationCurves) -> list[Comparison]:
    """The book's two sigmoid numbers: the peak 1/4 at 0 and ~3.35e-4 at the grid's first point."""
    s, lo = r.curve("sigmoid"), float(r.x[0])
    at_lo = 1 / (1 + math.exp(-lo)) * (1 - 1 / (1 + math.exp(-lo)))  # sigma(lo)(1 - sigma(lo))
    return [
        Comparison(
            "sigmoid' max (at x)",
            "0.25 at x = 0",
            f"{fmt(s.max_gradient)} at x = {round(s.argmax, 6) + 0.0:g}",
            "1/4 at 0",
            agrees=abs(s.max_gradient - 0.25) < 1e-6 and abs(s.argmax) < 1e-6,
        ),
        Comparison(
            f"sigmoid' at x = {lo:g}", "~3.35e-4 (vanishes)", s.gradient_at_lo, at_lo,
            agrees=abs(s.gradient_at_lo - at_lo) < 1e-3 * at_lo,
        ),
    ]


def activation_curves(
    names: Sequence[str] = CHAPTER_CURVES,
    lo: float = -8.0,
    hi: float = 8.0,
    step: float = 0.1,
    *,
    threshold: float = 1e-3,
) -> ActivationCurves:
    """Compute each activation and its gradient by autograd on ``arange(lo, hi, step)``, as the book does.

    The sigmoid's derivative is :math:`\\sigma'(x) = \\sigma(x)(1 - \\sigma(x)) \\le 1/4`, and
    :math:`\\sigma'(\\pm 8) \\approx 3.35\\times 10^{-4}`: a product of many such factors vanishes
    (D2L section "Vanishing Gradients"; Hochreiter et al. 2001).

    .. math::
        \\text{vanishing region} = \\{x : |f'(x)| < \\text{threshold}\\}

    Args:
        names: registered activation names (see :func:`numstab.activations.names`).
        lo: first grid point (the book: -8.0).
        hi: grid end, excluded (the book: 8.0).
        step: grid spacing (the book: 0.1).
        threshold: |gradient| under it counts as vanishing.

    Raises:
        InvalidArgumentError: ``hi <= lo``, ``step <= 0`` or ``threshold <= 0``.
        UnknownNameError: an unregistered activation name.

    Examples:
        >>> r = activation_curves(["sigmoid"])
        >>> c = r.curve("sigmoid")
        >>> round(c.max_gradient, 4), round(abs(c.argmax), 6), f"{c.gradient_at_lo:.3e}"
        (0.25, 0.0, '3.352e-04')
    """
    step = check_positive("step", step)
    threshold = check_positive("threshold", threshold)
    lo, hi = check_finite("lo", lo), check_finite("hi", hi)
    if not hi > lo:
        raise InvalidArgumentError(f"hi must be > lo, got lo={lo!r}, hi={hi!r}: pass e.g. lo=-8.0, hi=8.0")
    acts = activation_list(names)
    points = (hi - lo) / step  # inf when hi - lo overflows
    # per activation its value, gradient and their float64 copies; the float32 and float64 grid
    check_memory(f"step={step!r} on [{lo!r}, {hi!r})", 8.0 * points * (2 + 6 * len(acts)),
                 "pass a larger step or a narrower [lo, hi)")
    x = torch.arange(lo, hi, step)
    curves = tuple(_curve(act, x, threshold) for act in acts)
    return ActivationCurves(x=x.double().numpy(), threshold=threshold, curves=curves)


def _curve(act, x: torch.Tensor, threshold: float) -> Curve:
    xg = x.clone().requires_grad_(True)
    y = act.fn(xg)
    y.backward(torch.ones_like(xg))
    grad = xg.grad.detach().double().numpy()
    closed = np.asarray(act.derivative(x.double().numpy()), dtype=np.float64)
    grid = x.double().numpy()
    mask = np.abs(grad) < threshold
    i = int(np.argmax(grad))
    return Curve(
        name=act.name,
        values=y.detach().double().numpy(),
        gradient=grad,
        closed_form_error=float(np.max(np.abs(grad - closed))),
        max_gradient=float(grad[i]),
        argmax=float(grid[i]),
        gradient_at_lo=float(grad[0]),
        gradient_at_end=float(grad[-1]),
        vanishing=_runs(grid, mask),
        vanishing_fraction=float(mask.mean()),
    )


def _runs(grid: np.ndarray, mask: np.ndarray) -> tuple[tuple[float, float], ...]:
    """Maximal runs of True in ``mask`` as (first x, last x) pairs."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    return tuple((float(grid[a]), float(grid[b - 1])) for a, b in zip(edges[::2], edges[1::2], strict=True))
