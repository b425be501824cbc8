"""numstab.probe.rules: each documented threshold, on both sides, where each rule applies and where it does
not (across a normalization, inside a residual branch), the deliberate scales, and the fix each names."""

from __future__ import annotations

import math

import pytest

from numstab.probe import rules
from numstab.probe.report import Finding, LayerReport, NonfiniteOrigin


def layer(name: str, kind: str = "Linear", *, act: float = 1.0, dense: bool = False, **fields) -> LayerReport:
    base = dict(activation_mean=0.0, activation_std=1.0, grad_std=1.0, weight_std=0.1, weight_grad_norm=None,
                dead_fraction=0.0, duplicate_units=0, out_of_range={}, nonfinite=0,
                activation_second_moment=act, grad_second_moment=1.0, units=8, numel=64, weight_rms=0.1)
    if dense:
        base.update(fan_in=8, fan_out=8)
    base.update(fields)
    return LayerReport(name, kind, **base)


def dense(name: str, act: float = 1.0, **fields) -> LayerReport:
    return layer(name, act=act, dense=True, **fields)


def norm(name: str, act: float = 1.0, **fields) -> LayerReport:
    return layer(name, "LayerNorm", act=act, **{"weight_std": 0.0, "weight_rms": 1.0, **fields})


def found(layers: list[LayerReport], q0: float = 1.0, **kw) -> list[tuple[str, str]]:
    return [(f.kind, f.severity) for f in rules.evaluate(layers, input_second_moment=q0, **kw)]


@pytest.mark.parametrize(("log2_gain", "expected"), [
    (7.9, []), (8.1, [("exploding", "warning")]), (16.1, [("exploding", "error")]),
    (-15.9, []), (-16.1, [("vanishing", "warning")]), (-32.1, [("vanishing", "error")]),
])
def test_plain_segment_gain_thresholds(log2_gain: float, expected: list[tuple[str, str]]) -> None:
    # two layers carry half of the gain each: no one layer is its cause
    layers = [dense("0", act=2.0 ** (log2_gain / 2)), layer("1", "ReLU"), dense("2", act=2.0**log2_gain)]
    assert found(layers) == expected


def test_a_head_that_alone_makes_the_last_segment_vanish_is_a_small_head_not_a_vanishing_signal() -> None:
    # the head carries 3/4 of the fall or more: predictions start near uniform (torchvision's VGG at std 0.01)
    (finding,) = rules.evaluate([dense("0"), layer("1", "ReLU"), dense("2", act=2.0**-20)],
                                input_second_moment=1.0)
    assert (finding.kind, finding.severity, finding.layers) == ("init", "info", ("2",))
    assert "initialized small" in finding.message
    # the body carries more than a quarter of it: a vanishing signal, whatever the head does
    body = [dense("0", act=2.0**-6), layer("1", "ReLU"), dense("2", act=2.0**-20)]
    assert found(body) == [("vanishing", "warning")]


def test_the_scale_is_not_compared_across_a_normalization_or_from_an_embedding() -> None:
    # GPT-2's picture: embeddings at 0.02² (2^-11), LayerNorm to 1, a projection: no product of Jacobians
    # runs from the embedding to the head, so nothing is compared end to end.
    emb = layer("wte", "Embedding", act=2.0**-11, lookup=True, fan_in=8, fan_out=8)
    layers = [emb, norm("ln"), dense("fc", act=2.0**4), norm("ln_f"), dense("head", act=2.0**-5)]
    assert found(layers, q0=math.nan) == []
    assert [[m.name for m in s.members] for s in rules.segments(layers, math.nan)] == [["fc"], ["head"]]
    # the same gain of 2^9 inside one segment explodes
    assert found([emb, norm("ln"), dense("fc", act=2.0**9)], q0=math.nan) == [("exploding", "warning")]


