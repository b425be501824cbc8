"""numstab.diagnose: the issue's numbers, real architectures, planted faults, bad input, with_fix."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import pytest
import torch
from torch import nn

import numstab
from numstab import examples
from numstab.errors import BadInputError, InvalidArgumentError, ModelError, NumstabTypeError
from numstab.probe import NonfiniteOrigin, diagnose
from numstab.probe.stats import summarize


def relu_mlp(init: str, *, depth: int = 30, width: int = 512, seed: int = 0) -> nn.Sequential:
    g = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    for _ in range(depth):
        lin = nn.Linear(width, width)
        if init == "xavier":
            nn.init.xavier_normal_(lin.weight, generator=g)
        else:
            nn.init.kaiming_normal_(lin.weight, nonlinearity="relu", generator=g)
        nn.init.zeros_(lin.bias)
        layers += [lin, nn.ReLU()]
    return nn.Sequential(*layers)


# -- the numbers ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def deep_reports() -> dict[str, numstab.Report]:
    x = torch.randn(64, 512, generator=torch.Generator().manual_seed(1))
    return {init: diagnose(relu_mlp(init), x) for init in ("xavier", "kaiming")}


@pytest.mark.parametrize(("init", "expected"), [("xavier", -30.0), ("kaiming", 0.0)])
def test_30_layer_relu_mlp_signal_log2_matches_he_et_al(deep_reports, init: str, expected: float) -> None:
    # He et al. 2015: with ReLU each layer multiplies E[x²] by fan_in * Var(w) / 2: 1/2 for Xavier
    # (Var = 2/(512+512)), 1 for Kaiming (Var = 2/512). 30 layers: 2^-30 and 2^0.
    report = deep_reports[init]
    gain = math.log2(report.layers[-1].activation_second_moment / report.input_second_moment)
    assert abs(gain - expected) <= 2.0


def test_only_the_xavier_relu_net_is_flagged(deep_reports) -> None:
    assert deep_reports["xavier"].verdict == "vanishing"
    assert {f.kind for f in deep_reports["xavier"].findings} == {"vanishing"}
    # Xavier's std for square layers is Kaiming's / sqrt(2): the offered rescale is sqrt(2) per layer,
    # within the +-2 of log2 gain over 30 layers the test above allows (2^(28/60) .. 2^(32/60)).
    finding = deep_reports["xavier"].findings[0]
    assert finding.scheme == "rescale" and 2 ** (28 / 60) <= finding.options["factor"] <= 2 ** (32 / 60)
    assert deep_reports["kaiming"].verdict == "healthy"
    assert deep_reports["kaiming"].findings == []


def test_mean_field_prediction_sits_beside_the_measurement(deep_reports) -> None:
    # Each Linear after a ReLU gets the theory's E[h²] from the previous Linear's measured E[h²] and
    # the gradient factor sigma_w² E[relu'(z)²] = sigma_w² / 2 (1.0 at Kaiming's sigma_w = sqrt 2).
    dense = [la for la in deep_reports["kaiming"].layers if la.kind == "Linear"][1:]
    assert len(dense) == 29 and all(la.theory_second_moment is not None for la in dense)
    # Finite width (512) and batch (64) make each layer's realized gain fluctuate by ~10%; across the
    # 29 layers the prediction must be unbiased: geometric mean of theory / measured within 2^±0.15.
    log_gaps = [math.log2(la.theory_second_moment / la.activation_second_moment) for la in dense]
    assert abs(sum(log_gaps) / len(log_gaps)) < 0.15
    assert max(abs(g) for g in log_gaps) < 0.5
    for la in dense:
        assert la.theory_grad_factor == pytest.approx(la.weight_std**2 * 512 / 2, rel=1e-6)
        assert la.theory_grad_factor == pytest.approx(1.0, abs=0.05)
        assert la.measured_grad_factor == pytest.approx(la.theory_grad_factor, rel=0.35)
    relu_layers = [la for la in deep_reports["kaiming"].layers if la.kind == "ReLU"]
    assert all(la.theory_second_moment is None for la in relu_layers)


def test_backward_seed_is_the_documented_unit_variance_vector_and_leaves_the_global_rng(generator) -> None:
    net = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 40))
    x = torch.randn(25, 16, generator=generator)
    state = torch.get_rng_state()
    report = diagnose(net, x, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    r = torch.randn(25, 40, generator=torch.Generator().manual_seed(7))
    assert report.layers[-1].grad_std == summarize(r).std  # the gradient at the output is r, exactly
    assert report.seed == 7


def test_loss_fn_with_target_is_called_as_loss_fn_output_target(generator) -> None:
    net = nn.Linear(4, 3)
    x, y = torch.randn(10, 4, generator=generator), torch.randn(10, 3, generator=generator)
    calls: list[int] = []

    def mse(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        calls.append(2)
        return ((out - target) ** 2).mean()

    report = diagnose(net, x, loss_fn=mse, target=y)
    with torch.no_grad():
        out = net(x)
    expected = (2 * (out - y) / 30).double()  # d mean((out - y)²) / d out
    assert calls == [2]
    assert report.layers[0].grad_second_moment == pytest.approx(float((expected**2).mean()), rel=1e-5)
    assert report.loss == pytest.approx(float(((out - y) ** 2).mean()), rel=1e-6)
    one = diagnose(net, x, loss_fn=lambda o: o.square().sum())  # one argument when target is None
    expected_one = float((2 * out.double()).square().mean())
    assert one.layers[0].grad_second_moment == pytest.approx(expected_one, rel=1e-5)


def test_statistics_are_exact_at_the_extremes_inside_diagnose() -> None:
    net = nn.Linear(4, 4, bias=False)
    nn.init.constant_(net.weight, 2.5e24)
    report = diagnose(net, torch.ones(3, 4), loss_fn=lambda out: out.sum() * 1e-30)
    layer = report.layers[0]
    assert layer.nonfinite == 0 and report.first_nonfinite is None
    assert layer.activation_max_abs == pytest.approx(1e25, rel=1e-6)
    # d(sum * 1e-30)/d out: every entry float32(1e-30); squared in float64, not flushed to 0.
    assert layer.grad_second_moment == pytest.approx(float(torch.tensor(1e-30)) ** 2, rel=1e-6)


# -- real architectures -----------------------------------------------------------------------------


def test_in_place_relu_resnet_gives_the_statistics_of_its_out_of_place_twin() -> None:
    inplace, x = examples.build("tiny_resnet", seed=3)
    twin = copy.deepcopy(inplace)
    for module in twin.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = False
    a, b = diagnose(inplace, x), diagnose(twin, x)
    assert [la.name for la in a.layers] == [la.name for la in b.layers]
    assert sum(isinstance(m, nn.ReLU) and m.inplace for m in inplace.modules()) == 4
    for la, lb in zip(a.layers, b.layers, strict=True):
        assert la.grad_second_moment is not None
        assert la.grad_second_moment == pytest.approx(lb.grad_second_moment, rel=1e-6, abs=0)
        assert la.grad_std == pytest.approx(lb.grad_std, rel=1e-6)
        assert la.activation_second_moment == pytest.approx(lb.activation_second_moment, rel=1e-6)
        if la.kind != "ReLU":
            assert la.weight_grad_norm == pytest.approx(lb.weight_grad_norm, rel=1e-6)
    # The in-place ReLU's Conv/BN producer reports its own output, before the ReLU overwrote it:
    bn = a.layer("stem.1")
    assert bn.activation_mean == pytest.approx(0.0, abs=1e-5)  # BatchNorm output, not relu(BN output)


@pytest.mark.parametrize("name", ["transformer", "lstm", "tiny_resnet"])
def test_built_in_architectures_are_diagnosed_healthy(name: str) -> None:
    model, x = examples.build(name)
    report = diagnose(model, x)
    assert report.verdict == "healthy", report.findings
    assert all(la.grad_std is not None for la in report.layers)


def test_transformer_encoder_reports_attention_and_notes_out_proj() -> None:
    model, x = examples.build("transformer")
    report = diagnose(model, x)
    names = [la.name for la in report.layers]
    assert "layers.0.self_attn" in names and "layers.1.linear2" in names
    assert report.never_called == ["layers.0.self_attn.out_proj", "layers.1.self_attn.out_proj"]


def test_lstm_tuple_output_is_summarized_over_all_its_tensors(generator) -> None:
    lstm = nn.LSTM(5, 7, batch_first=True)
    x = torch.randn(3, 4, 5, generator=generator)
    report = diagnose(lstm, x)
    (layer,) = report.layers
    assert layer.kind == "LSTM"
    with torch.no_grad():
        out, (h, c) = lstm(x)
    assert layer.activation_second_moment == pytest.approx(
        float(torch.cat([out.reshape(-1), h.reshape(-1), c.reshape(-1)]).double().square().mean()), rel=1e-6
    )


def test_cnn_with_batchnorm_in_train_mode_keeps_running_stats() -> None:
    g = torch.Generator().manual_seed(0)
    cnn = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 3))
    before = {k: v.clone() for k, v in cnn.state_dict().items()}
    report = diagnose(cnn, torch.randn(4, 3, 10, 10, generator=g))
    assert report.verdict == "healthy"
    assert report.layer("1").units == 8  # channels are the units of a conv output
    for key, value in cnn.state_dict().items():
        assert torch.equal(value, before[key]), key


class _Shared(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(6, 6)
        self.act = nn.Tanh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.lin(self.act(self.lin(x))))


def test_a_module_called_twice_is_reported_per_call(generator) -> None:
    report = diagnose(_Shared(), torch.randn(5, 6, generator=generator))
    assert [la.name for la in report.layers] == ["lin", "act", "lin#2", "act#2"]
    assert report.layer("lin").weight_grad_norm == report.layer("lin#2").weight_grad_norm


def test_frozen_parameters_are_diagnosed_without_gradients_of_their_own(generator) -> None:
    with torch.random.fork_rng():  # seeded: an 8-unit ReLU net drawn at random may have half its units dead
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    for p in net[0].parameters():
        p.requires_grad_(False)
    report = diagnose(net, torch.randn(16, 8, generator=generator))
    assert report.layer("0").weight_grad_norm is None
    assert report.layer("0").grad_std is None  # its output needs no gradient
    assert report.layer("2").weight_grad_norm is not None and report.layer("2").weight_grad_norm > 0
    assert all(not p.requires_grad for p in net[0].parameters())
    assert report.verdict == "healthy"


def test_everything_frozen_gives_a_forward_only_report(generator) -> None:
    net = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    net.requires_grad_(False)
    report = diagnose(net, torch.randn(8, 4, generator=generator))
    assert report.backward is False and report.loss is None
    assert all(la.grad_std is None for la in report.layers)


@dataclass
class _Out:
    logits: torch.Tensor
    index: torch.Tensor


class _DictAndDataclass(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(3, 4)
        self.b = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> dict[str, object]:
        return {"first": _Out(self.a(x), torch.arange(3)), "second": (self.b(x),)}


def test_dict_and_dataclass_outputs_are_walked(generator) -> None:
    report = diagnose(_DictAndDataclass(), torch.randn(5, 3, generator=generator))
    assert [la.name for la in report.layers] == ["a", "b"]  # the root owns no parameters: not measured
    assert all(la.grad_std is not None for la in report.layers)  # the seed reached both float outputs


# -- planted faults ---------------------------------------------------------------------------------


class _PoisonGrad(torch.autograd.Function):
    """Identity forward; backward replaces the gradient by ``value`` (a module whose backward breaks)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, value: float) -> torch.Tensor:  # type: ignore[override]
        ctx.value = value
        return x.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return torch.full_like(grad, ctx.value), None


