"""What every lab result shares: a short ``repr``, ``str`` as its table, ``to_dict()`` (JSON-ready) and
``_repr_html_`` (notebooks).

The table and the HTML come from the renderer registered for the result's type (:mod:`numstab.display`),
loaded only when the result is printed or a notebook asks for it, so the lab itself never imports rich,
matplotlib or the rendering layer.
"""

from __future__ import annotations

from typing import Any

from numstab import display, jsonio
from numstab._repr import short_repr

__all__ = ["LabResult"]


class LabResult(display.Displayed):
    """Mixin for the frozen result dataclasses of :mod:`numstab.lab` (declared with ``repr=False``).

    ``repr`` is one short line (arrays by their shape); ``str`` is the result's table, the one
    ``numstab lab NAME`` prints, so ``print(result)`` in a plain script shows it (a part of a result, one
    curve or one run, has no table: its ``str`` is its short repr).
    """

    __repr__ = short_repr

    def to_dict(self) -> dict[str, Any]:
        """Return every field as plain Python values (arrays become nested lists)."""
        return jsonio.plain(self)