def test_a_residual_branch_that_starts_small_is_deliberate_but_not_the_last_segment() -> None:
    branch = [norm("ln_1"), dense("c_attn", act=2.0**-5), dense("c_proj", act=2.0**-20), norm("ln_f")]
    assert found(branch + [dense("head")]) == []
    # a head alone after the last norm, 2^-20: a small head (predictions start near uniform), info
    (finding,) = rules.evaluate(branch + [dense("head", act=2.0**-20)], input_second_moment=1.0)
    assert (finding.kind, finding.severity, finding.layers) == ("init", "info", ("head",))
    # two layers after the last norm, the first carrying most of the fall: a vanishing signal; its own
    # scale is the cause, it alone is raised by 2^(20/2)
    tail = [dense("proj", act=2.0**-20), dense("head", act=2.0**-20)]
    (finding,) = rules.evaluate(branch + tail, input_second_moment=1.0)
    assert (finding.kind, finding.severity, finding.layers[0]) == ("vanishing", "warning", "proj")
    assert finding.scheme == "rescale"
    assert finding.options == {"factor": pytest.approx(2.0**10, rel=1e-2), "layers": ("proj",)}


def test_a_normalization_below_its_eps_is_starved_and_names_what_feeds_it_first() -> None:
    emb = [layer(n, "Embedding", act=2.0**-33, lookup=True, fan_in=8, fan_out=8) for n in ("wte", "wpe")]
    ok = emb + [norm("ln_1", act=2.0**-3.9), dense("fc")]
    assert found(ok, q0=math.nan) == []
    # starved norms fed by dense layers too (GPT-2 at initializer_range 1e-5: every weight tiny)
    starved = emb + [norm("ln_1", act=2.0**-12), dense("fc", act=2.0**-12), norm("ln_2", act=2.0**-12),
                     dense("fc2", act=2.0**-12)]
    (finding,) = rules.evaluate(starved, input_second_moment=math.nan)
    assert (finding.kind, finding.severity, finding.layers) == (
        "vanishing", "error", ("wte", "wpe", "ln_1", "ln_2"))
    # the stream is raised until the norm's input is 2^8 above eps: factor 2^((12 + 8) / 2)
    assert finding.options == {"factor": 1020.0}
    # only the norm that reads the embeddings is below eps, and the stream is at scale after it: tiny
    # embeddings before a LayerNorm are SmallInit (RWKV), deliberate
    small_init = emb + [norm("ln_1", act=2.0**-12), dense("fc", act=2.0**-12), norm("ln_2"), dense("fc2")]
    (finding,) = rules.evaluate(small_init, input_second_moment=math.nan)
    assert (finding.kind, finding.severity, finding.layers) == ("init", "info", ("wte", "wpe", "ln_1"))
    # BatchNorm is not judged (in eval mode it divides by running statistics)
    bn = layer("bn", "BatchNorm2d", act=2.0**-12, weight_rms=1.0)
    assert found(emb + [bn, dense("fc", act=2.0**-12)], q0=math.nan) == []


@pytest.mark.parametrize(("spread", "expected"), [
    (9.9, []), (10.1, [("exploding", "warning")]), (-10.1, [("vanishing", "warning")]),
    (-20.1, [("vanishing", "error")]),
])
def test_relative_gradient_spread_in_plain_nets(spread: float, expected: list[tuple[str, str]]) -> None:
    # 8 layers, log2 r² falling linearly: the bottom quarter's median minus the top quarter's is `spread`
    step = spread / 6
    layers = [dense(str(i), relative_grad=2.0 ** (-step * i / 2)) for i in range(8)]
    assert rules.backward_gain_log2(layers) == pytest.approx(spread)
    assert found(layers) == expected
    assert found(layers + [norm("ln")]) == []  # not across normalizations (attention q/k, SE gates)


def test_saturating_nets_are_offered_the_critical_init_for_their_activation() -> None:
    layers = [x for i in range(8) for x in (dense(str(2 * i), relative_grad=2.0 ** (2 * i)),
                                            layer(f"{2 * i + 1}", "Sigmoid"))]
    finding = rules.evaluate(layers, input_second_moment=1.0)[0]
    assert (finding.kind, finding.scheme) == ("vanishing", "critical")
    assert finding.options == {"activation": "sigmoid"}
    assert finding.fix.startswith("replace the saturating activation by tanh")


