"""How a result shows itself (notebook HTML, a rich console) without importing the layer that draws it.

Results live below the rendering layer and never import it: imports run one way (see
``docs/architecture.md``). A result's ``_repr_html_`` and ``__rich__`` are one line each, a call to
:func:`html` or :func:`rich` here; which function draws which result type is said in one place,
:mod:`numstab.render.registry`, which registers a :class:`Renderer` per type. That module is loaded by
name the first time something is displayed, so ``import numstab.lab`` still loads neither rich nor
matplotlib, and the dependency stays where it belongs: the renderers know the results, never the reverse.

Examples:
    >>> from numstab import lab
    >>> renderer(lab.taylor(["relu"])).title
    'Which activations look like the identity near 0'
    >>> html(lab.taylor(["relu"])).startswith('<div class="numstab-report">')
    True
    >>> text(lab.taylor(["relu"])).splitlines()[0]
    'Which activations look like the identity near 0'
"""

from __future__ import annotations

import importlib
import os
import pathlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from numstab.errors import NumstabTypeError

__all__ = [
    "Renderer", "register", "renderer", "html", "write_html", "rich", "text", "plain", "mimebundle", "figure",
    "Displayed", "in_language", "REGISTRY", "TERMINAL", "PLAIN_LIMIT",
]

#: The most bytes of ``text/plain`` a notebook output carries (the table is cut, with a pointer to print).
PLAIN_LIMIT = 2000

#: The module that registers every renderer, imported on first use.
REGISTRY = "numstab.render.registry"
#: The module that writes a rich renderable as plain text (``to_text``), imported on first use.
TERMINAL = "numstab.render.terminal"


@dataclass(frozen=True)
class Renderer:
    """How one result type is drawn.

    Attributes:
        title: the result's title (the HTML section's heading, the table's title).
        terminal: result -> a rich renderable (what ``console.print(result)`` and the CLI show); None
            where the result has no terminal form.
        page: result -> a :class:`numstab.render.html.HtmlPage` (notebooks, ``to_html``).
        section: (page, result, anchor) -> adds the result as one section of a page (the tour); None
            where the result is only ever shown alone.
        figure: result -> a new matplotlib Figure (what ``result.figure()`` returns); None where the
            result has no figure.
    """

    title: str
    terminal: Callable[[Any], Any] | None
    page: Callable[[Any], Any]
    section: Callable[..., Any] | None = None
    figure: Callable[[Any], Any] | None = None


_RENDERERS: dict[type, Renderer] = {}


def register(kind: type, drawn_by: Renderer) -> None:
    """Say that results of type ``kind`` (and its subclasses) are drawn by ``drawn_by``."""
    _RENDERERS[kind] = drawn_by


def renderer(result: Any) -> Renderer:
    """Return the :class:`Renderer` of ``result``'s type (the nearest registered base class).

    Raises:
        NumstabTypeError: no renderer is registered for the type; the message lists those that are.
    """
    if not _RENDERERS:
        importlib.import_module(REGISTRY)  # registers every renderer
    for kind in type(result).__mro__:
        if kind in _RENDERERS:
            return _RENDERERS[kind]
    known = ", ".join(sorted(k.__name__ for k in _RENDERERS))
    raise NumstabTypeError(f"no renderer for a {type(result).__name__}: numstab draws {known}")


def html(result: Any) -> str:
    """Return ``result`` as an HTML fragment (no <html>/<head>), what ``_repr_html_`` shows in a notebook."""
    return renderer(result).page(result).render(fragment=True)


def figure(result: Any) -> Any:
    """Return a new :class:`matplotlib.figure.Figure` of ``result``, yours to restyle, save or show.

    Raises:
        NumstabTypeError: the result has no figure.
    """
    draw = renderer(result).figure
    if draw is None:
        raise NumstabTypeError(f"a {type(result).__name__} has no figure: print it or show it in a notebook")
    return draw(result)


def plain(result: Any) -> str:
    """``text(result)``, cut to at most :data:`PLAIN_LIMIT` bytes: the ``text/plain`` of a notebook output."""
    return _cut(text(result))


