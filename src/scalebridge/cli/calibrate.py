"""``scalebridge fit``: multi-start calibration of a PEtab problem."""

from __future__ import annotations

import math
from pathlib import Path

import typer

from ..errors import InputError


def load_problem(path: Path):
    """A PEtab problem from its YAML file."""
    from ..petab import load_petab

    if path.suffix.lower() not in (".yaml", ".yml"):
        raise InputError(f"{path}: give the PEtab problem's YAML file")
    return load_petab(path)


def fit(
    problem: Path = typer.Argument(..., help="The PEtab problem (YAML file)."),
    starts: int = typer.Option(20, "--starts", help="Number of starts (Latin hypercube)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the start points."),
    out: Path = typer.Option(..., "--out", help="Output directory (resumed if it holds "
                             "finished starts)."),
    optimizer: str = typer.Option("fides", "--optimizer", help="fides, trf or lbfgs."),
    max_iter: int = typer.Option(500, "--max-iter", help="Iterations per start."),
    scheduler: str = typer.Option(None, "--scheduler", help="Dask scheduler HOST:PORT (or "
                                  "dask://HOST:PORT) to run the starts on."),
) -> None:
    """Fit PROBLEM from STARTS start points; write OUT/result.json, OUT/waterfall.png and
    OUT/fit.png."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..infer.fit import fit as run_fit
    from ..report.calibration import plot_fit

    pb = load_problem(problem)
    executor = None
    if scheduler:
        executor = scheduler if "://" in scheduler else f"dask://{scheduler}"
    best = [math.inf]
    columns = (TextColumn("fit {task.fields[name]}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("best NLL {task.fields[best]}"), TimeElapsedColumn())
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task("fit", total=starts, name=pb.name, best="-")

        def step(rec):
            nll = rec["nll"]
            if nll is not None and math.isfinite(nll) and nll < best[0]:
                best[0] = nll
            bar.update(task, advance=1,
                       best=f"{best[0]:.4f}" if math.isfinite(best[0]) else "-")

        res = run_fit(pb, n_starts=starts, seed=seed, optimizer=optimizer, out=out,
                      max_iter=max_iter, executor=executor, progress=step)
        bar.update(task, completed=starts, best=f"{res.best_nll:.4f}")
    res.waterfall(out / "waterfall.png")
    if res.best is not None:
        plot_fit(pb, res.best_x, out / "fit.png")
    typer.echo(f"best NLL {res.best_nll:.6f}; {res.n_converged}/{res.n_starts} starts within "
               f"1.92 of it; {len(res.failed)} failed; results in {out / 'result.json'}")
