"""Selection and fitting of density-dependent reaction-diffusion terms by simulation."""

import jax.numpy as jnp
import numpy as np
import pytest

import scalebridge as sb
from scalebridge.discover.reaction_diffusion import (
    delay_terms,
    diffusion_term,
    discover_reaction_diffusion,
    fit_reaction_diffusion,
    growth_term,
    porous_fisher_kpp_terms,
)
from scalebridge.errors import InputError
from scalebridge.pde import porous_fisher_kpp as porous_model

D_TRUE, R_TRUE = 0.04, 2.0
TIMES = np.array([0.0, 0.5, 1.0, 1.5, 2.0])


@pytest.fixture(scope="module")
def synthetic():
    """Porous Fisher-KPP data (u_t = (D u u_x)_x + r u (1 - u), K = 1) simulated by the PDE
    layer on 21 nodes of [0, 1]: two initial conditions, two noisy replicates each."""
    model = porous_model(length=1.0, n=21, D=D_TRUE, r=R_TRUE, K=1.0)
    x = np.linspace(0.0, 1.0, 21)
    rng = np.random.default_rng(0)
    data = []
    for height in (0.8, 0.5):
        y0 = 0.05 + height * np.exp(-((x / 0.3) ** 2))
        sol = sb.simulate(model, TIMES, y0=y0)
        ys = np.asarray(sol.states)
        reps = [ys + 0.004 * rng.standard_normal(ys.shape) for _ in range(2)]
        for r in reps:
            r[0] = ys[0]  # the initial profile is known exactly
        data.append(reps)
    return np.asarray(data), x


def test_discovery_recovers_porous_fisher_kpp(synthetic):
    data, x = synthetic
    library = (diffusion_term(0), diffusion_term(1), growth_term(0), growth_term(1))
    fit = discover_reaction_diffusion(data, x, TIMES, library=library, K=1.0, n_nodes=21,
                                      conditions=("high", "low"))
    assert fit.term_names == ("D1", "r0", "r1")
    print("discovered:", fit.params, fit.rmse)
    # reference: the generating D = 0.04, r = 2 (K = 1); noise 0.004. Measured: D1 off by
    # 1.1% and 2.2%, r0 by 0.05% and 0.18%, r1 by 0.04% and 0.37%; RMSE 0.0039 and 0.0042
    for p in fit.params:
        assert p["D1"] == pytest.approx(D_TRUE, rel=0.04)
        assert p["r0"] == pytest.approx(R_TRUE, rel=5e-3)
        assert p["r1"] == pytest.approx(-R_TRUE, rel=1e-2)
    assert np.all(fit.rmse < 0.005)  # the noise level, 0.004
    assert len(fit.candidates) == 12  # every set with a diffusion term
    assert fit.candidates[0]["terms"] == ["D1", "r0", "r1"]
    assert "D1 (u/K)" in fit.equation()


def test_fitted_model_simulates_with_scalebridge(synthetic):
    data, x = synthetic
    fit = fit_reaction_diffusion(data[:1], x, TIMES, porous_fisher_kpp_terms(), K=1.0, n_nodes=21)
    print("fitted:", fit.params)
    # reference: the generating D and r; measured 1.2% (D1) and 0.08% (r) off
    assert fit.params[0]["D1"] == pytest.approx(D_TRUE, rel=0.03)
    assert fit.params[0]["r"] == pytest.approx(R_TRUE, rel=5e-3)
    model = fit.model(0)
    sol = sb.simulate(model, TIMES)
    np.testing.assert_allclose(np.asarray(sol.states), fit.predict(0), atol=1e-4)
    u = np.array([0.0, 0.5, 1.0])
    np.testing.assert_allclose(fit.diffusivity(u), fit.params[0]["D1"] * u)
    np.testing.assert_allclose(fit.growth_rate(u), fit.params[0]["r"] * (1 - u))


def test_delay_is_recovered_and_simulated():
    """Data from the PDE layer's porous Fisher-KPP with its right-hand side multiplied by
    T(t) = 1 / (1 + a exp(-b t)); the fit recovers D, r, a, b and its Model agrees."""
    a_true, b_true = 3.0, 2.0
    model = porous_model(length=1.0, n=21, D=D_TRUE, r=R_TRUE, K=1.0)
    inner = model.rhs
    model = model.replace(rhs=lambda t, y, p, u: inner(t, y, p, u)
                          / (1.0 + a_true * jnp.exp(-b_true * t)))
    x = np.linspace(0.0, 1.0, 21)
    y0 = 0.05 + 0.8 * np.exp(-((x / 0.3) ** 2))
    data = np.asarray(sb.simulate(model, TIMES, y0=y0).states)
    fit = fit_reaction_diffusion(data, x, TIMES, porous_fisher_kpp_terms() + delay_terms(), K=1.0,
                                 n_nodes=21)
    p = fit.params[0]
    print("delay:", p)
    # reference: the generating D, r, a, b; noise-free data, measured at most 1.1e-6 off
    for name, truth in {"D1": D_TRUE, "r": R_TRUE, "a_T": a_true, "b_T": b_true}.items():
        assert p[name] == pytest.approx(truth, rel=1e-4), name
    assert "T(t)" in fit.equation()
    sol = sb.simulate(fit.model(0), TIMES)
    np.testing.assert_allclose(np.asarray(sol.states), fit.predict(0), atol=1e-5)


def test_bad_input_is_named():
    x = np.linspace(0.0, 1.0, 6)
    t = np.array([0.0, 1.0, 2.0])
    good = np.ones((2, 3, 6))
    bad = good.copy()
    bad[1, 2, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        fit_reaction_diffusion(bad, x, t, porous_fisher_kpp_terms())
    with pytest.raises(InputError, match="at least 3 times"):
        fit_reaction_diffusion(good[:, :2], x, t[:2], porous_fisher_kpp_terms())
    with pytest.raises(InputError, match="strictly increasing"):
        fit_reaction_diffusion(good, x[::-1], t, porous_fisher_kpp_terms())
    with pytest.raises(InputError, match="expected \\(conditions"):
        fit_reaction_diffusion(good, x[:5], t, porous_fisher_kpp_terms())
    with pytest.raises(InputError, match="criterion"):
        discover_reaction_diffusion(good, x, t, criterion="cv")
