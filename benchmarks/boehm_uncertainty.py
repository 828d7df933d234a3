"""Parameter uncertainty of the Boehm et al. (2014) JAK-STAT PEtab problem.

Profiles part: profile likelihoods (``scalebridge.infer.profile.profile``) of all nine
estimated parameters around the published optimum (the nominal values of the PEtab parameter
table, NLL 138.2220), with 95% pointwise confidence intervals and identifiability flags, next
to the Wald intervals of the Fisher information and of the finite-difference Hessian at the
same point (``fisher_intervals``). Writes ``results/boehm_profiles.json`` (settings, timings,
per-parameter intervals and flags, the full profiles) and ``results/boehm_profiles.png``.

    python benchmarks/boehm_uncertainty.py                       # all nine parameters
    python benchmarks/boehm_uncertainty.py --parameters k_phos   # a subset
    python benchmarks/boehm_uncertainty.py --out /tmp/boehm-prof # resumable profiles.json

Timings are wall-clock on the machine named in the JSON; the JIT compile of the objective
is reported apart from the profile time.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from pathlib import Path

import scalebridge as sb
from scalebridge.infer.profile import fisher_intervals, profile
from scalebridge.report import save_plot
from scalebridge.runtime.files import write_json

HERE = Path(__file__).parent
ROOT = HERE.parent
YAML = ROOT / "tests" / "data" / "petab" / "Boehm_JProteomeRes2014" / "Boehm_JProteomeRes2014.yaml"
RESULTS = HERE / "results"
PUBLISHED_NLL = 138.2220


def _num(v):
    return float(v) if v is not None and isinstance(v, int | float) and math.isfinite(v) \
        else None


def _table(df) -> dict:
    """A DataFrame indexed by parameter as ``{parameter: {column: value}}`` (JSON-safe)."""
    out = {}
    for pid, row in df.iterrows():
        out[pid] = {k: (_num(v) if isinstance(v, int | float) else v)
                    for k, v in row.items()}
    return out


# ===== profiles ==============================================================================
def run_profiles(problem, args) -> dict:
    """Profiles of ``args.parameters`` (all if empty) from the nominal optimum, with the
    Fisher and Hessian intervals; writes results/boehm_profiles.{json,png}."""
    x_opt = problem.x_nominal
    t0 = time.perf_counter()
    nll_opt = problem.nll_grad_fim(x_opt)[0]  # compiles the objective
    compile_s = time.perf_counter() - t0
    print(f"NLL at the nominal (published) optimum {nll_opt:.4f}; compiled in "
          f"{compile_s:.1f} s", flush=True)

    t0 = time.perf_counter()
    fim = fisher_intervals(problem, x_opt, method="fim")
    hess = fisher_intervals(problem, x_opt, method="hessian")
    fisher_s = time.perf_counter() - t0

    def progress(done, total, *, profile, **info):
        p = profile
        lo, hi = p.ci_lin
        print(f"  {p.parameter:22s} {p.values.size:3d} points {p.time_s:6.1f} s  "
              f"CI [{lo}, {hi}]  {p.identifiable}", flush=True)

    t0 = time.perf_counter()
    res = profile(problem, x_opt, parameters=args.parameters or None,
                  target_delta=args.target_delta, max_step=args.max_step, out=args.out,
                  progress=progress)
    profile_s = time.perf_counter() - t0

    summary = res.summary()
    print(summary.to_string())
    RESULTS.mkdir(exist_ok=True)
    save_plot(res, RESULTS / "boehm_profiles.png")
    data = {
        "problem": "Boehm_JProteomeRes2014", "published_nll": PUBLISHED_NLL,
        "nll_opt": float(nll_opt), "x_opt": "nominal (published optimum)",
        "settings": {"alpha": res.alpha, "threshold": res.threshold,
                     "target_delta": args.target_delta, "max_step": args.max_step},
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpus": os.cpu_count(), "scalebridge": sb.__version__
                    if hasattr(sb, "__version__") else None},
        "timings_s": {"compile": compile_s, "fisher_and_hessian": fisher_s,
                      "profiles": profile_s,
                      "per_parameter": {k: p.time_s for k, p in res.profiles.items()}},
        "intervals": {"profile": _table(summary), "fim": _table(fim),
                      "hessian": _table(hess)},
        "non_identifiable": [k for k, p in res.profiles.items()
                             if p.identifiable != "identifiable"],
        "better_optimum": res.better_optimum,
        "profiles": res.to_dict(),
    }
    write_json(RESULTS / "boehm_profiles.json", data)
    print(f"compile {compile_s:.1f} s, Fisher + Hessian {fisher_s:.1f} s, profiles "
          f"{profile_s:.1f} s; wrote {RESULTS / 'boehm_profiles.json'}")
    return data


# ===== posterior =============================================================================
# The posterior part (sampling, with its own results/boehm_posterior.{json,png}) goes here,
# as ``run_posterior(problem, args) -> dict``, registered in PARTS below; it shares only
# ``problem`` and the command line with the profiles part.


PARTS = {"profiles": run_profiles}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=sorted(PARTS), action="append",
                    help="which part to run (repeatable; default: all)")
    ap.add_argument("--parameters", nargs="*", default=[],
                    help="parameter ids to profile (default: all estimated)")
    ap.add_argument("--target-delta", type=float, default=0.15,
                    help="NLL rise aimed at per profile step")
    ap.add_argument("--max-step", type=float, default=0.05,
                    help="largest profile step as a fraction of the bound span")
    ap.add_argument("--out", default=None, help="directory for a resumable profiles.json")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    problem = sb.load_petab(YAML)
    print(f"loaded {problem.name} in {time.perf_counter() - t0:.1f} s", flush=True)
    for part in args.part or list(PARTS):
        PARTS[part](problem, args)


if __name__ == "__main__":
    main()
