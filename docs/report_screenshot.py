"""Take the README's screenshot of the tour's report: docs/report.png.

Renders the 50-layer MLP section at the lecture's settings (ReLU and 4 sigmoid - 2: where the lecture and
the measurement part) as the tour lays it out, opens it in Debian's chromium through Playwright, and keeps
the page down to the end of the boxed notes as a 64-colour PNG (small enough for the repository).

    OMP_NUM_THREADS=1 .venv/bin/python docs/report_screenshot.py
"""

from __future__ import annotations

import io
import os
import pathlib
import tempfile

from PIL import Image
from playwright.sync_api import sync_playwright

from numstab import lab
from numstab.render import lab as lab_render
from numstab.render.html import HtmlPage

OUT = pathlib.Path(__file__).with_name("report.png")
CHROMIUM = os.environ.get("NUMSTAB_CHROMIUM", "/usr/bin/chromium")


def main() -> None:
    page = HtmlPage("numstab tour", subtitle="D2L Numerical Stability, at the chapter's settings")
    lab_render.add_section(page, lab.mlp_gradients(["relu", "scaled_sigmoid"], xavier_uniform=False))
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        path = page.write(pathlib.Path(tmp) / "report.html")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        view = browser.new_page(viewport={"width": 900, "height": 1300})
        view.goto(path.as_uri())
        bottom = view.evaluate("document.querySelector('.verdict').getBoundingClientRect().bottom + scrollY")
        png = view.screenshot(full_page=True)
        browser.close()
    image = Image.open(io.BytesIO(png)).convert("RGB")
    image.crop((0, 0, image.width, int(bottom) + 12)).quantize(colors=64).save(OUT, optimize=True)
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
