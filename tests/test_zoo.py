"""The model zoo: registry, agreement with independent implementations, known properties.

Each model is simulated once with scalebridge (module cache) and compared with an
independent NumPy/scipy version written from the original paper's equations and tables
(``tests/zoo_reference.py``; no scalebridge, no JAX), integrated by ``solve_ivp`` at
rtol 1e-12 piecewise between stimulus edges (the linear PK model: exactly, by the matrix
exponential). A transcription error in a zoo module shows up as a disagreement. The
independent sources:

    lotka_volterra      Volterra (1926) Nature 118:558, the two-species equations
    fitzhugh_nagumo     FitzHugh (1961) Biophys J 1:445, the BVP equations in (x, y, z, c)
    hodgkin_huxley      Hodgkin & Huxley (1952) J Physiol 117:500, eqs. 12-13, 20-21, 23-24,
                        26, in the paper's potentials (displacement from rest)
    aliev_panfilov      Aliev & Panfilov (1996) Chaos Solitons Fractals 7:293, eqs. 1-2
    beeler_reuter       Beeler & Reuter (1977) J Physiol 268:177, eqs. 1-7, Table 1 (mol/L)
    yeast_glycolysis    Ruoff et al. (2003) Biophys Chem 106:179, rate laws and Table 1
    sir                 Kermack & McKendrick (1927) Proc R Soc A 115:700, in numbers
    seir                Anderson & May (1991) Infectious Diseases of Humans, in numbers
    glucose_insulin     Sturis et al. (1991) Am J Physiol 260:E801 in the form of Tolic et
                        al. (2000) J Theor Biol 207:361, eqs. 1-6 and Table 1
    pk_two_compartment  Gibaldi & Perrier (1982) Pharmacokinetics, micro-constants, exact
    lorenz              Lorenz (1963) J Atmos Sci 20:130, eqs. 25-27

The limit-cycle periods (yeast glycolysis, Sturis) come from the independent versions by
scipy's event detection; no number in this file comes from a scalebridge run.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import brentq

import scalebridge as sb
import zoo_reference as ref
from scalebridge.errors import InputError
from scalebridge.model.zoo import ZOO, load_zoo, zoo_names
from scalebridge.model.zoo._common import x_over_expm1
from scalebridge.model.zoo.aliev_panfilov import aliev_panfilov
from scalebridge.model.zoo.hodgkin_huxley import hodgkin_huxley
from scalebridge.model.zoo.pk_two_compartment import pk_two_compartment

NAMES = ["lotka_volterra", "fitzhugh_nagumo", "hodgkin_huxley", "aliev_panfilov",
         "beeler_reuter", "yeast_glycolysis", "sir", "seir", "glucose_insulin",
         "pk_two_compartment", "lorenz"]

N_POINTS = 2001  # every run of a model uses this many output times: one compilation each

# name: (end of the scalebridge run, tolerance of |scalebridge - independent reference|
# relative to each state's maximum |value| over the run). Measured maximum errors
# (scalebridge at rtol 1e-10 against the reference at rtol 1e-12..1e-13) are in the
# comments; the tolerances are 10-30 times larger.
SPANS = {
    "lotka_volterra": (30.0, 1e-9),  # 3.2e-11
    "fitzhugh_nagumo": (400.0, 2e-8),  # 8e-10
    "hodgkin_huxley": (60.0, 5e-9),  # 1.9e-10; pulses at 5 and 55 ms
    "aliev_panfilov": (100.0, 1e-9),  # 4.2e-11; pulse at t = 1
    "beeler_reuter": (600.0, 1e-7),  # 4.2e-9 (Kvaerno5's error: Radau and LSODA agree
                                     # to 2e-10); pulse at 10 ms
    "yeast_glycolysis": (30.0, 1e-8),  # 3.1e-10
    "sir": (300.0, 5e-11),  # 1.7e-12
    "seir": (300.0, 3e-9),  # 1.2e-10
    "glucose_insulin": (3000.0, 3e-9),  # 1.1e-10
    "pk_two_compartment": (48.0, 2e-11),  # 8.7e-13; doses at 0, 12, 24, 36 h
    "lorenz": (3.0, 1e-10),  # 3.4e-12; short: chaos amplifies differences
}
RTOL, ATOL = 1e-10, 1e-12


def _times(t_end: float) -> np.ndarray:
    return np.linspace(0.0, t_end, N_POINTS)


@functools.cache
def run(name: str):
    """(times, states, Solution) of the zoo model with its defaults over its span."""
    ts = _times(SPANS[name][0])
    sol = sb.simulate(load_zoo(name), ts, rtol=RTOL, atol=ATOL)
    return ts, np.asarray(sol.states), sol


def independent(name: str, ts, y0=None) -> np.ndarray:
    """The independent reference's states (the zoo's order and units) at ``ts``.
    Beeler-Reuter starts from ``y0`` (default: the zoo's tabulated resting state, checked
    against the reference's own steady state in test_beeler_reuter_resting_state)."""
    if name == "beeler_reuter":
        if y0 is None:
            model = load_zoo(name)
            y0 = np.asarray(model.initial_state(model.parameter_values()))
        return ref.simulate_beeler_reuter(ts, y0)
    return ref.SIMULATE[name](ts)


def crossing_times(t, x, level):
    """Times where ``x`` crosses ``level`` upwards (linear interpolation)."""
    i = np.where((x[:-1] < level) & (x[1:] >= level))[0]
    return t[i] + (level - x[i]) / (x[i + 1] - x[i]) * (t[i + 1] - t[i])


def compare_periods(name, rhs, y0, index, level):
    """The independent reference's upward crossings of ``level`` by state ``index`` (scipy
    event detection) and scalebridge's crossing times near them: scalebridge is evaluated
    at the reference's crossing times (in place of the nearest output times, so the run
    keeps its shape and compilation), and its offset from ``level`` divided by the
    reference's slope there is its time shift. Returns (reference times, scalebridge
    times)."""
    ts, _, _ = run(name)
    tc, yc = ref.upward_crossings(rhs, y0, index, level, ts[-1])
    grid = ts.copy()
    idx = np.searchsorted(ts, tc)
    grid[idx] = tc
    sol = sb.simulate(load_zoo(name), grid, rtol=RTOL, atol=ATOL)
    x = np.asarray(sol.states)[idx, index]
    slope = np.array([rhs(t, y, t)[index] for t, y in zip(tc, yc, strict=True)])
    return tc, tc - (x - level) / slope


# ----- registry ----------------------------------------------------------------------------
def test_registry_names_and_metadata():
    assert sorted(NAMES) == zoo_names() == sorted(ZOO)
    for name in NAMES:
        m = load_zoo(name)
        assert isinstance(m, sb.Model)
        assert m.source == ("zoo", name)
        assert m.name == name
        assert m.citation and any(str(y) in m.citation for y in range(1920, 2030))
        assert load_zoo(name) is not m  # a fresh model every time


def test_unknown_name_lists_known_models():
    with pytest.raises(InputError, match="no_such_model") as err:
        load_zoo("no_such_model")
    for name in NAMES:
        assert name in str(err.value)


def test_stiffness_flags():
    assert load_zoo("beeler_reuter").stiff
    for name in ("lotka_volterra", "sir", "seir", "lorenz"):
        assert not load_zoo(name).stiff


def test_x_over_expm1_is_safe_at_the_singularity():
    x = np.array([-1e-3, -1e-5, 0.0, 1e-5, 1e-3, 2.0, -2.0])
    safe = np.where(x == 0, 1.0, x)
    exact = np.where(x == 0, 1.0, safe / np.expm1(safe))
    np.testing.assert_allclose(x_over_expm1(jnp.asarray(x)), exact, rtol=1e-14)
    grad = jax.vmap(jax.grad(x_over_expm1))(jnp.asarray(x))
    assert np.all(np.isfinite(grad))
    assert float(grad[2]) == pytest.approx(-0.5, rel=1e-12)


@pytest.mark.parametrize("name", ["hodgkin_huxley", "beeler_reuter"])
def test_rates_finite_with_gradients_at_removable_singularities(name):
    model = load_zoo(name)
    p = model.parameter_values()
    y = model.initial_state(p)

    @jax.jit
    def evaluate(y):
        args = (0.0, y, p)
        return (model.vector_field(*args), jax.jacfwd(model.vector_field, argnums=1)(*args),
                jax.jacfwd(model.vector_field, argnums=2)(*args))

    # HH: alpha_m at -40 and alpha_n at -55 mV; BR: alpha_m at -47 and I_K1 at -23 mV
    for v in (-40.0, -55.0, -47.0, -23.0):
        f, jac_y, jac_p = evaluate(y.at[0].set(v))
        assert np.all(np.isfinite(f))
        assert np.all(np.isfinite(jac_y)) and np.all(np.isfinite(jac_p))
        near = evaluate(y.at[0].set(v + 1e-7))[0]  # continuous across the singular point
        np.testing.assert_allclose(f, near, rtol=1e-5, atol=1e-8)


# ----- agreement with the independent implementations ------------------------------------
def test_every_model_has_an_independent_source():
    assert sorted(ref.SOURCES) == sorted(NAMES) == sorted([*ref.SIMULATE, "beeler_reuter"])


@pytest.mark.parametrize("name", NAMES)
def test_matches_independent_implementation(name):
    """The zoo model against the NumPy version from the paper named in ref.SOURCES[name],
    over the whole run."""
    ts, ys, _ = run(name)
    expected = independent(name, ts)
    scale = np.max(np.abs(expected), axis=0)
    err = np.max(np.abs(ys - expected), axis=0) / np.where(scale > 0, scale, 1.0)
    assert np.all(err < SPANS[name][1]), (
        ref.SOURCES[name], dict(zip(load_zoo(name).state_names, err, strict=True)))


# longer runs (more beats, more cycles), same number of output times: (end, tolerance);
# the measured maximum errors in the comments
LONG = {"hodgkin_huxley": (500.0, 1e-9),  # 3.2e-11
        "beeler_reuter": (3000.0, 1e-7),  # 5.5e-9
        "aliev_panfilov": (400.0, 2e-9),  # 7.9e-11
        "yeast_glycolysis": (200.0, 5e-8),  # 2.5e-9
        "glucose_insulin": (20000.0, 3e-8),  # 1.0e-9
        "fitzhugh_nagumo": (2000.0, 1e-7)}  # 6.3e-9


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(LONG))
def test_matches_independent_implementation_long_runs(name):
    t_end, tol = LONG[name]
    ts = _times(t_end)
    ys = np.asarray(sb.simulate(load_zoo(name), ts, rtol=RTOL, atol=ATOL).states)
    expected = independent(name, ts)
    scale = np.max(np.abs(expected), axis=0)
    err = np.max(np.abs(ys - expected), axis=0) / np.where(scale > 0, scale, 1.0)
    assert np.all(err < tol), (ref.SOURCES[name], err)