def test_deliberate_scales_are_info_and_leave_the_verdict_healthy() -> None:
    gate = layer("stages.0.layers.0", "ConvNextLayer", weight_std=0.0, weight_rms=1e-6)
    zero_gamma = norm("layer.1.bn2", act=0.0, weight_rms=0.0)
    gemma = norm("input_layernorm", weight_rms=0.0)  # stores γ - 1: a zero weight normalizes to 1
    head = dense("classifier", act=0.0, weight_rms=0.0, relative_grad=None)
    # under a zero head every layer before it gets exactly 0 gradient, the stem too
    stem = dense("stem", weight_grad_norm=0.0)
    findings = rules.evaluate([stem, gate, zero_gamma, gemma, head], input_second_moment=1.0)
    assert [(f.kind, f.severity, f.layers) for f in findings] == [
        ("init", "info", ("stages.0.layers.0",)), ("init", "info", ("layer.1.bn2",)),
        ("init", "info", ("classifier",))]
    assert "gradients reach the body after" in findings[2].message
    assert rules.verdict(findings) == "healthy"


def test_a_zero_layer_on_the_main_path_is_a_warning_and_one_off_it_is_a_closed_branch() -> None:
    emb = layer("embeddings", "Embedding", lookup=True, fan_in=8, fan_out=8, weight_grad_norm=0.0)
    after = [dense("query", weight_grad_norm=1.0), norm("ln_out"), dense("head", weight_grad_norm=1.0)]
    # BERT with its embedding LayerNorm at γ = 0: nothing bypasses it, the embeddings get exactly 0 gradient
    cut = [emb, norm("embeddings.LayerNorm", act=0.0, weight_rms=0.0)]
    (finding,) = rules.evaluate(cut + after, input_second_moment=math.nan)
    assert (finding.kind, finding.severity, finding.layers) == (
        "vanishing", "warning", ("embeddings.LayerNorm",))
    assert finding.scheme is None and "torch.nn.init.ones_" in finding.fix
    # two in series: an error
    two = cut + [dense("fc", weight_grad_norm=0.0), norm("ln_1", act=0.0, weight_rms=0.0)]
    assert found(two + after, q0=math.nan)[0] == ("vanishing", "error")
    # a zero γ whose block is bypassed (the stem still gets gradient): deliberate, as in a ResNet
    bypassed = [dense("stem", weight_grad_norm=1.0), dense("conv2", weight_grad_norm=0.0),
                norm("bn2", act=0.0, weight_rms=0.0), *after]
    assert found(bypassed) == [("init", "info")]
    # a zero dense layer that layers before it bypass (LoRA's B, adaLN-Zero): a branch that starts closed
    lora = [dense("base", weight_grad_norm=1.0), dense("lora_B", act=0.0, weight_rms=0.0), *after]
    (finding,) = rules.evaluate(lora, input_second_moment=1.0)
    assert (finding.kind, finding.severity, finding.layers) == ("init", "info", ("lora_B",))
    assert "off the main path" in finding.message
    # LoRA with a frozen base: the first B's only trainable predecessor, its A, gets 0 gradient, but the
    # frozen base layers (no gradient measured) carry the signal past it
    frozen = layer("embed", "Embedding", lookup=True, fan_in=8, fan_out=8, weight_grad_norm=None)
    a = dense("q_proj.A", weight_grad_norm=0.0)
    b = dense("q_proj.B", act=0.0, weight_rms=0.0, weight_grad_norm=1.0)
    assert found([frozen, a, b, *after], q0=math.nan) == [("init", "info")]


def test_symmetric_weights_threshold_and_a_tied_weight_is_judged_once() -> None:
    assert found([dense("0", duplicate_weight_rows=3)]) == []
    (finding,) = rules.evaluate([dense("0", duplicate_weight_rows=4)], input_second_moment=1.0)
    assert (finding.kind, finding.severity, finding.options) == ("symmetric", "error", {"layers": ("0",)})
    assert found([dense("lm_head", duplicate_weight_rows=8, shared_with="wte")]) == []
    # identical *outputs* (a squeeze-excitation gate fed zeros) are not the chapter's symmetry
    assert found([dense("0", duplicate_units=8)]) == []


