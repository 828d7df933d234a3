"""SINDy: libraries, derivatives, optimisers, model selection, ensembles, weak form, export."""

import json
import warnings

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import scalebridge as sb
from conftest import peer
from scalebridge.cli.app import main
from scalebridge.discover import (
    SR3,
    STLSQ,
    CustomLibrary,
    Ensemble,
    FourierLibrary,
    PolynomialLibrary,
    SINDy,
    WeakForm,
    differentiate,
    parse_library,
    relative_error,
    support_matches,
)
from scalebridge.discover.library import evaluate
from scalebridge.errors import InputError
from scalebridge.report import save_plot


@pytest.fixture(scope="module")
def lorenz():
    m = sb.load_zoo("lorenz")
    t = np.arange(0, 10.0001, 0.002)
    x = np.asarray(sb.simulate(m, t, y0=[-8.0, 8.0, 27.0], rtol=1e-12, atol=1e-12).states)
    xi = np.zeros((3, 10))  # terms 1, x, y, z, x^2, x*y, x*z, y^2, y*z, z^2
    xi[0, [1, 2]] = [-10, 10]
    xi[1, [1, 2, 6]] = [28, -1, -1]
    xi[2, [3, 5]] = [-8 / 3, 1]
    return t, x, xi


@pytest.fixture(scope="module")
def lotka():
    m = sb.load_zoo("lotka_volterra")
    t = np.linspace(0, 30, 1201)
    return t, np.asarray(sb.simulate(m, t, rtol=1e-12, atol=1e-12).states)


def test_library_terms_and_products():
    names = ["x", "y"]
    poly = [t.name for t in PolynomialLibrary(2).terms(names)]
    assert poly == ["1", "x", "y", "x^2", "x*y", "y^2"]
    assert [t.name for t in PolynomialLibrary(3, include_constant=False,
                                              include_interaction=False).terms(names)] == \
        ["x", "y", "x^2", "y^2", "x^3", "y^3"]
    assert [t.name for t in FourierLibrary(2, inputs=["y"]).terms(names)] == \
        ["sin(y)", "cos(y)", "sin(2*y)", "cos(2*y)"]
    custom = CustomLibrary({"exp({})": jnp.exp, "{}/(1+{})": lambda a, b: a / (1 + b)})
    assert [t.name for t in custom.terms(names)] == ["exp(x)", "exp(y)", "x/(1+y)"]
    # concatenation drops duplicates; a tensor product of monomials is a monomial
    both = PolynomialLibrary(1) + PolynomialLibrary(2, inputs=["x"])
    assert [t.name for t in both.terms(names)] == ["1", "x", "y", "x^2"]
    prod = PolynomialLibrary(1, include_constant=False, inputs=["x"]) * custom
    assert [t.name for t in prod.terms(names)] == ["x*exp(x)", "x*exp(y)", "x*(x/(1+y))"]
    z = np.array([[2.0, 3.0]])
    theta = np.asarray(evaluate(prod.terms(names), z))[0]
    np.testing.assert_allclose(theta, [2 * np.exp(2), 2 * np.exp(3), 2 * 2 / 4])
    assert [t.name for t in parse_library("poly:1*fourier:1").terms(["x"])] == \
        ["sin(x)", "cos(x)", "x*sin(x)", "x*cos(x)"]
    with pytest.raises(InputError, match="input 'w'"):
        PolynomialLibrary(2, inputs=["w"]).terms(names)
    with pytest.raises(InputError, match="poly:D"):
        parse_library("cubic")


def test_polynomial_terms_match_pysindy_order():
    ps = peer("pysindy")
    lib = ps.PolynomialLibrary(degree=3).fit(np.ones((5, 3)))
    theirs = [s.replace(" ", "*") for s in lib.get_feature_names(["x", "y", "z"])]
    ours = [t.name for t in PolynomialLibrary(3).terms(["x", "y", "z"])]
    assert ours == theirs


