"""`numstab explore` in a real browser: Debian's chromium driven by Playwright (as tests/test_browser.py
does) loads the app, moves the depth and sigma_w sliders with the keyboard, and the plotted data change
to exactly what numstab.lab.explorer.explore returns for the settings the page then shows; no console
error, and no request leaves 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

pytest.importorskip("bokeh", reason="bokeh is the explore extra (in dev)")

from test_browser import _require_chromium, browser_context  # noqa: E402,F401  (a fixture)
from test_explore_cli import start_explore, stop  # noqa: E402

from numstab.lab.explorer import ExplorerSettings, explore  # noqa: E402
from numstab.render.explorer import plotted  # noqa: E402

LOAD_MS = 120_000  # first page: BokehJS, the first networks drawn, on a busy machine
COLUMNS = ("layer", "center", "low", "high", "theory")

_SETTINGS = """() => {
  const doc = Bokeh.documents[0], m = name => doc.get_model_by_name(name);
  return {activation: m("activation").value, init: m("init").value, weight_std: m("weight_std").value,
          bias_std: m("bias_std").value, depth: m("depth").value, width: Number(m("width").value),
          residual: m("residual").active, layer_norm: m("layer_norm").active, fmt: m("fmt").value};
}"""
_DATA = """() => {
  const doc = Bokeh.documents[0], out = {};
  for (const pass of ["forward", "backward"]) {
    const data = doc.get_model_by_name(pass).data;
    out[pass] = Object.fromEntries(Object.keys(data).map(k => [k, Array.from(data[k])]));
  }
  return out;
}"""
# Every change reaches the page as its own message; the app changes "revision" last in each refresh.
_REVISION = """() => {
  const doc = window.Bokeh && Bokeh.documents[0];
  return doc ? Number(doc.get_model_by_name("revision").text) : -1;
}"""
_PAST = f"before => ({_REVISION})() > before"


@pytest.fixture(scope="module")
def app_url() -> Iterator[str]:
    _require_chromium()
    proc, url = start_explore()
    try:
        yield url
    finally:
        code, err = stop(proc)
        assert code in (0, 130) and "Traceback" not in err, err


def _expected(settings: dict) -> dict:
    data = explore(ExplorerSettings(**settings))
    return {p: {k: (v if k == "layer" else plotted(v)) for k, v in data.curves(p).items()}
            for p in ("forward", "backward")}


def _assert_shows(page: object) -> tuple[dict, dict]:
    """The page's curves equal explore() for the page's settings; return the settings and the curves."""
    settings = page.evaluate(_SETTINGS)
    shown, expected = page.evaluate(_DATA), _expected(settings)
    for direction in ("forward", "backward"):
        for name in COLUMNS:
            got = np.asarray(shown[direction][name], dtype=float)
            # two processes, one thread each: float32 matmuls are bit-reproducible; 1e-9 for the transfer
            np.testing.assert_allclose(got, expected[direction][name], rtol=1e-9, equal_nan=True,
                                       err_msg=f"{direction} {name} at {settings}")
    return settings, shown


def _watch(page: object, app_url: str) -> list[str]:
    """Collect console errors, page errors and any request or websocket that is not the app's own."""
    problems: list[str] = []
    own_socket = app_url.replace("http://", "ws://")

    def console(message: object) -> None:
        if message.type == "error":
            problems.append(f"console error: {message.text}")

    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("request", lambda r: None if r.url.startswith(app_url) else problems.append(f"request {r.url}"))
    page.on("websocket", lambda w: None if w.url.startswith(own_socket) else problems.append(f"ws {w.url}"))
    return problems


def test_sliders_move_the_real_network_and_theory(browser_context: object, app_url: str) -> None:  # noqa: F811
    page = browser_context.new_page()
    problems = _watch(page, app_url)
    try:
        page.goto(app_url)
        page.wait_for_function(_PAST, arg=0, timeout=LOAD_MS)
        before, shown = _assert_shows(page)

        revision = page.evaluate(_REVISION)
        page.locator(".ns-depth .noUi-handle").press("ArrowRight")  # depth 50 -> 51
        page.wait_for_function(_PAST, arg=revision, timeout=LOAD_MS)
        after_depth, shown_depth = _assert_shows(page)
        assert (before["depth"], after_depth["depth"]) == (50, 51)
        assert shown_depth["backward"]["center"][:51] != shown["backward"]["center"]

        revision = page.evaluate(_REVISION)
        page.locator(".ns-weight-std .noUi-handle").press("ArrowRight")  # sigma_w 1.0 -> 1.05
        page.wait_for_function(_PAST, arg=revision, timeout=LOAD_MS)
        after_sigma, shown_sigma = _assert_shows(page)
        assert (after_depth["weight_std"], after_sigma["weight_std"]) == (1.0, pytest.approx(1.05))
        assert shown_sigma["forward"]["center"] != shown_depth["forward"]["center"]
        point = page.evaluate("() => Bokeh.documents[0].get_model_by_name('point').data.weight_std[0]")
        assert point == pytest.approx(1.05)
    finally:
        page.close()
    assert problems == []
