"""``scalebridge explore``: Bayesian optimisation or active learning over a model output."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import InputError
from .common import parse_vary, resolve_model


def explore(
    model: str = typer.Argument(..., help="A zoo model name, an SBML file or a saved model."),
    output: str = typer.Option(..., "--output", help="Output: NAME@T (value at time T), "
                               "final:NAME, max:NAME, min:NAME, tpeak:NAME, tmin:NAME, "
                               "auc:NAME or mean:NAME (NAME: observable or state)."),
    vary: list[str] = typer.Option(..., "--vary", help="Parameter range name=low:high, or "
                                   "name=low:high:log to search in log scale (repeatable)."),
    out: Path = typer.Option(..., "--out", help="Output directory: explore.json (every "
                             "evaluation; resumed if present) and explore.png."),
    budget: int = typer.Option(30, "--budget", help="Number of simulations."),
    acquisition: str = typer.Option("ei", "--acquisition", help="ei (expected improvement), "
                                    "ucb (confidence bound) or variance (active learning: a "
                                    "surrogate accurate over the whole range)."),
    maximize: bool = typer.Option(False, "--maximize", help="Maximise the output (default: "
                                  "minimise)."),
    t_end: float = typer.Option(None, "--t-end", help="End of the simulated span (default: "
                                "T of a NAME@T output; required otherwise)."),
    n_initial: int = typer.Option(None, "--initial", help="Size of the initial Sobol' design "
                                  "(default 2 (d + 1))."),
    batch_size: int = typer.Option(1, "--batch-size", help="Simulations proposed per round "
                                   "(local penalisation)."),
    points: int = typer.Option(1001, "--points", help="Output grid for max/min/tpeak/auc."),
    seed: int = typer.Option(0, "--seed", help="Seed of the design and the search."),
    restart: bool = typer.Option(False, "--restart", help="Start over in OUT instead of "
                                 "resuming the run there."),
) -> None:
    """Search the --vary ranges of MODEL's parameters for the best OUTPUT (Bayesian
    optimisation), or learn OUTPUT over them (--acquisition variance); writes OUT/explore.json
    and OUT/explore.png and prints the best point."""
    import warnings

    from .._console import Progress
    from ..report.plots import save_plot
    from ..sensitivity.outputs import ModelOutput
    from ..surrogate.acquisition import ACQUISITIONS
    from ..surrogate.explore import explore as run_explore

    acquisition = acquisition.strip().lower()
    if acquisition not in ACQUISITIONS:
        raise InputError(f"--acquisition {acquisition!r}: use {', '.join(ACQUISITIONS)}")
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a directory; give a directory")
    m = resolve_model(model)
    space = parse_vary(vary, m)
    if space is None:
        raise InputError("give at least one --vary name=low:high")
    mo = ModelOutput(m, output, space, t_end=t_end, points=points)
    d = space.size
    n0 = n_initial if n_initial is not None else 2 * (d + 1)
    if budget < n0:
        raise InputError(f"--budget {budget}: smaller than the initial design of {n0} "
                         "simulations; raise --budget or lower --initial")
    with Progress(f"explore {m.name} {mo.spec}", bar=True) as bar:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            res = run_explore(mo, space, budget=budget, acquisition=acquisition,
                              n_initial=n_initial, batch_size=batch_size, seed=seed, out=out,
                              progress=bar, minimize=not maximize, restart=restart)
    save_plot(res, out / "explore.png")
    params = ", ".join(f"{k}={v:.6g}" for k, v in res.best_params.items())
    if acquisition == "variance":
        err = res.error
        typer.echo(f"surrogate of {mo.spec} from {len(res.evaluations)} simulations: mean "
                   f"predictive sd {err['mean_std']:.4g} (max {err['max_std']:.4g}); best seen "
                   f"{res.best_y:.6g} at {params or '-'}")
    else:
        what = "max" if maximize else "min"
        typer.echo(f"best ({what}) {mo.spec} = {res.best_y:.6g} at {params or '-'} after "
                   f"{len(res.evaluations)} simulations")
    if res.n_failed:
        typer.echo(f"warning: {res.n_failed} simulations failed (recorded with y = null)",
                   err=True)
    for w in caught:
        if "non-finite" not in str(w.message):
            typer.echo(f"warning: {w.message}", err=True)
    typer.echo(f"results in {out / 'explore.json'}")
