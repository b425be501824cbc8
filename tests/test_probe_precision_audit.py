"""numstab.precision.audit: a planted layer is found (and only it), real models get no contradicted advice,
the user's model is left as found, and bad input gets one clear error."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

import numstab
from numstab.errors import BadInputError, InvalidArgumentError, ModelError, UnknownNameError
from numstab.precision import audit, measure
from numstab.probe import precision_rules as rules
from numstab.probe.precision_audit import DEFAULT_RECIPES, dynamic_loss_scale

os.environ.setdefault("HF_HUB_OFFLINE", "1")


class Spread(nn.Module):
    """Feature i times a fixed 2**e_i, the e_i spread evenly over [-20, 20] in a shuffled order: every block
    of 16 or 32 features spans about 2**40. Straight-through: the gradient passes unchanged, so only the
    next layer's input is affected."""

    def __init__(self, width: int, generator: torch.Generator) -> None:
        super().__init__()
        exps = torch.linspace(-20, 20, width)[torch.randperm(width, generator=generator)]
        self.register_buffer("scale", torch.exp2(exps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + (x * self.scale - x).detach()


def planted(generator: torch.Generator) -> nn.Sequential:
    return nn.Sequential(nn.Linear(64, 128), nn.GELU(), nn.Linear(128, 128), nn.GELU(),
                         Spread(128, generator), nn.Linear(128, 128), nn.GELU(), nn.Linear(128, 10))


def test_the_planted_layer_and_only_it_keeps_high_precision(generator):
    result = audit(planted(generator), torch.randn(64, 64, generator=generator))
    assert result.keep_high_precision == ["5"]
    assert result.layer("5").tolerated == ("bfloat16",)  # 2**20 overflows float16's 65504
    for recipe in ("e4m3_tensor", "mxfp8_e4m3", "mxfp8_e5m2", "nvfp4"):
        record = result.record("5", "input", recipe)
        assert record.problem is not None and record.problem.startswith("underflow")
    # e5m2 spans 2**-16 .. 2**15.8: at least the values below amax * 2**-32 of a log-uniform 2**40 flush
    assert result.record("5", "input", "e5m2_tensor").underflow > (40 - 33) / 40 - 0.05
    assert {"e4m3_tensor", "mxfp8_e4m3", "nvfp4"} <= set(result.layer("2").tolerated)


# -- real models at their library's default init ---------------------------------------------------------


def hf_models(generator: torch.Generator) -> dict[str, tuple[nn.Module, torch.Tensor]]:
    T = pytest.importorskip("transformers")
    torch.manual_seed(0)  # HF initializes from the global RNG: the same models on every run
    ids = torch.randint(0, 256, (2, 16), generator=generator)
    image = torch.randn(2, 3, 32, 32, generator=generator)
    small = {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4, "intermediate_size": 128}
    return {
        "gpt2": (T.GPT2LMHeadModel(T.GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=256,
                                                n_positions=32)), ids),
        "bert": (T.BertModel(T.BertConfig(vocab_size=256, **small)), ids),
        "llama": (T.LlamaForCausalLM(T.LlamaConfig(vocab_size=256, num_key_value_heads=2, **small)), ids),
        "vit": (T.ViTModel(T.ViTConfig(image_size=32, patch_size=8, **small)), image),
        "resnet": (T.ResNetModel(T.ResNetConfig(embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1])),
                   image),
    }


def outside(record) -> bool:
    """The documented rule, from the literal thresholds: 4x the Gaussian rel MSE, 5 points of underflow
    beyond it, any overflow where the element overflows to inf."""
    under_floor, mse_floor = rules.GAUSSIAN_FLOOR[record.recipe]
    to_inf = record.recipe in ("bfloat16", "float16", "e5m2_cast")
    return (record.rel_mse > 4 * mse_floor * (1 + 1e-3) or record.underflow > under_floor + 0.05 + 1e-3
            or (to_inf and record.overflow > 0))


