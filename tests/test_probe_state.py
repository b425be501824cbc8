"""diagnose leaves the model as found: hooks, outputs, buffers, mode, requires_grad, .grad, the RNG."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from numstab import examples
from numstab.errors import BadInputError
from numstab.instrument import preserved
from numstab.probe import diagnose

_HOOK_DICTS = (
    "_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
    "_forward_hooks_with_kwargs", "_forward_hooks_always_called", "_forward_pre_hooks_with_kwargs",
    "_state_dict_hooks", "_state_dict_pre_hooks", "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks",
)


def _hooks(model: nn.Module) -> dict[str, dict[str, dict]]:
    return {name: {d: dict(getattr(m, d)) for d in _HOOK_DICTS} for name, m in model.named_modules()}


def _snapshot(model: nn.Module) -> dict[str, object]:
    return {
        "hooks": _hooks(model),
        "training": {n: m.training for n, m in model.named_modules()},
        "requires_grad": {n: p.requires_grad for n, p in model.named_parameters()},
        "tensor_hooks": {n: p._backward_hooks for n, p in model.named_parameters()},
        "grad": {n: p.grad for n, p in model.named_parameters()},
        "grad_values": {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()},
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "rng": torch.get_rng_state(),
    }


def _assert_unchanged(model: nn.Module, before: dict[str, object]) -> None:
    after = _snapshot(model)
    assert after["hooks"] == before["hooks"]
    assert after["training"] == before["training"]
    assert after["requires_grad"] == before["requires_grad"]
    assert after["tensor_hooks"] == before["tensor_hooks"]  # None stays None, not {}
    for name, grad in before["grad"].items():
        assert after["grad"][name] is grad, name
        if grad is not None:
            assert torch.equal(grad, before["grad_values"][name])
    for key, value in before["state"].items():
        assert torch.equal(after["state"][key], value), key
    assert torch.equal(after["rng"], before["rng"])


class _Dropout(nn.Module):
    """A ResNet with dropout, a user's own hook, a frozen stem, existing .grad, half in eval mode."""

    def __init__(self) -> None:
        super().__init__()
        self.net, _ = examples.build("tiny_resnet", seed=1)
        self.drop = nn.Dropout(0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.net(x))


def _busy_model() -> tuple[nn.Module, torch.Tensor, list[int]]:
    model = _Dropout()
    _, x = examples.build("tiny_resnet", seed=1)
    calls: list[int] = []
    model.net.head.register_forward_hook(lambda m, a, o: calls.append(1))
    model.net.stem[0].weight.requires_grad_(False)
    model.net.head.weight.grad = torch.full_like(model.net.head.weight, 0.5)
    model.net.blocks[1].eval()
    return model, x, calls


@pytest.mark.parametrize("train", [True, False])
def test_diagnose_leaves_the_model_and_the_global_rng_as_found(train: bool) -> None:
    model, x, calls = _busy_model()
    model.train(train)
    reference = copy.deepcopy(model).eval()
    with torch.no_grad():
        out_before = reference(x)
    before = _snapshot(model)
    calls.clear()  # the reference copy shares the user's hook
    report = diagnose(model, x)
    _assert_unchanged(model, before)
    assert calls == [1]  # the user's own hook ran once, and is still registered
    with torch.no_grad():
        assert torch.equal(copy.deepcopy(model).eval()(x), out_before)  # bit-identical outputs
    if train:  # train-mode BatchNorm updated its running stats during the pass; they were restored
        assert report.layer("net.stem.1").activation_mean == pytest.approx(0.0, abs=1e-5)


class _Explodes(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(4)
        self.lin = nn.Linear(4, 4)
        self.bad = nn.Linear(5, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bad(self.lin(self.bn(x)))


def test_a_model_that_raises_half_way_is_restored_too() -> None:
    model = _Explodes()
    model.lin.weight.grad = torch.ones_like(model.lin.weight)
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    before = _snapshot(model)
    with pytest.raises(BadInputError, match="module 'bad' \\(Linear\\)"):
        diagnose(model, x)
    _assert_unchanged(model, before)  # BatchNorm's running stats, updated before the failure, restored


def test_preserved_restores_a_buffer_that_was_replaced_not_updated() -> None:
    bn = nn.BatchNorm1d(2)
    original = bn.running_mean
    with preserved(bn):
        bn.running_mean = torch.full((2,), 9.0)
        bn.eval()
    assert bn.running_mean is original and bn.running_mean.tolist() == [0.0, 0.0]
    assert bn.training
