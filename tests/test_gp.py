"""Gaussian-process regression: closed forms, peer agreement, ML-II, conditioning, saving."""

import warnings

import equinox as eqx
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

import scalebridge as sb
from conftest import peer
from scalebridge.errors import InputError, SerializationError
from scalebridge.surrogate import gp as gpmod
from scalebridge.surrogate.gp import GaussianProcess
from scalebridge.surrogate.kernels import RBF, Matern32, Matern52

LS = np.array([0.3, 0.7])


def _data(n=12, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, 2))
    y = np.sin(3 * x[:, 0]) + np.cos(2 * x[:, 1]) + 0.5
    return x, y


def _profile(name, r):
    if name == "RBF":
        return np.exp(-0.5 * r**2)
    s = np.sqrt(3.0 if name == "Matern32" else 5.0) * r
    return (1 + s) * np.exp(-s) if name == "Matern32" else (1 + s + s**2 / 3) * np.exp(-s)


def _numpy_kernel(name, a, b, ls, var):
    r = np.sqrt(np.sum(((a[:, None, :] - b[None, :, :]) / ls) ** 2, axis=-1))
    return var * _profile(name, r)


def _fixed_gp(kernel, noise=0.01):
    return GaussianProcess(kernel, noise=noise, normalize_x=False, normalize_y=False,
                           optimize=False)


