"""`numstab tour`: every experiment of the chapter at its settings, a table each, one HTML report.

The tour is a list of :class:`TourStep` s. Each step computes a result (``run(quick)``, no printing)
and renders it (``render(result, ctx)``: a compact terminal table, an HTML section, ``ctx.json[name]``).
Another module adds a step by appending to :data:`TOUR_STEPS` (the training lab does).

Examples:
    >>> [step.name for step in TOUR_STEPS][:3]
    ['activation-curves', 'matrix-products', 'mlp-gradients']
"""

from __future__ import annotations

import numstab.report._rich_import  # noqa: F401  isort: skip  (before rich: keeps the global RNG)

import pathlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import rich.console

from numstab.errors import InvalidArgumentError
from numstab.report import jsonio
from numstab.report import lab as lab_report
from numstab.report.files import ReportFolder
from numstab.report.html import HtmlReport
from numstab.report.terminal import make_progress

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
    report: HtmlReport
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
        replaced: files of an earlier numstab report that this run replaced (``index.html``,
            ``report.json``); other files in the folder are left as they are and not listed.
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

from numstab.report.training import TOUR_STEP as _TRAINING_STEP  # noqa: E402  (training on the digits)

TOUR_STEPS.append(_TRAINING_STEP)


def run_tour(out_dir: str | pathlib.Path, *, quick: bool, console: rich.console.Console) -> TourSummary:
    """Run every step of :data:`TOUR_STEPS`, print a table each, write index.html and report.json.

    The folder is a :class:`numstab.report.files.ReportFolder`, checked before anything runs: a new or
    empty folder is used, an earlier numstab report is replaced (the files replaced are returned so the
    caller can say so), a folder of someone else's files is refused. ``index.html`` and ``report.json``
    are written as one unit at the end: an interrupted tour leaves the folder as it was.

    Args:
        out_dir: the report folder.
        quick: small settings (a few seconds) instead of the chapter's (under a minute on 2 cores).
        console: where the tables and the progress bar go.

    Raises:
        InvalidArgumentError: ``out_dir`` is a file, holds foreign files or is not writable.
    """
    folder = ReportFolder(out_dir, kind="tour")
    mode = "quick settings" if quick else "the chapter's settings"
    ctx = TourContext(
        console, HtmlReport("numstab tour", subtitle=f"D2L Numerical Stability, at {mode}"), {}, quick
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
    data = jsonio.dumps("tour", {"quick": quick, "seconds": seconds, "steps": ctx.json}) + "\n"
    replaced = folder.commit({"index.html": ctx.report.render().encode(), "report.json": data.encode()})
    path = folder.path
    return TourSummary(path, path / "index.html", path / "report.json", replaced, seconds, quick)