@pytest.mark.slow
def test_limit_cycle_periods_converged_on_long_runs():
    """The independent periods over 200 min (yeast) and 20000 min (Sturis) equal those of
    the default runs' last cycles: the default runs sit on the limit cycle."""
    for rhs, y0, index, level, short, long, rel in (
            (ref.yeast_rhs, ref.YEAST_Y0, 5, 1.2, 30.0, 200.0, 1e-7),
            (ref.sturis_rhs, ref.STURIS_Y0, 2, 12500.0, 3000.0, 20000.0, 1e-6)):
        p_short = np.diff(ref.upward_crossings(rhs, y0, index, level, short)[0])
        p_long = np.diff(ref.upward_crossings(rhs, y0, index, level, long)[0])
        assert p_long[-1] == pytest.approx(p_short[-1], rel=rel)
        assert abs(p_long[-1] - p_long[-2]) < 1e-9 * p_long[-1]


# ----- one known property per model --------------------------------------------------------
def test_lotka_volterra_conserved_quantity():
    ts, ys, _ = run("lotka_volterra")
    alpha, beta, gamma, delta = np.asarray(load_zoo("lotka_volterra").parameter_values())
    x, y = ys.T
    v = delta * x - gamma * np.log(x) + beta * y - alpha * np.log(y)
    np.testing.assert_allclose(v, v[0], rtol=1e-9)
    assert x.max() > 2 * x.min()  # a genuine oscillation, not the fixed point


