"""Posterior sampling (scalebridge.infer.sample) against exact posteriors.

The test problem is a straight line y = a + b t, written as the ODE dy/dt = b, y(0) = a,
observed with Gaussian noise of known sigma: with a flat prior the posterior of (a, b) is
Gaussian with mean (X^T X)^-1 X^T y and covariance sigma^2 (X^T X)^-1; with a normal prior
on ``a`` the precision gains 1/tau^2. Parameters the data do not inform have the prior as
posterior (a check of the bounds transform and of the Jacobian of log-scale priors).
"""

import json
import math
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import scalebridge as sb
from scalebridge.errors import InputError
from scalebridge.infer.fit import FitResult
from scalebridge.infer.problem import Problem
from scalebridge.infer.sample import PosteriorResult, PredictiveResult, rank_diagnostics, sample
from scalebridge.report import save_plot

SIGMA = 0.3
TIMES = np.linspace(0.0, 4.0, 40)
A_TRUE, B_TRUE = 1.0, 0.5
LN10 = math.log(10.0)


def _iterations(seen):
    """A progress callback that keeps the iteration counts."""
    return lambda done, total, **info: seen.append(done)


def line_problem(extra=(), a_prior=None, bounds=(-50.0, 50.0)):
    params = [sb.Parameter("a", 1.0, *bounds, prior=a_prior), sb.Parameter("b", 0.5, *bounds),
              *extra]
    model = sb.Model(name="line", states=["y"], parameters=params,
                     rhs=lambda t, y, p, u: jnp.stack([p[1]]),
                     initial=lambda p: jnp.stack([p[0]]), stiff=False)
    y = A_TRUE + B_TRUE * TIMES + SIGMA * np.random.default_rng(1).standard_normal(TIMES.size)
    data = pd.DataFrame({"time": TIMES, "observable": "y", "value": y, "sigma": SIGMA})
    return Problem.from_table(model, data), y


def exact_line_posterior(y, prior_a=None):
    """Mean and covariance of (a, b); ``prior_a = (mean, sd)`` of a normal prior on a."""
    X = np.stack([np.ones_like(TIMES), TIMES], axis=1)
    prec = X.T @ X / SIGMA**2
    rhs = X.T @ y / SIGMA**2
    if prior_a is not None:
        prec[0, 0] += 1 / prior_a[1] ** 2
        rhs[0] += prior_a[0] / prior_a[1] ** 2
    cov = np.linalg.inv(prec)
    return cov @ rhs, cov


def assert_mean_sd(draws, mean, sd, ess):
    """Posterior mean within 4 Monte Carlo standard errors, sd within 10%."""
    assert abs(draws.mean() - mean) < 4 * sd / math.sqrt(ess)
    assert draws.std(ddof=1) == pytest.approx(sd, rel=0.1)


@pytest.fixture(scope="module")
def flat():
    # c is not in the model: its posterior is its uniform prior on [2, 3]
    problem, y = line_problem(extra=[sb.Parameter("c", 2.5, 2.0, 3.0)])
    res = sample(problem, n_chains=4, n_warmup=500, n_samples=1000, seed=0,
                 chain_method="vectorized")
    return problem, y, res


# ----- flat prior -------------------------------------------------------------------------------
def test_flat_prior_matches_the_conjugate_posterior(flat):
    problem, y, res = flat
    mean, cov = exact_line_posterior(y)
    s, ess = res.flat(), res.ess_bulk
    assert res.samples.shape == (4, 1000, 3)
    assert res.parameter_ids == ("a", "b", "c")
    for k in range(2):
        assert_mean_sd(s[:, k], mean[k], math.sqrt(cov[k, k]), ess[k])
    corr = cov[0, 1] / math.sqrt(cov[0, 0] * cov[1, 1])
    assert np.corrcoef(s[:, 0], s[:, 1])[0, 1] == pytest.approx(corr, abs=0.05)
    # uniform on [2, 3]: mean 2.5, sd 1/sqrt(12); chains (warmup included) stay inside
    assert_mean_sd(s[:, 2], 2.5, 1 / math.sqrt(12), ess[2])
    for draws in (res.samples, res.warmup):
        assert np.all((draws[..., 2] > 2.0) & (draws[..., 2] < 3.0))
    assert s[:, 2].min() < 2.02 and s[:, 2].max() > 2.98