def test_derivatives_converge():
    t = np.linspace(0, 2 * np.pi, 201)
    x = np.sin(t)
    err = {m: np.max(np.abs(differentiate(x, t, m) - np.cos(t))[5:-5])
           for m in ("finite", "savgol")}
    assert err["finite"] < 1e-6 and err["savgol"] < 1e-4
    tp = np.linspace(0, 2 * np.pi, 128, endpoint=False)
    np.testing.assert_allclose(differentiate(np.sin(3 * tp), tp, "spectral"), 3 * np.cos(3 * tp),
                               atol=1e-10)
    # fourth order: halving the step divides the interior error by 16
    e = [np.max(np.abs(differentiate(np.sin(tt), tt) - np.cos(tt))[4:-4])
         for tt in (np.linspace(0, 1, 41), np.linspace(0, 1, 81))]
    assert 12 < e[0] / e[1] < 20


def test_stlsq_matches_pysindy_on_same_derivatives(lorenz):
    ps = peer("pysindy")
    t, x, _ = lorenz
    rng = np.random.default_rng(0)
    xn = x + 0.01 * np.sqrt(np.mean(x ** 2)) * rng.standard_normal(x.shape)
    xd = np.gradient(xn, t, axis=0)
    theirs = ps.SINDy(optimizer=ps.STLSQ(threshold=0.1, alpha=0.05),
                      feature_library=ps.PolynomialLibrary(degree=2))
    theirs.fit(xn, t=t, x_dot=xd)
    ours = SINDy(PolynomialLibrary(2), STLSQ(0.1, alpha=0.05)).fit(xn, t, x_dot=xd)
    np.testing.assert_allclose(ours.coefficients_, theirs.coefficients(), atol=1e-8)


def test_default_recovers_lorenz_exactly_on_clean_and_noisy_data(lorenz):
    t, x, xi = lorenz
    rng = np.random.default_rng(1)
    for noise in (0.0, 0.01):
        xn = x + noise * np.sqrt(np.mean(x ** 2)) * rng.standard_normal(x.shape)
        s = SINDy(PolynomialLibrary(2)).fit(xn, t, feature_names=["x", "y", "z"])
        assert support_matches(xi, s.coefficients_), s.equations()
        # reference: the true Lorenz coefficients; measured 1.1e-7 (clean), 2.0e-3 (1% noise)
        assert relative_error(xi, s.coefficients_) < (1e-6 if noise == 0 else 5e-3)
    # the default degree-3 library with a constant, on clean data
    s = SINDy().fit(x[::5], t[::5], feature_names=["x", "y", "z"])
    assert s.equations(2) == {"x": {"x": -10.0, "y": 10.0},
                              "y": {"x": 28.0, "y": -1.0, "x*z": -1.0},
                              "z": {"z": -2.7, "x*y": 1.0}}
    assert s.path_["aicc"].shape[1] == 3


def test_sr3_weak_and_ensemble(lorenz, lotka):
    t, x, xi = lorenz
    rng = np.random.default_rng(2)
    xn = x + 0.01 * np.sqrt(np.mean(x ** 2)) * rng.standard_normal(x.shape)
    s = SINDy(PolynomialLibrary(2), SR3(3.0)).fit(xn, t)
    assert support_matches(xi, s.coefficients_)
    # reference: the true Lorenz coefficients at 1% noise; SR3, strong STLSQ and the
    # ensemble measured 1.0e-3, the weak form 1.6e-3
    assert relative_error(xi, s.coefficients_) < 3e-3
    weak = SINDy(PolynomialLibrary(2), STLSQ(0.1), weak=WeakForm()).fit(xn, t)
    strong = SINDy(PolynomialLibrary(2), STLSQ(0.1)).fit(xn, t)
    assert support_matches(xi, weak.coefficients_) and support_matches(xi, strong.coefficients_)
    assert relative_error(xi, weak.coefficients_) < 4e-3
    assert relative_error(xi, strong.coefficients_) < 3e-3
    ens = SINDy(PolynomialLibrary(2), STLSQ(0.1), ensemble=Ensemble(n_models=10, seed=0))
    ens.fit(xn, t)
    assert support_matches(xi, ens.coefficients_)
    assert relative_error(xi, ens.coefficients_) < 3e-3
    assert ens.inclusion_.shape == (3, 10)
    assert np.all(ens.inclusion_[xi != 0] == 1.0)
    lib = SINDy(PolynomialLibrary(2), STLSQ(0.1),
                ensemble=Ensemble(n_models=10, bagging=False, library_drop=1)).fit(xn, t)
    assert support_matches(xi, lib.coefficients_)
    assert np.all(lib.inclusion_[xi != 0] >= 0.8)