def _plant(module: nn.Module, phase: str, value: float):
    """Make ``module``'s output (forward) or the gradient its backward passes on (backward) non-finite."""

    def forward_fault(mod, args, out):
        out = out.clone()
        out.view(-1)[0] = value
        return out

    def backward_fault(mod, args, out):
        return _PoisonGrad.apply(out, value)

    return module.register_forward_hook(forward_fault if phase == "forward" else backward_fault)


def _mlp8() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    net = nn.Sequential(*[m for _ in range(8) for m in (nn.Linear(16, 16), nn.Tanh())])
    return net, torch.randn(12, 16)


_ARCHITECTURES = {
    "mlp": (_mlp8, ["0", "7", "14"]),
    "resnet": (lambda: examples.build("tiny_resnet"), ["stem.0", "blocks.1.conv2", "head"]),
    "transformer": (lambda: examples.build("transformer"),
                    ["layers.0.linear1", "layers.1.norm1", "layers.1.linear2"]),
}


@pytest.mark.parametrize("arch", sorted(_ARCHITECTURES))
@pytest.mark.parametrize("phase", ["forward", "backward"])
@pytest.mark.parametrize("value", [math.inf, math.nan])
def test_a_fault_planted_in_module_k_is_traced_to_k_and_its_phase(arch: str, phase: str, value: float):
    build, targets = _ARCHITECTURES[arch]
    with torch.random.fork_rng():
        model, x = build()
    for name in targets:
        handle = _plant(model.get_submodule(name), phase, value)
        try:
            report = diagnose(model, x)
        finally:
            handle.remove()
        origin = report.first_nonfinite
        assert isinstance(origin, NonfiniteOrigin), (arch, name)
        assert (origin.module, origin.phase) == (name, phase), (arch, name)
        assert report.verdict == "nonfinite"
        assert report.findings[0].layers == (name,)