def test_diagnostics_and_summary(flat):
    _, y, res = flat
    d = res.diagnostics
    assert np.all(d["rhat"] < 1.01)
    assert np.all(d["ess_bulk"] > 400) and np.all(d["ess_tail"] > 400)
    assert res.n_divergences == 0 and list(d["divergences"]) == [0, 0, 0, 0]
    assert res.converged()
    assert res.step_size.shape == (4,) and np.all(res.step_size > 0)
    assert res.timings["compile_s"] > 0 and res.timings["sampling_s"] > 0
    summ = res.summary()
    assert list(summ.columns) == ["scale", "mean", "sd", "q2.5", "q50", "q97.5", "rhat",
                                  "ess_bulk", "ess_tail"]
    assert list(summ.index) == ["a", "b", "c"]
    mean, cov = exact_line_posterior(y)
    sd_b = math.sqrt(cov[1, 1])
    assert summ.loc["b", "q2.5"] == pytest.approx(mean[1] - 1.96 * sd_b, abs=0.15 * sd_b)
    assert summ.loc["b", "q97.5"] == pytest.approx(mean[1] + 1.96 * sd_b, abs=0.15 * sd_b)


def test_save_load_protocol_and_plots(flat, tmp_path):
    _, _, res = flat
    sb.save(res, tmp_path / "posterior.npz")
    for back in (sb.load(tmp_path / "posterior.npz"), PosteriorResult.from_dict(res.to_dict())):
        assert isinstance(back, PosteriorResult)
        np.testing.assert_array_equal(back.samples, res.samples)
        np.testing.assert_array_equal(back.warmup, res.warmup)
        np.testing.assert_array_equal(back.stats["diverging"], res.stats["diverging"])
        pd.testing.assert_frame_equal(back.summary(), res.summary())
        assert back.settings == res.settings and back.lower.tolist() == res.lower.tolist()
    table = res.to_pandas()
    assert table.shape == (4000, 3) and table.loc[(2, 7), "b"] == res.samples[2, 7, 1]
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    assert res.plot(ax=ax) is ax and len(ax.get_yticklabels()) == 3
    plt.close(fig)
    for name, axes, shape in (("traces.png", res.plot_traces(warmup=True), (3, 2)),
                              ("marginals.png", res.plot_marginals(), (1, 3)),
                              ("pairs.png", res.plot_marginals(pairs=True), (3, 3))):
        assert axes.shape == shape
        assert save_plot(axes, tmp_path / name).stat().st_size > 5000
    fig, given = plt.subplots(3, 2)
    assert res.plot_traces(given) is not None and len(given[0, 0].lines) == 4  # one per chain
    plt.close(fig)


def test_arviz_agrees_with_the_own_diagnostics(flat, tmp_path):
    import arviz as az

    _, _, res = flat
    idata = res.to_arviz()
    assert idata.posterior["b"].shape == (4, 1000) and idata.warmup_posterior["a"].shape[1] == 500
    summ = az.summary(idata, round_to="none")
    np.testing.assert_allclose(summ["r_hat"].to_numpy(), res.rhat, atol=0.01)
    np.testing.assert_allclose(summ["ess_bulk"].to_numpy(), res.ess_bulk, rtol=0.1)
    np.testing.assert_allclose(summ["ess_tail"].to_numpy(), res.ess_tail, rtol=0.1)
    idata.to_netcdf(str(tmp_path / "posterior.nc"))
    back = az.from_netcdf(str(tmp_path / "posterior.nc"))
    np.testing.assert_array_equal(back.posterior["c"].to_numpy(), res.samples[..., 2])


