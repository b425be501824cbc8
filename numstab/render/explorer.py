"""The ``numstab explore`` web app: Bokeh widgets and figures that render :mod:`numstab.lab.explorer`.

Rendering only. Every number drawn comes from :func:`numstab.lab.explorer.explore` for the settings the
controls hold; this module turns the controls into :class:`~numstab.lab.explorer.ExplorerSettings`, the
result into column data sources and annotations, and serves the page on 127.0.0.1.

Bokeh server (rather than hand-written JavaScript, or Panel on top of Bokeh): its JavaScript and CSS
ship inside the Python wheel and the server serves them itself, so the page works with no network;
widgets, log axes, bands and images are built in; one dependency (plus tornado and xyzservices)
instead of Panel's dozen.

Examples:
    >>> from bokeh.document import Document
    >>> doc = Document()
    >>> build_document(doc, ExplorerSettings(depth=3, width=8))
    >>> sorted(m.name for m in doc.select({"type": Slider}))
    ['bias_std', 'depth', 'weight_std']
"""

from __future__ import annotations

import asyncio
import logging
import math
import signal
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from bokeh.application import Application
from bokeh.application.handlers.function import FunctionHandler
from bokeh.document import Document
from bokeh.layouts import column, row
from bokeh.models import (
    BoxAnnotation,
    Checkbox,
    ColumnDataSource,
    Div,
    Label,
    LinearColorMapper,
    Range1d,
    Select,
    Slider,
    Span,
)
from bokeh.palettes import RdBu11, interp_palette
from bokeh.plotting import figure
from bokeh.server.server import BaseServer
from bokeh.server.tornado import BokehTornado
from bokeh.server.util import bind_sockets
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop

from numstab import activations
from numstab.errors import InvalidArgumentError, NumstabError
from numstab.lab import explorer
from numstab.lab.explorer import ExplorerData, ExplorerSettings
from numstab.render.style import COLORS

__all__ = ["build_document", "plotted", "serve", "ADDRESS", "INIT_LABELS", "FORMAT_LABELS", "WIDTHS"]

_log = logging.getLogger(__name__)

#: The app listens here only.
ADDRESS = "127.0.0.1"
INIT_LABELS = {
    "normal": "normal: N(0, σ_w²/width)",
    "standard_normal": "N(0, 1): the chapter's products",
    "xavier_normal": "Xavier normal",
    "xavier_uniform": "Xavier uniform",
    "kaiming_normal": "Kaiming normal (activation's gain)",
    "kaiming_uniform": "Kaiming uniform (activation's gain)",
    "orthogonal": "orthogonal (activation's gain)",
    "critical": "critical: χ₁ = 1",
}
FORMAT_LABELS = {
    "float32": "float32", "bfloat16": "bfloat16", "float16": "float16",
    "float8_e4m3fn": "float8 e4m3", "float8_e5m2": "float8 e5m2",
}
WIDTHS = ("16", "32", "64", "128", "256", "512")
_MEASURED, _THEORY = COLORS[0], COLORS[1]
_OVERFLOW, _UNDERFLOW, _SUBNORMAL = "#D55E00", "#0072B2", "#56B4E9"


def plotted(values: np.ndarray) -> np.ndarray:
    """What a log axis can draw: positive finite values, NaN (a gap) for the rest.

    Examples:
        >>> plotted(np.array([1.0, 0.0, np.inf])).tolist()
        [1.0, nan, nan]
    """
    values = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(values) & (values > 0), values, np.nan)


