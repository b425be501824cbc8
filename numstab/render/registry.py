"""Which renderer draws which result type: the one place that says it.

Importing this module registers a :class:`numstab.display.Renderer` per result type with
:func:`numstab.display.register`; :mod:`numstab.display` imports it by name the first time a result is
shown, so a result's ``_repr_html_`` / ``__rich__`` reaches its renderer without importing this layer.

Examples:
    >>> from numstab.lab.taylor import TaylorTable
    >>> RENDERERS[TaylorTable].title
    'Which activations look like the identity near 0'
"""

from __future__ import annotations

from numstab import display
from numstab.lab import training as results
from numstab.probe.precision_audit import PrecisionAudit
from numstab.probe.report import FixComparison, Report
from numstab.render import check, lab, precision, theory, training
from numstab.theory.phase import PhaseDiagram
from numstab.theory.summary import TheorySummary

__all__ = ["RENDERERS"]

#: Result type -> its renderer.
RENDERERS: dict[type, display.Renderer] = {
    # the chapter's experiments: a comparison table and a figure each (numstab.render.lab)
    **{
        kind: display.Renderer(view.title, lab.terminal_table, lab.page, lab.add_section, lab.figure)
        for kind, view in lab.VIEWS.items()
    },
    # training on the digits: a table of outcomes and a figure each (numstab.render.training)
    **{
        kind: display.Renderer(
            training.title_of(kind), training.terminal_table, training.page, training.add_section,
            training.figure,
        )
        for kind in (results.DepthSweep, results.LrSweep, results.Remedies, results.TrainabilityMap)
    },
    # theory (numstab.render.theory)
    TheorySummary: display.Renderer("Mean-field theory", theory.summary_table, theory.summary_page),
    PhaseDiagram: display.Renderer(
        "Phase diagram", theory.critical_line_table, theory.phase_diagram_page,
        figure=theory.phase_diagram_figure,
    ),
    # the check (numstab.render.check)
    Report: display.Renderer(
        "numstab check", check.rich_table, check.html_report, figure=check.profile_figure
    ),
    FixComparison: display.Renderer("The fix, re-checked", check.rich_fix, check.fix_page),
    # the low-precision audit (numstab.render.precision)
    PrecisionAudit: display.Renderer(
        "Low-precision audit", precision.rich_audit, precision.html_audit, figure=precision.heatmap
    ),
}

for _kind, _renderer in RENDERERS.items():
    display.register(_kind, _renderer)
