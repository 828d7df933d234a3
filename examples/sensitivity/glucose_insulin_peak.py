"""Sobol' indices of the peak glucose of the Sturis et al. (1991) glucose-insulin model
(zoo: glucose_insulin) over all of its 21 parameters, each log-uniform over
[nominal / 2, nominal * 2], plus Morris screening and local sensitivities at the nominal
point.

Output: max:glucose, the largest plasma glucose (mg/dl) in the first 10 hours under the
model's constant infusion (the first ultradian peak is the largest). N = 2^10 base
samples: 23,552 simulations, in compiled, vmapped batches.

Run: python examples/sensitivity/glucose_insulin_peak.py [N]
Writes results/glucose_insulin_peak.json and results/glucose_insulin_{sobol,morris,local}.png
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

import scalebridge as sb
from scalebridge.runtime.files import jsonable, write_json
from scalebridge.report import save_plot
from scalebridge.sensitivity import ModelOutput, local, morris, sobol

HERE = Path(__file__).parent / "results"


def salib_same_model(peak, bounds, n):
    """SALib (sample, the same compiled model evaluation, analyze) at the same N, in the
    log of the parameters (uniform there = log-uniform here). None without SALib."""
    import warnings

    try:
        from SALib.analyze import sobol as analyze
        from SALib.sample import sobol as sample
    except ImportError:
        return None
    problem = {"num_vars": len(bounds), "names": list(bounds),
               "bounds": [[np.log(b.low), np.log(b.high)] for b in bounds.values()]}
    start = time.perf_counter()
    x = sample.sample(problem, n, calc_second_order=False, seed=0)
    y = peak(np.exp(x))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        si = analyze.analyze(problem, y, calc_second_order=False, seed=0, num_resamples=1000)
    secs = time.perf_counter() - start
    print(f"SALib with the same evaluation: {secs:.1f} s")
    return {"S1": si["S1"], "ST": si["ST"], "S1_conf": si["S1_conf"], "ST_conf": si["ST_conf"],
            "seconds": secs, "n_nonfinite": int(np.sum(~np.isfinite(y)))}


def main(n: int = 2**10):
    HERE.mkdir(parents=True, exist_ok=True)
    model = sb.load_zoo("glucose_insulin")
    peak = ModelOutput(model, "max:glucose", t_end=600.0, points=601, batch_size=512)
    bounds = peak.default_bounds(2.0)
    print(f"{peak}: {len(bounds)} parameters, N={n}, {n * (len(bounds) + 2)} simulations")
    start = time.perf_counter()
    res = sobol(peak, bounds, n_samples=n, seed=0)
    t_sobol = time.perf_counter() - start
    print(res)
    save_plot(res.plot(title="glucose-insulin: Sobol' indices of peak glucose (0-600 min)"),
              HERE / "glucose_insulin_sobol.png")
    start = time.perf_counter()
    screen = morris(peak, bounds, trajectories=100, seed=0)
    t_morris = time.perf_counter() - start
    print(screen)
    save_plot(screen, HERE / "glucose_insulin_morris.png")
    start = time.perf_counter()
    loc = local(peak)
    t_local = time.perf_counter() - start
    print(loc.to_pandas())
    save_plot(loc.plot(title="d log(peak glucose) / d log p"), HERE / "glucose_insulin_local.png")
    salib = salib_same_model(peak, bounds, n)
    top_st = [res.names[i] for i in np.argsort(-res.ST)[:5]]
    top_mu = [screen.names[i] for i in np.argsort(-screen.mu_star)[:5]]
    payload = {
        "output": peak.spec, "t_end": peak.t_end, "points": peak.points,
        "bounds": "log-uniform, nominal / 2 .. nominal * 2",
        "sobol": res.to_dict(), "morris": screen.to_dict(), "local": loc.to_dict(),
        "seconds": {"sobol": t_sobol, "morris": t_morris, "local": t_local},
        "top5_ST": top_st, "top5_mu_star": top_mu, "salib": salib,
    }
    write_json(HERE / "glucose_insulin_peak.json", jsonable(payload))
    if salib is not None:
        print("max |ST - ST(SALib)|:", float(np.max(np.abs(res.ST - salib["ST"]))),
              "max |S1 - S1(SALib)|:", float(np.max(np.abs(res.S1 - salib["S1"]))))
    print(f"top ST: {top_st}; top mu*: {top_mu}; sobol {t_sobol:.1f} s, morris "
          f"{t_morris:.1f} s, local {t_local:.1f} s; wrote {HERE}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2**10)
