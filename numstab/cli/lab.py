"""`numstab lab NAME [options]`: run one experiment of the chapter, print its table (or its JSON).

Each command parses, checks its outputs, calls :mod:`numstab.lab` and renders with
:mod:`numstab.render.lab`; a user's mistake raises a NumstabError, which ``numstab.cli.main`` turns
into one line and exit status 2.
"""

from __future__ import annotations

import pathlib
from typing import Any

import typer

from numstab.cli._app import lab_app, split_list
from numstab.cli._output import QUIET, Outputs, is_quiet

_JSON = typer.Option(
    None, "--json", help="Write the result as JSON (schema numstab.report/1, kind: the experiment); "
    "'--json -' prints it on stdout instead of the table.", show_default=False,
)
_HTML = typer.Option(
    None, "--html", help="Write an HTML page with the table and the figure ('-': stdout).", show_default=False
)
_SEED = typer.Option(0, "--seed", help="Seed of the random generator, in [0, 2**63 - 1].")


def _outputs(
    ctx: typer.Context, json_path: pathlib.Path | None, html_path: pathlib.Path | None, quiet: bool
) -> Outputs:
    """The command's outputs, checked now: before the experiment runs."""
    outputs = Outputs(is_quiet(ctx, quiet))
    outputs.expect("--json", json_path)
    outputs.expect("--html", html_path)
    return outputs


def _show(kind: str, result: Any, outputs: Outputs) -> None:
    from numstab import jsonio
    from numstab.render.lab import page, terminal_table

    outputs.table(terminal_table(result))
    outputs.write({
        "--json": lambda: jsonio.dumps(kind, result.to_dict()),
        "--html": lambda: page(result).render(),
    })


@lab_app.command("activation-curves")
def activation_curves(
    ctx: typer.Context,
    names: str = typer.Option(
        "sigmoid,tanh,relu,scaled_sigmoid", "--names", help="Activations, comma-separated."
    ),
    lo: float = typer.Option(-8.0, help="First grid point."),
    hi: float = typer.Option(8.0, help="Grid end (excluded)."),
    step: float = typer.Option(0.1, help="Grid spacing."),
    json_path: pathlib.Path = _JSON,
    html_path: pathlib.Path = _HTML,
    quiet: bool = QUIET,
) -> None:
    """Activations and their autograd gradients on arange(lo, hi, step); where the gradient vanishes."""
    from numstab import lab

    outputs = _outputs(ctx, json_path, html_path, quiet)
    result = lab.activation_curves(split_list("--names", names, example="relu,tanh"), lo, hi, step)
    _show("activation-curves", result, outputs)


@lab_app.command("matrix-products")
def matrix_products(
    ctx: typer.Context,
    scales: str = typer.Option(
        "0.4,0.45,0.5,0.55,0.6,0.65,0.7,0.8,0.9,1.0", help="Entry standard deviations."
    ),
    k: int = typer.Option(4, help="Matrix size."),
    n: int = typer.Option(100, help="Number of factors."),
    trials: int = typer.Option(2000, help="Products per scale."),
    seed: int = _SEED,
    json_path: pathlib.Path = _JSON,
    html_path: pathlib.Path = _HTML,
    quiet: bool = QUIET,
) -> None:
    """Products of n random k x k matrices beside the top Lyapunov exponent."""
    from numstab import lab

    outputs = _outputs(ctx, json_path, html_path, quiet)
    result = lab.matrix_products(split_list("--scales", scales, float), k, n, trials=trials, seed=seed)
    _show("matrix-products", result, outputs)