@pytest.mark.parametrize("cls", [RBF, Matern32, Matern52])
def test_matches_closed_form_gp(cls):
    """Fixed hyperparameters: mean, variance, covariance and log marginal likelihood equal
    the textbook formulas (Rasmussen & Williams 2006, eqs. 2.25, 2.26, 2.30)."""
    x, y = _data()
    xs = np.random.default_rng(1).uniform(0, 1, (7, 2))
    gp = _fixed_gp(cls(lengthscale=LS, variance=1.7), noise=0.01).fit(x, y)
    k = _numpy_kernel(cls.__name__, x, x, LS, 1.7) + 0.01 * np.eye(len(x))
    ks = _numpy_kernel(cls.__name__, xs, x, LS, 1.7)
    kss = _numpy_kernel(cls.__name__, xs, xs, LS, 1.7)
    mean = ks @ np.linalg.solve(k, y)
    cov = kss - ks @ np.linalg.solve(k, ks.T)
    lml = (-0.5 * y @ np.linalg.solve(k, y) - 0.5 * np.linalg.slogdet(k)[1]
           - 0.5 * len(y) * np.log(2 * np.pi))
    m, v = gp.predict(xs)
    m2, c2 = gp.predict(xs, full_cov=True)
    np.testing.assert_allclose(m, mean, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(v, np.diag(cov), rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(c2, cov, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(m2, m, rtol=1e-12)
    np.testing.assert_allclose(gp.log_marginal_likelihood_, lml, rtol=1e-9)
    _, vn = gp.predict(xs, include_noise=True)
    np.testing.assert_allclose(vn, v + 0.01, rtol=1e-10)


def test_sum_product_kernels_match_gpy():
    """A sum of a product and a Matern kernel, ARD and normalised, agrees with GPy."""
    gpy = peer("GPy", "GPy")
    x, y = _data(15)
    xs = np.random.default_rng(2).uniform(0, 1, (9, 2))
    k1, k2, k3 = RBF(LS, 1.3), Matern32([0.5], 0.8, active_dims=[1]), Matern52(LS[::-1], 0.4)
    gp = GaussianProcess(k1 * k2 + k3, noise=1e-3, optimize=False).fit(x, y)
    # GPy on the same normalised data (inputs to the unit box, outputs z-scored)
    lo, span = x.min(0), np.ptp(x, 0)
    mu, sd = y.mean(), y.std()
    gk = (gpy.kern.RBF(2, variance=1.3, lengthscale=LS, ARD=True)
          * gpy.kern.Matern32(1, variance=0.8, lengthscale=0.5, active_dims=[1])
          + gpy.kern.Matern52(2, variance=0.4, lengthscale=LS[::-1], ARD=True))
    model = gpy.models.GPRegression((x - lo) / span, ((y - mu) / sd)[:, None], gk,
                                    noise_var=1e-3 / sd**2)
    gm, gv = model.predict_noiseless((xs - lo) / span)
    m, v = gp.predict(xs)
    # GPy (1.15) adds a small jitter to the kernel matrix: the agreement it allows, measured,
    # is 1.4e-8 (mean, relative), 2.6e-6 (variance, relative) and 1.8e-6 (log likelihood)
    np.testing.assert_allclose(m, mu + sd * gm[:, 0], rtol=1e-7)
    np.testing.assert_allclose(v, sd**2 * gv[:, 0], rtol=1e-5, atol=1e-8)
    lml = float(model.log_likelihood()) - len(y) * np.log(sd)
    np.testing.assert_allclose(gp.log_marginal_likelihood_, lml, atol=1e-5)


def test_lml_gradient_matches_finite_differences():
    x, y = _data(10)
    gp = GaussianProcess(Matern52(LS, 1.2) + RBF(0.4, 0.3), optimize=False).fit(x, y)
    data, _ = gp._prepare(x, (y - y.mean()) / y.std(), None, None, None)
    dat = data(1e-12)
    params, static = eqx.partition(gp.hyper_, eqx.is_inexact_array)
    theta, unravel = jax.flatten_util.ravel_pytree(params)

    @jax.jit
    def f(th):
        return gpmod._factor(eqx.combine(unravel(th), static), dat)[2]

    grad = np.asarray(jax.grad(f)(theta))
    h = 1e-6
    fd = np.array([(f(theta.at[i].add(h)) - f(theta.at[i].add(-h))) / (2 * h)
                   for i in range(theta.size)])
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-7)


def _draw_gp(n, ls, noise, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, 2))
    k = _numpy_kernel("RBF", x, x, np.asarray(ls), 1.0) + noise * np.eye(n)
    return x, np.linalg.cholesky(k) @ rng.normal(size=n)


def test_ml2_recovers_lengthscales():
    """Type-II maximum likelihood on a draw from a GP with known ARD lengthscales."""
    x, y = _draw_gp(120, [0.15, 0.6], 1e-4, 3)
    gp = GaussianProcess(RBF(), restarts=2).fit(x, y)
    ratio = gp.lengthscales_ / np.array([0.15, 0.6])
    assert np.all((ratio > 0.6) & (ratio < 1.6)), gp.lengthscales_
    assert 2e-5 < gp.noise_ < 5e-4


def test_interpolates_smooth_function_and_is_seeded():
    x, y = _data(30)
    xt = np.random.default_rng(5).uniform(0.05, 0.95, (200, 2))
    yt = np.sin(3 * xt[:, 0]) + np.cos(2 * xt[:, 1]) + 0.5
    gp = GaussianProcess(seed=3).fit(x, y)
    m, v = gp.predict(xt)
    assert np.linalg.norm(m - yt) / np.linalg.norm(yt) < 2e-3
    # the predicted standard deviation is a sensible error bar
    assert np.mean(np.abs(m - yt) < 3 * np.sqrt(v) + 1e-6) > 0.9
    again = GaussianProcess(seed=3).fit(x, y)
    np.testing.assert_array_equal(np.asarray(again.predict(xt)[0]), np.asarray(m))
    assert again.log_marginal_likelihood_ == gp.log_marginal_likelihood_


def test_second_fit_of_same_shapes_does_not_recompile():
    x, y = _data(30)
    GaussianProcess(seed=3).fit(x, y)
    before = dict(gpmod._TRACES)
    x2, y2 = _data(30, seed=7)
    gp = GaussianProcess(seed=11, restarts=4).fit(x2, y2 * 3 + 1)
    assert gpmod._TRACES["optimise"] == before["optimise"]
    gp.predict(x2[:5])
    before = dict(gpmod._TRACES)
    GaussianProcess(seed=12).fit(x, y).predict(x[:5])
    assert gpmod._TRACES == before


def test_fits_within_a_bucket_of_n_compile_once():
    """Training sets are padded to a multiple of 32 points: fits (and predictions) with
    n = 20, 21 and 25 share one compilation; a new bucket (n = 40) compiles again."""
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 1, (40, 3))
    y = np.sin(3 * x[:, 0]) + x[:, 1] * x[:, 2]
    before = dict(gpmod._TRACES)
    for n in (20, 21, 25):
        GaussianProcess(Matern32(), restarts=2, seed=n).fit(x[:n], y[:n]).predict(x[:4])
    assert {k: gpmod._TRACES[k] - before[k] for k in before} == {
        "optimise": 1, "factor": 1, "predict": 1}
    GaussianProcess(Matern32(), restarts=2).fit(x, y)
    assert gpmod._TRACES["optimise"] - before["optimise"] == 2


