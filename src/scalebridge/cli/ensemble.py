"""``scalebridge ensemble``: simulate many parameter sets sampled from ranges."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from ..errors import InputError
from .common import check_size, parse_vary, resolve_model


def ensemble(
    model: str = typer.Argument(..., help="A zoo model name, an SBML file or a saved model."),
    t_end: float = typer.Option(..., "--t-end", help="End time of the simulation."),
    vary: list[str] = typer.Option(..., "--vary", help="Parameter range name=low:high, or "
                                   "name=low:high:log for log-uniform (repeatable)."),
    samples: int = typer.Option(100, "--samples", help="Number of parameter sets."),
    points: int = typer.Option(101, "--points", help="Number of output times."),
    seed: int = typer.Option(0, "--seed", help="Seed of the uniform sampling."),
    batch_size: int = typer.Option(256, "--batch-size", help="Members per compiled batch."),
    rtol: float = typer.Option(1e-8, "--rtol", help="Relative tolerance."),
    atol: float = typer.Option(1e-10, "--atol", help="Absolute tolerance."),
    out: Path = typer.Option(..., "--out", help="CSV file (long format: member, time, ...)."),
) -> None:
    """Simulate MODEL for SAMPLES parameter sets drawn uniformly from the --vary ranges."""
    from .._console import Progress
    from ..simulate import simulate_ensemble

    if samples < 1:
        raise InputError(f"--samples {samples}: need at least 1")
    if out.suffix.lower() != ".csv":
        raise InputError(f"--out {out}: give a .csv file name")
    if points < 2:
        raise InputError(f"--points {points}: need at least 2 output times")
    m = resolve_model(model)
    check_size(float(samples) * points * (len(m.state_names) + len(m.observable_names)),
               f"--samples {samples} x --points {points}", "lower --samples or --points")
    space = parse_vary(vary, m)
    if space is None:
        raise InputError("give at least one --vary name=low:high")
    draws = space.from_unit(np.random.default_rng(seed).uniform(size=(samples, space.size)))
    cols = dict(zip(space.ids, draws.T, strict=True))
    times = np.linspace(0.0, t_end, points)
    with Progress(f"{m.name}: {samples} members", bar=True) as bar:
        ens = simulate_ensemble(m, cols, times, rtol=rtol, atol=atol, batch_size=batch_size,
                                progress=bar)
    frame = ens.to_xarray().to_dataframe().reset_index()
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    n_ok = int(np.sum(np.asarray(ens.success)))
    typer.echo(f"wrote {out} ({samples} members, {n_ok} solved, {points} times)")
    if n_ok < samples:
        typer.echo(f"warning: {samples - n_ok} members failed (NaN rows, success=False)",
                   err=True)
