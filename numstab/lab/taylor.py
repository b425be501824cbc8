"""The chapter's activation test: does f behave like the identity near 0?

The lecture expands each activation at 0: tanh(x) = x - x^3/3 + ... and relu(x) = x (x >= 0) pass;
sigmoid(x) = 1/2 + x/4 - x^3/48 + ... fails; its fix 4 sigmoid(x) - 2 = x - x^3/12 + ... passes.
:func:`taylor` runs that check (:meth:`numstab.activations.Activation.taylor`) for every activation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from numstab import activations
from numstab.activations import TAYLOR_TOL, TaylorCheck
from numstab.errors import check_positive
from numstab.lab._result import LabResult
from numstab.lab._validate import activation_list
from numstab.lab.comparison import Comparison
from numstab.notation import fmt

__all__ = ["taylor", "TaylorTable", "CHAPTER_VERDICTS", "CHAPTER_TAYLOR"]

#: The chapter's verdicts: True where f(0) = 0 and f'(0) = 1.
CHAPTER_VERDICTS = {"tanh": True, "relu": True, "sigmoid": False, "scaled_sigmoid": True}

#: What the chapter says of each, in its words.
CHAPTER_TAYLOR = {
    "tanh": "passes: x - x^3/3",
    "relu": "passes (x >= 0)",
    "sigmoid": "fails: f(0) = 1/2, f'(0) = 1/4",
    "scaled_sigmoid": "passes: x - x^3/12",
}


@dataclass(frozen=True, repr=False)
class TaylorTable(LabResult):
    """Result of :func:`taylor`.

    Attributes:
        checks: one :class:`numstab.activations.TaylorCheck` (f(0), f'(0-), f'(0+), verdict) per activation.
        chapter: the chapter's verdict for the activations it discusses (name -> identity near 0).
        tol: the tolerance of the check.
    """

    checks: tuple[TaylorCheck, ...]
    chapter: dict[str, bool]
    tol: float

    def verdict(self, name: str) -> bool:
        """Return the measured verdict of activation ``name`` (registry name)."""
        return {c.name: c.identity_near_zero for c in self.checks}[activations.get(name).name]

    def comparisons(self) -> list[Comparison]:
        """One row per activation: f(0), f'(0), the measured verdict beside the chapter's.

        Agreement (activations the chapter discusses): the measured "identity near 0" equals the
        chapter's; any other activation gets the regime "pass" or "fail" and no agreement.

        Examples:
            >>> [(row.quantity, row.verdict) for row in taylor(["sigmoid", "gelu"]).comparisons()]
            [("sigmoid: f(0), f'(0)", 'agrees'), ("gelu: f(0), f'(0)", 'fail')]
        """
        return [
            Comparison(
                f"{c.name}: f(0), f'(0)",
                CHAPTER_TAYLOR.get(c.name, "-"),
                f"f(0) = {fmt(c.f0)}, f'(0) = {fmt(c.df0)}",
                "identity near 0" if c.identity_near_zero else "not the identity",
                regime="pass" if c.identity_near_zero else "fail",
                agrees=self.chapter[c.name] == c.identity_near_zero if c.name in self.chapter else None,
            )
            for c in self.checks
        ]


def taylor(names: Sequence[str] | None = None, *, tol: float = TAYLOR_TOL) -> TaylorTable:
    """Evaluate f(0) and f'(0) for each activation and say whether f(x) ~ x near 0.

    A variance-preserving initialization (Glorot & Bengio 2010) assumes the layer is linear near 0;
    the first-order Taylor expansion makes that precise:

    .. math::
        f(x) = f(0) + f'(0)\\,x + O(x^2) \\approx x \\iff f(0) = 0,\\ f'(0) = 1

    Args:
        names: activation names; None checks every registered activation.
        tol: |f(0)| and |f'(0+) - 1| must be below it.

    Examples:
        >>> t = taylor(["tanh", "relu", "sigmoid", "scaled_sigmoid"])
        >>> [(c.name, c.identity_near_zero) for c in t.checks]
        [('tanh', True), ('relu', True), ('sigmoid', False), ('scaled_sigmoid', True)]
    """
    tol = check_positive("tol", tol)
    acts = activation_list(activations.names() if names is None else names)
    return TaylorTable(checks=tuple(a.taylor(tol) for a in acts), chapter=dict(CHAPTER_VERDICTS), tol=tol)
