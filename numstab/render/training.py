"""Render the training lab's results: terminal tables and HTML sections with figures.

Rendering only: every number shown was computed by :mod:`numstab.lab.training`. Figures follow
:mod:`numstab.render.style` (measurement solid, theory dashed, log axes for magnitudes).

Examples:
    >>> from numstab.lab import training
    >>> r = training.depth_sweep([2], [training.Setup("tanh", "xavier_normal")], steps=5, seeds=[0])
    >>> headers, rows = table_rows(r)
    >>> headers
    ['setup', 'depth', 'accuracy', 'bottom Δ', 'fails at', 'verdict']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from numstab.lab import training
from numstab.lab.training import DepthSweep, LrSweep, Remedies, TrainabilityMap
from numstab.messages import phrase, tr
from numstab.render import style
from numstab.render.html import HtmlPage, Section

__all__ = ["table_rows", "terminal_table", "add_section", "figure", "code", "page", "title_of", "columns"]


def _summary(o: training.Outcome) -> list[Any]:
    """Mean test accuracy, mean relative change of the input layer, failures, verdict (over seeds)."""
    failures = f"{o.first_failure} ({o.failed}/{o.runs})" if o.first_failure is not None else "-"
    return [o.accuracy, o.bottom_change, failures, o.verdict]


#: Short enough that the tables fit 80 columns. "bottom Δ": ||θ_end − θ_0|| / ||θ_0|| of the input layer;
#: "fails at": the first step with inf/NaN (and how many seeds failed).
_SUMMARY_HEADERS = ["accuracy", "bottom Δ", "fails at", "verdict"]


def _sweep_rows(result: DepthSweep | LrSweep, key: str, values: tuple) -> tuple[list[str], list[list[Any]]]:
    """One row per setup and swept value (``key`` is the Run field swept: depth or lr)."""
    rows = [[s.label, v, *_summary(result.outcome(s.label, v))] for s in result.setups for v in values]
    return ["setup", "depth" if key == "depth" else "lr", *_SUMMARY_HEADERS], rows


def _depth_rows(r: DepthSweep) -> tuple[list[str], list[list[Any]]]:
    return _sweep_rows(r, "depth", r.depths)


def _lr_rows(r: LrSweep) -> tuple[list[str], list[list[Any]]]:
    return _sweep_rows(r, "lr", r.lrs)


def _remedy_rows(r: Remedies) -> tuple[list[str], list[list[Any]]]:
    rows = []
    for name in r.remedies:
        acc, *rest = _summary(r.outcome(name))
        rows.append([name, acc, r.effect(name), *rest])
    return ["remedy", "accuracy", "effect", *_SUMMARY_HEADERS[1:]], rows


def _map_rows(m: TrainabilityMap) -> tuple[list[str], list[list[Any]]]:
    rows = []
    for j, (deepest, verdict) in enumerate(zip(m.deepest_trained(), m.verdicts(), strict=True)):
        best = max(row[j] for row in m.accuracy)
        cells = [m.weight_stds[j], m.xi_c[j], m.boundary[j], "-" if deepest is None else deepest, best]
        rows.append([*cells, verdict])
    return ["sigma_w", "xi_c", "6 xi_c", "deepest trained", "best accuracy", "verdict"], rows


_ROWS: dict[type, Callable[[Any], tuple[list[str], list[list[Any]]]]] = {
    DepthSweep: _depth_rows,
    LrSweep: _lr_rows,
    Remedies: _remedy_rows,
    TrainabilityMap: _map_rows,
}

_TITLES = {kind: tr(f"title.{anchor}") for kind, anchor in {
    DepthSweep: "training-depth", LrSweep: "training-lr", Remedies: "training-remedies",
    TrainabilityMap: "training-map",
}.items()}  # fmt: skip

_ANCHORS = {DepthSweep: "training-depth", LrSweep: "training-lr", Remedies: "training-remedies",
            TrainabilityMap: "training-map"}  # fmt: skip


def table_rows(result: Any) -> tuple[list[str], list[list[Any]]]:
    """Headers and rows of a training result's table (the last column is a verdict word)."""
    return _ROWS[type(result)](result)


def terminal_table(result: Any, *, lang: str = "en") -> Any:
    """The result's table as a rich Table (print it on :func:`numstab.render.terminal.make_console`)."""
    from numstab.render.terminal import make_table

    headers, rows = _translated(result, lang)
    title = tr(f"title.{_ANCHORS[type(result)]}", lang)
    return make_table(title, headers, rows, verdict_column=len(headers) - 1)


