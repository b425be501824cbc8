"""Draw the lab's results: a table of their comparisons (the chapter, measured, theory, verdict), a figure.

Rendering only: every number and every verdict comes from the result's ``comparisons()`` (computed in
:mod:`numstab.lab`). Figures follow :mod:`numstab.render.style` (measurement solid, theory dashed, log
axes for magnitudes). :data:`VIEWS` gives each result type its title, the chapter's paragraph and its
figure; :mod:`numstab.render.registry` registers them.

Examples:
    >>> from numstab import lab
    >>> headers, rows = summary_rows(lab.taylor(["sigmoid"]))
    >>> headers[-2:]
    ['regime', 'agrees with the chapter?']
    >>> rows[0][:3]
    ['sigmoid', "fails: f(0) = 1/2, f'(0) = 1/4", "f(0) = 0.500, f'(0) = 0.250"]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from numstab.errors import NumstabTypeError
from numstab.lab.activation_curves import ActivationCurves
from numstab.lab.comparison import HEADERS as _HEADERS
from numstab.lab.exercises import Exercises
from numstab.lab.matrix_products import MatrixProducts
from numstab.lab.mlp_gradients import MLPGradients
from numstab.lab.precision import Precision
from numstab.lab.symmetry import Symmetry
from numstab.lab.taylor import TaylorTable
from numstab.lab.xavier import XavierVariance
from numstab.messages import MESSAGES, phrase, tr
from numstab.notation import fmt
from numstab.render import style
from numstab.render.html import HtmlPage, Section
from numstab.render.terminal import make_table

__all__ = [
    "HEADERS", "LabView", "VIEWS", "view", "summary_rows", "columns", "headers", "notes", "terminal_table",
    "code", "add_section", "figure", "page",
]

HEADERS = list(_HEADERS)


@dataclass(frozen=True)
class LabView:
    """How one kind of lab result is shown.

    Attributes:
        anchor: the HTML anchor ([a-z0-9-]+); the section's texts are the messages ``title.ANCHOR``,
            ``chapter.ANCHOR`` and ``measured.ANCHOR`` of :mod:`numstab.messages`.
        figure: result -> (matplotlib Figure, alt text, caption).
        math: the theory's formulas in LaTeX, shown as MathML under the chapter's paragraph.
        code: the Python that reproduces the section at the chapter's settings.
    """

    anchor: str
    figure: Callable[[Any], tuple[Any, str, str]]
    math: tuple[str, ...] = ()
    code: str = ""

    def title_in(self, lang: str = "en") -> str:
        """The section title."""
        return tr(f"title.{self.anchor}", lang)

    def chapter_in(self, lang: str = "en") -> str:
        """One paragraph: what the chapter did and printed, in its edition's words."""
        return tr(f"chapter.{self.anchor}", lang)

    def measured_in(self, lang: str = "en") -> str:
        """What the "measured" column holds, when the header alone does not say ("" otherwise)."""
        key = f"measured.{self.anchor}"
        return tr(key, lang) if key in MESSAGES[lang] else ""

    @property
    def title(self) -> str:
        """The section title in English."""
        return self.title_in()


# -- activation curves -------------------------------------------------------------------------------------


def _curves_figure(r) -> tuple[Any, str, str]:
    fig, (left, right) = style.figure(1, 2, width=8.0, height=3.2)
    for i, c in enumerate(r.curves):
        color = style.COLORS[i % len(style.COLORS)]
        left.plot(r.x, c.values, color=color, label=c.name, **{**style.MEASURED, "marker": None})
        right.plot(r.x, np.abs(c.gradient), color=color, label=c.name, **{**style.MEASURED, "marker": None})
    right.axhline(r.threshold, color="grey", **style.THEORY, label=f"vanishing below {fmt(r.threshold)}")
    style.log_axis(right)
    style.label(left, x="x", y="f(x)", title="activations")
    style.label(right, x="x", y="|f'(x)| by autograd (log scale)", title="gradients")
    names = ", ".join(c.name for c in r.curves)
    alt = (
        f"Values and gradient magnitudes of {names} on [{r.x[0]:g}, {r.x[-1]:.1f}]; "
        "the sigmoid's gradient peaks at 0.25."
    )
    return (
        fig,
        alt,
        "Gradients by autograd, as the book computes them; the dashed line is the vanishing threshold.",
    )


