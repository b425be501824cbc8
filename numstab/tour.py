"""`numstab tour`: every experiment of the chapter at its settings, a table each, one HTML report.

The tour is a list of :class:`TourStep` s. Each step computes a result (``run(quick)``, no printing)
and renders it (``render(result, ctx)``: a compact terminal table, an HTML section, ``ctx.json[name]``).
Another module adds a step by appending to :data:`TOUR_STEPS` (the training lab does).

Examples:
    >>> [step.name for step in TOUR_STEPS][:3]
    ['activation-curves', 'matrix-products', 'mlp-gradients']
"""

from __future__ import annotations

import pathlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import rich.console

from numstab import jsonio
from numstab.errors import InvalidArgumentError
from numstab.files import prepare_output_dir
from numstab.render import lab as lab_report
from numstab.render import training as training_render
from numstab.render.html import HtmlPage
from numstab.render.terminal import make_progress

__all__ = [
    "TourContext",
    "TourStep",
    "TourSummary",
    "TOUR_STEPS",
    "CHAPTER_STEPS",
    "run_tour",
    "render_lab_result",
]

_ANCHOR = re.compile(r"^[a-z0-9-]+$")


@dataclass(frozen=True)
class TourContext:
    """Where a step renders to.

    Attributes:
        console: the rich console for the terminal tables.
        report: the HTML report; a step adds one section.
        json: the tour's JSON payload; a step fills ``json[step.name]``.
        quick: True for the small settings (tests), False for the chapter's.
    """

    console: rich.console.Console
    report: HtmlPage
    json: dict
    quick: bool


@dataclass(frozen=True)
class TourStep:
    """One experiment of the tour.

    Attributes:
        name: the HTML anchor and JSON key, [a-z0-9-]+.
        title: the section title.
        run: run(quick) -> a result dataclass (computation only).
        render: render(result, ctx): terminal table, HTML section, ``ctx.json[name]``.
    """

    name: str
    title: str
    run: Callable[[bool], Any]
    render: Callable[[Any, TourContext], None]

    def __post_init__(self) -> None:
        if not _ANCHOR.match(self.name):
            raise InvalidArgumentError(f"TourStep name must match [a-z0-9-]+, got {self.name!r}")


@dataclass(frozen=True)
class TourSummary:
    """What :func:`run_tour` wrote.

    Attributes:
        folder: the report folder.
        index: the HTML report (folder / "index.html").
        json: the JSON report (folder / "report.json").
        replaced: entries of an earlier numstab report that were in the folder (now replaced).
        seconds: wall time per step, by step name.
        quick: whether the quick settings were used.
    """

    folder: pathlib.Path
    index: pathlib.Path
    json: pathlib.Path
    replaced: list[str]
    seconds: dict[str, float] = field(default_factory=dict)
    quick: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-ready values (paths as strings)."""
        return {
            "folder": str(self.folder),
            "index": str(self.index),
            "json": str(self.json),
            "replaced": list(self.replaced),
            "seconds": dict(self.seconds),
            "quick": self.quick,
        }


def render_lab_result(name: str) -> Callable[[Any, TourContext], None]:
    """Return the render function of a lab step: table, HTML section under anchor ``name``, JSON."""

    def render(result: Any, ctx: TourContext) -> None:
        ctx.console.print(lab_report.terminal_table(result))
        lab_report.add_section(ctx.report, result, anchor=name)
        ctx.json[name] = result.to_dict()

    return render


def _lab_step(name: str, title: str, run: Callable[[bool], Any]) -> TourStep:
    return TourStep(name, title, run, render_lab_result(name))


def _lab(function: str, **quick_kwargs: Any) -> Callable[[bool], Any]:
    """run(quick): the lab function at the chapter's settings, or with ``quick_kwargs``."""

    def run(quick: bool) -> Any:
        from numstab import lab

        return getattr(lab, function)(**(quick_kwargs if quick else {}))

    return run


