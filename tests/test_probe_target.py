"""numstab.probe.target: TARGET strings, user factories, checkpoints without unpickling."""

from __future__ import annotations

import pickle

import pytest
import torch
from torch import nn

from numstab.errors import InvalidArgumentError, ModelError, NumstabTypeError, UnknownNameError
from numstab.probe.target import load_target, load_weights, parse_shape

FACTORIES = '''
import torch
from torch import nn

def model_only():
    return nn.Sequential(nn.Linear(6, 6), nn.Tanh())

def with_inputs():
    return nn.Linear(3, 2), torch.ones(4, 3)

def not_a_model():
    return 42

VALUE = 3
'''


@pytest.fixture
def factory_file(tmp_path):
    path = tmp_path / "nets.py"
    path.write_text(FACTORIES)
    return path


def test_a_built_in_example_is_a_name() -> None:
    model, x = load_target("constant_mlp", seed=0)
    assert isinstance(model, nn.Sequential) and tuple(x.shape) == (128, 64)
    with pytest.raises(UnknownNameError, match="unknown example 'resnet': use one of sigmoid_mlp"):
        load_target("resnet")


def test_a_factory_returning_a_model_needs_an_input_shape(factory_file) -> None:
    with pytest.raises(InvalidArgumentError, match="pass --input-shape N,C,H,W"):
        load_target(f"{factory_file}:model_only")
    model, x = load_target(f"{factory_file}:model_only", input_shape=(5, 6), seed=3)
    assert tuple(x.shape) == (5, 6)
    assert torch.equal(x, torch.randn(5, 6, generator=torch.Generator().manual_seed(3)))


def test_a_factory_returning_a_pair_gives_its_inputs(factory_file) -> None:
    model, x = load_target(f"{factory_file}:with_inputs")
    assert isinstance(model, nn.Linear) and torch.equal(x, torch.ones(4, 3))


def test_missing_file_factory_or_wrong_return_are_clear(factory_file, tmp_path) -> None:
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        load_target(f"{tmp_path / 'nope.py'}:f")
    with pytest.raises(InvalidArgumentError, match="has no callable 'missing': define it, or use one of"):
        load_target(f"{factory_file}:missing")
    with pytest.raises(InvalidArgumentError, match="names a file without a factory"):
        load_target(str(factory_file))
    with pytest.raises(NumstabTypeError, match="returned int: return an nn.Module"):
        load_target(f"{factory_file}:not_a_model")


def test_an_import_error_in_the_user_file_is_one_clear_error(tmp_path) -> None:
    bad = tmp_path / "broken.py"
    bad.write_text("raise ImportError('no module named foo')\n")
    with pytest.raises(ModelError, match="importing .*broken.py' failed: ImportError: no module named foo"):
        load_target(f"{bad}:f")


@pytest.mark.parametrize(("text", "ok"), [("8,3,32,32", (8, 3, 32, 32)), ("4", (4,)), ("0,3", None),
                                          ("a,b", None), ("", None)])
def test_parse_shape(text: str, ok) -> None:
    if ok is None:
        with pytest.raises(InvalidArgumentError, match="--input-shape must be positive integers"):
            parse_shape(text)
    else:
        assert parse_shape(text) == ok


class _Evil:
    def __reduce__(self):
        return (print, ("unpickled!",))


def test_weights_are_loaded_with_weights_only(tmp_path, capsys) -> None:
    net = nn.Linear(2, 2)
    good = tmp_path / "good.pt"
    torch.save({k: torch.zeros_like(v) for k, v in net.state_dict().items()}, good)
    load_weights(net, good)
    assert torch.equal(net.weight, torch.zeros(2, 2))
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"weight": _Evil()}, protocol=2))
    with pytest.raises(InvalidArgumentError, match="is not a state dict for this model"):
        load_weights(net, evil)
    assert "unpickled!" not in capsys.readouterr().out
