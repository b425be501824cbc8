"""One figure style for every numstab report: measurement solid, theory dashed, log axes for magnitudes.

Figures are built with matplotlib's object API on the Agg backend (:class:`matplotlib.figure.Figure`),
never through ``pyplot``, so nothing here touches global state: no current figure to leak, no open
window, no ``rcParams`` left changed (the style is applied inside :func:`matplotlib.rc_context` while the
figure and its axes are built).

Conventions, so that every figure reads the same way:

- a measurement is a solid line with markers (:data:`MEASURED`); what theory predicts is a dashed line
  (:data:`THEORY`) in the same colour as the measurement it predicts;
- magnitudes (norms, variances, gradients) go on log axes (:func:`log_axis`);
- where values may leave a low-precision format, :func:`mark_format_limits` draws its largest finite
  value and its smallest normal value;
- every axis is labelled, with its unit where it has one (:func:`label`).
"""

from __future__ import annotations

from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from numstab.errors import InvalidArgumentError, UnknownNameError, check_int_at_least, check_positive

__all__ = [
    "figure", "compare", "label", "log_axis", "mark_format_limits", "MEASURED", "THEORY", "COLORS", "RC",
]

#: Okabe & Ito's colour-blind-safe palette (2008), in the order lines take it.
COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]

#: Line keyword arguments for a measurement: solid, with small markers.
MEASURED: dict[str, Any] = {"linestyle": "-", "linewidth": 1.8, "marker": "o", "markersize": 3.0}

#: Line keyword arguments for a theory prediction: dashed, no markers. Pass the colour of the measurement
#: it predicts (``color=line.get_color()``, or use :func:`compare`): ``"C0"`` would name pyplot's global
#: palette, not this style's.
THEORY: dict[str, Any] = {"linestyle": "--", "linewidth": 1.6, "marker": None, "alpha": 0.9}

#: The matplotlib settings every numstab figure is built with (applied via ``rc_context``, never globally).
RC: dict[str, Any] = {
    "axes.prop_cycle": matplotlib.cycler(color=COLORS),
    "axes.grid": True,
    "axes.grid.which": "major",
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 10,  # legible at the report's width (the figures are shown ~75 px per inch)
    "legend.frameon": False,
    "font.size": 10,
    "figure.dpi": 100,
    "savefig.dpi": 150,  # 6.4 in -> 960 px: crisp when shown 717 px wide
}

_FORMAT_LIMIT_STYLE: dict[str, Any] = {"color": "#7f7f7f", "linestyle": ":", "linewidth": 1.2, "zorder": 0}


def figure(nrows: int = 1, ncols: int = 1, *, width: float = 6.4, height: float = 4.0) -> tuple[Figure, Any]:
    """Return a new Agg figure and its axes in numstab's style, without touching pyplot.

    Args:
        nrows: rows of subplots.
        ncols: columns of subplots.
        width: figure width in inches (6.4 in fills the HTML report's column).
        height: figure height in inches.

    Returns:
        ``(fig, axes)``: one :class:`~matplotlib.axes.Axes` for a 1×1 grid, else a numpy array of them
        (squeezed like :func:`matplotlib.pyplot.subplots`).

    Examples:
        >>> fig, ax = figure()
        >>> line, = ax.plot([1, 2, 3], [1.0, 0.1, 0.01], label="measured", **MEASURED)
        >>> type(fig.canvas).__name__, line.get_linestyle()
        ('FigureCanvasAgg', '-')
    """
    check_int_at_least("nrows", nrows, 1)
    check_int_at_least("ncols", ncols, 1)
    check_positive("width", width)
    check_positive("height", height)
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(width, height), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(nrows, ncols, squeeze=True)
    return fig, axes


def save_figure(fig: Figure, stream: Any, *, fmt: str = "png") -> None:
    """Save ``fig`` to a binary ``stream`` as png, svg or pdf, tagged as written by numstab.

    The tag (PNG "Software", PDF and SVG "Creator") is how :func:`numstab.files.written_by_numstab`
    knows a figure it may replace.

    Examples:
        >>> import io
        >>> fig, ax = figure()
        >>> buffer = io.BytesIO()
        >>> save_figure(fig, buffer, fmt="svg")
        >>> b"<dc:title>numstab" in buffer.getvalue()
        True
    """
    from numstab import __version__
    from numstab.files import GENERATOR

    key = "Software" if fmt == "png" else "Creator"
    with matplotlib.rc_context(RC):
        fig.savefig(stream, format=fmt, metadata={key: f"{GENERATOR} {__version__}"})