def test_resume_after_interruption_gives_the_same_draws(flat, tmp_path):
    problem, _, res = flat

    class Stop(Exception):
        pass

    def stop_after_warmup(done, total, **info):
        if done >= 600:
            raise Stop

    with pytest.raises(Stop):
        sample(problem, n_chains=4, n_warmup=500, n_samples=1000, seed=0, out=tmp_path,
               chain_method="vectorized", progress=stop_after_warmup)
    running = json.loads((tmp_path / "posterior.json").read_text())
    assert running["status"] == "running" and running["iteration"] == 600
    seen = []
    again = sample(problem, n_chains=4, n_warmup=500, n_samples=1000, seed=0, out=tmp_path,
                   chain_method="vectorized", progress=_iterations(seen))
    assert seen[0] == 650  # resumed, not restarted
    np.testing.assert_array_equal(again.samples, res.samples)
    assert not list(tmp_path.glob("state-*.npz"))
    # a finished run is loaded, not run again; other settings need another directory
    seen.clear()
    loaded = sample(problem, n_chains=4, n_warmup=500, n_samples=1000, seed=0, out=tmp_path,
                    chain_method="vectorized", progress=_iterations(seen))
    assert seen == [] and np.array_equal(loaded.samples, res.samples)
    done = json.loads((tmp_path / "posterior.json").read_text())
    assert done["format"] == "scalebridge-posterior" and done["status"] == "done"
    assert set(done["summary"]) == {"a", "b", "c"} and done["diagnostics"]["max_rhat"] < 1.01
    with pytest.raises(InputError, match="seed"):
        sample(problem, n_chains=4, n_warmup=500, n_samples=1000, seed=1, out=tmp_path,
               chain_method="vectorized")


def test_predictive_bands(flat, tmp_path):
    problem, y, res = flat
    pred = res.predictive(problem, n_draws=400, n_grid=21, seed=0)
    assert pred.n_draws == 400
    # the 95% predictive interval holds about 95% of the data
    assert 0.85 <= pred.coverage <= 1.0
    b = pred.bands
    assert set(b["observableId"]) == {"y"}
    assert b["time"].min() == 0.0 and b["time"].max() == 4.0
    assert np.all(np.diff(b["time"]) > 0)
    # band widths against the exact predictive distribution of a + b t (+ noise)
    mean, cov = exact_line_posterior(y)
    X = np.stack([np.ones(len(b)), b["time"]], axis=1)
    sd_sim = np.sqrt(np.einsum("ij,jk,ik->i", X, cov, X))
    np.testing.assert_allclose(b["sim_q50"], X @ mean, atol=0.3 * sd_sim.max())
    np.testing.assert_allclose(b["sim_q97.5"] - b["sim_q2.5"], 2 * 1.96 * sd_sim, rtol=0.15)
    np.testing.assert_allclose(b["pred_q97.5"] - b["pred_q2.5"],
                               2 * 1.96 * np.sqrt(sd_sim**2 + SIGMA**2), rtol=0.15)
    at = pred.at_data
    assert len(at) == TIMES.size and np.all(at["pred_q2.5"] < at["sim_q2.5"])
    assert save_plot(pred, tmp_path / "predictive.png").stat().st_size > 5000
    for back in (sb.load(sb.save(pred, tmp_path / "pred.npz")),
                 PredictiveResult.from_dict(pred.to_dict())):
        assert isinstance(back, PredictiveResult) and back.n_draws == pred.n_draws
        pd.testing.assert_frame_equal(back.to_pandas(), pred.to_pandas())
        pd.testing.assert_frame_equal(back.at_data, pred.at_data)


# ----- priors ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def with_priors():
    extra = [
        # log10-scale parameter with a logNormal prior on its linear value: after the
        # Jacobian, log10(k) ~ N(0.5 / ln 10, (0.4 / ln 10)^2)
        sb.Parameter("k", 1.0, 1e-3, 1e3, "log10", prior=sb.Prior("logNormal", (0.5, 0.4))),
        # a prior on the parameter's own scale: log10(j) ~ N(1, 0.3^2)
        sb.Parameter("j", 1.0, 1e-3, 1e3, "log10",
                     prior=sb.Prior("parameterScaleNormal", (1.0, 0.3))),
    ]
    return line_problem(extra=extra, a_prior=sb.Prior("normal", (2.0, 0.1)))