class _Controls:
    """The widgets; :meth:`settings` reads them into an ExplorerSettings."""

    def __init__(self, start: ExplorerSettings) -> None:
        self.activation = Select(title="activation", value=start.activation, options=activations.names(),
                                 name="activation")
        self.init = Select(title="init", value=start.init, options=list(INIT_LABELS.items()), name="init")
        self.weight_std = Slider(title="σ_w (normal init)", start=0.05, end=4.0, step=0.05,
                                 value=start.weight_std, name="weight_std", css_classes=["ns-weight-std"])
        self.bias_std = Slider(title="σ_b", start=0.0, end=1.0, step=0.01, value=start.bias_std,
                               name="bias_std", css_classes=["ns-bias-std"])
        self.depth = Slider(title="depth", start=1, end=explorer.MAX_DEPTH, step=1, value=start.depth,
                            name="depth", css_classes=["ns-depth"])
        self.width = Select(title="width", value=str(start.width), options=list(WIDTHS), name="width")
        self.residual = Checkbox(label="residual connections", active=start.residual, name="residual")
        self.layer_norm = Checkbox(label="LayerNorm", active=start.layer_norm, name="layer_norm")
        self.fmt = Select(title="number format", value=start.fmt, options=list(FORMAT_LABELS.items()),
                          name="fmt")

    @property
    def widgets(self) -> list[Any]:
        return [self.activation, self.init, self.weight_std, self.bias_std, self.depth, self.width,
                self.residual, self.layer_norm, self.fmt]

    def settings(self) -> ExplorerSettings:
        return ExplorerSettings(
            activation=self.activation.value, init=self.init.value, weight_std=float(self.weight_std.value),
            bias_std=float(self.bias_std.value), depth=int(self.depth.value), width=int(self.width.value),
            residual=bool(self.residual.active), layer_norm=bool(self.layer_norm.active), fmt=self.fmt.value,
        )


class _MagnitudePlot:
    """One pass (forward or backward): band over seeds, geometric mean, theory dashed, format bands."""

    def __init__(self, direction: str, title: str, y_label: str) -> None:
        self.direction = direction
        self.source = ColumnDataSource(
            {"layer": [], "center": [], "low": [], "high": [], "theory": []}, name=direction
        )
        self.fig = figure(title=title, y_axis_type="log", width=470, height=330, x_axis_label="layer",
                          y_axis_label=y_label, y_range=Range1d(1e-3, 1e3), tools="pan,box_zoom,reset,save")
        self.bands = {
            "overflow": BoxAnnotation(fill_color=_OVERFLOW, fill_alpha=0.18, line_alpha=0),
            "subnormal": BoxAnnotation(fill_color=_SUBNORMAL, fill_alpha=0.12, line_alpha=0),
            "underflow": BoxAnnotation(fill_color=_UNDERFLOW, fill_alpha=0.22, line_alpha=0),
        }
        for band in self.bands.values():
            self.fig.add_layout(band)
        self.fig.varea("layer", "low", "high", source=self.source, fill_color=_MEASURED, fill_alpha=0.2,
                       legend_label="seeds: min to max")
        self.fig.line("layer", "center", source=self.source, color=_MEASURED, line_width=2,
                      legend_label="measured (geometric mean)")
        self.fig.line("layer", "theory", source=self.source, color=_THEORY, line_width=2, line_dash="dashed",
                      legend_label="mean-field theory")
        self.exit = Span(location=0, dimension="height", line_color="black", line_dash="dotted",
                         line_width=2, visible=False)
        self.exit_label = Label(x=0, y=225, x_units="data", y_units="screen", text="", visible=False,
                                text_font_size="11px", background_fill_color="white",
                                background_fill_alpha=0.8)
        self.fig.add_layout(self.exit)
        self.fig.add_layout(self.exit_label)
        self.fig.legend.location = "bottom_left"
        self.fig.legend.label_text_font_size = "10px"
        self.fig.legend.background_fill_alpha = 0.6

    def show(self, data: ExplorerData) -> None:
        columns = data.curves(self.direction)
        shown = {name: plotted(values) for name, values in columns.items() if name != "layer"}
        self.source.data = {"layer": columns["layer"], **shown}
        self._show_format(data)
        low, high = _extent(shown.values())
        self.fig.y_range.update(**_y_range(low, high, data.format))
        self.fig.x_range.update(start=0, end=max(1, data.settings.depth))

    def _show_format(self, data: ExplorerData) -> None:
        fmt = data.format
        # only the finite edges: the others stay at the frame's edge (their default); setting them would
        # replace a reference and make Bokeh re-walk the whole document on every update
        self.bands["overflow"].bottom = fmt.overflow_threshold
        self.bands["subnormal"].update(bottom=fmt.smallest_subnormal / 2, top=fmt.smallest_normal)
        self.bands["underflow"].top = fmt.smallest_subnormal / 2
        leaves = data.forward_exit if self.direction == "forward" else data.backward_exit
        self.exit.visible = self.exit_label.visible = leaves is not None
        if leaves is not None:
            what = {"overflow": "overflows", "underflow": "flushes to 0"}[leaves.kind]
            right_half = leaves.layer > data.settings.depth / 2  # the label goes where there is room
            self.exit.location = self.exit_label.x = leaves.layer
            self.exit_label.text_align = "right" if right_half else "left"
            self.exit_label.text = f" {fmt.name} {what} (layer {leaves.layer}) "


