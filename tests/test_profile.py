"""Profile likelihoods and Fisher intervals (scalebridge.infer.profile) on problems with known
answers: a model linear in its parameters (exact quadratic profiles, analytic standard
errors), exponential decay (near-linear regime, exact conditional optimum), a product of two
parameters and a saturating response (non-identifiable), resume, Dask, and Boehm."""

import json
import math
import warnings
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

import scalebridge as sb
from conftest import peer
from scalebridge.errors import InputError
from scalebridge.infer import Problem
from scalebridge.infer.fit import local_minimize
from scalebridge.infer.profile import (
    ProfileResult,
    fisher_intervals,
    profile,
    profile_threshold,
)
from scalebridge.model.parameter import Parameter
from scalebridge.report import save_plot

Z95 = norm.ppf(0.975)
DATA = Path(__file__).parent / "data"
BOEHM = DATA / "petab" / "Boehm_JProteomeRes2014" / "Boehm_JProteomeRes2014.yaml"
# profiles computed by pyPESTO alone (RoadRunner likelihood, L-BFGS-B, pyPESTO's profiler):
# benchmarks/pypesto_reference.py, provenance in the file and in tests/data/README.md
PYPESTO = DATA / "reference" / "boehm_pypesto.json"


def _profiles(seen):
    """A progress callback that keeps each finished ParameterProfile."""
    return lambda done, total, **info: seen.append(info["profile"])


def _optimum(problem, x0):
    out = local_minimize(problem.nll_grad_fim, x0, problem.lower, problem.upper)
    assert out["success"]
    return np.asarray(out["x"])


# ----- y = a + b t: linear in the parameters, known sigma --------------------------------------
T_LINE = np.linspace(0.0, 4.0, 9)
SIGMA = 0.2


@pytest.fixture(scope="module")
def line():
    """``dy/dt = b, y(0) = a``: y = a + b t exactly; the least-squares answer is analytic."""
    model = sb.Model(name="line", states=["y"],
                     parameters={"a": Parameter("a", 1.0, -10.0, 10.0),
                                 "b": Parameter("b", 0.5, -10.0, 10.0)},
                     rhs=lambda t, y, p, u: jnp.stack([p[1]]) + 0.0 * y,
                     initial=lambda p: jnp.stack([p[0]]), stiff=False)
    y = 1.0 + 0.5 * T_LINE + SIGMA * np.random.default_rng(0).standard_normal(T_LINE.size)
    problem = Problem.from_table(model, pd.DataFrame(
        {"time": T_LINE, "observable": "y", "value": y, "sigma": SIGMA}))
    X = np.c_[np.ones_like(T_LINE), T_LINE]
    beta = np.linalg.solve(X.T @ X, X.T @ y)
    cov = SIGMA**2 * np.linalg.inv(X.T @ X)
    return problem, beta, cov


@pytest.mark.parametrize("method", ["fim", "hessian"])
def test_fisher_intervals_match_analytic_linear_model(line, method):
    problem, beta, cov = line
    df = fisher_intervals(problem, beta, method=method)
    se = np.sqrt(np.diag(cov))
    assert list(df.index) == ["a", "b"]
    np.testing.assert_allclose(df["se"], se, rtol=1e-6)
    np.testing.assert_allclose(df["ci_lower"], beta - Z95 * se, rtol=1e-6)
    np.testing.assert_allclose(df["ci_upper"], beta + Z95 * se, rtol=1e-6)
    np.testing.assert_allclose(df["ci_lower_lin"], df["ci_lower"])  # lin scale
    assert list(df["identifiable"]) == ["identifiable"] * 2
    # a 68% interval is the one-sigma interval
    np.testing.assert_allclose(fisher_intervals(problem, beta, alpha=0.6827)["ci_upper"],
                               beta + se, rtol=1e-4)


