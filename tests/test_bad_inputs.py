"""Every mistake: one line and exit 2 on the command line, a numstab error naming the argument in Python.

A table of bad inputs, each a member of a class the hardening issue named (overflowing numbers, seeds
out of range, sizes that cannot fit in memory, empty lists meaning the default, outputs that would
replace a user's file or create folders, non-real values, hostile JSON, labels that do not exist).
After every case: the user's files are untouched, the global RNGs are unchanged and (for the API) the
model is bit-identical. The command line runs in-process through ``numstab.cli.main``, the entry
point itself (no subprocess: the whole table takes a few seconds).
"""

from __future__ import annotations

import hashlib
import pathlib
import random
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from numstab import errors, init, jsonio, lab, precision, theory
from numstab.cli import main
from numstab.files import ReportFolder
from numstab.lab import training

HUGE = "99999999999999999999999"  # beyond 2**63 and 2**64

# -- the command line --------------------------------------------------------------------------------

#: (argv, words the one line must contain). Paths are relative to a sandbox holding the user's files.
CLI_CASES: list[tuple[list[str], list[str]]] = [
    # overflowing and non-finite numbers
    (["theory", "relu", "--weight-std", "1e200"], ["weight_std", "1e+200"]),
    (["theory", "relu", "--bias-std", "1e300"], ["bias_std"]),
    (["theory", "relu", "--weight-std", "-1"], ["weight_std", ">= 0"]),
    (["theory", "relu", "--weight-std", "nan"], ["weight_std"]),
    (["theory", "tanh", "--bias-std", "inf"], ["bias_std"]),
    (["lab", "matrix-products", "--scales", "1e400"], ["scales[0]"]),
    (["lab", "activation-curves", "--lo", "-inf"], ["lo", "finite"]),
    # seeds out of range
    (["lab", "matrix-products", "--seed", HUGE], ["seed", "2**63 - 1"]),
    (["lab", "matrix-products", "--seed", "-1"], ["seed", ">= 0"]),
    (["lab", "mlp-gradients", "--seed", str(2**64)], ["seed"]),
    (["lab", "symmetry", "--seed", str(2**63)], ["seed"]),
    (["lab", "xavier", "--seed", "-7"], ["seed"]),
    (["lab", "precision", "--seed", HUGE], ["seed"]),
    (["check", "sigmoid_mlp", "--seed", "-1"], ["--seed"]),
    (["check", "sigmoid_mlp", "--seed", HUGE], ["--seed"]),
    (["lab", "training", "--seeds", HUGE], ["seed", "2**63 - 1"]),
    (["lab", "training", "-e", "depth", "--data-seed", "-1"], ["data_seed"]),
    # counts that are not integers, or zero
    (["lab", "symmetry", "--steps", "1e21"], ["--steps"]),
    (["lab", "symmetry", "--steps", "0"], ["steps", ">= 1"]),
    (["lab", "training", "--depths", "2,1e21"], ["--depths"]),
    (["theory", "relu", "--grid", "1"], ["--grid", ">= 2"]),
    (["explore", "--port", "70000"], ["--port", "65535"]),
    (["explore", "--port", HUGE], ["--port"]),
    (["lab", "symmetry", "--dropout", "1.5"], ["dropout"]),
    # sizes that cannot fit in memory: the estimate and the limit
    (["lab", "matrix-products", "--trials", "1000000000"], ["trials=1000000000", "memory", "available"]),
    (["lab", "mlp-gradients", "--width", "100000"], ["width=100000", "memory", "available"]),
    (["lab", "activation-curves", "--step", "1e-12"], ["step=1e-12", "memory", "available"]),
    (["lab", "activation-curves", "--lo", "-1e308", "--hi", "1e308"], ["unbounded memory"]),
    (["lab", "xavier", "--width", "10000000"], ["width=10000000", "memory"]),
    (["lab", "precision", "--depth", "1000000000000"], ["depth=1000000000000", "memory"]),
    (["check", "sigmoid_mlp", "--input-shape", "100000000000,100000000000"], ["--input-shape", "memory"]),
    (["theory", "relu", "--grid", "100000", "--plot", "p.png"], ["100000 x 100000 grid", "memory"]),
    (["check", "sigmoid_mlp", "--input-shape", "1e11,1e11"], ["--input-shape"]),
    # given but empty is not the default
    (["lab", "taylor", "--names", ""], ["--names is empty"]),
    (["lab", "activation-curves", "--names", " , "], ["--names is empty"]),
    (["lab", "matrix-products", "--scales", ""], ["--scales is empty"]),
    (["lab", "training", "--seeds", ""], ["--seeds is empty"]),
    (["lab", "training", "--depths", ""], ["--depths is empty"]),
    # outputs: checked before any work, never a user's file, never a silently created folder
    (["theory", "relu", "--plot", "missing/p.png"], ["--plot", "does not exist"]),
    (["theory", "relu", "--plot", "p.txt"], ["--plot must end in .png, .svg, .pdf"]),
    (["theory", "relu", "--plot", "photo.png"], ["--plot", "not written by numstab"]),
    (["theory", "relu", "--json", "notes.json"], ["--json", "not written by numstab"]),
    (["theory", "relu", "--json", "-", "--html", "-"], ["standard output"]),
    (["theory", "relu", "--json", "out.json", "--html", "out.json"], ["same file"]),
    (["theory", "relu", "--json", "docs"], ["--json", "is a folder"]),
    (["lab", "taylor", "--json", "notes.json"], ["--json", "not written by numstab"]),
    (["lab", "taylor", "--html", "missing/t.html"], ["--html", "does not exist"]),
    (["check", "sigmoid_mlp", "--json", "notes.json"], ["--json", "not written by numstab"]),
    (["check", "sigmoid_mlp", "--html", "index.html"], ["--html", "not written by numstab"]),
    (["check", "sigmoid_mlp", "--fix", "nope"], ["--fix", "kaiming_normal"]),
    (["check", "sigmoid_mlp", "--fix", "normal"], ["--fix", "need a number"]),
    (["check", "sigmoid_mlp", "--fail-on", "bogus"], ["--fail-on"]),
    (["tour", "--out", "."], ["report.json was not written by numstab"]),
    (["tour", "--out", "missing/parent/r"], ["does not exist"]),
    (["tour", "--out", "notes.json"], ["is a file"]),
    (["lab", "training", "--out", "."], ["report.json was not written by numstab"]),
    # names
    (["lab", "nope"], ["No such command 'nope'", "matrix-products", "training"]),
    (["nope"], ["No such command 'nope'", "theory", "check"]),
    (["theory", "re\x1b[2Jlu"], ["unknown activation", "\\x1b[2J"]),
    (["lab", "training", "-e", "depth,nope"], ["unknown experiment 'nope'"]),
]