def test_real_models_get_advice_that_the_numbers_support(generator):
    for name, (model, x) in hf_models(generator).items():
        result = audit(model, x)
        assert result.keep_high_precision == [], name  # all train in fp8 at init (with scaling)
        assert result.backward and len(result.layers) >= 5, name
        for record in result.records:
            assert (record.problem is not None) == outside(record), (name, record)
        for layer in result.layers:
            mine = [r for r in result.records if r.module == layer.name]
            tolerated = tuple(rec for rec in DEFAULT_RECIPES
                              if not any(outside(r) for r in mine if r.recipe == rec))
            assert layer.tolerated == tolerated, (name, layer.name)
            assert layer.keep_high_precision == (not any(rules.is_low_precision(r) for r in tolerated))
            # MXFP8 at least; per-tensor E4M3 flushes, e.g., Llama's first-position query gradients (zero
            # but for roundoff, 2**-20 of the largest: a causal softmax over one key has no gradient)
            assert {"mxfp8_e4m3", "bfloat16"} <= set(layer.tolerated), (name, layer.name)
        tensors = {(r.kind, r.tensor, r.dim) for r in result.records}
        if name == "resnet":
            assert ("Conv2d", "input", 1) in tensors and ("Conv2d", "weight", 1) in tensors
        if name == "gpt2":
            assert ("Conv1D", "weight", 0) in tensors and ("Conv1D", "grad_output", 2) in tensors


def test_gpt2_residual_weights_flush_under_an_unscaled_e4m3_cast_as_the_normal_law_says(generator):
    T = pytest.importorskip("transformers")
    torch.manual_seed(0)
    model = T.GPT2LMHeadModel(T.GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=256, n_positions=32))
    result = audit(model, torch.randint(0, 256, (2, 16), generator=generator), recipes=["e4m3_cast"])
    # c_proj weights ~ N(0, (0.02 / sqrt(2 * n_layer))**2) = N(0, 0.01**2); E4M3 flushes |w| <= 2**-10
    p = math.erf(2.0**-10 / 0.01 / math.sqrt(2))  # 0.0778
    for layer in ("transformer.h.0.attn.c_proj", "transformer.h.1.mlp.c_proj"):
        record = result.record(layer, "weight", "e4m3_cast")
        n = math.prod(record.shape)
        assert abs(record.underflow - p) < 4 * math.sqrt(p * (1 - p) / n), layer
        assert record.problem.startswith("underflow")
    assert result.layer("transformer.h.0.mlp.c_fc").tolerated == ("e4m3_cast",)  # std 0.02: 3.1% flush


# -- loss scale ---------------------------------------------------------------------------------------


def test_dynamic_loss_scale_rescues_tiny_float16_gradients(generator):
    net = nn.Sequential(nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 4))
    x = torch.randn(16, 32, generator=generator)
    result = audit(net, x, loss_fn=lambda y: 1e-7 * y.square().sum(), recipes=["float16"])
    g = result.record("2", "grad_output", "float16")
    assert g.scale == result.loss_scale >= 2.0**20 and math.log2(g.scale).is_integer()
    assert 0 < g.headroom_bits <= 1  # the largest gradient sits in the top binade below 65504
    assert g.problem is None and result.record("2", "input", "float16").scale == 1.0
    unscaled = audit(net, x, loss_fn=lambda y: 1e-7 * y.square().sum(), recipes=["float16"], loss_scale=1.0)
    assert unscaled.record("2", "grad_output", "float16").problem.startswith("underflow")
    assert dynamic_loss_scale(1.0) == 2.0**15 and dynamic_loss_scale(65520.0) == 0.5
    assert dynamic_loss_scale(0.0) == 1.0


