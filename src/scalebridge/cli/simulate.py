"""``scalebridge simulate``: simulate one model, write a CSV and optionally a plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from ..errors import InputError
from .common import parse_assignments, resolve_model


def simulate(
    model: str = typer.Argument(..., help="A zoo model name (see `scalebridge models`), an "
                                          "SBML file (.xml) or a saved model (.npz)."),
    t_end: float = typer.Option(..., "--t-end", help="End time of the simulation."),
    points: int = typer.Option(101, "--points", help="Number of output times from t0 to t_end."),
    t_start: float = typer.Option(0.0, "--t-start", help="Start time t0."),
    param: list[str] = typer.Option(None, "--param", help="Parameter override name=value "
                                                            "(repeatable)."),
    init: list[str] = typer.Option(None, "--init", help="Initial state override name=value "
                                                          "(repeatable)."),
    rtol: float = typer.Option(1e-8, "--rtol", help="Relative tolerance."),
    atol: float = typer.Option(1e-10, "--atol", help="Absolute tolerance."),
    max_steps: int = typer.Option(100_000, "--max-steps", help="Solver step limit."),
    out: Path = typer.Option(..., "--out", help="CSV file to write (time, states, observables)."),
    plot: Path = typer.Option(None, "--plot", help="PNG file for a plot of all series."),
) -> None:
    """Simulate MODEL from t0 to t_end and write the trajectories as CSV."""
    from ..simulate import simulate as run

    if points < 2:
        raise InputError(f"--points {points}: need at least 2 output times")
    if out.suffix.lower() != ".csv":
        raise InputError(f"--out {out}: the table is written as CSV; give a .csv file name")
    if plot is not None and plot.suffix.lower() != ".png":
        raise InputError(f"--plot {plot}: give a .png file name")
    m = resolve_model(model)
    times = np.linspace(t_start, t_end, points)
    if t_end <= t_start:
        raise InputError(f"--t-end {t_end} must be after --t-start {t_start}")
    sol = run(m, times, t0=t_start, params=parse_assignments(param, "--param") or None,
              y0=parse_assignments(init, "--init") or None, rtol=rtol, atol=atol,
              max_steps=max_steps)
    out.parent.mkdir(parents=True, exist_ok=True)
    sol.to_pandas().to_csv(out)
    typer.echo(f"wrote {out} ({points} times x {len(sol.names)} series)")
    if plot is not None:
        from ..report.plots import plot_solution

        plot_solution(sol, plot, title=m.name)
        typer.echo(f"wrote {plot}")
