"""Hooks on every module of a model that name each call, and tensor hooks that survive in-place ops.

:class:`ModuleCalls` registers a forward pre-hook and a forward hook on every module, names each call
(``name``, then ``name#2`` for a module's second call), keeps the stack of modules whose forward is
running (after an exception ``stack[-1]`` is the innermost module that failed) and removes every hook
it registered, on modules and on tensors, on :meth:`ModuleCalls.detach`. Subclasses override
:meth:`ModuleCalls.enter` and :meth:`ModuleCalls.leave`.

Gradients come from *tensor* hooks (:meth:`ModuleCalls.on_grad`) registered inside the forward hooks,
not from ``register_full_backward_hook``: the latter wraps a module's inputs and outputs in a
``BackwardHookFunction`` whose outputs may not be modified in place, so it breaks on models with
``ReLU(inplace=True)``. A tensor hook registered before an in-place op receives the gradient with respect
to the value before the op (torch's documented rule): registered on an output in the forward hook, it
sees the gradient of the module's own output; registered on an alias of an input (:meth:`ModuleCalls.alias`,
a ``view_as`` made in the pre-hook), it sees the gradient that *this* module sends back, even when
several modules read the same tensor.

Examples:
    >>> import torch
    >>> from torch import nn
    >>> class Names(ModuleCalls):
    ...     def leave(self, module, name, args, output):
    ...         self.seen.append(name)
    >>> net = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    >>> calls = Names(net); calls.seen = []
    >>> with calls:
    ...     _ = net(torch.ones(1, 2))
    >>> calls.seen, len(net[0]._forward_hooks)
    (['0', '1', '(root)'], 0)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

__all__ = ["ModuleCalls", "ROOT"]

#: The name of the model itself in call names (``named_modules()`` calls it "").
ROOT = "(root)"


class ModuleCalls:
    """Pre- and forward hooks on every module of ``model``; a context manager that removes them all.

    Attributes:
        names: ``{module: qualified name}`` (the root is :data:`ROOT`).
        stack: names of the modules whose forward is running, innermost last.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.names: dict[nn.Module, str] = {m: (n or ROOT) for n, m in model.named_modules()}
        self.stack: list[str] = []
        self._counts: Counter[nn.Module] = Counter()
        self._handles: list[Any] = []

    def __enter__(self) -> ModuleCalls:
        self.attach()
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach()

    def attach(self) -> None:
        """Register the two hooks on every module (all removed again if one registration fails)."""
        try:
            for module in self.names:
                pre = module.register_forward_pre_hook(self._pre, with_kwargs=True, prepend=True)
                self._handles.append(pre)
                self._handles.append(module.register_forward_hook(self._post))
        except BaseException:
            self.detach()
            raise

    def detach(self) -> None:
        """Remove every hook registered, on modules and on tensors (an input the caller owns, or an output
        the model caches, must not keep one)."""
        while self._handles:
            self._handles.pop().remove()

    def on_grad(self, tensor: torch.Tensor, hook: Callable[[torch.Tensor], None]) -> None:
        """Call ``hook(grad)`` when the gradient of ``tensor`` is computed (removed on detach)."""
        self._handles.append(tensor.register_hook(hook))

    def alias(self, value: Any, hook: Callable[[torch.Tensor], None]) -> Any:
        """``value`` (a tensor that requires grad) as a fresh view whose gradient goes to ``hook``; other
        values unchanged. Return it from :meth:`enter` so that the module reads the alias."""
        if not (isinstance(value, torch.Tensor) and value.is_floating_point() and value.requires_grad):
            return value
        view = value.view_as(value)
        self.on_grad(view, hook)
        return view

    # -- for subclasses --------------------------------------------------------------------------------

    def enter(self, module: nn.Module, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Called before ``module``'s forward as call ``name``; may return ``(args, kwargs)`` instead."""
        return None

    def leave(self, module: nn.Module, name: str, args: tuple[Any, ...], output: Any) -> None:
        """Called after ``module``'s forward returned ``output``."""

    # -- hooks -----------------------------------------------------------------------------------------

    def _pre(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        base = self.names[module]
        self._counts[module] += 1
        count = self._counts[module]
        name = base if count == 1 else f"{base}#{count}"
        self.stack.append(name)
        return self.enter(module, name, args, kwargs)

    def _post(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        name = self.stack.pop() if self.stack else self.names[module]
        self.leave(module, name, args, output)