def test_dead_needs_a_rectifier_half_its_units_and_enough_values_per_unit() -> None:
    assert found([layer("r", "ReLU", dead_fraction=0.49, numel=8 * 16)]) == []
    assert found([layer("r", "ReLU", dead_fraction=0.5, numel=8 * 16)]) == [("dead", "warning")]
    assert found([layer("r", "ReLU", dead_fraction=1.0, numel=8 * 15)]) == []  # 15 values per unit
    assert found([layer("bias_table", "Embedding", dead_fraction=1.0)]) == []  # a zero table is no ReLU
    # a wide layer seen on a batch of 4: 32 units at 4 values each are judged; 31 units, or 3 values, not
    wide = dict(dead_fraction=0.5)
    assert found([layer("r", "ReLU", units=32, numel=32 * 4, **wide)]) == [("dead", "warning")]
    assert found([layer("r", "ReLU", units=31, numel=31 * 4, **wide)]) == []
    assert found([layer("r", "ReLU", units=32, numel=32 * 3, **wide)]) == []
    # behind an eval-mode BatchNorm (no centering) dead units are not judged
    bn = layer("bn", "BatchNorm1d", running_stats=True)
    assert [k for k, _ in found([bn, layer("r", "ReLU", dead_fraction=1.0, numel=8 * 16)])] == ["init"]


def test_fp16_overflow_is_a_warning_and_gradient_underflow_info() -> None:
    over = layer("0", out_of_range={"float16": 0.25}, headroom_log2={"float16": -2.0})
    under = layer("1", grad_out_of_range={"float16": 0.02})
    fine = layer("2", grad_out_of_range={"float16": 0.01})
    findings = rules.evaluate([over, under, fine], input_second_moment=1.0)
    assert [(f.kind, f.severity, f.layers) for f in findings] == [
        ("out_of_range", "warning", ("0",)), ("out_of_range", "info", ("1",))]
    assert "bfloat16" in findings[0].fix and "GradScaler" in findings[1].fix
    assert found([layer("0", out_of_range={"float16": 0.3}, headroom_log2={"float16": 5.0})]) == []


def test_nonfinite_comes_first_names_the_origin_and_suppresses_the_scale_rules() -> None:
    layers = [dense("0"), dense("1", act=2.0**30), dense("2", nonfinite=4)]
    findings = rules.evaluate(layers, input_second_moment=1.0,
                              first_nonfinite=NonfiniteOrigin("2", "forward"))
    assert [(f.kind, f.layers) for f in findings] == [("nonfinite", ("2",))]
    assert findings[0].options == {"layers": ("2",)}  # re-initialize the layer whose output overflowed
    origin = NonfiniteOrigin("1", "backward")
    backward = rules.evaluate(layers, input_second_moment=1.0, first_nonfinite=origin)
    assert backward[0].scheme is None and "backward" in backward[0].message


def test_a_withdrawn_fix_keeps_its_advice_and_drops_the_scheme() -> None:
    f = Finding("exploding", "warning", ("0",), "big", "lower the weight scale: report.with_fix('rescale', "
                "factor=0.5) multiplies every weight", "rescale", {"factor": 0.5})
    w = rules.withdrawn(f)
    assert (w.scheme, w.options) == (None, {})
    assert w.fix.startswith("lower the weight scale (numstab's re-initialization was tried")


def test_gains_are_undefined_without_layers() -> None:
    assert rules.forward_gain_log2([], 1.0) is None
    assert rules.backward_gain_log2([dense("0")]) is None


