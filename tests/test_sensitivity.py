"""Sensitivity analysis: Sobol' indices against analytic values and SALib, bootstrap
coverage, Morris screening, local sensitivities against exact and finite-difference
derivatives, and model outputs."""

import json
import math
import warnings

import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import scalebridge as sb
from conftest import peer
from scalebridge import testproblems as tp
from scalebridge.errors import InputError, SerializationError, SimulationError
from scalebridge.report import save_plot
from scalebridge.runtime.files import jsonable, write_json
from scalebridge.sensitivity import (
    LogUniform,
    ModelOutput,
    Normal,
    SobolResult,
    TruncNormal,
    Uniform,
    local,
    morris,
    parse_output,
    sobol,
)
from scalebridge.sensitivity._evaluate import is_jax_function
from scalebridge.sensitivity.morris import morris_design


def ishigami_numpy(x):
    """The Ishigami function as a NumPy black box (cannot be traced by JAX)."""
    x = np.asarray(x)
    return np.sin(x[:, 0]) + 7 * np.sin(x[:, 1]) ** 2 + 0.1 * x[:, 2] ** 4 * np.sin(x[:, 0])


G_BOUNDS = [(0.0, 1.0)] * len(tp.SOBOL_G_A)


# ----- Sobol' ---------------------------------------------------------------------------

@pytest.mark.parametrize("f, bounds, reference", [
    (tp.ishigami, tp.ISHIGAMI_BOUNDS, tp.ishigami_indices()),
    (tp.sobol_g, G_BOUNDS, tp.sobol_g_indices()),
], ids=["ishigami", "sobol_g"])
def test_sobol_matches_analytic_indices(f, bounds, reference):
    n = 2**13
    res = sobol(f, bounds, n_samples=n, n_bootstrap=200)
    d = len(bounds)
    assert res.n_samples == n and res.n_evaluations == n * (d + 2) and res.n_nonfinite == 0
    assert res.S1.shape == res.ST.shape == res.S1_conf.shape == (d,)
    assert np.max(np.abs(res.S1 - reference[0])) <= 0.01
    assert np.max(np.abs(res.ST - reference[1])) <= 0.01
    assert np.all(res.S1_conf > 0) and np.all(res.ST_conf > 0)


def test_sobol_second_order_ishigami():
    n = 2**12
    res = sobol(tp.ishigami, tp.ISHIGAMI_BOUNDS, n_samples=n, second_order=True, n_bootstrap=100)
    assert res.n_evaluations == n * (2 * 3 + 2)
    pi = math.pi
    v1, v2, v13 = 0.5 * (1 + 0.1 * pi**4 / 5) ** 2, 49 / 8, 8 * 0.01 * pi**8 / 225
    s13 = v13 / (v1 + v2 + v13)
    assert res.S2[0, 2] == pytest.approx(s13, abs=0.02)
    assert res.S2[2, 0] == res.S2[0, 2]
    assert abs(res.S2[0, 1]) < 0.02 and abs(res.S2[1, 2]) < 0.02
    assert np.all(np.isnan(np.diag(res.S2)))
    assert res.S2_table().shape == (3, 4)


@pytest.mark.parametrize("sampling", ["random", "sobol"])
def test_bootstrap_coverage_over_seeds(sampling):
    """95% intervals over 40 seeds at N=256 (6 indices each). Plain Monte Carlo: coverage
    near nominal (binomial band); scrambled Sobol': at least nominal (conservative)."""
    s1, st = tp.ishigami_indices()
    truth = np.concatenate([s1, st])
    hits = []
    for seed in range(40):
        res = sobol(ishigami_numpy, tp.ISHIGAMI_BOUNDS, n_samples=256, seed=seed, n_bootstrap=400,
                    sampling=sampling)
        est = np.concatenate([res.S1, res.ST])
        conf = np.concatenate([res.S1_conf, res.ST_conf])
        hits.append(np.abs(est - truth) <= conf)
    coverage = float(np.mean(hits))
    if sampling == "random":
        assert 0.88 <= coverage <= 0.99, coverage
    else:
        assert coverage >= 0.93, coverage


