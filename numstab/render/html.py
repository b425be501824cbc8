"""Self-contained HTML reports: one file, figures inlined, a table of contents, no network.

A report is a title and a list of sections; each section says, in labelled paragraphs, what the chapter
says, what we measured, what theory predicts, and the verdict. Figures are inlined as base64 PNG
(``data:`` URLs) and the CSS is inline, so the file works when opened from disk, mailed, or archived;
a Content-Security-Policy forbids every network request, so a report cannot depend on one by accident.
All text is HTML-escaped.

``render(fragment=True)`` gives the same content without ``<html>``/``<head>`` and with CSS scoped to
the report, for ``_repr_html_`` in notebooks.

Examples:
    >>> report = HtmlPage("Gradients through 50 layers", subtitle="D2L 5.4")
    >>> section = report.section("sigmoid", "Sigmoid vanishes")
    >>> _ = section.text("The gradient of sigmoid is at most 1/4.", label="The chapter")
    >>> _ = section.table(["layer", "grad norm"], [[1, 0.25], [50, 1.2e-31]]).verdict("bad", "vanishing")
    >>> html = report.render()
    >>> html.startswith("<!DOCTYPE html>"), 'href="#sigmoid"' in html, "1.20e-31" in html
    (True, True, True)
"""

from __future__ import annotations

import base64
import html as _html
import io
import os
import pathlib
import re
from collections.abc import Iterable, Sequence
from typing import Any

from numstab import __version__
from numstab.errors import InvalidArgumentError, NumstabTypeError, UnknownNameError
from numstab.files import GENERATOR, atomic_write_text, check_output_file
from numstab.messages import check_lang, html_lang, tr
from numstab.render.formatting import check_table, fmt, is_number, numeric_columns, verdict_kind

__all__ = ["HtmlPage", "Section", "VERDICT_LABELS"]

_ANCHOR = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_RESERVED_ANCHORS = frozenset({"top", "contents"})
#: The badge text of each verdict kind; the colour is never the only cue.
VERDICT_LABELS = {"ok": "OK", "warn": "Warning", "bad": "Problem"}
_CSS_PX_PER_INCH = 112  # on-screen size: a 6.4 in figure fills the 48rem column (717 px), whatever its dpi

_CSS = """
.numstab-report{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
 color:#1f2328;line-height:1.55;font-size:16px;max-width:48rem;margin:0 auto;padding:1.5rem 1rem 3rem}
.numstab-report h1{font-size:1.9rem;line-height:1.2;margin:0 0 .3rem}
.numstab-report h2{font-size:1.35rem;margin:2.4rem 0 .6rem;padding-bottom:.25rem;
 border-bottom:1px solid #d8dee4}
.numstab-report .subtitle{color:#57606a;margin:0 0 1rem;font-size:1.05rem}
.numstab-report nav{background:#f6f8fa;border:1px solid #d8dee4;border-radius:6px;padding:.6rem 1.2rem;
 margin:1rem 0}
.numstab-report nav h2{font-size:1rem;margin:.2rem 0;border:0;padding:0}
.numstab-report nav ol{margin:.2rem 0;padding-left:1.4rem}
.numstab-report a{color:#0969da}
.numstab-report p{margin:.6rem 0}
.numstab-report .label{font-weight:600;color:#3b434b}
.numstab-report figure{margin:1rem 0;text-align:center;break-inside:avoid}
.numstab-report figure img{max-width:100%;height:auto;border:1px solid #eaeef2;border-radius:4px}
.numstab-report figcaption{font-size:.9rem;color:#57606a;margin-top:.3rem}
.numstab-report table{border-collapse:collapse;margin:1rem 0;font-size:.92rem;
 font-variant-numeric:tabular-nums;display:block;overflow-x:auto;max-width:100%}
.numstab-report caption{caption-side:top;text-align:left;color:#57606a;font-size:.9rem;padding-bottom:.3rem}
.numstab-report th,.numstab-report td{padding:.3rem .7rem;border-bottom:1px solid #eaeef2;text-align:left}
.numstab-report thead th{border-bottom:2px solid #d0d7de;background:#f6f8fa}
.numstab-report .num{text-align:right;white-space:nowrap}
.numstab-report pre{background:#f6f8fa;border-radius:6px;padding:.7rem 1rem;overflow-x:auto;font-size:.88rem}
.numstab-report .verdict{border-left:4px solid;padding:.5rem .8rem;border-radius:4px}
.numstab-report .badge{display:inline-block;font-weight:700;font-size:.8rem;padding:.05rem .5rem;
 border-radius:1rem;margin-right:.5rem;color:#fff}
.numstab-report .verdict-ok{border-color:#1a7f37;background:#dafbe1}
.numstab-report .verdict-warn{border-color:#9a6700;background:#fff8c5}
.numstab-report .verdict-bad{border-color:#cf222e;background:#ffebe9}
.numstab-report .kind-ok{background:#1a7f37}.numstab-report .kind-warn{background:#9a6700}
.numstab-report .kind-bad{background:#cf222e}
.numstab-report td .badge{margin:0}
.numstab-report .math{overflow-x:auto;margin:.8rem 0}
.numstab-report math[display="block"]{display:inline-block;font-size:1.08rem;margin:0 .3rem}
.numstab-report .verdict ul{margin:.2rem 0 .2rem 1.2rem;padding:0}
.numstab-report dl{font-size:.9rem;margin:.5rem 0}.numstab-report dt{font-weight:600;display:inline}
.numstab-report dd{display:inline;margin:0}.numstab-report dd::after{content:"";display:block}
.numstab-report footer{margin-top:3rem;color:#57606a;font-size:.85rem}
"""

