"""Acquisition functions against closed forms and Monte Carlo; their optimisation and the
batch proposals by local penalisation."""

import math

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest

import scalebridge  # noqa: F401  (float64)
from scalebridge.errors import InputError
from scalebridge.surrogate.acquisition import (
    ConfidenceBound,
    ExpectedImprovement,
    MaximumVariance,
    augmented_expected_improvement,
    expected_improvement,
    lipschitz_constant,
    local_penalty,
    log_expected_improvement,
    lower_confidence_bound,
    make_acquisition,
    optimize_acquisition,
    propose_batch,
    ucb_beta,
    upper_confidence_bound,
    variance_reduction_per_cost,
)


def test_ei_matches_monte_carlo():
    rng = np.random.default_rng(0)
    mean = np.array([0.0, 1.0, -0.5, 2.0, 0.3])
    std = np.array([1.0, 0.5, 2.0, 0.3, 1e-3])
    best = 0.4
    f = mean + std * rng.standard_normal((400_000, mean.size))
    mc_min = np.maximum(best - f, 0).mean(axis=0)
    mc_max = np.maximum(f - best, 0).mean(axis=0)
    se = np.maximum(best - f, 0).std(axis=0) / math.sqrt(f.shape[0])
    ei = np.asarray(expected_improvement(mean, std, best))
    np.testing.assert_allclose(ei, mc_min, atol=5 * se.max() + 1e-12)
    ei_max = np.asarray(expected_improvement(mean, std, best, minimize=False))
    np.testing.assert_allclose(ei_max, mc_max, atol=5 * se.max() + 1e-12)
    # a margin xi is improvement over best - xi
    np.testing.assert_allclose(expected_improvement(mean, std, best, xi=0.2),
                               expected_improvement(mean, std, best - 0.2), rtol=1e-12)


def _log_ei_exact(z):
    z = mpmath.mpf(z)
    return float(mpmath.log(mpmath.npdf(z) + z * mpmath.ncdf(z)))


@pytest.mark.parametrize("z", [5.0, 0.3, 0.0, -0.999, -1.001, -5.0, -40.0, -1e3, -1e6, -1e9])
def test_log_ei_is_accurate_where_ei_underflows(z):
    mpmath.mp.dps = 60
    got = float(log_expected_improvement(-z, 1.0, 0.0))  # best - mean = z, std 1
    exact = _log_ei_exact(z)
    assert got == pytest.approx(exact, rel=1e-9, abs=1e-12)
    if z < -40:  # EI itself underflows to 0 there, its log does not
        assert float(expected_improvement(-z, 1.0, 0.0)) == 0.0


def test_log_ei_gradient_is_finite_and_matches_finite_differences():
    f = jax.grad(lambda m: log_expected_improvement(m, 0.7, 0.0))
    for m in (-2.0, 0.0, 0.69, 0.71, 3.0, 30.0, 3e4):
        g = float(f(m))
        h = 1e-6 * max(1.0, abs(m))
        fd = (float(log_expected_improvement(m + h, 0.7, 0.0))
              - float(log_expected_improvement(m - h, 0.7, 0.0))) / (2 * h)
        assert math.isfinite(g)
        assert g == pytest.approx(fd, rel=1e-5)


def test_confidence_bounds_and_beta_schedule():
    assert float(lower_confidence_bound(1.0, 2.0, 4.0)) == -3.0
    assert float(upper_confidence_bound(1.0, 2.0, 4.0)) == 5.0
    b = [ucb_beta(t, 2) for t in (1, 10, 100)]
    assert b[0] < b[1] < b[2]
    assert ucb_beta(10, 2, scale=1.0) == pytest.approx(
        2 * math.log(10**3 * math.pi**2 / 0.3))
    with pytest.raises(InputError, match="delta"):
        ucb_beta(1, 2, delta=2.0)
    acq = ConfidenceBound(4.0)
    # log-utility is monotone in the value and finite far below zero
    v = jnp.array([-1e3, -40.0, -1.0, 0.0, 2.0, 50.0])
    lu = np.asarray(acq.log_utility(-v, jnp.zeros_like(v)))
    assert np.all(np.isfinite(lu)) and np.all(np.diff(lu) > 0)


