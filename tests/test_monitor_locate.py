"""locate_nonfinite: planted faults found in module k and the right phase; nothing the user owns changes."""

from __future__ import annotations

import zlib

import pytest
import torch
from test_monitor_support import ARCHITECTURES, TinyTransformer, cnn, mlp, plant_backward, plant_forward
from torch import nn

from numstab.errors import BadInputError
from numstab.monitor import Culprit, GradientMonitor, locate_nonfinite

CASES = [(arch, k) for arch, (_, _, targets) in ARCHITECTURES.items() for k in targets]
VALUES = {"inf": float("inf"), "nan": float("nan")}


def _setup(arch: str, seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    factory, shape, _ = ARCHITECTURES[arch]
    model = factory(seed=seed)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed), requires_grad=True)
    return model, x


def _loss(out: torch.Tensor) -> torch.Tensor:
    return out.float().pow(2).mean()


@pytest.mark.parametrize("arch,k", CASES)
@pytest.mark.parametrize("phase", ["forward", "backward"])
def test_fp32_fault_is_localised_to_module_k(arch: str, k: str, phase: str) -> None:
    model, x = _setup(arch)
    # both kinds across the cases; crc32, not hash(), which Python salts per process
    value = "nan" if zlib.crc32(f"{arch}/{k}/{phase}".encode()) % 2 else "inf"
    plant = plant_forward if phase == "forward" else plant_backward
    with plant(model.get_submodule(k), VALUES[value]):
        culprit = locate_nonfinite(model, x, _loss)
    assert culprit is not None
    assert (culprit.module, culprit.phase, culprit.value) == (k, phase, value)
    assert culprit.dtype == torch.float32
    assert culprit.rank == 0 and culprit.max_abs_before > 0


@pytest.mark.parametrize("arch,k", [(a, t[i]) for a, (_, _, t) in ARCHITECTURES.items() for i in (0, -1)])
@pytest.mark.parametrize("phase", ["forward", "backward"])
def test_autocast_with_grad_scaler_fault_is_localised(arch: str, k: str, phase: str) -> None:
    # CPU autocast computes Linear/Conv in bfloat16; the scaler multiplies the loss as training would
    model, x = _setup(arch)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    plant = plant_forward if phase == "forward" else plant_backward
    with plant(model.get_submodule(k), float("inf")), torch.autocast("cpu", dtype=torch.bfloat16):
        culprit = locate_nonfinite(model, x, _loss, scaler=scaler)
    assert culprit is not None and (culprit.module, culprit.phase) == (k, phase)
    if phase == "forward":
        assert culprit.dtype == torch.bfloat16  # the Linear/Conv output under autocast


def test_backward_producer_not_the_modules_that_passed_it_on() -> None:
    # the poisoned gradient leaves module "6" and flows through 5, 4, ..., 0: only 6 produced it
    model, x = _setup("mlp")
    with plant_backward(model.get_submodule("6"), float("nan")):
        culprit = locate_nonfinite(model, x, _loss)
    assert culprit == Culprit("6", "backward", torch.float32, culprit.max_abs_before, 0, "nan")


def test_forward_culprit_reports_largest_input_before() -> None:
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[3.0, 0.0], [0.0, -5.0]]))
    with plant_forward(net[1], float("inf")):
        culprit = locate_nonfinite(net, torch.tensor([[1.0, 1.0]]), lambda out: out.sum())
    assert culprit is not None and culprit.module == "1" and culprit.max_abs_before == 5.0


def test_non_finite_loss_is_blamed_on_loss_fn() -> None:
    model, x = _setup("mlp")
    culprit = locate_nonfinite(model, x, lambda out: torch.log(out - out).sum())  # log(0) = -inf
    assert culprit is not None and (culprit.module, culprit.phase) == ("loss_fn", "forward")