def test_a_non_finite_loss_is_named_as_the_origin(generator) -> None:
    net = nn.Linear(3, 1)
    report = diagnose(net, torch.randn(4, 3, generator=generator), loss_fn=lambda out: out.sum() / 0.0)
    origin = report.first_nonfinite
    assert (origin.module, origin.phase, origin.value) == ("loss_fn", "forward", "inf")


# -- bad input --------------------------------------------------------------------------------------


def test_wrong_input_shape_names_the_module_where_the_forward_failed() -> None:
    net = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Sequential(nn.Linear(12, 4)))
    with pytest.raises(BadInputError, match=r"module '2\.0' \(Linear\).*mat1 and mat2") as info:
        diagnose(net, torch.ones(4, 10))
    assert isinstance(info.value.__cause__, RuntimeError)
    assert "\n" not in str(info.value)


def test_nan_in_inputs_is_bad_input_not_a_finding() -> None:
    x = torch.ones(4, 3)
    x[1, 2] = math.nan
    with pytest.raises(BadInputError, match="1 NaN/inf value.*bad data, not model instability"):
        diagnose(nn.Linear(3, 2), x)


def test_a_model_without_parameters_is_refused() -> None:
    with pytest.raises(ModelError, match="Sequential has no parameters"):
        diagnose(nn.Sequential(nn.ReLU()), torch.ones(2, 2))


