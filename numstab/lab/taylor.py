"""The chapter's activation test: does f behave like the identity near 0?

The lecture expands each activation at 0: tanh(x) = x - x^3/3 + ... and relu(x) = x (x >= 0) pass;
sigmoid(x) = 1/2 + x/4 - x^3/48 + ... fails; its fix 4 sigmoid(x) - 2 = x - x^3/12 + ... passes.
:func:`taylor` runs that check (:meth:`numstab.activations.Activation.taylor`) for every activation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from numstab import activations
from numstab.activations import TAYLOR_TOL, TaylorCheck
from numstab.errors import check_positive
from numstab.lab._result import LabResult
from numstab.lab._validate import activation_list
from numstab.lab.comparison import SILENT, Comparison
from numstab.notation import fmt

__all__ = ["taylor", "TaylorTable", "CHAPTER_VERDICTS", "CHAPTER_TAYLOR", "CLOSED_FORMS"]

#: The chapter's verdicts: True where f(0) = 0 and f'(0) = 1.
CHAPTER_VERDICTS = {"tanh": True, "relu": True, "sigmoid": False, "scaled_sigmoid": True}

#: What the chapter says of each, in its words.
CHAPTER_TAYLOR = {
    "tanh": "passes: x - x^3/3",
    "relu": "passes (x >= 0)",
    "sigmoid": "fails: f(0) = 1/2, f'(0) = 1/4",
    "scaled_sigmoid": "passes: x - x^3/12",
}

_SQRT_PI = math.sqrt(math.pi)

#: Closed forms of f(0) and f'(0+) (as written, as a number) for the registered activations: the theory
#: column of the activations the chapter does not discuss. SELU's lambda is Klambauer et al. (2017)'s.
CLOSED_FORMS: dict[str, tuple[str, float, str, float]] = {
    "identity": ("0", 0.0, "1", 1.0),
    "relu": ("0", 0.0, "1 (right)", 1.0),
    "leaky_relu": ("0", 0.0, "1 (right)", 1.0),
    "sigmoid": ("1/2", 0.5, "1/4", 0.25),
    "tanh": ("0", 0.0, "1", 1.0),
    "scaled_sigmoid": ("0", 0.0, "1", 1.0),
    "elu": ("0", 0.0, "1", 1.0),
    "selu": ("0", 0.0, "lambda = 1.0507", 1.0507009873554804934193349852946),
    "gelu": ("0", 0.0, "Phi(0) = 1/2", 0.5),
    "gelu_tanh": ("0", 0.0, "1/2", 0.5),
    "silu": ("0", 0.0, "sigmoid(0) = 1/2", 0.5),
    "softplus": ("ln 2", math.log(2.0), "1/2", 0.5),
    "erf": ("0", 0.0, "2/sqrt(pi)", 2.0 / _SQRT_PI),
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
        """One row per activation: f(0), f'(0), "≈ identity near 0: yes/no" beside the chapter's answer.

        Agreement (activations the chapter discusses): the measured answer is the chapter's. For the
        others the chapter is silent, and the measured f(0), f'(0+) must equal the closed forms of
        :data:`CLOSED_FORMS` within the check's tolerance (an activation outside that table is checked
        against nothing: "-"). An activation that is not the identity near 0 is no failure: it only
        means a variance-preserving init needs its own gain.

        Examples:
            >>> rows = taylor(["sigmoid", "gelu"]).comparisons()
            >>> [(row.quantity, row.regime, row.agreement) for row in rows][1]
            ('gelu', '≈ identity near 0: no', 'theory: yes')
        """
        return [self._row(c) for c in self.checks]

    def _row(self, c: TaylorCheck) -> Comparison:
        closed = CLOSED_FORMS.get(c.name)
        if c.name in self.chapter:
            agrees: bool | None = self.chapter[c.name] == c.identity_near_zero
        elif closed is not None:
            agrees = abs(c.f0 - closed[1]) < self.tol and abs(c.df0 - closed[3]) < self.tol
        else:
            agrees = None
        theory = f"f(0) = {closed[0]}, f'(0) = {closed[2]}" if closed else "-"
        fields = (("name", c.name), ("claim", CHAPTER_TAYLOR.get(c.name, theory)), ("f0", fmt(c.f0)),
                  ("df0", fmt(c.df0)))  # fmt: skip
        return Comparison(
            c.name,
            CHAPTER_TAYLOR.get(c.name, SILENT),
            f"f(0) = {fmt(c.f0)}, f'(0) = {fmt(c.df0)}",
            theory,
            regime=f"≈ identity near 0: {'yes' if c.identity_near_zero else 'no'}",
            agrees=agrees,
            note_key="note.taylor" if agrees is False else "",
            note_fields=fields if agrees is False else (),
        )


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
