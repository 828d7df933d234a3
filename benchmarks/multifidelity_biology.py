"""Multi-fidelity surrogate of an epidemic model: how many expensive runs does it save?

Output: the peak infectious fraction max_t I(t) of the SEIR model of the zoo
(Kermack & McKendrick 1927) over three parameters, transmission rate beta in [0.25, 0.6],
latency rate sigma in [0.1, 0.5] and recovery rate gamma in [0.07, 0.15] per day
(R0 = beta / gamma from 1.7 to 8.6), over 500 days from 0.1% infectious.

- High fidelity: ``scalebridge.simulate_ensemble`` (Tsit5, rtol 1e-10, atol 1e-12), the
  peak read on a 0.25-day output grid.
- Low fidelity: the same equations by explicit Euler with a fixed 2.5-day step (diffrax),
  the peak read at the steps: cheap, and biased (by up to ~25% where the epidemic is fast).

Every surrogate gets the same nested designs: N_LOW cheap runs on a Latin hypercube and
the first n_high of them (a random order) also run at high fidelity. Compared: a GP on the
high-fidelity runs alone (Matern 5/2 ARD), the linear auto-regressive model (Kennedy &
O'Hagan 2000; Le Gratiet & Garnier 2014) and NARGP (Perdikaris et al. 2017), by the
relative L2 error on 1,000 independent high-fidelity runs, averaged over designs (seeds).
The cost of a run of each fidelity is measured in the same process (ensembles of 1,000,
compile time excluded).

    python benchmarks/multifidelity_biology.py      # writes results/multifidelity_biology.*
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
from scipy.stats import qmc

import scalebridge as sb
from scalebridge.runtime.files import write_json
from scalebridge.surrogate.gp import GaussianProcess
from scalebridge.surrogate.multifidelity import LinearMultiFidelityGP, NonlinearMultiFidelityGP

HERE = Path(__file__).parent
MODEL = sb.load_zoo("seir")
NAMES = ("beta", "sigma", "gamma")
BOUNDS = np.array([(0.25, 0.6), (0.1, 0.5), (0.07, 0.15)])
T_END = 500.0
HIGH_TIMES = np.linspace(0.0, T_END, 2001)  # 0.25-day grid
LOW_DT = 2.5
I_STATE = MODEL.state_names.index("I")


def high_fidelity(theta: np.ndarray) -> np.ndarray:
    """Peak infectious fraction, accurate adaptive solve."""
    sol = sb.simulate_ensemble(MODEL, {k: theta[:, i] for i, k in enumerate(NAMES)},
                               HIGH_TIMES, rtol=1e-10, atol=1e-12)
    if not bool(np.all(np.asarray(sol.success))):
        raise RuntimeError("a high-fidelity run failed")
    return np.asarray(jnp.max(sol.states[:, :, I_STATE], axis=1))


@jax.jit
def _low(theta):
    base = jnp.asarray(MODEL.parameter_values())
    idx = jnp.asarray([MODEL.parameter_index(k) for k in NAMES])
    term = diffrax.ODETerm(lambda t, y, p: MODEL.vector_field(t, y, p))
    grid = jnp.arange(0.0, T_END + LOW_DT / 2, LOW_DT)

    def one(th):
        p = base.at[idx].set(th)
        sol = diffrax.diffeqsolve(term, diffrax.Euler(), 0.0, T_END, LOW_DT,
                                  MODEL.initial_state(p), args=p,
                                  saveat=diffrax.SaveAt(ts=grid), max_steps=grid.size + 1)
        return jnp.max(sol.ys[:, I_STATE])

    return jax.vmap(one)(theta)


def low_fidelity(theta: np.ndarray) -> np.ndarray:
    """Peak infectious fraction, explicit Euler with a fixed coarse step."""
    return np.asarray(_low(jnp.asarray(theta)))


def scale(u):
    return BOUNDS[:, 0] + u * (BOUNDS[:, 1] - BOUNDS[:, 0])


def cost_per_run(f, theta, repeats=3):
    f(theta[:2])
    f(theta)  # compile for this batch size
    best = min(_timed(f, theta) for _ in range(repeats))
    return best / len(theta)


def _timed(f, theta):
    t = time.perf_counter()
    f(theta)
    return time.perf_counter() - t


def rel_error(pred, truth):
    return float(np.linalg.norm(np.asarray(pred) - truth) / np.linalg.norm(truth))


def study(n_low, n_highs, seeds, x_test, y_test):
    rows = []
    for seed in seeds:
        x_low = scale(qmc.LatinHypercube(d=3, seed=seed).random(n_low))
        y_low = low_fidelity(x_low)
        order = np.random.default_rng(seed).permutation(n_low)
        y_high_all = high_fidelity(x_low[order[:max(n_highs)]])
        for n_high in n_highs:
            x_high, y_high = x_low[order[:n_high]], y_high_all[:n_high]
            row = {"seed": seed, "n_low": n_low, "n_high": n_high}
            models = {"gp": lambda: GaussianProcess(),
                      "linear": lambda: LinearMultiFidelityGP(),
                      "nargp": lambda: NonlinearMultiFidelityGP()}
            for name, make in models.items():
                t = time.perf_counter()
                model = make()
                if name == "gp":
                    model.fit(x_high, y_high)
                else:
                    model.fit([x_low, x_high], [y_low, y_high])
                row[f"{name}_fit_s"] = time.perf_counter() - t
                row[f"{name}_error"] = rel_error(model.predict(x_test)[0], y_test)
            rows.append(row)
            print(json.dumps({k: round(v, 4) if isinstance(v, float) else v
                              for k, v in row.items()}), flush=True)
    return rows


def runs_needed(summary, method, target):
    for n, errs in summary:
        if errs[method] <= target:
            return n
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-low", type=int, default=150)
    ap.add_argument("--n-high", type=int, nargs="+", default=[5, 10, 15, 20, 30, 45])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args()

    x_test = scale(np.random.default_rng(100).uniform(size=(1000, 3)))
    t = time.perf_counter()
    y_test = high_fidelity(x_test)
    print(f"1000 test runs (high fidelity, incl. compile): {time.perf_counter() - t:.1f} s")
    y_test_low = low_fidelity(x_test)
    cost_high = cost_per_run(high_fidelity, x_test)
    cost_low = cost_per_run(low_fidelity, x_test)
    low_bias = rel_error(y_test_low, y_test)

    rows = study(args.n_low, args.n_high, range(args.seeds), x_test, y_test)
    methods = ("gp", "linear", "nargp")
    summary = []
    for n in args.n_high:
        sel = [r for r in rows if r["n_high"] == n]
        summary.append((n, {m: float(np.mean([r[f"{m}_error"] for r in sel])) for m in methods}))
    targets = [0.05, 0.02, 0.01]
    needed = {f"{tgt:g}": {m: runs_needed(summary, m, tgt) for m in methods} for tgt in targets}
    result = {
        "benchmark": "multifidelity_biology",
        "model": "seir (zoo), output: peak infectious fraction",
        "parameters": {k: list(b) for k, b in zip(NAMES, BOUNDS.tolist(), strict=True)},
        "high_fidelity": "simulate_ensemble Tsit5 rtol 1e-10 atol 1e-12, 0.25-day output grid",
        "low_fidelity": f"explicit Euler, fixed step {LOW_DT} days (diffrax)",
        "cost_per_run_s": {"high": cost_high, "low": cost_low,
                           "ratio_high_to_low": cost_high / cost_low},
        "low_fidelity_relative_error": low_bias,
        "n_low": args.n_low, "seeds": args.seeds,
        "surrogates": "scalebridge defaults: GaussianProcess() (Matern 5/2 ARD, 5 starts); "
                      "LinearMultiFidelityGP(), NonlinearMultiFidelityGP() (RBF ARD, 10 starts "
                      "per level, 100 Monte Carlo samples)",
        "mean_relative_error": [{"n_high": n, **e} for n, e in summary],
        "high_runs_needed_for_mean_error": needed,
        "rows": rows,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "jax": jax.__version__},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "multifidelity_biology.json", result)
    plot(summary, result, args.out / "multifidelity_biology.png")
    print(json.dumps({k: result[k] for k in ("cost_per_run_s", "low_fidelity_relative_error",
                                             "mean_relative_error",
                                             "high_runs_needed_for_mean_error")}, indent=1))


def plot(summary, result, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    ns = [n for n, _ in summary]
    labels = {"gp": "GP, high-fidelity runs only", "linear": "linear AR (Kennedy-O'Hagan)",
              "nargp": "NARGP (Perdikaris et al.)"}
    for m, style in zip(labels, ("o-", "s-", "^-"), strict=True):
        ax.semilogy(ns, [e[m] for _, e in summary], style, label=labels[m])
    ax.axhline(result["low_fidelity_relative_error"], color="grey", ls=":",
               label="low-fidelity model itself")
    c = result["cost_per_run_s"]
    ax.set_xlabel(f"high-fidelity runs (plus {result['n_low']} low-fidelity runs)")
    ax.set_ylabel("relative L2 error, 1000 test points")
    ax.set_title(f"SEIR peak infected; one high run = {c['ratio_high_to_low']:.0f} low runs",
                 fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=130)


if __name__ == "__main__":
    main()
