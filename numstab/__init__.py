"""numstab: make the numerical stability of deep networks visible, predictable and fixable.

Four jobs, one package (see DESIGN.md):

- :mod:`numstab.lab`: the experiments of D2L's "Numerical Stability and Initialization";
- :mod:`numstab.theory`: signal-propagation theory for any activation (pure numpy/scipy);
- :func:`numstab.diagnose`: one forward and backward pass of your model, verdicts and the fix;
- :class:`numstab.GradientMonitor`: per-layer gradient health during training.

Submodules load on first use, so ``import numstab`` is cheap and ``numstab.theory`` never pulls
in torch.

Examples:
    >>> import numstab
    >>> numstab.activations.get("tanh").name
    'tanh'
"""

from __future__ import annotations

import importlib
from typing import Any

from numstab import _moved

__version__ = "0.1.0"

_SUBMODULES = {
    "activations", "init", "precision", "theory", "lab", "probe", "monitor", "render", "errors", "examples",
    "jsonio", "files", "display", "tour",
}
_ATTRIBUTES = {
    "diagnose": ("numstab.probe", "diagnose"),
    "Report": ("numstab.probe", "Report"),
    "GradientMonitor": ("numstab.monitor", "GradientMonitor"),
}

__all__ = sorted(_SUBMODULES | set(_ATTRIBUTES) | {"__version__"})


_moved.install()  # old module paths (numstab.report, ...) keep working, with a FutureWarning


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES or _moved.new_name(f"numstab.{name}"):
        return importlib.import_module(f"numstab.{name}")
    if name in _ATTRIBUTES:
        module, attr = _ATTRIBUTES[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'numstab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
