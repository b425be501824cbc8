"""The second moment of what each dense/conv layer actually receives, recorded by forward pre-hooks.

A layer's input is not always the output of the module before it: in a residual network the first
convolution of a block reads the stream (the sum of every earlier block's branch and the identity), not
the last BatchNorm's output, and its scale grows with depth by design (each block adds its branch). The
rules (:func:`numstab.probe.rules.segments`) start a segment's gain at the input its first layer really
receives, so that this growth is not read as an explosion. Each input is reduced to
:math:`E[x^2] = \\lVert x \\rVert^2 / n` by :func:`numstab.probe.stats.norm` (exact at the extremes) and
released.

Examples:
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    >>> with InputMoments(net) as moments:
    ...     _ = net(torch.full((3, 2), 2.0))
    >>> round(moments.values["0"], 12), len(net[0]._forward_pre_hooks)
    (4.0, 0)
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch
from torch import nn

from numstab import layers as layers_of
from numstab.probe.hooks import float_tensors
from numstab.probe.stats import norm

__all__ = ["InputMoments"]


class InputMoments:
    """Context manager: ``values[name]``, E[x²] of the first floating-point input of a weighted or
    normalization call.

    Weighted modules have a ``weight`` of two or more dimensions (:func:`numstab.layers.own_weight`);
    normalizations are the classes whose name contains "Norm"; a module called again is ``name#2``, as in
    :class:`numstab.probe.hooks.Capture`. ``feeds_norm`` holds the dense/conv calls whose output the next
    hooked call, a normalization, reads as it is (the same storage: Segformer's reduction conv, reshaped,
    into its LayerNorm), not added to a residual stream first. Hooks are removed on exit, also after an
    exception.
    """

    def __init__(self, model: nn.Module) -> None:
        self.values: dict[str, float] = {}
        self.feeds_norm: set[str] = set()
        self._names = {m: n for n, m in model.named_modules() if _reads_scale(m)}
        self._calls: Counter[nn.Module] = Counter()
        self._handles: list[Any] = []
        self._last: tuple[str, int] | None = None  # the last dense/conv call's name and output storage

    def __enter__(self) -> InputMoments:
        try:
            for module in self._names:
                self._handles.append(module.register_forward_pre_hook(self._hook))
                if not _is_norm(module):
                    self._handles.append(module.register_forward_hook(self._after))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        while self._handles:
            self._handles.pop().remove()

    def _hook(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        self._calls[module] += 1
        x = next(float_tensors(args), None)
        last, self._last = self._last, None  # "next": any hooked call in between breaks the link
        if x is None or not x.numel():
            return
        if last is not None and _is_norm(module) and last[1] == _storage(x):
            self.feeds_norm.add(last[0])
        with torch.no_grad():
            self.values[self._call_name(module)] = norm(x) ** 2 / x.numel()

    def _after(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        y = next(float_tensors(output), None)
        self._last = None if y is None else (self._call_name(module), _storage(y))

    def _call_name(self, module: nn.Module) -> str:
        k = self._calls[module]
        return self._names[module] if k == 1 else f"{self._names[module]}#{k}"


def _storage(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


def _is_norm(module: nn.Module) -> bool:
    return "norm" in type(module).__name__.lower()


def _reads_scale(module: nn.Module) -> bool:
    """A dense/conv layer (MoE experts too) or a normalization: the modules whose input's E[x²] the rules
    read."""
    return (
        layers_of.own_weight(module) is not None
        or bool(layers_of.expert_weights(module))
        or _is_norm(module)
    )