def test_fitzhugh_nagumo_limit_cycle_and_stable_rest_below_hopf():
    a, b, tau, _ = np.asarray(load_zoo("fitzhugh_nagumo").parameter_values())
    ts, ys, _ = run("fitzhugh_nagumo")
    v = ys[:, 0]
    late = ts > 100
    assert v[late].max() > 1.5 and v[late].min() < -1.5  # relaxation oscillation
    # Hopf point: the rest state is stable while |v*| > sqrt(1 - b/tau)
    v_h = -np.sqrt(1 - b / tau)
    i_hopf = -(v_h - v_h**3 / 3 - (v_h + a) / b)
    assert i_hopf == pytest.approx(0.3313, abs=1e-4)
    i_low = 0.2
    sol = sb.simulate(load_zoo("fitzhugh_nagumo"), ts, params={"I_ext": i_low},
                      rtol=RTOL, atol=ATOL)
    # the rest state: the real root of v - v^3/3 - (v + a)/b + I = 0
    roots = np.roots([-1 / 3, 0.0, 1 - 1 / b, i_low - a / b])
    v_star = roots[np.abs(roots.imag) < 1e-12].real[0]
    assert float(sol["v"][-1]) == pytest.approx(v_star, abs=1e-6)
    assert float(sol["w"][-1]) == pytest.approx((v_star + a) / b, abs=1e-6)
    # an optional stimulus input adds to the current
    paced = load_zoo("fitzhugh_nagumo").replace(inputs=(sb.PulseTrain("I_stim", 1.0, 1.0, 10.0),))
    y0, p = paced.initial_state(paced.parameter_values()), paced.parameter_values()
    dv = paced.vector_field(0.5, y0, p)[0] - paced.vector_field(5.0, y0, p)[0]
    assert float(dv) == pytest.approx(1.0)
    # the zoo's initial state: FitzHugh's resting point (z = 0) in (v, w) = (-x, y), to the
    # zoo's 4 decimals (the root computed by the independent version)
    y0 = np.asarray(load_zoo("fitzhugh_nagumo").initial_state(p))
    np.testing.assert_allclose(y0, ref.fitzhugh_rest(), atol=5e-5)