def _translated(result: Any, lang: str) -> tuple[list[str], list[list[Any]]]:
    """The table with its verdict words in ``lang`` (the headers are symbols and stay)."""
    headers, rows = table_rows(result)
    return headers, [[phrase(cell, lang) for cell in row] for row in rows]


# ---------------------------------------------------------------------------------------------
# Figures.


def _depth_figure(r: DepthSweep) -> tuple[Any, str, str]:
    fig, axes = style.figure(2, 2, width=9.0, height=6.6)
    (ax_acc, ax_loss), (ax_grad, ax_key) = axes
    deepest = max(r.depths)
    for s in r.setups:
        ax_acc.plot(r.depths, [r.accuracy(s.label, d) for d in r.depths], label=s.label, **style.MEASURED)
        run = training.select(r.runs, label=s.label, depth=deepest)[0]
        ax_loss.plot(r.record_steps, _positive(run.losses), label=s.label, **style.MEASURED)
        ax_grad.plot(range(deepest + 1), _positive(run.grad_norms[0]), label=s.label, **style.MEASURED)
    ax_acc.axhline(0.1, color="#7f7f7f", linestyle=":", label="chance")
    style.label(ax_acc, x="hidden layers", y="test accuracy", title="after training")
    style.label(
        style.log_axis(ax_loss), x="step", y="minibatch loss (log)", title=f"depth {deepest}", legend=False
    )
    style.label(style.log_axis(ax_grad), x="layer (0 = input)", y="gradient norm (log)", title="at step 0")
    ax_grad.get_legend().remove()
    ax_acc.get_legend().remove()
    ax_key.axis("off")  # the fourth panel holds the legend, in a type size that reads at report width
    ax_key.legend(*ax_acc.get_legend_handles_labels(), loc="center", fontsize=11, title="setup")
    alt = (
        "Three panels: test accuracy against depth for each activation/init pair; the training loss over "
        "steps at the deepest depth; per-layer gradient norms at step 0 (small at layer 0: vanishing)."
    )
    return fig, alt, "Missing points are inf/NaN (a diverged run) or exactly 0."


def _positive(values: Any) -> np.ndarray:
    """Values for a log axis: non-finite and non-positive ones become gaps."""
    v = np.asarray(values, dtype=float)
    return np.where(np.isfinite(v) & (v > 0), v, np.nan)


def _lr_figure(r: LrSweep) -> tuple[Any, str, str]:
    fig, ax = style.figure()
    for s in r.setups:
        ax.plot(r.lrs, [r.accuracy(s.label, lr) for lr in r.lrs], label=s.label, **style.MEASURED)
        bad = [lr for lr in r.lrs if r.outcome(s.label, lr).verdict == "diverged"]
        ax.plot(bad, [0.0] * len(bad), "x", color="#D55E00", markersize=8)
    ax.axhline(training.TRAINED_ACCURACY, color="#7f7f7f", linestyle=":", label="trained threshold")
    style.log_axis(ax, "x")
    style.label(ax, x="learning rate (log)", y="test accuracy", title=f"depth {r.depth}; x: diverged")
    return fig, "Test accuracy against learning rate for a poor and a good init; crosses mark divergence.", ""


def _remedy_figure(r: Remedies) -> tuple[Any, str, str]:
    fig, ax = style.figure()
    acc = [r.accuracy(n) for n in r.remedies]
    ax.bar(
        range(len(acc)),
        acc,
        color=[style.COLORS[0] if a >= training.TRAINED_ACCURACY else "#999999" for a in acc],
    )
    ax.set_xticks(range(len(acc)), r.remedies, rotation=30, ha="right")
    ax.axhline(0.1, color="#7f7f7f", linestyle=":")
    style.label(ax, x="remedy", y="test accuracy", title=f"{r.base.label}, depth {r.depth}")
    return fig, "Test accuracy of the deep base network and of each remedy.", "Blue: trained; grey: did not."


def _map_figure(m: TrainabilityMap) -> tuple[Any, str, str]:
    fig, ax = style.figure()
    grid = np.asarray(m.accuracy, dtype=float)
    image = ax.pcolormesh(_edges(m.weight_stds), _edges(m.depths), grid, vmin=0.0, vmax=1.0, cmap="viridis")
    fig.colorbar(image, ax=ax, label="test accuracy")
    ax.grid(False)  # grid lines would cut the cells
    ax.plot(m.weight_stds, np.minimum(m.boundary, max(m.depths) * 1.5), color="white", **style.THEORY,
            label="6 ξ_c (theory)")  # fmt: skip
    ax.set_ylim(_edges(m.depths)[0], _edges(m.depths)[-1])
    style.label(ax, x="σ_w", y="hidden layers", title=f"{m.activation}, σ_b² = {m.bias_std**2:.3g}")
    alt = "Heat map of test accuracy over depth and weight scale with the dashed 6 xi_c curve of the theory."
    return (
        fig,
        alt,
        "Trained models (bright) should lie below the dashed 6 ξ_c curve (Schoenholz et al. 2017).",
    )


