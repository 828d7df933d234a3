"""``scalebridge sensitivity``: global sensitivity of a model output (Sobol' or Morris)."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import InputError
from .common import parse_vary, resolve_model

METHODS = ("sobol", "morris")


def _executor(scheduler: str | None, workers: int | None):
    """A Dask address for ``--scheduler``, threads for ``--workers``, else in-process (the
    vmapped batches already use the machine)."""
    if scheduler:
        if workers is not None:
            raise InputError("--workers and --scheduler exclude each other: a Dask cluster "
                             "has its own workers")
        return scheduler if "://" in scheduler else f"dask://{scheduler}"
    if workers is not None:
        if workers < 1:
            raise InputError(f"--workers {workers}: need at least 1")
        return f"threads:{workers}"
    return None


def sensitivity(
    model: str = typer.Argument(..., help="A zoo model name, an SBML file or a saved model."),
    output: str = typer.Option(..., "--output", help="Output: NAME@T (value at time T), "
                               "final:NAME, max:NAME, min:NAME, tpeak:NAME, tmin:NAME, "
                               "auc:NAME or mean:NAME (NAME: observable or state)."),
    out: Path = typer.Option(..., "--out", help="Output directory: indices.json, "
                             "indices.csv, indices.png; the simulations so far are kept in "
                             "evaluations.npz, and a rerun resumes from them."),
    method: str = typer.Option("sobol", "--method", help="sobol or morris."),
    samples: int = typer.Option(1024, "--samples", help="sobol: base sample size N (a power "
                                "of 2; N (d + 2) simulations); morris: trajectories "
                                "(r (d + 1) simulations)."),
    vary: list[str] = typer.Option(None, "--vary", help="Parameter range name=low:high, or "
                                   "name=low:high:log for log-uniform (repeatable). Default: "
                                   "every parameter with a non-zero value, log-uniform over "
                                   "value / 2 to value * 2."),
    t_end: float = typer.Option(None, "--t-end", help="End of the simulated span (default: "
                                "T of a NAME@T output; required otherwise)."),
    points: int = typer.Option(1001, "--points", help="Output grid for max/min/tpeak/auc."),
    seed: int = typer.Option(0, "--seed", help="Seed of the design and the bootstrap."),
    second_order: bool = typer.Option(False, "--second-order", help="sobol: also S2."),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap resamples for the "
                                  "confidence intervals (0: none)."),
    levels: int = typer.Option(4, "--levels", help="morris: grid levels (even)."),
    batch_size: int = typer.Option(256, "--batch-size", help="Simulations per compiled "
                                   "batch."),
    scheduler: str = typer.Option(None, "--scheduler", help="Dask scheduler HOST:PORT (or "
                                  "dask://HOST:PORT) to run the batches on."),
    workers: int = typer.Option(None, "--workers", help="Batches run side by side on this "
                                "many threads (default: one after the other, in-process)."),
    restart: bool = typer.Option(False, "--restart", help="Start over in OUT instead of "
                                 "resuming the run there."),
) -> None:
    """Sobol' indices (or Morris screening) of one OUTPUT of MODEL over its parameters;
    writes OUT/indices.json, OUT/indices.csv and OUT/indices.png."""
    from .._console import Progress
    from ..report.plots import save_plot
    from ..runtime.files import jsonable, write_json, write_text
    from ..sensitivity import ModelOutput, morris, sobol

    method = method.strip().lower()
    if method not in METHODS:
        raise InputError(f"--method {method!r}: use sobol or morris")
    if samples < 2:
        raise InputError(f"--samples {samples}: need at least 2")
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a directory; give a directory")
    executor = _executor(scheduler, workers)
    m = resolve_model(model)
    space = parse_vary(vary, m)
    mo = ModelOutput(m, output, space, t_end=t_end, points=points, batch_size=batch_size)
    bounds = mo.default_bounds(2.0) if space is None else space
    with Progress(f"{method} {m.name} {mo.spec} (simulations)", bar=True) as bar:
        if method == "sobol":
            res = sobol(mo, bounds, n_samples=samples, seed=seed, second_order=second_order,
                        n_bootstrap=bootstrap, executor=executor, progress=bar,
                        out=out, restart=restart)
        else:
            res = morris(mo, bounds, trajectories=samples, levels=levels, seed=seed,
                         n_bootstrap=bootstrap, executor=executor, progress=bar,
                         out=out, restart=restart)
    write_json(out / "indices.json", jsonable(res.to_dict()))
    table = res.to_pandas()
    write_text(out / "indices.csv", table.to_csv())
    save_plot(res.plot(title=f"{m.name}: {mo.spec}"), out / "indices.png")
    typer.echo(table.to_string(float_format=lambda v: f"{v:.4f}"))
    for line in _index_warnings(res, method, bootstrap):
        typer.echo(f"warning: {line}", err=True)
    if res.n_nonfinite:
        typer.echo(f"warning: {res.n_nonfinite} of {res.n_evaluations} simulations failed "
                   "or were not finite; their rows were left out", err=True)
    typer.echo(f"{res.n_evaluations} simulations; results in {out}")


def _index_warnings(res, method: str, bootstrap: int) -> list[str]:
    """Sobol' indices below zero (estimator noise larger than the effect) and results
    without confidence intervals say so, rather than print numbers that look exact."""
    import numpy as np

    out = []
    if method == "sobol":
        for label, values in (("S1", res.S1), ("ST", res.ST)):
            neg = [f"{n} ({v:.3g})" for n, v in zip(res.names, np.asarray(values), strict=True)
                   if v < 0]
            if neg:
                out.append(f"{label} is negative for {', '.join(neg)}: the estimate is "
                           "dominated by sampling noise; raise --samples")
    if bootstrap == 0:
        out.append("--bootstrap 0: no confidence intervals, so nothing shows how precise "
                   "these indices are")
    return out
