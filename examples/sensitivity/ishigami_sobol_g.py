"""Sobol' indices of the Ishigami and Sobol' G functions against their analytic values,
SALib at the same N, and a coverage study of the bootstrap intervals over seeds.

Run: python examples/sensitivity/ishigami_sobol_g.py
Writes results/ishigami_sobol_g.json and results/{ishigami,sobol_g}.png (next to this file).
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import special

import scalebridge  # noqa: F401  (float64)
from scalebridge import testproblems as tp
from scalebridge.runtime.files import jsonable, write_json
from scalebridge.report import save_plot
from scalebridge.sensitivity import sobol
from scalebridge.sensitivity.sobol import _bootstrap, _split, saltelli_design, sobol_indices

HERE = Path(__file__).parent / "results"
N = 2**13
CASES = {
    "ishigami": (tp.ishigami, tp.ISHIGAMI_BOUNDS, tp.ishigami_indices()),
    "sobol_g": (tp.sobol_g, [(0.0, 1.0)] * len(tp.SOBOL_G_A), tp.sobol_g_indices()),
}


def salib_run(f, bounds, n, seed):
    """SALib's sample -> evaluate (NumPy) -> analyze, timed as one."""
    from SALib.analyze import sobol as analyze
    from SALib.sample import sobol as sample

    problem = {"num_vars": len(bounds), "names": [f"x{i + 1}" for i in range(len(bounds))],
               "bounds": [list(b) for b in bounds]}
    start = time.perf_counter()
    x = sample.sample(problem, n, calc_second_order=False, seed=seed)
    y = np.asarray(f(x))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        si = analyze.analyze(problem, y, calc_second_order=False, seed=seed,
                             num_resamples=1000)
    return si, time.perf_counter() - start


def analytic_comparison() -> dict:
    out = {}
    for name, (f, bounds, (s1, st)) in CASES.items():
        start = time.perf_counter()
        res = sobol(f, bounds, n_samples=N, seed=0)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        res = sobol(f, bounds, n_samples=N, seed=0)
        warm = time.perf_counter() - start
        save_plot(res, HERE / f"{name}.png")
        entry = {
            "n": N, "n_evaluations": res.n_evaluations,
            "S1": res.S1, "ST": res.ST, "S1_conf": res.S1_conf, "ST_conf": res.ST_conf,
            "S1_analytic": s1, "ST_analytic": st,
            "max_abs_error_S1": float(np.max(np.abs(res.S1 - s1))),
            "max_abs_error_ST": float(np.max(np.abs(res.ST - st))),
            "seconds_first_call": cold, "seconds": warm,
        }
        errs = []
        for seed in range(10):
            r = sobol(f, bounds, n_samples=N, seed=seed, n_bootstrap=0)
            errs.append([np.max(np.abs(r.S1 - s1)), np.max(np.abs(r.ST - st))])
        entry["max_abs_error_over_seeds_0_9"] = {"S1": np.max(errs, axis=0)[0],
                                                  "ST": np.max(errs, axis=0)[1],
                                                  "S1_median": np.median(errs, axis=0)[0],
                                                  "ST_median": np.median(errs, axis=0)[1]}
        try:
            si, secs = salib_run(f, bounds, N, 0)
            s_errs = []
            for seed in range(10):
                si_k, _ = salib_run(f, bounds, N, seed)
                s_errs.append([np.max(np.abs(si_k["S1"] - s1)), np.max(np.abs(si_k["ST"] - st))])
            entry["salib"] = {
                "S1": si["S1"], "ST": si["ST"], "S1_conf": si["S1_conf"],
                "max_abs_error_S1": float(np.max(np.abs(si["S1"] - s1))),
                "max_abs_error_ST": float(np.max(np.abs(si["ST"] - st))),
                "max_abs_error_over_seeds_0_9": {"S1": np.max(s_errs, axis=0)[0],
                                                 "ST": np.max(s_errs, axis=0)[1],
                                                 "S1_median": np.median(s_errs, axis=0)[0],
                                                 "ST_median": np.median(s_errs, axis=0)[1]},
                "seconds": secs, "time_ratio_salib_over_scalebridge": secs / warm,
            }
        except ImportError:
            entry["salib"] = None
        out[name] = entry
        print(f"{name}: max |S1 err| {entry['max_abs_error_S1']:.2e}, max |ST err| "
              f"{entry['max_abs_error_ST']:.2e}, {warm:.2f} s"
              + (f"; SALib {entry['salib']['max_abs_error_S1']:.2e} / "
                 f"{entry['salib']['max_abs_error_ST']:.2e}, {entry['salib']['seconds']:.2f} s"
                 if entry["salib"] else ""))
    return out


def coverage_study(seeds: int = 200, confidence: float = 0.95) -> dict:
    """Share of 95% intervals (normal approximation and percentile) that hold the analytic
    Ishigami indices, over seeds, for both samplings and two N."""
    f, bounds, (s1, st) = CASES["ishigami"]
    truth = np.concatenate([s1, st])
    z = float(special.ndtri(0.5 + confidence / 2))
    out = {}
    for sampling in ("random", "sobol"):
        for n in (256, 1024):
            normal, percentile, errors, ses = [], [], [], []
            for seed in range(seeds):
                _, _, u = saltelli_design(3, n, seed=seed, sampling=sampling)
                y = np.asarray(f(-np.pi + 2 * np.pi * u))
                fa, fb, fab, _ = _split(y, n, 3, False)
                mean = np.mean(np.concatenate([fa, fb]))
                fa, fb, fab = fa - mean, fb - mean, fab - mean
                a1, at, _, _ = sobol_indices(fa, fb, fab)
                b1, bt, _ = _bootstrap(fa, fb, fab, None, 1000, seed)
                est, boot = np.concatenate([a1[0], at[0]]), np.concatenate([b1, bt], axis=1)
                se = np.std(boot, axis=0, ddof=1)
                lo, hi = np.quantile(boot, [(1 - confidence) / 2, (1 + confidence) / 2], axis=0)
                normal.append(np.abs(est - truth) <= z * se)
                percentile.append((lo <= truth) & (truth <= hi))
                errors.append(est - truth)
                ses.append(se)
            key = f"{sampling}_N{n}"
            out[key] = {
                "seeds": seeds, "sampling": sampling, "n": n,
                "coverage_normal": float(np.mean(normal)),
                "coverage_percentile": float(np.mean(percentile)),
                "coverage_normal_per_index": np.mean(normal, axis=0),
                "coverage_percentile_per_index": np.mean(percentile, axis=0),
                "rmse_over_seeds": np.sqrt(np.mean(np.square(errors), axis=0)),
                "mean_bootstrap_se": np.mean(ses, axis=0),
            }
            print(f"coverage {key}: normal {out[key]['coverage_normal']:.3f}, percentile "
                  f"{out[key]['coverage_percentile']:.3f} (nominal {confidence})")
    return out


def main():
    HERE.mkdir(parents=True, exist_ok=True)
    result = {"analytic": analytic_comparison(), "coverage": coverage_study(),
              "index_order": "S1 x1..x3 then ST x1..x3 (coverage per index)"}

    write_json(HERE / "ishigami_sobol_g.json", jsonable(result))
    json.loads((HERE / "ishigami_sobol_g.json").read_text())
    print(f"wrote {HERE / 'ishigami_sobol_g.json'}")


if __name__ == "__main__":
    main()