# -- matrix products ---------------------------------------------------------------------------------------


def _products_figure(r) -> tuple[Any, str, str]:
    fig, (left, right) = style.figure(1, 2, width=8.0, height=3.2)
    _products_paths(left, r)
    _products_growth(right, r)
    alt = (
        f"Mean log10 Frobenius norm of products of {r.k}x{r.k} Gaussian matrices against the number of "
        "factors, and measured growth per product against scale beside the Lyapunov exponent."
    )
    return fig, alt, f"{r.trials} products per scale (common random numbers across scales)."


def _products_paths(ax: Any, r: Any) -> None:
    """Left panel: mean log10 ||Y_t||_F against t at the lecture's scales, t lambda / ln 10 dashed."""
    steps = np.arange(r.n + 1)
    picks = [i for i, s in enumerate(r.scales) if any(np.isclose(s, c) for c in (0.5, 0.7, 1.0))] or [0]
    for j, i in enumerate(picks):
        color = style.COLORS[j % len(style.COLORS)]
        ax.plot(steps, r.path_mean_log10[i], color=color, label=f"scale {r.scales[i]:g}",
                **{**style.MEASURED, "marker": None})  # fmt: skip
        ax.plot(steps, steps * r.lyapunov[i] / math.log(10), color=color, **style.THEORY)
    title = r"products (dashed: $t\lambda/\ln 10$)"
    style.label(ax, x="number of factors", y=r"mean $\log_{10}\|Y\|_F$", title=title)


def _products_growth(ax: Any, r: Any) -> None:
    """Right panel: measured growth per product against scale, the Lyapunov exponent, the critical scale."""
    ax.errorbar(r.scales, r.growth_rate, yerr=r.growth_rate_stderr, color=style.COLORS[0], label="measured",
                **style.MEASURED)  # fmt: skip
    grid = np.geomspace(r.scales.min(), r.scales.max(), 50)
    ax.plot(grid, np.log(grid) + (r.lyapunov[0] - math.log(r.scales[0])), color=style.COLORS[1],
            label="Lyapunov exponent", **style.THEORY)  # fmt: skip
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.axvline(r.critical_scale, color="grey", linewidth=0.8, linestyle=":")
    style.log_axis(ax, "x")
    title = f"critical scale {r.critical_scale:.3f}"
    style.label(ax, x="scale (log)", y="log-growth per product", title=title)


# -- synthetic MLP -----------------------------------------------------------------------------------------

def _mlp_figure(r) -> tuple[Any, str, str]:
    fig, axes = style.figure(1, len(r.activations), width=3.2 * len(r.activations), height=3.4)
    axes = np.atleast_1d(axes)
    layers = np.arange(r.depth + 1)
    for a, (ax, act) in enumerate(zip(axes, r.activations, strict=True)):
        for i, init in enumerate(r.inits):
            color = style.COLORS[i % len(style.COLORS)]
            ax.plot(
                layers,
                _finite_power10(r.log10_magnitude[a, i]),
                color=color,
                label=init,
                **{**style.MEASURED, "marker": None},
            )
            theory = r.theory_from_input_log10_magnitude[a, i]
            ax.plot(layers, _finite_power10(theory), color=color, **style.THEORY)
            ax.plot(
                layers,
                _finite_power10(r.theory_log10_magnitude[a, i]),
                color=color,
                linestyle=":",
                linewidth=1,
            )
        style.log_axis(ax)
        style.label(ax, x="layer", y=r"$\|Y_l\|_F/\sqrt{K}$ (log)", title=act, legend=a == 0)
    alt = (
        f"Magnitude of the accumulated gradient product through {r.depth} layers of width {r.width} for "
        f"{', '.join(r.activations)} at each weight scale, with the mean-field prediction dashed."
    )
    return (
        fig,
        alt,
        (
            f"Mean over {r.repeats} repeats (solid); mean-field theory from the input's variance "
            "(dashed) and χ₁^(l/2) at the fixed point (dotted)."
        ),
    )