def test_sobol_agrees_with_salib_at_equal_n():
    peer("SALib", "SALib")
    from SALib.analyze import sobol as salib_analyze
    from SALib.sample import sobol as salib_sample

    n = 2**13
    s1_ref, st_ref = tp.ishigami_indices()
    problem = {"num_vars": 3, "names": ["x1", "x2", "x3"],
               "bounds": [list(b) for b in tp.ISHIGAMI_BOUNDS]}
    x = salib_sample.sample(problem, n, calc_second_order=False, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        si = salib_analyze.analyze(problem, ishigami_numpy(x), calc_second_order=False,
                                   seed=0, num_resamples=200)
    ours = sobol(ishigami_numpy, tp.ISHIGAMI_BOUNDS, n_samples=n, seed=0, n_bootstrap=200)
    assert x.shape[0] == ours.n_evaluations
    for mine, theirs, ref in [(ours.S1, si["S1"], s1_ref), (ours.ST, si["ST"], st_ref)]:
        assert np.max(np.abs(theirs - ref)) <= 0.01
        assert np.max(np.abs(mine - ref)) <= 0.01
        np.testing.assert_allclose(mine, theirs, atol=0.01)
    # the same normal-approximation bootstrap convention: comparable half-widths
    np.testing.assert_allclose(ours.S1_conf, si["S1_conf"], rtol=0.3)


def test_numpy_black_box_threads_and_jax_paths_agree():
    assert is_jax_function(tp.ishigami, 3)
    assert not is_jax_function(ishigami_numpy, 3)
    calls = []

    def counted(x):
        calls.append(x.shape[0])
        assert isinstance(x, np.ndarray)
        return ishigami_numpy(x)

    kw = dict(n_samples=512, seed=3, n_bootstrap=100)
    ref = sobol(tp.ishigami, tp.ISHIGAMI_BOUNDS, **kw)
    box = sobol(counted, tp.ISHIGAMI_BOUNDS, batch_size=700, jax=False, **kw)
    assert calls == [700, 700, 700, 460]  # 512 * 5 rows in chunks, called without padding
    threads = sobol(ishigami_numpy, tp.ISHIGAMI_BOUNDS, executor="threads:2", batch_size=300,
                    **kw)
    forced = sobol(tp.ishigami, tp.ISHIGAMI_BOUNDS, jax=False, **kw)
    jax_batched = sobol(tp.ishigami, tp.ISHIGAMI_BOUNDS, batch_size=1000, **kw)
    for other in (box, threads, forced, jax_batched):
        np.testing.assert_allclose(other.S1, ref.S1, rtol=0, atol=1e-12)
        np.testing.assert_allclose(other.ST, ref.ST, rtol=0, atol=1e-12)
        np.testing.assert_allclose(other.S1_conf, ref.S1_conf, rtol=0, atol=1e-12)


def test_dask_executor_gives_the_same_indices():
    distributed = peer("distributed", "dask distributed")
    ref = sobol(tp.ishigami, tp.ISHIGAMI_BOUNDS, n_samples=256, n_bootstrap=50)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        box = sobol(ishigami_numpy, tp.ISHIGAMI_BOUNDS, n_samples=256, n_bootstrap=50,
                    executor=client, batch_size=300)
    np.testing.assert_allclose(box.S1, ref.S1, rtol=0, atol=1e-12)
    np.testing.assert_allclose(box.ST_conf, ref.ST_conf, rtol=0, atol=1e-12)


class _Flaky:
    """The NumPy Ishigami function that fails on its ``fail_at``-th call (a killed run)."""

    def __init__(self, fail_at=None):
        self.rows, self.fail_at = [], fail_at

    def __call__(self, x):
        if len(self.rows) + 1 == self.fail_at:
            raise RuntimeError("killed")
        self.rows.append(x.shape[0])
        return ishigami_numpy(x)


def test_run_directory_resumes_an_interrupted_run(tmp_path):
    run = tmp_path / "run"
    kw = dict(n_samples=256, n_bootstrap=50, batch_size=200, jax=False)
    ref = sobol(ishigami_numpy, tp.ISHIGAMI_BOUNDS, **kw)
    with pytest.raises(RuntimeError, match="killed"):
        sobol(_Flaky(fail_at=3), tp.ISHIGAMI_BOUNDS, out=run, **kw)
    resumed = _Flaky()
    res = sobol(resumed, tp.ISHIGAMI_BOUNDS, out=run, **kw)
    assert sum(resumed.rows) == 256 * 5 - 400  # two chunks of 200 were saved
    np.testing.assert_array_equal(res.S1, ref.S1)
    np.testing.assert_array_equal(res.ST_conf, ref.ST_conf)
    again = _Flaky()
    sobol(again, tp.ISHIGAMI_BOUNDS, out=run, **kw)
    assert again.rows == []
    with pytest.raises(InputError, match=r"setting n_samples \(256 -> 128\) changed"):
        sobol(_Flaky(), tp.ISHIGAMI_BOUNDS, out=run, **(kw | {"n_samples": 128}))
    with pytest.raises(InputError, match="the function changed"):
        sobol(ishigami_numpy, tp.ISHIGAMI_BOUNDS, out=run, **kw)
    fresh = _Flaky()
    sobol(fresh, tp.ISHIGAMI_BOUNDS, out=run, restart=True, **(kw | {"n_samples": 128}))
    assert sum(fresh.rows) == 128 * 5
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="is a file; give a directory"):
        sobol(_Flaky(), tp.ISHIGAMI_BOUNDS, out=tmp_path / "file", **kw)


