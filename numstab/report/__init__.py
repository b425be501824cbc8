"""The report layer: every numstab result ends here, as a terminal table, a figure, HTML or JSON.

Rendering never computes: the lab, theory and check produce result dataclasses, and the modules here
turn them into something to read. Other modules of this package (``lab``, ``tour``, ``theory``,
``check``, ``training``) render one kind of result each, on top of these building blocks:

- :mod:`numstab.report.terminal`: :func:`make_console`, :func:`make_table`, :func:`make_progress`,
  :func:`fmt`;
- :mod:`numstab.report.style`: :func:`figure`, :func:`compare`, the line styles :data:`MEASURED` and
  :data:`THEORY`, :func:`mark_format_limits`;
- :mod:`numstab.report.html`: :class:`HtmlReport` and its :class:`Section`;
- :mod:`numstab.report.jsonio`: :func:`dump` / :func:`load` of the versioned JSON (:data:`SCHEMA`);
- :mod:`numstab.report.files`: :class:`ReportFolder`, :func:`write_files`, :func:`atomic_write_text`.

Names load on first use, so ``import numstab.report.jsonio`` does not pull in matplotlib or rich.

Examples:
    >>> import numstab.report as report
    >>> report.SCHEMA, report.fmt(1e-30)
    ('numstab.report/1', '1.00e-30')
"""

from __future__ import annotations

import importlib
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
    "HtmlReport": "html",
    "Section": "html",
    # JSON and files
    "SCHEMA": "jsonio",
    "dump": "jsonio",
    "load": "jsonio",
    "ReportFolder": "files",
    "write_files": "files",
    "atomic_write_text": "files",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"numstab.report.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'numstab.report' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
