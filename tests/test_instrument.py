"""numstab.instrument: the model is left bit-identical (parameters forward writes, rebound buffers),
diagnose and locate_nonfinite name the same origin for the same fault (GPT-2 with tied weights too),
compiled modules are measured eagerly."""

from __future__ import annotations

import pytest
import torch
from test_monitor_support import plant_backward, plant_forward
from torch import nn

from numstab import diagnose
from numstab.errors import ModelError
from numstab.instrument import ModelState, find_origin, preserved, unwrap_compiled
from numstab.monitor import GradientMonitor, locate_nonfinite


def _loss(out: torch.Tensor) -> torch.Tensor:
    return out.float().pow(2).mean()


class _Counter(nn.Module):
    """Rebinds its buffer in forward, as ``self.count = self.count + 1`` does."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.register_buffer("count", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.count = self.count + 1
        return self.lin(x)


def _embedding() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(10, 8, max_norm=0.5), nn.Linear(8, 3))
    return model, torch.tensor([[1, 2, 3], [3, 4, 9]])


def _counter() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    return _Counter(), torch.randn(3, 4)


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict(keep_vars=True).items()}


def test_the_faults_are_real_forward_writes_the_embedding_and_rebinds_the_buffer() -> None:
    emb, ids = _embedding()
    before = emb[0].weight.detach().clone()
    emb(ids)
    assert not torch.equal(emb[0].weight, before)  # max_norm renormalized rows 1, 2, 3, 4, 9 in place
    counter, x = _counter()
    buffer = counter.count
    counter(x)
    assert counter.count is not buffer and float(counter.count) == 1.0


@pytest.mark.parametrize("build", [_embedding, _counter])
@pytest.mark.parametrize("call", ["diagnose", "locate_nonfinite", "monitor"])
def test_parameters_and_buffers_are_restored_bit_identically(build, call: str) -> None:
    model, x = build()
    objects = dict(model.state_dict(keep_vars=True))
    values = _state(model)
    if call == "diagnose":
        diagnose(model, x)
    elif call == "locate_nonfinite":
        assert locate_nonfinite(model, x, _loss) is None
    else:
        with GradientMonitor(model) as monitor:
            assert monitor.locate_nonfinite(x, _loss) is None
    after = model.state_dict(keep_vars=True)
    assert all(after[k] is objects[k] for k in objects)  # the same tensor objects (the buffer re-bound back)
    assert all(torch.equal(after[k], values[k]) for k in values)  # bit for bit


def test_a_users_hook_that_clips_a_linear_weight_in_forward_is_undone_too() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2))
    net[2].weight.data.mul_(10.0)

    def clip(module: nn.Module, args: tuple) -> None:  # weight clipping, as a WGAN critic does
        with torch.no_grad():
            module.weight.clamp_(-0.01, 0.01)

    handle = net[2].register_forward_pre_hook(clip)
    values = _state(net)
    diagnose(net, torch.randn(3, 4))
    locate_nonfinite(net, torch.randn(3, 4), _loss)
    handle.remove()
    assert all(torch.equal(net.state_dict()[k], values[k]) for k in values)


def test_model_state_keeps_values_when_asked_and_restores_them_on_error_otherwise() -> None:
    net = nn.Linear(3, 3)
    before = net.weight.detach().clone()
    state = ModelState.save(net, parameters="all", rng=False)
    with torch.no_grad():
        net.weight.mul_(2.0)
    state.restore(parameters=False)
    assert torch.equal(net.weight, 2.0 * before)
    with pytest.raises(RuntimeError), preserved(net, parameters="all"):
        with torch.no_grad():
            net.weight.zero_()
        raise RuntimeError("the caller failed")
    assert torch.equal(net.weight, 2.0 * before)


# -- one answer per fault ----------------------------------------------------------------------------

transformers = pytest.importorskip("transformers")


def _gpt2() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=64, n_positions=16, n_embd=32, n_layer=2, n_head=2,
                                     use_cache=False, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = transformers.GPT2LMHeadModel(config)
    assert model.lm_head.weight is model.transformer.wte.weight  # tied
    return model, torch.randint(0, 64, (2, 8), generator=torch.Generator().manual_seed(1))


def _logits_loss(out) -> torch.Tensor:
    return out.logits.float().pow(2).mean()


#: parameter-free modules of GPT-2 (the activation, the dropouts) and modules with weights
_GPT2_SITES = ["transformer.h.0.mlp.act", "transformer.h.1.attn.resid_dropout", "transformer.h.1.mlp.c_proj",
               "transformer.ln_f"]


@pytest.mark.parametrize("site", _GPT2_SITES)
@pytest.mark.parametrize("phase", ["forward", "backward"])
def test_diagnose_and_locate_nonfinite_name_the_same_module_and_phase_on_gpt2(site: str, phase: str) -> None:
    model, ids = _gpt2()
    plant = plant_forward if phase == "forward" else plant_backward
    with plant(model.get_submodule(site), float("nan")):
        report = diagnose(model, ids, loss_fn=_logits_loss)
        culprit = locate_nonfinite(model, ids, _logits_loss)
        seeded = diagnose(model, ids)  # the random unit-variance seed: same origin
    assert culprit is not None and (culprit.module, culprit.phase) == (site, phase)
    assert (report.first_nonfinite.module, report.first_nonfinite.phase) == (site, phase)
    assert (seeded.first_nonfinite.module, seeded.first_nonfinite.phase) == (site, phase)
    assert report.first_nonfinite.value == culprit.value == "nan"
    assert "lm_head" not in report.findings[0].layers[0]


def test_a_fault_the_replay_does_not_reproduce_is_still_reported_where_the_pass_saw_it() -> None:
    class Once(nn.Module):  # NaN on its first call only (a Python attribute: nothing restores it)
        def __init__(self) -> None:
            super().__init__()
            self.lin, self.calls = nn.Linear(3, 3), 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            return self.lin(x) * (float("nan") if self.calls == 1 else 1.0)

    net = nn.Sequential(Once(), nn.Tanh())
    report = diagnose(net, torch.ones(2, 3))
    assert net[0].calls == 2  # the pass, then the replay
    assert (report.first_nonfinite.module, report.first_nonfinite.phase) == ("1", "forward")
    assert report.verdict == "nonfinite"


def test_a_report_that_measured_no_layer_is_an_error() -> None:
    class Direct(nn.Module):  # uses its child's weight without calling it: nothing measured runs
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(3, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return nn.functional.linear(x, self.lin.weight)

    with pytest.raises(ModelError, match="measured no layer"):
        diagnose(Direct(), torch.ones(2, 3))


# -- compiled modules --------------------------------------------------------------------------------


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))


def test_a_compiled_module_is_measured_eagerly_under_its_own_names_without_warm_up() -> None:
    net = _cnn()
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    compiled = torch.compile(net)  # never called: no warm-up, no dynamo
    assert unwrap_compiled(compiled) == (net, True)
    report = diagnose(compiled, x)
    eager = diagnose(net, x)
    assert report.compiled and not eager.compiled
    assert "original module measured eagerly" in str(report) and "eagerly" not in str(eager)
    assert [la.name for la in report.layers] == ["0", "1", "3"] == [la.name for la in eager.layers]
    assert [la.activation_std for la in report.layers] == [la.activation_std for la in eager.layers]
    with plant_forward(net[3], float("inf")):
        culprit = locate_nonfinite(compiled, x, _loss)
        assert diagnose(compiled, x).first_nonfinite.module == "3"
    assert (culprit.module, culprit.phase) == ("3", "forward")


def test_find_origin_names_the_producer_not_the_modules_that_passed_it_on() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 1))
    x = torch.randn(3, 4)
    with plant_backward(net[2], float("inf")), preserved(net):
        culprit = find_origin(net, lambda: net(x), _loss)
    assert (culprit.module, culprit.phase, culprit.value) == ("2", "backward", "inf")