def test_several_trajectories_and_control():
    # dx/dt = -x + u, dy/dt = x - 2 y from two trajectories with different inputs
    t = np.linspace(0, 5, 501)
    xs, us = [], []
    for k in (1.0, 2.0):
        u = np.sin(k * t)
        m = sb.Model(states=["x", "y"], parameters=[], initial=[1.0, 0.0], stiff=False,
                     inputs=[sb.FunctionInput("u", lambda tt, p, k=k: jnp.sin(k * tt))],
                     rhs=lambda tt, y, p, u: jnp.stack([-y[0] + u[0], y[0] - 2 * y[1]]))
        xs.append(np.asarray(sb.simulate(m, t, rtol=1e-12, atol=1e-12).states))
        us.append(u[:, None])
    s = SINDy(PolynomialLibrary(2)).fit(xs, [t, t], u=us, feature_names=["x", "y"],
                                        control_names=["u"])
    assert s.equations(4) == {"x": {"x": -1.0, "u": 1.0}, "y": {"x": 1.0, "y": -2.0}}
    sol = s.simulate(xs[1][0], t, us[1])
    np.testing.assert_allclose(np.asarray(sol.states), xs[1], atol=1e-4)


def test_discovered_model_simulates_fits_and_round_trips_sbml(lotka, tmp_path):
    t, x = lotka
    s = SINDy(PolynomialLibrary(2)).fit(x, t, feature_names=["prey", "predator"])
    model = s.to_model(initial=x[0])
    assert model.parameter_names == ("prey_prey", "prey_prey_predator",
                                     "predator_predator", "predator_prey_predator")
    sim = np.asarray(sb.simulate(model, t).states)
    # reference: the zoo model's own trajectory (alpha 1.1, beta 0.4, gamma 0.4, delta 0.1);
    # measured 2.8e-5
    assert np.max(np.abs(sim - x)) < 1e-4 * np.max(np.abs(x))
    path = s.to_sbml(tmp_path / "lv.xml", initial=x[0])
    back = sb.load_sbml(path)
    np.testing.assert_allclose(np.asarray(sb.simulate(back, t).states), sim, rtol=1e-6,
                               atol=1e-9)
    # the discovered model calibrates like any other: perturb, then fit back to the data
    keep = np.arange(0, len(t), 40)
    rows = [{"time": t[i], "observable": name, "value": x[i, j], "sigma": 0.05}
            for i in keep for j, name in enumerate(["prey", "predator"])]
    start = model.with_parameters(prey_prey=1.3, predator_predator=-0.3)
    assert start.parameters[0].lower == pytest.approx(0.11, rel=1e-3)  # bounded for fitting
    problem = sb.Problem.from_table(start, pd.DataFrame(rows))
    result = sb.fit(problem, n_starts=4, seed=0)
    best = dict(zip(problem.parameter_ids, result.best_x, strict=True))
    print("refit from a perturbed start:", best)
    # reference: the zoo's alpha = 1.1 and gamma = 0.4 that made the (noise-free) data;
    # measured 2.6e-8 and 1.5e-8 off
    assert abs(best["prey_prey"] - 1.1) < 1e-6 and abs(best["predator_predator"] + 0.4) < 1e-6


def test_fitted_model_round_trips_through_save_and_load(lotka, tmp_path):
    t, x = lotka
    lib = PolynomialLibrary(2) + FourierLibrary(1, inputs=["prey"])
    s = SINDy(lib, STLSQ(threshold=0.05)).fit(x, t, feature_names=["prey", "predator"])
    back = sb.load(sb.save(s, tmp_path / "sindy.npz"))
    assert isinstance(back, SINDy) and back.equations() == s.equations()
    # the Fourier terms come back from their formulas (restricted parser), the monomials
    # from their powers: the same derivatives
    assert any(t.startswith("sin") for t in back.terms_)
    np.testing.assert_allclose(back.predict(x[::50]), s.predict(x[::50]), rtol=1e-13,
                               atol=1e-13)
    table = back.to_pandas()
    assert table.shape == (2, len(s.terms_)) and table.loc["prey", "prey"] == \
        s.coefficients_[0, 1]
    save_plot(back, tmp_path / "coefficients.png")
    # a custom term with an SBML template comes back from it; one without cannot be saved
    lib = PolynomialLibrary(1) + CustomLibrary({"exp(-{})": lambda a: jnp.exp(-a)})
    custom = SINDy(lib, STLSQ(threshold=0.05)).fit(x, t)
    again = sb.load(sb.save(custom, tmp_path / "custom.npz"))
    np.testing.assert_allclose(again.predict(x[::50]), custom.predict(x[::50]), rtol=1e-13,
                               atol=1e-13)
    opaque = SINDy(CustomLibrary({"f({})": jnp.exp}, formulas=False), STLSQ(0.05)).fit(x, t)
    with pytest.raises(sb.errors.SerializationError, match="cannot be saved as data"):
        sb.save(opaque, tmp_path / "opaque.npz")