def _snapshot(folder: pathlib.Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(folder.rglob("*"))
    }


def _rng_state() -> tuple[Any, ...]:
    return torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()


def _assert_same_rng(before: tuple[Any, ...]) -> None:
    after = _rng_state()
    assert torch.equal(before[0], after[0]) and np.array_equal(before[1], after[1]) and before[2] == after[2]


@pytest.fixture
def sandbox(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """A working folder holding a user's files, some with the names numstab writes."""
    (tmp_path / "report.json").write_text('{"mine": true}')
    (tmp_path / "index.html").write_text("<p>my page</p>")
    (tmp_path / "notes.json").write_text('{"notes": [1, 2]}')
    (tmp_path / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    (tmp_path / "docs").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(("argv", "words"), CLI_CASES, ids=[" ".join(a)[:60] for a, _ in CLI_CASES])
def test_cli_mistake_is_one_line_exit_2_and_changes_nothing(sandbox, capsys, argv, words) -> None:
    files, rng = _snapshot(sandbox), _rng_state()
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    assert exit_info.value.code == 2, err
    assert err.count("\n") == 1 and err.startswith("numstab: error: ") and "Traceback" not in err
    assert "\x1b" not in err  # control characters come out escaped
    for word in words:
        assert word in err
    assert out == ""
    assert _snapshot(sandbox) == files
    _assert_same_rng(rng)


# -- the API ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    """Small trained results whose lookups get names that were never run."""
    setup = training.Setup("relu", "kaiming_normal")
    return {
        "lr": training.lr_sweep([0.01], [setup], depth=1, steps=2, seeds=[0], width=8),
        "remedies": training.remedies(["clip"], depth=1, steps=2, seeds=[0], width=8),
        "depth": training.depth_sweep([1], [setup], steps=2, seeds=[0], width=8),
    }


def _hostile_files(tmp: pathlib.Path) -> None:
    """A user's JSON, one nested 5000 levels deep and one with a 5000-digit integer."""
    (tmp / "user.json").write_text('{"mine": true}')
    header = '{"schema": "numstab.report/1", "kind": "check", '
    (tmp / "deep.json").write_text(header + '"a": ' + "[" * 5000 + "]" * 5000 + "}")
    (tmp / "int.json").write_text(header + '"n": ' + "9" * 5000 + "}")


def _inference_copy(model: torch.nn.Module) -> torch.nn.Module:
    """``model``'s layers (shared, so a partial write would show) then a Linear built under inference_mode."""
    with torch.random.fork_rng(devices=[]), torch.inference_mode():  # the helper moves no RNG itself
        frozen = torch.nn.Linear(4, 4)
    return torch.nn.Sequential(*model, frozen)


def _with_empty_layer(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` (its layers shared, so a partial write would show) followed by a Linear(0, 4)."""
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        warnings.simplefilter("ignore")  # torch: "Initializing zero-element tensors is a no-op"
        return torch.nn.Sequential(*model, torch.nn.Linear(0, 4))


def _self_referencing() -> dict:
    payload: dict = {}
    payload["me"] = payload
    return payload


Case = tuple[Callable[..., Any], type, str]


class _NeedsKwargs(torch.nn.Module):
    """Wraps the fixture model; its forward needs a keyword argument besides the batch."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor, *, mask: torch.Tensor) -> torch.Tensor:
        return self.inner(x) * mask


def _diagnose(m: torch.nn.Module, inputs: Any, **kw: Any) -> Any:
    from numstab import diagnose

    return diagnose(m, inputs, **kw)


def _locate(m: torch.nn.Module, inputs: Any, loss_fn: Any = None, **kw: Any) -> Any:
    from numstab.monitor import locate_nonfinite

    return locate_nonfinite(m, inputs, loss_fn, **kw)


def _sum(out: Any) -> torch.Tensor:
    return out.sum()

#: (call(model, results, tmp), error type, the argument's name in the message).
API_CASES: dict[str, Case] = {
    # the explorer's settings: overflowing numbers, seeds and sizes out of range
    "explore weight_std 1e200": (lambda m, r, t: lab.explorer.explore(weight_std=1e200),
                                 errors.InvalidArgumentError, "weight_std"),
    "explore seed 2**64": (lambda m, r, t: lab.explorer.explore(seed=2**64), errors.InvalidArgumentError,
                           "seed"),
    "explore width 10**9": (lambda m, r, t: lab.explorer.explore(width=10**9), errors.InvalidArgumentError,
                            "width"),
    # theory: overflowing, non-finite and non-real numbers
    "chi1 weight_std 1e200": (lambda m, r, t: theory.chi1("tanh", 1e200, 0), errors.InvalidArgumentError,
                              "weight_std"),
    "fixed_point bias_std 1e300": (lambda m, r, t: theory.fixed_point("relu", 1.0, 1e300),
                                   errors.InvalidArgumentError, "bias_std"),
    "variance_map q 1e300": (lambda m, r, t: theory.variance_map("relu", 1.0, 0.0, 1e300),
                             errors.InvalidArgumentError, "q"),
    "variance_map q 10**400": (lambda m, r, t: theory.variance_map("relu", 1.0, 0.0, [10**400]),
                               errors.InvalidArgumentError, "q"),
    "chi1_at q None": (lambda m, r, t: theory.chi1_at("relu", 1.0, [None]), errors.NumstabTypeError, "q"),
    "correlation_map c 2": (lambda m, r, t: theory.correlation_map("relu", 1.0, 0.0, 2.0),
                            errors.InvalidArgumentError, "c"),
    "correlation_map c complex": (lambda m, r, t: theory.correlation_map("relu", 1.0, 0.0, 0.5 + 1j),
                                  errors.NumstabTypeError, "c"),
    "phase_diagram weight_stds 1e200": (lambda m, r, t: theory.phase_diagram("tanh", [1e200], [0.0]),
                                        errors.InvalidArgumentError, "weight_stds"),
    "critical_weight_stds negative": (lambda m, r, t: theory.critical_weight_stds("tanh", [-1.0]),
                                      errors.InvalidArgumentError, "bias_stds"),
    "jacobian_spectrum bias_std 1e200": (lambda m, r, t: theory.jacobian_spectrum("relu", 3, bias_std=1e200),
                                         errors.InvalidArgumentError, "bias_std"),
    "summary weight_std 1e200": (lambda m, r, t: theory.summary("relu", 1e200), errors.InvalidArgumentError,
                                 "weight_std"),
    "weight_std 10**400": (lambda m, r, t: theory.chi1("tanh", 10**400, 0), errors.InvalidArgumentError,
                           "weight_std"),
    # theory: memory and seeds
    "phase_diagram 1e5 x 1e5": (
        lambda m, r, t: theory.phase_diagram("tanh", np.ones(100_000), np.zeros(100_000)),
        errors.InsufficientMemoryError, "grid"),
    "predict_gradient_norms depth 1e15": (
        lambda m, r, t: theory.predict_gradient_norms("relu", 1.0, 0.0, 10**15),
        errors.InsufficientMemoryError, "depth"),
    "sample_log_growth seed -1": (lambda m, r, t: theory.sample_log_growth(4, 1.0, seed=-1),
                                  errors.InvalidArgumentError, "seed"),
    "sample_log_growth seed 2**64": (lambda m, r, t: theory.sample_log_growth(4, 1.0, seed=2**64),
                                     errors.InvalidArgumentError, "seed"),
    "sample_log_growth trials 1e12": (lambda m, r, t: theory.sample_log_growth(4, 1.0, trials=10**12),
                                      errors.InsufficientMemoryError, "trials"),
    "lyapunov_exponent k 10**400": (lambda m, r, t: theory.lyapunov_exponent(10**400, 1.0),
                                    errors.InvalidArgumentError, "k"),
    "fixed_point nodes 1e9": (lambda m, r, t: theory.fixed_point("tanh", 1.0, 0.1, nodes=10**9),
                              errors.InsufficientMemoryError, "nodes"),
    "jacobian_spectrum depth 10**400": (lambda m, r, t: theory.jacobian_spectrum("relu", 10**400),
                                        errors.InvalidArgumentError, "depth"),
    # lab: seeds, memory, grids, overflowing settings
    "precision exponent 1e12": (lambda m, r, t: lab.precision(powers=((1.5, 10**12),)),
                                errors.InsufficientMemoryError, "powers"),
    "precision powers not pairs": (lambda m, r, t: lab.precision(powers=(1.5, 100)),
                                   errors.InvalidArgumentError, "powers[0]"),
    "symmetry constant nan": (lambda m, r, t: lab.symmetry(constant=float("nan")),
                              errors.InvalidArgumentError, "constant"),
    "xavier gamma 1e300": (lambda m, r, t: lab.xavier(gamma=1e300), errors.InvalidArgumentError, "gamma"),
    "matrix_products seed 2**64": (lambda m, r, t: lab.matrix_products(seed=2**64),
                                   errors.InvalidArgumentError, "seed"),
    "matrix_products seed 1.5": (lambda m, r, t: lab.matrix_products(seed=1.5), errors.NumstabTypeError,
                                 "seed"),
    "mlp_gradients seed '0'": (lambda m, r, t: lab.mlp_gradients(seed="0"), errors.NumstabTypeError, "seed"),
    "symmetry seed -5": (lambda m, r, t: lab.symmetry(seed=-5), errors.InvalidArgumentError, "seed"),
    "xavier seed 2**63": (lambda m, r, t: lab.xavier(seed=2**63), errors.InvalidArgumentError, "seed"),
    "precision seed -1": (lambda m, r, t: lab.precision(seed=-1), errors.InvalidArgumentError, "seed"),
    "matrix_products trials 1e10": (lambda m, r, t: lab.matrix_products(trials=10**10),
                                    errors.InsufficientMemoryError, "trials"),
    "mlp_gradients width 1e5": (lambda m, r, t: lab.mlp_gradients(width=100_000),
                                errors.InsufficientMemoryError, "width"),
    "activation_curves step 1e-15": (lambda m, r, t: lab.activation_curves(step=1e-15),
                                     errors.InsufficientMemoryError, "step"),
    "activation_curves lo nan": (lambda m, r, t: lab.activation_curves(lo=float("nan")),
                                 errors.InvalidArgumentError, "lo"),
    # training: names that were never run, progress, seeds, memory
    "lr_sweep window('kaiming')": (lambda m, r, t: r["lr"].window("kaiming"), errors.UnknownNameError,
                                   "setup label"),
    "lr_sweep accuracy at an lr not tried": (lambda m, r, t: r["lr"].accuracy("relu, Kaiming", 0.5),
                                             errors.UnknownNameError, "learning rate"),
    "remedies effect('nope')": (lambda m, r, t: r["remedies"].effect("nope"), errors.UnknownNameError,
                                "remedy"),
    "remedies bottom_change('nope')": (lambda m, r, t: r["remedies"].bottom_change("nope"),
                                       errors.UnknownNameError, "remedy"),
    "depth_sweep accuracy at a depth not run": (lambda m, r, t: r["depth"].accuracy("relu, Kaiming", 7),
                                                errors.UnknownNameError, "depth"),
    "depth_sweep progress=False": (
        lambda m, r, t: training.depth_sweep([1], steps=2, seeds=[0], progress=False),
        errors.NumstabTypeError, "progress"),
    "depth_sweep seeds [-1]": (lambda m, r, t: training.depth_sweep([1], steps=2, seeds=[-1]),
                               errors.InvalidArgumentError, "seed"),
    "depth_sweep data_seed 2**64": (lambda m, r, t: training.depth_sweep([1], steps=2, data_seed=2**64),
                                    errors.InvalidArgumentError, "data_seed"),
    "depth_sweep seeds []": (lambda m, r, t: training.depth_sweep([1], steps=2, seeds=[]),
                             errors.InvalidArgumentError, "seeds"),
    "depth_sweep width 1e6": (lambda m, r, t: training.depth_sweep([1], width=10**6),
                              errors.InsufficientMemoryError, "width"),
    # precision.classify: only real numbers with data
    "classify [10**400]": (lambda m, r, t: precision.classify([10**400], "float16"),
                           errors.InvalidArgumentError, "values"),
    "classify meta tensor": (lambda m, r, t: precision.classify(m[0].weight.to("meta"), "float16"),
                             errors.InvalidArgumentError, "values"),
    "classify None": (lambda m, r, t: precision.classify(None, "float16"), errors.NumstabTypeError, "values"),
    "classify complex tensor": (
        lambda m, r, t: precision.classify(m[0].weight.to(torch.complex64), "float16"),
        errors.NumstabTypeError, "values"),
    "classify complex array": (lambda m, r, t: precision.classify(np.array([1 + 1j]), "float16"),
                               errors.NumstabTypeError, "values"),
    "classify strings": (lambda m, r, t: precision.classify(["1.5"], "float16"), errors.NumstabTypeError,
                         "values"),
    "classify None among numbers": (lambda m, r, t: precision.classify([1.0, None], "float16"),
                                    errors.NumstabTypeError, "values"),
    "classify booleans": (lambda m, r, t: precision.classify(torch.tensor([True]), "float16"),
                          errors.NumstabTypeError, "values"),
    "classify sparse": (lambda m, r, t: precision.classify(torch.eye(2).to_sparse(), "float16"),
                        errors.NumstabTypeError, "values"),
    "classify unknown format": (lambda m, r, t: precision.classify(m[0].weight, "float12"),
                                errors.UnknownNameError, "number format"),
    "headroom_bits 10**400": (lambda m, r, t: precision.headroom_bits(10**400, "float16"),
                              errors.InvalidArgumentError, "max_abs"),
    # jsonio: hostile files, and never replacing a user's file
    "load deeply nested": (lambda m, r, t: jsonio.load(t / "deep.json"), errors.InvalidArgumentError,
                           "nested"),
    "load huge integer": (lambda m, r, t: jsonio.load(t / "int.json"), errors.InvalidArgumentError,
                          "5000 digits"),
    "load None": (lambda m, r, t: jsonio.load(None), errors.NumstabTypeError, "path"),
    "load a folder": (lambda m, r, t: jsonio.load(t), errors.InvalidArgumentError, "cannot read report"),
    "loads without schema": (lambda m, r, t: jsonio.loads("[1]"), errors.InvalidArgumentError, "schema"),
    "dump over a user's file": (lambda m, r, t: jsonio.dump("check", {}, t / "user.json"),
                                errors.InvalidArgumentError, "not written by numstab"),
    "dumps a payload holding itself": (lambda m, r, t: jsonio.dumps("check", _self_referencing()),
                                       errors.InvalidArgumentError, "payload"),
    "ReportFolder over a user's folder": (lambda m, r, t: ReportFolder(t, kind="tour"),
                                          errors.InvalidArgumentError, "not a numstab report"),
    # init: values beyond the parameter's dtype, weights that cannot be written, overflowing activations,
    # seeds and generators, layers with no entries, batches LSUV cannot calibrate on
    "apply_ normal scale 1e39 on float32": (lambda m, r, t: init.apply_(m, "normal", scale=1e39),
                                            errors.InvalidArgumentError, "scale=1e+39"),
    "apply_ constant value 1e39 on float32": (lambda m, r, t: init.apply_(m, "constant", value=1e39),
                                              errors.InvalidArgumentError, "value=1e+39"),
    "apply_ bias_std 1e39 on float32": (lambda m, r, t: init.apply_(m, "xavier_normal", bias_std=1e39),
                                        errors.InvalidArgumentError, "bias_std=1e+39"),
    "apply_ activation torch.exp": (lambda m, r, t: init.apply_(m, "kaiming_normal", activation=torch.exp),
                                    errors.InvalidArgumentError, "activation 'exp'"),
    "gain torch.exp": (lambda m, r, t: init.gain(torch.exp), errors.InvalidArgumentError, "activation 'exp'"),
    "apply_ seed -1": (lambda m, r, t: init.apply_(m, "xavier_normal", seed=-1), errors.InvalidArgumentError,
                       "seed"),
    "apply_ seed 2**64": (lambda m, r, t: init.apply_(m, "xavier_normal", seed=2**64),
                          errors.InvalidArgumentError, "seed"),
    "apply_ seed '0'": (lambda m, r, t: init.apply_(m, "xavier_normal", seed="0"), errors.NumstabTypeError,
                        "seed"),
    "apply_ seed and generator": (
        lambda m, r, t: init.apply_(m, "xavier_normal", seed=0, generator=torch.Generator()),
        errors.InvalidArgumentError, "seed= or generator="),
    "apply_ generator 0": (lambda m, r, t: init.apply_(m, "xavier_normal", generator=0),
                           errors.NumstabTypeError, "generator"),
    "lsuv_ seed 1.5": (lambda m, r, t: init.lsuv_(m, torch.ones(8, 4), seed=1.5), errors.NumstabTypeError,
                       "seed"),
    "apply_ on a model built under inference_mode": (
        lambda m, r, t: init.apply_(_inference_copy(m), "xavier_normal"), errors.ModelError,
        "parameter '3.weight' was created under torch.inference_mode()"),
    "apply_ critical on Linear(0, 4)": (
        lambda m, r, t: init.apply_(_with_empty_layer(m), "critical", activation="tanh"),
        errors.ModelError, "layer '3' (Linear) has a weight with no entries"),
    "apply_ a scheme that applies to no layer": (
        lambda m, r, t: init.apply_(torch.nn.Sequential(m[1], m[2]), "orthogonal"),
        errors.ModelError, "scheme='orthogonal'"),
    "lsuv_ on a zero batch": (lambda m, r, t: init.lsuv_(m, torch.zeros(8, 4)), errors.ModelError,
                              "layer '0' has output std"),
    # check's inputs
    "load_target seed -1": (lambda m, r, t: __import__("numstab.probe.target").probe.target.load_target(
        "sigmoid_mlp", seed=-1), errors.InvalidArgumentError, "seed"),
    "load_target input_shape 1e11 x 1e11": (
        lambda m, r, t: __import__("numstab.probe.target").probe.target.load_target(
            "sigmoid_mlp", input_shape=(10**11, 10**11)), errors.InsufficientMemoryError, "input-shape"),
    # diagnose and locate_nonfinite: batches that measure nothing, arguments that do not fit
    "diagnose empty batch": (lambda m, r, t: _diagnose(m, torch.ones(0, 4)), errors.BadInputError, "inputs"),
    "diagnose empty token batch": (
        lambda m, r, t: _diagnose(torch.nn.Sequential(torch.nn.Embedding(4, 4, _weight=torch.ones(4, 4)), m),
                                  torch.zeros(0, 3, dtype=torch.long)), errors.BadInputError, "0 samples"),
    "diagnose target without loss_fn": (lambda m, r, t: _diagnose(m, torch.ones(3, 4), target=torch.ones(3)),
                                        errors.InvalidArgumentError, "loss_fn"),
    "diagnose forward needs kwargs": (lambda m, r, t: _diagnose(_NeedsKwargs(m), torch.ones(3, 4)),
                                      errors.InvalidArgumentError, "inputs"),
    "diagnose unknown keyword": (lambda m, r, t: _diagnose(m, {"x": torch.ones(3, 4)}),
                                 errors.InvalidArgumentError, "inputs"),
    "diagnose loss is a float": (lambda m, r, t: _diagnose(m, torch.ones(3, 4), loss_fn=lambda o: 1.0),
                                 errors.InvalidArgumentError, "loss_fn"),
    "locate_nonfinite empty batch": (lambda m, r, t: _locate(m, torch.ones(0, 4), _sum), errors.BadInputError,
                                     "inputs"),
    "locate_nonfinite target without loss_fn": (
        lambda m, r, t: _locate(m, torch.ones(3, 4), None, target=torch.ones(3)), errors.NumstabTypeError,
        "loss_fn"),
    "locate_nonfinite non-scalar loss": (lambda m, r, t: _locate(m, torch.ones(3, 4), lambda o: o),
                                         errors.InvalidArgumentError, "loss_fn"),
    "locate_nonfinite loss .item()": (lambda m, r, t: _locate(m, torch.ones(3, 4), lambda o: o.sum().item()),
                                      errors.InvalidArgumentError, "loss_fn"),
    "locate_nonfinite forward needs kwargs": (
        lambda m, r, t: _locate(_NeedsKwargs(m), torch.ones(3, 4), _sum),
        errors.InvalidArgumentError, "inputs"),
}


@pytest.fixture
def model() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Tanh(), torch.nn.BatchNorm1d(4))


@pytest.mark.parametrize("name", list(API_CASES))
def test_api_mistake_raises_a_numstab_error_naming_the_argument(name, model, results, tmp_path) -> None:
    call, error, argument = API_CASES[name]
    _hostile_files(tmp_path)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    files, rng = _snapshot(tmp_path), _rng_state()
    with pytest.raises(error) as err:
        call(model, results, tmp_path)
    assert isinstance(err.value, errors.NumstabError) and isinstance(err.value, (ValueError, TypeError))
    assert argument in str(err.value)
    assert "\n" not in str(err.value)
    after = model.state_dict()
    assert all(torch.equal(state[k], after[k]) for k in state)
    assert _snapshot(tmp_path) == files
    _assert_same_rng(rng)


def test_the_table_has_at_least_sixty_cases() -> None:
    assert len(CLI_CASES) + len(API_CASES) >= 60
