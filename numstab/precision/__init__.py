"""Number formats, low-precision recipes, and a pre-flight audit of a model under them.

- :mod:`numstab.precision.ranges`: the formats deep learning uses (:func:`formats`), and where values land
  in them before any cast (:func:`classify`, :func:`headroom_bits`);
- :mod:`numstab.precision.recipes`: the low-precision recipes (:data:`RECIPES`: bf16/fp16 and fp8 casts,
  per-tensor fp8 scaling, MXFP8, NVFP4), :mod:`numstab.precision.elements` their element formats and
  :mod:`numstab.precision.scaling` their scales;
- :mod:`numstab.precision.simulate`: :func:`quantize` (the values a recipe feeds the GEMM, bit for bit)
  and :func:`measure` (overflow, underflow, subnormal counts, relative MSE, headroom);

Examples:
    >>> import torch
    >>> from numstab import precision
    >>> precision.formats()["float8_e4m3fn"].max
    448.0
    >>> precision.quantize(torch.tensor([0.3]), "e4m3_cast").tolist()
    [0.3125]
"""

from __future__ import annotations

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
]