# No network: only inline styles and data: images may load (a stray URL fails loudly in the browser).
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _escape(text: object) -> str:
    return _html.escape(str(text), quote=True)


def _require_text(name: str, value: object, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise NumstabTypeError(f"{name} must be a str, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise InvalidArgumentError(f"{name} must be non-empty text, got {value!r}")
    return value


class Section:
    """One section of an :class:`HtmlPage`; get it from :meth:`HtmlPage.section`.

    Every method appends a block and returns the section, so calls chain. All text is escaped.

    Attributes:
        anchor: the section's ``id`` (what the table of contents links to).
        title: the section's heading.

    Examples:
        >>> section = HtmlPage("r").section("xavier", "Xavier initialization")
        >>> section.text("Var[w] = 2 / (n_in + n_out)", label="Theory").verdict("ok", "<stable>").anchor
        'xavier'
    """

    def __init__(self, anchor: str, title: str) -> None:
        self.anchor = anchor
        self.title = title
        self._blocks: list[str] = []

    def text(self, text: str, *, label: str | None = None) -> Section:
        """Add a paragraph (a blank line starts a new one), optionally led by a bold ``label``.

        Args:
            text: the paragraph; escaped, so ``<`` and ``&`` show as typed.
            label: a lead-in such as ``"The chapter"``, ``"Measured"``, ``"Theory"``, ``"Verdict"``.

        Examples:
            >>> HtmlPage("r").section("a", "A").text("x < 1", label="Measured").render()
            '<section id="a"><h2>A</h2><p><span class="label">Measured:</span> x &lt; 1</p></section>'
        """
        _require_text("text", text)
        # the colon is text, not CSS ::after, so it is copied with the paragraph and read out
        lead = ""
        if label is not None:
            lead = f'<span class="label">{_escape(_require_text("label", label).rstrip(":"))}:</span> '
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
        for index, paragraph in enumerate(paragraphs):
            self._blocks.append(f"<p>{lead if index == 0 else ''}{_escape(paragraph)}</p>")
        return self

    def code(self, text: str) -> Section:
        """Add a preformatted block (a command to reproduce the result, a traceback).

        Examples:
            >>> HtmlPage("r").section("a", "A").code("numstab lab mlp").render()
            '<section id="a"><h2>A</h2><pre><code>numstab lab mlp</code></pre></section>'
        """
        self._blocks.append(f"<pre><code>{_escape(_require_text('text', text))}</code></pre>")
        return self

    def math(self, latex: str, *, label: str | None = None) -> Section:
        """Add a displayed formula, written in LaTeX and shown as MathML (no JavaScript, no network).

        Args:
            latex: the formula, LaTeX math mode without ``$``.
            label: a lead-in such as ``"Theory"``, shown before the formula.

        Examples:
            >>> block = HtmlPage("r").section("a", "A").math("x^2", label="Theory").render()
            >>> '<p class="math"><span class="label">Theory:</span> <math' in block
            True
        """
        from numstab.render.mathml import mathml

        lead = _lead(label) if label else ""
        self._blocks.append(
            f'<p class="math">{lead}{mathml(_require_text("latex", latex), display=True)}</p>'
        )
        return self

    def notes(self, items: Sequence[str], *, kind: str, label: str) -> Section:
        """Add a labelled list of sentences in a coloured box (``kind`` as in :meth:`verdict`).

        Examples:
            >>> HtmlPage("r").section("a", "A").notes(["x < 1"], kind="warn", label="Disagreements").render()
            ... # doctest: +ELLIPSIS
            '...<p class="label">Disagreements:</p><ul><li>x &lt; 1</li></ul></div></section>'
        """
        if kind not in VERDICT_LABELS:
            raise UnknownNameError("notes kind", kind, list(VERDICT_LABELS))
        lis = "".join(f"<li>{_escape(_require_text('item', item))}</li>" for item in items)
        head = f'<p class="label">{_escape(_require_text("label", label).rstrip(":"))}:</p>'
        self._blocks.append(f'<div class="verdict verdict-{kind}">{head}<ul>{lis}</ul></div>')
        return self

    def definitions(self, items: Sequence[tuple[str, str]], *, label: str) -> Section:
        """Add a labelled list of terms and what they mean (a table's columns explained).

        Examples:
            >>> HtmlPage("r").section("a", "A").definitions([("bottom Δ", "change")], label="Cols").render()
            ... # doctest: +ELLIPSIS
            '...<dl><dt>bottom Δ</dt> <dd>: change</dd></dl></section>'
        """
        pairs = "".join(
            f"<dt>{_escape(_require_text('term', t))}</dt> <dd>: {_escape(_require_text('meaning', m))}</dd>"
            for t, m in items
        )
        self._blocks.append(
            f'<p class="label">{_escape(_require_text("label", label).rstrip(":"))}:</p><dl>{pairs}</dl>'
        )
        return self

    def figure(self, fig: Any, *, alt: str, caption: str = "") -> Section:
        """Inline a matplotlib Figure as a base64 PNG and close it; ``alt`` text is required.

        The alt text is what a screen reader says and what shows if the image cannot be drawn: say what
        the figure shows and its conclusion ("gradient norm falls from 1 to 1e-30 over 50 sigmoid layers").

        Args:
            fig: a :class:`matplotlib.figure.Figure` (for example from :func:`numstab.render.style.figure`).
            alt: a description of the figure; must be non-empty.
            caption: shown under the figure.

        Raises:
            InvalidArgumentError: ``alt`` is empty.
            NumstabTypeError: ``fig`` is not a matplotlib Figure.

        Examples:
            >>> from numstab.render.style import figure
            >>> fig, ax = figure(width=2, height=1.5)
            >>> _ = ax.plot([0, 1], [0, 1])
            >>> block = HtmlPage("r").section("a", "A").figure(fig, alt="a line").render()
            >>> 'src="data:image/png;base64,' in block, 'alt="a line"' in block
            (True, True)
        """
        _require_text("alt", alt)
        _require_text("caption", caption, allow_empty=True)
        png, (width, height) = _png(fig)
        src = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        img = f'<img src="{src}" alt="{_escape(alt)}" width="{width}" height="{height}">'
        cap = f"<figcaption>{_escape(caption)}</figcaption>" if caption else ""
        self._blocks.append(f"<figure>{img}{cap}</figure>")
        return self

    def table(
        self,
        headers: Sequence[str],
        rows: Iterable[Sequence[Any]],
        *,
        caption: str = "",
        verdict_column: int | None = None,
    ) -> Section:
        """Add a table; numbers are formatted with :func:`numstab.render.terminal.fmt` and right-aligned.

        Args:
            headers: one header per column.
            rows: the rows, each with one cell per header (numbers, strings or None).
            caption: shown above the table.
            verdict_column: index of a column of verdict words to show as coloured badges.

        Raises:
            InvalidArgumentError: a row of the wrong length, or ``verdict_column`` out of range.

        Examples:
            >>> block = HtmlPage("r").section("a", "A").table(["x"], [[1e-9]]).render()
            >>> '<td class="num">1.00e-09</td>' in block
            True
        """
        headers, rows = check_table(headers, rows, verdict_column)
        numeric = numeric_columns(headers, rows)
        pairs = zip(headers, numeric, strict=True)
        head = "".join(f'<th scope="col"{_num_class(num)}>{_escape(h)}</th>' for h, num in pairs)
        body = "".join(
            "<tr>" + "".join(_td(cell, index == verdict_column) for index, cell in enumerate(row)) + "</tr>"
            for row in rows
        )
        cap = f"<caption>{_escape(caption)}</caption>" if caption else ""
        self._blocks.append(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        return self

    def verdict(self, kind: str, message: str) -> Section:
        """Add the verdict: a coloured badge (``"ok"`` green, ``"warn"`` amber, ``"bad"`` red) and a message.

        Args:
            kind: ``"ok"``, ``"warn"`` or ``"bad"``.
            message: what the verdict means for the reader.

        Raises:
            UnknownNameError: ``kind`` is not one of the three.

        Examples:
            >>> HtmlPage("r").section("a", "A").verdict("warn", "marginal").render()  # doctest: +ELLIPSIS
            '...<span class="badge kind-warn">Warning</span>marginal</p></section>'
        """
        if kind not in VERDICT_LABELS:
            raise UnknownNameError("verdict kind", kind, list(VERDICT_LABELS))
        badge = f'<span class="badge kind-{kind}">{VERDICT_LABELS[kind]}</span>'
        text = _escape(_require_text("message", message))
        self._blocks.append(f'<p class="verdict verdict-{kind}">{badge}{text}</p>')
        return self

    def render(self) -> str:
        """Return the section as HTML: a ``<section>`` with its heading and blocks, in the order added.

        Examples:
            >>> HtmlPage("r").section("a", "A & B").render()
            '<section id="a"><h2>A &amp; B</h2></section>'
        """
        return f'<section id="{self.anchor}"><h2>{_escape(self.title)}</h2>{"".join(self._blocks)}</section>'


def _lead(label: str) -> str:
    return f'<span class="label">{_escape(_require_text("label", label).rstrip(":"))}:</span> '


def _num_class(numeric: bool) -> str:
    return ' class="num"' if numeric else ""


def _td(cell: Any, in_verdict_column: bool) -> str:
    if is_number(cell):
        return f'<td class="num">{fmt(cell)}</td>'
    text = "" if cell is None else str(cell)
    kind = verdict_kind(text) if in_verdict_column else None
    if kind:
        return f'<td><span class="badge kind-{kind}">{_escape(text)}</span></td>'
    return f"<td>{_escape(text)}</td>"


def _png(fig: Any) -> tuple[bytes, tuple[int, int]]:
    """Render ``fig`` to PNG bytes, close it, and return its on-screen size in CSS pixels."""
    from matplotlib.figure import Figure

    from numstab.render.style import RC

    if not isinstance(fig, Figure):
        raise NumstabTypeError(
            f"fig must be a matplotlib.figure.Figure, got {type(fig).__name__}: build one with "
            "numstab.render.style.figure()"
        )
    width_in, height_in = fig.get_size_inches()
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=RC["savefig.dpi"], metadata={"Software": None})
    finally:
        _close(fig)
    return buffer.getvalue(), (round(width_in * _CSS_PX_PER_INCH), round(height_in * _CSS_PX_PER_INCH))


def _close(fig: Any) -> None:
    # A figure made with the object API is freed with its last reference; one made through pyplot is
    # also held by pyplot's figure manager, and only pyplot can let go of it.
    if getattr(fig.canvas, "manager", None) is not None:
        import matplotlib.pyplot as plt

        plt.close(fig)


class HtmlPage:
    """A self-contained HTML report: title, table of contents, sections; one file with no network needs.

    Attributes:
        title: the report's title (``<h1>`` and the window title).
        subtitle: a line under the title (may be empty).
        lang: the page's language, "en" or "zh" (the ``lang`` attribute, the contents' heading, the footer).
        sections: the sections in order.

    Examples:
        >>> report = HtmlPage("numstab tour")
        >>> _ = report.section("matrix-products", "Products of random matrices").text("They explode.")
        >>> [s.anchor for s in report.sections]
        ['matrix-products']
    """

    def __init__(self, title: str, *, subtitle: str = "", lang: str = "en") -> None:
        self.title = _require_text("title", title)
        self.subtitle = _require_text("subtitle", subtitle, allow_empty=True)
        self.lang = check_lang(lang)
        self.sections: list[Section] = []

    def section(self, anchor: str, title: str) -> Section:
        """Add a section and its table-of-contents entry; returns the section to fill.

        Args:
            anchor: the section's id: lowercase letters, digits and hyphens, starting with a letter or digit,
                unique within the report (``"top"`` and ``"contents"`` are taken by the report itself).
            title: the section's heading.

        Raises:
            InvalidArgumentError: a malformed or repeated anchor.

        Examples:
            >>> HtmlPage("r").section("fp16-limits", "Float16 limits").title
            'Float16 limits'
        """
        _require_text("title", title)
        if not isinstance(anchor, str) or not _ANCHOR.match(anchor):
            raise InvalidArgumentError(
                f"anchor must match [a-z0-9][a-z0-9-]* (lowercase letters, digits, hyphens), got {anchor!r}: "
                "use e.g. 'matrix-products'"
            )
        taken = _RESERVED_ANCHORS | {s.anchor for s in self.sections}
        if anchor in taken:
            raise InvalidArgumentError(
                f"anchor {anchor!r} is already used in this report: give each section its own anchor"
            )
        section = Section(anchor, title)
        self.sections.append(section)
        return section

    def render(self, *, fragment: bool = False) -> str:
        """Return the report as HTML: a whole document, or with ``fragment=True`` a ``<div>`` for notebooks.

        The fragment has no ``<html>``/``<head>`` and no table of contents; its ``<style>`` is scoped to
        the report's ``<div>``, so it does not restyle the notebook around it. A fragment of one section
        (one result in a notebook) shows that section's heading only: no ``<h1>`` repeating it.

        Examples:
            >>> HtmlPage("r").render(fragment=True).startswith('<div class="numstab-report">')
            True
        """
        header = f'<header id="top"><h1>{_escape(self.title)}</h1>{self._subtitle()}</header>'
        body = "".join(section.render() for section in self.sections)
        if fragment:
            if len(self.sections) == 1:  # the section's <h2> is the result's title; keep the subtitle
                header = self._subtitle()
            return f'<div class="numstab-report"><style>{_CSS}</style>{header}{body}</div>'
        main = f'<main class="numstab-report">{header}{self._toc()}{body}{_footer(self.lang)}</main>'
        return _document(self.title, main, self.lang)

    def _repr_html_(self) -> str:
        return self.render(fragment=True)

    def _subtitle(self) -> str:
        return f'<p class="subtitle">{_escape(self.subtitle)}</p>' if self.subtitle else ""

    def _toc(self) -> str:
        if not self.sections:
            return ""
        items = "".join(f'<li><a href="#{s.anchor}">{_escape(s.title)}</a></li>' for s in self.sections)
        contents = _escape(tr("html.contents", self.lang))
        return f'<nav id="contents" aria-label="{contents}"><h2>{contents}</h2><ol>{items}</ol></nav>'

    def write(self, path: str | os.PathLike) -> pathlib.Path:
        """Write the whole document to ``path`` (UTF-8), atomically: a temporary file, then a rename.

        Raises:
            InvalidArgumentError: the folder is missing or not writable, or ``path`` holds a file that
                numstab did not write (the message names the path).

        Examples:
            >>> import tempfile, pathlib
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     HtmlPage("r").write(pathlib.Path(tmp) / "report.html").name
            'report.html'
        """
        return atomic_write_text(check_output_file("path", path), self.render())


def _footer(lang: str = "en") -> str:
    return f"<footer>{_escape(tr('html.footer', lang, version=__version__))}</footer>"


def _document(title: str, body: str, lang: str = "en") -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="{html_lang(lang)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="{GENERATOR} {__version__}">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<link rel="icon" href="data:,">'
        f"<title>{_escape(title)}</title><style>{_CSS}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def __getattr__(name: str) -> Any:
    if name == "HtmlReport":  # the page's old name: "report" now means numstab.Report only
        import warnings

        warnings.warn("numstab.render.html.HtmlReport is now HtmlPage", FutureWarning, stacklevel=2)
        return HtmlPage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