# -- Taylor check ------------------------------------------------------------------------------------------

def _taylor_figure(r) -> tuple[Any, str, str]:
    from numstab import activations

    fig, ax = style.figure(width=5.0, height=3.4)
    x = np.linspace(-2, 2, 201)
    for i, c in enumerate(r.checks[:8]):
        ax.plot(
            x,
            activations.get(c.name).fn(x),
            color=style.COLORS[i % len(style.COLORS)],
            label=c.name,
            **{**style.MEASURED, "marker": None},
        )
    ax.plot(x, x, color="black", label="identity", **style.THEORY)
    style.label(ax, x="x", y="f(x)", title="near 0, f(x) ~ x?")
    return fig, "Activations near 0 against the identity line.", "Dashed: the identity f(x) = x."


# -- Xavier ------------------------------------------------------------------------------------------------


def _xavier_figure(r) -> tuple[Any, str, str]:
    fig, (left, right) = style.figure(1, 2, width=8.0, height=3.2)
    for i, run in enumerate(r.runs):
        color = style.COLORS[i % len(style.COLORS)]
        name = f"{run.scheme.replace('xavier_', '')}, {run.widths[0]}/{run.widths[1]}"
        layers = np.arange(len(run.widths))
        left.plot(layers, run.forward_var, color=color, label=name, **style.MEASURED)
        left.plot(layers, run.forward_theory, color=color, **style.THEORY)
        right.plot(layers, run.backward_var, color=color, label=name, **style.MEASURED)
        right.plot(layers, run.backward_theory, color=color, **style.THEORY)
    for ax, title in (
        (left, r"forward: $n_\mathrm{in}\sigma^2$ per layer"),
        (right, r"backward: $n_\mathrm{out}\sigma^2$ per layer"),
    ):
        style.log_axis(ax)
        style.label(ax, x="layer", y="variance (log)", title=title, legend=ax is left)
    return (
        fig,
        "Forward and backward variance per layer of Xavier-initialized linear stacks.",
        ("Solid: measured; dashed: the chapter's products of n_in σ² and n_out σ²."),
    )


# -- symmetry ----------------------------------------------------------------------------------------------

def _symmetry_figure(r) -> tuple[Any, str, str]:
    fig, ax = style.figure(width=5.5, height=3.2)
    for i, run in enumerate(r.runs):
        ax.plot(
            np.arange(len(run.difference)),
            run.difference,
            color=style.COLORS[i],
            label=run.case,
            **{**style.MEASURED, "marker": None},
        )
    style.label(ax, x="SGD step", y="max |unit 1 - unit 2|", title="two hidden units")
    return (
        fig,
        "Difference between the two hidden units over SGD steps for each initialization.",
        ("The constant-init line is exactly 0 at every step."),
    )


# -- precision ---------------------------------------------------------------------------------------------


