"""`numstab lab training`: train deep MLPs on the digits; tables here, optionally an HTML/JSON report.

Thin: parse, validate every option before any training starts, call :mod:`numstab.lab.training`
with a rich progress bar as its ``progress`` callback, render with :mod:`numstab.render.training`.
A user's mistake raises a NumstabError, which ``numstab.cli.main`` prints as one line (exit 2).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import typer

from numstab.cli._app import lab_app, split_list
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


def _write_report(prepared: tuple[Any, list[str]], results: list[Any], console: Any) -> None:
    from numstab import jsonio
    from numstab.render import training as report
    from numstab.render.html import HtmlPage

    folder, replaced = prepared
    html = HtmlPage("numstab lab training", subtitle="deep MLPs on scikit-learn's digits")
    for result in results:
        report.add_section(html, result)
    index = html.write(folder / "index.html")
    jsonio.dump("lab-training", {"results": [r.to_dict() for r in results]}, folder / "report.json")
    if replaced:
        console.print(f"replaced an earlier report in {folder}")
    console.print(f"report: {index}")


@lab_app.command("training")
def training_command(
    experiment: str = typer.Option(
        "all", "--experiment", "-e", help="depth, lr, remedies, map (comma-separated) or all."
    ),
    depths: str = typer.Option(
        "", help="Depth sweep: hidden-layer counts, e.g. 2,5,10,20 (default: the library's)."
    ),
    lrs: str = typer.Option("", help="Learning-rate sweep: rates, e.g. 0.01,0.1,1."),
    depth: int = typer.Option(None, help="Learning-rate sweep: hidden layers."),
    remedies: str = typer.Option(
        "", help="Remedies: residual,layernorm,clip,lars,scaled_sigmoid,orthogonal,critical."
    ),
    remedy_depth: int = typer.Option(None, "--remedy-depth", help="Remedies: hidden layers."),
    remedy_base: str = typer.Option(
        None, "--remedy-base", help="Remedies: the base net as activation:init[:number], e.g. "
        "relu:normal:0.4 (the number: raw std for normal, gain for orthogonal, sigma_w for weight_std)."
    ),
    activation: str = typer.Option(None, help="Trainability map: the activation (default tanh)."),
    steps: int = typer.Option(None, help="SGD steps per model (default: each experiment's)."),
    seeds: str = typer.Option("", help="Initialization seeds, e.g. 0,1."),
    data_seed: int = typer.Option(None, "--data-seed", help="Seed of the train/test split and batch order."),
    out: str = typer.Option(None, "--out", help="Also write index.html and report.json into this folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON instead of tables."),
) -> None:
    """Train deep MLPs on the digits: depth x init, the learning-rate window, remedies, trainability map."""
    from numstab.files import prepare_output_dir
    from numstab.render import training as report
    from numstab.render.terminal import make_console

    opts = {
        "depths": split_list("--depths", depths, int, example="2,10") or None,
        "lrs": split_list("--lrs", lrs, float, example="0.01,0.1") or None,
        "depth": depth,
        "remedies": split_list("--remedies", remedies, example="residual,clip") or None,
        "remedy_depth": remedy_depth,
        "base": _setup(remedy_base),
        "activation": activation,
        "steps": steps,
        "seeds": split_list("--seeds", seeds, int, example="0,1") or None,
        "data_seed": data_seed,
    }
    plans = _plans(_experiments(experiment), opts)
    folder = None if out is None else prepare_output_dir(out)  # refuse a foreign folder before training
    console = make_console()
    results = _run(plans, make_console(file=sys.stderr))
    if as_json:
        from numstab import jsonio

        typer.echo(json.dumps(jsonio.encode([r.to_dict() for r in results]), indent=2, allow_nan=False))
    else:
        for result in results:
            console.print(report.terminal_table(result))
    if folder is not None:
        _write_report(folder, results, console)