def test_overflow_from_large_weights_is_found_in_forward() -> None:
    # not planted by a hook: a weight of 1e30 makes Linear "2" overflow float32 by itself
    net = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 1))
    with torch.no_grad():
        net[0].weight.fill_(0.25)  # every unit positive: relu passes 1e10 on (an unseeded init could zero it)
        net[0].bias.zero_()
        net[2].weight.fill_(1e30)
    culprit = locate_nonfinite(net, torch.full((2, 4), 1e10), lambda out: out.sum())
    assert culprit is not None and (culprit.module, culprit.phase) == ("2", "forward")


def _snapshot(model: nn.Module, opt: torch.optim.Optimizer) -> dict[str, object]:
    return {
        "params": [p.detach().clone() for p in model.parameters()],
        "grads": [p.grad.clone() for p in model.parameters()],
        "buffers": [b.clone() for b in model.buffers()],
        "rng": torch.get_rng_state(),
        "opt": {k: {n: t.clone() for n, t in v.items()} for k, v in opt.state_dict()["state"].items()},
        "hooks": [(len(m._forward_hooks), len(m._forward_pre_hooks)) for m in model.modules()],
        "training": [m.training for m in model.modules()],
    }


def _assert_same(before: dict[str, object], after: dict[str, object]) -> None:
    for key in before:
        if key == "opt":
            for k, state in before[key].items():
                for n, t in state.items():
                    assert torch.equal(t, after[key][k][n]), (key, k, n)
        elif isinstance(before[key], list) and before[key] and isinstance(before[key][0], torch.Tensor):
            assert all(torch.equal(a, b) for a, b in zip(before[key], after[key], strict=True)), key
        elif isinstance(before[key], torch.Tensor):
            assert torch.equal(before[key], after[key]), key
        else:
            assert before[key] == after[key], key


@pytest.mark.parametrize("planted", ["forward", "backward", "none"])
def test_replay_changes_nothing(planted: str) -> None:
    # BatchNorm running stats, dropout RNG, .grad, parameters, optimizer state, hooks, train mode
    model = nn.Sequential(cnn(), nn.Dropout(0.5))
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    _loss(model(x)).backward()
    opt.step()
    _loss(model(x)).backward()
    handle = {"forward": plant_forward, "backward": plant_backward}.get(planted)
    hooks = handle(model[0][3], float("nan")) if handle else None
    before = _snapshot(model, opt)
    culprit = GradientMonitor(model).locate_nonfinite(x, _loss)
    _assert_same(before, _snapshot(model, opt))
    assert (culprit is None) == (planted == "none")
    if hooks is not None:
        hooks.remove()


def test_finite_batch_returns_none_attached_or_not() -> None:
    model, x = _setup("transformer")
    assert locate_nonfinite(model, x, _loss) is None
    with GradientMonitor(model) as monitor:
        assert monitor.locate_nonfinite(x, _loss) is None
        assert monitor.locate_nonfinite(x, nn.functional.mse_loss, torch.zeros(2, 1)) is None


def test_shared_module_second_call_is_named() -> None:
    shared = nn.Linear(3, 3)

    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.shared = shared

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.shared(torch.relu(self.shared(x)))  # 3e20 after the first call, inf after the second

    net = Twice()
    with torch.no_grad():
        shared.weight.fill_(1e20)
    culprit = locate_nonfinite(net, torch.ones(1, 3), lambda out: out.sum())
    assert culprit is not None and culprit.module == "shared#2"


def test_non_finite_inputs_are_bad_input() -> None:
    model = mlp()
    x = torch.ones(4, 8)
    x[1, 2] = float("nan")
    with pytest.raises(BadInputError, match="inputs already contain inf or NaN"):
        locate_nonfinite(model, x, _loss)


def test_transformer_with_dropout_replays_with_restored_rng() -> None:
    model = TinyTransformer(dropout=0.1)
    x = torch.randn(2, 5, 6, generator=torch.Generator().manual_seed(0))
    rng = torch.get_rng_state()
    with plant_backward(model.encoder.layers[0].linear2, float("inf")):
        culprit = locate_nonfinite(model, x, _loss)
    assert culprit is not None and culprit.module == "encoder.layers.0.linear2"
    assert torch.equal(rng, torch.get_rng_state())
