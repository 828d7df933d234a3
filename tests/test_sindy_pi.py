"""SINDy-PI (scalebridge.discover.implicit): rational equations from implicit sparse
regression."""

import warnings

import jax
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import scalebridge as sb
from scalebridge.discover import PolynomialLibrary
from scalebridge.discover.implicit import SINDyPI
from scalebridge.errors import InputError


def toy_rhs(z):
    """dx/dt = (1 - 2x) / (1 + 2x) (Michaelis-Menten uptake), dy/dt = x - y."""
    x, y = z[..., 0], z[..., 1]
    return np.stack([(1 - 2 * x) / (1 + 2 * x), x - y], axis=-1)


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(0)
    X = rng.uniform([0.1, 0.0], [2.0, 1.5], size=(400, 2))
    return X, toy_rhs(X)


@pytest.fixture(scope="module")
def toy_fit(toy):
    X, dX = toy
    return SINDyPI(PolynomialLibrary(degree=2), thresholds=(1e-3,)).fit(
        X, x_dot=dX, feature_names=["x", "y"])


def test_recovers_rational_and_polynomial_equations(toy_fit):
    eqs = toy_fit.equations()
    num, den = eqs["x"]["numerator"], eqs["x"]["denominator"]
    assert set(num) == {"1", "x"} and set(den) == {"1", "x"}
    assert num["1"] == pytest.approx(1.0, rel=1e-8)
    assert num["x"] == pytest.approx(-2.0, rel=1e-8)
    assert den["1"] == 1.0 and den["x"] == pytest.approx(2.0, rel=1e-8)
    assert eqs["y"] == {"numerator": pytest.approx({"x": 1.0, "y": -1.0}),
                        "denominator": {"1": 1.0}}
    assert toy_fit.identified_ == {"x": True, "y": True}
    assert toy_fit.error_["x"] < 1e-8
    assert str(toy_fit).splitlines() == ["dx/dt = (1 - 2 x) / (1 + 2 x)",
                                         "dy/dt = x - y"]
    lhs = {r["lhs"] for r in toy_fit.candidates_["x"]}
    assert {"1", "x'", "x'*x^2"} <= lhs  # every extended-library term was tried


def test_predict_and_model_match_the_truth(toy, toy_fit):
    X, dX = toy
    np.testing.assert_allclose(toy_fit.predict(X[:20]), dX[:20], rtol=1e-7, atol=1e-9)
    model = toy_fit.to_model(initial=[1.5, 0.2])
    p = np.array([q.value for q in model.parameters])
    f = jax.vmap(lambda z: model.rhs(0.0, z, p, np.zeros(0)))
    np.testing.assert_allclose(np.asarray(f(X[:20])), dX[:20], rtol=1e-7, atol=1e-9)
    assert {q.name for q in model.parameters} >= {"x_num_const", "x_den_x", "y_num_y"}
    t = np.linspace(0.0, 3.0, 31)
    got = np.asarray(sb.simulate(model, t, rtol=1e-10, atol=1e-12).states)
    ref = solve_ivp(lambda _, z: toy_rhs(z), (0.0, 3.0), [1.5, 0.2], t_eval=t, rtol=1e-10,
                    atol=1e-12).y.T
    np.testing.assert_allclose(got, ref, atol=1e-6)


def test_fitted_model_round_trips_through_save_and_load(toy, toy_fit, tmp_path):
    X, dX = toy
    for back in (sb.load(sb.save(toy_fit, tmp_path / "pi.npz")),
                 SINDyPI.from_dict(toy_fit.to_dict())):
        assert isinstance(back, SINDyPI) and str(back) == str(toy_fit)
        np.testing.assert_array_equal(back.predict(X[:20]), toy_fit.predict(X[:20]))
        assert back.candidates_["x"] == toy_fit.candidates_["x"]
        assert back.lhs_ == toy_fit.lhs_ and back.identified_ == toy_fit.identified_
    table = toy_fit.to_pandas()
    assert table.loc[("x", "x"), "numerator"] == pytest.approx(-2.0, rel=1e-8)
    assert table.loc[("x", "x"), "denominator"] == pytest.approx(2.0, rel=1e-8)
    ax = toy_fit.plot()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["x num", "x den", "y num",
                                                            "y den"]


