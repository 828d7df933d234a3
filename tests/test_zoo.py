"""The model zoo: registry, agreement with scipy's Radau, and one known property per model.

Each model is simulated once with scalebridge (module cache) and compared with a tight
``scipy.integrate.solve_ivp(method="Radau")`` solution of the same right-hand side,
integrated piecewise between input discontinuities (pulse edges) and dosing events.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.optimize import brentq

import scalebridge as sb
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

# name: (end of the scalebridge run, end of the Radau comparison in the default test run,
#        tolerance of |scalebridge - Radau| relative to each state's maximum |value|;
#        the observed errors are 30-100 times smaller).
# Radau at rtol 1e-11 costs ~0.5 ms a step in Python, so the default comparison covers a
# short span with the interesting part (upstroke, peak, a dose); -m slow covers it all.
SPANS = {
    "lotka_volterra": (30.0, 5.0, 1e-9),
    "fitzhugh_nagumo": (400.0, 20.0, 3e-8),
    "hodgkin_huxley": (60.0, 10.0, 1e-9),  # pulses at 5 and 55 ms
    "aliev_panfilov": (100.0, 10.0, 1e-9),  # pulse at t = 1
    "beeler_reuter": (600.0, 20.0, 1e-7),  # pulse at 10 ms
    "yeast_glycolysis": (30.0, 0.6, 1e-8),
    "sir": (300.0, 60.0, 1e-10),
    "seir": (300.0, 60.0, 1e-10),
    "glucose_insulin": (3000.0, 150.0, 3e-9),
    "pk_two_compartment": (48.0, 14.0, 1e-10),  # doses at 0, 12, 24, 36 h
    "lorenz": (3.0, 1.0, 1e-9),  # short: chaos amplifies differences
}
RTOL, ATOL = 1e-10, 1e-12


def _times(t_end: float) -> np.ndarray:
    return np.linspace(0.0, t_end, N_POINTS)


def radau_reference(model: sb.Model, times, params=None, y0=None) -> np.ndarray:
    """States at ``times`` by scipy's Radau, integrated piecewise between input jumps and
    event times; inputs are held at their value inside each piece, events fire at its
    start (outputs at an event time report the post-event state, as scalebridge does)."""
    times = np.asarray(times, float)
    t0, t1 = 0.0, float(times[-1])
    p = model.param_array(params)
    y = np.asarray(model.initial_state(p) if y0 is None else y0, float)
    event_ts = {t for e in model.events for t in e.times if t0 <= t < t1}
    cuts = np.unique(np.concatenate([[t0, t1], model.jump_times(t0, t1), sorted(event_ts)]))
    f = jax.jit(lambda t, y, p, u: model.rhs(t, y, p, u))
    jac = jax.jit(jax.jacfwd(lambda t, y, p, u: model.rhs(t, y, p, u), argnums=1))
    out = np.full((times.size, y.size), np.nan)
    for k, (a, b) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
        for e in model.events:  # in model order, as scalebridge applies them
            if a in e.times:
                yj, p = e.affect(a, jnp.asarray(y), p)
                y = np.asarray(yj)
        u = model.input_values(0.5 * (a + b), p)  # constant inside the piece

        def fun(t, y, p=p, u=u):
            return np.asarray(f(t, y, p, u))

        def fjac(t, y, p=p, u=u):
            return np.asarray(jac(t, y, p, u))

        last = k == cuts.size - 2
        sel = (times >= a) & ((times <= b) if last else (times < b))
        t_eval = times[sel] if last else np.append(times[sel], b)
        sol = solve_ivp(fun, (a, b), y, method="Radau", t_eval=t_eval, rtol=1e-11,
                        atol=1e-13, jac=fjac)
        assert sol.success, sol.message
        out[sel] = sol.y.T[: int(sel.sum())]
        y = sol.y[:, -1]
    return out


@functools.cache
def run(name: str):
    """(times, states, Solution) of the zoo model with its defaults over its span."""
    ts = _times(SPANS[name][0])
    sol = sb.simulate(load_zoo(name), ts, rtol=RTOL, atol=ATOL)
    return ts, np.asarray(sol.states), sol


def crossing_times(t, x, level):
    """Times where ``x`` crosses ``level`` upwards (linear interpolation)."""
    i = np.where((x[:-1] < level) & (x[1:] >= level))[0]
    return t[i] + (level - x[i]) / (x[i + 1] - x[i]) * (t[i + 1] - t[i])


def reference_period(model, index, level, t_end):
    """Periods between upward crossings of ``level`` by state ``index``, located by scipy
    Radau (rtol 1e-11) event detection."""
    p = model.param_array()
    f = jax.jit(lambda t, y: model.vector_field(t, y, p))
    jac = jax.jit(jax.jacfwd(lambda t, y: model.vector_field(t, y, p), argnums=1))

    def event(t, y):
        return y[index] - level

    event.direction = 1.0
    sol = solve_ivp(lambda t, y: np.asarray(f(t, y)), (0.0, t_end),
                    np.asarray(model.initial_state(p)), method="Radau", rtol=1e-11,
                    atol=1e-13, jac=lambda t, y: np.asarray(jac(t, y)), events=event)
    return np.diff(sol.t_events[0])


# Limit-cycle periods from reference_period (converged to 1e-8 over 40 min and 3000 min;
# recomputed by the slow test below).
YEAST_PERIOD = 1.168123  # min; S6 (ATP) crossing 1.2 mM
STURIS_PERIOD = 109.6647  # min; G crossing 12500 mg


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


# ----- agreement with scipy ----------------------------------------------------------------
def _compare(name: str, t_end: float):
    ts, ys, _ = run(name)
    k = int(np.searchsorted(ts, t_end, side="right"))
    ref = radau_reference(load_zoo(name), ts[:k])
    scale = np.max(np.abs(ref), axis=0)
    err = np.max(np.abs(ys[:k] - ref), axis=0) / np.where(scale > 0, scale, 1.0)
    assert np.all(err < SPANS[name][2]), dict(zip(load_zoo(name).state_names, err, strict=True))


@pytest.mark.parametrize("name", NAMES)
def test_matches_scipy_radau(name):
    _compare(name, SPANS[name][1])


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_matches_scipy_radau_full_span(name):
    _compare(name, SPANS[name][0])


@pytest.mark.slow
def test_reference_periods_from_scipy():
    yeast = reference_period(load_zoo("yeast_glycolysis"), 5, 1.2, 40.0)
    assert yeast[-1] == pytest.approx(YEAST_PERIOD, rel=1e-6)
    sturis = reference_period(load_zoo("glucose_insulin"), 2, 12500.0, 3000.0)
    assert sturis[-1] == pytest.approx(STURIS_PERIOD, rel=1e-6)


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


def _hh_rest():
    """The HH resting potential: where the steady-state ionic current vanishes (numpy)."""
    def am(v): return 0.1 * (v + 40) / (1 - np.exp(-(v + 40) / 10))
    def bm(v): return 4 * np.exp(-(v + 65) / 18)
    def ah(v): return 0.07 * np.exp(-(v + 65) / 20)
    def bh(v): return 1 / (1 + np.exp(-(v + 35) / 10))
    def an(v): return 0.01 * (v + 55) / (1 - np.exp(-(v + 55) / 10))
    def bn(v): return 0.125 * np.exp(-(v + 65) / 80)

    def current(v):
        m, h, n = am(v) / (am(v) + bm(v)), ah(v) / (ah(v) + bh(v)), an(v) / (an(v) + bn(v))
        return 120 * m**3 * h * (v - 50) + 36 * n**4 * (v + 77) + 0.3 * (v + 54.387)

    return brentq(current, -70, -60, xtol=1e-12)


def test_hodgkin_huxley_spike_and_threshold():
    ts, ys, _ = run("hodgkin_huxley")
    v = ys[:, 0]
    first = ts < 50
    peak = v[first].max()
    assert 35.0 < peak < 50.0  # HH (1952): the spike overshoots to about +40 mV
    assert 6.0 < ts[first][v[first].argmax()] < 9.0  # shortly after the pulse at 5 ms
    assert v[first].min() < -72.0  # after-hyperpolarisation towards E_K = -77 mV
    rest = _hh_rest()
    assert rest == pytest.approx(-65.0, abs=0.01)
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


def test_beeler_reuter_action_potential():
    ts, ys, _ = run("beeler_reuter")
    v = ys[:, 0]
    assert v[0] == pytest.approx(-84.57, abs=0.01)  # Beeler & Reuter: rest about -84 mV
    assert 20.0 < v.max() < 40.0  # overshoot
    up = ts[np.argmax(v > -40.0)]
    assert 10.0 < up < 13.0  # the pulse at 10 ms triggers the upstroke
    rest, peak = v[0], v.max()
    i = v.argmax()
    apd90 = ts[i:][np.argmax(v[i:] < peak - 0.9 * (peak - rest))] - up
    assert 250.0 < apd90 < 300.0
    assert v[-1] == pytest.approx(rest, abs=1.0)  # repolarised by 600 ms


def test_yeast_glycolysis_period():
    ts, ys, _ = run("yeast_glycolysis")
    periods = np.diff(crossing_times(ts, ys[:, 5], 1.2))  # S6 = ATP
    assert periods.size > 20
    assert periods[-1] == pytest.approx(YEAST_PERIOD, rel=1e-4)  # sampled every 0.015 min


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
    ts, ys, _ = run("glucose_insulin")
    periods = np.diff(crossing_times(ts, ys[:, 2], 12500.0))  # G
    assert np.all((100.0 < periods) & (periods < 150.0))  # Sturis et al.: 100-150 min
    assert periods[-1] == pytest.approx(STURIS_PERIOD, rel=1e-4)


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
    eig0 = np.sort(np.linalg.eigvals(np.asarray(jac(0.0, jnp.zeros(3), p))).real)
    assert eig0[1] == pytest.approx(-beta)  # the origin: a saddle, -beta along z
    ts, ys, _ = run("lorenz")
    assert np.all(np.isfinite(ys)) and ys[:, 2].max() > 20.0  # leaves the origin's region