def _hh_rest_paper():
    """The resting displacement in the paper's variables: the root of eq. 26's ionic current
    with the gates at their steady state (the independent version)."""
    return brentq(lambda vp: ref.hh_ionic(vp, *ref.hh_steady_gates(vp)), -5.0, 5.0,
                  xtol=1e-12)


def test_hodgkin_huxley_spike_and_threshold():
    ts, ys, _ = run("hodgkin_huxley")
    v = ys[:, 0]
    first = ts < 50
    peak = v[first].max()
    assert 35.0 < peak < 50.0  # HH (1952): the spike overshoots to about +40 mV
    assert 6.0 < ts[first][v[first].argmax()] < 9.0  # shortly after the pulse at 5 ms
    assert v[first].min() < -72.0  # after-hyperpolarisation towards E_K = -77 mV
    # Hodgkin & Huxley (1952) chose V_l = 10.613 mV so that the ionic current vanishes at
    # rest (V = 0 in their variables); it does so to the 0.01 mV their constants carry
    rest_paper = _hh_rest_paper()
    assert abs(rest_paper) < 0.01
    rest = -rest_paper + ref.HH_REST
    assert v[ts.searchsorted(50.0)] == pytest.approx(rest, abs=0.05)  # recovered
    assert v[ts > 55].max() > 30.0  # the pulse at 55 ms fires again
    # a 1 ms pulse of 5 uA/cm^2 stays below threshold
    weak = sb.simulate(hodgkin_huxley(amplitude=5.0), ts, rtol=1e-8, atol=1e-10)
    assert float(jnp.max(weak["V"])) < -55.0


def test_aliev_panfilov_upstroke_recovery_and_threshold():
    ts, ys, sol = run("aliev_panfilov")
    u, v = ys.T
    assert u.max() == pytest.approx(1.0, abs=0.02)  # upstroke to the cubic's root u = 1
    assert ts[u.argmax()] < 5.0  # within a few time units of the pulse at t = 1
    above = ts[u > 0.1]
    apd = (above[-1] - above[0]) * 12.9  # ms
    assert 250.0 < apd < 400.0  # a cardiac action potential of a few hundred ms
    assert abs(u[-1]) < 1e-6 and 0.0 < v[-1] < 0.05  # repolarised, recovery variable decaying
    np.testing.assert_allclose(sol["V"], 100 * u - 80)
    weak = sb.simulate(aliev_panfilov(amplitude=0.1), ts, rtol=1e-8, atol=1e-10)
    assert float(jnp.max(weak["u"])) < 0.15  # below the threshold a = 0.15: no AP


