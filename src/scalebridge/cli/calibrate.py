"""``scalebridge fit``, ``profile`` and ``sample``: calibration and uncertainty of a PEtab
problem."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import InputError
from ..runtime.files import write_text


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
    workers: int = typer.Option(None, "--workers", help="Starts run side by side on this "
                                "machine (default: one per CPU core)."),
    restart: bool = typer.Option(False, "--restart", help="Start over in OUT instead of "
                                 "resuming the run there."),
) -> None:
    """Fit PROBLEM from STARTS start points; write OUT/result.json, OUT/waterfall.png and
    OUT/fit.png."""
    from .._console import Progress
    from ..infer.fit import fit as run_fit
    from ..report.calibration import plot_fit
    from ..report.plots import save_plot

    pb = load_problem(problem)
    executor = _executor(scheduler, workers)
    with Progress(f"fit {pb.name}", bar=True) as bar:
        res = run_fit(pb, n_starts=starts, seed=seed, optimizer=optimizer, out=out,
                      max_iter=max_iter, executor=executor, progress=bar, restart=restart)
    if res.best is None:
        first = res.records[0]["message"] if res.records else ""
        raise InputError(f"no start of {pb.name} succeeded ({len(res.failed)} failed; the "
                         f"first: {first}); results in {out / 'result.json'}")
    save_plot(res, out / "waterfall.png")
    plot_fit(pb, res.best_x, out / "fit.png")
    typer.echo(f"best NLL {res.best_nll:.6f}; {res.n_converged}/{res.n_starts} starts within "
               f"1.92 of it; {len(res.failed)} failed; results in {out / 'result.json'}")


def start_from(pb, fit_dir: Path | None):
    """The best parameters of a finished ``scalebridge fit`` (its result.json), or None
    (the problem's nominal values)."""
    import json

    from ..infer.fit import FitResult

    if fit_dir is None:
        return None
    path = fit_dir / "result.json"
    try:
        res = FitResult.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"--fit {fit_dir}: cannot read {path.name}: {exc}") from None
    if tuple(res.parameter_ids) != tuple(pb.parameter_ids):
        raise InputError(f"--fit {fit_dir}: the fit is of other parameters than this problem's")
    run = fit_dir / "run.json"
    if run.is_file():  # the fit must be of this problem as it is now, not of an older one
        from ..runtime.run import changed_input, read_run

        inputs = {k: {"source": src, "sha256": sha} for k, (src, sha) in pb.fingerprint().items()}
        what = changed_input(read_run(run), inputs)
        if what is not None:
            raise InputError(f"--fit {fit_dir}: {what} since that fit was made; fit again "
                             "first")
    if res.best_x is None:
        raise InputError(f"--fit {fit_dir}: no finished start in {path.name}")
    return res.best_x


def sampling_problems(res) -> list[str]:
    """What makes a posterior untrustworthy (Vehtari et al. 2021): R-hat above 1.01, bulk
    ESS below 400, divergent transitions after warmup."""
    import numpy as np

    ids = list(res.parameter_ids)
    out = []
    rhat, ess = np.asarray(res.rhat, float), np.asarray(res.ess_bulk, float)
    bad = [f"{ids[i]} ({rhat[i]:.3f})" for i in np.flatnonzero(~(rhat <= 1.01))]
    if bad:
        out.append(f"R-hat above 1.01 for {', '.join(bad)}: the chains disagree; run longer "
                   "(--warmup, --samples) or start from a fit (--fit)")
    low = [f"{ids[i]} ({ess[i]:.0f})" for i in np.flatnonzero(~(ess >= 400))]
    if low:
        out.append(f"bulk ESS below 400 for {', '.join(low)}: too few effective draws for "
                   "reliable intervals; run longer (--samples)")
    if res.n_divergences:
        out.append(f"{res.n_divergences} divergent transitions after warmup: the sampler "
                   "missed part of the posterior; results may be biased")
    return out


def _executor(scheduler: str | None, workers: int | None = None):
    """A Dask address for ``--scheduler``, else threads on this machine."""
    if scheduler:
        if workers is not None:
            raise InputError("--workers and --scheduler exclude each other: a Dask cluster "
                             "has its own workers")
        return scheduler if "://" in scheduler else f"dask://{scheduler}"
    if workers is not None and workers < 1:
        raise InputError(f"--workers {workers}: need at least 1")
    return "threads" if workers is None else f"threads:{workers}"


