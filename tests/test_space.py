"""ParameterSpace: the scaled, linear and unconstrained coordinates, priors, start points."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

import scalebridge as sb
from scalebridge.errors import InputError


def _box_space():
    return sb.ParameterSpace([sb.Parameter("a", 1.0, 0.0, 2.0), sb.Parameter("b", 2.0, 1.0),
                              sb.Parameter("c", 0.0, upper=5.0), sb.Parameter("d", 0.5)])


def test_unconstrained_roundtrip_and_jacobian_against_finite_differences():
    box = _box_space()
    u = np.array([[0.3, -1.2, 0.7, 4.0], [-40.0, 30.0, -30.0, -9.0], [40.0, 2.0, 3.0, 0.0]])
    x = box.unconstrained_to_scaled(u)
    assert np.all(x[:, 0] > 0) and np.all(x[:, 0] <= 2) and np.all(x[:, 1] > 1)
    assert np.all(x[:, 2] < 5)
    np.testing.assert_allclose(box.unconstrained_to_scaled(box.to_unconstrained(x[0])), x[0],
                               rtol=1e-12)
    xj, lj = box.from_unconstrained(jnp.asarray(u[0]))
    np.testing.assert_allclose(np.asarray(xj), x[0], rtol=1e-12)
    h = 1e-6
    fd = np.array([(box.unconstrained_to_scaled(u[0] + h * e)
                    - box.unconstrained_to_scaled(u[0] - h * e))[i] / (2 * h)
                   for i, e in enumerate(np.eye(4))])
    assert float(lj) == pytest.approx(np.sum(np.log(np.abs(fd))), rel=1e-6)
    dx, dlj = box.unconstrained_derivatives(u[0])
    np.testing.assert_allclose(dx, fd, rtol=1e-6)
    fd_lj = [(float(box.from_unconstrained(jnp.asarray(u[0] + h * e))[1])
              - float(box.from_unconstrained(jnp.asarray(u[0] - h * e))[1])) / (2 * h)
             for e in np.eye(4)]
    np.testing.assert_allclose(dlj, fd_lj, rtol=1e-5, atol=1e-8)
    # points on a bound are moved just inside
    assert np.isfinite(box.to_unconstrained(np.array([0.0, 1.0, 5.0, 0.0]))).all()
    assert box.outside(np.array([2.1, 1.0, 0.0, 0.0])).tolist() == [True, False, False, False]


def test_scales_linear_values_and_fixed_parameters():
    space = sb.ParameterSpace([sb.Parameter("k1", 0.1, 1e-3, 10.0, "log10"),
                               sb.Parameter("k2", 2.0, 0.5, 4.0, "log"),
                               sb.Parameter("v", 3.0, estimate=False),
                               sb.Parameter("w", -1.0, -2.0, 2.0)])
    assert space.ids == ("k1", "k2", "w") and space.names == ("k1", "k2", "v", "w")
    np.testing.assert_allclose(space.nominal, [-1.0, math.log(2.0), -1.0])
    np.testing.assert_allclose(space.bounds, [[-3, 1], [math.log(0.5), math.log(4.0)],
                                              [-2, 2]])
    x = np.array([0.5, 0.2, 1.5])
    np.testing.assert_allclose(space.full(x), [10**0.5, math.exp(0.2), 3.0, 1.5], rtol=1e-15)
    np.testing.assert_allclose(space.to_scaled(space.to_linear(x)), x, rtol=1e-14)
    assert space.as_dict(x)["k1"] == pytest.approx(10**0.5)
    # any leading shape, and traceable
    np.testing.assert_allclose(space.to_linear(np.stack([x, x]))[1], space.to_linear(x))
    g = jax.grad(lambda x: jnp.sum(space.full(x)))(jnp.asarray(x))
    np.testing.assert_allclose(g, [10**0.5 * math.log(10), math.exp(0.2), 1.0], rtol=1e-14)
    np.testing.assert_allclose(space.vector({"k2": 0.0}), [-1.0, 0.0, -1.0])
    with pytest.raises(InputError, match="not an estimated parameter"):
        space.vector({"v": 1.0})
    with pytest.raises(InputError, match=r"expected \(3,\)"):
        space.vector(np.zeros(4))
    fixed = space.fix(k2=1.5)
    assert fixed.ids == ("k1", "w") and fixed.full(np.zeros(2))[1] == 1.5
    only = space.with_estimated(["v"])
    assert only.ids == ("v",) and only.nominal.tolist() == [3.0]
    with pytest.raises(InputError, match="'nope' not among the parameters"):
        space.fix(nope=1.0)


def test_from_model_and_dict_round_trip():
    model = sb.load_zoo("lotka_volterra")
    space = sb.ParameterSpace.from_model(model, estimate=model.parameter_names[:2])
    assert space.ids == model.parameter_names[:2]
    space = sb.ParameterSpace(
        [sb.Parameter("a", 2.0, 0.0, math.inf, "log", prior=sb.Prior("logNormal", (0, 1))),
         sb.Parameter("b", 1.0, -1.0, 3.0, estimate=False)],
        init_priors={"a": sb.Prior("normal", (2.0, 0.5))})
    back = sb.ParameterSpace.from_dict(space.to_dict())
    assert back.parameters == space.parameters and back.init_priors == space.init_priors
    assert list(space.to_pandas().index) == ["a", "b"]


@pytest.mark.parametrize("scale", ["lin", "log", "log10"])
def test_prior_density_of_x_integrates_to_one(scale):
    # a logNormal prior on the linear value, seen on each scale, is a density of x
    p = sb.Parameter("k", 1.0, 1e-6, 1e6, scale, prior=sb.Prior("logNormal", (0.0, 0.8)))
    space = sb.ParameterSpace([p])
    dens = space.log_prior_density("petab")
    lo, hi = space.lower[0], space.upper[0]
    breaks = space.to_scaled(np.exp(np.arange(-4.0, 5.0))[:, None])[:, 0]
    total, _ = integrate.quad(lambda x: math.exp(float(dens(jnp.asarray([x])))), lo, hi,
                              points=breaks, limit=400)
    assert total == pytest.approx(1.0, abs=1e-6)
    # uniform on the scaled bounds
    flat = space.log_prior_density("uniform")
    assert float(flat(jnp.asarray([0.3]))) == pytest.approx(-math.log(hi - lo))
    with pytest.raises(InputError, match="prior='nope'"):
        space.log_prior_density("nope")
    open_ = sb.ParameterSpace([sb.Parameter("k", 1.0)])
    with pytest.raises(InputError, match="not proper"):
        open_.log_prior_density("uniform")


def test_start_points_need_finite_bounds():
    with pytest.raises(InputError, match="finite bounds"):
        sb.ParameterSpace([sb.Parameter("k", 1.0)]).start_points(3)
    x = sb.ParameterSpace([sb.Parameter("k", 1.0, 0.01, 100.0, "log10")]).start_points(20)
    # one point in each of the 20 strata of [-2, 2]
    assert sorted(np.floor((x[:, 0] + 2) / 0.2).astype(int).tolist()) == list(range(20))


def test_space_saves_and_loads(tmp_path):
    space = sb.ParameterSpace([sb.Parameter("k", 2.0, 0.1, 10.0, "log10"),
                               sb.Parameter("v", 1.0, estimate=False)])
    sb.save(space, tmp_path / "space.npz")
    back = sb.load(tmp_path / "space.npz")
    assert back.parameters == space.parameters and back.ids == ("k",)


def test_bounds_from_a_model_drive_the_unit_box_and_sensitivity_distributions():
    from scalebridge.sensitivity.distributions import LogUniform, Uniform, as_distributions

    model = sb.load_zoo("lotka_volterra")
    a, b = model.parameter_names[:2]
    space = sb.ParameterSpace.from_model(model, bounds={a: (0.1, 10.0, "log"), b: (0.0, 2.0)})
    assert space.ids == (a, b) and space.scales == ("log", "lin")
    assert space.parameters[0].value == model.parameters[0].value  # values are kept
    u = np.array([[0.0, 0.0], [0.5, 0.25], [1.0, 1.0]])
    theta = space.from_unit(u)
    np.testing.assert_allclose(theta, [[0.1, 0.0], [1.0, 0.5], [10.0, 2.0]], rtol=1e-12)
    np.testing.assert_allclose(space.to_unit(theta), u, atol=1e-12)
    dists, names = as_distributions(space)
    assert names == (a, b)
    assert dists == (LogUniform(0.1, 10.0), Uniform(0.0, 2.0))
    with pytest.raises(InputError, match="not among the parameters"):
        sb.ParameterSpace.from_model(model, bounds={"nope": (0.0, 1.0)})


def test_bad_boxes_and_fixed_values_reach_the_model():
    s = sb.ParameterSpace.from_bounds({"k": (0.01, 100.0, "log10"), "v": (0.0, 1.0, False)})
    assert s.scales == ("log10", "lin") and s.nominal.tolist() == [0.0, 0.5]
    with pytest.raises(InputError, match="scale 'linear' is unknown"):
        sb.ParameterSpace.from_bounds([(0.0, 1.0, "linear")])
    with pytest.raises(InputError, match="must be an identifier"):
        sb.ParameterSpace.from_bounds({"k-1": (0.0, 1.0)})
    with pytest.raises(InputError, match="equal lower and upper bounds"):
        sb.ParameterSpace([sb.Parameter("k", 1.0, 1.0, 1.0)])
    # a fixed value of the space is what the model output simulates with
    model = sb.load_zoo("lotka_volterra")
    a, b = model.parameter_names[:2]
    space = sb.ParameterSpace.from_model(model, bounds={a: (0.5, 2.0)}).fix(**{b: 0.1})
    out = sb.ModelOutput(model, f"{model.state_names[0]}@5", space)
    direct = sb.simulate(model.with_parameters(**{a: 1.0, b: 0.1}), [0.0, 5.0])
    assert float(out(np.array([[1.0]]))[0]) == pytest.approx(
        float(direct[model.state_names[0]][-1]), rel=1e-6)
