"""HTML reports: self-contained, escaped, a table of contents that matches the sections, alt text enforced."""

from __future__ import annotations

import base64
import html.parser
import pathlib
import re
import struct

import pytest

from numstab.errors import InvalidArgumentError, NumstabTypeError, UnknownNameError
from numstab.render.html import HtmlPage
from numstab.render.style import figure

VOID = {"meta", "link", "img", "br", "hr", "input"}
NASTY = '<b>x</b> & "quoted" \'single\''


class Page(html.parser.HTMLParser):
    """Collects tags, attributes, ids, text and checks that every element is closed in order."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.feed(text)
        self.close()
        self.errors += [f"unclosed <{tag}>" for tag in self.stack]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(f"unexpected </{tag}>")

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", png[16:24])


def _report() -> HtmlPage:
    report = HtmlPage("Gradients through depth", subtitle="D2L section 5.4")
    fig, ax = figure()
    ax.plot([0, 1, 2], [1.0, 0.25, 0.0625])
    (
        report.section("vanishing", "Vanishing gradients")
        .text("sigmoid'(x) <= 1/4.", label="The chapter")
        .figure(fig, alt="gradient norm shrinks fourfold per layer", caption="Figure 1")
        .table(["layer", "norm", "verdict"], [[1, 0.25, "healthy"], [50, 7.9e-31, "vanishing"]],
               verdict_column=2)
        .verdict("bad", "gradients vanish")
    )
    report.section("exploding", "Exploding products").text("They grow.").verdict("ok", "as predicted")
    return report


def test_document_is_well_formed_and_self_contained() -> None:
    text = _report().render()
    page = Page(text)
    assert text.startswith("<!DOCTYPE html>\n<html lang=\"en\">")
    assert page.errors == []
    assert not page.all("script") and not page.all("iframe")
    for tag, attrs in page.tags:
        for name in ("src", "href"):
            value = attrs.get(name)
            assert value is None or value.startswith(("data:", "#")), f"<{tag} {name}={value[:40]!r}>"
    csp = [a for a in page.all("meta") if a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and csp[0]["content"].startswith("default-src 'none'")
    assert [a["charset"] for a in page.all("meta") if "charset" in a] == ["utf-8"]


def test_table_of_contents_links_every_section_in_order() -> None:
    page = Page(_report().render())
    links = [a["href"] for a in page.all("a")]
    ids = [a["id"] for a in page.all("section")]
    assert links == ["#vanishing", "#exploding"] and ids == ["vanishing", "exploding"]
    all_ids = [attrs["id"] for _, attrs in page.tags if "id" in attrs]
    assert len(all_ids) == len(set(all_ids))


def test_every_piece_of_text_is_escaped() -> None:
    report = HtmlPage(NASTY, subtitle=NASTY)
    fig, _ = figure(width=2, height=1)
    (
        report.section("a", NASTY)
        .text(NASTY, label=NASTY)
        .figure(fig, alt=NASTY, caption=NASTY)
        .table([NASTY], [[NASTY]], caption=NASTY)
        .code(NASTY)
        .verdict("warn", NASTY)
    )
    page = Page(report.render())
    assert "b" not in {tag for tag, _ in page.tags}  # the markup in the text never became markup
    assert page.all("img")[0]["alt"] == NASTY
    # title, h1, subtitle, toc link, h2, label, paragraph, caption, th, td, table caption, code, verdict
    assert sum(chunk.count(NASTY) for chunk in page.text) == 13
    assert page.errors == []


def test_figure_is_inlined_as_png_and_alt_is_required() -> None:
    fig, ax = figure(width=6.4, height=4.0)
    ax.plot([0, 1], [0, 1])
    page = Page(HtmlPage("r").section("a", "A").figure(fig, alt="a rising line").render())
    img = page.all("img")[0]
    assert img["src"].startswith("data:image/png;base64,")
    png = base64.b64decode(img["src"].split(",", 1)[1], validate=True)
    assert _png_size(png) == (960, 600)  # 6.4 x 4.0 inches at 150 dpi
    assert (img["width"], img["height"]) == ("717", "448")  # shown at 112 CSS px per inch: 6.4*112, 4*112
    section = HtmlPage("r").section("a", "A")
    fig, _ = figure()
    with pytest.raises(TypeError, match="alt"):
        section.figure(fig)  # type: ignore[call-arg]
    with pytest.raises(InvalidArgumentError, match="alt must be non-empty text"):
        section.figure(fig, alt="   ")
    with pytest.raises(NumstabTypeError, match="fig must be a matplotlib.figure.Figure, got str"):
        section.figure("plot.png", alt="x")


def test_figure_made_with_pyplot_is_closed() -> None:
    import matplotlib.pyplot as plt

    fig = plt.figure()
    number = fig.number
    HtmlPage("r").section("a", "A").figure(fig, alt="empty axes")
    assert number not in plt.get_fignums()


@pytest.mark.parametrize(
    ("anchor", "message"),
    [
        ("Vanishing", r"anchor must match \[a-z0-9\]\[a-z0-9-\]\*"),
        ("-lead", "anchor must match"),
        ("two words", "anchor must match"),
        ("", "anchor must match"),
        ("top", "anchor 'top' is already used"),
        ("contents", "anchor 'contents' is already used"),
    ],
)
def test_bad_anchors(anchor: str, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        HtmlPage("r").section(anchor, "A")


def test_duplicate_anchor() -> None:
    report = HtmlPage("r")
    report.section("fp16", "A")
    with pytest.raises(InvalidArgumentError, match="anchor 'fp16' is already used in this report"):
        report.section("fp16", "B")
    assert [s.anchor for s in report.sections] == ["fp16"]


def test_table_numbers_alignment_and_verdict_badges() -> None:
    rows = [["fc1", 0.5, 1e-30, "healthy"], ["fc2", float("inf"), None, "exploding"]]
    out = HtmlPage("r").section("a", "A").table(["layer", "std", "grad", "verdict"], rows, verdict_column=3)
    page = Page(out.render())
    cells = re.findall(r"<td[^>]*>.*?</td>", out.render())
    assert cells == [
        "<td>fc1</td>", '<td class="num">0.500</td>', '<td class="num">1.00e-30</td>',
        '<td><span class="badge kind-ok">healthy</span></td>',
        "<td>fc2</td>", '<td class="num">inf</td>', "<td></td>",
        '<td><span class="badge kind-bad">exploding</span></td>',
    ]
    assert [a.get("class") for a in page.all("th")] == [None, "num", "num", None]
    with pytest.raises(InvalidArgumentError, match=r"rows\[0\] has 1 cells but there are 2 headers"):
        HtmlPage("r").section("a", "A").table(["a", "b"], [[1]])


def test_verdict_kinds() -> None:
    section = HtmlPage("r").section("a", "A")
    for kind, badge in (("ok", "OK"), ("warn", "Warning"), ("bad", "Problem")):
        assert f'<p class="verdict verdict-{kind}"><span class="badge kind-{kind}">{badge}</span>' in (
            section.verdict(kind, "m").render()
        )
    with pytest.raises(UnknownNameError, match="unknown verdict kind 'good': use one of ok, warn, bad"):
        section.verdict("good", "m")


def test_text_paragraphs_and_label() -> None:
    out = HtmlPage("r").section("a", "A").text("first\n\n  second  \n\n\n", label="Measured").render()
    assert out.endswith('<p><span class="label">Measured:</span> first</p><p>second</p></section>')
    again = HtmlPage("r").section("a", "A").text("x", label="Theory:").render()
    assert '<span class="label">Theory:</span> x' in again  # a trailing colon is not doubled
    with pytest.raises(InvalidArgumentError, match="text must be non-empty"):
        HtmlPage("r").section("a", "A").text(" ")
    with pytest.raises(NumstabTypeError, match="text must be a str, got float"):
        HtmlPage("r").section("a", "A").text(1.5)  # type: ignore[arg-type]


def test_fragment_for_notebooks_is_scoped() -> None:
    report = _report()
    fragment = report.render(fragment=True)
    page = Page(fragment)
    assert page.errors == []
    assert fragment.startswith('<div class="numstab-report"><style>')
    assert not ({"html", "head", "body", "nav", "title", "meta"} & {tag for tag, _ in page.tags})
    css = re.search(r"<style>(.*?)</style>", fragment, re.S).group(1)
    selectors = [s.strip() for rule in css.split("}") if "{" in rule for s in rule.split("{")[0].split(",")]
    # every rule is scoped, so the fragment cannot restyle the notebook around it
    assert selectors and all(s.startswith(".numstab-report") for s in selectors)
    assert report._repr_html_() == fragment


def test_empty_report_has_no_contents_box() -> None:
    page = Page(HtmlPage("Nothing yet").render())
    assert not page.all("nav") and page.errors == []


def test_title_is_required() -> None:
    with pytest.raises(InvalidArgumentError, match="title must be non-empty text"):
        HtmlPage("")


def test_write_is_the_rendered_document(tmp_path: pathlib.Path) -> None:
    report = _report()
    path = report.write(tmp_path / "report.html")
    assert path == tmp_path / "report.html"
    assert path.read_text(encoding="utf-8") == report.render()
    with pytest.raises(InvalidArgumentError, match="cannot write .*no-such-folder"):
        report.write(tmp_path / "no-such-folder" / "report.html")
