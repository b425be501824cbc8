"""Render the theory's results: the summary of one initialization as a table, the phase diagram as a figure.

Rendering only: every number shown was computed in :mod:`numstab.theory`.

Examples:
    >>> from numstab import theory
    >>> headers, rows = summary_rows(theory.summary("relu", 1.0, 0.0))
    >>> headers, rows[2][:2]
    (['quantity', 'value', 'meaning'], ['chi_1', 0.5])
"""

from __future__ import annotations

import numstab.render._rich_import  # noqa: F401  isort: skip  (before rich: keeps the global RNG)

import math
from typing import Any

import numpy as np
from rich.table import Table

from numstab.render import style
from numstab.render.formatting import fmt
from numstab.render.html import HtmlPage
from numstab.render.terminal import make_table

__all__ = [
    "summary_rows", "summary_table", "summary_html", "summary_page", "phase_diagram_figure",
    "critical_line_table", "phase_diagram_html", "phase_diagram_page",
    "phase_grid", "PHASE_MEANING",
]

#: Top of the xi_c colour scale (layers); deeper is shown in the top colour.
_XI_CAP = 1000.0

#: What each phase means for training, as the table says it.
PHASE_MEANING = {
    "ordered": "gradients vanish geometrically",
    "critical": "gradients neither vanish nor explode",
    "chaotic": "gradients explode geometrically",
}


def summary_rows(summary: Any) -> tuple[list[str], list[list[Any]]]:
    """(headers, rows) of a :class:`numstab.theory.TheorySummary`: quantity, value, what it means.

    Examples:
        >>> from numstab import theory
        >>> summary_rows(theory.summary("tanh", 0.5, 0.0))[1][-1][:2]
        ['phase', 'ordered']
    """
    s = summary
    rows: list[list[Any]] = [
        ["critical weight_std", s.critical_weight_std, "chi_1 = 1 at this bias_std"],
        ["q*", s.q_star, "fixed point of the pre-activation variance"],
        ["chi_1", s.chi1, "squared-gradient growth per layer"],
        ["xi_q", s.xi_q, "layers for the variance to settle"],
        ["xi_c", s.xi_c, "layers two inputs stay distinguishable"],
        ["trainable depth", s.trainable_depth, "about 6 xi_c"],
        ["phase", s.phase, PHASE_MEANING[s.phase]],
    ]
    return ["quantity", "value", "meaning"], rows


#: Significant digits of the theory's numbers: they are meant to be copied into an init (1.327, not 1.33).
DIGITS = 4


def _title(summary: Any) -> str:
    return (
        f"{summary.activation}: weight_std = {fmt(summary.weight_std, digits=DIGITS)}, "
        f"bias_std = {fmt(summary.bias_std, digits=DIGITS)}"
    )


def summary_table(summary: Any) -> Table:
    """A rich table of a :class:`numstab.theory.TheorySummary` (numbers via :func:`fmt`).

    Examples:
        >>> import io
        >>> from numstab import theory
        >>> from numstab.render.terminal import make_console
        >>> console = make_console(file=io.StringIO(), width=80)
        >>> console.print(summary_table(theory.summary("relu", 1.0, 0.0)))
        >>> "chi_1" in console.file.getvalue()
        True
    """
    headers, rows = summary_rows(summary)
    return make_table(_title(summary), headers, rows, digits=DIGITS)


def summary_html(summary: Any) -> str:
    """An HTML fragment (no <html>/<head>) of a :class:`numstab.theory.TheorySummary`, for notebooks.

    Examples:
        >>> from numstab import theory
        >>> "<table" in summary_html(theory.summary("tanh", 1.2, 0.1))
        True
    """
    return summary_page(summary).render(fragment=True)


def summary_page(summary: Any) -> HtmlPage:
    """A page of a :class:`numstab.theory.TheorySummary`: the table and the phase (``numstab theory --html``).

    Examples:
        >>> from numstab import theory
        >>> summary_page(theory.summary("relu")).render().startswith("<!DOCTYPE html>")
        True
    """
    headers, rows = summary_rows(summary)
    rows = [[fmt(v, digits=DIGITS) if isinstance(v, float) else v for v in row] for row in rows]
    report = HtmlPage("numstab theory", subtitle=_title(summary))
    section = report.section("theory", "Mean-field theory at this initialization")
    section.table(headers, rows, caption="Poole et al. 2016; Schoenholz et al. 2017")
    kind = "ok" if summary.phase == "critical" else "warn"
    section.verdict(kind, f"{summary.phase}: {PHASE_MEANING[summary.phase]}")
    return report


