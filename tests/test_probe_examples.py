"""numstab.examples: each built-in model gets the verdict it exists to show; seeds reproduce it."""

from __future__ import annotations

import pytest
import torch

from numstab import examples
from numstab.probe import diagnose


@pytest.mark.parametrize(
    ("name", "verdict"),
    [("sigmoid_mlp", "vanishing"), ("relu_mlp_normal", "exploding"), ("constant_mlp", "symmetric")],
)
def test_each_broken_example_gets_its_verdict(name: str, verdict: str) -> None:
    model, x = examples.build(name)
    assert diagnose(model, x).verdict == verdict
    assert examples.get(name).expected == verdict  # what `numstab examples` promises


def test_the_example_list_has_the_issue_s_models_with_one_line_descriptions() -> None:
    assert set(examples.names()) >= {"sigmoid_mlp", "relu_mlp_normal", "tiny_resnet", "transformer", "lstm"}
    assert all("\n" not in examples.get(n).description for n in examples.names())


def test_build_is_seeded_and_leaves_the_global_rng() -> None:
    state = torch.get_rng_state()
    a, xa = examples.build("tiny_resnet", seed=5)
    b, xb = examples.build("tiny_resnet", seed=5)
    c, _ = examples.build("tiny_resnet", seed=6)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(xa, xb) and torch.equal(a.head.weight, b.head.weight)
    assert not torch.equal(a.head.weight, c.head.weight)
