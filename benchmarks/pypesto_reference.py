"""Peer reference for the Boehm et al. (2014) PEtab problem, computed by pyPESTO alone.

Writes ``tests/data/reference/boehm_pypesto.json``, which tests/test_profile.py and
tests/test_sample.py compare scalebridge's profile intervals and posterior quantiles with.
Nothing here imports scalebridge: the likelihood is pyPESTO's RoadRunner objective (the PEtab
problem imported by petab + pyPESTO's ``PetabImporterRR``, simulated by libroadrunner's CVODE),
gradients are pyPESTO's central finite differences of it (``pypesto.objective.FD``), the
profiles are pyPESTO's optimisation-based profiler (``pypesto.profile.parameter_profile``,
L-BFGS-B inner optimisations) and the posterior is pyPESTO's adaptive Metropolis sampler
under a uniform prior in the bounds on the parameter scale (log10), the prior that
``scalebridge.infer.sample`` uses for a PEtab problem without priors.

Profile interval ends: pyPESTO's own ``calculate_approximate_ci`` interpolates the
likelihood ratio linearly between profile points; the ``ci`` written here interpolates
``-log(ratio)`` (the NLL difference, nearly quadratic) with the parabola through the three
profile points nearest to the crossing, which is exact for a quadratic profile. Both are
written; they differ by the interpolation error of the linear rule.

    python benchmarks/pypesto_reference.py                      # profiles and posterior
    python benchmarks/pypesto_reference.py --chains 4 --iterations 60000

The stored file was made by two processes, merged:

    python benchmarks/pypesto_reference.py --skip posterior --parameters k_phos \
        Epo_degradation_BaF3 sd_pSTAT5A_rel --step 0.05 --out /tmp/profiles.json
    python benchmarks/pypesto_reference.py --skip posterior --parameters k_imp_hetero \
        k_exp_homo sd_pSTAT5B_rel --step 0.05 --out /tmp/profiles2.json
    python benchmarks/pypesto_reference.py --skip profiles --chains 2 --iterations 40000 \
        --out /tmp/posterior.json
    python benchmarks/pypesto_reference.py --merge /tmp/profiles.json /tmp/profiles2.json \
        /tmp/posterior.json
    python benchmarks/pypesto_reference.py --skip profiles posterior   # importance sampling

The adaptive Metropolis chains (default options, 2 x 40,000 iterations) turned out narrower
than the posterior: every parameter's standard deviation is 8-18% below that of the
importance-sampling run, whose weights make it exact up to Monte Carlo error (ESS in the
file). The tests therefore hold the NUTS quantiles to the importance-sampling ones; the
Metropolis ones stay in the file as pyPESTO gives them.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
YAML = ROOT / "tests" / "data" / "petab" / "Boehm_JProteomeRes2014" / "Boehm_JProteomeRes2014.yaml"
OUT = ROOT / "tests" / "data" / "reference" / "boehm_pypesto.json"
PROFILED = ["k_phos", "Epo_degradation_BaF3", "k_imp_hetero", "sd_pSTAT5A_rel"]
CHI2_95_HALF = 1.9207294103470622  # chi2(1).ppf(0.95) / 2
QUANTILES = (0.025, 0.5, 0.975)


def pypesto_problem(rtol: float, atol: float):
    import petab.v1 as petab
    import pypesto.petab

    pp = petab.Problem.from_yaml(str(YAML))
    problem = pypesto.petab.PetabImporter(pp, simulator_type="roadrunner").create_problem()
    opts = problem.objective.solver_options
    opts.relative_tolerance, opts.absolute_tolerance = rtol, atol
    opts.maximum_num_steps = 100_000
    names = [problem.x_names[i] for i in problem.x_free_indices]
    pars = pp.parameter_df.loc[names]
    assert set(pars["parameterScale"]) == {"log10"}
    x_nominal = np.log10(pars["nominalValue"].to_numpy(float))
    return problem, names, x_nominal


def _crossing(xs, delta, side: str):
    """Where the NLL difference ``delta`` along the profile ``xs`` (sorted) reaches the 95%
    threshold on ``side``: parabola through the three points around the crossing (None if
    the profile ends below the threshold)."""
    i_opt = int(np.argmin(delta))
    idx = range(i_opt, -1, -1) if side == "lower" else range(i_opt, len(xs))
    prev = None
    for i in idx:
        if delta[i] >= CHI2_95_HALF and prev is not None:
            j = [i, prev, prev + (prev - i)]
            j = [k for k in j if 0 <= k < len(xs)][:3]
            if len(j) < 3:
                j = [i, prev]
            c = np.polyfit(xs[j], delta[j], len(j) - 1)
            c[-1] -= CHI2_95_HALF
            roots = [r.real for r in np.roots(c) if abs(r.imag) < 1e-12]
            lo, hi = sorted((xs[i], xs[prev]))
            inside = [r for r in roots if lo - 1e-12 <= r <= hi + 1e-12]
            assert inside, (side, xs[j], delta[j])
            return float(inside[0])
        prev = i
    return None


def profiles(problem, names, x_nominal, args) -> dict:
    import pypesto
    import pypesto.optimize as optimize
    import pypesto.profile as profile

    def fun(x):  # the importer's objective, on the 9 estimated parameters
        return float(problem.objective(np.asarray(x, float)))

    fd = pypesto.objective.FD(pypesto.Objective(fun=fun), grad=True, hess=False,
                              method="central", delta_fun=args.fd_step)
    fd_problem = pypesto.Problem(objective=fd, lb=problem.lb, ub=problem.ub,
                                 x_names=names)
    optimizer = optimize.ScipyOptimizer(method="L-BFGS-B",
                                        options={"ftol": 1e-14, "gtol": 1e-7, "maxiter": 500})
    t0 = time.perf_counter()
    result = optimize.minimize(fd_problem, optimizer=optimizer, n_starts=1,
                               startpoint_method=lambda n_starts, **kw: x_nominal[None, :],
                               progress_bar=False)
    best = result.optimize_result.list[0]
    opt_s = time.perf_counter() - t0
    print(f"optimum from the nominal point: NLL {best.fval:.6f} ({opt_s:.0f} s)", flush=True)
    options = profile.ProfileOptions(
        default_step_size_absolute=args.step / 2, min_step_size_absolute=args.step / 20,
        max_step_size_absolute=args.step, default_step_size_relative=0.0,
        min_step_size_relative=0.0, max_step_size_relative=0.0, step_size_precheck_mode="off")
    out = {}
    for pid in args.parameters:
        k = names.index(pid)
        t0 = time.perf_counter()
        result = profile.parameter_profile(problem=fd_problem, result=result,
                                           optimizer=optimizer, profile_index=[k],
                                           profile_options=options, progress_bar=False)
        prof = result.profile_result.list[-1][k]
        xs = np.asarray(prof.x_path)[k]
        nll = np.asarray(prof.fval_path)
        order = np.argsort(xs)
        xs, nll = xs[order], nll[order]
        delta = nll - best.fval
        lin = profile.calculate_approximate_ci(xs, np.exp(-delta), np.exp(-CHI2_95_HALF))
        lo, hi = _crossing(xs, delta, "lower"), _crossing(xs, delta, "upper")
        out[pid] = dict(estimate=float(best.x[k]), ci=[lo, hi],
                        ci_pypesto_linear_ratio=[float(v) for v in lin],
                        points=int(xs.size), max_step=float(np.max(np.diff(xs))),
                        min_delta=float(delta.min()), time_s=time.perf_counter() - t0,
                        path_x=xs.tolist(), path_delta=delta.tolist())
        print(f"  {pid}: [{lo}, {hi}] (pyPESTO linear-ratio {lin}), {xs.size} points, "
              f"{out[pid]['time_s']:.0f} s", flush=True)
    return dict(nll_opt=float(best.fval), x_opt=[float(v) for v in best.x],
                threshold=CHI2_95_HALF, rtol=args.profile_rtol, atol=args.profile_atol,
                fd_step=args.fd_step, max_profile_step=args.step,
                optimizer="pypesto.optimize.ScipyOptimizer(L-BFGS-B, ftol 1e-14, gtol 1e-7), "
                          "central finite-difference gradients (pypesto.objective.FD)",
                profiler="pypesto.profile.parameter_profile, adaptive_step_order_1",
                optimise_s=opt_s, parameters=out)


def posterior(problem, names, x_nominal, args) -> dict:
    import pypesto
    import pypesto.sample as sample
    from numpyro.diagnostics import effective_sample_size, split_gelman_rubin

    def fun(x):
        return float(problem.objective(np.asarray(x, float)))

    pproblem = pypesto.Problem(objective=pypesto.Objective(fun=fun), lb=problem.lb,
                               ub=problem.ub, x_names=names)
    chains, t0 = [], time.perf_counter()
    for c in range(args.chains):
        np.random.seed(args.seed + c)  # pyPESTO's Metropolis samplers use numpy's global state
        sampler = sample.AdaptiveMetropolisSampler(options={"show_progress": False})
        res = sample.sample(pproblem, n_samples=args.iterations, sampler=sampler,
                            x0=np.asarray(x_nominal, float))
        trace = np.asarray(res.sample_result.trace_x)[0]
        chains.append(trace[trace.shape[0] // 2:])
        print(f"  chain {c}: {time.perf_counter() - t0:.0f} s", flush=True)
    wall = time.perf_counter() - t0
    draws = np.stack(chains)  # (chains, kept, parameters)
    flat = draws.reshape(-1, draws.shape[-1])
    out = {}
    for k, pid in enumerate(names):
        ess = float(effective_sample_size(draws[:, :, k]))
        q = np.quantile(flat[:, k], QUANTILES)
        # dq/dp at each quantile (from the quantiles at p -+ 0.01): the Monte Carlo standard
        # error of a p-quantile from n effective draws is sqrt(p (1 - p) / n) dq/dp
        dqdp = [float((np.quantile(flat[:, k], p + 0.01) - np.quantile(flat[:, k], p - 0.01))
                      / 0.02) for p in QUANTILES]
        per_chain = np.quantile(draws[:, :, k], QUANTILES, axis=1)  # (3, chains)
        out[pid] = dict(quantiles=[float(v) for v in q], ess=ess, dq_dp=dqdp,
                        rhat=float(split_gelman_rubin(draws[:, :, k])),
                        chain_quantile_sd=[float(v) for v in per_chain.std(axis=1, ddof=1)],
                        mean=float(flat[:, k].mean()), sd=float(flat[:, k].std(ddof=1)))
    return dict(sampler="pypesto.sample.AdaptiveMetropolisSampler (default options), "
                        f"{args.chains} chains from the nominal point, numpy seeds "
                        f"{args.seed}..{args.seed + args.chains - 1}",
                prior="uniform in the bounds [-5, 5] on the log10 scale (pypesto.Problem "
                      "lb/ub: proposals outside are rejected)",
                rtol=args.sample_rtol, atol=args.sample_atol, iterations_per_chain=args.iterations,
                burn_in_per_chain=args.iterations // 2, quantile_levels=list(QUANTILES),
                wall_s=wall, parameters=out)


def _t_draws(rng, mean, cov, n, df=4):
    """n draws of a multivariate Student-t and their log densities (up to one constant)."""
    chol = np.linalg.cholesky(cov)
    z = rng.standard_normal((n, mean.size)) @ chol.T
    x = mean + z / np.sqrt(rng.chisquare(df, n) / df)[:, None]
    m = np.sum(np.linalg.solve(chol, (x - mean).T) ** 2, axis=0)
    return x, -0.5 * (df + mean.size) * np.log1p(m / df) - np.sum(np.log(np.diag(chol)))


def _weighted_quantile(x, w, p):
    order = np.argsort(x)
    cum = np.cumsum(w[order])
    return float(np.interp(p, cum - w[order] / 2, x[order]))


def importance(problem, names, start, args) -> dict:
    """The posterior by adaptive importance sampling (Cappé et al. 2004, Population Monte
    Carlo, J Comput Graph Stat 13:907): multivariate Student-t proposals (4 degrees of
    freedom), each stage's mean and covariance (inflated 1.5**2) taken from the weighted
    draws of the one before, starting from the adaptive-Metropolis mean and 1.5 x its
    standard deviations. Self-normalised weights exp(-NLL) / q under the uniform prior in
    the bounds; a draw outside them has weight zero. The sampler's tuning cannot bias the
    result (only its variance), which makes it the check on the Metropolis chains."""
    rng = np.random.default_rng(args.seed)
    lb, ub = np.asarray(problem.lb, float), np.asarray(problem.ub, float)
    mean = np.asarray([start[k]["mean"] for k in names])
    cov = np.diag((1.5 * np.asarray([start[k]["sd"] for k in names])) ** 2)
    t0, stages = time.perf_counter(), []
    for n in args.importance_stages:
        x, logq = _t_draws(rng, mean, cov, n)
        inside = np.all((x > lb) & (x < ub), axis=1)
        nll = np.full(n, np.inf)
        nll[inside] = [float(problem.objective(xi)) for xi in x[inside]]
        logw = np.where(np.isfinite(nll), -nll - logq, -np.inf)
        w = np.exp(logw - logw.max())
        w /= w.sum()
        ess = float(1.0 / np.sum(w**2))
        stages.append(dict(draws=n, ess=ess, seconds=time.perf_counter() - t0))
        print(f"  importance stage: {n} draws, ESS {ess:.0f}, "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
        mean = w @ x
        cov = 1.5**2 * ((x - mean) * w[:, None]).T @ (x - mean)
    out = {}
    for k, pid in enumerate(names):
        q = [_weighted_quantile(x[:, k], w, p) for p in QUANTILES]
        dqdp = [(_weighted_quantile(x[:, k], w, p + 0.01)
                 - _weighted_quantile(x[:, k], w, p - 0.01)) / 0.02 for p in QUANTILES]
        m = float(w @ x[:, k])
        out[pid] = dict(quantiles=q, ess=ess, dq_dp=dqdp, mean=m,
                        sd=float(np.sqrt(w @ (x[:, k] - m) ** 2)))
    return dict(sampler="adaptive importance sampling (population Monte Carlo), multivariate "
                        f"Student-t proposals (df 4), numpy default_rng seed {args.seed}",
                prior="uniform in the bounds [-5, 5] on the log10 scale",
                rtol=args.sample_rtol, atol=args.sample_atol, stages=stages,
                quantile_levels=list(QUANTILES), ess=ess, wall_s=time.perf_counter() - t0,
                parameters=out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parameters", nargs="*", default=PROFILED)
    ap.add_argument("--step", type=float, default=0.04, help="largest profile step (log10)")
    ap.add_argument("--fd-step", type=float, default=1e-5)
    ap.add_argument("--profile-rtol", type=float, default=1e-10)
    ap.add_argument("--profile-atol", type=float, default=1e-12)
    ap.add_argument("--sample-rtol", type=float, default=1e-8)
    ap.add_argument("--sample-atol", type=float, default=1e-10)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--iterations", type=int, default=60_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--importance-stages", type=int, nargs="+", default=[8000, 20000, 100000],
                    help="draws of each adaptive importance-sampling stage")
    ap.add_argument("--skip", choices=["profiles", "posterior", "importance"], nargs="*",
                    default=[])
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--merge", nargs="+", metavar="JSON",
                    help="only merge the profiles and posterior of files written by runs with "
                         "--skip (two processes) into --out")
    args = ap.parse_args(argv)
    if args.merge:
        merged = {}
        for f in args.merge:
            part = json.loads(Path(f).read_text())
            prof = part.pop("profiles", None)
            merged.update({k: v for k, v in part.items()
                           if k not in merged or k in ("posterior", "importance")})
            if prof is None:
                continue
            if "profiles" not in merged:
                merged["profiles"] = prof | dict(command=[prof["command"]])
            else:  # the parameters of another profile run, from the same optimum
                old = merged["profiles"]
                assert abs(old["nll_opt"] - prof["nll_opt"]) < 1e-6
                old["parameters"].update(prof["parameters"])
                old["command"].append(prof["command"])
        Path(args.out).write_text(json.dumps(merged, indent=1) + "\n")
        print(f"wrote {args.out}")
        return

    import petab.v1 as petab
    import pypesto
    import roadrunner

    out = Path(args.out)
    command = "python benchmarks/pypesto_reference.py " + " ".join(sys.argv[1:])
    data = json.loads(out.read_text()) if out.exists() else {}
    data.update(
        problem="Boehm_JProteomeRes2014 (tests/data/petab/Boehm_JProteomeRes2014)",
        generated_by="benchmarks/pypesto_reference.py (pyPESTO only; scalebridge not imported)",
        date=datetime.date.today().isoformat(),
        versions=dict(pypesto=pypesto.__version__, roadrunner=roadrunner.__version__,
                      petab=petab.__version__, numpy=np.__version__,
                      python=platform.python_version()),
        parameter_scale="log10 (all estimated parameters)")
    if "posterior" not in args.skip:
        problem, names, x0 = pypesto_problem(args.sample_rtol, args.sample_atol)
        data["parameter_ids"] = names
        data["posterior"] = posterior(problem, names, x0, args) | dict(command=command)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(data, indent=1) + "\n")
    if "importance" not in args.skip:  # started from the Metropolis chains' moments
        problem, names, _ = pypesto_problem(args.sample_rtol, args.sample_atol)
        data["importance"] = (importance(problem, names, data["posterior"]["parameters"], args)
                              | dict(command=command))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(data, indent=1) + "\n")
    if "profiles" not in args.skip:
        problem, names, x0 = pypesto_problem(args.profile_rtol, args.profile_atol)
        data["nll_at_nominal"] = float(problem.objective(x0))
        data["parameter_ids"] = names
        data["profiles"] = profiles(problem, names, x0, args) | dict(command=command)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
