"""Figure style: Agg without pyplot or global state; measurement solid, theory dashed; format limits."""

from __future__ import annotations

import sys

import matplotlib
import numpy as np
import pytest

from numstab.errors import InvalidArgumentError, UnknownNameError
from numstab.render.style import MEASURED, THEORY, compare, figure, label, log_axis, mark_format_limits


def test_figure_uses_agg_and_leaves_global_state_alone() -> None:
    before = dict(matplotlib.rcParams)
    pyplot_loaded = "matplotlib.pyplot" in sys.modules
    fig, axes = figure(2, 3, width=9.0, height=5.0)
    assert type(fig.canvas).__name__ == "FigureCanvasAgg"
    assert axes.shape == (2, 3)
    assert tuple(fig.get_size_inches()) == (9.0, 5.0)
    assert dict(matplotlib.rcParams) == before  # the style was applied in an rc_context, not globally
    assert ("matplotlib.pyplot" in sys.modules) == pyplot_loaded  # pyplot was not imported
    assert fig.canvas.manager is None  # not registered with pyplot: nothing to leak


def test_style_is_applied_to_the_axes() -> None:
    fig, ax = figure()
    assert not ax.spines["top"].get_visible() and not ax.spines["right"].get_visible()
    assert ax.xaxis.get_gridlines()[0].get_visible()
    first = ax.plot([0, 1], [0, 1])[0]
    assert first.get_color() == "#0072B2"  # Okabe-Ito blue leads the colour cycle


def test_measured_is_solid_and_theory_dashed() -> None:
    fig, ax = figure()
    measured = ax.plot([1, 2], [1, 2], **MEASURED)[0]
    theory = ax.plot([1, 2], [1, 2], **THEORY)[0]
    assert measured.get_linestyle() == "-" and measured.get_marker() == "o"
    assert theory.get_linestyle() == "--" and theory.get_marker() in (None, "None", "")


def test_compare_draws_theory_in_the_measurement_colour() -> None:
    fig, ax = figure()
    pairs = [compare(ax, [0, 1], [1.0, 0.5], [1.0, 0.4], name=n) for n in ("sigmoid", "tanh")]
    colours = [(m.get_color(), t.get_color()) for m, t in pairs]
    assert colours == [("#0072B2", "#0072B2"), ("#D55E00", "#D55E00")]  # Okabe-Ito blue, vermillion
    assert [line.get_label() for line in ax.get_lines()] == [
        "sigmoid (measured)", "sigmoid (theory)", "tanh (measured)", "tanh (theory)",
    ]
    assert [line.get_linestyle() for line in ax.get_lines()] == ["-", "--", "-", "--"]


def test_figure_arguments_are_checked() -> None:
    with pytest.raises(InvalidArgumentError, match="nrows must be >= 1, got 0"):
        figure(0)
    with pytest.raises(InvalidArgumentError, match="width must be a finite number > 0"):
        figure(width=-1.0)


def test_label_sets_axes_title_and_legend() -> None:
    fig, ax = figure()
    label(ax, x="layer", y="gradient norm", title="Sigmoid")
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("layer", "gradient norm", "Sigmoid")
    assert ax.get_legend() is None  # nothing labelled, no empty legend box
    ax.plot([0, 1], [0, 1], label="relu")
    assert label(ax, x="layer", y="norm").get_legend() is not None
    with pytest.raises(InvalidArgumentError, match="non-empty axis labels"):
        label(ax, x="", y="norm")


def test_log_axis() -> None:
    fig, ax = figure()
    log_axis(ax, "both")
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    with pytest.raises(UnknownNameError, match="unknown axis 'z': use one of x, y, both"):
        log_axis(ax, "z")


@pytest.mark.parametrize(
    ("fmt", "largest", "smallest_normal"),
    [
        ("float16", 65504.0, 2.0**-14),  # IEEE 754 binary16
        ("bfloat16", 3.3895313892515355e38, 2.0**-126),  # float32's exponent range, 8 significand bits
        ("float32", 3.4028234663852886e38, 2.0**-126),
    ],
)
def test_format_limits_drawn_where_the_format_ends(fmt: str, largest: float, smallest_normal: float) -> None:
    fig, ax = figure()
    mark_format_limits(ax, fmt)
    levels = sorted(line.get_ydata()[0] for line in ax.get_lines())
    np.testing.assert_array_equal(levels, [smallest_normal, largest])
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels[0] == f"{fmt} max / smallest normal" and labels[1].startswith("_")  # one legend entry


def test_format_limits_on_the_x_axis() -> None:
    fig, ax = figure()
    mark_format_limits(ax, "float16", axis="x")
    assert sorted(line.get_xdata()[0] for line in ax.get_lines()) == [2.0**-14, 65504.0]


def test_unknown_format_lists_the_known_ones() -> None:
    fig, ax = figure()
    with pytest.raises(UnknownNameError, match=r"unknown format 'float12': use one of .*bfloat16.*float16"):
        mark_format_limits(ax, "float12")
    with pytest.raises(UnknownNameError, match="unknown axis 'both'"):
        mark_format_limits(ax, "float16", axis="both")
