"""`numstab theory ACTIVATION`: mean-field predictions at one initialization, and the phase diagram."""

from __future__ import annotations

import os
import pathlib
import tempfile

import typer

from numstab.cli._app import app
from numstab.errors import InvalidArgumentError, NoCriticalPointError, check_int_at_least

_PLOT_SUFFIXES = (".png", ".svg", ".pdf")


@app.command("theory")
def theory(
    activation: str = typer.Argument(..., help="An activation name (relu, tanh, gelu, selu, ...).",
                                     show_default=False),
    bias_std: float = typer.Option(0.0, "--bias-std", help="sigma_b: biases ~ N(0, sigma_b^2)."),
    weight_std: float | None = typer.Option(
        None, "--weight-std", help="sigma_w: weights ~ N(0, sigma_w^2 / fan_in) (default: the critical one).",
        show_default=False,
    ),
    plot: pathlib.Path | None = typer.Option(
        None, "--plot", help="Draw the phase diagram (xi_c heat map, chi_1 = 1 line, this point) to a "
        ".png, .svg or .pdf file.", show_default=False,
    ),
    grid: int = typer.Option(200, "--grid", help="Points per axis of the phase diagram (>= 2)."),
    json_path: pathlib.Path | None = typer.Option(
        None, "--json", help="Write the summary as JSON (schema numstab.report/1, kind \"theory\").",
        show_default=False,
    ),
) -> None:
    """Predict q*, chi_1, depth scales and the phase of an initialization (Schoenholz et al. 2017)."""
    from numstab import theory as th
    from numstab.render.terminal import make_console
    from numstab.render.theory import summary_table

    check_int_at_least("--grid", grid, 2)
    if plot is not None and plot.suffix.lower() not in _PLOT_SUFFIXES:
        raise InvalidArgumentError(
            f"--plot must end in {', '.join(_PLOT_SUFFIXES)}, got {str(plot)!r}: e.g. --plot phase.png"
        )
    summary = _summary(th, activation, weight_std, bias_std)
    console = make_console()
    console.print(summary_table(summary))
    if plot is not None:
        _draw(th, summary, plot, grid)
        typer.echo(f"wrote {plot}")
    if json_path is not None:
        from numstab import jsonio

        jsonio.dump("theory", summary.to_dict(), json_path)
        typer.echo(f"wrote {json_path}")


def _summary(th, activation: str, weight_std: float | None, bias_std: float):
    try:
        return th.summary(activation, weight_std, bias_std)
    except NoCriticalPointError as err:
        if weight_std is None:  # the critical one was asked for: offer an explicit one
            raise NoCriticalPointError(f"{err}; or pass --weight-std W") from None
        raise


def _draw(th, summary, path: pathlib.Path, points: int) -> None:
    from numstab.render.theory import phase_diagram_figure, phase_grid

    weights, biases = phase_grid(
        summary.weight_std, summary.bias_std, summary.critical_weight_std, points=points
    )
    diagram = th.phase_diagram(summary.activation, weights, biases)
    fig = phase_diagram_figure(diagram, point=(summary.weight_std, summary.bias_std))
    path.parent.mkdir(parents=True, exist_ok=True)
    # write beside the target, then rename: an interrupted run never leaves half a file
    handle, tmp = tempfile.mkstemp(dir=path.parent, suffix=path.suffix)
    os.close(handle)
    try:
        fig.savefig(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
