"""Render a :class:`numstab.probe.Report` (``numstab check``): rich tables in the terminal, an HTML page.

Rendering only: every number comes from the report. Columns of the layer table:

- ``⟨x²⟩``, ``⟨g²⟩``: second moments of the layer's output and of the gradient with respect to it;
- ``theory``: the mean-field prediction of ``⟨x²⟩`` where the stack matches the theory's assumptions;
- ``w/kaiming``: the weight std over He et al.'s sqrt(2 / fan_in);
- ``dead``: fraction of units at 0 for the whole batch; ``dup``: units identical to another;
- ``fp16 out``: fraction of the output that float16 overflows or flushes; ``nonfinite``: NaN/inf count;
- ``flag``: the kind of the most severe finding naming the layer.

Examples:
    >>> import io, torch
    >>> from numstab.probe import diagnose
    >>> from numstab.render.terminal import make_console
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Tanh())
    >>> console = make_console(file=io.StringIO(), width=120)
    >>> console.print(diagnose(net, torch.ones(8, 4)))
    >>> "verdict: healthy" in console.file.getvalue()
    True
"""

from __future__ import annotations

import numstab.render._rich_import  # noqa: F401  isort: skip  (before rich: keeps the global RNG)

import math
from typing import Any

from rich.console import Group
from rich.padding import Padding
from rich.text import Text

from numstab.probe.report import FixComparison, Report
from numstab.render.formatting import printable
from numstab.render.html import HtmlPage
from numstab.render.terminal import make_table

__all__ = [
    "layer_table", "layer_rows", "compact", "findings_rows", "finding_text", "rich_table", "rich_fix",
    "html_report", "fix_page", "profile_figure", "LAYER_HEADERS",
]

LAYER_HEADERS = ["layer", "kind", "⟨x²⟩", "theory", "⟨g²⟩", "w std", "w/kaiming", "dead", "dup",
                 "fp16 out", "nonfinite", "flag"]
_FINDING_HEADERS = ["severity", "kind", "layers", "evidence", "fix"]


def layer_rows(report: Report) -> list[list[Any]]:
    """One row per layer call, cells in the order of :data:`LAYER_HEADERS`."""
    flags = report.flags()
    return [
        [la.name, la.kind, la.activation_second_moment, la.theory_second_moment, la.grad_second_moment,
         la.weight_std, la.kaiming_ratio, la.dead_fraction, la.duplicate_units,
         la.out_of_range.get("float16"), la.nonfinite, flags.get(la.name, "ok")]
        for la in report.layers
    ]


#: Columns always shown; the others are left out when no layer has a value in them (a narrower table).
_ALWAYS = {"layer", "kind", "⟨x²⟩", "⟨g²⟩", "flag"}


def compact(headers: list[str], rows: list[list[Any]]) -> tuple[list[str], list[list[Any]]]:
    """Drop the optional columns that hold only None or 0.

    Examples:
        >>> compact(["layer", "dup", "flag"], [["0", 0, "ok"], ["1", None, "ok"]])
        (['layer', 'flag'], [['0', 'ok'], ['1', 'ok']])
    """
    keep = [i for i, h in enumerate(headers) if h in _ALWAYS or any(r[i] not in (None, 0, 0.0) for r in rows)]
    return [headers[i] for i in keep], [[r[i] for i in keep] for r in rows]


def layer_table(report: Report) -> Any:
    """The per-layer rich Table (columns with nothing to say left out)."""
    headers, rows = compact(LAYER_HEADERS, layer_rows(report))
    return make_table("layers", headers, rows, verdict_column=len(headers) - 1)


def findings_rows(report: Report) -> list[list[Any]]:
    """One row per finding: severity, kind, layers (first three), evidence, fix."""
    return [[f.severity, f.kind, _few(f.layers), f.message, f.fix] for f in report.findings]


def _few(names: tuple[str, ...], k: int = 3) -> str:
    return ", ".join(names[:k]) + (f" (+{len(names) - k} more)" if len(names) > k else "")


def _headline(report: Report) -> str:
    origin = report.first_nonfinite
    where = f"; first NaN/inf: {origin.module} ({origin.phase})" if origin else ""
    backward = "" if report.backward else "; no backward pass (no parameter requires grad)"
    compiled = "; torch.compile'd model: its original module measured eagerly" if report.compiled else ""
    return f"verdict: {report.verdict}{where}{backward}{compiled}"


def rich_table(report: Report) -> Group:
    """The report as rich renderables: verdict line, layer table, findings table."""
    parts: list[Any] = [Text(printable(_headline(report)), style="bold"), layer_table(report)]
    parts += [finding_text(f) for f in report.findings]
    return Group(*parts)


_SEVERITY_STYLE = {"error": "bold red", "warning": "bold yellow", "info": "bold"}


def finding_text(finding: Any) -> Group:
    """A finding as wrapped text (a table would cut the fix at a narrow terminal): head, evidence, fix."""
    head = Text(f"{finding.severity} {finding.kind}", style=_SEVERITY_STYLE.get(finding.severity, "bold"))
    head.append(printable(f" in {_few(finding.layers)}"), style="")
    fix = Text("fix: ").append(printable(finding.fix), style="bold")
    return Group(head, Padding(Text(printable(finding.message)), (0, 0, 0, 2)), Padding(fix, (0, 0, 0, 2)))


