"""locate_nonfinite(level="op"): planted faults, each with its producing aten op, module, phase and line.

Every planted model is ``pre -> fault -> post`` (two Linear layers around the faulty module), so the
non-finite value is passed along by ``post``'s ops, the loss's and the backward's: none of them may be named.
A case's source line is the line of this file that carries its marker comment (``# <- name``).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

from numstab.errors import UnknownNameError
from numstab.monitor import GradientMonitor, locate_nonfinite
from numstab.monitor.locate import NOT_REPRODUCED

HERE = Path(__file__)
WIDTH = 4


def line_of(marker: str) -> str:
    """``test_locate_ops.py:N`` of the line whose comment starts with ``# <- marker``."""
    lines = HERE.read_text().splitlines()
    hits = [
        i + 1
        for i, text in enumerate(lines)
        if "# <- " in text and text.split("# <- ")[1].split()[0] == marker
    ]
    assert len(hits) == 1, marker
    return f"{HERE.name}:{hits[0]}"


class Fn(nn.Module):
    """A module whose forward is ``fn(x)`` (the planted fault)."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


class BadBackward(torch.autograd.Function):
    """Identity forward; its backward divides by zero."""

    @staticmethod
    def forward(ctx: object, x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> torch.Tensor:
        return grad / (grad - grad)  # <- custom_backward


class Buffered(nn.Module):
    """Multiplies by a buffer that holds NaN."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("scale", torch.full((WIDTH,), math.nan))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale  # <- buffer