def test_padding_rows_do_not_change_results():
    """n = 33 (31 padding rows in a bucket of 64): the textbook formulas still hold."""
    x, y = _data(33, seed=2)
    xs = np.random.default_rng(3).uniform(0, 1, (5, 2))
    gp = _fixed_gp(Matern52(LS, 1.3), noise=1e-3).fit(x, y)
    assert gp.posterior_.x.shape[0] == 64
    k = _numpy_kernel("Matern52", x, x, LS, 1.3) + 1e-3 * np.eye(33)
    ks = _numpy_kernel("Matern52", xs, x, LS, 1.3)
    lml = (-0.5 * y @ np.linalg.solve(k, y) - 0.5 * np.linalg.slogdet(k)[1]
           - 0.5 * 33 * np.log(2 * np.pi))
    m, v = gp.predict(xs)
    np.testing.assert_allclose(m, ks @ np.linalg.solve(k, y), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(v, 1.3 - np.sum(ks * np.linalg.solve(k, ks.T).T, axis=1),
                               rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(gp.log_marginal_likelihood_, lml, rtol=1e-9)


def test_warm_start_begins_at_the_previous_optimum():
    x, y = _data(25)
    gp = GaussianProcess(restarts=2, warm_start=True).fit(x, y)
    best = gp.log_marginal_likelihood_
    # one BFGS step from the default start is far from the optimum ...
    cold = GaussianProcess(restarts=0, max_steps=1).fit(x, y)
    assert cold.log_marginal_likelihood_ < best - 1.0
    # ... but a warm start begins at it
    gp.restarts, gp.max_steps = 0, 1
    gp.fit(x, y)
    assert gp.log_marginal_likelihood_ == pytest.approx(best, abs=1e-6)
    np.testing.assert_allclose(gp.fit(x[:24], y[:24]).posterior_.x.shape, (32, 2))


def test_lengthscale_bounds_cap_the_fitted_lengthscales():
    """y depends on x0 only: maximum likelihood switches x1 off (a huge lengthscale)
    unless ``lengthscale_bounds`` caps it."""
    rng = np.random.default_rng(8)
    x = rng.uniform(0, 1, (20, 2))
    y = np.sin(4 * x[:, 0])
    free = GaussianProcess(normalize_x=False, restarts=2).fit(x, y)
    assert free.lengthscales_[1] > 5.0
    capped = GaussianProcess(normalize_x=False, restarts=2,
                             lengthscale_bounds=(1e-2, 2.0)).fit(x, y)
    assert np.all(capped.lengthscales_ <= 2.0 + 1e-9)
    assert np.all(capped.lengthscales_ >= 1e-2)
    assert capped.lengthscales_[1] > 1.5  # pushed to the cap, not switched off
    xs = rng.uniform(0, 1, (50, 2))
    assert np.mean(np.abs(capped.predict(xs)[0] - np.sin(4 * xs[:, 0]))) < 0.03
    with pytest.raises(InputError, match="lengthscale_bounds"):
        GaussianProcess(lengthscale_bounds=(2.0, 1.0)).fit(x, y)
    # a narrow log-normal prior (hyperprior) pulls both lengthscales to half the range
    narrow = GaussianProcess(normalize_x=False, restarts=2, hyperprior=True,
                             lengthscale_prior_sd=0.05).fit(x, y)
    half = 0.5 * np.ptp(x, axis=0)
    np.testing.assert_allclose(narrow.lengthscales_, half, rtol=0.25)
    with pytest.raises(InputError, match="lengthscale_prior_sd"):
        GaussianProcess(lengthscale_prior_sd=0.0).fit(x, y)


def test_posterior_samples_converge():
    x, y = _data(8)
    gp = GaussianProcess(Matern52(LS, 1.0), noise=1e-2, optimize=False).fit(x, y)
    xs = np.random.default_rng(4).uniform(0, 1, (5, 2))
    mean, cov = gp.predict(xs, full_cov=True)
    s = np.asarray(gp.sample(xs, 20000, seed=1))
    assert s.shape == (20000, 5)
    sd = np.sqrt(np.diag(cov))
    assert np.all(np.abs(s.mean(0) - mean) < 5 * sd / np.sqrt(20000))
    np.testing.assert_allclose(np.cov(s.T), cov, atol=0.05 * np.max(np.diag(cov)))
    np.testing.assert_array_equal(np.asarray(gp.sample(xs, 3, seed=2)),
                                  np.asarray(gp.sample(xs, 3, seed=2)))
    assert not np.array_equal(np.asarray(gp.sample(xs, 3, seed=2)),
                              np.asarray(gp.sample(xs, 3, seed=3)))


def test_predict_is_differentiable_and_jittable():
    x, y = _data(12)
    gp = GaussianProcess(RBF(LS, 1.0), noise=1e-3, optimize=False).fit(x, y)
    x0 = jnp.array([0.4, 0.6])

    def f(z):
        m, v = gp.predict(z[None, :])
        return m[0] + 2 * v[0]

    g = jax.grad(f)(x0)
    h = 1e-6
    fd = [(f(x0.at[i].add(h)) - f(x0.at[i].add(-h))) / (2 * h) for i in range(2)]
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-8)
    jf = jax.jit(jax.vmap(f))
    np.testing.assert_allclose(jf(jnp.asarray(x[:3])), [f(jnp.asarray(r)) for r in x[:3]],
                               rtol=1e-10)
    # the fitted state is a pytree: a jitted predictor takes it as an argument
    pred = eqx.filter_jit(lambda post, z: post.predict(z))
    np.testing.assert_allclose(pred(gp.posterior_, x[:3])[0], gp.predict(x[:3])[0], rtol=1e-12)


def test_duplicates_with_zero_noise_warn_and_extreme_outputs_raise():
    x, y = _data(10)
    xd, yd = np.vstack([x, x[:3]]), np.concatenate([y, y[:3] + 0.1])
    kernel = RBF(LS, 1.0)
    with pytest.warns(RuntimeWarning, match="duplicate input"):
        gp = GaussianProcess(kernel, noise=0.0, optimize=False).fit(xd, yd)
    assert gp.jitter_ > gpmod._JITTERS[0]
    assert np.all(np.isfinite(np.asarray(gp.predict(x)[0])))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(InputError, match="noise=None"):
            GaussianProcess(kernel, noise=0.0, normalize_y=False, optimize=False).fit(
                xd, yd * 1e160)
    # learning the noise needs no jitter
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        GaussianProcess(kernel, optimize=False).fit(xd, yd)


def test_bad_inputs_raise_input_error():
    x, y = _data(6)
    gp = GaussianProcess()
    with pytest.raises(InputError, match="6 points but y"):
        gp.fit(x, y[:5])
    with pytest.raises(InputError, match="NaN"):
        gp.fit(np.where(np.eye(6, 2) > 0, np.nan, x), y)
    with pytest.raises(InputError, match="NaN"):
        gp.fit(x, np.where(np.arange(6) == 2, np.inf, y))
    with pytest.raises(InputError, match="at least 2"):
        gp.fit(x[:1], y[:1])
    with pytest.raises(InputError, match="2-D"):
        gp.fit(x[:, 0], y)
    with pytest.raises(InputError, match="noise"):
        GaussianProcess(noise=-1.0).fit(x, y)
    with pytest.raises(InputError, match="kernel"):
        GaussianProcess(kernel="rbf").fit(x, y)
    with pytest.raises(InputError, match="not fitted"):
        gp.predict(x)
    with pytest.raises(InputError, match="lengthscale"):
        RBF(lengthscale=-1.0)
    fitted = GaussianProcess(RBF(LS, 1.0), noise=1e-3, optimize=False).fit(x, y)
    with pytest.raises(InputError, match="3 columns"):
        fitted.predict(np.zeros((4, 3)))


def test_save_load_roundtrip(tmp_path):
    x, y = _data(12)
    gp = GaussianProcess(Matern32(active_dims=[0]) * RBF(active_dims=[1]) + RBF(LS, 0.1),
                         restarts=1).fit(x, y)
    path = sb.save(gp, tmp_path / "gp.npz")
    back = sb.load(path)
    assert isinstance(back, GaussianProcess)
    xs = np.random.default_rng(9).uniform(0, 1, (6, 2))
    for a, b in zip(gp.predict(xs), back.predict(xs), strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-12)
    assert back.log_marginal_likelihood_ == pytest.approx(gp.log_marginal_likelihood_, 1e-12)
    assert back.noise_ == pytest.approx(gp.noise_)
    table = back.to_pandas()
    assert table.shape == (12, 3) and table["y"].iloc[4] == y[4]
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    assert gp.plot(ax=ax, dim=1) is ax and ax.get_xlabel() == "x1"
    plt.close(fig)
    with pytest.raises(SerializationError, match="holds a 'gaussian_process'"):
        sb.load(path, kind="model")