def test_profile_of_linear_model_is_the_exact_quadratic(line, tmp_path):
    problem, beta, cov = line
    res = profile(problem, beta)
    assert isinstance(res, ProfileResult) and res.parameter_ids == ("a", "b")
    assert res.threshold == pytest.approx(1.920729, abs=1e-6)
    assert res.nll_opt == pytest.approx(problem.nll(beta), rel=1e-12)
    se = np.sqrt(np.diag(cov))
    for i, pid in enumerate(("a", "b")):
        p = res[pid]
        j = 1 - i
        assert p.identifiable == "identifiable"
        assert p.stop == {"lower": "threshold", "upper": "threshold"}
        assert np.all(np.diff(p.values) > 0)
        # PL(c) - nll_opt = (c - beta_i)^2 / (2 var_i), the others at their conditional mean
        np.testing.assert_allclose(p.delta, (p.values - beta[i])**2 / (2 * cov[i, i]),
                                   atol=1e-7)
        cond = beta[j] + cov[j, i] / cov[i, i] * (p.values - beta[i])
        np.testing.assert_allclose(p.xs[:, j], cond, atol=1e-6)
        np.testing.assert_array_equal(p.xs[:, i], p.values)
        # the walk went past the threshold on both sides, with rises of about target_delta
        assert p.delta[0] > res.threshold and p.delta[-1] > res.threshold
        assert np.max(np.abs(np.diff(p.delta))) <= 2 * 0.15 + 1e-9
        # profile interval = Wald interval (exact for a linear Gaussian model)
        assert p.ci_lower == pytest.approx(beta[i] - Z95 * se[i], abs=1e-3 * se[i])
        assert p.ci_upper == pytest.approx(beta[i] + Z95 * se[i], abs=1e-3 * se[i])
        assert p.ci_lin == (p.ci_lower, p.ci_upper)
    s = res.summary()
    assert list(s.index) == ["a", "b"]
    for col in ("estimate", "ci_lower", "ci_upper", "ci_lower_lin", "ci_upper_lin",
                "identifiable"):
        assert col in s.columns
    # the result protocol: dict (through JSON), save/load, table, plot
    sb.save(res, tmp_path / "profiles.npz")
    for again in (ProfileResult.from_dict(json.loads(json.dumps(res.to_dict()))),
                  sb.load(tmp_path / "profiles.npz")):
        pd.testing.assert_frame_equal(again.summary().drop(columns="time_s"),
                                      s.drop(columns="time_s"))
    points = res.to_pandas()
    assert set(points["parameter"]) == {"a", "b"} and len(points) == sum(
        p.values.size for p in res.profiles.values())
    np.testing.assert_allclose(points["delta"], np.concatenate([res["a"].delta,
                                                                res["b"].delta]))
    for kind in ("delta", "ratio"):
        save_plot(res.plot(kind=kind), tmp_path / f"{kind}.png")
        assert (tmp_path / f"{kind}.png").stat().st_size > 5000


def test_better_optimum_is_reported_not_ignored(line):
    problem, beta, _ = line
    x_bad = beta + np.array([0.0, 0.05])  # b off its optimum: re-optimising a does not fix it
    with pytest.warns(UserWarning, match="x_opt is not the optimum"):
        res = profile(problem, x_bad, parameters="a")
    b = res.better_optimum
    assert b is not None and b["parameter"] == "a"
    assert b["nll"] < problem.nll(x_bad) - 1e-3
    assert problem.nll(np.asarray(b["x"])) == pytest.approx(b["nll"], rel=1e-10)
    assert res["a"].identifiable == "inconclusive (better optimum found)"
    assert "better_optimum" in res["a"].stop.values()


def test_resume_profiles_only_missing_parameters(line, tmp_path):
    problem, beta, _ = line
    seen = []
    first = profile(problem, beta, parameters=["b"], out=tmp_path, progress=_profiles(seen))
    assert [p.parameter for p in seen] == ["b"]
    data = json.loads((tmp_path / "profiles.json").read_text())
    assert data["format"] == "scalebridge-profile" and list(data["profiles"]) == ["b"]
    assert data["profiles"]["b"]["identifiable"] == "identifiable"

    seen.clear()
    both = profile(problem, beta, out=tmp_path, progress=_profiles(seen))
    assert [p.parameter for p in seen] == ["a"]
    assert both.parameter_ids == ("a", "b")
    np.testing.assert_array_equal(both["b"].nll, first["b"].nll)
    assert both["b"].ci_upper == first["b"].ci_upper
    saved = ProfileResult.from_dict(json.loads((tmp_path / "profiles.json").read_text()))
    assert set(saved.parameter_ids) == {"a", "b"}

    seen.clear()
    profile(problem, beta, out=tmp_path, progress=_profiles(seen))
    assert seen == []
    with pytest.raises(InputError, match=r"setting alpha \(0.95 -> 0.9\) changed"):
        profile(problem, beta, alpha=0.9, out=tmp_path)


def test_profile_runs_on_dask(line):
    distributed = peer("distributed")
    problem, beta, _ = line
    here = profile(problem, beta)
    # a worker process: the problem and the task function travel by pickle
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  scheduler_kwargs={"dashboard_address": ":0"}) as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        there = profile(problem, beta, executor=client)
    for pid in ("a", "b"):
        np.testing.assert_allclose(there[pid].nll, here[pid].nll, rtol=1e-12)
        assert there[pid].ci_lower == pytest.approx(here[pid].ci_lower, rel=1e-12)