def phase_diagram_figure(diagram: Any, *, point: tuple[float, float] | None = None) -> Any:
    """Draw xi_c as a heat map over (weight_std, bias_std) with the critical line chi_1 = 1 and a point.

    Schoenholz et al. 2017, Fig. 1. xi_c is on a log colour scale capped at 1000 layers; it is infinite on
    the critical line (drawn from the solved ``critical_weight_stds``, with the chi_1 = 1 contour of the
    grid dashed).

    Args:
        diagram: a :class:`numstab.theory.PhaseDiagram`.
        point: (weight_std, bias_std) to mark, e.g. the user's initialization.

    Returns:
        A matplotlib Figure (Agg, no pyplot state).

    Examples:
        >>> import numpy as np
        >>> from numstab import theory
        >>> fig = phase_diagram_figure(theory.phase_diagram("tanh", np.linspace(0.5, 3, 20), [0.0, 0.5]))
        >>> fig.axes[0].get_xlabel()
        'weight_std (sigma_w)'
    """
    from matplotlib.colors import LogNorm

    fig, ax = style.figure(width=6.4, height=4.4)
    xi = np.where(np.isfinite(diagram.xi_c), diagram.xi_c, np.nan)
    finite = xi[np.isfinite(xi) & (xi > 0)]
    # near the critical line xi_c diverges: cap the colour scale so the rest of the plane stays readable
    top = min(max(finite.max(), 1.0), _XI_CAP) if finite.size else _XI_CAP
    norm = LogNorm(vmin=min(max(finite.min(), 0.1), top / 10), vmax=top) if finite.size else None
    mesh = ax.pcolormesh(
        diagram.weight_stds, diagram.bias_stds, xi, shading="nearest", cmap="viridis", norm=norm
    )
    fig.colorbar(mesh, ax=ax, label="xi_c (layers, log scale)", extend="max")
    if diagram.chi1.shape[0] > 1 and diagram.chi1.shape[1] > 1:
        ax.contour(diagram.weight_stds, diagram.bias_stds, diagram.chi1, levels=[1.0], colors="white",
                   linestyles="--", linewidths=1.0)
    ax.plot(diagram.critical_weight_stds, diagram.bias_stds, color="white", linewidth=2.0, label="chi_1 = 1")
    if point is not None:
        ax.plot([point[0]], [point[1]], marker="*", markersize=14, color="#D55E00", linestyle="none",
                markeredgecolor="black", label="this initialization")
    ax.set_xlim(diagram.weight_stds.min(), diagram.weight_stds.max())
    ax.set_ylim(diagram.bias_stds.min(), diagram.bias_stds.max())
    style.label(ax, x="weight_std (sigma_w)", y="bias_std (sigma_b)",
                title=f"{diagram.activation}: ordered (left) | chaotic (right) of chi_1 = 1")
    return fig


def _critical_line(diagram: Any) -> list[list[float]]:
    line = np.column_stack([diagram.bias_stds, diagram.critical_weight_stds]).tolist()
    return line[:: max(1, len(line) // 10)]  # ~10 rows


def critical_line_table(diagram: Any) -> Table:
    """A rich table of the critical line of a :class:`numstab.theory.PhaseDiagram` (about ten rows).

    Examples:
        >>> from numstab import theory
        >>> critical_line_table(theory.phase_diagram("relu", [1.0, 2.0], [0.0])).row_count
        1
    """
    title = (
        f"{diagram.activation}: chi_1 = 1 line of a {len(diagram.bias_stds)} x {len(diagram.weight_stds)} "
        "phase diagram"
    )
    return make_table(title, ["bias_std", "critical weight_std"], _critical_line(diagram), digits=DIGITS)


def phase_diagram_html(diagram: Any) -> str:
    """An HTML fragment with the phase-diagram figure and its critical line as a table, for notebooks.

    Examples:
        >>> from numstab import theory
        >>> html = phase_diagram_html(theory.phase_diagram("relu", [1.0, 2.0], [0.0, 0.5]))
        >>> "<img" in html and "critical weight_std" in html
        True
    """
    return phase_diagram_page(diagram).render(fragment=True)


def phase_diagram_page(diagram: Any) -> HtmlPage:
    """A page with the phase-diagram figure and its critical line as a table (about ten rows)."""
    report = HtmlPage("numstab theory", subtitle=f"phase diagram of {diagram.activation}")
    section = report.section("phase-diagram", "Order and chaos (Schoenholz et al. 2017)")
    section.figure(
        phase_diagram_figure(diagram),
        alt=f"Heat map of the correlation depth scale xi_c of {diagram.activation} over weight_std and "
        f"bias_std, with the critical line chi_1 = 1 between the ordered and the chaotic phase.",
    )
    section.table(["bias_std", "critical weight_std"], _critical_line(diagram))
    return report


def phase_grid(
    weight_std: float, bias_std: float, critical: float, *, points: int = 200
) -> tuple[np.ndarray, np.ndarray]:
    """A points x points grid of (weight_stds, bias_stds) holding the point and twice the critical value.

    Examples:
        >>> w, b = phase_grid(1.0, 0.1, math.sqrt(2))
        >>> w.shape, b.shape, float(w[-1]) >= 2 * math.sqrt(2), float(b[-1])
        ((200,), (200,), True, 1.0)
    """
    top = max(4.0, 1.5 * weight_std, 2.0 * (critical if math.isfinite(critical) else 0.0))
    return np.linspace(0.05, top, points), np.linspace(0.0, max(1.0, 1.5 * bias_std), points)
