"""Number formats, low-precision recipes, and a pre-flight audit of a model under them.

- :mod:`numstab.precision.ranges`: the formats deep learning uses (:func:`formats`), and where values land
  in them before any cast (:func:`classify`, :func:`headroom_bits`);
- :mod:`numstab.precision.recipes`: the low-precision recipes (:data:`RECIPES`: bf16/fp16 and fp8 casts,
  per-tensor fp8 scaling, MXFP8, NVFP4), :mod:`numstab.precision.elements` their element formats and
  :mod:`numstab.precision.scaling` their scales;
- :mod:`numstab.precision.simulate`: :func:`quantize` (the values a recipe feeds the GEMM, bit for bit)
  and :func:`measure` (overflow, underflow, subnormal counts, relative MSE, headroom);
- :func:`audit` (with :class:`PrecisionAudit`): every GEMM operand of a model under every recipe, and
  which layers to keep in high precision.

Layering. Everything above is the ground layer (torch only): the probe, the lab and the report import
it. :func:`audit` runs hooks over a model, so it lives in the probe layer
(:mod:`numstab.probe.precision_audit`); ``numstab.precision.audit`` is a *lazy re-export*, resolved by
:func:`importlib.import_module` on first access, the way ``numstab/__init__.py`` exposes
``numstab.diagnose``. No module of this package imports the probe at import time, so imports still run
one way (ground -> theory -> init -> lab/probe/monitor -> report -> cli) and ``import numstab.precision``
does not load the probe.

Examples:
    >>> import torch
    >>> from numstab import precision
    >>> precision.formats()["float8_e4m3fn"].max
    448.0
    >>> precision.quantize(torch.tensor([0.3]), "e4m3_cast").tolist()
    [0.3125]
"""

from __future__ import annotations

import importlib
from typing import Any

from numstab.precision.ranges import (
    CATEGORIES,
    FORMAT_NAMES,
    Format,
    categorize,
    classify,
    formats,
    fractions,
    get_format,
    headroom_bits,
)
from numstab.precision.recipes import RECIPE_NAMES, RECIPES, Recipe, get_recipe
from numstab.precision.simulate import Measurement, measure, quantize

__all__ = [
    # ranges: formats and where values land in them
    "CATEGORIES", "FORMAT_NAMES", "Format", "formats", "get_format", "categorize", "classify", "fractions",
    "headroom_bits",
    # recipes and their simulation
    "RECIPES", "RECIPE_NAMES", "Recipe", "get_recipe", "quantize", "measure", "Measurement",
    # the audit (probe layer, loaded on first access)
    "audit", "PrecisionAudit", "PrecisionRecord", "LayerPrecision",
]

#: Names re-exported lazily from the probe layer: ``name -> module``.
_LAZY = {name: "numstab.probe.precision_audit" for name in ("audit", "PrecisionAudit", "PrecisionRecord",
                                                              "LayerPrecision")}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'numstab.precision' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
