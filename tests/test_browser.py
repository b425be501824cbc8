"""The HTML reports in a real browser: Debian's chromium, headless, pages opened from disk (file://).

For each report: every <img> has loaded (naturalWidth > 0) and has alt text, the page logs no console
error and requests nothing from the network, every table-of-contents link lands on an existing anchor,
and a full-page screenshot is not blank. The browser is Debian's ``/usr/bin/chromium`` driven by
Playwright for Python; Playwright's own browser download is never used. Without chromium the tests
are skipped with the reason, except under CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import io
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator

import numpy as np
import pytest

CHROMIUM = os.environ.get("NUMSTAB_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
BLANK_STD = 8.0  # grey levels (0-255): a page with text and figures is far above; a blank one is ~0


def _require_chromium() -> None:
    if pathlib.Path(CHROMIUM).exists() or shutil.which(CHROMIUM):
        return
    message = f"chromium not found at {CHROMIUM}: install Debian's chromium (apt-get install chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser_context() -> Iterator[object]:
    """A headless chromium with a fresh user-data-dir, shared by this module's tests."""
    _require_chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a dev dependency")
    with tempfile.TemporaryDirectory() as profile, sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=ARGS,
            viewport={"width": 1000, "height": 800},
        )
        try:
            yield context
        finally:
            context.close()


_IMAGES = (
    "els => els.map(e => ({src: e.src.slice(0, 40), done: e.complete, width: e.naturalWidth, alt: e.alt}))"
)
_LANDS = """href => {
  const target = document.getElementById(decodeURIComponent(href.slice(1)));
  if (!target) return "no element with that id";
  const top = target.getBoundingClientRect().top;
  const bottom = document.documentElement.scrollHeight - window.innerHeight;
  if (location.hash !== href) return "location.hash is " + location.hash;
  // at the top of the viewport, unless the page ends first
  if (Math.abs(top) > 2 && Math.abs(window.scrollY - bottom) > 2) return "not scrolled to (top " + top + ")";
  return "";
}"""


def _screenshot_std(png: bytes) -> float:
    from matplotlib.image import imread

    pixels = imread(io.BytesIO(png), format="png")  # floats in [0, 1]
    return float(np.std(pixels[..., :3] * 255.0))


_MATH = "els => els.map(e => { const r = e.getBoundingClientRect(); return [r.width, r.height]; })"


