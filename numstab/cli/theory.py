"""`numstab theory ACTIVATION`: mean-field predictions at one initialization, and the phase diagram."""

from __future__ import annotations

import io
import pathlib

import typer

from numstab.cli._app import app
from numstab.cli._output import QUIET, Outputs, is_quiet
from numstab.errors import NoCriticalPointError, check_int_at_least

_PLOT_SUFFIXES = (".png", ".svg", ".pdf")


@app.command("theory")
def theory(
    ctx: typer.Context,
    activation: str = typer.Argument(..., help="An activation name (relu, tanh, gelu, selu, ...).",
                                     show_default=False),
    bias_std: float = typer.Option(0.0, "--bias-std", help="sigma_b: biases ~ N(0, sigma_b^2)."),
    weight_std: float | None = typer.Option(
        None, "--weight-std", help="sigma_w: weights ~ N(0, sigma_w^2 / fan_in) (default: the critical one).",
        show_default=False,
    ),
    plot: pathlib.Path | None = typer.Option(
        None, "--plot", help="Draw the phase diagram (xi_c heat map, chi_1 = 1 line, this point) to a "
        ".png, .svg or .pdf file ('-': stdout); its folder must exist.", show_default=False,
    ),
    grid: int = typer.Option(200, "--grid", help="Points per axis of the phase diagram (>= 2)."),
    json_path: pathlib.Path | None = typer.Option(
        None, "--json", help="Write the summary as JSON (schema numstab.report/1, kind \"theory\"); "
        "'--json -' prints it on stdout instead of the table.", show_default=False,
    ),
    html_path: pathlib.Path | None = typer.Option(
        None, "--html", help="Write the summary as an HTML page ('-': stdout).", show_default=False
    ),
    quiet: bool = QUIET,
) -> None:
    """Predict q*, chi_1, depth scales and the phase of an initialization (Schoenholz et al. 2017)."""
    from numstab import jsonio
    from numstab import theory as th
    from numstab.render.theory import summary_page, summary_table

    check_int_at_least("--grid", grid, 2)
    outputs = Outputs(is_quiet(ctx, quiet))
    outputs.expect("--json", json_path)
    outputs.expect("--html", html_path)
    outputs.expect("--plot", plot, suffixes=_PLOT_SUFFIXES)
    summary = _summary(th, activation, weight_std, bias_std)
    diagram = _diagram(th, summary, grid) if plot is not None else None
    outputs.table(summary_table(summary))
    outputs.write({
        "--json": lambda: jsonio.dumps("theory", summary.to_dict()),
        "--html": lambda: summary_page(summary).render(),
        "--plot": lambda: _figure_bytes(summary, diagram, plot),
    })


def _summary(th, activation: str, weight_std: float | None, bias_std: float):
    try:
        return th.summary(activation, weight_std, bias_std)
    except NoCriticalPointError as err:
        if weight_std is None:  # the critical one was asked for: offer an explicit one
            raise NoCriticalPointError(f"{err}; or pass --weight-std W") from None
        raise


def _diagram(th, summary, points: int):
    from numstab.render.theory import phase_grid

    weights, biases = phase_grid(
        summary.weight_std, summary.bias_std, summary.critical_weight_std, points=points
    )
    return th.phase_diagram(summary.activation, weights, biases)


def _figure_bytes(summary, diagram, path: pathlib.Path) -> bytes:
    from numstab.render.style import save_figure
    from numstab.render.theory import phase_diagram_figure

    fig = phase_diagram_figure(diagram, point=(summary.weight_std, summary.bias_std))
    buffer = io.BytesIO()
    save_figure(fig, buffer, fmt=path.suffix.lower().lstrip(".") if str(path) != "-" else "png")
    return buffer.getvalue()
