"""``scalebridge simulate``: simulate one model, write a CSV and optionally a plot; with
``--grid``, a spatial model on a grid, written as fields (``.npz``) with optional plots
and an animation."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import typer

from ..errors import InputError
from .common import (
    check_size,
    parse_assignments,
    resolve_model,
    resolve_spatial,
    spatial_fields,
    warn_coarse_front,
)


def simulate(
    model: str = typer.Argument(..., help="A zoo model name (see `scalebridge models`), an "
                                          "SBML file (.xml) or a saved model (.npz); with "
                                          "--grid a spatial model: fisher_kpp, "
                                          "porous_fisher_kpp, gray_scott, aliev_panfilov, "
                                          "fitzhugh_nagumo, beeler_reuter."),
    t_end: float = typer.Option(..., "--t-end", help="End time of the simulation."),
    points: int = typer.Option(101, "--points", help="Number of output times from t0 to t_end."),
    t_start: float = typer.Option(0.0, "--t-start", help="Start time t0."),
    param: list[str] = typer.Option(None, "--param", help="Parameter override name=value "
                                                            "(repeatable)."),
    init: list[str] = typer.Option(None, "--init", help="Initial state override name=value "
                                                          "(repeatable)."),
    rtol: float = typer.Option(None, "--rtol", help="Relative tolerance (default 1e-8; with "
                                                    "--grid the spatial model's own)."),
    atol: float = typer.Option(None, "--atol", help="Absolute tolerance (default 1e-10; with "
                                                    "--grid the spatial model's own)."),
    max_steps: int = typer.Option(None, "--max-steps", help="Solver step limit (default "
                                                             "100000; 1000000 with --grid)."),
    out: Path = typer.Option(..., "--out", help="CSV file to write (time, states, observables);"
                                                " with --grid an .npz file of the fields."),
    plot: Path = typer.Option(None, "--plot", help="PNG file for a plot of all series (with "
                                                   "--grid: kymograph/snapshots)."),
    grid: str = typer.Option(None, "--grid", help="Simulate a spatial model on N nodes (1D, "
                                                  "e.g. 200) or NXxNY nodes (2D, e.g. 100x100)."),
    animate: Path = typer.Option(None, "--animate", help="With --grid: animation of the field "
                                                         "over time (.gif; .mp4 needs ffmpeg)."),
    fps: int = typer.Option(15, "--fps", help="Frames per second of --animate."),
) -> None:
    """Simulate MODEL from t0 to t_end and write the trajectories as CSV (or, with --grid,
    the fields of a spatial model as .npz)."""
    if points < 2:
        raise InputError(f"--points {points}: need at least 2 output times")
    check_size(float(points), f"--points {points}", "lower --points")
    if plot is not None and plot.suffix.lower() != ".png":
        raise InputError(f"--plot {plot}: give a .png file name")
    if t_end <= t_start:
        raise InputError(f"--t-end {t_end} must be after --t-start {t_start}")
    times = np.linspace(t_start, t_end, points)
    params = parse_assignments(param, "--param") or None
    if grid is not None:
        _simulate_grid(model, grid, times, params, init, rtol, atol, max_steps, out, plot,
                       animate, fps)
        return
    if animate is not None:
        raise InputError(f"--animate {animate}: animations are for spatial models; add --grid")
    if out.suffix.lower() != ".csv":
        raise InputError(f"--out {out}: the table is written as CSV; give a .csv file name")
    from ..simulate import simulate as run

    m = resolve_model(model)
    sol = run(m, times, t0=t_start, params=params,
              y0=parse_assignments(init, "--init") or None,
              rtol=1e-8 if rtol is None else rtol, atol=1e-10 if atol is None else atol,
              max_steps=100_000 if max_steps is None else max_steps)
    out.parent.mkdir(parents=True, exist_ok=True)
    sol.to_pandas().to_csv(out)
    typer.echo(f"wrote {out} ({points} times x {len(sol.names)} series)")
    if plot is not None:
        from ..report.plots import plot_solution

        plot_solution(sol, plot, title=m.name)
        typer.echo(f"wrote {plot}")


def _simulate_grid(name, grid, times, params, init, rtol, atol, max_steps, out, plot,
                   animate, fps):
    """``simulate --grid``: a spatial zoo model, written as fields."""
    from ..io import save
    from ..pde.fields import Fields
    from ..simulate import simulate as run

    if out.suffix.lower() != ".npz":
        raise InputError(f"--out {out}: with --grid the fields are written as a NumPy archive; "
                         "give a .npz file name")
    if animate is not None and animate.suffix.lower() not in (".gif", ".mp4"):
        raise InputError(f"--animate {animate}: give a .gif (or .mp4) file name")
    if init:
        raise InputError("--init sets single states and does not apply with --grid; the "
                         "spatial models start from their own initial fields")
    setup = resolve_spatial(name, grid)
    m = setup.model
    shape = "x".join(map(str, m.rhs.grid.shape))
    typer.echo(f"simulating {m.name} on {shape} nodes ({len(m.state_names)} states) ...")
    start = time.perf_counter()
    sol = run(m, times, t0=float(times[0]), params=params, solver=setup.solver,
              rtol=setup.rtol if rtol is None else rtol, atol=setup.atol if atol is None else atol,
              max_steps=1_000_000 if max_steps is None else max_steps)
    ds = spatial_fields(sol, setup)
    save(Fields(ds, {"model": setup.name, "grid": shape,
                     "parameters": dict(zip(m.parameter_names, map(float, m.param_array(params)),
                                            strict=True))}), out)
    typer.echo(f"wrote {out} ({len(times)} times x {shape} nodes x {len(ds.data_vars)} fields, "
               f"{time.perf_counter() - start:.1f} s)")
    warn_coarse_front(sol, m)
    if plot is not None:
        from ..report.fields import plot_fields

        plot_fields(ds, setup.variable, plot, title=f"{m.name} ({setup.variable})")
        typer.echo(f"wrote {plot}")
    if animate is not None:
        from ..report.fields import animate_field

        animate_field(ds, setup.variable, animate, fps=fps)
        typer.echo(f"wrote {animate}")
