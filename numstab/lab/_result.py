"""What every lab result shares: ``to_dict()`` (JSON-ready) and ``_repr_html_`` (notebooks).

The HTML comes from the renderer registered for the result's type (:mod:`numstab.display`), loaded only
when a notebook asks for it, so the lab itself never imports matplotlib or the rendering layer.
"""

from __future__ import annotations

from typing import Any

from numstab import display, jsonio

__all__ = ["LabResult"]


class LabResult:
    """Mixin for the frozen result dataclasses of :mod:`numstab.lab`."""

    def to_dict(self) -> dict[str, Any]:
        """Return every field as plain Python values (arrays become nested lists)."""
        return jsonio.plain(self)

    def _repr_html_(self) -> str:
        return display.html(self)