def test_same_seed_same_result_other_seed_other_design():
    a = sobol(tp.ishigami, tp.ISHIGAMI_BOUNDS, n_samples=256, seed=7, n_bootstrap=50)
    b = sobol(tp.ishigami, tp.ISHIGAMI_BOUNDS, n_samples=256, seed=7, n_bootstrap=50)
    c = sobol(tp.ishigami, tp.ISHIGAMI_BOUNDS, n_samples=256, seed=8, n_bootstrap=50)
    np.testing.assert_array_equal(a.S1, b.S1)
    np.testing.assert_array_equal(a.ST_conf, b.ST_conf)
    assert not np.array_equal(a.S1, c.S1)


def test_nonfinite_outputs_drop_rows_and_are_reported():
    def holes(x):
        y = ishigami_numpy(x)
        return np.where(x[:, 2] > 3.0, np.nan, y)  # 2.3% of points

    n = 2**12
    with pytest.warns(RuntimeWarning, match="NaN or infinite"):
        res = sobol(holes, tp.ISHIGAMI_BOUNDS, n_samples=n, n_bootstrap=50)
    assert res.n_nonfinite > 0 and res.n_used < n
    assert res.n_evaluations == n * 5
    assert np.all(np.isfinite(res.S1)) and np.all(np.isfinite(res.ST))
    s1, st = tp.ishigami_indices()
    assert np.max(np.abs(res.S1 - s1)) < 0.05  # rows removed in every block alike

    def mostly_nan(x):
        return np.where(x[:, 0] > 0.0, np.inf, ishigami_numpy(x))

    with pytest.raises(SimulationError, match="max_nonfinite"):
        sobol(mostly_nan, tp.ISHIGAMI_BOUNDS, n_samples=256, n_bootstrap=0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(bounds=[(0, 1), (2, 1)]), "'x2'"),
    (dict(bounds=[(0, 1), (1, 1)]), "low=1.0 is not below high=1.0"),
    (dict(bounds=[(0, 1), ("a", 1)]), "parameter 'x2'"),
    (dict(bounds=[(0, 1), (0, 1, 2)]), "(low, high) pair"),
    (dict(bounds=[]), "bounds is empty"),
    (dict(bounds={"k": (0, 1), "j": (5, 1)}), "'j'"),
    (dict(names=["a"]), "names has 1 entries"),
    (dict(n_samples=1), "n_samples=1 is too small"),
    (dict(n_samples=8), "too small for bootstrap"),
    (dict(n_samples=64.0), "n_samples must be an integer"),
    (dict(confidence=1.5), "confidence"),
    (dict(n_bootstrap=-1), "n_bootstrap"),
    (dict(sampling="lhs"), "sampling"),
    (dict(jax="yes"), "jax must be"),
    (dict(f=lambda x: np.ones((x.shape[0], 2)) * x[:, :1]), "returned shape"),
    (dict(f=lambda x: np.ones(x.shape[0])), "constant"),
    (dict(f="not a function"), "f must be"),
    (dict(batch_size=0), "batch_size"),
])
def test_bad_inputs_raise_input_error(kwargs, match):
    args = dict(f=ishigami_numpy, bounds=[(0, 1), (0, 1), (0, 1)], n_samples=64)
    if "bounds" in kwargs and len(kwargs["bounds"]) == 2:
        args["f"] = lambda x: x[:, 0] + x[:, 1] ** 2
    args.update(kwargs)
    with pytest.raises(InputError, match=match.replace("(", r"\(").replace(")", r"\)")):
        sobol(args.pop("f"), args.pop("bounds"), **args)


