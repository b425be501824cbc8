"""Old module paths that keep working, with a ``FutureWarning``, after a module moved.

``numstab.report`` (the rendering layer) is now :mod:`numstab.render`; JSON and output files moved
below it (:mod:`numstab.jsonio`, :mod:`numstab.files`), the tour beside the CLI (:mod:`numstab.tour`);
the lab's modules are named after their functions (``numstab.lab.taylor_check`` is
:mod:`numstab.lab.taylor`). An import of an old path returns the *same* module object as the new path
(no second copy, so classes compare equal), through a finder placed first on :data:`sys.meta_path`
when :mod:`numstab` is imported.

Examples:
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", FutureWarning)  # the first import of an old path warns
    ...     import numstab.report.html as old
    >>> import numstab.render.html as new
    >>> old is new
    True
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
import warnings

__all__ = ["MOVED", "new_name", "install"]

#: Old dotted path (a module, or a package whose submodules follow it) -> new dotted path. The most
#: specific entry wins.
MOVED: dict[str, str] = {
    "numstab.report": "numstab.render",
    "numstab.report.jsonio": "numstab.jsonio",
    "numstab.report.files": "numstab.files",
    "numstab.report.tour": "numstab.tour",
    "numstab.lab.taylor_check": "numstab.lab.taylor",
    "numstab.lab.formats": "numstab.lab.precision",
    "numstab.lab.xavier_variance": "numstab.lab.xavier",
    "numstab.lab.symmetry_check": "numstab.lab.symmetry",
    "numstab.lab.curves": "numstab.lab.activation_curves",
    "numstab.lab.products": "numstab.lab.matrix_products",
    "numstab.lab.mlp": "numstab.lab.mlp_gradients",
}


def new_name(old: str) -> str | None:
    """The current path of module ``old``, or None when it did not move.

    Examples:
        >>> new_name("numstab.report.lab"), new_name("numstab.report.jsonio"), new_name("numstab.theory")
        ('numstab.render.lab', 'numstab.jsonio', None)
    """
    parts = old.split(".")
    for cut in range(len(parts), 1, -1):
        head = ".".join(parts[:cut])
        if head in MOVED:
            return ".".join([MOVED[head], *parts[cut:]])
    return None


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old path and loads it as the module at the new path (imported on the spot)."""

    def __init__(self) -> None:
        self._specs: dict[str, importlib.machinery.ModuleSpec | None] = {}

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        new = new_name(fullname)
        if new is None:
            return None
        is_package = importlib.util.find_spec(new) is not None and _is_package(new)
        return importlib.util.spec_from_loader(fullname, self, is_package=is_package)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        new = new_name(spec.name)
        warnings.warn(
            f"{spec.name} moved to {new}: import {new} instead (the old path will be removed)",
            FutureWarning,
            stacklevel=2,
        )
        module = importlib.import_module(new)  # type: ignore[arg-type]
        self._specs[spec.name] = module.__spec__
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run (the module is loaded); give it back its own spec, which the import replaced."""
        for old, own in list(self._specs.items()):
            if own is not None and own.name == module.__name__:
                module.__spec__ = own
                del self._specs[old]


def _is_package(name: str) -> bool:
    spec = importlib.util.find_spec(name)
    return spec is not None and spec.submodule_search_locations is not None


def install() -> None:
    """Put the finder first on :data:`sys.meta_path` (once)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