def test_an_output_without_floats_needs_a_loss_fn() -> None:
    class ArgMax(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(3, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.lin(x).argmax(dim=1)

    with pytest.raises(ModelError, match="no floating-point tensor: pass loss_fn="):
        diagnose(ArgMax(), torch.ones(2, 3))


def test_a_loss_fn_that_does_not_return_a_scalar_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match=r"loss_fn must return a scalar.*shape \(2, 3\)"):
        diagnose(nn.Linear(3, 3), torch.ones(2, 3), loss_fn=lambda out: out)


def test_a_non_module_is_a_type_error() -> None:
    with pytest.raises(NumstabTypeError, match="model must be a torch.nn.Module, got Tensor"):
        diagnose(torch.ones(2), torch.ones(2))


def test_with_fix_re_checks_a_copy_and_leaves_the_model(generator) -> None:
    model, x = examples.build("relu_mlp_normal")
    before = copy.deepcopy(model.state_dict())
    comparison = diagnose(model, x).with_fix("kaiming_normal", generator=generator)
    assert comparison.before.verdict == "exploding"
    assert comparison.after.verdict == "healthy"
    assert comparison.improved
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])


def test_rescale_multiplies_every_weight_once_and_keeps_ties(generator) -> None:
    """rescale by f: every >= 2-D weight times f exactly (a tied one once), biases and 1-D gates alone."""
    emb = nn.Embedding(10, 8)
    net = nn.Sequential(emb, nn.LayerNorm(8), nn.Linear(8, 10, bias=True))
    net[2].weight = emb.weight  # tied, as GPT-2's lm_head
    ids = torch.randint(0, 10, (4, 5), generator=generator)
    report = diagnose(net, ids)
    after = report.with_fix("rescale", factor=0.5).after
    assert after.layer("2").shared_with == "0" and report.layer("2").shared_with == "0"
    assert after.layer("0").weight_rms == 0.5 * report.layer("0").weight_rms  # once: 0.5, not 0.25
    assert after.layer("1").weight_rms == report.layer("1").weight_rms  # LayerNorm's γ untouched
    assert after.layer("2").bias_std == report.layer("2").bias_std


def test_a_fix_restricted_to_layers_leaves_the_others(generator) -> None:
    model, x = examples.build("constant_mlp")
    report = diagnose(model, x)
    finding = report.findings[0]
    assert finding.kind == "symmetric" and finding.scheme is not None
    after = report.with_fix(finding.scheme, **finding.options).after
    assert after.verdict == "healthy"
    fixed = finding.options["layers"]
    untouched = [la.name for la in report.layers if la.fan_in and la.module_name not in fixed]
    for name in untouched:
        assert after.layer(name).weight_rms == report.layer(name).weight_rms


@pytest.mark.parametrize(("options", "message"), [
    ({}, "takes factor="), ({"factor": -1.0}, "factor=-1.0"), ({"factor": math.inf}, "factor=inf"),
    ({"factor": 2.0, "scale": 1.0}, "and scale"),
])
def test_rescale_without_a_usable_factor_is_refused_and_the_model_kept(options, message: str) -> None:
    model, x = examples.build("relu_mlp_normal")
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(InvalidArgumentError, match=message):
        diagnose(model, x).with_fix("rescale", **options)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_a_fix_naming_an_unknown_layer_lists_the_names() -> None:
    model, x = examples.build("relu_mlp_normal")
    with pytest.raises(numstab.errors.UnknownNameError, match="nosuch"):
        diagnose(model, x).with_fix("rescale", factor=0.5, layers=("nosuch",))


