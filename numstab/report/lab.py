"""Render the lab's results: a compact table (the chapter, measured, theory, verdict) and a figure each.

Rendering only: every number shown was computed in :mod:`numstab.lab`. Figures follow
:mod:`numstab.report.style` (measurement solid, theory dashed, log axes for magnitudes).

Examples:
    >>> from numstab import lab
    >>> headers, rows = summary_rows(lab.taylor(["sigmoid"]))
    >>> headers
    ['quantity', 'the chapter', 'measured', 'theory', 'verdict']
    >>> rows[0][:3]
    ["sigmoid: f(0), f'(0)", "fails: f(0) = 1/2, f'(0) = 1/4", "f(0) = 0.500, f'(0) = 0.250"]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from numstab.report import style
from numstab.report.formatting import fmt
from numstab.report.html import HtmlReport, Section

__all__ = ["HEADERS", "LabView", "view", "summary_rows", "terminal_table", "add_section", "to_html"]

HEADERS = ["quantity", "the chapter", "measured", "theory", "verdict"]


@dataclass(frozen=True)
class LabView:
    """How one kind of lab result is shown.

    Attributes:
        anchor: the HTML anchor ([a-z0-9-]+).
        title: the section title.
        chapter: one paragraph: what the chapter did and printed.
        rows: result -> table rows, one per quantity, cells as in :data:`HEADERS`.
        figure: result -> (matplotlib Figure, alt text, caption).
        measured: what the "measured" column holds, when the header alone does not say.
    """

    anchor: str
    title: str
    chapter: str
    rows: Callable[[Any], list[list[Any]]]
    figure: Callable[[Any], tuple[Any, str, str]]
    measured: str = ""


def _agrees(ok: bool) -> str:
    return "agrees" if ok else "disagrees"


def _p10(log10_value: float) -> str:
    """10**x written as 1.23e+45 without overflowing float (x is a log10)."""
    if not math.isfinite(log10_value):
        return "0" if log10_value < 0 else "inf"
    exponent = math.floor(log10_value)
    return f"{10 ** (log10_value - exponent):.2f}e{exponent:+03d}"


def _regime(log10_magnitude: float) -> str:
    """vanishing below 1e-3, exploding above 1e3, else stable."""
    return "vanishing" if log10_magnitude < -3 else "exploding" if log10_magnitude > 3 else "stable"


# -- activation curves -------------------------------------------------------------------------------------


def _curves_rows(r) -> list[list[Any]]:
    rows = []
    if any(c.name == "sigmoid" for c in r.curves):
        s = r.curve("sigmoid")
        at8 = 1 / (1 + math.exp(8)) * (1 - 1 / (1 + math.exp(8)))  # sigma(-8)(1 - sigma(-8)), the closed form
        rows += [
            [
                "sigmoid' max (at x)",
                "0.25 at x = 0",
                f"{fmt(s.max_gradient)} at x = {round(s.argmax, 6) + 0.0:g}",
                "1/4 at 0",
                _agrees(abs(s.max_gradient - 0.25) < 1e-6 and abs(s.argmax) < 1e-6),
            ],
            [
                f"sigmoid' at x = {r.x[0]:g}",
                "~3.35e-4 (vanishes)",
                s.gradient_at_lo,
                at8,
                _agrees(abs(s.gradient_at_lo - at8) < 1e-3 * at8),
            ],
        ]
    for c in r.curves:
        region = ", ".join(f"[{a:.1f}, {b:.1f}]" for a, b in c.vanishing) or "none"
        rows.append(
            [
                f"{c.name}: |f'| < {fmt(r.threshold)} on",
                "-",
                region,
                f"autograd = closed form to {fmt(c.closed_form_error)}",
                _agrees(c.closed_form_error < 1e-5),
            ]
        )
    return rows


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


def _scale_row(r, scale: float, chapter: str) -> list[Any] | None:
    hits = np.flatnonzero(np.isclose(r.scales, scale))
    if not len(hits):
        return None
    i = hits[0]
    measured = f"entries ~{_p10(r.median_log10_abs_entry[i])}, ||Y||_F ~{_p10(r.mean_log10_frobenius[i])}"
    theory = f"||Y||_F ~{_p10(r.theory_mean_log10_frobenius[i])}"
    ok = (
        abs(r.mean_log10_frobenius[i] - r.theory_mean_log10_frobenius[i])
        < 4 * r.theory_std_log10 / math.sqrt(r.trials) + 0.05
    )
    return [f"scale {scale:g}: {r.n} products of {r.k}x{r.k}", chapter, measured, theory, _agrees(ok)]


def _products_rows(r) -> list[list[Any]]:
    b = r.book
    mc_ok = (
        abs(b.mean_log10_frobenius - b.theory_mean_log10_frobenius)
        < 4 * b.theory_std_log10 / math.sqrt(r.trials) + 0.05
    )
    rows = [
        [
            f"book: log10 ||M||_F, N(0,1) {r.k}x{r.k}, {b.factors} factors",
            "entries ~1e22 (one run)",
            f"{b.mean_log10_frobenius:.2f} +- {b.std_log10_frobenius:.2f} "
            f"(first run {b.example_log10_frobenius:.1f})",
            f"{b.theory_lyapunov_log10:.2f} (lambda only); "
            f"{b.theory_mean_log10_frobenius:.2f} +- {b.theory_std_log10:.2f}",
            _agrees(mc_ok),
        ]
    ]
    rows += [row for row in (_scale_row(r, 0.5, "~1e-6"), _scale_row(r, 0.7, "~1e9 - 1e10")) if row]
    measured_critical = math.exp(-(r.growth_rate[0] - math.log(r.scales[0])))
    rows.append(
        [
            "critical scale (growth 0)",
            "-",
            f"{measured_critical:.4f}",
            f"{r.critical_scale:.4f}",
            _agrees(abs(measured_critical / r.critical_scale - 1) < 4 * r.growth_rate_stderr[0] + 1e-3),
        ]
    )
    worst = np.max(np.abs(r.growth_rate - r.lyapunov) / np.maximum(r.growth_rate_stderr, 1e-12))
    rows.append(
        [
            "growth per product vs Lyapunov",
            "-",
            f"max |gap| = {worst:.1f} standard errors",
            "ln s + (ln 2 + psi(k/2))/2",
            _agrees(worst < 4),
        ]
    )
    return rows


def _products_figure(r) -> tuple[Any, str, str]:
    fig, (left, right) = style.figure(1, 2, width=8.0, height=3.2)
    steps = np.arange(r.n + 1)
    picks = [i for i, s in enumerate(r.scales) if any(np.isclose(s, c) for c in (0.5, 0.7, 1.0))] or [0]
    for j, i in enumerate(picks):
        color = style.COLORS[j % len(style.COLORS)]
        left.plot(
            steps,
            r.path_mean_log10[i],
            color=color,
            label=f"scale {r.scales[i]:g}",
            **{**style.MEASURED, "marker": None},
        )
        left.plot(steps, steps * r.lyapunov[i] / math.log(10), color=color, **style.THEORY)
    style.label(
        left, x="number of factors", y="mean log10 ||Y||_F", title="products (dashed: t lambda / ln 10)"
    )
    right.errorbar(
        r.scales,
        r.growth_rate,
        yerr=r.growth_rate_stderr,
        color=style.COLORS[0],
        label="measured",
        **style.MEASURED,
    )
    grid = np.geomspace(r.scales.min(), r.scales.max(), 50)
    right.plot(
        grid,
        np.log(grid) + (r.lyapunov[0] - math.log(r.scales[0])),
        color=style.COLORS[1],
        label="Lyapunov exponent",
        **style.THEORY,
    )
    right.axhline(0.0, color="grey", linewidth=0.8)
    right.axvline(r.critical_scale, color="grey", linewidth=0.8, linestyle=":")
    style.log_axis(right, "x")
    style.label(
        right, x="scale (log)", y="log-growth per product", title=f"critical scale {r.critical_scale:.3f}"
    )
    alt = (
        f"Mean log10 Frobenius norm of products of {r.k}x{r.k} Gaussian matrices against the number of "
        "factors, "
        "and "
        "measured growth per product against scale beside the Lyapunov exponent."
    )
    return fig, alt, f"{r.trials} products per scale (common random numbers across scales)."


# -- synthetic MLP -----------------------------------------------------------------------------------------

#: What the lecture printed for the smallest gradient entry (read off the transcript).
LECTURE_MLP = {
    ("relu", "0.1"): "~1e-9",
    ("relu", "0.2"): "reasonable",
    ("relu", "0.4"): "~1e20 (explodes)",
    ("relu", "0.8"): "explodes",
    ("relu", "xavier_uniform"): "~1e-9",
    ("sigmoid", "0.1"): "~1e-33",
    ("sigmoid", "0.8"): "~5e-5",
    ("scaled_sigmoid", "0.1"): "~0.01",
    ("scaled_sigmoid", "0.2"): "not too large",
    ("scaled_sigmoid", "0.4"): "reasonable",
    ("scaled_sigmoid", "0.8"): "reasonable",
}


def _mlp_rows(r) -> list[list[Any]]:
    rows = []
    for a, act in enumerate(r.activations):
        for i, init in enumerate(r.inits):
            measured = f"{_p10(r.log10_magnitude[a, i, -1])} (min {_p10(r.log10_min_entry[a, i])})"
            chapter = LECTURE_MLP.get((act, init), "vanishes" if act == "sigmoid" else "-")
            rows.append(
                [
                    f"{act}, {init}",
                    chapter,
                    measured,
                    _p10(r.theory_from_input_log10_magnitude[a, i, -1]),
                    _regime(r.log10_magnitude[a, i, -1]),
                ]
            )
    return rows


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
        style.label(ax, x="layer", y="||Y_l||_F / sqrt(K) (log)", title=act, legend=a == 0)
    alt = (
        f"Magnitude of the accumulated gradient product through {r.depth} layers of width {r.width} for "
        f"{', '.join(r.activations)} at each weight scale, with the mean-field prediction dashed."
    )
    return (
        fig,
        alt,
        (
            f"Mean over {r.repeats} repeats (solid); mean-field theory from the input's variance "
            "(dashed) and chi_1^(l/2) at the fixed point (dotted)."
        ),
    )


# -- Taylor check ------------------------------------------------------------------------------------------

_CHAPTER_TAYLOR = {
    "tanh": "passes: x - x^3/3",
    "relu": "passes (x >= 0)",
    "sigmoid": "fails: f(0) = 1/2, f'(0) = 1/4",
    "scaled_sigmoid": "passes: x - x^3/12",
}


def _taylor_rows(r) -> list[list[Any]]:
    return [
        [
            f"{c.name}: f(0), f'(0)",
            _CHAPTER_TAYLOR.get(c.name, "-"),
            f"f(0) = {fmt(c.f0)}, f'(0) = {fmt(c.df0)}",
            "identity near 0" if c.identity_near_zero else "not the identity",
            _agrees(r.chapter[c.name] == c.identity_near_zero)
            if c.name in r.chapter
            else ("pass" if c.identity_near_zero else "fail"),
        ]
        for c in r.checks
    ]


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


def _xavier_rows(r) -> list[list[Any]]:
    rows = []
    for run in r.runs:
        shape = f"{run.widths[0]}/{run.widths[1]}"
        for what, got, want, spread in (
            (
                "fwd Var, last",
                run.forward_var[-1],
                run.forward_theory[-1],
                run.forward_log10_spread[-1],
            ),
            (
                "bwd Var, first",
                run.backward_var[0],
                run.backward_theory[0],
                run.backward_log10_spread[0],
            ),
        ):
            ok = abs(math.log10(got / want)) < 4 * spread / math.sqrt(r.trials) + 0.05
            rows.append(
                [
                    f"{run.scheme.replace('xavier_', '')} {shape}: {what}",
                    "1 when n_in = n_out" if len(set(run.widths)) == 1 else "compromise",
                    got,
                    want,
                    _agrees(ok),
                ]
            )
    return rows


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
        (left, "forward: n_in sigma^2 per layer"),
        (right, "backward: n_out sigma^2 per layer"),
    ):
        style.log_axis(ax)
        style.label(ax, x="layer", y="variance (log)", title=title, legend=ax is left)
    return (
        fig,
        "Forward and backward variance per layer of Xavier-initialized linear stacks.",
        ("Solid: measured; dashed: the chapter's n_in sigma^2 and n_out sigma^2 products."),
    )


# -- symmetry ----------------------------------------------------------------------------------------------

_CHAPTER_SYMMETRY = {
    "constant": "identical forever (exactly 0)",
    "constant + dropout": "dropout breaks the tie",
    "random": "units differ",
}


def _symmetry_rows(r) -> list[list[Any]]:
    rows = []
    for run in r.runs:
        diff = float(run.difference[-1])
        ok = diff == 0.0 if run.case == "constant" else diff > 0.0
        rows.append(
            [
                f"{run.case}",
                _CHAPTER_SYMMETRY.get(run.case, "-"),
                diff,
                "0 exactly" if run.case == "constant" else "> 0",
                _agrees(ok),
            ]
        )
    return rows


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


def _precision_rows(r) -> list[list[Any]]:
    rows = []
    for p in r.powers:
        if p.fmt not in ("float16", "bfloat16", "float32"):
            continue
        chapter = (
            ("overflows (> 65504)" if p.base > 1 else "flushes (< 2^-24)") if p.fmt == "float16" else "-"
        )
        computed = "n/a" if math.isnan(p.computed) else fmt(p.computed)
        step = p.first_overflow or p.first_zero
        note = f" (from step {step})" if step else ""
        if not step and p.category == "underflow" and p.first_subnormal:
            note = f" (subnormal from step {p.first_subnormal}, then stuck)"
        rows.append(
            [
                f"{p.base:g}^{p.exponent} in {p.fmt}",
                chapter,
                computed + note,
                f"{_p10(p.log10_exact)}: {p.category}",
                p.category if p.category != "normal" else "ok",
            ]
        )
    for d in r.products:
        for j, name in enumerate(d.formats):
            got = d.first_overflow[j] or d.first_zero[j]
            want = d.predicted_overflow[j] or d.predicted_zero[j]
            what = "inf" if d.lyapunov > 0 else "0"
            rows.append(
                [
                    f"{name}, scale {d.scale:g}: {what} from layer",
                    "-",
                    got if got is not None else f"none in {r.depth}",
                    want if want is not None else f"none in {r.depth}",
                    _agrees(
                        got is None
                        and want is None
                        or (got is not None and want is not None and abs(got - want) <= max(3, 0.05 * want))
                    ),
                ]
            )
    return rows


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


# -- registry and public functions -------------------------------------------------------------------------

_VIEWS: dict[str, LabView] = {
    "ActivationCurves": LabView(
        "activation-curves",
        "Vanishing gradients: sigmoid and friends",
        "The book plots sigmoid and its gradient on arange(-8, 8, 0.1): the gradient is at most "
        "0.25 and about 3.35e-4 at the ends.",
        _curves_rows,
        _curves_figure,
    ),
    "MatrixProducts": LabView(
        "matrix-products",
        "Exploding products of random matrices",
        "The book multiplies a 4x4 N(0,1) matrix by 100 more and prints entries near 1e22; the "
        "lecture's prod_random_matrices gives ~1e-6 at scale 0.5 and ~1e9-1e10 at 0.7.",
        _products_rows,
        _products_figure,
    ),
    "MLPGradients": LabView(
        "mlp-gradients",
        "The 50-layer synthetic MLP gradient",
        "The lecture accumulates y <- f'(a) * (W^T y) through 50 layers of width 100, 10 repeats: "
        "ReLU vanishes at scale 0.1 and explodes from 0.4, sigmoid vanishes at every scale, "
        "4 sigmoid - 2 is stable near 0.1.",
        _mlp_rows,
        _mlp_figure,
        "||Y_L||_F / sqrt(K) after the last layer (mean of log10 over repeats), the lecture's smallest "
        "non-zero |entry| in brackets; theory: mean-field prod chi_l^(1/2) from the input's variance "
        "(chi_1^(L/2) once at the fixed point)",
    ),
    "TaylorTable": LabView(
        "taylor",
        "Which activations look like the identity near 0",
        "tanh and relu pass, sigmoid fails, 4 sigmoid(x) - 2 passes.",
        _taylor_rows,
        _taylor_figure,
    ),
    "XavierVariance": LabView(
        "xavier",
        "Xavier initialization, measured",
        "Var[o] = n_in sigma^2 gamma^2 forward, n_out sigma^2 backward; sigma^2 = 2/(n_in + n_out).",
        _xavier_rows,
        _xavier_figure,
    ),
    "Symmetry": LabView(
        "symmetry",
        "Breaking the symmetry",
        "Two hidden units with constant init stay identical under SGD; dropout breaks the tie.",
        _symmetry_rows,
        _symmetry_figure,
        "max |unit 1 - unit 2| over W1 rows, b1 and W2 after the last SGD step",
    ),
    "Precision": LabView(
        "precision",
        "Number formats: where products leave the range",
        "1.5^100 ~ 4e17 and 0.8^100 ~ 2e-10 against float16's 65504 and 2^-24 ~ 6e-8.",
        _precision_rows,
        _precision_figure,
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
    try:
        return _VIEWS[type(result).__name__]
    except KeyError:
        from numstab.errors import NumstabTypeError

        raise NumstabTypeError(
            f"result must be a numstab.lab result ({', '.join(_VIEWS)}), got {type(result).__name__}"
        ) from None


def summary_rows(result: Any) -> tuple[list[str], list[list[Any]]]:
    """Return the headers and rows of the result's table: the chapter, measured, theory, verdict.

    Args:
        result: a result of :mod:`numstab.lab`.

    Examples:
        >>> from numstab import lab
        >>> summary_rows(lab.symmetry(steps=3))[1][0][::2]
        ['constant', 0.0, 'agrees']
    """
    return list(HEADERS), view(result).rows(result)


def terminal_table(result: Any, *, title: str | None = None) -> Any:
    """Return the result's table as a rich Table (print it on a :func:`terminal.make_console` console).

    Args:
        result: a result of :mod:`numstab.lab`.
        title: the table's title (default: the experiment's title, plus what "measured" holds).
    """
    from numstab.report.terminal import make_table

    v = view(result)
    headers, rows = summary_rows(result)
    title = v.title if title is None else title
    return make_table(
        f"{title} (measured: {v.measured})" if v.measured else title, headers, rows, verdict_column=4
    )


def add_section(
    report: HtmlReport, result: Any, *, anchor: str | None = None, title: str | None = None
) -> Section:
    """Add the result as a section of ``report``: the chapter, the table, the figure.

    Args:
        report: the HTML report to add to.
        result: a result of :mod:`numstab.lab`.
        anchor: the section's anchor (default: the experiment's, e.g. "matrix-products").
        title: the section's title (default: the experiment's).
    """
    v = view(result)
    headers, rows = summary_rows(result)
    section = report.section(anchor or v.anchor, title or v.title).text(v.chapter, label="The chapter")
    if v.measured:
        section.text(v.measured, label="Measured")
    section.table(headers, rows, verdict_column=4)
    fig, alt, caption = v.figure(result)
    return section.figure(fig, alt=alt, caption=caption)


def to_html(result: Any, *, fragment: bool = True) -> str:
    """Return the result as HTML: a fragment (for ``_repr_html_`` in notebooks) or a whole page."""
    report = HtmlReport(f"numstab lab: {view(result).title}")
    add_section(report, result)
    return report.render(fragment=fragment)
