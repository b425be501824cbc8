"""Resolve a ``numstab check`` TARGET to a model and inputs: a built-in example or ``file.py:factory``.

Loading a file **runs the code in it** (it is imported like any Python module): only check files you
trust. Weights are never unpickled: a checkpoint is read with ``torch.load(weights_only=True)``, which
accepts tensors and plain containers only.

Examples:
    >>> model, inputs = load_target("lstm")
    >>> tuple(inputs.shape)
    (8, 20, 32)
    >>> parse_shape("4,3,32,32")
    (4, 3, 32, 32)
"""

from __future__ import annotations

import importlib.util
import math
import os
import pathlib
import sys
from typing import Any

import torch
from torch import nn

from numstab import examples
from numstab.errors import InvalidArgumentError, ModelError, NumstabTypeError, check_seed
from numstab.resources import check_memory

__all__ = ["load_target", "load_factory", "parse_shape", "load_weights"]


def parse_shape(text: str) -> tuple[int, ...]:
    """Parse ``"N,C,H,W"`` (any number of positive integers, comma-separated) into a tuple.

    Raises:
        InvalidArgumentError: an entry is not a positive integer (the message names --input-shape).

    Examples:
        >>> parse_shape("16, 64")
        (16, 64)
    """
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        shape = ()
    if not shape or any(n < 1 for n in shape):
        raise InvalidArgumentError(
            f"--input-shape must be positive integers separated by commas, got {text!r}: e.g. 8,3,32,32"
        )
    return shape


def load_target(
    target: str, *, input_shape: tuple[int, ...] | None = None, seed: int = 0
) -> tuple[nn.Module, Any]:
    """Return ``(model, inputs)`` for a built-in example name or ``path/to/file.py:factory``.

    The factory is called with no arguments and returns a model (then ``input_shape`` is required and
    the inputs are N(0, 1) from a generator seeded with ``seed``) or a ``(model, inputs)`` pair
    (``input_shape``, when given, replaces its inputs).

    Args:
        target: an example name (:func:`numstab.examples.names`) or ``FILE.py:FACTORY``.
        input_shape: the shape of a random input batch.
        seed: seed of the example's weights and of random inputs.

    Raises:
        UnknownNameError: no such example.
        InvalidArgumentError: the file or the factory does not exist, or input_shape is missing.
        ModelError: importing the file or calling the factory raised.
    """
    seed = check_seed("seed", seed)
    if input_shape is not None:
        # the random batch alone, float32; the forward and backward pass need several times more
        check_memory(f"--input-shape {','.join(map(str, input_shape))}", 4.0 * math.prod(input_shape),
                     "use a smaller batch or input shape")
    if ":" not in target and not target.endswith(".py"):
        model, inputs = examples.build(target, seed=seed)
    else:
        model, inputs = _from_factory(_call_factory(load_factory(target), target), target)
    if input_shape is not None:
        inputs = torch.randn(input_shape, generator=torch.Generator().manual_seed(seed))
    if inputs is None:
        raise InvalidArgumentError(
            f"the factory in {target!r} returned a model without inputs: pass --input-shape N,C,H,W "
            "(or return a (model, inputs) pair)"
        )
    return model, inputs


def _call_factory(factory: Any, target: str) -> Any:
    """Call the user's factory; an exception in it is the user's model code failing, said in one line."""
    try:
        return factory()
    except Exception as err:
        raise ModelError(f"the factory {target!r} raised {type(err).__name__}: {err}") from err


def _from_factory(result: Any, target: str) -> tuple[nn.Module, Any]:
    if isinstance(result, nn.Module):
        return result, None
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], nn.Module):
        return result[0], result[1]
    raise NumstabTypeError(
        f"the factory in {target!r} returned {type(result).__name__}: return an nn.Module or a "
        "(model, inputs) pair"
    )


def load_factory(target: str) -> Any:
    """Import ``FILE.py`` (running its code) and return its callable ``FACTORY`` from ``FILE.py:FACTORY``.

    Raises:
        InvalidArgumentError: no ``:FACTORY``, the file is missing, importing it failed, or the factory
            is missing or not callable.
    """
    path_text, _, name = target.rpartition(":")
    if not path_text or not name:
        raise InvalidArgumentError(
            f"TARGET {target!r} names a file without a factory: write path/to/file.py:factory"
        )
    path = pathlib.Path(path_text)
    if not path.is_file():
        raise InvalidArgumentError(
            f"TARGET file {str(path)!r} does not exist: check the path (relative to {os.getcwd()})"
        )
    module = _import_file(path)
    factory = getattr(module, name, None)
    if not callable(factory):
        found = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise InvalidArgumentError(
            f"{str(path)!r} has no callable {name!r}: define it, or use one of {', '.join(found) or '(none)'}"
        )
    return factory


def _import_file(path: pathlib.Path) -> Any:
    name = f"numstab_target_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InvalidArgumentError(f"cannot import {str(path)!r}: TARGET must be a Python file (.py)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        sys.modules.pop(name, None)
        raise ModelError(f"importing {str(path)!r} failed: {type(err).__name__}: {err}") from err
    return module


def load_weights(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load a state dict into ``model`` with ``torch.load(weights_only=True)`` (never unpickles objects).

    Raises:
        InvalidArgumentError: the file is missing or is not a state dict of tensors for this model.
    """
    file = pathlib.Path(path)
    if not file.is_file():
        raise InvalidArgumentError(f"--weights file {str(file)!r} does not exist: check the path")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InvalidArgumentError(
            f"--weights {str(file)!r} is not a state dict for this model ({first}): save it with "
            "torch.save(model.state_dict(), path)"
        ) from err
    return model