@pytest.mark.slow  # kept out of the default run for time; run with -m slow
def test_petab_priors_give_the_analytic_posterior(with_priors):
    problem, y = with_priors
    fit = FitResult(problem.parameter_ids, [{"nll": 1.0, "x": problem.x_nominal}])
    res = sample(problem, n_chains=4, n_warmup=500, n_samples=1000, seed=3, init=fit)
    assert res.converged() and res.n_divergences == 0
    s, ess = res.flat(), res.ess_bulk
    mean, cov = exact_line_posterior(y, prior_a=(2.0, 0.1))
    flat_mean, _ = exact_line_posterior(y)
    assert mean[0] - flat_mean[0] > 0.3  # the prior pulls a far from the data's estimate
    for k in range(2):
        assert_mean_sd(s[:, k], mean[k], math.sqrt(cov[k, k]), ess[k])
    assert_mean_sd(s[:, 2], 0.5 / LN10, 0.4 / LN10, ess[2])
    assert_mean_sd(s[:, 3], 1.0, 0.3, ess[3])
    lin = res.samples_linear.reshape(-1, 4)
    assert np.median(np.log(lin[:, 2])) == pytest.approx(0.5, abs=0.05)


def test_uniform_prior_ignores_petab_priors(with_priors):
    problem, y = with_priors
    lo, hi = problem.lower, problem.upper
    starts = np.random.default_rng(0).uniform(lo + 0.4 * (hi - lo), hi - 0.4 * (hi - lo),
                                              size=(2, 4))
    res = sample(problem, n_chains=2, n_warmup=400, n_samples=800, seed=0, init=starts,
                 prior="uniform", chain_method="sequential")
    s, ess = res.flat(), res.ess_bulk
    assert np.all(res.rhat < 1.02)
    mean, cov = exact_line_posterior(y)
    assert_mean_sd(s[:, 0], mean[0], math.sqrt(cov[0, 0]), ess[0])
    # k and j: uniform on [-3, 3] in log10
    for k in (2, 3):
        assert_mean_sd(s[:, k], 0.0, 6 / math.sqrt(12), ess[k])
        assert np.all(np.abs(s[:, k]) < 3)


# ----- pieces ---------------------------------------------------------------------------------
def test_rank_diagnostics_on_known_chains():
    rng = np.random.default_rng(0)
    iid = rng.standard_normal((4, 2000))
    d = rank_diagnostics(iid)
    assert d["rhat"][0] < 1.01
    assert d["ess_bulk"][0] == pytest.approx(8000, rel=0.15)
    # AR(1) chains: ESS = N (1 - rho) / (1 + rho)
    rho = 0.8
    ar = np.zeros((4, 4000))
    for t in range(1, ar.shape[1]):
        ar[:, t] = rho * ar[:, t - 1] + math.sqrt(1 - rho**2) * rng.standard_normal(4)
    d = rank_diagnostics(ar)
    assert d["ess_bulk"][0] == pytest.approx(16000 * (1 - rho) / (1 + rho), rel=0.25)
    # chains around different means, or with different spreads, do not mix
    shifted = iid + np.array([0.0, 0.0, 0.0, 1.0])[:, None]
    assert rank_diagnostics(shifted)["rhat"][0] > 1.05
    spread = iid * np.array([1.0, 1.0, 1.0, 3.0])[:, None]
    assert rank_diagnostics(spread)["rhat"][0] > 1.05  # the folded R-hat sees it
    with pytest.raises(InputError, match="draws"):
        rank_diagnostics(np.zeros((2, 3)))


def test_bad_arguments(flat):
    problem, _, res = flat
    cases = [
        (dict(n_chains=0), "n_chains"), (dict(n_samples=2), "n_samples"),
        (dict(n_warmup=-1), "n_warmup"), (dict(prior="flat"), "prior"),
        (dict(chain_method="parallel"), "chain_method"), (dict(target_accept=1.5),
                                                          "target_accept"),
        (dict(max_tree_depth=0), "max_tree_depth"), (dict(jitter=-1.0), "jitter"),
        (dict(init=[0.0, 1.0]), "shape"), (dict(init=[0.0, 1.0, 3.5]), "outside the bounds"),
        (dict(init="best"), "init"),
        (dict(init=FitResult(("a", "b", "c"), [{"nll": math.nan, "x": None}])),
         "no successful start"),
    ]
    for kw, match in cases:
        with pytest.raises(InputError, match=match):
            sample(problem, **kw)
    with pytest.raises(InputError, match="Problem"):
        sample("problem.yaml")
    # an unbounded parameter without a prior has no proper uniform prior
    unbounded, _ = line_problem(bounds=(-math.inf, math.inf))
    with pytest.raises(InputError, match="'a'.*not proper"):
        sample(unbounded)
    # a start outside the support of a PEtab prior
    outside, _ = line_problem(a_prior=sb.Prior("uniform", (5.0, 6.0)))
    with pytest.raises(InputError, match="prior density is zero"):
        sample(outside)
    with pytest.raises(InputError, match="estimates"):
        res.predictive(unbounded)
    with pytest.raises(InputError, match="n_draws"):
        res.predictive(problem, n_draws=1)


