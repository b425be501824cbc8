"""comparisons(): the chapter's claims, checked by the result that owns the data (what the tour prints).

Each test states the verdicts at a fixed seed as literals, and a test per agreement rule moves one number
across its threshold to show the rule can say "disagrees".
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from numstab import lab
from numstab.lab.comparison import HEADERS, Comparison, magnitude_regime


def _verdicts(result) -> list[str]:
    return [row.verdict for row in result.comparisons()]


def test_a_comparison_is_data_with_a_verdict_word():
    row = Comparison("q", "the book", 1.0, 1.0, regime="stable", agrees=np.bool_(False))
    assert row.agrees is False and row.verdict == "disagrees"  # numpy's bool becomes Python's
    assert Comparison("q", "-", 1.0, 2.0, regime="exploding").verdict == "exploding"
    assert Comparison("q", "-", 1.0, 2.0).verdict == "-"
    assert row.cells() == ["q", "the book", 1.0, 1.0, "stable", "no"] and len(HEADERS) == 6
    assert HEADERS[-1] == "agrees with the chapter?" and HEADERS[-2] == "regime"
    assert Comparison("q", "-", 1.0, 1.0, agrees=True).agreement == "theory: yes"  # the chapter is silent
    assert Comparison("q", "-", 1.0, 1.0).agreement == "-"
    assert row.to_dict() == {"quantity": "q", "chapter": "the book", "measured": 1.0, "theory": 1.0,
                             "regime": "stable", "agrees": False, "note_key": "", "note_fields": (),
                             "verdict": "disagrees", "agreement": "no", "note": ""}


def test_magnitude_regimes_switch_beyond_three_decades():
    assert [magnitude_regime(x) for x in (-3.01, -3.0, 0.0, 3.0, 3.01)] == [
        "vanishing", "stable", "stable", "stable", "exploding"
    ]


def test_activation_curves_reproduce_the_books_sigmoid_numbers():
    r = lab.activation_curves()
    rows = r.comparisons()
    assert [row.quantity for row in rows[:2]] == ["sigmoid' max (at x)", "sigmoid' at x = -8"]
    assert rows[0].measured == "0.250 at x = 0"
    assert rows[1].theory == pytest.approx(3.3523767075647424e-4, rel=1e-15)  # sigma(-8) sigma(8)
    assert rows[1].measured == pytest.approx(3.3523767e-4, rel=1e-6)  # autograd in float32
    assert _verdicts(r) == ["agrees"] * 6
    assert rows[4].measured == "[-8.0, -0.1]"  # relu' = 0 left of 0 (the grid's last negative point)
    off = dataclasses.replace(r.curves[0], gradient_at_lo=2 * r.curves[0].gradient_at_lo)
    assert _verdicts(dataclasses.replace(r, curves=(off, *r.curves[1:])))[1] == "disagrees"


def test_matrix_products_agree_with_the_lyapunov_exponent():
    r = lab.matrix_products(trials=200)
    assert [row.quantity for row in r.comparisons()] == [
        "book: log10 ||M||_F, N(0,1) 4x4, 101 factors",
        "scale 0.5: 100 products of 4x4",
        "scale 0.7: 100 products of 4x4",
        "critical scale (growth 0)",
        "growth per product vs Lyapunov",
    ]
    assert _verdicts(r) == ["agrees"] * 5
    assert r.comparisons()[3].theory == "0.5724"  # exp(-(ln 2 + psi(2)) / 2)
    # the rule: |mean - theory| < 4 sd / sqrt(trials) + 0.05 decades; one decade off disagrees
    book = dataclasses.replace(r.book, mean_log10_frobenius=r.book.mean_log10_frobenius + 1.0)
    assert _verdicts(dataclasses.replace(r, book=book))[0] == "disagrees"
    assert _verdicts(dataclasses.replace(r, growth_rate=r.growth_rate + 0.1))[-2:] == ["disagrees"] * 2


def test_matrix_products_leave_out_the_lectures_scales_when_not_run():
    assert len(lab.matrix_products((1.0,), trials=50).comparisons()) == 3


def test_mlp_rows_carry_the_lectures_value_the_regime_and_the_agreement():
    r = lab.mlp_gradients(["relu", "sigmoid"], [0.05, 0.8], width=50, depth=20, repeats=2)
    rows = r.comparisons()
    assert [(row.quantity, row.chapter, row.regime, row.agreement) for row in rows] == [
        ("relu, 0.05", "-", "vanishing", "theory: yes"),
        ("relu, 0.8", "explodes", "exploding", "yes"),
        ("relu, xavier_uniform", "~1e-9", "stable", "no"),  # width 50, depth 20: not the lecture's net
        ("sigmoid, 0.05", "vanishes", "vanishing", "yes"),
        ("sigmoid, 0.8", "~5e-5", "vanishing", "yes"),
        ("sigmoid, xavier_uniform", "vanishes", "vanishing", "yes"),
    ]
    assert rows[1].theory == "1.10e+12"  # chi_1^(L/2), chi_1 = sigma_w^2 / 2 = 0.8^2 * 50 / 2 = 16: 16^10
    assert [bool(row.note) for row in rows] == [not row.agrees for row in rows]


def test_the_lectures_known_disagreements_are_flagged_and_explained():
    """At the lecture's settings (50 layers of width 100, 10 repeats): ReLU at 0.2 and 4 sigmoid - 2 at
    0.4 and 0.8, called "reasonable", explode; chi_1 > 1 says why (relu: sigma_w^2 / 2 = 2^2 / 2 = 2)."""
    rows = {row.quantity: row for row in lab.mlp_gradients().comparisons()}
    assert all(row.agrees is not None for row in rows.values())  # every row has an explicit agreement
    for pair in ("relu, 0.2", "scaled_sigmoid, 0.4", "scaled_sigmoid, 0.8"):
        row = rows[pair]
        assert (row.chapter, row.regime, row.agreement) == ("reasonable", "exploding", "no")
        assert "the lecture says 'reasonable'" in row.note and "χ₁" in row.note
    assert "χ₁ = 2 per layer" in rows["relu, 0.2"].note  # the closed form: (0.2 sqrt(100))^2 / 2
    assert rows["relu, 0.4"].agreement == "yes" and rows["sigmoid, 0.1"].agreement == "yes"
    # the rule: a printed number agrees within CLAIM_DECADES decades even across a regime boundary
    assert rows["sigmoid, 0.8"].regime == "stable" and rows["sigmoid, 0.8"].agreement == "yes"


def test_every_row_of_every_chapter_table_has_an_explicit_agreement():
    results = [
        lab.activation_curves(), lab.matrix_products(trials=50),
        lab.mlp_gradients(width=30, depth=10, repeats=2), lab.taylor(),
        lab.xavier(width=16, other_width=32, depth=3, batch=16, trials=2), lab.symmetry(steps=5),
        lab.precision(depth=40),
    ]
    for result in results:
        for row in result.comparisons():
            assert row.agreement in ("yes", "no", "theory: yes", "theory: no"), (type(result).__name__, row)


def test_taylor_says_identity_near_0_yes_or_no_and_checks_the_closed_forms_elsewhere():
    r = lab.taylor(["sigmoid", "gelu", "elu", "relu", "selu"])
    assert [(row.quantity, row.chapter, row.regime, row.agreement) for row in r.comparisons()] == [
        ("sigmoid", "fails: f(0) = 1/2, f'(0) = 1/4", "≈ identity near 0: no", "yes"),
        ("gelu", "-", "≈ identity near 0: no", "theory: yes"),  # f'(0) = Phi(0) = 1/2: no failure
        ("elu", "-", "≈ identity near 0: yes", "theory: yes"),
        ("relu", "passes (x >= 0)", "≈ identity near 0: yes", "yes"),
        ("selu", "-", "≈ identity near 0: no", "theory: yes"),  # f'(0+) = lambda = 1.0507
    ]
    wrong = dataclasses.replace(r, chapter={**r.chapter, "sigmoid": True})
    assert _verdicts(wrong)[0] == "disagrees" and "sigmoid" in wrong.comparisons()[0].note
    off = dataclasses.replace(r.checks[1], df0=0.6)  # gelu's f'(0) off its closed form 1/2
    assert dataclasses.replace(r, checks=(r.checks[0], off, *r.checks[2:])).comparisons()[1].agreement == (
        "theory: no"
    )


def test_xavier_rows_compare_the_last_forward_and_first_backward_variance():
    r = lab.xavier(width=64, other_width=256, depth=10, batch=64, trials=4, gamma=2.0)
    rows = r.comparisons()
    assert [row.quantity for row in rows[:2]] == [
        "normal 64/64: fwd Var, last", "normal 64/64: bwd Var, first"
    ]
    assert [row.chapter for row in rows[::4]] == ["1 when n_in = n_out", "compromise"]
    assert rows[0].theory == pytest.approx(4.0) and rows[4].theory == pytest.approx(4.0 * 0.64**5)
    assert _verdicts(r) == ["agrees"] * 8
    run = dataclasses.replace(r.runs[0], forward_var=r.runs[0].forward_var * 2.0)  # 0.3 decades off
    assert _verdicts(dataclasses.replace(r, runs=(run, *r.runs[1:])))[0] == "disagrees"


def test_symmetry_is_exact_for_the_constant_init():
    r = lab.symmetry(steps=100)
    assert [(row.quantity, row.measured == 0.0, row.verdict) for row in r.comparisons()] == [
        ("constant", True, "agrees"),
        ("constant + dropout", False, "agrees"),
        ("random", False, "agrees"),
    ]
    broken = dataclasses.replace(r.runs[0], difference=r.runs[0].difference + 1e-300)
    assert _verdicts(dataclasses.replace(r, runs=(broken, *r.runs[1:])))[0] == "disagrees"


def test_precision_places_the_powers_and_predicts_the_first_bad_layer():
    r = lab.precision(depth=170)
    rows = r.comparisons()
    assert [row.cells() for row in rows[:4]] == [
        ["1.5^100 in float16", "overflows (> 65504)", "inf (from step 28)", "4.07e+17: overflow", "overflow",
         "yes"],
        ["1.5^100 in bfloat16", "-", "3.69e+17", "4.07e+17: normal", "ok", "theory: yes"],
        ["1.5^100 in float32", "-", "4.07e+17", "4.07e+17: normal", "ok", "theory: yes"],
        ["0.8^100 in float16", "flushes (< 2^-24)", "1.19e-07 (subnormal from step 44, then stuck)",
         "2.04e-10: underflow", "underflow", "yes"],
    ]
    # stuck at 2^-23, 585x the exact 0.8^100: wrong as the chapter says, though not 0; the note says so
    assert "585x" in rows[3].note and "not flushed" in rows[3].note
    wrong = dataclasses.replace(r.powers[1], computed=1e17)  # bfloat16 more than 2x off: disagrees
    assert dataclasses.replace(r, powers=(r.powers[0], wrong, *r.powers[2:])).comparisons()[1].agrees is False
    products = [(row.quantity, row.measured, row.theory, row.verdict) for row in rows[6:]]
    assert products == [
        ("float16, scale 1: inf from layer", 27, 27, "agrees"),
        ("bfloat16, scale 1: inf from layer", 163, 160, "agrees"),
        ("float32, scale 1: inf from layer", 160, 160, "agrees"),
        ("float16, scale 0.25: 0 from layer", 18, 18, "agrees"),
        ("bfloat16, scale 0.25: 0 from layer", 103, 104, "agrees"),
        ("float32, scale 0.25: 0 from layer", 120, 120, "agrees"),
    ]
    late = dataclasses.replace(r.products[0], first_overflow=(31, *r.products[0].first_overflow[1:]))
    assert _verdicts(dataclasses.replace(r, products=(late, *r.products[1:])))[6] == "disagrees"  # 4 > 3


def test_the_tour_settings_give_the_tables_verdicts():
    """The quick tour's Xavier table at seed 0 (two trials): one row disagrees, by its stated rule."""
    r = lab.xavier(width=32, other_width=128, depth=8, batch=32, trials=2)
    assert _verdicts(r) == ["agrees", "agrees", "disagrees", "agrees", "agrees", "agrees", "agrees", "agrees"]
    row = r.comparisons()[2]
    assert row.measured == pytest.approx(1.2196385860443115) and math.log10(row.measured) > 0.05