def _extent(columns: Any) -> tuple[float, float]:
    values = np.concatenate([np.asarray(c, dtype=float) for c in columns])
    values = values[np.isfinite(values)]
    return (1.0, 1.0) if values.size == 0 else (float(values.min()), float(values.max()))


def _y_range(low: float, high: float, fmt: Any) -> dict[str, float]:
    """Two decades around the data, stretched to show a format limit within three decades of it."""
    start, end = low / 100, high * 100
    if fmt.overflow_threshold < high * 1e3:
        end = max(end, fmt.overflow_threshold * 100)
    if fmt.smallest_subnormal > low * 1e-3:
        start = min(start, fmt.smallest_subnormal / 100)
    return {"start": max(start, 1e-300), "end": min(end, 1e300)}


class _PhasePlot:
    """log10 chi_1 over (sigma_w, sigma_b), the chi_1 = 1 line, and the current point."""

    def __init__(self) -> None:
        grid_w, grid_b = explorer.PHASE_WEIGHT_STDS, explorer.PHASE_BIAS_STDS
        self.fig = figure(title="phase diagram: log₁₀ χ₁ (blue vanishing, red exploding)", width=430,
                          height=330, x_axis_label="σ_w", y_axis_label="σ_b", tools="reset,save",
                          x_range=(grid_w[0], grid_w[-1]), y_range=(grid_b[0], grid_b[-1]))
        self.mapper = LinearColorMapper(palette=interp_palette(RdBu11, 101), low=-1.0, high=1.0,
                                        nan_color="#dddddd")
        self.image = ColumnDataSource({"image": [np.zeros((len(grid_b), len(grid_w)))]}, name="phase")
        self.fig.image("image", source=self.image, x=grid_w[0], y=grid_b[0], dw=grid_w[-1] - grid_w[0],
                       dh=grid_b[-1] - grid_b[0], color_mapper=self.mapper)
        self.line = ColumnDataSource({"weight_std": [], "bias_std": []}, name="critical_line")
        self.fig.line("weight_std", "bias_std", source=self.line, color="black", line_width=2,
                      legend_label="χ₁ = 1")
        self.point = ColumnDataSource({"weight_std": [], "bias_std": []}, name="point")
        self.fig.scatter("weight_std", "bias_std", source=self.point, size=12, marker="circle",
                         fill_color="white", line_color="black", line_width=2, legend_label="this network")
        self.fig.legend.location = "top_right"
        self.fig.legend.label_text_font_size = "10px"
        self.activation = ""

    def show(self, data: ExplorerData) -> None:
        diagram = data.phase_diagram
        if diagram.activation != self.activation:
            with np.errstate(divide="ignore", invalid="ignore"):
                self.image.data = {"image": [np.clip(np.log10(diagram.chi1), -1.0, 1.0)]}
            self.line.data = {"weight_std": diagram.critical_weight_stds, "bias_std": diagram.bias_stds}
            self.activation = diagram.activation
        grid_end = float(explorer.PHASE_WEIGHT_STDS[-1])
        self.point.data = {"weight_std": [min(data.weight_std, grid_end)],
                           "bias_std": [data.settings.bias_std]}


def _notes(data: ExplorerData) -> str:
    """The lines under the verdict: what sigma_w the init means, theory's view, how it was measured."""
    s = data.settings
    lines = [f"σ_w = {data.weight_std:.4g} ({INIT_LABELS[s.init]}), σ_b = {s.bias_std:g}"
             + (" (off the diagram's σ_w scale)" if data.weight_std > explorer.PHASE_WEIGHT_STDS[-1] else "")]
    if data.theory_note:
        lines.append(data.theory_note)
    else:
        critical = data.critical_weight_std
        where = (f"χ₁ = 1 at σ_w = {critical:.4g} for this σ_b" if math.isfinite(critical)
                 else "no σ_w gives χ₁ = 1 at this σ_b")
        lines.append(f"mean-field: χ₁ = {data.chi1:.4g} at the fixed point, {data.phase} phase; {where}")
    fmt = data.format
    lines.append(
        f"{s.seeds} networks × {s.batch} inputs; forward in float32, gradients rescaled per layer so their "
        f"true size shows; {fmt.name}: max {fmt.max:.4g}, smallest normal {fmt.smallest_normal:.3g}, "
        f"smallest subnormal {fmt.smallest_subnormal:.3g}"
    )
    return "<br>".join(lines)