def test_hybrid_model_made_explicit(lotka):
    t, x = lotka
    known = sb.Model(states=["prey", "predator"],
                     parameters=[sb.Parameter("alpha", 1.1), sb.Parameter("gamma", 0.4)],
                     rhs=lambda tt, y, p, u: jnp.stack([p[0] * y[0], -p[1] * y[1]]),
                     initial=list(x[0]), stiff=False)
    truth = np.asarray(differentiate(x, t))
    known_part = np.stack([1.1 * x[:, 0], -0.4 * x[:, 1]], axis=1)
    s = SINDy(PolynomialLibrary(2), STLSQ(0.01)).fit(x, x_dot=truth - known_part,
                                                     feature_names=["prey", "predator"])
    assert s.equations(3) == {"prey": {"prey*predator": -0.4}, "predator": {"prey*predator": 0.1}}
    full = s.to_model(base=known)
    assert full.parameter_names[:2] == ("alpha", "gamma")
    np.testing.assert_allclose(np.asarray(sb.simulate(full, t[:200]).states), x[:200],
                               rtol=1e-3)


def test_bad_input(lotka):
    t, x = lotka
    with pytest.raises(InputError, match="NaN"):
        SINDy().fit(np.where(np.arange(len(t))[:, None] == 5, np.nan, x), t)
    with pytest.raises(InputError, match="increase"):
        SINDy().fit(x[:10], np.r_[0, 2, 1, np.arange(3, 10)])
    with pytest.raises(InputError, match="NaN or infinity"):
        SINDy().fit(x[:10], np.r_[0, np.nan, np.arange(2, 10)])
    with pytest.raises(InputError, match="library has 10 terms"):
        SINDy().fit(x[:8], t[:8])
    with pytest.raises(InputError, match="threshold"):
        SINDy(optimizer=STLSQ(-1.0)).fit(x, t)
    with pytest.raises(InputError, match="not fitted"):
        SINDy().equations()
    with pytest.raises(InputError, match="zero on all the data"):
        SINDy(PolynomialLibrary(1)).fit(np.c_[x, np.zeros(len(t))], t)


def test_blow_up_warns():
    t = np.linspace(0, 1, 201)
    x = np.exp(-t)[:, None]  # dx/dt = -x, then simulated with a sign error
    s = SINDy(PolynomialLibrary(1), STLSQ(0.01)).fit(x, t)
    s.coefficients_ = -s.coefficients_ * 20
    with pytest.warns(UserWarning, match="blows up"):
        s.simulate([1.0], np.linspace(0, 2, 50))


def test_cli_discover_sindy(lotka, tmp_path):
    t, x = lotka
    csv = tmp_path / "lv.csv"
    pd.DataFrame({"t": t, "prey": x[:, 0], "predator": x[:, 1]}).to_csv(csv, index=False)
    out = tmp_path / "out"
    assert main(["discover", "sindy", str(csv), "--time-col", "t", "--out", str(out)]) == 0
    eq = json.loads((out / "equations.json").read_text())
    assert set(eq) == {"prey", "predator"}
    assert set(eq["prey"]) == {"prey", "prey*predator"}
    assert eq["predator"]["prey*predator"] == pytest.approx(0.1, rel=1e-4)
    for name in ("equations.txt", "discovery.json", "fit.png", "model.xml"):
        assert (out / name).is_file()
    info = json.loads((out / "discovery.json").read_text())
    assert info["simulation_relative_l2"][0] < 1e-3
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"time": t, "prey": x[:, 0]}).to_csv(bad, index=False)
    assert main(["discover", "sindy", str(bad), "--out", str(out)]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["discover", "sindy", str(csv), "--optimizer", "lasso",
                     "--out", str(out)]) == 1
