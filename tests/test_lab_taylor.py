"""taylor: the chapter's identity-near-0 verdicts."""

from __future__ import annotations

import pytest

from numstab import activations
from numstab.errors import UnknownNameError
from numstab.lab import taylor


def test_the_chapters_four_verdicts():
    t = taylor(["tanh", "relu", "sigmoid", "scaled_sigmoid"])
    assert {c.name: c.identity_near_zero for c in t.checks} == {
        "tanh": True,
        "relu": True,
        "sigmoid": False,
        "scaled_sigmoid": True,
    }
    sigmoid = next(c for c in t.checks if c.name == "sigmoid")
    assert (sigmoid.f0, sigmoid.df0) == (0.5, pytest.approx(0.25, abs=1e-9))  # 1/2 + x/4 + ...
    assert t.chapter == {"tanh": True, "relu": True, "sigmoid": False, "scaled_sigmoid": True}


def test_default_checks_every_registered_activation():
    assert [c.name for c in taylor().checks] == activations.names()


def test_aliases_resolve_and_unknown_names_list_the_valid_ones():
    assert taylor(["4*sigmoid(x)-2"]).verdict("scaled_sigmoid") is True
    with pytest.raises(UnknownNameError, match="use one of"):
        taylor(["sigmoidal"])