def _finite_power10(log10_values: np.ndarray) -> np.ndarray:
    """10**x where x is finite, NaN elsewhere (the curve stops where the format overflowed or hit 0)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(np.isfinite(log10_values), 10.0 ** np.clip(log10_values, -300, 300), np.nan)


def _precision_figure(r) -> tuple[Any, str, str]:
    fig, axes = style.figure(1, len(r.products), width=4.0 * len(r.products), height=3.4)
    for ax, d in zip(np.atleast_1d(axes), r.products, strict=True):
        layers = np.arange(len(d.reference_log10_max))
        for j, name in enumerate(d.formats):
            ax.plot(
                layers,
                _finite_power10(d.log10_max[j]),
                color=style.COLORS[j],
                label=name,
                **{**style.MEASURED, "marker": None},
            )
        ax.plot(
            layers,
            _finite_power10(d.reference_log10_max),
            color="black",
            label="float64 reference",
            **style.THEORY,
        )
        style.mark_format_limits(ax, "float16")
        style.log_axis(ax)
        style.label(
            ax,
            x="layer",
            y="max |entry| (log)",
            title=f"scale {d.scale:g}",
            legend=ax is np.atleast_1d(axes)[0],
        )
    return (
        fig,
        "Largest entry of a deep random matrix product computed in float16, bfloat16 and float32.",
        (
            "Curves stop where the format overflows (inf) or flushes to 0; "
            "dotted: float16's max and smallest normal."
        ),
    )


# -- exercises -------------------------------------------------------------------------------------------


def _exercises_figure(r) -> tuple[Any, str, str]:
    fig, (tied, spectrum, lars) = style.figure(1, 3, width=10.5, height=3.6)
    names = [f"{u.layer.split()[0]}, {u.init}" for u in r.tied]
    tied.bar(range(len(names)), [max(u.difference, 1e-18) for u in r.tied],
             color=[style.COLORS[0] if u.init == "random" else "#999999" for u in r.tied])  # fmt: skip
    tied.set_xticks(range(len(names)), names, rotation=25, ha="right")
    style.log_axis(tied)
    style.label(tied, x="layer, init", y="max |unit 1 - unit 2| (log)", title="1. symmetry (0 at 1e-18)")
    b = r.bounds
    index = np.arange(1, b.k + 1)
    spectrum.errorbar(index, b.lyapunov, yerr=b.lyapunov_stderr, color=style.COLORS[0], label="measured",
                      **style.MEASURED)  # fmt: skip
    spectrum.plot(index, b.lyapunov_theory, color=style.COLORS[0], label="theory", **style.THEORY)
    style.label(spectrum, x="i", y=r"$\lambda_i$ per factor", title=f"3. Lyapunov spectrum, k = {b.k}")
    from numstab.lab.training import select

    for i, remedy in enumerate(("none", "lars")):
        run = select(r.lars.runs, remedy=remedy)[0]
        losses = np.where(np.isfinite(run.losses), run.losses, np.nan)
        lars.plot(r.lars.record_steps, losses, color=style.COLORS[i], label="SGD" if remedy == "none" else
                  "LARS", **style.MEASURED)  # fmt: skip
    style.log_axis(lars)
    style.label(lars, x="step", y="minibatch loss (log)", title=f"4. depth {r.lars.depth}: SGD stops at inf")
    alt = (
        "Three panels: the difference between two conv channels or attention heads after training (0 "
        "under constant init, large under random init); the measured Lyapunov spectrum beside the theory; "
        "the loss of SGD (diverges) and of LARS (stays finite) on the exploding ReLU net."
    )
    return fig, alt, "Exercise 2 (equal starts) is in the table: its accuracies are equal."


# -- one view per result type, and the public functions ---------------------------------------------------

VIEWS: dict[type, LabView] = {
    ActivationCurves: LabView(
        "activation-curves",
        _curves_figure,
        math=(r"\sigma'(x) = \sigma(x)\,(1 - \sigma(x)) \le \tfrac{1}{4},\qquad "
              r"\sigma'(\pm 8) \approx 3.35\times 10^{-4}",),
        code="r = lab.activation_curves()",
    ),
    MatrixProducts: LabView(
        "matrix-products",
        _products_figure,
        math=(r"\lambda(s) = \ln s + \tfrac{1}{2}\left(\ln 2 + \psi(k/2)\right),\qquad "
              r"\log_{10}\|Y_t\|_F \approx \frac{t\,\lambda}{\ln 10}",),
        code="r = lab.matrix_products()",
    ),
    MLPGradients: LabView(
        "mlp-gradients",
        _mlp_figure,
        math=(r"Y_l = f'(a_l) \odot (W_l^\top Y_{l-1}),\qquad \chi_1 = \sigma_w^2\,"
              r"\mathbb{E}\left[f'(z)^2\right],\quad \sigma_w = s\sqrt{K},\qquad "
              r"\frac{\|Y_L\|_F}{\sqrt{K}} \approx \chi_1^{L/2}",),
        code="r = lab.mlp_gradients()  # 50 layers of width 100, 10 repeats",
    ),
    TaylorTable: LabView(
        "taylor",
        _taylor_figure,
        math=(r"f(x) = f(0) + f'(0)\,x + O(x^2) \approx x \iff f(0) = 0,\ f'(0) = 1",),
        code="r = lab.taylor()",
    ),
    XavierVariance: LabView(
        "xavier",
        _xavier_figure,
        math=(r"\operatorname{Var}[o] = n_\mathrm{in}\sigma^2\gamma^2,\quad "
              r"\operatorname{Var}[\partial_x] = n_\mathrm{out}\sigma^2\operatorname{Var}[\partial_o],\quad "
              r"\sigma^2 = \frac{2}{n_\mathrm{in} + n_\mathrm{out}}",),
        code="r = lab.xavier()",
    ),
    Symmetry: LabView(
        "symmetry",
        _symmetry_figure,
        math=(r"h_1 = h_2 \;\Rightarrow\; \frac{\partial L}{\partial W^{(1)}_{1,:}} = "
              r"\frac{\partial L}{\partial W^{(1)}_{2,:}}",),
        code="r = lab.symmetry()",
    ),
    Precision: LabView(
        "precision",
        _precision_figure,
        math=(r"1.5^{100} \approx 4\times 10^{17} > 65504,\qquad "
              r"0.8^{100} \approx 2\times 10^{-10} < 2^{-24} \approx 6\times 10^{-8}",),
        code="r = lab.precision()",
    ),
    Exercises: LabView(
        "exercises",
        _exercises_figure,
        math=(r"\sigma_{\min}(A)\,\sigma_{\min}(B) \le \sigma_i(AB) \le \sigma_{\max}(A)\,"
              r"\sigma_{\max}(B),\qquad \lambda_i = \ln s + \tfrac{1}{2}\left(\ln 2 + "
              r"\psi\left(\tfrac{k-i+1}{2}\right)\right)",),
        code="r = lab.exercises()",
    ),
}


def view(result: Any) -> LabView:
    """Return the :class:`LabView` of a lab result.

    Raises:
        NumstabTypeError: ``result`` is not a numstab.lab result.

    Examples:
        >>> from numstab import lab
        >>> view(lab.taylor(["relu"])).anchor
        'taylor'
    """
    for kind in type(result).__mro__:
        if kind in VIEWS:
            return VIEWS[kind]
    names = ", ".join(k.__name__ for k in VIEWS)
    raise NumstabTypeError(f"result must be a numstab.lab result ({names}), got {type(result).__name__}")


def summary_rows(result: Any) -> tuple[list[str], list[list[Any]]]:
    """Return the headers and rows of the result's table: its ``comparisons()``, one row each.

    Args:
        result: a result of :mod:`numstab.lab`.

    Examples:
        >>> from numstab import lab
        >>> summary_rows(lab.symmetry(steps=3))[1][0][::2]
        ['constant', 0.0, '-']
    """
    view(result)  # refuse a foreign object by name before asking it for comparisons
    return list(HEADERS), [row.cells() for row in result.comparisons()]


def columns(lang: str = "en") -> list[tuple[str, str]]:
    """What each column of a lab table holds (the notes under every table)."""
    keys = ("chapter", "measured", "theory", "regime", "agrees")
    return [(tr(f"col.{k}", lang), tr(f"def.{k}", lang)) for k in keys]


def headers(lang: str = "en", *, short: bool = False) -> list[str]:
    """The columns' names: :data:`HEADERS` in ``lang``; ``short`` to fit 80 terminal columns."""
    keys = ("quantity", "chapter", "measured", "theory", "regime", "agrees")
    return [tr(f"col.{k}.short" if short and k in ("chapter", "agrees") else f"col.{k}", lang) for k in keys]