BOEHM_REFERENCE = Path(__file__).parent / "data" / "reference" / "boehm_pypesto.json"


def _assert_quantiles_match_reference(summary, label):
    """Quantiles ``summary[pid]["q2.5" | "q50" | "q97.5"]`` (with ``ess_bulk`` and
    ``ess_tail``) against the importance-sampling posterior of the Boehm problem computed
    with pyPESTO's RoadRunner likelihood (benchmarks/pypesto_reference.py; scalebridge not
    involved), held to 5 Monte Carlo standard errors of the difference. The standard error
    of a p-quantile from n effective draws is sqrt(p (1 - p) / n) dq/dp; with ESS from
    4 chains it runs low: over the 27 quantiles of the long run the differences are 1.3
    such errors (root mean square; largest 4.3, the median of Epo_degradation_BaF3, 0.1
    posterior sd), while two importance-sampling seeds differ by 0.94 of their own (largest
    2.0)."""
    ref = json.loads(BOEHM_REFERENCE.read_text())["importance"]
    for pid, r in ref["parameters"].items():
        for level, q_ref, dqdp in zip(ref["quantile_levels"], r["quantiles"], r["dq_dp"],
                                      strict=True):
            ours = summary[pid][f"q{100 * level:g}"]
            ess = summary[pid]["ess_bulk" if level == 0.5 else "ess_tail"]
            se = math.sqrt(level * (1 - level)) * dqdp * math.sqrt(1 / ess + 1 / r["ess"])
            assert abs(ours - q_ref) < 5 * se, (label, pid, level, ours, q_ref, se)


def test_boehm_posterior_benchmark_matches_importance_sampling():
    """The long NUTS run of benchmarks/boehm_posterior.py (4 x 1000 draws, stored in its
    results file) against pyPESTO-likelihood importance sampling (ESS about 16,600). The
    pyPESTO adaptive-Metropolis chains in the same file are 8-18% too narrow in every
    parameter's standard deviation and are not used as the reference."""
    result = json.loads((Path(__file__).parents[1] / "benchmarks" / "results"
                         / "boehm_posterior.json").read_text())["posterior"]
    _assert_quantiles_match_reference(result["summary"], "benchmark")


@pytest.mark.slow
def test_boehm_short_posterior_run():
    """A short NUTS run on the Boehm PEtab problem (minutes): the draws stay in the bounds and
    in the region of the published optimum, and the posterior quantiles agree with
    importance sampling of pyPESTO's RoadRunner likelihood under the same uniform prior on
    [-5, 5] in log10 (benchmarks/pypesto_reference.py) within their Monte Carlo error;
    benchmarks/boehm_posterior.py runs the long one."""
    yaml = BOEHM_REFERENCE.parents[1] / "petab" / "Boehm_JProteomeRes2014" / \
        "Boehm_JProteomeRes2014.yaml"
    problem = sb.load_petab(yaml)
    res = sample(problem, n_chains=2, n_warmup=200, n_samples=200, seed=0,
                 chain_method="sequential")
    s = res.flat()
    assert np.all((s > -5) & (s < 5))
    nll = [problem.nll(x) for x in s[::20]]
    # 9 parameters: -log posterior about optimum + chi2_9 / 2 (flat directions add a little)
    assert 138.2 < np.median(nll) < 138.222 + 15
    _assert_quantiles_match_reference(res.summary().to_dict("index"), "short run")
