"""The exploration loop: Bayesian optimisation, active learning, multi-fidelity, resuming."""

import importlib
import json
import math

import numpy as np
import pytest

import scalebridge  # noqa: F401  (float64)
from scalebridge.errors import InputError
from scalebridge.surrogate.explore import ExploreResult, Space, explore
from scalebridge.testproblems import BRANIN_BOUNDS, BRANIN_MIN, branin

# the module (scalebridge.surrogate re-exports the function under the same name)
ex = importlib.import_module("scalebridge.surrogate.explore")


def np_branin(x):
    return np.asarray(branin(np.asarray(x, float)))


def wiggly(x):
    """A 1D function with features of several scales on [0, 1]."""
    x = np.asarray(x, float)[:, 0]
    return np.sin(12 * x) + 0.5 * np.cos(31 * x) * x + 2 * x


def test_branin_reaches_the_minimum(tmp_path):
    res = explore(np_branin, BRANIN_BOUNDS, budget=30, seed=0)
    assert len(res.evaluations) == 30
    assert res.best_y < BRANIN_MIN + 1e-2
    assert res.best_y == pytest.approx(float(np_branin(res.best_x[None])[0]))
    # far better than the initial design alone
    n_init = sum(e["acquisition"] is None for e in res.evaluations)
    assert n_init == 6
    assert res.best_y < np.nanmin(res.y[:n_init]) - 1.0
    assert res.evaluations_to(BRANIN_MIN + 1e-2) <= 30
    assert all(e["acquisition"] is not None and e["acquisition"] >= 0
               for e in res.evaluations[n_init:])
    # the surrogate interpolates the evaluations, in the units of the objective
    m, v = res.surrogate.predict(res.X)
    np.testing.assert_allclose(np.asarray(m), res.y, rtol=1e-3, atol=1e-2)
    fig = res.plot(tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 1000 and fig is not None
    json.dumps(res.to_json(), allow_nan=False)


def test_maximisation_and_ucb_with_named_space():
    space = {"a": (-5.0, 10.0), "b": (0.0, 15.0)}
    res = explore(lambda x: -np_branin(x), space, budget=24, acquisition="ucb",
                  minimize=False, seed=1)
    assert -res.best_y < BRANIN_MIN + 0.5
    assert set(res.best_params) == {"a", "b"}
    assert np.all(np.diff(res.trace()[~np.isnan(res.trace())]) >= 0)


class Killed(Exception):
    pass


def test_resume_after_a_kill_gives_the_uninterrupted_result(tmp_path):
    calls = {"n": 0}

    def dying(x):
        calls["n"] += len(x)
        if calls["n"] > 11:
            raise Killed
        return wiggly(x)

    kw = dict(budget=16, seed=3, batch_size=2)
    with pytest.raises(Killed):
        explore(dying, [(0.0, 1.0)], out=tmp_path, **kw)
    saved = json.loads((tmp_path / "explore.json").read_text())
    assert 4 <= len(saved["evaluations"]) <= 11  # the finished rounds were kept
    resumed = explore(wiggly, [(0.0, 1.0)], out=tmp_path, **kw)
    fresh = explore(wiggly, [(0.0, 1.0)], **kw)
    assert [e["x"] for e in resumed.evaluations] == [e["x"] for e in fresh.evaluations]
    assert resumed.best_y == fresh.best_y
    # a finished run is loaded, not re-run; other settings are refused
    again = explore(lambda x: pytest.fail("re-evaluated"), [(0.0, 1.0)], out=tmp_path, **kw)
    assert again.best_y == fresh.best_y
    with pytest.raises(InputError, match="seed"):
        explore(wiggly, [(0.0, 1.0)], out=tmp_path, budget=16, seed=4, batch_size=2)


def test_batches_are_distinct_points():
    res = explore(wiggly, [(0.0, 1.0)], budget=13, batch_size=3, seed=0, n_initial=4)
    rounds = {}
    for e in res.evaluations:
        rounds.setdefault(e["batch"], []).append(e["x"][0])
    assert [len(v) for v in rounds.values()] == [4, 3, 3, 3]
    for xs in rounds.values():
        assert np.min(np.diff(np.sort(xs))) > 1e-3
    assert all(b["lipschitz"] > 0 for b in res.batches)


def test_non_finite_values_are_recorded_and_warned():
    def holes(x):
        y = wiggly(x)
        return np.where(np.asarray(x)[:, 0] > 0.8, np.nan, y)

    with pytest.warns(RuntimeWarning, match=r"\d+ of 14 evaluations gave a non-finite"):
        res = explore(holes, [(0.0, 1.0)], budget=14, seed=0, n_initial=6)
    assert res.n_failed >= 1
    assert all(e["y"] is None for e in res.evaluations if e["x"][0] > 0.8)
    assert np.isfinite(res.best_y) and res.best_x[0] <= 0.8
    with pytest.warns(RuntimeWarning, match="left out of the surrogate"):
        al = explore(holes, [(0.0, 1.0)], budget=12, seed=0, acquisition="variance")
    xs = [e["x"][0] for e in al.evaluations if e["y"] is None]
    assert len(set(xs)) == len(xs)  # a failed point is not proposed again


def test_active_learning_beats_random_points():
    rng = np.random.default_rng(7)
    xt = rng.random((400, 1))
    yt = wiggly(xt)
    n = 14
    al = explore(wiggly, [(0.0, 1.0)], budget=n, acquisition="variance", seed=0,
                 n_initial=4, test=(xt, yt))
    rmse_al = al.error["test_rmse"]
    assert al.error["mean_std"] < al.batches[0]["mean_std"]
    rand = []
    for s in range(5):
        u = np.random.default_rng(s).random((n, 1))
        y = wiggly(u)
        z = (y - y.mean()) / y.std()
        post, _ = ex._fit(u, np.zeros(n, int), z, 1, np.random.default_rng(0))
        m, _ = ex._predict_np(post, xt)
        rand.append(float(np.sqrt(np.mean((y.mean() + y.std() * np.asarray(m) - yt) ** 2))))
    assert rmse_al < np.median(rand)
    # the points spread over the interval: no gap wider than a quarter of it
    assert np.max(np.diff(np.sort(np.r_[0.0, al.X[:, 0], 1.0]))) < 0.25


def test_multi_fidelity_prefers_an_informative_cheap_level():
    def low(x):  # a cheap model, an affine map of the expensive one
        return 0.8 * wiggly(x) + 0.3

    res = explore([low, wiggly], [(0.0, 1.0)], costs=[0.05, 1.0], budget=4.0,
                  acquisition="variance", seed=0, n_initial=3)
    after = [e["fidelity"] for e in res.evaluations if e["acquisition"] is not None]
    assert after.count(0) > after.count(1)
    assert sum(e["cost"] for e in res.evaluations) <= 4.0 + 1e-9
    assert abs(res.surrogate.hyperparameters["rho"][0] - 1 / 0.8) < 0.2


@pytest.mark.slow
def test_multi_fidelity_ei_avoids_a_useless_cheap_level():
    rng = np.random.default_rng(1)
    noise = rng.standard_normal(4096)

    def useless(x):  # cheap but unrelated to the expensive model
        i = np.clip((np.asarray(x)[:, 0] * 4095).astype(int), 0, 4095)
        return noise[i]

    res2 = explore([useless, wiggly], [(0.0, 1.0)], costs=[0.5, 1.0], budget=10.0,
                   acquisition="ei", seed=0, n_initial=3)
    after2 = [e["fidelity"] for e in res2.evaluations if e["acquisition"] is not None]
    assert after2.count(1) > after2.count(0)
    assert math.isfinite(res2.best_y)


def test_space_and_input_errors():
    s = Space([(1e-3, 10.0), (-1.0, 1.0)], names=("k", "b"), log=(True, False))
    x = np.array([[0.01, 0.5], [1e-3, -1.0], [10.0, 1.0]])
    u = s.to_unit(x)
    np.testing.assert_allclose(u[1:], [[0, 0], [1, 1]])
    np.testing.assert_allclose(s.from_unit(u), x, rtol=1e-12)
    with pytest.raises(InputError, match="low < high"):
        Space([(1.0, 0.0)])
    with pytest.raises(InputError, match="log input"):
        Space([(0.0, 1.0)], log=(True,))
    with pytest.raises(InputError, match="pairs"):
        explore(wiggly, [1.0, 2.0], budget=10)
    with pytest.raises(InputError, match="acquisition"):
        explore(wiggly, [(0.0, 1.0)], budget=10, acquisition="pi")
    with pytest.raises(InputError, match="initial design"):
        explore(wiggly, [(0.0, 1.0)], budget=3)
    with pytest.raises(InputError, match="costs"):
        explore([wiggly, wiggly], [(0.0, 1.0)], budget=10)
    with pytest.raises(InputError, match="shape"):
        explore(lambda x: np.zeros((len(x), 2)), [(0.0, 1.0)], budget=10)
    assert isinstance(ExploreResult(s, [], [], "ei", True, None).to_json(), dict)


def test_cli_explore_finds_the_smallest_epidemic_and_resumes(tmp_path, capsys):
    from conftest import assert_one_line_error
    from scalebridge.cli.app import main

    argv = ["explore", "sir", "--output", "max:I", "--t-end", "30", "--points", "31",
            "--vary", "beta=0.2:0.6", "--vary", "gamma=0.05:0.2:log", "--budget", "10",
            "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "best (min) max:I" in text
    data = json.loads((tmp_path / "run" / "explore.json").read_text())
    assert len(data["evaluations"]) == 10
    assert (tmp_path / "run" / "explore.png").is_file()
    # the smallest peak: slowest spread (low beta) and fastest recovery (high gamma)
    assert data["best_params"]["beta"] < 0.3 and data["best_params"]["gamma"] > 0.12
    assert main(argv) == 0  # resumed: nothing new to simulate, same best
    assert json.loads((tmp_path / "run" / "explore.json").read_text())["best_y"] == \
        data["best_y"]
    capsys.readouterr()
    assert_one_line_error(main, argv[:-2] + ["--acquisition", "pi", "--out",
                                             str(tmp_path / "b")], capsys, "--acquisition")
    assert_one_line_error(main, ["explore", "sir", "--output", "max:I", "--t-end", "30",
                                 "--vary", "beta=1:0", "--out", str(tmp_path / "c")],
                          capsys, "--vary")
    assert_one_line_error(main, ["explore", "sir", "--output", "max:Q", "--t-end", "30",
                                 "--vary", "beta=0.2:0.6", "--out", str(tmp_path / "d")],
                          capsys, "'Q'")


def test_executor_gives_the_same_points():
    kw = dict(budget=9, seed=2, batch_size=2, n_initial=3)
    here = explore(wiggly, [(0.0, 1.0)], **kw)
    threads = explore(wiggly, [(0.0, 1.0)], executor="threads:2", **kw)
    assert [e["x"] for e in threads.evaluations] == [e["x"] for e in here.evaluations]
    np.testing.assert_array_equal(threads.y, here.y)
