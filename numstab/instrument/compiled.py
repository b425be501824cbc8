"""The eager module inside a ``torch.compile``'d one.

Hooks do not run inside a compiled graph (dynamo traces them, or skips modules it inlined), and a first
call compiles, so measuring a compiled module would see no layer, or fail with a dynamo error blamed on
the inputs. The original module (``OptimizedModule._orig_mod``) shares the parameters and buffers and
runs eagerly: measure that, under its own names (no ``_orig_mod.`` prefix).

Examples:
    >>> import torch
    >>> net = torch.nn.Linear(2, 2)
    >>> unwrap_compiled(torch.compile(net)) == (net, True), unwrap_compiled(net) == (net, False)
    (True, True)
"""

from __future__ import annotations

from torch import nn

__all__ = ["unwrap_compiled"]


def unwrap_compiled(model: nn.Module) -> tuple[nn.Module, bool]:
    """``(original module, True)`` for a ``torch.compile``'d module (nested compiles unwrapped), else
    ``(model, False)``."""
    compiled = False
    while _is_compiled(model):
        model, compiled = model._orig_mod, True
    return model, compiled


def _is_compiled(model: nn.Module) -> bool:
    orig = getattr(model, "_orig_mod", None)
    return isinstance(orig, nn.Module) and type(model).__name__ == "OptimizedModule"
