"""How a batch is passed to a model, and the checks every pass makes before it runs.

``inputs`` is a tensor (``model(inputs)``), a tuple or list (``model(*inputs)``) or a dict
(``model(**inputs)``: the way to pass keyword arguments, e.g. an HF model's ``input_ids`` and
``attention_mask``). :func:`check_inputs` refuses, before anything runs and with one line naming
``inputs``: non-finite values (bad data, not instability), an empty batch (0 samples measure nothing), and
arguments that do not fit the model's ``forward`` signature (saying how to pass them).

Examples:
    >>> import torch
    >>> as_call({"x": torch.ones(1)})[1].keys(), as_call(torch.ones(1))[0][0].shape
    (dict_keys(['x']), torch.Size([1]))
    >>> check_inputs(torch.nn.Linear(2, 2), (torch.zeros(0, 2),), {})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    numstab.errors.BadInputError: inputs hold an empty tensor (shape (0, 2)): a batch of 0 samples ...
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from numstab.errors import BadInputError, InvalidArgumentError, NumstabTypeError
from numstab.instrument.tensors import _walk, all_finite, float_tensors

__all__ = ["as_call", "check_inputs", "check_loss"]


def as_call(inputs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``(args, kwargs)`` for ``model(*args, **kwargs)``: a dict is keyword arguments, a tuple or list
    positional ones, anything else the single argument."""
    if isinstance(inputs, dict):
        return (), dict(inputs)
    if isinstance(inputs, (tuple, list)):
        return tuple(inputs), {}
    return (inputs,), {}


def check_inputs(model: nn.Module | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Raise a numstab error naming ``inputs`` when the batch cannot be measured (see the module docstring);
    ``model=None`` skips the signature check (the caller runs the forward its own way).

    Raises:
        NumstabTypeError: no tensor at all in ``inputs``.
        BadInputError: NaN/inf in a floating-point input, or an empty tensor.
        InvalidArgumentError: the arguments do not bind to ``model.forward``'s signature.
    """
    tensors = list(_walk((args, kwargs)))
    if not tensors:
        raise NumstabTypeError(
            f"inputs hold no tensor (got {type(args[0]).__name__ if args else 'an empty dict'}): pass a "
            "tensor, a tuple of positional arguments or a dict of keyword arguments for the model"
        )
    for i, t in enumerate(float_tensors((args, kwargs))):
        if not all_finite(t):
            bad = int((~torch.isfinite(t)).sum())
            raise BadInputError(
                f"inputs already contain inf or NaN: {bad} NaN/inf value(s) in floating-point tensor {i} "
                f"(shape {tuple(t.shape)}): bad data, not model instability; clean them (torch.nan_to_num) "
                "or fix the data pipeline (check torch.isfinite(batch).all() in the loader)"
            )
    empty = next((t for t in tensors if t.numel() == 0), None)
    if empty is not None:
        raise BadInputError(
            f"inputs hold an empty tensor (shape {tuple(empty.shape)}): a batch of 0 samples measures "
            "nothing; pass at least one sample (2 to 4 are enough)"
        )
    if model is not None:
        _check_signature(model, args, kwargs)


def _check_signature(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    try:
        signature = inspect.signature(model.forward)
    except (TypeError, ValueError):  # a builtin or C forward: let the call itself say
        return
    try:
        signature.bind(*args, **kwargs)
    except TypeError as err:
        raise InvalidArgumentError(
            f"inputs do not fit {type(model).__name__}.forward{signature} ({err}): pass a tuple for "
            "positional arguments or a dict for keyword arguments, e.g. inputs={'input_ids': ids, "
            "'attention_mask': mask} for model(**inputs)"
        ) from err


def check_loss(loss: Any) -> torch.Tensor:
    """``loss`` as a 0-d tensor; a numstab error naming ``loss_fn`` unless it is a one-element float tensor.

    Examples:
        >>> check_loss(torch.ones(1)).shape
        torch.Size([])
    """
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1 or not loss.is_floating_point():
        got = f"a tensor of shape {tuple(loss.shape)} and dtype {loss.dtype}" if isinstance(
            loss, torch.Tensor) else type(loss).__name__
        raise InvalidArgumentError(
            f"loss_fn must return a scalar floating-point tensor, got {got}: reduce it, e.g. with .mean(), "
            "and keep it a tensor (not .item()) so that the backward pass can run"
        )
    return loss.reshape(())
