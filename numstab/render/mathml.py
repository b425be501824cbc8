"""Mathematics in the HTML report as MathML: drawn by the browser itself, no JavaScript, no network.

A formula is written in LaTeX (the notation of the chapter and its docstrings) and converted once, when
the page is written, by `latex2mathml <https://pypi.org/project/latex2mathml/>`_ into a ``<math>``
element that every current browser lays out natively (Chromium since 109, Firefox, Safari). The page's
Content-Security-Policy forbids scripts and fonts from elsewhere, so nothing else could draw it.

Examples:
    >>> mathml(r"\\chi_1 = \\sigma_w^2").startswith('<math xmlns="http://www.w3.org/1998/Math/MathML"')
    True
    >>> 'display="block"' in mathml("x^2", display=True)
    True
"""

from __future__ import annotations

from latex2mathml.converter import convert

from numstab.errors import InvalidArgumentError

__all__ = ["mathml"]


def mathml(latex: str, *, display: bool = False) -> str:
    """Return ``latex`` as a MathML ``<math>`` element (a block of its own when ``display``).

    Args:
        latex: a formula in LaTeX math mode, without ``$``; non-empty.
        display: a block formula on its own line (True) or one inline in text (False).

    Raises:
        InvalidArgumentError: ``latex`` is empty or not text.
    """
    if not isinstance(latex, str) or not latex.strip():
        raise InvalidArgumentError(f"latex must be a non-empty formula, got {latex!r}: e.g. r'\\sigma_w^2'")
    return convert(latex, display="block" if display else "inline")
