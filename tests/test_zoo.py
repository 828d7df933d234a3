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
from scalebridge.model.zoo.beeler_reuter import beeler_reuter
from scalebridge.model.zoo.hodgkin_huxley import hodgkin_huxley
from scalebridge.model.zoo.pk_two_compartment import pk_two_compartment

NAMES = ["lotka_volterra", "fitzhugh_nagumo", "hodgkin_huxley", "aliev_panfilov",
         "beeler_reuter", "yeast_glycolysis", "sir", "seir", "glucose_insulin",
         "pk_two_compartment", "lorenz"]

N_POINTS = 1001  # every run of a model uses this many output times: one compilation each

# (end time, tolerance of |scalebridge - Radau| relative to each state's max |value|)
SPANS = {
    "lotka_volterra": (30.0, 1e-7),
    "fitzhugh_nagumo": (300.0, 1e-6),
    "hodgkin_huxley": (60.0, 1e-6),  # two pulses, at 5 and 55 ms
    "aliev_panfilov": (100.0, 1e-6),
    "beeler_reuter": (600.0, 1e-5),
    "yeast_glycolysis": (10.0, 1e-7),
    "sir": (300.0, 1e-7),
    "seir": (300.0, 1e-7),
    "glucose_insulin": (1500.0, 1e-7),
    "pk_two_compartment": (48.0, 1e-8),
    "lorenz": (3.0, 1e-6),  # short: chaos amplifies differences
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
        last = k == cuts.size - 2
        sel = (times >= a) & ((times <= b) if last else (times < b))
        t_eval = times[sel] if last else np.append(times[sel], b)
        sol = solve_ivp(lambda t, y: np.asarray(f(t, y, p, u)), (a, b), y, method="Radau",
                        t_eval=t_eval, rtol=1e-11, atol=1e-13,
                        jac=lambda t, y: np.asarray(jac(t, y, p, u)))
        assert sol.success, sol.message
        out[sel] = sol.y.T[: int(sel.sum())]
        y = sol.y[:, -1]
    return out


@functools.cache
def run(name: str):
    """(times, scalebridge states) of the zoo model with its defaults over its span."""
    ts = _times(SPANS[name][0])
    sol = sb.simulate(load_zoo(name), ts, rtol=RTOL, atol=ATOL)
    return ts, np.asarray(sol.states), sol


def crossing_times(t, x, level):
    """Times where ``x`` crosses ``level`` upwards (linear interpolation)."""
    i = np.where((x[:-1] < level) & (x[1:] >= level))[0]
    return t[i] + (level - x[i]) / (x[i + 1] - x[i]) * (t[i + 1] - t[i])


def reference_period(model, y0, index, level, t_span):
    """Oscillation period from scipy Radau event times (upward crossings of ``level``)."""
    p = model.param_array()
    f = jax.jit(lambda t, y: model.vector_field(t, y, p))
    jac = jax.jit(jax.jacfwd(lambda t, y: model.vector_field(t, y, p), argnums=1))

    def event(t, y):
        return y[index] - level

    event.direction = 1.0
    sol = solve_ivp(lambda t, y: np.asarray(f(t, y)), t_span, y0, method="Radau",
                    rtol=1e-11, atol=1e-13, jac=lambda t, y: np.asarray(jac(t, y)),
                    events=event)
    return np.diff(sol.t_events[0])


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
    x = jnp.array([-1e-3, -1e-5, 0.0, 1e-5, 1e-3, 2.0, -2.0])
    exact = np.where(np.asarray(x) == 0, 1.0, np.asarray(x) / np.expm1(np.asarray(x)))
    np.testing.assert_allclose(x_over_expm1(x), exact, rtol=1e-14)
    grad = jax.vmap(jax.grad(x_over_expm1))(x)
    assert np.all(np.isfinite(grad))
    assert float(grad[2]) == pytest.approx(-0.5, rel=1e-12)


@pytest.mark.parametrize("name", ["hodgkin_huxley", "beeler_reuter"])
def test_rates_finite_with_gradients_at_removable_singularities(name):
    model = load_zoo(name)
    p = model.parameter_values()
    y = model.initial_state(p)
    # HH: alpha_m at -40 and alpha_n at -55 mV; BR: alpha_m at -47 and I_K1 at -23 mV
    for v in (-40.0, -55.0, -47.0, -23.0):
        yv = y.at[0].set(v)
        f = model.vector_field(0.0, yv, p)
        jy = jax.jacfwd(model.vector_field, argnums=1)(0.0, yv, p)
        jp = jax.jacfwd(model.vector_field, argnums=2)(0.0, yv, p)
        assert np.all(np.isfinite(f)) and np.all(np.isfinite(jy)) and np.all(np.isfinite(jp))
        # continuity across the singular voltage
        near = model.vector_field(0.0, y.at[0].set(v + 1e-7), p)
        np.testing.assert_allclose(f, near, rtol=1e-5, atol=1e-8)


# ----- agreement with scipy ----------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_matches_scipy_radau(name):
    ts, ys, _ = run(name)
    ref = radau_reference(load_zoo(name), ts)
    scale = np.max(np.abs(ref), axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    err = np.max(np.abs(ys - ref), axis=0) / scale
    assert np.all(err < SPANS[name][1]), dict(zip(load_zoo(name).state_names, err, strict=True))


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


def _hh_rest():
    """The HH resting potential: where the steady-state ionic current vanishes."""
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
    assert 35.0 < peak < 50.0  # HH (1952): a spike overshoots to about +40 mV
    assert 6.0 < ts[first][v[first].argmax()] < 9.0  # shortly after the pulse at 5 ms
    assert v[first].min() < -72.0  # after-hyperpolarisation towards E_K = -77 mV
    assert _hh_rest() == pytest.approx(-65.0, abs=0.01)
    assert v[ts.searchsorted(50.0)] == pytest.approx(_hh_rest(), abs=0.05)
    # a 1 ms pulse of 5 uA/cm^2 stays below threshold (HH threshold ~ 7 uA/cm^2 for 1 ms)
    weak = sb.simulate(hodgkin_huxley(amplitude=5.0), ts, rtol=1e-8, atol=1e-10)
    assert float(jnp.max(weak["V"])) < -55.0


def test_aliev_panfilov_upstroke_recovery_and_threshold():
    ts, ys, sol = run("aliev_panfilov")
    u = ys[:, 0]
    assert u.max() == pytest.approx(1.0, abs=0.02)  # upstroke to the cubic's root u = 1
    assert ts[u.argmax()] < 5.0  # within a few time units of the pulse at t = 1
    above = ts[u > 0.1]
    apd = (above[-1] - above[0]) * 12.9  # ms
    assert 250.0 < apd < 400.0  # a cardiac action potential of a few hundred ms
    assert np.all(np.abs(ys[-1]) < 1e-3)  # back to rest
    np.testing.assert_allclose(sol["V"], 100 * u - 80)
    weak = sb.simulate(aliev_panfilov(amplitude=0.1), ts, rtol=1e-8, atol=1e-10)
    assert float(jnp.max(weak["u"])) < 0.15  # below the threshold a = 0.15: no AP


def test_beeler_reuter_action_potential():
    ts, ys, _ = run("beeler_reuter")
    v = ys[:, 0]
    assert v[0] == pytest.approx(-84.57, abs=0.01)  # Beeler & Reuter: rest about -84 mV
    assert 20.0 < v.max() < 40.0  # overshoot
    up = ts[np.argmax(v > -40.0)]
    rest, peak = v[0], v.max()
    i = v.argmax()
    apd90 = ts[i:][np.argmax(v[i:] < peak - 0.9 * (peak - rest))] - up
    assert 250.0 < apd90 < 300.0
    assert v[-1] == pytest.approx(rest, abs=1.0)  # repolarised by 600 ms


def test_yeast_glycolysis_period_matches_scipy():
    ts, ys, _ = run("yeast_glycolysis")
    s6 = ys[:, 5]  # ATP
    level = 1.2
    t_c = crossing_times(ts, s6, level)
    ref = reference_period(load_zoo("yeast_glycolysis"), ys[0], 5, level, (0.0, 10.0))
    assert t_c.size == ref.size + 1 >= 7
    np.testing.assert_allclose(np.diff(t_c), ref, rtol=2e-3)  # grid interpolation error
    assert ref[-1] == pytest.approx(1.168, abs=0.005)  # minutes (limit cycle of Ruoff 2003)


def test_sir_conservation_and_final_size():
    ts, ys, _ = run("sir")
    np.testing.assert_allclose(ys.sum(axis=1), 1.0, atol=1e-12)
    beta, gamma = np.asarray(load_zoo("sir").parameter_values())
    r0, s0 = beta / gamma, ys[0, 0]
    s_inf = brentq(lambda s: s - s0 * np.exp(-r0 * (1 - s)), 1e-9, 0.5, xtol=1e-15)
    assert ys[-1, 0] == pytest.approx(s_inf, abs=1e-7)
    # peak prevalence where S = 1/R0: I_max = 1 - 1/R0 (1 + ln(R0 S0)) with I0 + S0 = 1
    i_max = 1 - (1 + np.log(r0 * s0)) / r0
    assert ys[:, 1].max() == pytest.approx(i_max, abs=2e-4)  # grid of 0.3 days


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
    g = ys[:, 2]
    late = ts > 500
    level = 0.5 * (g[late].max() + g[late].min())
    periods = np.diff(crossing_times(ts[late], g[late], level))
    assert np.all((100.0 < periods) & (periods < 150.0))  # Sturis et al.: 100-150 min
    ref = reference_period(load_zoo("glucose_insulin"), ys[0], 2, level, (0.0, 1500.0))
    np.testing.assert_allclose(periods, ref[-periods.size:], rtol=1e-3)


def test_pk_mass_balance_oral_schedule():
    ts, ys, sol = run("pk_two_compartment")
    model = load_zoo("pk_two_compartment")
    dose_times = np.array(model.events[0].times)
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
    assert float(sol["depot"][-1]) == 0.0


def test_lorenz_fixed_points_and_their_eigenvalues():
    model = load_zoo("lorenz")
    p = model.parameter_values()
    sigma, rho, beta = np.asarray(p)
    c = np.sqrt(beta * (rho - 1))
    for sign in (1.0, -1.0):
        fp = jnp.array([sign * c, sign * c, rho - 1])
        np.testing.assert_allclose(model.vector_field(0.0, fp, p), 0.0, atol=1e-12)
        jac = jax.jacfwd(model.vector_field, argnums=1)(0.0, fp, p)
        eig = np.sort_complex(np.linalg.eigvals(np.asarray(jac)))
        # Lorenz (1963) / Strogatz: -13.8546 and 0.0940 +- 10.1945 i at rho = 28
        np.testing.assert_allclose(eig, [-13.854578, 0.093956 - 10.194505j,
                                         0.093956 + 10.194505j], atol=1e-5)
    # the origin is a saddle with eigenvalue -beta along z
    jac0 = jax.jacfwd(model.vector_field, argnums=1)(0.0, jnp.zeros(3), p)
    assert np.sort(np.linalg.eigvals(np.asarray(jac0)).real)[1] == pytest.approx(-beta)
