"""`numstab check TARGET` and `numstab examples`: parse, call numstab.diagnose, render."""

from __future__ import annotations

import enum
import pathlib
from typing import Any

import typer

from numstab.cli._app import app
from numstab.cli._output import QUIET, Outputs, is_quiet

_TARGET_HELP = (
    "A built-in example (`numstab examples` lists them) or path/to/file.py:factory. Loading a file RUNS "
    "THE CODE IN IT (it is imported like any Python module): only check files you trust. The factory is "
    "called with no arguments and returns a model (then --input-shape is required) or a (model, inputs) pair."
)

#: Schemes --fix can apply: apply_'s, less those that need a number the command line does not take.
FIX_SCHEMES_EXCLUDED = ("normal", "constant")
#: --fix value that applies the fix the report itself offers (its first finding with a scheme).
OFFERED = "offered"


class FailOn(str, enum.Enum):
    """The severity from which `numstab check --fail-on` exits with status 1."""

    warning = "warning"
    error = "error"


#: Severities at or above each --fail-on level.
_FAILING = {FailOn.warning: ("error", "warning"), FailOn.error: ("error",)}


@app.command("check")
def check(
    ctx: typer.Context,
    target: str = typer.Argument(..., help=_TARGET_HELP, show_default=False),
    input_shape: str | None = typer.Option(
        None, "--input-shape", help="Shape of a random N(0, 1) input batch, e.g. 8,3,32,32.",
        show_default=False,
    ),
    fix: str | None = typer.Option(
        None, "--fix", help="Apply a fix to a copy, re-check, show before/after: 'offered' (the fix the "
        "report offers, e.g. a rescale by its factor) or a numstab.init.apply_ scheme (kaiming_normal, "
        "xavier_normal, orthogonal, critical, ...).", show_default=False,
    ),
    json_path: pathlib.Path | None = typer.Option(
        None, "--json", help="Write the report as JSON (schema numstab.report/1, top-level \"verdict\"); "
        "'--json -' prints it on stdout instead of the table.",
        show_default=False,
    ),
    html_path: pathlib.Path | None = typer.Option(
        None, "--html", help="Write a self-contained HTML report ('-': stdout).", show_default=False
    ),
    weights: pathlib.Path | None = typer.Option(
        None, "--weights", help="A state dict to load first, read with torch.load(weights_only=True) "
        "(nothing is unpickled).", show_default=False,
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the example's weights, the random inputs and the "
                             "random backward vector, in [0, 2**63 - 1]."),
    fail_on: FailOn | None = typer.Option(
        None, "--fail-on", help="Exit with status 1 when a finding of this severity (or a worse one) is "
        "found, for CI; without it the exit status is 0 whatever the verdict.", show_default=False,
    ),
    precision: bool = typer.Option(
        False, "--precision", help="Also audit every GEMM-like layer's input, weight and output gradient "
        "under low-precision recipes (bf16/fp16, fp8 casts and per-tensor scaling, MXFP8, NVFP4): which "
        "layers to keep in high precision.",
    ),
    recipes: str | None = typer.Option(
        None, "--recipes", help="Comma-separated recipes for --precision (implies it), e.g. "
        "mxfp8_e4m3,nvfp4; default all but the delayed ones.", show_default=False,
    ),
    quiet: bool = QUIET,
) -> None:
    """Diagnose a model in one forward and backward pass: per-layer statistics, verdicts and the fix.

    Loading path/to/file.py:factory runs the code in that file.
    """
    from numstab.errors import check_seed
    from numstab.probe import diagnose
    from numstab.probe.target import load_target, load_weights, parse_shape

    # everything the user typed is checked before their code runs or anything is computed
    seed = check_seed("--seed", seed)
    _check_fix(fix)
    recipe_names = _check_recipes(recipes)
    outputs = Outputs(is_quiet(ctx, quiet))
    outputs.expect("--json", json_path)
    outputs.expect("--html", html_path)
    shape = parse_shape(input_shape) if input_shape is not None else None
    model, inputs = load_target(target, input_shape=shape, seed=seed)
    if weights is not None:
        load_weights(model, weights)
    report = diagnose(model, inputs, seed=seed)
    comparison = _apply_fix(report, fix)
    audit = _precision_audit(model, inputs, report, recipe_names, seed) if precision or recipes else None
    if outputs.show_tables:
        _render(report, comparison, target, audit)
    outputs.write({"--json": lambda: _json(report, comparison, audit),
                   "--html": lambda: _html(report, comparison, audit)})
    if fail_on is not None and any(f.severity in _FAILING[fail_on] for f in report.findings):
        raise typer.Exit(1)