def inspect_page(context: object, path: pathlib.Path, *, min_images: int = 1, min_math: int = 0) -> list[str]:
    """Open ``path`` from disk and return every problem found (an empty list: the page is fine).

    ``min_math``: the page must hold at least that many MathML ``<math>`` elements, each laid out by the
    browser with a non-zero width and height (a browser without MathML gives them no box).
    """
    page = context.new_page()
    problems: list[str] = []

    def on_console(message: object) -> None:
        if message.type == "error":
            problems.append(f"console error: {message.text}")

    def on_request(request: object) -> None:
        if not request.url.startswith(("file:", "data:")):
            problems.append(f"network request: {request.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("request", on_request)
    try:
        page.goto(path.resolve().as_uri(), wait_until="load")
        images = page.eval_on_selector_all("img", _IMAGES)
        if len(images) < min_images:
            problems.append(f"{len(images)} images, expected at least {min_images}")
        problems += [f"image not loaded: {i['src']}" for i in images if not (i["done"] and i["width"] > 0)]
        problems += [f"image without alt text: {i['src']}" for i in images if not i["alt"].strip()]
        boxes = page.eval_on_selector_all("math", _MATH)
        if len(boxes) < min_math:
            problems.append(f"{len(boxes)} MathML formulas, expected at least {min_math}")
        problems += [f"MathML formula {i} has no size: {box}" for i, box in enumerate(boxes) if min(box) <= 0]
        links = page.eval_on_selector_all("nav a", "els => els.map(e => e.getAttribute('href'))")
        if not links:
            problems.append("no table of contents")
        for href in links:
            if not (href or "").startswith("#"):
                problems.append(f"table-of-contents link {href!r} leaves the page")
                continue
            page.click(f'nav a[href="{href}"]')
            landed = page.evaluate(_LANDS, href)
            if landed:
                problems.append(f"table-of-contents link {href}: {landed}")
        page.evaluate("window.scrollTo(0, 0)")
        std = _screenshot_std(page.screenshot(full_page=True))
        if std < BLANK_STD:
            problems.append(f"screenshot looks blank (pixel std {std:.2f} < {BLANK_STD})")
    finally:
        page.close()
    return problems


def test_report_built_with_the_api(browser_context: object, tmp_path: pathlib.Path) -> None:
    from numstab.render.html import HtmlPage
    from numstab.render.style import compare, figure, label, log_axis, mark_format_limits

    report = HtmlPage("Gradients through depth", subtitle="built in the test")
    for anchor, rate in (("sigmoid", 0.25), ("tanh", 0.9), ("relu", 1.0), ("scaled", 1.3)):
        fig, ax = figure()
        depth = np.arange(30)
        compare(ax, depth, rate**depth * 1.1, rate**depth, name=anchor)
        log_axis(ax)
        mark_format_limits(ax)
        label(ax, x="layer", y="gradient norm")
        (
            report.section(anchor, f"{anchor}: x{rate} per layer")
            .text("What the chapter says. " * 30, label="The chapter")
            .figure(fig, alt=f"gradient norm times {rate} per layer")
            .table(["layer", "norm"], [[d, rate**d] for d in (1, 10, 29)])
            .verdict("ok" if rate == 1.0 else "bad", "verdict")
        )
    assert inspect_page(browser_context, report.write(tmp_path / "report.html"), min_images=4) == []


def test_the_checker_sees_broken_pages(browser_context: object, tmp_path: pathlib.Path) -> None:
    # Without this, an inspect_page that never finds anything would pass every report.
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:\"></head>"
        "<body><nav><a href='#missing'>gone</a></nav>"
        "<img src='https://example.invalid/x.png' alt=''></body></html>"
    )
    problems = inspect_page(browser_context, page)
    assert any(p.startswith("image not loaded") for p in problems)
    assert any(p.startswith("image without alt text") for p in problems)
    assert any(p.startswith("console error") for p in problems)  # the CSP refusal is logged
    assert "table-of-contents link #missing: no element with that id" in problems
    assert any(p.startswith("screenshot looks blank") for p in problems)
    assert "0 MathML formulas, expected at least 1" in inspect_page(browser_context, page, min_math=1)
    hidden = tmp_path / "hidden.html"
    hidden.write_text("<!DOCTYPE html><html><body><math style='display:none'><mi>x</mi></math></body></html>")
    assert "MathML formula 0 has no size: [0, 0]" in inspect_page(browser_context, hidden, min_images=0)


def test_check_report(browser_context: object, tmp_path: pathlib.Path) -> None:
    import torch

    import numstab

    generator = torch.Generator().manual_seed(0)
    layers: list[torch.nn.Module] = []
    for _ in range(8):
        layers += [torch.nn.Linear(16, 16), torch.nn.Sigmoid()]
    model = torch.nn.Sequential(*layers)
    inputs = torch.randn(32, 16, generator=generator)
    report = numstab.diagnose(model, inputs, loss_fn=lambda out: out.pow(2).mean())
    path = report.to_html(tmp_path / "check.html")
    assert inspect_page(browser_context, pathlib.Path(path), min_images=0) == []


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_tour_report(browser_context: object, tmp_path: pathlib.Path, lang: str) -> None:
    from numstab import jsonio

    out = tmp_path / "tour"
    result = subprocess.run(
        [sys.executable, "-m", "numstab", "tour", "--quick", "--lang", lang, "--out", str(out)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    data = jsonio.load(out / "report.json", kind="tour")  # the schema document names its top-level keys
    doc = (pathlib.Path(__file__).parents[1] / "docs" / "report-schema.md").read_text(encoding="utf-8")
    assert [key for key in [*data, *data["steps"]] if f"`{key}`" not in doc] == []
    pages = sorted(out.glob("*.html"))
    assert pages, f"no HTML file in {out}: {sorted(p.name for p in out.iterdir())}"
    for page in pages:
        assert inspect_page(browser_context, page, min_images=1, min_math=7) == [], page.name
    html = (out / "index.html").read_text(encoding="utf-8")
    if lang == "zh":  # the report and the terminal in Chinese, quoting the Chinese edition
        assert '<html lang="zh-CN">' in html and "请注意，虽然迷你批次随机梯度下降不会破坏这种对称性" in html
        assert "报告用时" in result.stdout and "一致？" in result.stdout  # the terminal's short header
