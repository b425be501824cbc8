"""Number formats, low-precision recipes, and a pre-flight audit of a model under them.

- :mod:`numstab.precision.ranges`: the formats deep learning uses (:func:`formats`), and where values land
  in them before any cast (:func:`classify`, :func:`headroom_bits`);

Examples:
    >>> from numstab import precision
    >>> precision.formats()["float8_e4m3fn"].max
    448.0
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

__all__ = [
    "CATEGORIES",
    "FORMAT_NAMES",
    "Format",
    "formats",
    "get_format",
    "categorize",
    "classify",
    "fractions",
    "headroom_bits",
]