class Attention(nn.Module):
    """Single-head attention whose mask hides every key from the last query."""

    def __init__(self) -> None:
        super().__init__()
        self.q = nn.Linear(WIDTH, WIDTH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = self.q(x) @ x.transpose(-1, -2)
        mask = torch.zeros_like(scores, dtype=torch.bool)
        mask[-1] = True
        scores = scores.masked_fill(mask, -math.inf)
        return torch.softmax(scores, dim=-1) @ x  # <- attention


def log_zero(x: torch.Tensor) -> torch.Tensor:
    return torch.log(x * 0)  # <- log_zero


def log_negative(x: torch.Tensor) -> torch.Tensor:
    return torch.log(-x.abs() - 1)  # <- log_negative


def sqrt_negative(x: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(-x.abs() - 1)  # <- sqrt_negative


def div_zero(x: torch.Tensor) -> torch.Tensor:
    return (x.abs() + 1) / (x * 0)  # <- div_zero


def zero_div_zero(x: torch.Tensor) -> torch.Tensor:
    return (x * 0) / (x * 0)  # <- zero_div_zero


def exp_f32(x: torch.Tensor) -> torch.Tensor:
    return torch.exp(x * 0 + 100)  # <- exp_f32


def exp_f16(x: torch.Tensor) -> torch.Tensor:
    return torch.exp(x.half() * 0 + 12).float()  # <- exp_f16 (e**12 > 65504)


def pow_f32(x: torch.Tensor) -> torch.Tensor:
    return (x * 0 + 10) ** 40  # <- pow_f32


def acos_domain(x: torch.Tensor) -> torch.Tensor:
    return torch.acos(x * 0 + 2)  # <- acos_domain


def softmax_inf_logits(x: torch.Tensor) -> torch.Tensor:
    # +inf enters as masked_fill's argument: softmax computes inf - inf
    return torch.softmax(x.masked_fill(x == x, math.inf), -1)  # <- softmax_inf_logits


def softmax_overflowed_logits(x: torch.Tensor) -> torch.Tensor:
    # the logits overflow first: the multiplication is the producer, softmax only turns its inf into NaN
    return torch.softmax((x * 0 + 3e38) * 10, -1)  # <- softmax_overflowed_logits


def inf_over_inf(x: torch.Tensor) -> torch.Tensor:
    # exp overflows and the division inf/inf makes NaN: exp is the root
    return torch.exp(x * 0 + 100) / torch.exp(x * 0 + 100)  # <- inf_over_inf


def f16_matmul(x: torch.Tensor) -> torch.Tensor:
    # 4 * 300 * 300 = 360000 > 65504
    return ((x * 0 + 300).half() @ x.new_full((WIDTH, WIDTH), 300).half()).float()  # <- f16_matmul


def f16_sum(x: torch.Tensor) -> torch.Tensor:
    return x + (x * 0 + 60000).half().sum(-1, keepdim=True).float()  # <- f16_sum


def sqrt_zero_backward(x: torch.Tensor) -> torch.Tensor:
    # sqrt(0) = 0 is fine; its derivative 1 / (2 sqrt(0)) is not
    return torch.sqrt(x * 0)  # <- sqrt_zero_backward


def std_zero(x: torch.Tensor) -> torch.Tensor:
    return (x * 0) / (x * 0).std(-1, keepdim=True)  # <- std_zero


def constant_ln(x: torch.Tensor) -> torch.Tensor:
    # float16, BERT's eps: a constant row has variance 0 and rstd = 1/sqrt(1e-12) = 1e6 > 65504, stored as
    # inf in float16 (the forward output is still 0); its backward multiplies by it: NaN
    row = (x * 0 + 1).half()
    return nn.functional.layer_norm(row, (WIDTH,), eps=1e-12).float()  # <- layernorm


def masked_exp(x: torch.Tensor) -> torch.Tensor:
    # the overflowing branch is masked in the forward; exp's backward multiplies its 0 gradient by inf
    return torch.where(x > 1e30, torch.exp(x * 0 + 100), x)  # <- zero_times_inf


def masked_sqrt(x: torch.Tensor) -> torch.Tensor:
    # NaN produced in the forward by sqrt(-1), discarded by where, back in the backward (0 * NaN)
    return torch.where(x > 1e30, torch.sqrt(x * 0 - 1), x)  # <- masked_sqrt


def inplace_log(x: torch.Tensor) -> torch.Tensor:
    y = x * 0
    y.log_()  # <- inplace_log
    return y


@dataclass(frozen=True)
class Case:
    """A planted fault and the answer: the op, its module, the phase and the kind of value."""

    name: str
    fault: Callable[[], nn.Module]
    op: str
    phase: str = "forward"
    value: str = "inf"
    module: str = "fault"
    autocast: bool = True  # the same answer under bf16 autocast (float16-specific cases are not)


def fn(f: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], nn.Module]:
    return lambda: Fn(f)


NAN = {"value": "nan"}
BACKWARD = {"phase": "backward"}
F16 = {"autocast": False}
CASES = [
    Case("log_zero", fn(log_zero), "aten.log.default"),
    Case("log_negative", fn(log_negative), "aten.log.default", **NAN),
    Case("sqrt_negative", fn(sqrt_negative), "aten.sqrt.default", **NAN),
    Case("div_zero", fn(div_zero), "aten.div.Tensor"),
    Case("zero_div_zero", fn(zero_div_zero), "aten.div.Tensor", **NAN),
    Case("exp_f32", fn(exp_f32), "aten.exp.default"),
    Case("exp_f16", fn(exp_f16), "aten.exp.default", **F16),
    Case("pow_f32", fn(pow_f32), "aten.pow.Tensor_Scalar"),
    Case("acos_domain", fn(acos_domain), "aten.acos.default", **NAN),
    Case("softmax_inf_logits", fn(softmax_inf_logits), "aten._softmax.default", **NAN),
    Case("softmax_overflowed_logits", fn(softmax_overflowed_logits), "aten.mul.Tensor"),
    Case("inf_over_inf", fn(inf_over_inf), "aten.exp.default"),
    Case("custom_backward", fn(BadBackward.apply), "aten.div.Tensor", **BACKWARD),
    Case("f16_matmul", fn(f16_matmul), "aten.mm.default", **F16),
    Case("f16_sum", fn(f16_sum), "aten.sum.dim_IntList", **F16),
    Case("zero_times_inf", fn(masked_exp), "aten.mul.Tensor", **BACKWARD, **NAN),
    Case("masked_sqrt", fn(masked_sqrt), "aten.sqrt.default", **NAN),
    Case("sqrt_zero_backward", fn(sqrt_zero_backward), "aten.div.Tensor", **BACKWARD),
    Case("buffer", Buffered, "aten.mul.Tensor", **NAN),
    Case("attention", Attention, "aten._softmax.default", **NAN),
    Case("layernorm", fn(constant_ln), "aten.native_layer_norm_backward.default", **BACKWARD, **NAN, **F16),
    Case("inplace_log", fn(inplace_log), "aten.log_.default"),
    Case("std_zero", fn(std_zero), "aten.div.Tensor", **NAN),
]


def planted(case: Case, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        OrderedDict(pre=nn.Linear(WIDTH, WIDTH), fault=case.fault(), post=nn.Linear(WIDTH, WIDTH))
    )


def batch(seed: int = 0) -> torch.Tensor:
    return torch.randn(3, WIDTH, generator=torch.Generator().manual_seed(seed))


def loss_fn(out: torch.Tensor) -> torch.Tensor:
    return out.float().pow(2).mean()


def check(case: Case, model: nn.Module, **kw: object) -> None:
    culprit = locate_nonfinite(model, batch(), loss_fn, level="op", **kw)
    assert (culprit.op, culprit.module, culprit.phase, culprit.value) == (
        case.op,
        case.module,
        case.phase,
        case.value,
    )
    assert culprit.source == line_of(case.name)
    assert culprit.reproduced
    assert culprit.via == ("buffer 'fault.scale'" if case.name == "buffer" else None)
    assert len(culprit.inputs_max_abs) >= 1


def test_at_least_twenty_planted_faults() -> None:
    assert len(CASES) >= 20 and len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_planted_fault_names_producer_module_and_line(case: Case) -> None:
    check(case, planted(case))


@pytest.mark.parametrize("case", [c for c in CASES if c.autocast], ids=lambda c: c.name)
def test_planted_fault_under_bf16_autocast(case: Case) -> None:
    with torch.autocast("cpu", dtype=torch.bfloat16):
        check(case, planted(case))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_planted_fault_in_a_compiled_model_is_replayed_eagerly(case: Case) -> None:
    torch._dynamo.reset()
    model = torch.compile(planted(case), backend="eager")
    model(batch())  # the compiled run that went non-finite
    check(case, model)


# -- beyond the planted set ---------------------------------------------------------------------------


def test_level_other_than_module_or_op_lists_the_valid_values() -> None:
    with pytest.raises(UnknownNameError, match="unknown level 'aten': use one of module, op"):
        locate_nonfinite(nn.Linear(2, 2), torch.ones(1, 2), loss_fn, level="aten")


def test_healthy_batch_is_reported_as_not_reproduced_not_none() -> None:
    culprit = locate_nonfinite(nn.Linear(WIDTH, WIDTH), batch(), loss_fn, level="op")
    assert culprit.module == NOT_REPRODUCED and not culprit.reproduced and culprit.op is None
    assert locate_nonfinite(nn.Linear(WIDTH, WIDTH), batch(), loss_fn) is None  # module level: as before


class Flaky(nn.Module):
    """Non-finite on its first call only: a fault the replays do not both see (a race, a bit flip)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return torch.log(x * 0) if self.calls == 1 else x


def test_fault_seen_by_one_replay_only_is_not_reproduced() -> None:
    model = nn.Sequential(OrderedDict(pre=nn.Linear(WIDTH, WIDTH), fault=Flaky()))
    culprit = locate_nonfinite(model, batch(), loss_fn, level="op")
    assert (culprit.op, culprit.module, culprit.reproduced) == ("aten.log.default", "fault", False)


class Shared(nn.Module):
    """One block called twice (its second call overflows), and an output layer tied to the input layer."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(WIDTH, WIDTH, bias=False)
        self.block = nn.Linear(WIDTH, WIDTH)
        self.head = nn.Linear(WIDTH, WIDTH, bias=False)
        self.head.weight = self.embed.weight
        with torch.no_grad():
            self.block.weight.copy_(torch.eye(WIDTH) * 1e20)
            self.block.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.block(self.embed(x).tanh())  # |h| <= 1e20
        return self.head(self.block(h))  # <- second_call (1e20 * 1e20 > 3.4e38)


def test_second_call_of_a_shared_block_with_tied_weights() -> None:
    culprit = locate_nonfinite(Shared(), batch(), loss_fn, level="op")
    assert (culprit.op, culprit.module, culprit.phase) == ("aten.addmm.default", "block#2", "forward")
    assert culprit.source == line_of("second_call")
    # addmm(bias, input, weight.T): bias 0, |input| and |weight| at most 1e20 (float32: 1.00000002e20)
    assert culprit.inputs_max_abs[0] == 0.0 and max(culprit.inputs_max_abs) == torch.tensor(1e20).item()


def test_nan_parameter_is_named_as_the_entry_not_an_op() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(OrderedDict(pre=nn.Linear(WIDTH, WIDTH), post=nn.Linear(WIDTH, WIDTH)))
    with torch.no_grad():
        model.post.weight[0, 0] = math.nan
    culprit = locate_nonfinite(model, batch(), loss_fn, level="op")
    # the first op to read the weight is F.linear's transpose (a view); no op produced the NaN
    assert (culprit.op, culprit.module, culprit.value) == ("aten.t.default", "post", "nan")
    assert culprit.via == "parameter 'post.weight'"


def test_model_left_as_found_and_hooks_removed() -> None:
    case = CASES[0]
    model = planted(case)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    locate_nonfinite(model, batch(), loss_fn, level="op")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert all(p.grad is None for p in model.parameters())


def test_gradient_monitor_op_level_and_scale_skips_are_not_faults() -> None:
    model = planted(CASES[0])  # log of zero in "fault"
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    with GradientMonitor(model) as monitor, torch.autocast("cpu", dtype=torch.bfloat16):
        scaler.scale(loss_fn(model(batch()))).backward()
        stats = monitor.step(scaler)
        assert stats.skipped and not any(e.kind == "nonfinite" for e in stats.events)  # one skip: no fault
        culprit = monitor.locate_nonfinite(batch(), loss_fn, scaler=scaler, level="op")
    assert (culprit.op, culprit.module, culprit.source) == ("aten.log.default", "fault", line_of("log_zero"))
    assert culprit.reproduced and culprit.rank == 0 and culprit.weights == "none"


def gpt2() -> nn.Module:
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=4, n_positions=16, vocab_size=64)
    torch.manual_seed(0)
    return transformers.GPT2LMHeadModel(config)