def _edges(centers: tuple[float, ...]) -> list[float]:
    c = list(map(float, centers))
    if len(c) == 1:
        return [c[0] - 0.5, c[0] + 0.5]
    mids = [(a + b) / 2 for a, b in zip(c[:-1], c[1:], strict=True)]
    return [c[0] - (mids[0] - c[0]), *mids, c[-1] + (c[-1] - mids[-1])]


_FIGURES = {
    DepthSweep: _depth_figure,
    LrSweep: _lr_figure,
    Remedies: _remedy_figure,
    TrainabilityMap: _map_figure,
}

#: The training tables' columns explained, by header (:mod:`numstab.messages` keys ``def.*``).
_COLUMN_KEYS = {
    "accuracy": "def.accuracy", "bottom Δ": "def.bottom", "fails at": "def.fails", "effect": "def.effect",
    "xi_c": "def.xi", "6 xi_c": "def.6xi", "deepest trained": "def.deepest", "verdict": "def.verdict",
}  # fmt: skip


def columns(headers: list[str], lang: str = "en") -> list[tuple[str, str]]:
    """What each of ``headers`` means (those that need saying), in ``lang``."""
    trained = training.TRAINED_ACCURACY
    return [(h, tr(_COLUMN_KEYS[h], lang, accuracy=trained)) for h in headers if h in _COLUMN_KEYS]


_CODE = {
    DepthSweep: "r = training.depth_sweep([2, 10], steps=200, seeds=[0])",
    LrSweep: "r = training.lr_sweep(steps=200, seeds=[0])",
    Remedies: "r = training.remedies(['residual', 'scaled_sigmoid', 'layernorm', 'clip'], depth=15, "
    "steps=200, seeds=[0])",
    TrainabilityMap: "r = training.trainability_map((4, 12, 32), (0.5, 1.0, 1.25, 2.0, 4.0), steps=100, "
    "seeds=[0], lr=0.03)",
}


def code(result: Any, call: str | None = None) -> str:
    """The Python that reproduces a training section (``call``: the call that made it)."""
    call = call or _CODE[type(result)]
    return f"from numstab.lab import training\n\n{call}\nprint(r)     # the table\nr.figure()   # the figure"


#: The trainability map's theory (Schoenholz et al. 2017), in LaTeX.
_MAP_THEORY = (
    r"L \lesssim 6\,\xi_c,\qquad \xi_c^{-1} = -\ln\Big(\sigma_w^2 \int \mathcal{D}z_1"
    r"\mathcal{D}z_2\,\phi'(u_1)\,\phi'(u_2)\Big)"
)


def add_section(
    report: HtmlPage, result: Any, *, anchor: str | None = None, call: str | None = None, lang: str = "en"
) -> Section:
    """Add the result as a section of ``report``: the chapter's claim, the table, its columns, the figure."""
    kind = type(result)
    key = _ANCHORS[kind]
    section = report.section(anchor or key, tr(f"title.{key}", lang))
    section.text(tr(f"chapter.{key}", lang), label=tr("label.chapter", lang))
    if kind is TrainabilityMap:
        section.math(_MAP_THEORY, label=tr("label.theory", lang))
    headers, rows = _translated(result, lang)
    section.table(headers, rows, verdict_column=len(headers) - 1)
    section.definitions(columns(headers, lang), label=tr("label.columns", lang))
    fig, alt, caption = _FIGURES[kind](result)
    section.figure(fig, alt=alt, caption=caption)
    if kind is Remedies and "lars" not in result.remedies:
        section.text(tr("lars.link", lang), label=tr("label.exercise4", lang))
    return section.text(tr("label.reproduce", lang) + ":").code(code(result, call))


def figure(result: Any) -> Any:
    """The result's figure as a new matplotlib Figure (``result.figure()``)."""
    return _FIGURES[type(result)](result)[0]


def page(result: Any, *, lang: str = "en") -> HtmlPage:
    """The result alone on a page (``_repr_html_`` in notebooks)."""
    report = HtmlPage(f"numstab lab training: {tr(f'title.{_ANCHORS[type(result)]}', lang)}", lang=lang)
    add_section(report, result, lang=lang)
    return report


def title_of(kind: type) -> str:
    """The table's and the section's title of a training result type."""
    return _TITLES[kind]