def test_beeler_reuter_resting_state():
    """The zoo's tabulated initial state is the steady state of the paper's equations
    (computed by the independent version), to the zoo's rounding: V to 1e-4 mV, the
    others to 6 significant digits."""
    model = load_zoo("beeler_reuter")
    y0 = np.asarray(model.initial_state(model.parameter_values()))
    rest = ref.br_rest()
    assert y0[0] == pytest.approx(rest[0], abs=1e-4)
    np.testing.assert_allclose(y0[1:], rest[1:], rtol=1e-5)
    # and the zoo's right-hand side vanishes there (up to that rounding)
    dy = np.asarray(model.vector_field(0.0, jnp.asarray(rest), model.parameter_values()))
    assert np.max(np.abs(dy)) < 1e-9


def test_beeler_reuter_action_potential():
    # loose physiological ranges (not published values; the shape itself is held by
    # test_matches_independent_implementation)
    ts, ys, _ = run("beeler_reuter")
    v = ys[:, 0]
    assert 20.0 < v.max() < 40.0  # overshoot
    up = ts[np.argmax(v > -40.0)]
    assert 10.0 < up < 13.0  # the pulse at 10 ms triggers the upstroke
    rest, peak = v[0], v.max()
    i = v.argmax()
    apd90 = ts[i:][np.argmax(v[i:] < peak - 0.9 * (peak - rest))] - up
    assert 250.0 < apd90 < 300.0
    assert v[-1] == pytest.approx(rest, abs=1.0)  # repolarised by 600 ms


def test_yeast_glycolysis_period():
    """The period of the glycolytic oscillation (ATP = S6 crossing 1.2 mM) from the
    independent version of Ruoff et al. (2003), with scalebridge's crossings beside it."""
    tc, t_sb = compare_periods("yeast_glycolysis", ref.yeast_rhs, ref.YEAST_Y0, 5, 1.2)
    p_ref, p_sb = np.diff(tc), np.diff(t_sb)
    assert p_ref.size > 20
    assert abs(p_ref[-1] - p_ref[-2]) < 1e-7 * p_ref[-1]  # converged to the limit cycle
    assert 1.0 < p_ref[-1] < 1.3  # min; about 70 s
    np.testing.assert_allclose(p_sb, p_ref, rtol=0, atol=3e-11)  # min; observed 1e-12
    # the sampled run's linearly interpolated crossings, every 0.015 min
    ts, ys, _ = run("yeast_glycolysis")
    periods = np.diff(crossing_times(ts, ys[:, 5], 1.2))
    assert periods[-1] == pytest.approx(p_ref[-1], rel=1e-4)


def test_sir_conservation_and_final_size():
    ts, ys, _ = run("sir")
    np.testing.assert_allclose(ys.sum(axis=1), 1.0, atol=1e-12)
    beta, gamma = np.asarray(load_zoo("sir").parameter_values())
    r0, s0 = beta / gamma, ys[0, 0]
    s_inf = brentq(lambda s: s - s0 * np.exp(-r0 * (1 - s)), 1e-9, 0.5, xtol=1e-15)
    assert ys[-1, 0] == pytest.approx(s_inf, abs=1e-7)
    # peak prevalence where S = 1/R0: I_max = 1 - (1 + ln(R0 S0)) / R0 when S0 + I0 = 1
    i_max = 1 - (1 + np.log(r0 * s0)) / r0
    assert ys[:, 1].max() == pytest.approx(i_max, abs=1e-5)


def test_seir_conservation_and_growth_rate():
    ts, ys, _ = run("seir")
    np.testing.assert_allclose(ys.sum(axis=1), 1.0, atol=1e-12)
    beta, sigma, gamma = np.asarray(load_zoo("seir").parameter_values())
    r = 0.5 * (-(sigma + gamma) + np.sqrt((sigma - gamma) ** 2 + 4 * sigma * beta))
    sol = sb.simulate(load_zoo("seir"), ts, y0=[1 - 1e-10, 0.0, 1e-10, 0.0],
                      rtol=RTOL, atol=1e-20)
    i = np.asarray(sol["I"])
    a, b = ts.searchsorted(40.0), ts.searchsorted(70.0)
    slope = np.log(i[b] / i[a]) / (ts[b] - ts[a])
    assert slope == pytest.approx(r, rel=1e-4)


