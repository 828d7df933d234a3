"""Multi-start fitting (scalebridge.infer.fit) on the Boehm PEtab benchmark: exact residual
formulation, the best NLL, resume from an output directory, failed starts, determinism."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import scalebridge as sb
import scalebridge.infer.fit as fitmod
from conftest import peer
from scalebridge.errors import InputError
from scalebridge.infer import Problem
from scalebridge.infer.fit import FitResult, fit, residual_function
from scalebridge.infer.space import ParameterSpace
from scalebridge.petab import load_petab
from scalebridge.report import save_plot

BOEHM = (Path(__file__).parent / "data" / "petab" / "Boehm_JProteomeRes2014"
         / "Boehm_JProteomeRes2014.yaml")
BOEHM_OPT = 138.2220  # published optimum


def _into(seen):
    """A progress callback that keeps the info of each finished start."""
    return lambda done, total, **info: seen.append(info)


@pytest.fixture(scope="module")
def boehm():
    return load_petab(BOEHM)


def _peer_nll():
    """The NLL of the Boehm PEtab problem from pyPESTO's libroadrunner objective (petab's
    import, CVODE at rtol 1e-10): a likelihood that shares no code with scalebridge."""
    petab = peer("petab.v1", "petab")
    pypesto_petab = peer("pypesto.petab", "pypesto")
    problem = pypesto_petab.PetabImporter(petab.Problem.from_yaml(str(BOEHM)),
                                          simulator_type="roadrunner").create_problem()
    opts = problem.objective.solver_options
    opts.relative_tolerance, opts.absolute_tolerance = 1e-10, 1e-12
    names = [problem.x_names[i] for i in problem.x_free_indices]
    assert names == ["Epo_degradation_BaF3", "k_exp_hetero", "k_exp_homo", "k_imp_hetero",
                     "k_imp_homo", "k_phos", "sd_pSTAT5A_rel", "sd_pSTAT5B_rel",
                     "sd_rSTAT5A_rel"]
    return lambda x: float(problem.objective(np.asarray(x, float)))


@pytest.mark.slow  # kept out of the default run for time; run with -m slow
def test_residuals_reproduce_the_nll(boehm):
    res, jac, const = residual_function(boehm)
    xs = [boehm.x_nominal, *boehm.space.start_points(3, seed=0)]
    for x in xs:
        r = res(x)
        assert np.all(np.isfinite(r))
        assert 0.5 * np.sum(r**2) + const == pytest.approx(boehm.nll(x), rel=1e-10)
    J = jac(boehm.x_nominal)
    assert J.shape == (r.size, len(boehm.parameter_ids))
    # gradient of 0.5 |r|^2 is J^T r and equals the Problem's NLL gradient
    _, g = boehm.nll_and_grad(boehm.x_nominal)
    np.testing.assert_allclose(J.T @ res(boehm.x_nominal), g, rtol=1e-6, atol=1e-8)


def test_start_points_latin_hypercube_and_deterministic(boehm):
    lo, hi = boehm.lower, boehm.upper
    a = boehm.space.start_points(20, seed=0)
    assert a.shape == (20, 9)
    assert np.all(a >= lo) and np.all(a <= hi)
    # one point per stratum in every dimension
    strata = np.floor((a - lo) / (hi - lo) * 20).astype(int)
    for k in range(a.shape[1]):
        assert sorted(strata[:, k]) == list(range(20))
    np.testing.assert_array_equal(a, boehm.space.start_points(20, seed=0))
    assert not np.allclose(a, boehm.space.start_points(20, seed=1))
    # the starts of a seed do not depend on n_starts (needed for resume)
    np.testing.assert_array_equal(boehm.space.start_points(3, seed=0), a[:3])
    np.testing.assert_array_equal(boehm.space.start_points(25, seed=0)[:20], a)


def test_boehm_multistart_trf(boehm, tmp_path):
    seen = []
    res = fit(boehm, n_starts=1, seed=0, optimizer="trf", progress=_into(seen))
    assert isinstance(res, FitResult) and len(seen) == 1
    rec = res.records[0]
    for key in ("index", "x0", "x", "params", "nll", "success", "status", "message",
                "iterations", "time_s"):
        assert key in rec
    assert rec["success"]
    # regression check (a value of this project's own run, not a reference): start 0 of seed
    # 0 ends at the local optimum 147.544 (the global 138.2220 is not reached from the first
    # LHS starts; see docs/decisions/0007-local-optimiser.md)
    assert res.best_nll == pytest.approx(147.544, abs=0.01)
    # independent checks: the published optimum bounds it from below; pyPESTO's libroadrunner
    # likelihood of the same PEtab problem gives the reported NLL at x, and x is a local
    # minimum of that peer likelihood along every coordinate (steps of 0.01 in log10)
    assert res.best_nll >= BOEHM_OPT - 1e-3
    x = np.asarray(rec["x"])
    peer_nll = _peer_nll()
    # the peer runs CVODE at rtol 1e-10, ours Rodas5 at the default 1e-8: the NLLs agree to
    # 1e-5 at the published optimum (tests/test_petab.py)
    assert peer_nll(x) == pytest.approx(res.best_nll, abs=1e-4)
    for i in range(x.size):
        for step in (-0.01, 0.01):
            y = x.copy()
            y[i] = np.clip(y[i] + step, boehm.lower[i], boehm.upper[i])
            if y[i] != x[i]:
                assert peer_nll(y) > res.best_nll - 1e-4, (boehm.parameter_ids[i], step)
    assert res.n_converged == 1
    assert set(res.best_params) == set(boehm.parameter_ids)
    x = np.asarray(rec["x"])
    assert res.best_params["Epo_degradation_BaF3"] == pytest.approx(10 ** x[0])
    assert boehm.nll(x) == pytest.approx(res.best_nll)
    save_plot(res, tmp_path / "waterfall.png")
    assert (tmp_path / "waterfall.png").stat().st_size > 0


@pytest.mark.parametrize("optimizer", ["fides", "trf"])
def test_reaches_published_optimum_from_nearby_start(boehm, monkeypatch, optimizer):
    rng = np.random.default_rng(3)
    x0 = boehm.x_nominal + rng.uniform(-0.3, 0.3, size=9)
    monkeypatch.setattr(ParameterSpace, "start_points", lambda s, n, seed=0: np.array([x0]))
    res = fit(boehm, n_starts=1, optimizer=optimizer, max_iter=200)
    assert boehm.nll(x0) > BOEHM_OPT + 5
    assert res.best_nll <= 138.2221


def test_lbfgs_runs(boehm):
    res = fit(boehm, n_starts=1, seed=0, optimizer="lbfgs", max_iter=5)
    rec = res.records[0]
    assert rec["iterations"] <= 5 and math.isfinite(rec["nll"])
    assert rec["nll"] < boehm.nll(np.asarray(rec["x0"]))


def test_resume_runs_only_missing_starts(boehm, tmp_path):
    first = []
    r2 = fit(boehm, n_starts=2, seed=0, out=tmp_path, max_iter=4, progress=_into(first))
    assert [r["start"] for r in first] == [0, 1]
    data = json.loads((tmp_path / "result.json").read_text())
    assert data["n_starts"] == 2 and len(data["starts"]) == 2
    assert data["best_nll"] == pytest.approx(r2.best_nll)
    assert set(data["best_params"]) == set(boehm.parameter_ids)
    assert data["n_converged"] == r2.n_converged

    second = []
    r3 = fit(boehm, n_starts=3, seed=0, out=tmp_path, max_iter=4, progress=_into(second))
    assert [r["start"] for r in second] == [2]
    assert r3.n_starts == 3
    for a, b in zip(r2.records, r3.records[:2], strict=True):
        assert a["x0"] == pytest.approx(b["x0"])
        assert a["x"] == pytest.approx(b["x"])
        assert a["nll"] == pytest.approx(b["nll"])
    # the resumed run equals a fresh one
    fresh = fit(boehm, n_starts=3, seed=0, max_iter=4)
    assert [r["nll"] for r in fresh.records] == pytest.approx([r["nll"] for r in r3.records])
    assert len(json.loads((tmp_path / "result.json").read_text())["starts"]) == 3
    # nothing left to do
    again = []
    fit(boehm, n_starts=3, seed=0, out=tmp_path, max_iter=4, progress=_into(again))
    assert again == []
    # another seed in the same directory is refused, not overwritten
    with pytest.raises(InputError, match="seed"):
        fit(boehm, n_starts=1, seed=5, out=tmp_path, max_iter=4)


def test_failed_start_is_recorded(boehm, tmp_path, monkeypatch):
    good = boehm.space.start_points(3, seed=0)
    bad = good.copy()
    bad[1] = np.nan  # the simulation at this start gives NaN
    monkeypatch.setattr(ParameterSpace, "start_points", lambda s, n, seed=0: bad[:n])
    seen = []
    res = fit(boehm, n_starts=3, out=tmp_path, max_iter=3, progress=_into(seen))
    assert len(seen) == 3
    assert not res.records[1]["success"] and math.isnan(res.records[1]["nll"])
    assert res.records[1]["message"]  # why it failed
    assert res.records[0]["success"] is not None and math.isfinite(res.records[0]["nll"])
    assert math.isfinite(res.records[2]["nll"])
    assert [r["index"] for r in res.failed] == [1]
    data = json.loads((tmp_path / "result.json").read_text())
    assert data["starts"][1]["nll"] is None


@pytest.mark.parametrize("optimizer", ["fides", "trf"])
def test_failed_simulation_exception_is_recorded(boehm, monkeypatch, optimizer):
    def boom(x):
        raise RuntimeError("simulation of model exploded")

    if optimizer == "trf":
        monkeypatch.setattr(fitmod._compiled(boehm), "res", boom)
    else:
        monkeypatch.setattr(boehm, "nll_grad_fim", boom)
    res = fit(boehm, n_starts=2, max_iter=3, optimizer=optimizer)
    assert all(not r["success"] for r in res.records)
    assert "simulation failed" in res.records[0]["message"]
    assert math.isnan(res.best_nll) and res.n_converged == 0


def test_deterministic_for_a_seed(boehm):
    a = fit(boehm, n_starts=2, seed=7, max_iter=4)
    b = fit(boehm, n_starts=2, seed=7, max_iter=4)
    for ra, rb in zip(a.records, b.records, strict=True):
        assert ra["x0"] == rb["x0"] and ra["x"] == rb["x"] and ra["nll"] == rb["nll"]


def test_bad_arguments(boehm):
    with pytest.raises(InputError, match="optimizer"):
        fit(boehm, optimizer="nelder-mead")
    with pytest.raises(InputError, match="n_starts"):
        fit(boehm, n_starts=0)


def _production_decay(**params):
    """dy/dt = a - k y: steady state a / k."""
    specs = {"a": sb.Parameter("a", 2.0, 0.01, 100.0, "log10"),
             "k": sb.Parameter("k", 0.5, 0.01, 100.0, "log10")}
    specs.update(params)
    return sb.Model(name="production", states=["y"], parameters=specs,
                    rhs=lambda t, y, p, u: p[0] - p[1] * y, initial=[0.0], stiff=False)


def test_steady_state_measurements_and_time_course_together():
    model = _production_decay()
    data = pd.DataFrame({"time": [1.0, 2.0, np.inf], "observable": "y",
                         "value": [0.9, 1.5, 4.1], "sigma": 0.1})
    pb = Problem.from_table(model, data)
    a, k = 2.0, 0.5
    y = np.array([a / k * (1 - np.exp(-k * 1.0)), a / k * (1 - np.exp(-k * 2.0)), a / k])
    expected = np.sum(0.5 * np.log(2 * np.pi * 0.01) + 0.5 * ((data["value"] - y) / 0.1) ** 2)
    assert pb.nll() == pytest.approx(expected, rel=1e-6)
    sim = pb.simulations()
    assert sim["simulation"].iloc[2] == pytest.approx(a / k, rel=1e-6)
    # the gradient through the steady state: d(a/k)/dlog10(a) = ln(10) a / k
    v, g = pb.nll_and_grad()
    h = 1e-5
    fd = [(pb.nll(pb.x_nominal + h * e) - pb.nll(pb.x_nominal - h * e)) / (2 * h)
          for e in np.eye(2)]
    np.testing.assert_allclose(g, fd, rtol=1e-4)


def test_initialization_priors_shape_the_start_points():
    model = _production_decay()
    data = pd.DataFrame({"time": [1.0, 2.0], "observable": "y", "value": [0.9, 1.5],
                         "sigma": 0.1})
    base = Problem.from_table(model, data)
    space = sb.ParameterSpace(base.parameters,
                              init_priors={"a": sb.Prior("parameterScaleNormal", (0.3, 0.05))})
    pb = Problem(base.model, space, base.conditions, list(base.observables.values()),
                 base.measurements)
    x = pb.space.start_points(200, seed=0)
    # log10(a) ~ N(0.3, 0.05) truncated to [-2, 2]; k stays uniform on its bounds
    assert np.mean(x[:, 0]) == pytest.approx(0.3, abs=0.01)
    assert np.std(x[:, 0]) == pytest.approx(0.05, rel=0.1)
    assert x[:, 1].min() < -1.5 and x[:, 1].max() > 1.5
    with pytest.raises(InputError, match="not parameters of this space"):
        sb.ParameterSpace(base.parameters, init_priors={"nope": sb.Prior("normal", (0, 1))})


def test_objective_priors_enter_the_fit():
    # a normal prior on log10(k) pulls the estimate from the data's value towards it
    model = _production_decay(a=sb.Parameter("a", 2.0, estimate=False),
                              k=sb.Parameter("k", 0.5, 0.01, 100.0, "log10",
                                             prior=sb.Prior("parameterScaleNormal",
                                                            (0.0, 0.1))))
    t = np.linspace(0.5, 4.0, 6)
    data = pd.DataFrame({"time": t, "observable": "y",
                         "value": 2.0 / 0.5 * (1 - np.exp(-0.5 * t)), "sigma": 0.5})
    pb = Problem.from_table(model, data)
    assert pb.space.has_priors
    v, g, h = pb.objective_grad_hess()
    assert v == pytest.approx(pb.nll() - pb.log_prior())
    fd = (pb.nll(pb.x_nominal + 1e-6) - pb.log_prior(pb.x_nominal + 1e-6)
          - pb.nll(pb.x_nominal - 1e-6) + pb.log_prior(pb.x_nominal - 1e-6)) / 2e-6
    assert g[0] == pytest.approx(fd, rel=1e-5)
    res = fit(pb, n_starts=3, seed=0)
    x = res.best_x[0]
    assert np.log10(0.5) < x < 0.0  # between the data's optimum and the prior mean
    assert res.best["objective"] == pytest.approx(res.best["nll"] - pb.log_prior(res.best_x))
    with pytest.raises(InputError, match="priors"):
        fit(pb, optimizer="trf")


def test_fit_result_round_trips_through_save_load_and_dict(tmp_path):
    model = _production_decay()
    t = np.linspace(0.5, 4.0, 6)
    data = pd.DataFrame({"time": t, "observable": "y",
                         "value": 2.0 / 0.5 * (1 - np.exp(-0.5 * t)), "sigma": 0.1})
    pb = Problem.from_table(model, data)
    res = fit(pb, n_starts=3, seed=0, optimizer="lbfgs", max_iter=50)
    res.records[2].update(nll=math.nan, x=None, success=False)  # as a failed start
    sb.save(res, tmp_path / "fit.npz")
    back = sb.load(tmp_path / "fit.npz")
    assert isinstance(back, FitResult)
    assert back.best_nll == res.best_nll and back.n_converged == res.n_converged
    np.testing.assert_array_equal(back.best_x, res.best_x)
    assert back.best_params == res.best_params and math.isnan(back.records[2]["nll"])
    again = FitResult.from_dict(json.loads(json.dumps(res.to_dict(), allow_nan=False)))
    assert again.best_nll == res.best_nll and again.parameter_ids == res.parameter_ids
    table = back.to_pandas()
    assert list(table.index) == [0, 1, 2] and table.loc[res.best["index"], "nll"] == res.best_nll
    assert table["a"].iloc[0] == pytest.approx(res.records[0]["params"]["a"])
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    assert back.plot(ax=ax) is ax and len(ax.lines) == 2  # the waterfall and the threshold
    plt.close(fig)
    with pytest.raises(sb.errors.SerializationError, match="holds a 'fit_result'"):
        sb.load(tmp_path / "fit.npz", kind="model")