def notes(result: Any, lang: str = "en") -> list[str]:
    """The rows' notes: one sentence per disagreement (or surprising agreement), in table order."""
    return [row.note_in(lang) for row in result.comparisons() if row.note_key]


def _rows(result: Any, lang: str) -> list[list[Any]]:
    """The table's rows with the chapter's words, regimes and agreements in ``lang``."""
    return [[phrase(cell, lang) for cell in row] for row in summary_rows(result)[1]]


def terminal_table(result: Any, *, title: str | None = None, lang: str = "en") -> Any:
    """Return the result's table, then its notes, as a rich renderable (print it on a console).

    Args:
        result: a result of :mod:`numstab.lab`.
        title: the table's title (default: the experiment's title, plus what "measured" holds).
        lang: "en" or "zh" (:data:`numstab.messages.LANGUAGES`).
    """
    from rich.console import Group
    from rich.text import Text

    v = view(result)
    rows, names = _rows(result, lang), headers(lang, short=True)
    if all(row[4] == "-" for row in rows):  # no regime in this table: give its width to the others
        names, rows = names[:4] + names[5:], [row[:4] + row[5:] for row in rows]
    title = v.title_in(lang) if title is None else title
    measured = v.measured_in(lang)
    table = make_table(
        f"{title} ({tr('col.measured', lang)}: {measured})" if measured else title, names, rows,
        verdict_column=len(names) - 1,
    )
    lines = [Text(f"! {note}", style="yellow") for note in notes(result, lang)]
    return Group(table, *lines) if lines else table