def build_document(doc: Document, start: ExplorerSettings | None = None) -> None:
    """Fill ``doc`` with the controls, the three figures and the verdict, updated on every change.

    Changes are coalesced: a change schedules one refresh on the next tick unless one is pending, and
    the refresh reads every control, so a fast slider drag costs one computation per tick, not per event.
    """
    controls = _Controls(start or ExplorerSettings())
    forward = _MagnitudePlot("forward", "forward: RMS of each layer's pre-activations",
                             "RMS (√ second moment)")
    backward = _MagnitudePlot("backward", "backward: RMS of the gradient ∂ℓ/∂h", "gradient RMS (output = 1)")
    phase = _PhasePlot()
    verdict = Div(text="", name="verdict", styles={"font-size": "15px", "font-weight": "bold"}, width=900)
    notes = Div(text="", name="notes", styles={"font-size": "12px", "color": "#444"}, width=480)
    # Counts refreshes, changed last: each change reaches the browser as its own message, in order, so
    # once the page has this revision it has every plot of it (the tests and the benchmark wait on it).
    revision = Div(text="0", name="revision", visible=False)
    pending = False

    def refresh() -> None:
        nonlocal pending
        pending = False
        controls.weight_std.disabled = controls.init.value != "normal"
        started, started_cpu = time.perf_counter(), time.process_time()
        try:
            data = explorer.explore(controls.settings())
        except NumstabError as err:
            verdict.text = f"cannot draw this network: {err}"
        else:
            forward.show(data)
            backward.show(data)
            phase.show(data)
            verdict.text = data.verdict
            notes.text = _notes(data)
        revision.text = str(int(revision.text) + 1)
        _log.debug("refresh %s: %.1f ms (%.1f ms CPU)", revision.text, (time.perf_counter() - started) * 1e3,
                   (time.process_time() - started_cpu) * 1e3)

    def changed(attr: str, old: Any, new: Any) -> None:
        nonlocal pending
        if not pending:
            pending = True
            doc.add_next_tick_callback(refresh)

    for widget in controls.widgets:
        widget.on_change("active" if isinstance(widget, Checkbox) else "value", changed)
    refresh()
    title = Div(text="<b>numstab explore</b>: move a control; theory (dashed) and a real network (solid) "
                     "follow", styles={"font-size": "16px"})
    board = column(verdict, row(forward.fig, backward.fig), row(phase.fig, notes), revision)
    doc.add_root(column(title, row(column(*controls.widgets, width=250), board)))
    doc.title = "numstab explore"


def serve(*, port: int = 0, on_ready: Callable[[str], None]) -> None:
    """Serve the app on 127.0.0.1 until SIGINT or SIGTERM; ``on_ready(url)`` once it listens.

    Args:
        port: the TCP port, 0 for a free one.
        on_ready: called with the page's URL when the server accepts connections.

    Raises:
        InvalidArgumentError: the port is taken (or not allowed).
    """
    try:
        sockets, bound = bind_sockets(ADDRESS, port)
    except OSError as err:
        raise InvalidArgumentError(
            f"port {port} on {ADDRESS} is not available ({err.strerror or err}): pick another with --port N, "
            "or leave --port out for a free one"
        ) from None
    asyncio.run(_run(sockets, bound, on_ready))


async def _run(sockets: list[Any], port: int, on_ready: Callable[[str], None]) -> None:
    app = BokehTornado({"/": Application(FunctionHandler(build_document))},
                       extra_websocket_origins=[f"{ADDRESS}:{port}", f"localhost:{port}"])
    http = HTTPServer(app)
    http.add_sockets(sockets)
    server = BaseServer(IOLoop.current(), app, http)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    server.start()
    on_ready(f"http://{ADDRESS}:{port}/")
    try:
        await stop.wait()
    finally:
        server.stop(wait=False)
        await http.close_all_connections()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)