def lm_loss(out: object) -> torch.Tensor:
    return out.logits.float().pow(2).mean()


def test_healthy_gpt2_has_no_culprit_despite_its_masks() -> None:
    model, ids = gpt2(), torch.arange(12).reshape(2, 6)
    culprit = locate_nonfinite(model, {"input_ids": ids}, lm_loss, level="op")
    assert culprit.module == NOT_REPRODUCED and not culprit.reproduced


def test_overflow_planted_in_gpt2_block_is_named() -> None:
    model, ids = gpt2(), torch.arange(12).reshape(2, 6)

    def overflow(module: nn.Module, args: object, out: torch.Tensor) -> torch.Tensor:
        return out * 1e39  # <- gpt2_hook (a double: inf once cast to float32)

    handle = model.transformer.h[1].mlp.register_forward_hook(overflow)
    try:
        culprit = locate_nonfinite(model, {"input_ids": ids}, lm_loss, level="op")
    finally:
        handle.remove()
    expected = ("aten.mul.Tensor", "transformer.h.1.mlp", "forward")
    assert (culprit.op, culprit.module, culprit.phase) == expected
    assert culprit.source == line_of("gpt2_hook") and culprit.reproduced


def test_to_dict_carries_the_op_level_fields_only_at_op_level() -> None:
    model = planted(CASES[0])
    op_level = locate_nonfinite(model, batch(), loss_fn, level="op").to_dict()
    assert (op_level["op"], op_level["source"], op_level["reproduced"]) == (
        "aten.log.default",
        line_of("log_zero"),
        True,
    )
    assert "op" not in locate_nonfinite(model, batch(), loss_fn).to_dict()