def test_bad_arguments(line):
    problem, beta, _ = line
    with pytest.raises(InputError, match="'c' are not estimated parameters"):
        profile(problem, beta, parameters=["c"])
    with pytest.raises(InputError, match=r"x_opt has shape \(3,\)"):
        profile(problem, np.zeros(3))
    with pytest.raises(InputError, match="outside the bounds for b"):
        profile(problem, np.array([0.0, 20.0]))
    with pytest.raises(InputError, match="alpha must be in"):
        profile(problem, beta, alpha=1.5)
    with pytest.raises(InputError, match="method must be"):
        fisher_intervals(problem, beta, method="sandwich")
    assert profile_threshold(0.99) == pytest.approx(3.317448, abs=1e-6)


# ----- exponential decay y = y0 exp(-k t) ------------------------------------------------------
T_DECAY = np.array([0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0])


@pytest.fixture(scope="module")
def decay_problem():
    model = sb.Model(name="decay", states=["y"],
                     parameters={"k": Parameter("k", 0.5, 0.01, 5.0),
                                 "y0": Parameter("y0", 2.0, 0.1, 10.0, "log10")},
                     rhs=lambda t, y, p, u: -p[0] * y,
                     initial=lambda p: jnp.stack([p[1]]), stiff=False)
    rng = np.random.default_rng(1)
    y = 2.0 * np.exp(-0.5 * T_DECAY) + 0.02 * rng.standard_normal(T_DECAY.size)
    problem = Problem.from_table(model, pd.DataFrame(
        {"time": T_DECAY, "observable": "y", "value": y, "sigma": 0.02}))
    return problem, y, _optimum(problem, problem.x_nominal)