def compare(ax: Axes, x: Any, measured: Any, predicted: Any, *, name: str) -> tuple[Any, Any]:
    """Plot a measurement (solid, markers) and its theory prediction (dashed) in one colour.

    Args:
        ax: the axes.
        x: the shared x values.
        measured: what was measured, one value per ``x``.
        predicted: what theory predicts, one value per ``x``.
        name: the curve's name; the legend says ``"{name} (measured)"`` and ``"{name} (theory)"``.

    Returns:
        The two :class:`~matplotlib.lines.Line2D`: measured, predicted.

    Examples:
        >>> fig, ax = figure()
        >>> m, t = compare(ax, [0, 1, 2], [1.0, 0.3, 0.1], [1.0, 0.25, 0.0625], name="sigmoid")
        >>> m.get_color() == t.get_color(), m.get_linestyle(), t.get_linestyle(), t.get_label()
        (True, '-', '--', 'sigmoid (theory)')
    """
    (line,) = ax.plot(x, measured, label=f"{name} (measured)", **MEASURED)
    (theory,) = ax.plot(x, predicted, label=f"{name} (theory)", color=line.get_color(), **THEORY)
    return line, theory


def label(ax: Axes, *, x: str, y: str, title: str = "", legend: bool | None = None) -> Axes:
    """Label both axes (say the unit), set the title, and draw the legend when some line has a label.

    Args:
        ax: the axes.
        x: the x-axis label, e.g. ``"layer"``.
        y: the y-axis label, e.g. ``"gradient norm (log scale)"``.
        title: the axes title.
        legend: force the legend on or off; by default it is drawn when any artist has a label.

    Examples:
        >>> fig, ax = figure()
        >>> _ = ax.plot([0, 1], [1, 2], label="tanh")
        >>> label(ax, x="layer", y="variance").get_legend() is not None
        True
    """
    if not x.strip() or not y.strip():
        raise InvalidArgumentError("x and y must be non-empty axis labels: say what is plotted and its unit")
    with matplotlib.rc_context(RC):
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        if title:
            ax.set_title(title)
        handles, _ = ax.get_legend_handles_labels()
        if legend if legend is not None else bool(handles):
            ax.legend()
    return ax


def log_axis(ax: Axes, axis: str = "y") -> Axes:
    """Put a magnitude on a log axis (``axis`` is ``"x"``, ``"y"`` or ``"both"``).

    Examples:
        >>> fig, ax = figure()
        >>> log_axis(ax).get_yscale()
        'log'
    """
    if axis not in ("x", "y", "both"):
        raise UnknownNameError("axis", axis, ["x", "y", "both"])
    if axis in ("x", "both"):
        ax.set_xscale("log")
    if axis in ("y", "both"):
        ax.set_yscale("log")
    return ax


def mark_format_limits(ax: Axes, fmt: str = "float16", *, axis: str = "y") -> None:
    """Draw a floating-point format's largest finite value and smallest normal value as dotted lines.

    A value above the largest finite value overflows to ``inf`` when cast; below the smallest normal it
    loses precision (subnormal) and eventually flushes to zero. float16's limits are 65504 and
    :math:`2^{-14} \\approx 6.1\\times 10^{-5}` (IEEE 754-2008 binary16), close enough to a deep network's
    gradients to matter. The limits come from :func:`numstab.precision.formats`.

    Args:
        ax: the axes (magnitudes on ``axis``, usually on a log scale).
        fmt: the format's name, a key of :func:`numstab.precision.formats` (``"float16"``,
            ``"bfloat16"``, ...).
        axis: ``"y"`` for horizontal lines, ``"x"`` for vertical ones.

    Examples:
        >>> fig, ax = figure()
        >>> mark_format_limits(ax, "float16")
        >>> sorted(line.get_ydata()[0] for line in ax.get_lines())
        [6.103515625e-05, 65504.0]
    """
    from numstab.precision import formats

    known = formats()
    if fmt not in known:
        raise UnknownNameError("format", fmt, sorted(known))
    if axis not in ("x", "y"):
        raise UnknownNameError("axis", axis, ["x", "y"])
    draw = ax.axhline if axis == "y" else ax.axvline
    limits = known[fmt]
    # one legend entry for the pair; matplotlib hides labels that start with "_"
    draw(float(limits.max), label=f"{fmt} max / smallest normal", **_FORMAT_LIMIT_STYLE)
    draw(float(limits.smallest_normal), label=f"_{fmt} smallest normal", **_FORMAT_LIMIT_STYLE)
