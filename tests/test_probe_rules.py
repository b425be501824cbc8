"""numstab.probe.rules: each documented threshold, on both sides, and the fix each finding names."""

from __future__ import annotations

import math

import pytest

from numstab.probe import rules
from numstab.probe.report import LayerReport, NonfiniteOrigin


def layer(name: str, kind: str = "Linear", **fields) -> LayerReport:
    base = dict(activation_mean=0.0, activation_std=1.0, grad_std=1.0, weight_std=None, weight_grad_norm=None,
                dead_fraction=0.0, duplicate_units=0, out_of_range={}, nonfinite=0,
                activation_second_moment=1.0, grad_second_moment=1.0, units=8, numel=64)
    base.update(fields)
    return LayerReport(name, kind, **base)


def stack(first_grad: float, last_act: float = 1.0, kind: str = "ReLU") -> list[LayerReport]:
    return [layer("0", grad_second_moment=first_grad), layer("1", kind),
            layer("2", activation_second_moment=last_act)]


@pytest.mark.parametrize(("log2_gain", "expected"), [
    (-9.9, []), (-10.1, [("vanishing", "warning")]), (-20.1, [("vanishing", "error")]),
    (9.9, []), (10.1, [("exploding", "warning")]), (20.1, [("exploding", "error")]),
])
def test_gradient_gain_thresholds(log2_gain: float, expected: list[tuple[str, str]]) -> None:
    found = rules.evaluate(stack(2.0**log2_gain), input_second_moment=1.0)
    assert [(f.kind, f.severity) for f in found] == expected


def test_forward_gain_is_the_trunk_output_over_the_input() -> None:
    layers = stack(1.0, last_act=2.0**-12) + [layer("head", numel=10, activation_second_moment=1.0)]
    assert rules.forward_gain_log2(layers, 1.0) == pytest.approx(-12.0)  # the head (other numel) skipped
    found = rules.evaluate(layers, input_second_moment=1.0)
    assert [(f.kind, f.severity) for f in found] == [("vanishing", "warning")]
    assert found[0].fix == "numstab.init.apply_(model, 'kaiming_normal')"


def test_sigmoid_nets_are_told_to_change_the_activation() -> None:
    (finding,) = rules.evaluate(stack(2.0**-30, kind="Sigmoid"), input_second_moment=1.0)
    assert finding.fix.startswith("replace sigmoid by tanh or 4·sigmoid − 2")


def test_an_init_at_its_reference_is_told_to_add_residual_connections() -> None:
    layers = [layer(str(i), kaiming_ratio=1.02, weight_std=0.1, fan_in=8, fan_out=8) for i in range(3)]
    layers[0] = layer("0", grad_second_moment=2.0**-25, kaiming_ratio=1.0, weight_std=0.1)
    layers.append(layer("3", "ReLU"))
    (finding,) = rules.evaluate(layers, input_second_moment=1.0)
    assert "add residual connections" in finding.fix


def test_dead_threshold_is_half_the_units() -> None:
    assert rules.evaluate([layer("0", dead_fraction=0.49)], input_second_moment=1.0) == []
    (finding,) = rules.evaluate([layer("0", dead_fraction=0.5)], input_second_moment=1.0)
    assert (finding.kind, finding.layers) == ("dead", ("0",))
    assert "leaky_relu" in finding.fix


def test_symmetric_threshold_is_half_the_units() -> None:
    assert rules.evaluate([layer("0", duplicate_units=3)], input_second_moment=1.0) == []
    (finding,) = rules.evaluate([layer("0", duplicate_units=4)], input_second_moment=1.0)
    assert (finding.kind, finding.severity) == ("symmetric", "error")
    assert "random init" in finding.fix


def test_fp16_overflow_and_gradient_underflow() -> None:
    over = layer("0", out_of_range={"float16": 0.25}, headroom_log2={"float16": -2.0})
    under = layer("1", grad_out_of_range={"float16": 0.02})
    fine = layer("2", grad_out_of_range={"float16": 0.01})
    found = rules.evaluate([over, under, fine], input_second_moment=1.0)
    assert [(f.kind, f.layers) for f in found] == [("out_of_range", ("0",)), ("out_of_range", ("1",))]
    assert "bfloat16" in found[0].fix and "GradScaler" in found[1].fix
    # Flushing activations alone (positive headroom) is not an overflow finding.
    assert rules.evaluate([layer("0", out_of_range={"float16": 0.3}, headroom_log2={"float16": 5.0})],
                          input_second_moment=1.0) == []


def test_one_layer_out_of_scale_gets_its_std_named() -> None:
    layers = [layer(f"blocks.{i}.fc1", weight_std=0.05, kaiming_ratio=1.0, fan_in=800, fan_out=800)
              for i in range(8)]
    layers[7] = layer("blocks.7.fc1", weight_std=0.255, kaiming_ratio=5.1, fan_in=800, fan_out=800)
    (finding,) = rules.evaluate(layers + [layer("r", "ReLU")], input_second_moment=1.0)
    assert (finding.kind, finding.layers) == ("init", ("blocks.7.fc1",))
    assert finding.fix == "set the std of blocks.7.fc1 to 0.05"


def test_nonfinite_comes_first_and_names_the_origin() -> None:
    layers = stack(2.0**-30) + [layer("3", nonfinite=4)]
    found = rules.evaluate(layers, input_second_moment=1.0, first_nonfinite=NonfiniteOrigin("3", "backward"))
    assert [f.kind for f in found] == ["nonfinite", "vanishing"]
    assert rules.verdict(found) == "nonfinite"
    assert found[0].layers == ("3",) and "backward" in found[0].message


def test_a_forward_nan_suppresses_the_gain_rules() -> None:
    layers = stack(2.0**-30)
    found = rules.evaluate(layers, input_second_moment=1.0, first_nonfinite=NonfiniteOrigin("1", "forward"))
    assert [f.kind for f in found] == ["nonfinite"]


def test_gains_are_undefined_without_two_finite_ends() -> None:
    assert rules.backward_gain_log2([layer("0")]) is None
    assert rules.forward_gain_log2([], 1.0) is None
    assert rules.backward_gain_log2(stack(0.0)) == -math.inf
