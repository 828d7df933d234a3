"""System identification: scalebridge SINDy against PySINDy on the same data, library and
threshold.

Systems (simulated with ``scalebridge.simulate``, rtol = atol = 1e-10):

- Lorenz (zoo ``lorenz``): 5,001 samples, dt = 0.002, from (-8, 8, 27);
- glycolytic oscillator (zoo ``yeast_glycolysis``, 7 species): 4 trajectories of 2,001
  samples, dt = 0.002 min, from the zoo's initial state and three states scaled by factors
  drawn from U(0.5, 1.5) (seed 1), so the degree-2 library is not rank deficient.

Noise: 0, 0.1 % and 1 % Gaussian, per state relative to that state's RMS (seed per case).

Equal settings: degree-2 polynomial library with constant (same term order in both tools,
checked), STLSQ with threshold 0.1, max_iter 20, unbias, ridge alpha 0.05 (Lorenz; both
tools' default) or 1e-6 (glycolysis: with alpha 0.05 the ridge swamps the Gram entries of the
small concentrations and both tools keep dozens of tiny spurious terms even on clean data), and
*identical* derivatives: the fourth-order central differences of
``scalebridge.discover.differentiate`` (two samples dropped at each end, where they are only
second order) are passed as ``x_dot`` to both tools, so the regression problems are the
same. Ensembles: 20 bootstrap (bagging) models, PySINDy's
``EnsembleOptimizer(STLSQ, bagging=True, n_models=20)`` (median of the coefficients) and
scalebridge's ``Ensemble(n_models=20)`` (median support, refitted by least squares).
Extra row: scalebridge's default (threshold picked by AICc, its own derivatives from ``t``).

Truth: Lorenz, the exact coefficients. Glycolysis: the S3, S4, S5 and S7 equations are
polynomial of degree 2 and are scored against their exact coefficients; S1, S2 and S6 contain
the rational hexokinase/PFK rate v1 = k1 S1 S6 / (1 + (S6/K1)^4), which no polynomial
library holds, so they are not scored against a truth; for them the table reports how far
the two tools' fits differ, ``||Xi_sb - Xi_ps|| / ||Xi_ps||`` (column ``rational_diff``).

Timing: each fit is repeated (median of ``--reps``, ensembles of PySINDy fewer), warm, i.e.
after one untimed fit that compiles scalebridge's JAX code; the first call's extra time is
reported as ``compile_s``. Pin to one core for stable numbers:

    taskset -c 0 python benchmarks/sysid.py            # full run (a few minutes)
    taskset -c 0 python benchmarks/sysid.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import functools
import platform
import time
import warnings
from importlib.metadata import version
from pathlib import Path

import jax
import numpy as np

import scalebridge as sb
from scalebridge.discover import (
    STLSQ,
    Ensemble,
    PolynomialLibrary,
    SINDy,
    differentiate,
    relative_error,
    support_matches,
)
from scalebridge.runtime.files import write_json

HERE = Path(__file__).parent
RESULTS = HERE / "results"
NOISES = (0.0, 1e-3, 1e-2)
THRESHOLD = 0.1
N_MODELS = 20


# ----- data and truth -------------------------------------------------------------------------
def lorenz_case(quick: bool):
    model = sb.load_zoo("lorenz")
    n = 2001 if quick else 5001
    t = np.arange(n) * 0.002
    x = np.asarray(sb.simulate(model, t, y0=[-8.0, 8.0, 27.0], rtol=1e-10, atol=1e-10).states)
    names = ["x", "y", "z"]
    terms = [t.name for t in PolynomialLibrary(degree=2).terms(names)]
    sigma, rho, beta = (p.value for p in model.parameters)
    xi = np.zeros((3, len(terms)))
    for row, entries in enumerate([{"x": -sigma, "y": sigma},
                                   {"x": rho, "y": -1.0, "x*z": -1.0},
                                   {"z": -beta, "x*y": 1.0}]):
        for term, c in entries.items():
            xi[row, terms.index(term)] = c
    return {"name": "lorenz", "t": t, "xs": [x], "names": names, "terms": terms,
            "xi_true": xi, "scored": np.ones(3, bool), "alpha": 0.05}


def glycolysis_case(quick: bool):
    model = sb.load_zoo("yeast_glycolysis")
    n = 1001 if quick else 2001
    t = np.arange(n) * 0.002
    x0 = np.asarray(model.initial, dtype=float)
    rng = np.random.default_rng(1)
    xs = []
    for k in range(4):
        y0 = x0 if k == 0 else x0 * rng.uniform(0.5, 1.5, x0.size)
        xs.append(np.asarray(sb.simulate(model, t, y0=y0, rtol=1e-10, atol=1e-10).states))
    names = [f"S{i}" for i in range(1, 8)]
    terms = [t.name for t in PolynomialLibrary(degree=2).terms(names)]
    p = {q.name: q.value for q in model.parameters}
    k2n, k3a = p["k2"] * p["N"], p["k3"] * p["A"]
    truth = {  # the polynomial equations (S3, S4, S5, S7) of Ruoff et al. (2003)
        2: {"S2": k2n, "S2*S5": -p["k2"], "S3": -k3a, "S3*S6": p["k3"]},
        3: {"S3": k3a, "S3*S6": -p["k3"], "S4*S5": -p["k4"], "S4": -p["kappa"],
            "S7": p["kappa"]},
        4: {"S2": k2n, "S2*S5": -p["k2"] - p["k6"], "S4*S5": -p["k4"]},
        6: {"S4": p["psi"] * p["kappa"], "S7": -p["psi"] * p["kappa"] - p["k"]},
    }
    xi = np.zeros((7, len(terms)))
    for row, entries in truth.items():
        for term, c in entries.items():
            xi[row, terms.index(term)] = c
    scored = np.zeros(7, bool)
    scored[list(truth)] = True
    return {"name": "glycolysis", "t": t, "xs": xs, "names": names, "terms": terms,
            "xi_true": xi, "scored": scored, "alpha": 1e-6}


def add_noise(xs, level: float, seed: int):
    rng = np.random.default_rng(seed)
    return [x + level * np.sqrt(np.mean(x ** 2, axis=0)) * rng.standard_normal(x.shape)
            for x in xs]


# ----- fits -----------------------------------------------------------------------------------
def sb_fit(case, xs, dxs, method: str):
    names = case["names"]
    lib = PolynomialLibrary(degree=2)
    if method == "default":  # AICc-selected threshold, own derivatives
        return SINDy(lib).fit(xs, case["t"], feature_names=names).coefficients_
    opt = STLSQ(threshold=THRESHOLD, alpha=case["alpha"])
    ens = Ensemble(n_models=N_MODELS, seed=0) if method == "ensemble" else None
    return SINDy(lib, opt, ensemble=ens).fit(xs, x_dot=dxs, feature_names=names).coefficients_


def ps_fit(case, xs, dxs, method: str):
    import pysindy as ps

    opt = ps.STLSQ(threshold=THRESHOLD, alpha=case["alpha"])
    if method == "ensemble":
        opt = ps.EnsembleOptimizer(opt, bagging=True, n_models=N_MODELS)
    model = ps.SINDy(optimizer=opt, feature_library=ps.PolynomialLibrary(degree=2))
    dt = float(case["t"][1] - case["t"][0])
    if len(xs) == 1:
        model.fit(xs[0], t=dt, x_dot=dxs[0], feature_names=case["names"])
    else:
        model.fit(xs, t=dt, x_dot=dxs, feature_names=case["names"])
    return np.asarray(model.coefficients())


def timed(fn, reps: int):
    t0 = time.perf_counter()
    coef = fn()
    first = time.perf_counter() - t0
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return coef, first, float(np.median(times))


def score(case, coef):
    sc = case["scored"]
    return (relative_error(case["xi_true"][sc], coef[sc]),
            support_matches(case["xi_true"][sc], coef[sc]))


def run_case(case, reps: int, ps_ens_reps: int, seed: int):
    rows = []
    for level in NOISES:
        xs = add_noise(case["xs"], level, seed)
        seed += 1
        # identical derivatives for both tools; the two rows at each end, where the
        # differences are only second order, are dropped (as scalebridge does with t)
        dxs = [differentiate(x, case["t"], "finite")[2:-2] for x in xs]
        xs_fit = [x[2:-2] for x in xs]
        fits = {}
        plan = [("pysindy", "stlsq"), ("scalebridge", "stlsq"), ("pysindy", "ensemble"),
                ("scalebridge", "ensemble"), ("scalebridge", "default")]
        for tool, method in plan:
            fitter = ps_fit if tool == "pysindy" else sb_fit
            fn = functools.partial(fitter, case, xs if method == "default" else xs_fit, dxs,
                                   method)
            n_reps = ps_ens_reps if (tool, method) == ("pysindy", "ensemble") else reps
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                coef, first, med = timed(fn, n_reps)
            fits[(tool, method)] = coef
            err, exact = score(case, coef)
            rows.append({"system": case["name"], "noise": level, "tool": tool,
                         "method": method, "error": err, "exact_support": exact,
                         "n_terms": int(np.sum(coef[case["scored"]] != 0)),
                         "time_s": med, "compile_s": max(first - med, 0.0), "reps": n_reps})
        for row in rows[-len(plan):]:
            ref = next(r for r in rows[-len(plan):]
                       if r["tool"] == "pysindy" and r["method"] == (
                           "stlsq" if row["method"] == "default" else row["method"]))
            row["time_ratio_vs_pysindy"] = ref["time_s"] / row["time_s"]
            row["error_ratio_vs_pysindy"] = (row["error"] / ref["error"]
                                            if ref["error"] > 0 else None)
            if not case["scored"].all() and row["tool"] != "pysindy":
                rat = ~case["scored"]
                coef = fits[(row["tool"], row["method"])]
                psc = fits[("pysindy", "stlsq" if row["method"] == "default"
                            else row["method"])]
                row["rational_diff"] = float(np.linalg.norm(coef[rat] - psc[rat])
                                             / np.linalg.norm(psc[rat]))
        for row in rows[-len(plan):]:
            print(f"{row['system']:10s} {row['noise']:6.3f} {row['tool']:15s} "
                  f"{row['method']:8s} err={row['error']:.3g} exact={row['exact_support']} "
                  f"t={row['time_s'] * 1e3:.2f} ms ratio={row['time_ratio_vs_pysindy']:.2f}",
                  flush=True)
    return rows


def check_term_order():
    import pysindy as ps

    names = ["x", "y", "z"]
    ours = [t.name.replace("*", " ") for t in PolynomialLibrary(degree=2).terms(names)]
    theirs = list(ps.PolynomialLibrary(degree=2).fit(np.ones((3, 3))).get_feature_names(names))
    if ours != theirs:
        raise SystemExit(f"term orders differ: {ours} vs {theirs}")
    return ours


def markdown(rows, meta) -> str:
    lines = [
        "# SINDy: scalebridge vs PySINDy",
        "",
        f"PySINDy {meta['pysindy']}, scalebridge {meta['scalebridge']}, JAX {meta['jax']}; "
        f"{meta['machine']}. Median of {meta['reps']} warm fits (PySINDy ensembles: "
        f"{meta['ps_ensemble_reps']}), pinned to one core. Same data, degree-2 library, "
        "STLSQ threshold 0.1 and identical 4th-order finite-difference derivatives for "
        "`stlsq`/`ensemble`; `default` is scalebridge's AICc-selected threshold with its own "
        "derivatives (ratios vs PySINDy `stlsq`). Error = "
        "||Xi_true - Xi|| / ||Xi_true|| over the scored equations (glycolysis: the polynomial "
        "S3, S4, S5, S7); `exact` = exactly the true terms; `rat. diff` = "
        "||Xi - Xi_pysindy|| / ||Xi_pysindy|| on the rational S1, S2, S6 equations. "
        "Compile = one-time JIT cost of the first fit.",
        "",
        "| system | noise | tool | method | error | error ratio | exact | terms | time (ms) "
        "| speed-up vs PySINDy | compile (s) | rat. diff |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        er = r["error_ratio_vs_pysindy"]
        lines.append(
            f"| {r['system']} | {r['noise'] * 100:g} % | {r['tool']} | {r['method']} | "
            f"{r['error']:.2e} | {'' if er is None else f'{er:.2f}'} | "
            f"{'yes' if r['exact_support'] else 'no'} | {r['n_terms']} | "
            f"{r['time_s'] * 1e3:.2f} | {r['time_ratio_vs_pysindy']:.2f} | "
            f"{r['compile_s']:.2f} | "
            f"{'' if 'rational_diff' not in r else format(r['rational_diff'], '.2e')} |")
    lines += ["", "Summary (targets: error no worse than PySINDy's, at least 3x faster at equal "
              "settings):", ""]
    for method in ("stlsq", "ensemble", "default"):
        ours = [r for r in rows if r["tool"] == "scalebridge" and r["method"] == method]
        if not ours:
            continue
        speed = [r["time_ratio_vs_pysindy"] for r in ours]
        ratios = [r["error_ratio_vs_pysindy"] for r in ours
                  if r["error_ratio_vs_pysindy"] is not None]
        ok = sum(v <= 1.01 for v in ratios)  # equal within 1 % counts as no worse
        ref = "PySINDy stlsq" if method == "default" else f"PySINDy {method}"
        peers = [r for r in rows if r["tool"] == "pysindy"
                 and r["method"] == ("stlsq" if method == "default" else method)]
        lines.append(
            f"- `{method}`: {min(speed):.1f}-{max(speed):.1f}x the speed of {ref}; error no "
            f"worse (within 1 %) in {ok} of {len(ratios)} cells (worst ratio "
            f"{max(ratios):.2f}); exactly the true terms in "
            f"{sum(r['exact_support'] for r in ours)} of {len(ours)} cells (PySINDy: "
            f"{sum(r['exact_support'] for r in peers)} of {len(peers)}).")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="short data, few repetitions")
    ap.add_argument("--reps", type=int, default=None, help="timed repetitions per fit")
    ap.add_argument("--out", type=Path, default=None,
                    help=f"results folder (default {RESULTS}; --quick writes only with --out)")
    args = ap.parse_args(argv)
    reps = args.reps or (3 if args.quick else 30)
    ps_ens_reps = max(2, reps // 3)
    order = check_term_order()
    meta = {"pysindy": version("pysindy"), "scalebridge": version("scalebridge"),
            "jax": jax.__version__, "machine": f"{platform.machine()} {platform.processor()}",
            "reps": reps, "ps_ensemble_reps": ps_ens_reps, "quick": args.quick,
            "term_order": order, "threshold": THRESHOLD, "n_models": N_MODELS,
            "noise_levels": list(NOISES)}
    rows = []
    for k, case in enumerate([lorenz_case(args.quick), glycolysis_case(args.quick)]):
        rows += run_case(case, reps, ps_ens_reps, seed=100 * k)
        out = args.out or (None if args.quick else RESULTS)
        if out is not None:  # rewritten after each system
            out.mkdir(parents=True, exist_ok=True)
            write_json(out / "sysid.json", {"meta": meta, "rows": rows})
            (out / "sysid.md").write_text(markdown(rows, meta))
    return rows


if __name__ == "__main__":
    main()
