"""Fit time and accuracy of scalebridge's GP core against tinygp and GPJax on the same data
(numbers for docs/decisions/0012-gaussian-processes.md).

Data: the high-fidelity nonlinear-sin function of Perdikaris et al. (2017) at 14 random
points of [0, 1], and Branin at 40 random points of its domain; relative L2 error of the
predictive mean on 1,000 test points. Every core fits a Matern 5/2 ARD kernel with a learned
noise variance by type-II maximum likelihood on inputs in the unit box and z-scored outputs,
from 5 starts (the same starts):

- scalebridge: ``GaussianProcess()`` (BFGS in one compiled call over all starts);
- tinygp 0.3 (a kernel/likelihood library without optimiser): its ``log_probability``
  minimised by scipy L-BFGS-B through a jit-compiled value-and-gradient;
- GPJax (if importable, e.g. in a throwaway venv; it pulls optax, paramax, beartype):
  ``gpx.fit_lbfgs`` on ``-conjugate_mll``, one start (its documented default).

Fit time: best of ``--repeats`` warm fits in one process (compilation excluded), then the
first (cold) fit with compilation.

    python examples/surrogates/compare_gp_cores.py
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

import scalebridge  # noqa: F401  (float64)
from scalebridge import testproblems as tp

RESTARTS = 4  # random starts besides the default one


def datasets():
    rng = np.random.default_rng(0)
    x1 = rng.uniform(0, 1, (14, 1))
    xt1 = np.linspace(0, 1, 1000)[:, None]
    b = np.asarray(tp.BRANIN_BOUNDS)
    x2 = b[:, 0] + rng.uniform(0, 1, (40, 2)) * (b[:, 1] - b[:, 0])
    xt2 = b[:, 0] + np.random.default_rng(1).uniform(0, 1, (1000, 2)) * (b[:, 1] - b[:, 0])
    return {"sin_high_14": (x1, np.asarray(tp.nonlinear_sin_high(x1)), xt1,
                            np.asarray(tp.nonlinear_sin_high(xt1))),
            "branin_40": (x2, np.asarray(tp.branin(x2)), xt2, np.asarray(tp.branin(xt2)))}


def normalise(x, y, xt):
    lo, span = x.min(0), np.ptp(x, 0)
    return (x - lo) / span, (y - y.mean()) / y.std(), (xt - lo) / span, y.mean(), y.std()


def fit_scalebridge(x, y, xt):
    from scalebridge.surrogate.gp import GaussianProcess

    gp = GaussianProcess(restarts=RESTARTS).fit(x, y)
    return np.asarray(gp.predict(xt)[0])


def _starts(d, rng):
    # log lengthscales (d), log variance, log noise: the default start and random ones
    base = np.concatenate([np.log(np.full(d, 0.5)), [0.0], [np.log(1e-2)]])
    return [base] + [base + rng.normal(size=base.size) for _ in range(RESTARTS)]


_TINYGP_CACHE = {}


def fit_tinygp(x, y, xt):
    import scipy.optimize
    import tinygp

    xn, yn, xtn, mu, sd = normalise(x, y, xt)
    d = x.shape[1]

    def build(theta, xs):
        k = jnp.exp(theta[d]) * tinygp.transforms.Linear(
            jnp.exp(-theta[:d]), tinygp.kernels.Matern52(
                distance=tinygp.kernels.distance.L2Distance()))
        return tinygp.GaussianProcess(k, xs, diag=1e-6 + jnp.exp(theta[d + 1]))

    key = (x.shape, "vg")
    if key not in _TINYGP_CACHE:
        _TINYGP_CACHE[key] = jax.jit(jax.value_and_grad(
            lambda th, xs, ys: -build(th, xs).log_probability(ys)))
    vg = _TINYGP_CACHE[key]

    def fun(th):
        v, g = vg(jnp.asarray(th), xn, yn)
        v = float(v)
        return (v, np.asarray(g)) if np.isfinite(v) else (1e10, np.zeros_like(th))

    best = None
    for th0 in _starts(d, np.random.default_rng(0)):
        res = scipy.optimize.minimize(fun, th0, jac=True, method="L-BFGS-B")
        if best is None or res.fun < best.fun:
            best = res
    cond = build(jnp.asarray(best.x), xn).condition(yn, xtn).gp
    return mu + sd * np.asarray(cond.loc)


def fit_gpjax(x, y, xt):
    import gpjax as gpx

    xn, yn, xtn, mu, sd = normalise(x, y, xt)
    data = gpx.Dataset(X=jnp.asarray(xn), y=jnp.asarray(yn)[:, None])
    prior = gpx.gps.Prior(mean_function=gpx.mean_functions.Zero(),
                          kernel=gpx.kernels.Matern52(lengthscale=jnp.full(x.shape[1], 0.5)))
    model = prior * gpx.likelihoods.Gaussian(obs_stddev=jnp.asarray(0.1))
    model, _ = gpx.fit_lbfgs(model=model, train_data=data,
                             objective=lambda m, d: -gpx.objectives.conjugate_mll(m, d))
    pred = model.predict(jnp.asarray(xtn), train_data=data, covariance="diagonal")
    return mu + sd * np.asarray(pred.mean)


def measure(fit, x, y, xt, yt, repeats):
    t = time.perf_counter()
    pred = fit(x, y, xt)
    cold = time.perf_counter() - t
    warm = []
    for _ in range(repeats):
        t = time.perf_counter()
        fit(x, y, xt)
        warm.append(time.perf_counter() - t)
    err = float(np.linalg.norm(pred - yt) / np.linalg.norm(yt))
    return {"relative_l2_error": round(err, 5), "fit_predict_warm_s": round(min(warm), 4),
            "first_call_s": round(cold, 2)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cores", nargs="+", default=["scalebridge", "tinygp", "gpjax"])
    args = ap.parse_args()
    fits = {"scalebridge": fit_scalebridge, "tinygp": fit_tinygp, "gpjax": fit_gpjax}
    out = {}
    for core in args.cores:
        try:
            __import__({"scalebridge": "scalebridge", "tinygp": "tinygp",
                        "gpjax": "gpjax"}[core])
        except ImportError:
            out[core] = "not installed"
            continue
        out[core] = {name: measure(fits[core], *data, args.repeats)
                     for name, data in datasets().items()}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
