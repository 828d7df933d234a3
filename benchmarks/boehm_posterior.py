"""Bayesian posterior of the Boehm et al. (2014) JAK-STAT PEtab problem with NUTS.

``scalebridge.infer.sample.sample`` (numpyro NUTS on the potential ``nll(x) - log prior``,
uniform priors in the scaled bounds [-5, 5] (log10) since the PEtab file gives none) on
tests/data/petab/Boehm_JProteomeRes2014, 9 parameters, at the problem's default ODE
tolerances (rtol 1e-8, atol 1e-10). In one run:

1. the cost of one NLL gradient (``jax.value_and_grad(problem.nll_jax)``, forward
   sensitivities through the ODE solver): compile time apart from the median time per
   call over jittered points, single and ``vmap``-ed over 4 chains;
2. ``chain_method="vectorized"`` against ``"sequential"`` on the same short run (same
   seed and keys, so the same trajectories): wall time per chain-iteration after compile;
   the main run uses the faster unless ``--chain-method`` says otherwise;
3. the main run (default 4 chains x 1000 warmup + 1000 draws), checkpointed in
   ``--run-dir`` so that an interrupted run resumes; targets: rank-normalised split
   R-hat <= 1.01 and bulk ESS >= 400 for every parameter (Vehtari et al. 2021), and the
   same diagnostics from ArviZ's ``summary`` of ``PosteriorResult.to_arviz()`` beside them;
4. posterior predictive bands per observable (200 thinned draws);
5. a peer check: pyPESTO 0.7's AdaptiveMetropolisSampler on its RoadRunner (CVODE)
   objective, same bounds and tolerances, one chain from the nominal parameters of
   ``--pypesto-iterations`` iterations (first half discarded as burn-in): marginal medians
   and 95% intervals side by side and ESS per second of both.

Writes benchmarks/results/boehm_posterior.json (rewritten atomically after each phase) and
boehm_posterior_traces.png, _marginals.png, _pairs.png, _predictive.png.

    nohup python benchmarks/boehm_posterior.py > /tmp/boehm_posterior.log 2>&1 &
    python benchmarks/boehm_posterior.py --warmup 200 --samples 200 --compare 0 \
        --pypesto-iterations 0
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import scalebridge as sb
from scalebridge.infer.sample import sample
from scalebridge.report import save_plot

HERE = Path(__file__).parent
YAML = (HERE.parent / "tests" / "data" / "petab" / "Boehm_JProteomeRes2014"
        / "Boehm_JProteomeRes2014.yaml")
PUBLISHED_OPTIMUM = 138.2220


def _num(v):
    v = float(v)
    return v if np.isfinite(v) else None


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1, allow_nan=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def gradient_timings(problem, n_calls: int = 20) -> dict:
    x = jnp.asarray(problem.x_nominal)
    rng = np.random.default_rng(0)
    out = {}
    single = jax.jit(jax.value_and_grad(problem.nll_jax))
    batched = jax.jit(jax.vmap(jax.value_and_grad(problem.nll_jax)))
    for name, fn, shape in (("single", single, (9,)), ("vmap4", batched, (4, 9))):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(x + 0.02 * rng.standard_normal(shape)))
        first = time.perf_counter() - t0
        ts = []
        for _ in range(n_calls):
            xx = x + 0.02 * rng.standard_normal(shape)
            t0 = time.perf_counter()
            jax.block_until_ready(fn(xx))
            ts.append(time.perf_counter() - t0)
        med = float(np.median(ts))
        out[name] = dict(compile_s=first - med, ms_per_call=1e3 * med,
                         ms_per_gradient=1e3 * med / (4 if name == "vmap4" else 1))
    v, g = single(x)
    _, g_ref = problem.nll_and_grad(problem.x_nominal)
    out["nll_at_nominal"] = float(v)
    out["grad_matches_nll_and_grad"] = bool(np.allclose(g, g_ref, rtol=1e-6, atol=1e-8))
    return out


def compare_chain_methods(problem, n_warmup: int, n_samples: int) -> dict:
    rows = {}
    for method in ("vectorized", "sequential"):
        log(f"chain-method comparison: {method}")
        t0 = time.perf_counter()
        r = sample(problem, n_chains=4, n_warmup=n_warmup, n_samples=n_samples, seed=0,
                   chain_method=method)
        wall = time.perf_counter() - t0
        run_s = r.timings["warmup_s"] + r.timings["sampling_s"]
        steps = int(r.stats["num_steps"].sum() + r.stats["warmup_num_steps"].sum())
        rows[method] = dict(wall_s=wall, **r.timings,
                            ms_per_chain_iteration=1e3 * run_s / (4 * (n_warmup + n_samples)),
                            leapfrog_steps=steps, ms_per_leapfrog_step=1e3 * run_s / steps,
                            mean_num_steps_sampling=float(r.stats["num_steps"].mean()))
        rows[method]["first_draws"] = r.samples[:, 0].tolist()
    v, s = rows["vectorized"], rows["sequential"]
    same = np.allclose(v.pop("first_draws"), s.pop("first_draws"), rtol=1e-6, atol=1e-8)
    return dict(n_chains=4, n_warmup=n_warmup, n_samples=n_samples, rows=rows,
                same_draws=bool(same),
                sequential_speedup=v["ms_per_chain_iteration"] / s["ms_per_chain_iteration"])


def pypesto_peer(problem, iterations: int, seed: int = 0) -> dict:
    import petab.v1 as petab
    import pypesto
    import pypesto.petab
    import pypesto.sample as ps

    pp = petab.Problem.from_yaml(str(YAML))
    inner = pypesto.petab.PetabImporter(pp, simulator_type="roadrunner").create_problem()
    opts = inner.objective.solver_options
    opts.relative_tolerance, opts.absolute_tolerance = problem.rtol, problem.atol
    opts.maximum_num_steps = problem.max_steps
    names = [inner.x_names[i] for i in inner.x_free_indices]
    assert names == list(problem.parameter_ids), names
    lb, ub = np.asarray(inner.lb, float), np.asarray(inner.ub, float)
    assert np.allclose(lb, problem.lower) and np.allclose(ub, problem.upper)

    def fun(x):
        return float(inner.objective(np.asarray(x, float)))

    nll0 = fun(problem.x_nominal)
    pproblem = pypesto.Problem(objective=pypesto.Objective(fun=fun), lb=lb, ub=ub,
                               x_names=names)
    np.random.seed(seed)  # pyPESTO's Metropolis samplers draw from numpy's global state
    t0 = time.perf_counter()
    sampler = ps.AdaptiveMetropolisSampler(options={"show_progress": False})
    res = ps.sample(pproblem, n_samples=iterations, sampler=sampler,
                    x0=np.asarray(problem.x_nominal, float))
    wall = time.perf_counter() - t0
    trace = np.asarray(res.sample_result.trace_x)[0]
    kept = trace[trace.shape[0] // 2:]
    from numpyro.diagnostics import effective_sample_size

    ess = [float(effective_sample_size(kept[None, :, k])) for k in range(kept.shape[1])]
    q = np.quantile(kept, (0.025, 0.5, 0.975), axis=0)
    return dict(sampler="pypesto.sample.AdaptiveMetropolisSampler (defaults), RoadRunner "
                        "objective, uniform prior in the bounds",
                iterations=iterations, burn_in=iterations // 2, wall_s=wall,
                nll_at_nominal=nll0, ess=ess, min_ess=min(ess),
                min_ess_per_s=min(ess) / wall,
                quantiles={pid: [float(q[j, k]) for j in range(3)]
                           for k, pid in enumerate(names)})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chain-method", default="auto",
                    help="vectorized, sequential or auto (the faster in the comparison)")
    ap.add_argument("--compare", type=int, default=100,
                    help="warmup iterations of the chain-method comparison (0: skip); it "
                         "samples half as many draws")
    ap.add_argument("--pypesto-iterations", type=int, default=400_000)
    ap.add_argument("--run-dir", default="/tmp/boehm_posterior_run")
    ap.add_argument("--out", default=str(HERE / "results" / "boehm_posterior.json"))
    ap.add_argument("--keep", action="store_true",
                    help="keep the gradient timings, chain-method comparison and pyPESTO run "
                         "of an existing --out file instead of measuring them again (the "
                         "main run is loaded from --run-dir when finished there)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    stem = out.with_suffix("")
    problem = sb.load_petab(YAML)
    data = dict(
        problem="Boehm_JProteomeRes2014", parameter_ids=list(problem.parameter_ids),
        scales=list(problem.space.scales), bounds=[-5, 5], prior="uniform in bounds",
        rtol=problem.rtol, atol=problem.atol, published_optimum_nll=PUBLISHED_OPTIMUM,
        machine=dict(platform=platform.platform(), python=platform.python_version(),
                     jax=jax.__version__, cpus=os.cpu_count(),
                     devices=[str(d) for d in jax.devices()]))
    import numpyro

    data["machine"]["numpyro"] = numpyro.__version__
    old = json.loads(out.read_text()) if args.keep and out.is_file() else {}
    for k in ("gradient", "chain_methods"):
        if k in old:
            data[k] = old[k]

    if "gradient" not in data:
        log("gradient timings")
        data["gradient"] = gradient_timings(problem)
        log(data["gradient"])
        write_json(out, data)

    if args.compare > 0 and "chain_methods" not in data:
        data["chain_methods"] = compare_chain_methods(problem, args.compare, args.compare // 2)
        log(data["chain_methods"])
        write_json(out, data)

    method = args.chain_method
    if method == "auto":
        method = "sequential"
        if "chain_methods" in data and data["chain_methods"]["sequential_speedup"] < 1:
            method = "vectorized"
    args.chain_method = method
    log(f"main run: {args.chains} chains x ({args.warmup} warmup + {args.samples} draws), "
        f"{args.chain_method}")
    t0 = time.perf_counter()

    def progress(done, total, **info):
        log(f"{info['phase']} {done}/{total}, divergences "
            f"{info['divergences']} (warmup {info['warmup_divergences']}), "
            f"{info['elapsed_s']:.0f} s")

    res = sample(problem, n_chains=args.chains, n_warmup=args.warmup, n_samples=args.samples,
                 seed=args.seed, chain_method=args.chain_method, progress=progress,
                 out=args.run_dir)
    wall = time.perf_counter() - t0
    summ = res.summary()
    log("\n" + summ.to_string())
    j = res.report()
    d = res.diagnostics
    data["posterior"] = dict(
        settings=j["settings"], timings=j["timings"],
        total_s=sum(j["timings"].values()),
        loaded_from_run_dir=wall < 0.5 * (res.timings["warmup_s"] + res.timings["sampling_s"]),
        diagnostics=j["diagnostics"],
        targets=dict(rhat_max=1.01, ess_bulk_min=400, reached=res.converged()),
        ess_bulk_per_s=float(np.min(d["ess_bulk"])
                             / (res.timings["warmup_s"] + res.timings["sampling_s"])),
        summary=j["summary"],
        nll_range_of_draws=None)
    import arviz as az

    az_summ = az.summary(res.to_arviz(), round_to="none")
    data["posterior"]["arviz"] = dict(
        version=az.__version__, rhat=[float(v) for v in az_summ["r_hat"]],
        ess_bulk=[float(v) for v in az_summ["ess_bulk"]],
        max_abs_rhat_difference=float(np.max(np.abs(az_summ["r_hat"].to_numpy() - d["rhat"]))),
        max_rel_ess_bulk_difference=float(np.max(np.abs(az_summ["ess_bulk"].to_numpy()
                                                        / d["ess_bulk"] - 1))))
    log(f"ArviZ {az.__version__}: R-hat differs by at most "
        f"{data['posterior']['arviz']['max_abs_rhat_difference']:.2g}, bulk ESS by "
        f"{data['posterior']['arviz']['max_rel_ess_bulk_difference']:.2%}")
    nll = [problem.nll(x) for x in res.flat()[:: max(1, res.flat().shape[0] // 200)]]
    data["posterior"]["nll_range_of_draws"] = [min(nll), float(np.median(nll)), max(nll)]
    write_json(out, data)

    log("plots and posterior predictive")
    save_plot(res.plot_traces(), f"{stem}_traces.png")
    save_plot(res.plot_marginals(), f"{stem}_marginals.png")
    save_plot(res.plot_marginals(pairs=True), f"{stem}_pairs.png")
    t0 = time.perf_counter()
    pred = res.predictive(problem, n_draws=200, seed=0)
    save_plot(pred, f"{stem}_predictive.png")
    data["predictive"] = dict(n_draws=pred.n_draws, coverage_95=pred.coverage,
                              wall_s=time.perf_counter() - t0)
    write_json(out, data)

    if (args.pypesto_iterations > 0 and "pypesto" in old
            and old["pypesto"].get("iterations") == args.pypesto_iterations):
        data["pypesto"] = old["pypesto"]  # --keep: the peer run does not depend on ours
        write_json(out, data)
    elif args.pypesto_iterations > 0:
        log(f"pyPESTO adaptive Metropolis, {args.pypesto_iterations} iterations")
        peer = pypesto_peer(problem, args.pypesto_iterations)
        ours = {pid: [float(summ.loc[pid, c]) for c in ("q2.5", "q50", "q97.5")]
                for pid in problem.parameter_ids}
        peer["scalebridge_quantiles"] = ours
        peer["max_abs_median_difference"] = max(
            abs(ours[p][1] - peer["quantiles"][p][1]) for p in problem.parameter_ids)
        peer["scalebridge_min_ess_per_s"] = data["posterior"]["ess_bulk_per_s"]
        data["pypesto"] = peer
        log({k: v for k, v in peer.items() if k not in ("quantiles", "scalebridge_quantiles")})
        write_json(out, data)
    log("done")


if __name__ == "__main__":
    main()