def test_glucose_insulin_ultradian_period():
    """The ultradian period (G crossing 12500 mg) from the independent version of Sturis
    et al. (1991), with scalebridge's crossings beside it."""
    tc, t_sb = compare_periods("glucose_insulin", ref.sturis_rhs, ref.STURIS_Y0, 2, 12500.0)
    p_ref, p_sb = np.diff(tc), np.diff(t_sb)
    assert p_ref.size > 20
    # the approach to the limit cycle is slow: successive periods still differ by ~2e-5 min
    assert abs(p_ref[-1] - p_ref[-2]) < 1e-6 * p_ref[-1]
    # Sturis et al. (1991): ultradian oscillations with periods of about 100-150 min
    assert np.all((100.0 < p_ref) & (p_ref < 150.0))
    np.testing.assert_allclose(p_sb, p_ref, rtol=0, atol=1e-8)  # min; observed 5e-10
    ts, ys, _ = run("glucose_insulin")
    periods = np.diff(crossing_times(ts, ys[:, 2], 12500.0))
    assert periods[-1] == pytest.approx(p_ref[-1], rel=1e-4)


def test_pk_mass_balance_oral_schedule():
    ts, ys, sol = run("pk_two_compartment")
    model = load_zoo("pk_two_compartment")
    dose_times = np.array(model.events[0].times)
    np.testing.assert_allclose(dose_times, [0.0, 12.0, 24.0, 36.0])
    given = 100.0 * (ts[:, None] >= dose_times[None, :]).sum(axis=1)
    np.testing.assert_allclose(ys.sum(axis=1), given, atol=1e-8)
    assert np.all(ys >= -1e-10)
    np.testing.assert_allclose(sol["C"], ys[:, 1] / 20.0)


def test_pk_iv_bolus_bi_exponential():
    model = pk_two_compartment(dose=100.0, n_doses=1, route="iv")
    ka, cl, v1, q, v2 = np.asarray(model.parameter_values())
    k10, k12, k21 = cl / v1, q / v1, q / v2
    s = k10 + k12 + k21
    alpha = 0.5 * (s + np.sqrt(s**2 - 4 * k10 * k21))
    beta = 0.5 * (s - np.sqrt(s**2 - 4 * k10 * k21))
    ts = _times(48.0)
    c0 = 100.0 / v1
    exact = c0 * ((alpha - k21) * np.exp(-alpha * ts) + (k21 - beta) * np.exp(-beta * ts)) / (
        alpha - beta)
    sol = sb.simulate(model, ts, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(sol["C"], exact, rtol=1e-8, atol=1e-12)
    assert np.all(np.asarray(sol["depot"]) == 0.0)
    with pytest.raises(InputError, match="route"):
        pk_two_compartment(route="sc")


def test_lorenz_fixed_points_and_their_eigenvalues():
    model = load_zoo("lorenz")
    p = model.parameter_values()
    sigma, rho, beta = np.asarray(p)
    c = np.sqrt(beta * (rho - 1))
    jac = jax.jacfwd(model.vector_field, argnums=1)
    for sign in (1.0, -1.0):
        fp = jnp.array([sign * c, sign * c, rho - 1])
        np.testing.assert_allclose(model.vector_field(0.0, fp, p), 0.0, atol=1e-12)
        eig = np.sort_complex(np.linalg.eigvals(np.asarray(jac(0.0, fp, p))))
        # at rho = 28 (e.g. Strogatz, Nonlinear Dynamics and Chaos, sec. 9.2)
        np.testing.assert_allclose(eig, [-13.854578, 0.093956 - 10.194505j,
                                         0.093956 + 10.194505j], atol=1e-5)
    # the roots of the characteristic equation of Lorenz (1963), independently
    np.testing.assert_allclose(ref.lorenz_fixed_point_eigenvalues(), eig, atol=1e-6)
    eig0 = np.sort(np.linalg.eigvals(np.asarray(jac(0.0, jnp.zeros(3), p))).real)
    assert eig0[1] == pytest.approx(-beta)  # the origin: a saddle, -beta along z
    ts, ys, _ = run("lorenz")
    assert np.all(np.isfinite(ys)) and ys[:, 2].max() > 20.0  # leaves the origin's region