def code(result: Any, call: str | None = None) -> str:
    """The few lines of Python that reproduce the section (``call``: the lab call, default the view's)."""
    call = call or view(result).code
    rest = "r.comparisons()  # the table's rows\nr.figure()       # the figure, to restyle"
    return f"from numstab import lab\n\n{call}\n{rest}"


def add_section(
    report: HtmlPage, result: Any, *, anchor: str | None = None, title: str | None = None,
    call: str | None = None, lang: str = "en",
) -> Section:
    """Add the result as a section of ``report``: the chapter, the theory, the table, the notes, the code.

    Args:
        report: the HTML page to add to.
        result: a result of :mod:`numstab.lab`.
        anchor: the section's anchor (default: the experiment's, e.g. "matrix-products").
        title: the section's title (default: the experiment's).
        call: the lab call that made ``result`` (default: the chapter's settings).
        lang: "en" or "zh".
    """
    v = view(result)
    section = report.section(anchor or v.anchor, title or v.title_in(lang))
    section.text(v.chapter_in(lang), label=tr("label.chapter", lang))
    for latex in v.math:
        section.math(latex, label=tr("label.theory", lang))
    if v.measured_in(lang):
        section.text(v.measured_in(lang), label=tr("label.measured", lang))
    names = headers(lang)
    section.table(names, _rows(result, lang), verdict_column=len(names) - 1)
    flagged = notes(result, lang)
    if flagged:
        section.notes(flagged, kind="warn", label=tr("label.notes", lang))
    section.definitions(columns(lang), label=tr("label.columns", lang))
    fig, alt, caption = v.figure(result)
    section.figure(fig, alt=alt, caption=caption)
    return section.text(tr("label.reproduce", lang) + ":").code(code(result, call))


def figure(result: Any) -> Any:
    """The result's figure as a new matplotlib Figure (``result.figure()``)."""
    return view(result).figure(result)[0]


def page(result: Any, *, lang: str = "en") -> HtmlPage:
    """Return the result alone on a page (``_repr_html_`` in notebooks, ``numstab lab NAME --html``)."""
    report = HtmlPage(f"numstab lab: {view(result).title_in(lang)}", lang=lang)
    add_section(report, result, lang=lang)
    return report