def test_an_output_cut_from_autograd_is_an_error_not_a_healthy_verdict(generator) -> None:
    class Detached(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(8, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x).detach()

    model = Detached()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ModelError, match="loss does not depend on any of the model's 2 trainable parameter"):
        diagnose(model, torch.randn(4, 8, generator=generator), loss_fn=nn.functional.cross_entropy,
                 target=torch.tensor([0, 1, 0, 1]))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_model_on_the_meta_device_is_refused() -> None:
    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    with pytest.raises(ModelError, match="meta device.*to_empty"):
        diagnose(model, torch.randn(4, 8, device="meta"))


def test_the_nonfinite_message_quotes_the_limit_of_the_format_that_overflowed() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)).half()
    with torch.no_grad():
        model[0].weight.fill_(300.0)
    report = diagnose(model, torch.full((2, 4), 100.0, dtype=torch.float16))
    (finding,) = [f for f in report.findings if f.kind == "nonfinite"]
    assert "float16's 6.55e+04" in finding.message


def test_a_weight_stored_as_a_1_1_c_vector_is_a_gate_not_a_dense_layer(generator) -> None:
    """ConvNeXt-V2's GRN keeps γ and β as (1, 1, 1, C): no fan, not a zero layer when 0 (its output is x)."""
    class GRN(nn.Module):
        def __init__(self, c: int) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(1, 1, 1, c))
            self.bias = nn.Parameter(torch.zeros(1, 1, 1, c))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            gx = x.norm(p=2, dim=(1, 2), keepdim=True)
            return self.weight * (x * gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)) + self.bias + x

    model = nn.Sequential(nn.Linear(8, 8), GRN(8), nn.Linear(8, 2))
    report = diagnose(model, torch.randn(4, 3, 3, 8, generator=generator))
    grn = report.layer("1")
    assert grn.fan_in is None and report.findings == [] and report.verdict == "healthy"


class _ParallelBlock(nn.Module):
    """x + f2(f1(ln x)) + g2(g1(ln x)), then a norm and a head: four layers in a segment, two in series."""

    def __init__(self, d: int = 64) -> None:
        super().__init__()
        self.ln, self.out = nn.LayerNorm(d), nn.LayerNorm(d)
        self.f1, self.f2, self.g1, self.g2 = (nn.Linear(d, d) for _ in range(4))
        self.head = nn.Linear(d, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln(x)
        return self.head(self.out(x + self.f2(self.f1(h)) + self.g2(self.g1(h))))


def test_a_whole_model_rescale_is_refined_until_its_copy_is_healthy() -> None:
    """Each of f1, f2 multiplies E[x²] by 2^4 and each of g1, g2 by 2^9: g2 reads 2^+18 over 4 layers, and
    the first factor 2^(-18/8) assumes 4 in series (2 are): the copy still explodes (2^+9), so the
    offered factor comes from the copies' own findings and its copy is healthy."""
    model = _ParallelBlock()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for layer, log2_gain in ((model.f1, 4), (model.f2, 4), (model.g1, 9), (model.g2, 9)):
            layer.weight.normal_(0.0, 2 ** (log2_gain / 2) / 8, generator=gen)
            layer.bias.zero_()
    x = torch.randn(16, 64, generator=gen)
    report = diagnose(model, x, loss_fn=nn.functional.cross_entropy, target=torch.arange(16) % 10)
    finding = report.findings[0]
    assert (finding.kind, finding.scheme, set(finding.options)) == ("exploding", "rescale", {"factor"})
    first_guess = 2.0 ** (-report.forward_gain_log2 / 8)
    assert finding.options["factor"] < 0.75 * first_guess
    assert f"factor={finding.options['factor']:.3g}" in finding.fix
    assert report.with_fix("rescale", **finding.options).after.verdict == "healthy"
    assert diagnose(_scaled_copy(model, first_guess), x, loss_fn=nn.functional.cross_entropy,
                    target=torch.arange(16) % 10).verdict == "exploding"


def _scaled_copy(model: nn.Module, factor: float) -> nn.Module:
    copied = copy.deepcopy(model)
    with torch.no_grad():
        for layer in copied.modules():
            if isinstance(layer, nn.Linear):
                layer.weight.mul_(factor)
    return copied
