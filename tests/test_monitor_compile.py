"""GradientMonitor on ``torch.compile``d models: names and norms as in eager mode, faults located by an eager
replay of the original module, and nothing of numstab's inside a compiled region (no graph break, no warning).

The ``aot_eager`` backend runs dynamo and AOTAutograd as inductor does (the ``OptimizedModule`` wrapper, one
autograd function for the compiled graph) without compiling C++: seconds, not minutes, on the CI machine.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from test_monitor_support import TinyTransformer, plant_backward, plant_forward
from torch import nn

from numstab.monitor import GradientMonitor

BACKEND = "aot_eager"


def _batch() -> torch.Tensor:
    return torch.randn(2, 5, 6, generator=torch.Generator().manual_seed(0))


def _loss(out: torch.Tensor) -> torch.Tensor:
    return out.pow(2).mean()


def _compiled(model: nn.Module, how: str) -> nn.Module:
    if how == "torch.compile":
        return torch.compile(model, backend=BACKEND)
    model.compile(backend=BACKEND)  # in place: same module, compiled __call__
    return model


def _steps(model: nn.Module, steps: int = 3, *, watched: bool = True) -> list[dict[str, float]]:
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    out = []
    monitor = GradientMonitor(model).attach() if watched else None
    try:
        for _ in range(steps):
            opt.zero_grad()
            _loss(model(_batch())).backward()
            if monitor is not None:
                out.append(monitor.step().layer_norms)
            opt.step()
    finally:
        if monitor is not None:
            monitor.detach()
    return out


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    yield
    torch._dynamo.reset()


@pytest.mark.parametrize("how", ["torch.compile", "module.compile"])
def test_names_and_norms_equal_eager(how: str) -> None:
    eager = _steps(TinyTransformer(seed=0))
    compiled = _steps(_compiled(TinyTransformer(seed=0), how))
    for a, b in zip(eager, compiled, strict=True):
        assert list(b) == list(a) and "_orig_mod" not in "".join(b)
        assert b == pytest.approx(a, rel=1e-6)


def test_compiled_training_is_bit_identical_with_and_without_the_monitor() -> None:
    plain, watched = TinyTransformer(seed=0), TinyTransformer(seed=0)
    _steps(_compiled(plain, "torch.compile"), watched=False)
    _steps(_compiled(watched, "torch.compile"))
    assert all(torch.equal(a, b) for a, b in zip(plain.parameters(), watched.parameters(), strict=True))


@pytest.mark.parametrize("how", ["torch.compile", "module.compile"])
@pytest.mark.parametrize(
    "phase,module", [("forward", "encoder.layers.0.linear1"), ("backward", "encoder.layers.1.linear2")]
)
def test_fault_located_by_eager_replay_with_nothing_inside_the_compiled_region(
    how: str, phase: str, module: str
) -> None:
    model = TinyTransformer(seed=0)
    plant = plant_forward if phase == "forward" else plant_backward
    x = _batch()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with plant(model.get_submodule(module), math.nan):
            compiled = _compiled(model, how)
            with GradientMonitor(compiled) as monitor:
                _loss(compiled(x)).backward()
                stats = monitor.step()
                culprit = monitor.locate_nonfinite(x, _loss)
    assert stats.nonfinite
    assert culprit is not None and (culprit.module, culprit.phase, culprit.value) == (module, phase, "nan")
    assert culprit.weights == "finite"
    assert dict(torch._dynamo.utils.counters["graph_break"]) == {}  # the replay never entered dynamo
    assert [str(w.message) for w in caught if "numstab" in (w.filename + str(w.message))] == []