def profile(
    problem: Path = typer.Argument(..., help="The PEtab problem (YAML file)."),
    out: Path = typer.Option(..., "--out", help="Output directory (resumed if it holds "
                             "finished profiles)."),
    fit_dir: Path = typer.Option(None, "--fit", help="Directory of a finished `scalebridge "
                                 "fit`: profile around its best start (default: the "
                                 "nominal parameters)."),
    parameters: str = typer.Option(None, "--parameters", help="Comma-separated parameter "
                                   "ids (default: all estimated)."),
    alpha: float = typer.Option(0.95, "--alpha", help="Confidence level."),
    scheduler: str = typer.Option(None, "--scheduler", help="Dask scheduler HOST:PORT."),
    restart: bool = typer.Option(False, "--restart", help="Start over in OUT instead of "
                                 "resuming the run there."),
) -> None:
    """Profile likelihoods of PROBLEM's parameters: OUT/profiles.json, OUT/profiles.png and
    OUT/fisher_intervals.tsv."""
    from .._console import Progress
    from ..infer.profile import fisher_intervals
    from ..infer.profile import profile as run_profile
    from ..report.plots import save_plot

    pb = load_problem(problem)
    x = start_from(pb, fit_dir)
    chosen = [p.strip() for p in parameters.split(",") if p.strip()] if parameters else None
    with Progress(f"profile {pb.name}", bar=True) as bar:
        res = run_profile(pb, x, parameters=chosen, alpha=alpha, out=out,
                          executor=_executor(scheduler), progress=bar, restart=restart)
    save_plot(res, out / "profiles.png")
    write_text(out / "fisher_intervals.tsv",
               fisher_intervals(pb, res.x_opt, alpha=alpha).to_csv(sep="\t"))
    summary = res.summary()
    typer.echo(summary.to_string())
    typer.echo(f"results in {out / 'profiles.json'}")


def sample(
    problem: Path = typer.Argument(..., help="The PEtab problem (YAML file)."),
    out: Path = typer.Option(..., "--out", help="Output directory (checkpoints; resumed)."),
    fit_dir: Path = typer.Option(None, "--fit", help="Directory of a finished `scalebridge "
                                 "fit`: start the chains at its best start (default: the "
                                 "nominal parameters)."),
    chains: int = typer.Option(4, "--chains", help="Number of chains."),
    warmup: int = typer.Option(1000, "--warmup", help="Warmup iterations per chain."),
    samples: int = typer.Option(1000, "--samples", help="Draws per chain after warmup."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    prior: str = typer.Option("petab", "--prior", help="petab (the problem's objective "
                              "priors, uniform in the bounds otherwise) or uniform."),
    restart: bool = typer.Option(False, "--restart", help="Start over in OUT instead of "
                                 "resuming the run there."),
) -> None:
    """NUTS posterior of PROBLEM: OUT/posterior.json (R-hat, ESS, summary), OUT/samples.npz,
    and plots of traces, marginals and posterior predictive bands."""
    from .._console import Progress
    from ..infer.sample import sample as run_sample
    from ..report.plots import save_plot

    pb = load_problem(problem)
    x = start_from(pb, fit_dir)
    with Progress("NUTS", bar=True) as bar:
        res = run_sample(pb, n_chains=chains, n_warmup=warmup, n_samples=samples, seed=seed,
                         init=x, prior=prior, progress=bar, out=out, restart=restart)
    save_plot(res.plot_traces(), out / "traces.png")
    save_plot(res.plot_marginals(), out / "marginals.png")
    pred = res.predictive(pb)
    for name, table in (("predictive_bands.tsv", pred.bands),
                        ("predictive_at_data.tsv", pred.at_data)):
        write_text(out / name, table.to_csv(sep="\t", index=False))
    save_plot(pred, out / "predictive.png")
    typer.echo(res.summary().to_string())
    for problem_text in sampling_problems(res):
        typer.echo(f"warning: {problem_text}", err=True)
    typer.echo(f"max R-hat {max(res.rhat):.4f}, min bulk ESS {min(res.ess_bulk):.0f}, "
               f"{res.n_divergences} divergences, {chains * (warmup + samples)} iterations; "
               f"results in {out}")