TOUR_STEPS: list[TourStep] = [
    _lab_step("activation-curves", "Vanishing gradients: sigmoid and friends", _lab("activation_curves")),
    _lab_step(
        "matrix-products", "Exploding products of random matrices", _lab("matrix_products", trials=200)
    ),
    _lab_step(
        "mlp-gradients",
        "The 50-layer synthetic MLP gradient",
        _lab("mlp_gradients", width=30, depth=20, repeats=3),
    ),
    _lab_step("taylor", "Which activations look like the identity near 0", _lab("taylor")),
    _lab_step(
        "xavier",
        "Xavier initialization, measured",
        _lab("xavier", width=32, other_width=128, depth=8, batch=32, trials=2),
    ),
    _lab_step("symmetry", "Breaking the symmetry", _lab("symmetry", steps=100)),
    _lab_step("precision", "Number formats: where products leave the range", _lab("precision", depth=170)),
]

#: The chapter's steps (the ones this module defines), in order; other modules may append more.
CHAPTER_STEPS: tuple[str, ...] = tuple(step.name for step in TOUR_STEPS)



@dataclass(frozen=True)
class TourResults:
    """The training section of ``numstab tour``.

    Attributes:
        depth: the depth sweep (the chapter's five setups).
        remedies: the remedies at depth.
        map: the trainability map.
    """

    depth: Any
    remedies: Any
    map: Any

    def to_dict(self) -> dict[str, Any]:
        """The three results' dicts."""
        return {"depth": self.depth.to_dict(), "remedies": self.remedies.to_dict(), "map": self.map.to_dict()}


def _training_run(quick: bool) -> TourResults:
    """Reduced configurations: about 12 s on the 2-core machine (quick: about 2 s), one seed each."""
    from numstab.lab import training

    steps = 30 if quick else 200
    depth = training.depth_sweep([2, 6] if quick else [2, 10], steps=steps, seeds=[0])
    cures = training.remedies(
        ["residual", "scaled_sigmoid", "layernorm", "clip"], depth=8 if quick else 15, steps=steps, seeds=[0]
    )
    depths, stds = ((4, 16), (0.5, 1.25, 4.0)) if quick else ((4, 12, 32), (0.5, 1.0, 1.25, 2.0, 4.0))
    grid = training.trainability_map(depths, stds, steps=steps // 2, seeds=[0], lr=0.03)
    return TourResults(depth, cures, grid)


_TRAINING_TITLE = "Training on real data (digits)"


def _training_render(result: TourResults, ctx: TourContext) -> None:
    ctx.console.print(_TRAINING_TITLE, style="bold")
    for part, anchor in ((result.depth, "training"), (result.remedies, None), (result.map, None)):
        ctx.console.print(training_render.terminal_table(part))
        training_render.add_section(ctx.report, part, anchor=anchor)  # the first carries the step's anchor
    ctx.json["training"] = result.to_dict()


TOUR_STEPS.append(TourStep("training", _TRAINING_TITLE, _training_run, _training_render))


def run_tour(out_dir: str | pathlib.Path, *, quick: bool, console: rich.console.Console) -> TourSummary:
    """Run every step of :data:`TOUR_STEPS`, print a table each, write index.html and report.json.

    The folder is prepared by :func:`numstab.files.prepare_output_dir`: a new or empty folder
    is used, an earlier numstab report is replaced (its entries are returned so the caller can say so),
    a folder of someone else's files is refused before anything runs.

    Args:
        out_dir: the report folder.
        quick: small settings (a few seconds) instead of the chapter's (under a minute on 2 cores).
        console: where the tables and the progress bar go.

    Raises:
        InvalidArgumentError: ``out_dir`` is a file, holds foreign files or is not writable.
    """
    folder, replaced = prepare_output_dir(out_dir)
    mode = "quick settings" if quick else "the chapter's settings"
    ctx = TourContext(
        console, HtmlPage("numstab tour", subtitle=f"D2L Numerical Stability, at {mode}"), {}, quick
    )
    seconds: dict[str, float] = {}
    with make_progress(console) as bar:
        task = bar.add_task("tour", total=len(TOUR_STEPS))
        for step in TOUR_STEPS:
            bar.update(task, description=step.title)
            start = time.perf_counter()
            step.render(step.run(quick), ctx)
            seconds[step.name] = time.perf_counter() - start
            bar.advance(task)
    index = ctx.report.write(folder / "index.html")
    data = jsonio.dump(
        "tour", {"quick": quick, "seconds": seconds, "steps": ctx.json}, folder / "report.json"
    )
    return TourSummary(folder, index, data, replaced, seconds, quick)