def test_output_gradients_before_an_inplace_op_on_a_raw_input_layer(generator):
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(inplace=True), nn.Linear(8, 2))
    x = torch.randn(16, 4, generator=generator)  # no grad: the first layer is reached through its weight
    result = audit(net, x, recipes=["e4m3_tensor"])
    h = nn.functional.linear(x, net[0].weight, net[0].bias).detach().requires_grad_(True)
    y = net[2](torch.relu(h))
    r = torch.randn(y.shape, generator=torch.Generator().manual_seed(0))  # the audit's seed 0 backward
    (expected,) = torch.autograd.grad((y * r).sum(), h)
    m = measure(expected, ["e4m3_tensor"])["e4m3_tensor"]
    got = result.record("0", "grad_output", "e4m3_tensor")
    assert (got.rel_mse, got.underflow) == (m.rel_mse, m.fraction(m.underflow)) and got.shape == (16, 8)


# -- the user's model is left as found ------------------------------------------------------------------


def snapshot(model: nn.Module) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_untouched(model: nn.Module, before: dict, training: bool) -> None:
    after = model.state_dict()
    assert all(torch.equal(before[k].view(-1).view(torch.uint8), after[k].view(-1).view(torch.uint8))
               for k in before if before[k].numel())
    assert all(m.training == training for m in model.modules())
    assert all(p.grad is None for p in model.parameters())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


@pytest.mark.parametrize("training", [True, False])
def test_model_rng_and_mode_are_left_as_found(training, generator):
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(inplace=True), nn.Dropout(0.5),
                          nn.Flatten(), nn.Linear(8 * 6 * 6, 4))
    model.train(training)
    before, rng = snapshot(model), torch.get_rng_state()
    audit(model, torch.randn(4, 3, 8, 8, generator=generator))
    assert_untouched(model, before, training)
    assert torch.equal(torch.get_rng_state(), rng)


def test_a_failing_forward_leaves_the_model_as_found(generator):
    class Breaks(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("shape mismatch")

    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), Breaks())
    before = snapshot(model)
    with pytest.raises(BadInputError, match="module '2'"):
        audit(model, torch.randn(8, 4, generator=generator))
    assert_untouched(model, before, True)


def test_a_tensor_already_nonfinite_is_a_model_error_not_a_finding(generator):
    class Blow(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 1e38 * 1e38

    model = nn.Sequential(nn.Linear(4, 4), Blow(), nn.Linear(4, 2))
    before = snapshot(model)
    with pytest.raises(ModelError, match="input of layer '2' holds NaN or inf.*numstab.diagnose"):
        audit(model, torch.randn(8, 4, generator=generator))
    assert_untouched(model, before, True)


# -- bad input ------------------------------------------------------------------------------------------


def test_bad_input_gets_one_clear_error(generator):
    x = torch.randn(4, 4, generator=generator)
    with pytest.raises(UnknownNameError, match=r"unknown recipe 'mxfp4': use one of bfloat16, .*nvfp4"):
        audit(nn.Linear(4, 4), x, recipes=["mxfp4"])
    with pytest.raises(ModelError, match="no GEMM-like layer .*Linear, Conv1d/2d/3d"):
        audit(nn.Sequential(nn.LayerNorm(4), nn.Tanh()), x)
    with pytest.raises(InvalidArgumentError, match="recipes must name at least one"):
        audit(nn.Linear(4, 4), x, recipes=[])
    with pytest.raises(InvalidArgumentError, match="loss_scale must be a finite number > 0"):
        audit(nn.Linear(4, 4), x, loss_scale=-1.0)
    with pytest.raises(BadInputError, match="NaN/inf"):
        audit(nn.Linear(4, 4), torch.full((2, 4), math.nan))
    assert numstab.precision.audit is audit and "audit" in dir(numstab.precision)


def test_the_ground_layer_does_not_load_the_probe_until_audit_is_asked_for():
    code = ("import sys, numstab.precision as p; assert 'numstab.probe' not in sys.modules; "
            "p.quantize; assert 'numstab.probe' not in sys.modules; "
            "p.audit; assert 'numstab.probe' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
