"""The rendering layer: every numstab result ends here, as a terminal table, a figure or HTML.

Rendering never computes: the lab, theory and check produce result dataclasses that carry their own
comparisons and verdicts, and the modules here lay them out. :mod:`numstab.render.registry` says, in one
place, which renderer draws which result type; a result's ``_repr_html_`` / ``__rich__`` reaches it
through :mod:`numstab.display`. One module per kind of result (``lab``, ``training``, ``theory``,
``check``), on top of these building blocks:

- :mod:`numstab.render.terminal`: :func:`make_console`, :func:`make_table`, :func:`make_progress`,
  :func:`fmt`;
- :mod:`numstab.render.style`: :func:`figure`, :func:`compare`, the line styles :data:`MEASURED` and
  :data:`THEORY`, :func:`mark_format_limits`;
- :mod:`numstab.render.html`: :class:`HtmlPage` and its :class:`Section`.

JSON is not rendering: it lives below, in :mod:`numstab.jsonio` (and files in :mod:`numstab.files`).
Names load on first use, so ``import numstab.render`` does not pull in matplotlib or rich.

Examples:
    >>> import numstab.render as render
    >>> render.fmt(1e-30)
    '1.00e-30'
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

_EXPORTS = {
    # terminal: rich tables, consoles, progress bars
    "make_console": "terminal",
    "make_table": "terminal",
    "make_progress": "terminal",
    "fmt": "formatting",
    # figures: one style
    "figure": "style",
    "compare": "style",
    "label": "style",
    "log_axis": "style",
    "mark_format_limits": "style",
    "MEASURED": "style",
    "THEORY": "style",
    # HTML
    "HtmlPage": "html",
    "Section": "html",
}

#: Names that moved (below the rendering layer, or renamed): old name -> (module, new name).
_MOVED = {
    "SCHEMA": ("numstab.jsonio", "SCHEMA"),
    "dump": ("numstab.jsonio", "dump"),
    "load": ("numstab.jsonio", "load"),
    "ReportFolder": ("numstab.files", "ReportFolder"),
    "write_files": ("numstab.files", "write_files"),
    "atomic_write_text": ("numstab.files", "atomic_write_text"),
    "HtmlReport": ("numstab.render.html", "HtmlPage"),
    # modules that lived in numstab.report (``from numstab.report import jsonio``)
    "jsonio": ("numstab", "jsonio"),
    "files": ("numstab", "files"),
    "tour": ("numstab", "tour"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"numstab.render.{_EXPORTS[name]}"), name)
    if name in _MOVED:
        module, new = _MOVED[name]
        warnings.warn(f"numstab.render.{name} is now {module}.{new}", FutureWarning, stacklevel=2)
        return getattr(importlib.import_module(module), new)
    raise AttributeError(f"module 'numstab.render' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
