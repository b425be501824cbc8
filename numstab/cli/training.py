"""`numstab lab training`: train deep MLPs on the digits; tables here, optionally an HTML/JSON report.

Thin: parse, validate every option before any training starts, call :mod:`numstab.lab.training`
with a rich progress bar as its ``progress`` callback, render with :mod:`numstab.render.training`.
A user's mistake raises a NumstabError, which ``numstab.cli.main`` prints as one line (exit 2).
"""

from __future__ import annotations

import io
import pathlib
import sys
from collections.abc import Callable
from typing import Any

import typer

from numstab.cli._app import lab_app, split_list
from numstab.cli._output import QUIET, Outputs, is_quiet
from numstab.errors import InvalidArgumentError, UnknownNameError

EXPERIMENTS = ("depth", "lr", "remedies", "map")


def _setup(text: str | None) -> Any:
    """Parse 'activation:init[:number]' (e.g. relu:normal:0.4) into a training.Setup; None stays None.

    The number is the one the init takes (``training.NUMBER_OF``): the raw std for ``normal``, the gain
    for ``orthogonal``, sigma_w for ``weight_std``.
    """
    if text is None:
        return None
    from numstab.lab.training import NUMBER_OF, Setup

    parts = [p.strip() for p in text.split(":")]
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        numbers = [float(p) for p in parts[2:]]
    except ValueError:
        raise InvalidArgumentError(
            f"--remedy-base must be activation:init[:number] such as relu:normal:0.4, got {text!r}"
        ) from None
    return Setup(parts[0], parts[1], **dict(zip([NUMBER_OF.get(parts[1], "scale")], numbers, strict=False)))


def _experiments(text: str) -> tuple[str, ...]:
    names = EXPERIMENTS if text.strip() == "all" else split_list("--experiment", text, example="depth,lr")
    for name in names:
        if name not in EXPERIMENTS:
            raise UnknownNameError("experiment", name, (*EXPERIMENTS, "all"))
    return names


def _plans(experiments: tuple[str, ...], opts: dict[str, Any]) -> list[tuple[str, Callable[..., Any], dict]]:
    """(name, function, kwargs) per experiment; every kwarg is checked here, before anything trains."""
    from numstab.lab import training

    common = {k: opts[k] for k in ("seeds", "data_seed") if opts[k] is not None}
    if opts["steps"] is not None:
        common["steps"] = opts["steps"]
    kwargs = {
        "depth": {"depths": opts["depths"], **common},
        "lr": {"lrs": opts["lrs"], "depth": opts["depth"], **common},
        "remedies": {
            "names": opts["remedies"],
            "depth": opts["remedy_depth"],
            "base": opts["base"],
            **common,
        },
        "map": {"activation": opts["activation"], **common},
    }
    functions = {"depth": training.depth_sweep, "lr": training.lr_sweep, "remedies": training.remedies,
                 "map": training.trainability_map}  # fmt: skip
    plans = [
        (name, functions[name], {k: v for k, v in kwargs[name].items() if v is not None})
        for name in experiments
    ]
    for _, function, kw in plans:
        training.check_arguments(function, **kw)
    return plans


def _run(plans: list, console: Any) -> list[Any]:
    from numstab.render.terminal import make_progress

    results = []
    with make_progress(console) as bar:
        for name, function, kw in plans:
            task = bar.add_task(f"training: {name}", total=None)
            results.append(
                function(
                    **kw, progress=lambda done, total, t=task: bar.update(t, completed=done, total=total)
                )
            )
    return results


def _html(results: list[Any]) -> str:
    from numstab.render import training as report
    from numstab.render.html import HtmlPage

    html = HtmlPage("numstab lab training", subtitle="deep MLPs on scikit-learn's digits")
    for result in results:
        report.add_section(html, result)
    return html.render()


def _json(results: list[Any]) -> str:
    from numstab import jsonio

    return jsonio.dumps("lab-training", {"results": [r.to_dict() for r in results]})


@lab_app.command("training")
def training_command(
    ctx: typer.Context,
    experiment: str = typer.Option(
        "all", "--experiment", "-e", help="depth, lr, remedies, map (comma-separated) or all."
    ),
    depths: str = typer.Option(
        None, help="Depth sweep: hidden-layer counts, e.g. 2,5,10,20 (default: the library's).",
        show_default=False,
    ),
    lrs: str = typer.Option(None, help="Learning-rate sweep: rates, e.g. 0.01,0.1,1.", show_default=False),
    depth: int = typer.Option(None, help="Learning-rate sweep: hidden layers."),
    remedies: str = typer.Option(
        None, help="Remedies: residual,layernorm,clip,lars,scaled_sigmoid,orthogonal,critical.",
        show_default=False,
    ),
    remedy_depth: int = typer.Option(None, "--remedy-depth", help="Remedies: hidden layers."),
    remedy_base: str = typer.Option(
        None, "--remedy-base", help="Remedies: the base net as activation:init[:number], e.g. "
        "relu:normal:0.4 (the number: raw std for normal, gain for orthogonal, sigma_w for weight_std)."
    ),
    activation: str = typer.Option(None, help="Trainability map: the activation (default tanh)."),
    steps: int = typer.Option(None, help="SGD steps per model (default: each experiment's)."),
    seeds: str = typer.Option(None, help="Initialization seeds, e.g. 0,1.", show_default=False),
    data_seed: int = typer.Option(None, "--data-seed", help="Seed of the train/test split and batch order."),
    out: pathlib.Path = typer.Option(
        None, "--out", help="Also write index.html and report.json into this folder (a numstab report "
        "folder: an earlier one is replaced, a folder of other files refused).", show_default=False,
    ),
    json_path: pathlib.Path = typer.Option(
        None, "--json", help="Write the results as JSON (kind \"lab-training\"); '--json -' prints them on "
        "stdout instead of the tables.", show_default=False,
    ),
    html_path: pathlib.Path = typer.Option(
        None, "--html", help="Write the HTML report to this file ('-': stdout).", show_default=False
    ),
    quiet: bool = QUIET,
) -> None:
    """Train deep MLPs on the digits: depth x init, the learning-rate window, remedies, trainability map."""
    from numstab.files import ReportFolder
    from numstab.render import training as report
    from numstab.render.terminal import make_console

    opts = {
        "depths": split_list("--depths", depths, int, example="2,10"),
        "lrs": split_list("--lrs", lrs, float, example="0.01,0.1"),
        "depth": depth,
        "remedies": split_list("--remedies", remedies, example="residual,clip"),
        "remedy_depth": remedy_depth,
        "base": _setup(remedy_base),
        "activation": activation,
        "steps": steps,
        "seeds": split_list("--seeds", seeds, int, example="0,1"),
        "data_seed": data_seed,
    }
    plans = _plans(_experiments(experiment), opts)
    outputs = Outputs(is_quiet(ctx, quiet))
    outputs.expect("--json", json_path)
    outputs.expect("--html", html_path)
    folder = None if out is None else ReportFolder(out, kind="lab-training")  # refused before training
    progress = make_console(file=sys.stderr) if not outputs.quiet else make_console(file=io.StringIO())
    results = _run(plans, progress)
    for result in results:
        outputs.table(report.terminal_table(result))
    outputs.write({"--json": lambda: _json(results), "--html": lambda: _html(results)})
    if folder is not None:
        files = {"index.html": _html(results), "report.json": _json(results) + "\n"}
        replaced = folder.commit({name: text.encode() for name, text in files.items()})
        if replaced:
            outputs.note(f"replaced an earlier report in {folder.path}: {', '.join(replaced)}")
        outputs.note(f"report: {folder.path / 'index.html'}")