def test_non_power_of_two_warns():
    with pytest.warns(UserWarning, match="not a power of 2.*n_samples=64 or 128"):
        sobol(tp.ishigami, tp.ISHIGAMI_BOUNDS, n_samples=100, n_bootstrap=20)


def test_distributions_inverse_cdf_and_linear_model():
    u = np.linspace(0.01, 0.99, 7)
    np.testing.assert_allclose(LogUniform(0.1, 10).ppf(u), stats.loguniform(0.1, 10).ppf(u))
    np.testing.assert_allclose(Normal(2, 3).ppf(u), stats.norm(2, 3).ppf(u))
    tn = TruncNormal(1.0, 2.0, 0.0, 2.5)
    np.testing.assert_allclose(tn.ppf(u), stats.truncnorm(-0.5, 0.75, 1.0, 2.0).ppf(u))
    assert np.isfinite(Normal(0, 1).ppf(np.array([0.0, 1.0]))).all()
    for bad, match in [(lambda: Normal(0, 0), "sd > 0"), (lambda: LogUniform(0, 1), "0 < low"),
                       (lambda: Uniform(2, 1), "low < high"),
                       (lambda: TruncNormal(0, 1, 50, 60), "no mass")]:
        with pytest.raises(InputError, match=match):
            bad()
    # y = 1 x1 + 2 x2 + 3 x3, independent normals: S1_i = ST_i = c_i^2 s_i^2 / sum
    c, s = np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.5, 0.2])
    res = sobol(lambda x: x @ jnp.asarray(c), [Normal(0, si) for si in s], n_samples=2**12,
                n_bootstrap=0, names=["a", "b", "c"])
    exact = c**2 * s**2 / np.sum(c**2 * s**2)
    np.testing.assert_allclose(res.S1, exact, atol=0.01)
    np.testing.assert_allclose(res.ST, exact, atol=0.01)
    assert np.all(np.isnan(res.S1_conf)) and res.names == ("a", "b", "c")
    assert res.distributions[0] == "normal(0, 1)"