def _cut(full: str) -> str:
    """``full`` cut at a line to :data:`PLAIN_LIMIT` bytes, with a pointer to the whole."""
    if len(full.encode()) <= PLAIN_LIMIT:
        return full
    tail = "\n... (cut: print(result) shows the whole table)"
    kept, size = [], len(tail.encode())
    for line in full.splitlines():
        size += len(line.encode()) + 1
        if size > PLAIN_LIMIT:
            break
        kept.append(line)
    return "\n".join(kept) + tail


def mimebundle(result: Any) -> dict[str, str]:
    """What a notebook shows: ``text/html`` (tables and the figure) and a short ``text/plain`` (the table).

    The figure is inside the HTML (one output, one copy of the image); ``result.figure()`` gives it
    as a matplotlib Figure, which Jupyter shows as ``image/png``.
    """
    return {"text/plain": plain(result), "text/html": html(result)}


class Displayed:
    """Mixin: how a result shows itself through its registered renderer (notebook, console, print).

    ``_repr_mimebundle_`` (Jupyter, Colab) gives HTML and a short text; ``str`` and ``__rich__`` its
    table; ``figure()`` a new matplotlib Figure where the result has one.
    """

    def __str__(self) -> str:
        return text(self)

    def _repr_html_(self) -> str:
        return html(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return mimebundle(self)

    def figure(self) -> Any:
        """A new matplotlib Figure of this result (restyle it, ``fig.savefig(...)``, or show it)."""
        return figure(self)


class _InLanguage:
    """A lab or training result shown in another language (see :func:`in_language`)."""

    def __init__(self, result: Any, lang: str) -> None:
        self.result, self.lang = result, lang

    def __repr__(self) -> str:
        return f"in_language({self.result!r}, {self.lang!r})"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        drawn_by = renderer(self.result)
        page = drawn_by.page(self.result, lang=self.lang).render(fragment=True)
        table = importlib.import_module(TERMINAL).to_text(drawn_by.terminal(self.result, lang=self.lang))
        return {"text/plain": _cut(table), "text/html": page}


def in_language(result: Any, lang: str) -> Any:
    """``result`` as a notebook shows it, in ``lang`` ("en", "zh"): the tables and the chapter's quotes.

    For the results of :mod:`numstab.lab` and :mod:`numstab.lab.training` (what the tour shows).

    Raises:
        UnknownNameError: ``lang`` is not one of :data:`numstab.messages.LANGUAGES`.
        NumstabTypeError: ``result`` is not a lab or training result.

    Examples:
        >>> from numstab import lab
        >>> "本章" in in_language(lab.taylor(["relu"]), "zh")._repr_mimebundle_()["text/html"]
        True
    """
    from numstab.messages import check_lang

    check_lang(lang)
    if renderer(result).section is None:  # only the tour's results (lab, training) speak other languages
        raise NumstabTypeError(f"a {type(result).__name__} is shown in English only: print it or display it")
    return _InLanguage(result, lang)


def write_html(result: Any, path: str | os.PathLike) -> pathlib.Path:
    """Write ``result`` as a self-contained HTML page and return its path."""
    return renderer(result).page(result).write(path)


def rich(result: Any) -> Any:
    """Return ``result`` as a rich renderable, what ``__rich__`` gives ``console.print``.

    Raises:
        NumstabTypeError: the result has no terminal form (a figure-only result).
    """
    terminal = renderer(result).terminal
    if terminal is None:
        raise NumstabTypeError(f"a {type(result).__name__} has no terminal form: show it in a notebook")
    return terminal(result)


def text(result: Any) -> str:
    """Return ``result``'s terminal table as plain text (no colour), what ``str(result)`` gives.

    ``str`` must not fail, so a result with no table (a part of a result: one curve, one run) gives its
    ``repr`` instead.
    """
    try:
        renderable = rich(result)
    except NumstabTypeError:
        return repr(result)
    return importlib.import_module(TERMINAL).to_text(renderable)
