"""One row of a lab result beside the chapter and the theory: the data a table, a notebook or a test reads.

Every lab result has ``comparisons()``, a list of :class:`Comparison`: what the chapter said, what was
measured, what theory predicts, the measured regime and whether they agree. The result computes them
(each ``comparisons()`` docstring states its agreement test); :mod:`numstab.render` only lays them out.

Examples:
    >>> row = Comparison("sigmoid' max", "0.25 at x = 0", 0.25, "1/4 at 0", agrees=True)
    >>> row.verdict, row.agreement, row.cells()[-1]
    ('agrees', 'yes', 'yes')
    >>> Comparison("gelu", "-", 0.5, 0.5, agrees=True).agreement  # the chapter is silent: theory decides
    'theory: yes'

    >>> magnitude_regime(-5.0), magnitude_regime(0.5), magnitude_regime(4.0)
    ('vanishing', 'stable', 'exploding')
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from numstab.messages import phrase, tr

__all__ = [
    "Comparison", "magnitude_regime", "HEADERS", "SILENT", "VANISHING_LOG10", "EXPLODING_LOG10",
]

#: The columns of a comparison table, in the order of :meth:`Comparison.cells`.
HEADERS = ("quantity", "what the chapter says", "measured", "theory", "regime", "agrees with the chapter?")

#: The ``chapter`` cell of a row the chapter says nothing about.
SILENT = "-"

#: A magnitude below 10**VANISHING_LOG10 has vanished, above 10**EXPLODING_LOG10 exploded.
VANISHING_LOG10, EXPLODING_LOG10 = -3.0, 3.0


def magnitude_regime(log10_magnitude: float) -> str:
    """"vanishing" below 1e-3, "exploding" above 1e3, else "stable" (the argument is a log10)."""
    if log10_magnitude < VANISHING_LOG10:
        return "vanishing"
    return "exploding" if log10_magnitude > EXPLODING_LOG10 else "stable"


@dataclass(frozen=True)
class Comparison:
    """One quantity: the chapter's claim, the measurement, the theory, the regime, the agreement.

    Attributes:
        quantity: what is compared, e.g. "sigmoid' max (at x)".
        chapter: what the chapter (book or lecture) said or printed; "-" where it says nothing.
        measured: the measured value: a number, or text where it has several parts.
        theory: the prediction: a number, or text.
        regime: the measured regime or outcome in one word where the row has one ("vanishing",
            "stable", "exploding"; "overflow", "underflow", "subnormal", "ok"; "pass", "fail"), else None.
        agrees: whether the measurement agrees with the chapter's claim, by the test the result's
            ``comparisons()`` states; where the chapter is silent (``chapter == "-"``), whether it agrees
            with the theory. None only for rows that check nothing (the chapter's tables have none).
        note_key: the :mod:`numstab.messages` key of one sentence that explains a disagreement (or a
            surprising agreement); "" for none. :attr:`note` is it in English, :meth:`note_in` in a language.
        note_fields: the sentence's fields, (name, value) pairs.
    """

    quantity: str
    chapter: str
    measured: Any
    theory: Any
    regime: str | None = None
    agrees: bool | None = None
    note_key: str = ""
    note_fields: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.agrees is not None:  # a numpy bool from a comparison becomes a plain one
            object.__setattr__(self, "agrees", bool(self.agrees))

    @property
    def verdict(self) -> str:
        """"agrees" / "disagrees" where a claim is checked, else the regime ("-" without one)."""
        if self.agrees is not None:
            return "agrees" if self.agrees else "disagrees"
        return self.regime or "-"

    def note_in(self, lang: str = "en") -> str:
        """The note in ``lang`` ("" for none); words among its fields are translated too."""
        if not self.note_key:
            return ""
        return tr(self.note_key, lang, **{name: phrase(value, lang) for name, value in self.note_fields})

    @property
    def note(self) -> str:
        """The note in English ("" for none)."""
        return self.note_in("en")

    @property
    def agreement(self) -> str:
        """The last column: "yes" / "no" against the chapter; "theory: yes/no" where it says nothing.

        "-" only for a row that checks nothing.
        """
        if self.agrees is None:
            return "-"
        word = "yes" if self.agrees else "no"
        return f"theory: {word}" if self.chapter == SILENT else word

    def cells(self) -> list[Any]:
        """The row as :data:`HEADERS` orders it: quantity, chapter, measured, theory, regime, agreement."""
        return [self.quantity, self.chapter, self.measured, self.theory, self.regime or "-", self.agreement]

    def to_dict(self) -> dict[str, Any]:
        """The fields, the verdict and the agreement word as plain values."""
        return {**asdict(self), "verdict": self.verdict, "agreement": self.agreement, "note": self.note}