@lab_app.command("mlp-gradients")
def mlp_gradients(
    ctx: typer.Context,
    activations: str = typer.Option("relu,sigmoid,scaled_sigmoid", help="Activations, comma-separated."),
    scales: str = typer.Option("0.1,0.2,0.4,0.8", help="Weight standard deviations, comma-separated."),
    width: int = typer.Option(100, help="Layer width K."),
    depth: int = typer.Option(50, help="Number of layers."),
    repeats: int = typer.Option(10, help="Independent networks per pair."),
    xavier_uniform: bool = typer.Option(
        True, "--xavier-uniform/--no-xavier-uniform", help="Add Xavier uniform."
    ),
    seed: int = _SEED,
    json_path: pathlib.Path = _JSON,
    html_path: pathlib.Path = _HTML,
    quiet: bool = QUIET,
) -> None:
    """The lecture's synthetic 50-layer MLP gradient beside chi_1 ** l."""
    from numstab import lab

    outputs = _outputs(ctx, json_path, html_path, quiet)
    result = lab.mlp_gradients(
        split_list("--activations", activations, example="relu,tanh"),
        split_list("--scales", scales, float),
        width=width,
        depth=depth,
        repeats=repeats,
        seed=seed,
        xavier_uniform=xavier_uniform,
    )
    _show("mlp-gradients", result, outputs)


@lab_app.command("taylor")
def taylor(
    ctx: typer.Context,
    names: str = typer.Option(
        None, "--names", help="Activations, comma-separated (default: all).", show_default=False
    ),
    json_path: pathlib.Path = _JSON,
    html_path: pathlib.Path = _HTML,
    quiet: bool = QUIET,
) -> None:
    """f(0) and f'(0) of each activation: is it the identity near 0?"""
    from numstab import lab

    outputs = _outputs(ctx, json_path, html_path, quiet)
    _show("taylor", lab.taylor(split_list("--names", names, example="relu,tanh")), outputs)


@lab_app.command("xavier")
def xavier(
    ctx: typer.Context,
    width: int = typer.Option(128, help="Equal width (and the first alternating width)."),
    other_width: int = typer.Option(512, help="Second alternating width."),
    depth: int = typer.Option(20, help="Number of layers."),
    trials: int = typer.Option(4, help="Independent weight draws."),
    seed: int = _SEED,
    json_path: pathlib.Path = _JSON,
    html_path: pathlib.Path = _HTML,
    quiet: bool = QUIET,
) -> None:
    """Forward and backward variance through a deep Xavier-initialized linear stack."""
    from numstab import lab

    outputs = _outputs(ctx, json_path, html_path, quiet)
    result = lab.xavier(width=width, other_width=other_width, depth=depth, trials=trials, seed=seed)
    _show("xavier", result, outputs)


@lab_app.command("symmetry")
def symmetry(
    ctx: typer.Context,
    steps: int = typer.Option(1000, help="SGD steps."),
    dropout: float = typer.Option(0.5, help="Drop probability of the dropout case."),
    seed: int = _SEED,
    json_path: pathlib.Path = _JSON,
    html_path: pathlib.Path = _HTML,
    quiet: bool = QUIET,
) -> None:
    """Two hidden units with constant init stay identical under SGD; dropout separates them."""
    from numstab import lab

    outputs = _outputs(ctx, json_path, html_path, quiet)
    _show("symmetry", lab.symmetry(steps=steps, dropout=dropout, seed=seed), outputs)


@lab_app.command("precision")
def precision(
    ctx: typer.Context,
    depth: int = typer.Option(200, help="Layers of the deep products."),
    scales: str = typer.Option("1.0,0.25", help="Entry standard deviations of the deep products."),
    seed: int = _SEED,
    json_path: pathlib.Path = _JSON,
    html_path: pathlib.Path = _HTML,
    quiet: bool = QUIET,
) -> None:
    """1.5^100 and 0.8^100 in every format; the layer where a deep product leaves each format's range."""
    from numstab import lab

    outputs = _outputs(ctx, json_path, html_path, quiet)
    result = lab.precision(depth=depth, scales=split_list("--scales", scales, float), seed=seed)
    _show("precision", result, outputs)


@lab_app.command("exercises")
def exercises(
    ctx: typer.Context,
    quick: bool = typer.Option(False, "--quick", help="Small settings (about a second)."),
    seed: int = _SEED,
    json_path: pathlib.Path = _JSON,
    html_path: pathlib.Path = _HTML,
    quiet: bool = QUIET,
) -> None:
    """The chapter's four exercises answered: symmetries, equal starts, product bounds, LARS."""
    from numstab import lab

    outputs = _outputs(ctx, json_path, html_path, quiet)
    _show("exercises", lab.exercises(quick=quick, seed=seed), outputs)