def _check_fix(fix: str | None) -> None:
    if fix is None:
        return
    from numstab.errors import UnknownNameError
    from numstab.init import SCHEMES

    valid = [OFFERED, *(s for s in SCHEMES if s not in FIX_SCHEMES_EXCLUDED)]
    if fix not in valid:
        raise UnknownNameError("--fix scheme", fix, valid, "normal and constant need a number: use the API")


def _apply_fix(report: Any, fix: str | None) -> Any:
    """``report.with_fix(fix)``, or for 'offered' the call the report's first finding with a scheme names."""
    if fix != OFFERED:
        return report.with_fix(fix) if fix is not None else None
    from numstab.errors import InvalidArgumentError

    offered = next((f for f in report.findings if f.scheme), None)
    if offered is None:
        raise InvalidArgumentError(
            f"--fix offered: the report (verdict {report.verdict}) offers no re-checked fix; drop --fix or "
            "name a scheme (kaiming_normal, xavier_normal, ...)"
        )
    return report.with_fix(offered.scheme, **offered.options)


def _check_recipes(recipes: str | None) -> tuple[str, ...] | None:
    """--recipes as names, each one known (checked before the user's code runs)."""
    if recipes is None:
        return None
    from numstab.cli._app import split_list
    from numstab.errors import UnknownNameError
    from numstab.precision import RECIPE_NAMES

    names = split_list("--recipes", recipes, example="mxfp8_e4m3,nvfp4")
    for name in names or ("",):
        if name not in RECIPE_NAMES:
            raise UnknownNameError("recipe", name, RECIPE_NAMES)
    return names


def _precision_audit(
    model: Any, inputs: Any, report: Any, recipes: tuple[str, ...] | None, seed: int
) -> Any:
    """The low-precision audit; None (with a note) when the model is already non-finite in its precision."""
    from numstab.precision import audit

    if report.first_nonfinite is not None:
        typer.echo("precision audit skipped: the model produces NaN/inf in its own precision", err=True)
        return None
    return audit(model, inputs, recipes=recipes, seed=seed)


def _render(report: Any, comparison: Any, target: str, audit: Any) -> None:
    from numstab.render.formatting import printable
    from numstab.render.terminal import make_console

    console = make_console()
    console.print(f"numstab check {printable(target)}", style="bold", markup=False, highlight=False)
    console.print(report)
    if comparison is not None:
        console.print(comparison)
    if audit is not None:
        console.print(audit)


def _json(report: Any, comparison: Any, audit: Any) -> str:
    from numstab import jsonio

    payload = report.to_dict()
    if comparison is not None:
        payload["fix"] = {k: v for k, v in comparison.to_dict().items() if k != "before"}
    if audit is not None:
        payload["precision"] = audit.to_dict()
    return jsonio.dumps("check", payload)


def _html(report: Any, comparison: Any, audit: Any) -> str:
    from numstab.render.check import html_report

    page = html_report(report, fix=comparison)
    if audit is not None:
        from numstab.render.precision import add_sections

        add_sections(page, audit)
    return page.render()


@app.command("examples")
def examples_command() -> None:
    """List the built-in models for `numstab check`, one a line: name, then what it shows."""
    from numstab import examples

    width = max(len(n) for n in examples.names())
    for name in examples.names():
        typer.echo(f"{name:<{width}}  {examples.get(name).description}")