def test_one_layer_carrying_the_gain_is_named_first_and_rescaled_alone() -> None:
    # steps 0, +10, 0: layer "b" alone explodes the segment; a uniform +3.5 per layer does not single one out
    (finding,) = rules.evaluate([dense("a"), dense("b", act=2.0**10), dense("c", act=2.0**10)],
                                input_second_moment=1.0)
    assert finding.layers[0] == "b"
    assert finding.options == {"factor": pytest.approx(2.0**-5, rel=1e-2), "layers": ("b",)}
    (uniform,) = rules.evaluate([dense(n, act=2.0 ** (3.5 * (i + 1))) for i, n in enumerate("abc")],
                                input_second_moment=1.0)
    assert uniform.layers[0] == "a" and uniform.options == {"factor": pytest.approx(2.0**-1.75, rel=1e-2)}


def test_a_segment_starts_at_what_its_first_layer_reads() -> None:
    # a deep post-activation ResNet: the block's first conv reads the stream (E = 2^5 after 32 blocks of
    # unit branches), not the last BatchNorm's output (E = 1); its own gain is 2^3.5
    bn = layer("bn", "BatchNorm2d", act=1.0, weight_rms=1.0)
    conv = dense("conv1", act=2.0**8.5, input_second_moment=2.0**5)
    assert found([bn, conv]) == []
    assert found([bn, dense("conv1", act=2.0**8.5)]) == [("exploding", "warning")]  # without the input


def test_the_last_segment_vanishes_only_if_what_reaches_the_loss_does() -> None:
    # no final norm: the last segment holds a branch's gate logits (2^-25, into a softmax) and the head,
    # which reads the stream and outputs 2^-6: nothing vanishes on the way to the loss
    gate = dense("gate", act=2.0**-25)
    assert found([norm("ln"), gate, dense("head", act=2.0**-6, input_second_moment=1.0)]) == []
    assert rules.forward_gain_log2([norm("ln"), gate, dense("head", act=2.0**-6)], 1.0) == -6.0


def test_a_layers_own_step_is_its_output_over_what_it_reads_not_over_a_sibling() -> None:
    # q_proj and a reduction conv both read the norm's output (1): the conv's own step is 2^+9, not
    # 2^+9 - (-7) = 2^+16 over q_proj's output, so it alone carries 9 / 12 of a gain of 2^+12
    layers = [norm("ln"), dense("q_proj", act=2.0**-7, input_second_moment=1.0),
              dense("sr", act=2.0**9, input_second_moment=1.0),
              dense("fc", act=2.0**12, input_second_moment=2.0**9)]
    (seg,) = rules.segments(layers, 1.0)
    assert seg.own_steps() == [-7.0, 9.0, 3.0]
    (finding,) = rules.evaluate(layers, input_second_moment=1.0)
    assert finding.layers[0] == "sr" and finding.options["layers"] == ("sr",)


def test_a_layer_read_as_is_by_the_norm_that_ends_its_segment_is_not_a_gain() -> None:
    # Segformer's reduction conv feeds its LayerNorm directly: its 2^+9 is normalized away
    sr = dense("sr", act=2.0**9, input_second_moment=1.0, feeds_norm=True)
    assert found([norm("ln"), sr, norm("sr_norm"), dense("k")]) == []
    # the same output added to a stream before the norm is a gain
    added = dense("sr", act=2.0**9, input_second_moment=1.0)
    assert found([norm("ln"), added, norm("next"), dense("k")]) == [("exploding", "warning")]


def test_a_segment_started_by_an_eval_mode_batchnorm_is_not_judged() -> None:
    # a fresh BatchNorm in eval mode passes its tiny input on (2^-14); a parameter-free reset to 1 after
    # it (F.normalize) would read as a gain of 2^+14 that training never sees
    bn = layer("bn", "BatchNorm2d", act=2.0**-14, running_stats=True)
    after = [dense("fc", act=2.0**-14, input_second_moment=2.0**-14),
             dense("proj", act=1.0, input_second_moment=1.0)]
    assert [kind for kind, _ in found([bn, *after])] == ["init"]  # only the eval-mode note
    assert found([layer("bn", "BatchNorm2d", act=2.0**-14), *after]) == [("exploding", "warning")]
