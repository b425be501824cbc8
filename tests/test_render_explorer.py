"""numstab.render.explorer: the Bokeh document shows exactly what numstab.lab.explorer computed."""

from __future__ import annotations

import socket

import numpy as np
import pytest

pytest.importorskip("bokeh", reason="bokeh is the explore extra (in dev)")

from bokeh.document import Document  # noqa: E402

from numstab import precision  # noqa: E402
from numstab.errors import InvalidArgumentError  # noqa: E402
from numstab.lab.explorer import ExplorerSettings, explore  # noqa: E402
from numstab.render import explorer as app  # noqa: E402


def _document(start: ExplorerSettings) -> Document:
    doc = Document()
    app.build_document(doc, start)
    return doc


def test_sources_hold_the_computed_curves_masked_for_a_log_axis() -> None:
    start = ExplorerSettings(activation="relu", init="standard_normal", depth=30, width=64, fmt="float16")
    doc = _document(start)
    data = explore(start)
    for direction in ("forward", "backward"):
        shown = doc.get_model_by_name(direction).data
        for name, values in data.curves(direction).items():
            expected = values if name == "layer" else app.plotted(values)
            np.testing.assert_array_equal(np.asarray(shown[name], dtype=float), expected)
    assert doc.get_model_by_name("verdict").text == data.verdict
    assert doc.get_model_by_name("weight_std").disabled  # sigma_w belongs to the "normal" init only
    assert np.isnan(np.asarray(doc.get_model_by_name("forward").data["theory"])).sum() == 0


def test_theory_column_is_empty_and_the_note_says_why() -> None:
    doc = _document(ExplorerSettings(residual=True, depth=5, width=16))
    assert np.isnan(np.asarray(doc.get_model_by_name("forward").data["theory"], dtype=float)).all()
    assert "no mean-field line for residual networks" in doc.get_model_by_name("notes").text


def test_an_impossible_network_is_said_not_raised() -> None:
    doc = _document(ExplorerSettings(activation="softplus", init="critical", depth=3, width=8))
    assert doc.get_model_by_name("verdict").text.startswith("cannot draw this network: activation 'softplus'")


def test_plotted_keeps_positive_finite_values_only() -> None:
    got = app.plotted(np.array([2.0, 0.0, -1.0, np.inf, np.nan, 1e-300]))
    np.testing.assert_array_equal(got, [2.0, np.nan, np.nan, np.nan, np.nan, 1e-300])


def test_y_range_reaches_a_format_limit_near_the_data() -> None:
    f16 = precision.formats()["float16"]
    near = app._y_range(1e-1, 1e3, f16)  # 65504 is within three decades of 1e3
    assert near["end"] == pytest.approx(f16.overflow_threshold * 100)
    far = app._y_range(1e-1, 1e1, precision.formats()["float32"])
    assert (far["start"], far["end"]) == (pytest.approx(1e-3), pytest.approx(1e3))


def test_a_port_in_use_is_a_numstab_error() -> None:
    with socket.socket() as taken:
        taken.bind((app.ADDRESS, 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(InvalidArgumentError, match=f"port {port} on 127.0.0.1 is not available"):
            app.serve(port=port, on_ready=lambda url: None)


def test_the_layer_leaving_the_format_is_marked() -> None:
    # N(0, 1) entries at width 64: RMS x8 per layer; at layer 5 (RMS 8^5 = 32768) the values beyond 2 sigma,
    # 4.6% of them, pass float16's 65504; at layer 4 (RMS 4096) none does (16 sigma)
    doc = _document(ExplorerSettings(activation="identity", init="standard_normal", depth=10, width=64))
    span = next(s for s in doc.select({"type": app.Span}) if s.visible)
    data = explore(ExplorerSettings(activation="identity", init="standard_normal", depth=10, width=64))
    assert span.location == data.forward_exit.layer
    assert (data.forward_exit.kind, data.forward_exit.layer) == ("overflow", 5)