def test_decay_profile_agrees_with_fisher_and_exact_conditional_optimum(decay_problem):
    problem, y, x_opt = decay_problem
    res = profile(problem, x_opt)
    fim = fisher_intervals(problem, x_opt)
    for pid in ("k", "y0"):
        p = res[pid]
        assert p.identifiable == "identifiable"
        assert np.all(p.nll >= res.nll_opt - 1e-6)
        width = fim.loc[pid, "ci_upper"] - fim.loc[pid, "ci_lower"]
        # near-linear regime (1% noise): profile and Wald intervals agree to a few percent
        assert p.ci_lower == pytest.approx(fim.loc[pid, "ci_lower"], abs=0.03 * width)
        assert p.ci_upper == pytest.approx(fim.loc[pid, "ci_upper"], abs=0.03 * width)
        assert p.ci_lower < p.x_opt < p.ci_upper
        # each recorded point is what it claims
        for j in (0, p.values.size // 2, -1):
            assert problem.nll(p.xs[j]) == pytest.approx(p.nll[j], abs=1e-8)
    # k fixed: y0 enters linearly, its optimum is the weighted least-squares solution
    pk = res["k"]
    e = np.exp(-pk.values[:, None] * T_DECAY)
    y0_exact = (e @ y) / np.sum(e * e, axis=1)
    np.testing.assert_allclose(10 ** pk.xs[:, 1], y0_exact, rtol=1e-6)
    nll_exact = [problem.nll(np.array([k, math.log10(v)]))
                 for k, v in zip(pk.values, y0_exact, strict=True)]
    np.testing.assert_allclose(pk.nll, nll_exact, atol=1e-8)
    # y0 is on log10 scale: the linear interval is the transformed scaled one
    lo, hi = res["y0"].ci_lin
    assert lo == pytest.approx(10 ** res["y0"].ci_lower) and hi > 2.0 > lo


# ----- non-identifiable parameters -------------------------------------------------------------
def test_product_of_parameters_is_flagged_non_identifiable():
    """y(0) = a c: only the product is determined; the profile of a is flat up to its
    bounds, c compensating."""
    model = sb.Model(name="product", states=["y"],
                     parameters={"k": Parameter("k", 0.5, 0.01, 5.0),
                                 "a": Parameter("a", 1.0, 0.1, 10.0, "log10"),
                                 "c": Parameter("c", 2.0, 0.01, 100.0, "log10")},
                     rhs=lambda t, y, p, u: -p[0] * y,
                     initial=lambda p: jnp.stack([p[1] * p[2]]), stiff=False)
    y = 2.0 * np.exp(-0.5 * T_DECAY) + 0.02 * np.random.default_rng(2).standard_normal(7)
    problem = Problem.from_table(model, pd.DataFrame(
        {"time": T_DECAY, "observable": "y", "value": y, "sigma": 0.02}))
    x_opt = _optimum(problem, problem.x_nominal)
    res = profile(problem, x_opt, parameters=["a", "k"], max_step=0.1)
    a = res["a"]
    assert a.identifiable == "practically non-identifiable (both)"
    assert a.ci_lower is None and a.ci_upper is None and a.ci_lin == (None, None)
    assert a.stop == {"lower": "bound", "upper": "bound"}
    # walked to both bounds
    assert a.values[0] == problem.lower[1] and a.values[-1] == problem.upper[1]
    assert np.max(np.abs(a.delta)) < 1e-4  # flat: c compensates
    np.testing.assert_allclose(a.xs[:, 1] + a.xs[:, 2], x_opt[1] + x_opt[2], atol=1e-4)
    assert res["k"].identifiable == "identifiable"
    summary = res.summary()
    assert math.isnan(summary.loc["a", "ci_lower"])
    fim = fisher_intervals(problem, x_opt)
    assert fim.loc["a", "identifiable"].startswith("non-identifiable (singular FIM")
    assert fim.loc["c", "identifiable"].startswith("non-identifiable")
    assert fim.loc["k", "identifiable"] == "identifiable"
    assert math.isinf(fim.loc["a", "se"])


def test_saturating_response_is_non_identifiable_on_one_side():
    """y = 1 - exp(-k t) measured after it has saturated: large k fit as well as the
    optimum, small k do not, so only the lower end of the interval exists."""
    model = sb.Model(name="saturation", states=["y"],
                     parameters={"k": Parameter("k", 3.0, 0.01, 100.0, "log10")},
                     rhs=lambda t, y, p, u: p[0] * (1.0 - y), initial=[0.0], stiff=True)
    t = np.array([1.0, 2.0, 3.0])
    data = pd.DataFrame({"time": t, "observable": "y", "value": 1 - np.exp(-3.0 * t),
                         "sigma": 0.05})
    problem = Problem.from_table(model, data)
    res = profile(problem, problem.x_nominal)
    k = res["k"]
    assert k.identifiable == "practically non-identifiable (upper)"
    assert k.stop == {"lower": "threshold", "upper": "bound"}
    assert k.ci_upper is None and k.ci_lower < math.log10(3.0)
    assert k.values[-1] == pytest.approx(2.0)
    assert k.delta[-1] < res.threshold


# ----- Boehm et al. 2014 -----------------------------------------------------------------------
# Interval ends against pyPESTO's. Errors of either side: ours interpolates the NLL linearly
# between profile points that rise by <= target_delta, an error of about
# target_delta^2 / (8 * 1.96^3) * se: 1.2e-4 in log10 for k_phos (se 0.045) at
# target_delta 0.4, < 4e-5 for the se (0.04-0.15) here at the default 0.15; pyPESTO's ends
# are the parabola through its three points around the crossing (exact for a quadratic
# profile), and the two likelihoods (Rodas5 at rtol 1e-8, CVODE at 1e-10) differ by 2e-6 in
# NLL, 1e-6 in the ends. Measured with the default steps: within 8e-5 for all six profiled
# parameters. Held to 1e-3 (coarse steps) and 3e-4 (default steps) in log10.
PROFILE_TOL_COARSE, PROFILE_TOL = 1e-3, 3e-4


def _pypesto_profiles():
    return json.loads(PYPESTO.read_text())["profiles"]


def test_boehm_profile_of_k_phos():
    """One parameter of the PEtab benchmark around its published optimum (coarse steps)."""
    problem = sb.load_petab(BOEHM)
    res = profile(problem, parameters="k_phos", target_delta=0.4)
    assert res.nll_opt == pytest.approx(138.2220, abs=1e-4)
    p = res["k_phos"]
    assert p.identifiable == "identifiable"
    assert np.all(p.nll >= res.nll_opt - 1e-3)
    ref = _pypesto_profiles()
    assert ref["nll_opt"] == pytest.approx(res.nll_opt, abs=1e-4)
    lo, hi = ref["parameters"]["k_phos"]["ci"]
    assert p.ci_lower == pytest.approx(lo, abs=PROFILE_TOL_COARSE)
    assert p.ci_upper == pytest.approx(hi, abs=PROFILE_TOL_COARSE)
    hess = fisher_intervals(problem, method="hessian")
    assert hess.loc["k_phos", "ci_lower"] == pytest.approx(p.ci_lower, abs=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert res.better_optimum is None


@pytest.mark.slow  # kept out of the default run for time; run with -m slow
def test_boehm_profiles_match_pypesto():
    """All parameters that pyPESTO profiled, with the default steps."""
    problem = sb.load_petab(BOEHM)
    ref = _pypesto_profiles()["parameters"]
    res = profile(problem, parameters=list(ref))
    for pid, r in ref.items():
        p = res[pid]
        lo, hi = r["ci"]
        assert p.ci_lower == pytest.approx(lo, abs=PROFILE_TOL), pid
        assert p.ci_upper == pytest.approx(hi, abs=PROFILE_TOL), pid