def _summary_rows(comparison: FixComparison) -> list[list[Any]]:
    return [
        [label, rep.verdict, len(rep.findings), rep.forward_gain_log2, rep.backward_gain_log2]
        for label, rep in (("before", comparison.before), ("after", comparison.after))
    ]


_SUMMARY_HEADERS = ["model", "verdict", "findings", "segment log2 ⟨x²⟩ gain", "log2 r²_bottom/r²_top"]


def fix_page(comparison: FixComparison) -> HtmlPage:
    """The page of a fix: the original's report with the before/after section."""
    return html_report(comparison.before, fix=comparison)


def rich_fix(comparison: FixComparison) -> Group:
    """Before and after a fix: a summary table, then the fixed model's report."""
    title = f"{comparison.call} on a copy"
    summary = make_table(title, _SUMMARY_HEADERS, _summary_rows(comparison), verdict_column=1)
    return Group(summary, rich_table(comparison.after))


def html_report(
    report: Report, *, title: str = "numstab check", fix: FixComparison | None = None
) -> HtmlPage:
    """A self-contained HTML page: verdict, findings, a depth profile figure, the layer table, the fix.

    Args:
        report: the report to render.
        title: the page title.
        fix: a :class:`numstab.probe.FixComparison` to show as a before/after section.
    """
    page = HtmlPage(title, subtitle=f"{len(report.layers)} layer calls, one forward and backward pass")
    _verdict_section(page, report)
    if report.layers:
        _profile_section(page, report)
    page.section("layers", "Per-layer statistics").table(LAYER_HEADERS, layer_rows(report))
    if any(la.theory_second_moment is not None for la in report.layers):
        _theory_section(page, report)
    if fix is not None:
        page.section("fix", "The fix, re-checked").text(
            f"{fix.call} applied to a copy of the model, then checked again.",
            label="Fix",
        ).table(_SUMMARY_HEADERS, _summary_rows(fix))
    return page


def _verdict_section(page: HtmlPage, report: Report) -> None:
    section = page.section("verdict", "Verdict")
    badge = "ok" if report.verdict == "healthy" else ("bad" if report.worst_severity == "error" else "warn")
    section.verdict(badge, _headline(report))
    if report.findings:
        section.table(_FINDING_HEADERS, findings_rows(report), caption="Findings, most severe first")
    if report.never_called:
        unused = ", ".join(report.never_called)
        section.text(f"Never called (their weights are used directly by their parent): {unused}")


def _profile_section(page: HtmlPage, report: Report) -> None:
    fig = profile_figure(report)
    alt = (f"Second moments of the outputs and gradients of {len(report.layers)} layer calls on a log scale; "
           f"verdict {report.verdict}.")
    page.section("profile", "Depth profile").figure(
        fig, alt=alt, caption="Solid: measured; dashed: mean-field theory; dotted: float16's range.")


def profile_figure(report: Report) -> Any:
    """The depth profile as a new matplotlib Figure: second moments of outputs and gradients per layer call
    (``report.figure()``)."""
    from numstab.render import style

    fig, ax = style.figure(width=7.0, height=4.0)
    x = list(range(len(report.layers)))
    series = [
        ("⟨x²⟩ measured", [la.activation_second_moment for la in report.layers], style.MEASURED),
        ("⟨g²⟩ measured", [la.grad_second_moment for la in report.layers], style.MEASURED),
        ("⟨x²⟩ theory", [la.theory_second_moment for la in report.layers], style.THEORY),
    ]
    for (name, values, kwargs), color in zip(series, (style.COLORS[0], style.COLORS[1], style.COLORS[0]),
                                             strict=True):
        ys = [_positive(v) for v in values]
        if any(not math.isnan(y) for y in ys):
            ax.plot(x, ys, label=name, color=color, **kwargs)
    style.log_axis(ax)
    style.mark_format_limits(ax, "float16")
    style.label(ax, x="layer call (forward order)", y="second moment (log scale)",
                title="Signal and gradient through depth")
    return fig


def _positive(value: float | None) -> float:
    return value if value is not None and value > 0 and math.isfinite(value) else math.nan


def _theory_section(page: HtmlPage, report: Report) -> None:
    rows = [[la.name, la.activation_second_moment, la.theory_second_moment, la.measured_grad_factor,
             la.theory_grad_factor] for la in report.layers if la.theory_second_moment is not None]
    page.section("theory", "Theory beside measurement").text(
        "For a dense or convolutional layer fed by a registered activation of the previous one, mean-field "
        "theory (Poole et al. 2016) predicts E[h²] = σ_w² E[f(√q z)²] + σ_b² from the previous layer's "
        "measured q, and the gradient factor σ_w² (fan_out/fan_in) E[f'(√q z)²].", label="Theory",
    ).table(["layer", "⟨x²⟩ measured", "⟨x²⟩ theory", "grad factor measured", "grad factor theory"], rows)
