"""`numstab check TARGET` and `numstab examples`: parse, call numstab.diagnose, render."""

from __future__ import annotations

import pathlib
from typing import Any

import typer

from numstab.cli._app import app

_TARGET_HELP = (
    "A built-in example (`numstab examples` lists them) or path/to/file.py:factory. Loading a file RUNS "
    "THE CODE IN IT (it is imported like any Python module): only check files you trust. The factory is "
    "called with no arguments and returns a model (then --input-shape is required) or a (model, inputs) pair."
)


@app.command("check")
def check(
    target: str = typer.Argument(..., help=_TARGET_HELP, show_default=False),
    input_shape: str | None = typer.Option(
        None, "--input-shape", help="Shape of a random N(0, 1) input batch, e.g. 8,3,32,32.",
        show_default=False,
    ),
    fix: str | None = typer.Option(
        None, "--fix", help="Apply numstab.init.apply_(copy, SCHEME) to a copy, re-check, show before/after "
        "(kaiming_normal, xavier_normal, orthogonal, critical, ...).", show_default=False,
    ),
    json_path: pathlib.Path | None = typer.Option(
        None, "--json", help="Write the report as JSON (schema numstab.report/1, top-level \"verdict\"); "
        "'--json -' prints it on stdout instead of the table.",
        show_default=False,
    ),
    html_path: pathlib.Path | None = typer.Option(
        None, "--html", help="Write a self-contained HTML report.", show_default=False
    ),
    weights: pathlib.Path | None = typer.Option(
        None, "--weights", help="A state dict to load first, read with torch.load(weights_only=True) "
        "(nothing is unpickled).", show_default=False,
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the example's weights, the random inputs and the "
                             "random backward vector."),
) -> None:
    """Diagnose a model in one forward and backward pass: per-layer statistics, verdicts and the fix.

    Loading path/to/file.py:factory runs the code in that file.
    """
    from numstab.probe import diagnose
    from numstab.probe.target import load_target, load_weights, parse_shape

    shape = parse_shape(input_shape) if input_shape is not None else None
    model, inputs = load_target(target, input_shape=shape, seed=seed)
    if weights is not None:
        load_weights(model, weights)
    report = diagnose(model, inputs, seed=seed)
    comparison = report.with_fix(fix) if fix is not None else None
    to_stdout = json_path is not None and str(json_path) == "-"
    if not to_stdout:
        _render(report, comparison, target)
    _write(report, comparison, json_path=json_path, html_path=html_path)


def _render(report: Any, comparison: Any, target: str) -> None:
    from numstab.render.terminal import make_console

    console = make_console()
    console.print(f"numstab check {target}", style="bold", markup=False, highlight=False)
    console.print(report)
    if comparison is not None:
        console.print(comparison)


def _write(
    report: Any, comparison: Any, *, json_path: pathlib.Path | None, html_path: pathlib.Path | None
) -> None:
    from numstab import jsonio
    from numstab.render.check import html_report

    if json_path is not None:
        payload = report.to_dict()
        if comparison is not None:
            payload["fix"] = {"scheme": comparison.scheme, "after": comparison.after.to_dict()}
        if str(json_path) == "-":
            typer.echo(jsonio.dumps("check", payload))
        else:
            jsonio.dump("check", payload, json_path)
            typer.echo(f"wrote {json_path}")
    if html_path is not None:
        html_report(report, fix=comparison).write(html_path)
        # with '--json -' stdout carries only the JSON
        typer.echo(f"wrote {html_path}", err=json_path is not None and str(json_path) == "-")


@app.command("examples")
def examples_command() -> None:
    """List the built-in models for `numstab check`, one a line: name, then what it shows."""
    from numstab import examples

    width = max(len(n) for n in examples.names())
    for name in examples.names():
        typer.echo(f"{name:<{width}}  {examples.get(name).description}")
