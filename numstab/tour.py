"""`numstab tour`: every experiment of the chapter at its settings, a table each, one HTML page, one JSON.

Orchestration, beside the CLI: it runs the lab (computation) and hands each result to the renderer
registered for its type (:mod:`numstab.render.registry`, through :mod:`numstab.display`). The tour is a
list of :class:`TourStep` s; a step's ``run(quick)`` returns a result, or a :class:`TourResults` of
several (the training step). Each result prints its table, adds its HTML section (the step's first
section carries the step's name as anchor) and its ``to_dict()`` becomes ``steps[name]`` of report.json.

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
from typing import TYPE_CHECKING, Any

from numstab import display, jsonio
from numstab.errors import InvalidArgumentError
from numstab.files import ReportFolder
from numstab.messages import check_lang, tr
from numstab.render.html import HtmlPage
from numstab.render.terminal import make_progress  # rich through render: the global RNG is kept

if TYPE_CHECKING:
    import rich.console

__all__ = ["TourStep", "TourResults", "TourSummary", "TOUR_STEPS", "CHAPTER_STEPS", "run_tour", "render_step"]

_ANCHOR = re.compile(r"^[a-z0-9-]+$")


@dataclass(frozen=True)
class TourStep:
    """One experiment of the tour.

    Attributes:
        name: the HTML anchor and JSON key, [a-z0-9-]+.
        title: the progress bar's label (and the heading of a step with several results).
        run: run(quick) -> a result dataclass, or a :class:`TourResults` (computation only).
        calls: calls(quick) -> the Python call that makes each result (``r = lab.taylor()``), shown at
            the end of its HTML section; empty: the renderer's default (the chapter's settings).
    """

    name: str
    title: str
    run: Callable[[bool], Any]
    calls: Callable[[bool], tuple[str, ...]] = lambda quick: ()

    def __post_init__(self) -> None:
        if not _ANCHOR.match(self.name):
            raise InvalidArgumentError(f"TourStep name must match [a-z0-9-]+, got {self.name!r}")


@dataclass(frozen=True)
class TourResults:
    """The training section of ``numstab tour``: three results shown one after another.

    Attributes:
        depth: the depth sweep (the chapter's five setups).
        remedies: the remedies at depth.
        map: the trainability map.
    """

    depth: Any
    remedies: Any
    map: Any

    def parts(self) -> tuple[Any, ...]:
        """The results in the order they are shown."""
        return self.depth, self.remedies, self.map

    def to_dict(self) -> dict[str, Any]:
        """The three results' dicts."""
        return {"depth": self.depth.to_dict(), "remedies": self.remedies.to_dict(), "map": self.map.to_dict()}


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


def render_step(
    step: TourStep, result: Any, *, console: rich.console.Console, page: HtmlPage, payload: dict,
    quick: bool = False, lang: str = "en",
) -> None:
    """Show one step's result: a table each, an HTML section each, ``payload[step.name]``.

    Every result goes to the renderer registered for its type; the first section is anchored at the
    step's name, the others at their own anchors; a step of several results prints its title first.
    ``lang`` ("en", "zh") is the language of the tables' words and of the section's text.
    """
    parts = result.parts() if isinstance(result, TourResults) else (result,)
    calls = step.calls(quick) or (None,) * len(parts)
    if len(parts) > 1:
        console.print(tr(f"title.{step.name}", lang), style="bold")
    for index, (part, call) in enumerate(zip(parts, calls, strict=True)):
        drawn_by = display.renderer(part)
        console.print(drawn_by.terminal(part, lang=lang))
        drawn_by.section(page, part, anchor=step.name if index == 0 else None, call=call, lang=lang)
    payload[step.name] = result.to_dict()


def _lab(name: str, title: str, function: str, **quick_kwargs: Any) -> TourStep:
    """A step running the lab function at the chapter's settings, or with ``quick_kwargs``."""

    def run(quick: bool) -> Any:
        from numstab import lab

        return getattr(lab, function)(**(quick_kwargs if quick else {}))

    def calls(quick: bool) -> tuple[str, ...]:
        arguments = ", ".join(f"{k}={v!r}" for k, v in quick_kwargs.items()) if quick else ""
        return (f"r = lab.{function}({arguments})",)

    return TourStep(name, title, run, calls)


def _training(quick: bool) -> TourResults:
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


def _exercises(quick: bool) -> Any:
    from numstab import lab

    return lab.exercises(quick=quick)


def _training_calls(quick: bool) -> tuple[str, ...]:
    steps = 30 if quick else 200
    depths, stds = ((4, 16), (0.5, 1.25, 4.0)) if quick else ((4, 12, 32), (0.5, 1.0, 1.25, 2.0, 4.0))
    return (
        f"r = training.depth_sweep({[2, 6] if quick else [2, 10]}, steps={steps}, seeds=[0])",
        f"r = training.remedies(['residual', 'scaled_sigmoid', 'layernorm', 'clip'], "
        f"depth={8 if quick else 15}, steps={steps}, seeds=[0])",
        f"r = training.trainability_map({depths}, {stds}, steps={steps // 2}, seeds=[0], lr=0.03)",
    )


TOUR_STEPS: list[TourStep] = [
    _lab("activation-curves", "Vanishing gradients: sigmoid and friends", "activation_curves"),
    _lab("matrix-products", "Exploding products of random matrices", "matrix_products", trials=200),
    _lab(
        "mlp-gradients", "The 50-layer synthetic MLP gradient", "mlp_gradients", width=30, depth=20, repeats=3
    ),
    _lab("taylor", "Which activations look like the identity near 0", "taylor"),
    _lab(
        "xavier", "Xavier initialization, measured", "xavier",
        width=32, other_width=128, depth=8, batch=32, trials=2,
    ),
    _lab("symmetry", "Breaking the symmetry", "symmetry", steps=100),
    _lab("precision", "Number formats: where products leave the range", "precision", depth=170),
    TourStep("training", "Training on real data (digits)", _training, _training_calls),
    TourStep(
        "exercises", "The chapter's exercises, answered",
        lambda quick: _exercises(quick), lambda quick: (f"r = lab.exercises(quick={quick})",),
    ),
]

#: The chapter's experiments (the training on real data goes beyond the chapter; the exercises answer it).
CHAPTER_STEPS: tuple[str, ...] = tuple(
    step.name for step in TOUR_STEPS if step.name not in ("training", "exercises")
)




def run_tour(
    out_dir: str | pathlib.Path, *, quick: bool, console: rich.console.Console, lang: str = "en"
) -> TourSummary:
    """Run every step of :data:`TOUR_STEPS`, print a table each, write index.html and report.json.

    The folder is a :class:`numstab.files.ReportFolder`, checked before anything runs: a new or
    empty folder is used, an earlier numstab report is replaced (the files replaced are returned so the
    caller can say so), a folder of someone else's files is refused. ``index.html`` and ``report.json``
    are written as one unit at the end: an interrupted tour leaves the folder as it was.

    Args:
        out_dir: the report folder.
        quick: small settings (a few seconds) instead of the chapter's (under a minute on 2 cores).
        console: where the tables and the progress bar go.
        lang: "en" (default) or "zh": the tables, the report and its quotes of the chapter in Chinese.

    Raises:
        InvalidArgumentError: ``out_dir`` is a file, holds foreign files or is not writable.
    """
    lang = check_lang(lang)
    folder = ReportFolder(out_dir, kind="tour")
    mode = tr("tour.quick" if quick else "tour.chapter", lang)
    page = HtmlPage(tr("tour.title", lang), subtitle=tr("tour.subtitle", lang, mode=mode), lang=lang)
    payload: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    with make_progress(console) as bar:
        task = bar.add_task("tour", total=len(TOUR_STEPS))
        for step in TOUR_STEPS:
            bar.update(task, description=tr(f"title.{step.name}", lang))
            start = time.perf_counter()
            render_step(
                step, step.run(quick), console=console, page=page, payload=payload, quick=quick, lang=lang
            )
            seconds[step.name] = time.perf_counter() - start
            bar.advance(task)
    data = jsonio.dumps("tour", {"quick": quick, "seconds": seconds, "steps": payload}) + "\n"
    replaced = folder.commit({"index.html": page.render().encode(), "report.json": data.encode()})
    path = folder.path
    return TourSummary(path, path / "index.html", path / "report.json", replaced, seconds, quick)
