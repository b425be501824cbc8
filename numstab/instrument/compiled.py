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

__all__ = ["unwrap_compiled", "is_compiled", "COMPILED"]

#: The attribute (and name segment) torch.compile's ``OptimizedModule`` adds.
COMPILED = "_orig_mod"


def unwrap_compiled(model: nn.Module) -> tuple[nn.Module, bool]:
    """``(original module, True)`` for a ``torch.compile``'d module (nested compiles unwrapped), else
    ``(model, False)``."""
    compiled = False
    while is_compiled(model):
        model, compiled = getattr(model, COMPILED), True
    return model, compiled


def is_compiled(model: nn.Module) -> bool:
    """True for the wrapper ``torch.compile(module)`` returns (an ``OptimizedModule``)."""
    return type(model).__name__ == "OptimizedModule" and isinstance(getattr(model, COMPILED, None), nn.Module)
