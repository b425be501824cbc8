"""render/lab.py: the tables say the chapter, the measurement, the theory; every result renders."""

from __future__ import annotations

import io

import pytest

from numstab import lab
from numstab.errors import NumstabTypeError
from numstab.render import lab as lab_report
from numstab.render.terminal import make_console


def _text(table) -> str:
    console = make_console(file=io.StringIO(), width=100)
    console.print(table)
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines())


def test_taylor_table_golden():
    expected = "\n".join(
        [
            "Which activations look like the identity near 0",
            " quantity   the chapter         measured            theory              regime              agrees?",  # noqa: E501
            "─" * 100,
            " sigmoid    fails: f(0) =       f(0) = 0.500,       f(0) = 1/2, f'(0)   ≈ identity near     yes",  # noqa: E501
            "            1/2, f'(0) = 1/4    f'(0) = 0.250       = 1/4               0: no",
            " tanh       passes: x - x^3/3   f(0) = 0, f'(0) =   f(0) = 0, f'(0) =   ≈ identity near     yes",  # noqa: E501
            "                                1.00                1                   0: yes",
        ]
    )
    assert _text(lab_report.terminal_table(lab.taylor(["sigmoid", "tanh"]))) == expected


def test_mlp_rows_name_the_regime_and_the_lectures_value():
    r = lab.mlp_gradients(["relu", "sigmoid"], [0.05, 0.8], width=50, depth=20, repeats=2)
    headers, rows = lab_report.summary_rows(r)
    assert headers == ["quantity", "what the chapter says", "measured", "theory", "regime",
                       "agrees with the chapter?"]
    regimes = {row[0]: row[4] for row in rows}
    assert regimes["relu, 0.05"] == "vanishing" and regimes["relu, 0.8"] == "exploding"
    assert regimes["sigmoid, 0.05"] == "vanishing"
    assert rows[1][1] == "explodes" and rows[1][5] == "yes"  # what the lecture said about relu at 0.8


def test_a_disagreement_is_printed_under_the_table_and_boxed_in_the_html():
    r = lab.mlp_gradients(["relu"], [0.2], width=100, depth=50, repeats=2, xavier_uniform=False)
    text = _text(lab_report.terminal_table(r))
    assert "! relu at 0.2: the lecture says 'reasonable'" in text.replace("\n", " ")
    html = r._repr_html_()
    assert "Where the measurement and the chapter part, and why" in html and "<math" in html
    assert "<dt>regime</dt>" in html and "r = lab.mlp_gradients()" in html  # columns explained, the code


def test_repr_html_is_a_fragment_with_a_figure():
    html = lab.symmetry(steps=5)._repr_html_()
    assert html.startswith('<div class="numstab-report">')
    assert "<img" in html and "alt=" in html and "Breaking the symmetry" in html


def test_a_foreign_object_is_refused():
    with pytest.raises(NumstabTypeError, match="numstab.lab result"):
        lab_report.summary_rows(object())