def test_make_acquisition_names_and_errors():
    assert isinstance(make_acquisition("ei", best=0.0), ExpectedImprovement)
    assert isinstance(make_acquisition("variance"), MaximumVariance)
    with pytest.raises(InputError, match="unknown"):
        make_acquisition("pi")
    with pytest.raises(InputError, match="beta"):
        make_acquisition("ucb", beta=-1.0)


def test_augmented_ei_and_variance_reduction():
    ei = float(expected_improvement(0.2, 0.5, 0.0))
    # the top level itself, noise-free: plain EI
    assert float(augmented_expected_improvement(0.2, 0.5, 0.0, 1.0, 1.0, 1.0)) == \
        pytest.approx(ei)
    # a level 10x cheaper with correlation 0.5 is worth 5 EI
    assert float(augmented_expected_improvement(0.2, 0.5, 0.0, 0.5, 0.1, 1.0)) == \
        pytest.approx(5 * ei)
    assert float(variance_reduction_per_cost(4.0, 0.5, 0.1)) == pytest.approx(10.0)


def test_optimize_acquisition_finds_interior_and_boundary_maxima():
    target = jnp.array([0.3, 0.81, 0.55])

    def fun(u):
        return -jnp.sum((u - target) ** 2, axis=1)

    u, v = optimize_acquisition(fun, 3, seed=1, n_candidates=128)
    np.testing.assert_allclose(u, target, atol=1e-6)
    assert v == pytest.approx(0.0, abs=1e-10)
    u, _ = optimize_acquisition(lambda x: jnp.sum(x, axis=1), 2, seed=0, n_candidates=16)
    np.testing.assert_allclose(u, [1.0, 1.0])
    # excluded points are not proposed again
    u, _ = optimize_acquisition(fun, 3, seed=1, n_candidates=128, exclude=target[None],
                                exclude_radius=0.05)
    assert np.linalg.norm(u - target) > 0.05


def _toy_posterior(u):
    """A posterior with one clear optimum near (0.7, 0.2) and uniform uncertainty."""
    u = jnp.atleast_2d(u)
    mean = jnp.sum((u - jnp.array([0.7, 0.2])) ** 2, axis=1) * 10 - 1
    var = 0.3 + 0.0 * mean
    return mean, var


def test_local_penalty_and_lipschitz():
    L = lipschitz_constant(lambda u: _toy_posterior(u)[0], np.random.default_rng(0).random(
        (500, 2)))
    # |grad mean| = 20 |u - c| is at most 20 * |(0.7, 0.8)| at the corner (0, 1)
    assert 15 < L <= 20 * math.hypot(0.7, 0.8) + 1e-9
    c = jnp.array([0.5, 0.5])
    near, far = jnp.array([[0.5, 0.51]]), jnp.array([[0.0, 0.0]])
    assert float(local_penalty(near, c, 0.0, 0.1, L, -1.0)[0]) < \
        float(local_penalty(far, c, 0.0, 0.1, L, -1.0)[0]) <= 0.0


@pytest.mark.slow  # the loop's batches are tested in test_explore (compiled once there)
def test_batch_proposals_are_distinct_and_spread():
    acq = ExpectedImprovement(best=-0.9)
    prop = propose_batch(_toy_posterior, acq, 3, 2, seed=0, best=-0.9, n_candidates=128)
    assert prop.u.shape == (3, 2)
    d = np.linalg.norm(prop.u[:, None] - prop.u[None], axis=2) + np.eye(3)
    assert d.min() > 1e-2
    # the first point is the unpenalised optimum of EI
    np.testing.assert_allclose(prop.u[0], [0.7, 0.2], atol=1e-4)
    assert np.all(prop.value > 0) and prop.lipschitz > 0