def test_result_protocol_table_plot_dict_and_save(tmp_path):
    res = sobol(tp.ishigami, {"a": (-math.pi, math.pi), "b": (-math.pi, math.pi),
                              "c": (-math.pi, math.pi)}, n_samples=256, n_bootstrap=0,
                second_order=True)
    table = res.to_pandas()
    assert list(table.columns) == ["S1", "S1_conf", "ST", "ST_conf"]
    assert list(table.index) == ["a", "b", "c"]
    png = save_plot(res, tmp_path / "s.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    write_json(tmp_path / "s.json", jsonable(res.to_dict()))
    data = json.loads((tmp_path / "s.json").read_text())
    assert data["S1_conf"] == [None, None, None] and data["n_samples"] == 256
    sb.save(res, tmp_path / "s.npz")
    for back in (SobolResult.from_dict(data), sb.load(tmp_path / "s.npz")):
        np.testing.assert_array_equal(back.S1, res.S1)
        np.testing.assert_array_equal(back.S2, res.S2)
        assert back.names == res.names and back.n_used == res.n_used
    with pytest.raises(SerializationError):
        SobolResult.from_dict({"kind": "morris", "format_version": 1})


# ----- Morris ---------------------------------------------------------------------------

def test_morris_design_moves_each_factor_once():
    x, order, step = morris_design(5, 7, 4, seed=1)
    assert x.shape == (7, 6, 5)
    moves = np.diff(x, axis=1)  # (r, d, d): exactly one non-zero per step
    assert np.all(np.sum(moves != 0, axis=2) == 1)
    assert np.allclose(np.abs(moves).sum(axis=2), 4 / 6)
    assert np.all(np.sort(order, axis=1) == np.arange(5))
    assert np.all((x >= 0) & (x <= 1))


def test_morris_linear_function_is_exact():
    c = np.array([1.0, -2.0, 3.0])
    bounds = [(0.0, 1.0), (1.0, 3.0), (-1.0, 0.0)]
    res = morris(lambda x: x @ c, bounds, trajectories=6, seed=2)
    width = np.array([b[1] - b[0] for b in bounds])
    np.testing.assert_allclose(res.mu, c * width, rtol=1e-12)
    np.testing.assert_allclose(res.mu_star, np.abs(c) * width, rtol=1e-12)
    np.testing.assert_allclose(res.sigma, 0.0, atol=1e-12)
    assert res.n_evaluations == 6 * 4


def test_morris_sobol_g_ranking(tmp_path):
    res = morris(tp.sobol_g, G_BOUNDS, trajectories=100, seed=0)
    a = np.asarray(tp.SOBOL_G_A)
    assert list(np.argsort(-res.mu_star)[:4]) == [0, 1, 2, 3]  # mu* follows a
    assert np.all(res.mu_star[a == 99] < 0.05 * res.mu_star[0])
    assert np.all(res.mu_star_conf > 0) and np.all(res.mu_star_conf < res.mu_star)
    assert save_plot(res, tmp_path / "m.png").exists()
    sb.save(res, tmp_path / "m.npz")
    back = sb.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(back.mu_star, res.mu_star)
    assert list(res.to_pandas().columns) == ["mu", "mu_star", "mu_star_conf", "sigma"]


@pytest.mark.parametrize("kwargs, match", [
    (dict(levels=3), "even"), (dict(trajectories=1), "trajectories=1"),
    (dict(bounds=[Normal(0, 1), (0, 1)]), "TruncNormal"),
    (dict(bounds=[(1, 0), (0, 1)]), "'x1'"),
])
def test_morris_bad_inputs(kwargs, match):
    args = dict(bounds=[(0, 1), (0, 1)])
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        morris(lambda x: x[:, 0] * x[:, 1], args.pop("bounds"), **args)


# ----- local ----------------------------------------------------------------------------

def test_local_exact_and_finite_differences_on_decay(decay):
    """y = y0 exp(-k t): d log y / d log k = -k t, d log y / d log y0 = 1; and the
    Jacobian agrees with central finite differences of the same outputs."""
    mo = ModelOutput(decay, "twice@2", batch_size=4)
    res = local(mo)
    assert res.names == ("k", "y0") and res.outputs == ("twice@2",)
    np.testing.assert_allclose(res.y, [4 * np.exp(-1.0)], rtol=1e-7)
    np.testing.assert_allclose(res.normalized, [[-1.0, 1.0]], rtol=1e-6)
    x0, h = np.array([0.5, 2.0]), 1e-6
    steps = np.array([x0 + h * e for e in np.eye(2)] + [x0 - h * e for e in np.eye(2)])
    y = mo(steps)
    np.testing.assert_allclose(res.jacobian[0], (y[:2] - y[2:]) / (2 * h), rtol=1e-6)
    with pytest.raises(InputError, match="same parameters"):
        local([mo, ModelOutput(decay, "y@1", ["k"])])


def test_local_of_a_jax_function():
    def f(x):
        return jnp.stack([x[0] ** 2 * x[1], jnp.exp(x[1])])

    res = local(f, [3.0, 0.5], names=["a", "b"])
    np.testing.assert_allclose(res.normalized, [[2.0, 1.0], [0.0, 0.5]], rtol=1e-12)
    np.testing.assert_allclose(res.jacobian, [[3.0, 9.0], [0.0, np.exp(0.5)]], rtol=1e-12)
    assert res.to_pandas().shape == (2, 2)
    back = type(res).from_dict(jsonable(res.to_dict()))
    np.testing.assert_array_equal(back.jacobian, res.jacobian)
    with pytest.raises(InputError, match="x0"):
        local(f)
    with pytest.raises(InputError, match="names has 1"):
        local(f, [1.0, 2.0], names=["a"])


# ----- model outputs ----------------------------------------------------------------------

@pytest.mark.parametrize("spec, expected", [
    ("G@120", ("value", "G", 120.0)), ("max:glucose", ("max", "glucose", None)),
    ("tpeak:G", ("tpeak", "G", None)), ("auc:Ip", ("auc", "Ip", None)),
    (" x_1@1e-3 ", ("value", "x_1", 1e-3)), ("final:S", ("final", "S", None)),
])
def test_parse_output(spec, expected):
    out = parse_output(spec)
    assert (out.kind, out.name, out.time) == expected


@pytest.mark.parametrize("spec", ["G", "max(G)", "peak:G", "G@", "G@abc", "max:", "@3",
                                  "max:G;import os", "__import__('os')"])
def test_parse_output_rejects(spec):
    with pytest.raises(InputError, match="NAME@T"):
        parse_output(spec)


def test_model_output_reductions_exact(oscillator):
    """x = cos(2 t), v = -2 sin(2 t) on [0, 3]."""
    t_end = 3.0
    cases = {"max:v": 2.0, "tpeak:v": 3 * np.pi / 4, "min:x": -1.0, "tmin:x": np.pi / 2,
             "auc:x": np.sin(6.0) / 2, "mean:x": np.sin(6.0) / 6, "final:x": np.cos(6.0),
             "x@1.3": np.cos(2.6)}
    for spec, exact in cases.items():
        mo = ModelOutput(oscillator, spec, t_end=t_end, points=151)
        got = mo(mo.nominal[None])
        assert got.shape == (1,)
        assert got[0] == pytest.approx(exact, abs=2e-5), spec


def test_model_output_batches_nan_and_errors(decay):
    kw = dict(t_end=1.0, points=101, batch_size=4, max_steps=1000)  # one compilation
    mo = ModelOutput(decay, "max:y", ["k"], **kw)
    k = np.linspace(0.1, 2.0, 10)[:, None]
    np.testing.assert_allclose(mo(k), np.full(10, 2.0), rtol=1e-9)  # max at t=0
    auc = ModelOutput(decay, "auc:y", ["k"], **(kw | {"points": 100}))
    assert auc.points == 101
    np.testing.assert_allclose(auc(np.array([[0.5], [1.0]])),
                               [2 * (1 - np.exp(-0.5)) / 0.5, 2 * (1 - np.exp(-1.0))],
                               rtol=1e-8)
    # k = -1000: y = 2 exp(1000 t) overflows, the solve fails, the output is NaN
    assert np.isnan(mo(np.array([[-1000.0], [0.5]])))[0]
    assert np.isfinite(mo(np.array([[-1000.0], [0.5]])))[1]
    with pytest.raises(SimulationError, match="max_nonfinite"):
        sobol(mo, [(-2000.0, -1000.0)], n_samples=16, n_bootstrap=0)
    bounds = mo.default_bounds()
    assert bounds["k"] == LogUniform(0.25, 1.0)
    zero = ModelOutput(decay.with_parameters(y0=0.0), "y@1", ["k", "y0"])
    with pytest.raises(InputError, match="'y0' has nominal value 0"):
        zero.default_bounds()
    for make, match in [(lambda: ModelOutput(decay, "max:zz", t_end=1), "no observable or"),
                        (lambda: ModelOutput(decay, "max:y"), "needs t_end"),
                        (lambda: ModelOutput(decay, "y@5", t_end=2), r"\(t0, t_end\]"),
                        (lambda: ModelOutput(decay, "y@1", ["kk"]), "no parameter 'kk'"),
                        (lambda: ModelOutput(decay, "y@1", []), "parameters is empty"),
                        (lambda: mo(np.ones((3, 2))), "expected \\(m, 1\\)")]:
        with pytest.raises(InputError, match=match):
            make()


def test_glucose_insulin_peak_sobol_small():
    """Sobol' indices of peak glucose (first 5 h) over three parameters at small N."""
    m = sb.load_zoo("glucose_insulin")
    mo = ModelOutput(m, "max:glucose", ["Gin", "Rg", "C1"], t_end=300.0, points=151,
                     batch_size=40)
    bounds = mo.default_bounds(1.5)
    res = sobol(mo, bounds, n_samples=16, n_bootstrap=100)
    assert res.n_evaluations == 16 * 5 and res.n_nonfinite == 0
    assert res.output == "max:glucose" and res.names == ("Gin", "Rg", "C1")
    assert np.all(np.isfinite(res.S1)) and np.all(res.ST > 0)
    assert np.sum(res.S1) <= 1 + 2 * np.max(res.S1_conf)
    # Morris screening (another design, another estimator) ranks the same input first
    screen = morris(mo, bounds, trajectories=10, n_bootstrap=0)  # 40 runs: one batch
    assert np.argmax(screen.mu_star) == np.argmax(res.ST)