def test_glycolysis_glucose_equation():
    """Mangan et al. (2016): dS1/dt = J0 - k1 S1 S6 / (1 + (S6/K1)^4) of the yeast
    glycolytic oscillator (zoo model), from its exact derivatives at states spanning the
    oscillation's range (examples/glycolysis_sindy_pi does it from simulated trajectories
    and finite differences)."""
    model = sb.load_zoo("yeast_glycolysis")
    p = np.array([q.value for q in model.parameters])
    rng = np.random.default_rng(1)
    x = np.asarray(model.initial) * rng.uniform(0.5, 1.5, size=(600, 7))
    x[:, 0] = rng.uniform(0.1, 2.0, 600)  # S1
    x[:, 5] = rng.uniform(0.1, 3.2, 600)  # S6
    dx = np.asarray(jax.vmap(lambda y: model.rhs(0.0, y, p, np.zeros(0)))(x))
    xs, dxs = x[:, [0, 5]], dx[:, [0, 5]]
    libs = {"S1": PolynomialLibrary(degree=4, inputs=["S1", "S6"]),
            "S6": PolynomialLibrary(degree=1)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # S6's equation is not closed in (S1, S6)
        pi = SINDyPI(libs, thresholds=(1e-3,)).fit(xs, x_dot=dxs, feature_names=["S1", "S6"])
    assert pi.lhs_["S1"] in {"1", "S1*S6", "S6^4", "S1'", "S1'*S6^4"}
    eq = pi.equations()["S1"]
    c = 1 / 0.52 ** 4
    assert set(eq["numerator"]) == {"1", "S1*S6", "S6^4"}
    assert set(eq["denominator"]) == {"1", "S6^4"}
    np.testing.assert_allclose(
        [eq["numerator"]["1"], eq["numerator"]["S1*S6"], eq["numerator"]["S6^4"],
         eq["denominator"]["S6^4"]], [2.5, -100.0, 2.5 * c, c], rtol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    ({"thresholds": ()}, "thresholds"),
    ({"thresholds": (1e-3, -1.0)}, "thresholds"),
    ({"tolerance": 0.5}, "tolerance"),
    ({"alpha": -1.0}, "alpha"),
    ({"library": {"nope": PolynomialLibrary()}}, "nope"),
    ({"library": "poly"}, "library"),
])
def test_bad_settings_name_the_parameter(toy, kwargs, match):
    X, dX = toy
    with pytest.raises(InputError, match=match):
        SINDyPI(**kwargs).fit(X, x_dot=dX, feature_names=["x", "y"])


def test_bad_inputs_and_unfitted_use(toy):
    X, dX = toy
    with pytest.raises(InputError, match="x_dot"):
        SINDyPI().fit(X, x_dot=dX[:10])
    with pytest.raises(InputError, match="t is required"):
        SINDyPI().fit(X)
    with pytest.raises(InputError, match="feature_names"):
        SINDyPI().fit(X, x_dot=dX, feature_names=["x"])
    with pytest.raises(InputError, match="not fitted"):
        SINDyPI().equations()
    with pytest.raises(InputError, match="not fitted"):
        SINDyPI().to_model()
    assert str(SINDyPI()) == "SINDyPI (not fitted)"


def test_init_only_stores():
    lib = PolynomialLibrary(degree=3)
    est = SINDyPI(lib, thresholds=(0.1,), tolerance=2.0)
    assert est.library is lib and est.thresholds == (0.1,) and est.tolerance == 2.0
    assert not hasattr(est, "numerators_")
