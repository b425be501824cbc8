"""numstab.render.theory: the summary table (golden string), HTML fragment and phase-diagram figure."""

from __future__ import annotations

import io

import numpy as np

from numstab import theory
from numstab.render.terminal import make_console
from numstab.render.theory import phase_diagram_figure, summary_html, summary_table

# relu at sigma_w = 1, sigma_b = 0: q* = 0, chi_1 = 1/2, xi_q = xi_c = 1 / ln 2 = 1.4427, 6 xi_c = 8.656;
# four significant digits: the values are meant to be copied into an init (critical sqrt(2) = 1.414)
RELU_TABLE = """\
relu: weight_std = 1.000, bias_std = 0
 quantity              value     meaning
────────────────────────────────────────────────────────────────────────────
 critical weight_std   1.414     chi_1 = 1 at this bias_std
 q*                    0         fixed point of the pre-activation variance
 chi_1                 0.5000    squared-gradient growth per layer
 xi_q                  1.443     layers for the variance to settle
 xi_c                  1.443     layers two inputs stay distinguishable
 trainable depth       8.656     about 6 xi_c
 phase                 ordered   gradients vanish geometrically
"""


def test_summary_table_golden_string():
    console = make_console(file=io.StringIO(), width=80)
    console.print(summary_table(theory.summary("relu", 1.0, 0.0)))
    text = "\n".join(line.rstrip() for line in console.file.getvalue().splitlines()) + "\n"
    assert text == RELU_TABLE


def test_repr_html_is_a_fragment_with_the_numbers():
    html = theory.summary("tanh", 1.5**0.5, 0.05**0.5)._repr_html_()
    assert "<html" not in html and "<table" in html
    assert "0.9386" in html and "ordered" in html  # chi_1, four significant digits


def test_phase_diagram_figure_marks_the_point_and_the_critical_line():
    pd = theory.phase_diagram("tanh", np.linspace(0.5, 3.0, 30), np.linspace(0.0, 0.5, 5))
    fig = phase_diagram_figure(pd, point=(1.2, 0.1))
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert "chi_1 = 1" in labels and "this initialization" in labels
    critical = next(line for line in ax.get_lines() if line.get_label() == "chi_1 = 1")
    np.testing.assert_array_equal(critical.get_xdata(), pd.critical_weight_stds)


def test_summary_html_is_self_contained():
    html = summary_html(theory.summary("relu"))
    assert "http://" not in html and "https://" not in html.replace("https://no-color.org", "")


def test_phase_diagram_repr_html_has_the_figure_with_alt_text():
    html = theory.phase_diagram("tanh", np.linspace(0.5, 3.0, 12), [0.0, 0.3])._repr_html_()
    assert "<html" not in html and 'src="data:image/png;base64,' in html
    assert "alt=\"Heat map of the correlation depth scale xi_c of tanh" in html
