"""DESIGN.md's contract details, checked as written (names, keys and values an acceptance check relies on)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import numstab
from numstab import activations, init, precision
from numstab.cli import main
from numstab.probe.stats import range_fractions


def test_diagnose_out_of_range_keys_are_the_formats_names() -> None:
    # DESIGN.md: "`out_of_range` keys are the `formats()` names" -- all six of them
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), nn.Tanh())
    report = numstab.diagnose(model, torch.randn(8, 4, generator=g))
    for layer in report.layers:
        assert list(layer.out_of_range) == list(precision.formats())


def test_float64_values_out_of_float32_range_are_counted_in_float32_only() -> None:
    # 1e39 > float32's max 3.4028235e38; 1e-46 < 2**-150 = 7.0e-46, half float32's smallest subnormal,
    # so it flushes; 1e-44 is a float32 subnormal and stays. float64 holds all of them.
    x = torch.tensor([1e39, 1e-46, 1e-44, 1.0], dtype=torch.float64)
    over, under, _ = range_fractions(x, ("float32", "float64"), max_abs=1e39)
    assert (over["float32"], under["float32"]) == (0.25, 0.25)
    assert (over["float64"], under["float64"]) == (0.0, 0.0)
    counts = precision.classify(x.numpy(), "float32")
    assert (counts["overflow"], counts["underflow"], counts["subnormal"]) == (1, 1, 1)


def test_float32_values_never_leave_float32_or_float64_range() -> None:
    # the float32/float64 thresholds round to inf in a float32 comparison: only inf and NaN count
    x = torch.tensor([3.4028235e38, 1.4e-45, float("inf"), float("nan"), 0.0])
    over, under, _ = range_fractions(x, ("float32", "float64"), max_abs=3.4028235e38)
    assert over == {"float32": 0.4, "float64": 0.4} and under == {"float32": 0.0, "float64": 0.0}


@pytest.mark.parametrize(
    ("activation", "name", "param"),
    [
        (torch.tanh, "tanh", None),  # 5/3
        (nn.functional.tanh, "tanh", None),
        (nn.Tanh(), "tanh", None),
        (torch.sigmoid, "sigmoid", None),  # 1
        (nn.Sigmoid(), "sigmoid", None),
        (torch.relu, "relu", None),  # sqrt(2), bit for bit
        (nn.functional.relu, "relu", None),
        (nn.ReLU(), "relu", None),
        (nn.functional.selu, "selu", None),  # 3/4
        (nn.LeakyReLU(0.2), "leaky_relu", 0.2),
        (nn.functional.leaky_relu, "leaky_relu", None),
    ],
)
def test_gain_of_torchs_own_activation_is_calculate_gain(activation, name, param) -> None:
    # DESIGN.md: gain "equals torch.nn.init.calculate_gain where torch defines it" -- also when the
    # activation is handed over as torch's function or module rather than by name
    assert init.gain(activation) == nn.init.calculate_gain(name, param)


def test_torchs_tanh_initializes_exactly_like_the_name() -> None:
    a, b = nn.Linear(30, 20), nn.Linear(30, 20)
    init.apply_(a, "kaiming_normal", activation=nn.Tanh(), generator=torch.Generator().manual_seed(0))
    init.apply_(b, "kaiming_normal", activation="tanh", generator=torch.Generator().manual_seed(0))
    assert torch.equal(a.weight, b.weight)
    assert activations.get(torch.tanh) is activations.get("tanh")


def test_other_torch_callables_still_use_quadrature() -> None:
    # torch defines no gain for gelu or silu: 1 / sqrt(E[f(z)^2]) as for the registered names
    assert init.gain(nn.functional.gelu) == init.gain("gelu")
    assert init.gain(nn.SiLU()) == init.gain("silu")


def test_a_factory_that_raises_is_one_line_and_exit_2(tmp_path, capsys) -> None:
    # DESIGN.md: "Errors exit with status 2 and one line ...; no traceback for a user's mistake"
    path = tmp_path / "nets.py"
    path.write_text("def build():\n    raise RuntimeError('no such layer size')\n")
    with pytest.raises(SystemExit) as info:
        main(["check", f"{path}:build"])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err == f"numstab: error: the factory '{path}:build' raised RuntimeError: no such layer size\n"
