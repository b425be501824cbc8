"""numstab.render.precision: the terminal table (golden string), the heat map, the HTML sections, the JSON."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from numstab import jsonio
from numstab.precision import audit
from numstab.render.html import HtmlPage
from numstab.render.precision import add_sections, heatmap, html_audit, rich_audit
from numstab.render.terminal import make_console


def small_weights(recipes: list[str]):
    """Two Linear layers with weights of std 0.003: an unscaled E4M3 cast flushes a quarter of them."""
    g = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 4))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.003)
    return audit(net, torch.randn(16, 32, generator=g), recipes=recipes)


@pytest.fixture(scope="module")
def small_weights_audit():
    return small_weights(["bfloat16", "e4m3_cast", "mxfp8_e4m3"])


def render(renderable, width: int = 90) -> str:
    console = make_console(file=io.StringIO(), width=width)
    console.print(renderable)
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines())


GOLDEN = """\
2 GEMM-like layers, 3 recipes; keep in high precision: none
low-precision audit
 layer   kind     bf16   e4m3        mx e4m3   keep
────────────────────────────────────────────────────
 0       Linear   ok     underflow   ok        no
 2       Linear   ok     underflow   ok        no"""


def test_terminal_table_golden(small_weights_audit):
    assert render(rich_audit(small_weights_audit)) == GOLDEN


def test_a_kept_layer_lists_its_worst_problem():
    text = render(rich_audit(small_weights(["bfloat16", "e4m3_cast"])))
    assert "keep in high precision: 0, 2" in text
    assert "e4m3_cast: weight of 2: underflow 30.5% > 5.08%" in text  # the weight, not the 5.9% input


def test_heatmap_has_a_row_per_layer_and_a_column_per_recipe(small_weights_audit):
    fig = heatmap(small_weights_audit)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0", "2"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["bf16", "e4m3", "mx e4m3"]
    assert sorted(t.get_text() for t in ax.texts) == ["×", "×"]  # e4m3 is not tolerated by either layer
    assert ax.images[0].get_array().shape == (2, 3)


def test_html_sections_and_json_round_trip(small_weights_audit, tmp_path):
    html = html_audit(small_weights_audit).render()
    for anchor in ('id="precision-audit"', 'id="precision-audit-limits"', 'id="precision-audit-records"'):
        assert anchor in html
    assert "data:image/png;base64," in html and "underflow 25.1% &gt; 5.08%" in html
    page = add_sections(HtmlPage("check"), small_weights_audit)
    assert [s.anchor for s in page.sections] == ["precision-audit", "precision-audit-limits",
                                                  "precision-audit-records"]
    path = tmp_path / "audit.json"
    jsonio.dump("precision-audit", small_weights_audit.to_dict(), path)
    doc = jsonio.load(path, kind="precision-audit")
    assert doc["keep_high_precision"] == [] and len(doc["records"]) == 2 * 3 * 3
    first = doc["records"][0]
    assert set(first) >= {"layer", "tensor", "recipe", "overflow", "underflow", "subnormal", "rel_mse",
                          "headroom_bits"}
    assert doc["limits"]["e4m3_cast"]["underflow"] == 0.05080


def test_the_audit_shows_itself_through_the_registry(small_weights_audit, tmp_path):
    assert str(small_weights_audit).splitlines()[0] == GOLDEN.splitlines()[0]
    assert repr(small_weights_audit).startswith("PrecisionAudit(records=(18 items), layers=(2 items)")
    assert 'id="precision-audit"' in small_weights_audit._repr_html_()
    doc = jsonio.loads(small_weights_audit.to_json(tmp_path / "a.json"), kind="precision-audit")
    assert doc == jsonio.load(tmp_path / "a.json", kind="precision-audit")
    assert small_weights_audit.to_html(tmp_path / "a.html").read_text().lower().startswith("<!doctype html>")
