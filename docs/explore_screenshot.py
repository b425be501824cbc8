"""Take the README's screenshot of `numstab explore`: docs/explore.png.

Starts `numstab explore --no-browser`, opens it in Debian's chromium through Playwright, sets the
controls to the chapter's first lesson (sigmoid, normal init with sigma_w = 1, depth 50, float16), waits
for that refresh to arrive, and saves the page as a 256-colour PNG (small enough for the repository).

    OMP_NUM_THREADS=1 .venv/bin/python docs/explore_screenshot.py
"""

from __future__ import annotations

import io
import os
import pathlib
import re
import signal
import subprocess
import sys
import tempfile

from PIL import Image
from playwright.sync_api import sync_playwright

OUT = pathlib.Path(__file__).with_name("explore.png")
CHROMIUM = os.environ.get("NUMSTAB_CHROMIUM", "/usr/bin/chromium")
SETTINGS = {"activation": "sigmoid", "init": "normal", "weight_std": 1.0, "depth": 50, "fmt": "float16"}
_SET = """async settings => {
  const doc = Bokeh.documents[0], revision = doc.get_model_by_name("revision");
  for (const [name, value] of Object.entries(settings)) {
    const start = Number(revision.text), model = doc.get_model_by_name(name);
    if (model.value === value) continue;
    model.value = value;
    while (Number(revision.text) === start) await new Promise(resolve => setTimeout(resolve, 10));
  }
}"""


def main() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "numstab", "explore", "--no-browser"],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    url = re.search(r"http://\S+/", proc.stdout.readline()).group(0)
    try:
        with tempfile.TemporaryDirectory() as profile, sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"],
                viewport={"width": 1240, "height": 760},
            )
            page = context.new_page()
            page.goto(url)
            page.wait_for_function("() => window.Bokeh && Bokeh.documents.length && "
                                   "Number(Bokeh.documents[0].get_model_by_name('revision').text) > 0",
                                   timeout=120_000)
            page.evaluate(_SET, SETTINGS)
            page.wait_for_timeout(500)  # let the canvases paint
            png = page.screenshot()
            context.close()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256).save(OUT, optimize=True)
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
