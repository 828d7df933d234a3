"""simulate(): accuracy against exact solutions, events, inputs, gradients, compilation."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import scalebridge as sb
from scalebridge.errors import InputError, ModelError, SimulationError

T = np.linspace(0.0, 4.0, 9)


def test_exact_decay_default_and_stiff_solver(decay):
    exact = 2.0 * np.exp(-0.5 * T)
    for solver in (None, diffrax.Kvaerno5()):
        sol = sb.simulate(decay, T, solver=solver, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(sol["y"], exact, rtol=1e-8)
        np.testing.assert_allclose(sol["twice"], 2 * exact, rtol=1e-8)


def test_params_dict_array_and_y0(decay):
    a = sb.simulate(decay, T, params={"k": 1.0})
    b = sb.simulate(decay, T, params=[1.0, 2.0])
    np.testing.assert_allclose(a.states, b.states)
    c = sb.simulate(decay, T, y0={"y": 3.0})
    np.testing.assert_allclose(c["y"], 3.0 * np.exp(-0.5 * T), rtol=1e-7)


def test_output_times_not_starting_at_t0(oscillator):
    ts = np.array([0.5, 1.0, 3.0])
    sol = sb.simulate(oscillator, ts, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sol["x"], np.cos(2 * ts), atol=1e-8)
    sol = sb.simulate(oscillator, ts, t0=0.5, y0=[1.0, 0.0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sol["x"], np.cos(2 * (ts - 0.5)), atol=1e-8)


def test_to_pandas_and_xarray(oscillator):
    sol = sb.simulate(oscillator, T)
    df = sol.to_pandas()
    assert list(df.columns) == ["x", "v"]
    assert df.index.name == "time"
    np.testing.assert_allclose(df.index.values, T)
    np.testing.assert_allclose(df["v"].values, -2 * np.sin(2 * T), atol=1e-6)
    ds = sol.to_xarray()
    np.testing.assert_allclose(ds["x"].values, df["x"].values)


def test_bolus_events_add_dose_and_report_post_event_value(decay):
    dosed = decay.replace(events=(sb.bolus(0, 1.0, [1.0, 2.0]),))
    ts = np.array([0.5, 1.0, 1.5, 2.0, 3.0])
    sol = sb.simulate(dosed, ts, rtol=1e-10, atol=1e-12)

    def exact(t):
        y = 2.0 * np.exp(-0.5 * t)
        y += (t >= 1.0) * np.exp(-0.5 * (t - 1.0))
        y += (t >= 2.0) * np.exp(-0.5 * (t - 2.0))
        return y

    np.testing.assert_allclose(sol["y"], exact(ts), rtol=1e-8)
    # an event at the last output time is reported too (five times, as above: the compiled
    # simulation is reused)
    last = np.array([0.5, 1.0, 1.5, 1.75, 2.0])
    np.testing.assert_allclose(sb.simulate(dosed, last)["y"], exact(last), rtol=1e-7)


def test_parameter_change_event(decay):
    step = decay.replace(events=(sb.set_parameter(0, 2.0, 1.0),))
    ts = np.array([1.0, 2.0])
    sol = sb.simulate(step, ts, rtol=1e-10, atol=1e-12)
    y1 = 2.0 * np.exp(-0.5)
    np.testing.assert_allclose(sol["y"], [y1, y1 * np.exp(-2.0)], rtol=1e-8)


def test_event_at_t0_acts_on_initial_state(decay):
    dosed = decay.replace(events=(sb.bolus(0, 1.0, [0.0]),))
    sol = sb.simulate(dosed, np.array([0.0, 1.0]), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sol["y"], [3.0, 3.0 * np.exp(-0.5)], rtol=1e-8)


def test_short_pulse_input_is_not_stepped_over():
    # dy/dt = u(t): a 0.01-wide pulse of height 100 in a 100-long span adds exactly 1
    pulse = sb.PulseTrain("I", amplitude=100.0, duration=0.01, period=1000.0, start=50.0)
    m = sb.Model(states=["y"], parameters={}, rhs=lambda t, y, p, u: u[:1], initial=[0.0],
                 inputs=[pulse], stiff=False)
    sol = sb.simulate(m, np.array([49.0, 100.0]))
    np.testing.assert_allclose(sol["y"], [0.0, 1.0], atol=1e-8)


def test_interpolated_input_previous():
    rate = sb.Interpolated("r", times=[0.0, 1.0, 2.0], values=[1.0, 3.0, 0.0], kind="previous")
    m = sb.Model(states=["y"], parameters={}, rhs=lambda t, y, p, u: u[:1], initial=[0.0],
                 inputs=[rate], stiff=False)
    sol = sb.simulate(m, np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(sol["y"], [1.0, 4.0, 4.0], atol=1e-8)


# a piecewise-linear signal with a negative stretch and a flat end; 0 and 7 lie outside it
INTERP_TIMES, INTERP_VALUES = [0.5, 1.0, 2.5, 4.0, 5.0], [1.0, 3.0, -2.0, 0.5, 0.5]


def test_interpolated_input_linear_is_numpy_interp():
    """The default kind is linear interpolation, held constant outside the samples: the
    reference is numpy.interp at the samples, between them and beyond both ends."""
    u = sb.Interpolated("u", times=INTERP_TIMES, values=INTERP_VALUES)
    assert u.kind == "linear"
    assert u.jump_times(0.0, 10.0).size == 0  # continuous: no forced solver stops
    t = np.concatenate([np.linspace(-1.0, 7.0, 161), INTERP_TIMES])
    got = np.array([float(u(tt, None)) for tt in t])
    np.testing.assert_allclose(got, np.interp(t, INTERP_TIMES, INTERP_VALUES), rtol=0,
                               atol=1e-15)


def test_model_driven_by_linear_interpolation_matches_exact_integral():
    """dy/dt = u(t), y(0) = 0 with piecewise-linear u: y is piecewise quadratic, exactly the
    trapezoid sum of u over the knots up to t (plus the partial segment to t)."""
    u = sb.Interpolated("u", times=INTERP_TIMES, values=INTERP_VALUES)
    m = sb.Model(states=["y"], parameters={}, rhs=lambda t, y, p, u: u[:1], initial=[0.0],
                 inputs=[u], stiff=False)
    times = np.linspace(0.0, 7.0, 29)
    knots_all = np.asarray(INTERP_TIMES)

    def exact(t):
        knots = np.concatenate([[0.0], knots_all[knots_all < t], [t]])
        vals = np.interp(knots, INTERP_TIMES, INTERP_VALUES)
        return np.sum(np.diff(knots) * (vals[1:] + vals[:-1]) / 2)

    sol = sb.simulate(m, times, rtol=1e-8, atol=1e-10)
    # Tsit5 (order 5) integrates a quadratic without truncation error: measured 2e-15
    np.testing.assert_allclose(sol["y"], [exact(t) for t in times], rtol=0, atol=1e-12)


def test_gradient_matches_finite_differences(oscillator):
    def out(w):
        sol = sb.simulate(oscillator, T, params=jnp.stack([w]), rtol=1e-11, atol=1e-12)
        return jnp.sum(sol["x"] ** 2)

    w0 = 2.0
    g = jax.grad(out)(w0)
    h = 1e-5
    fd = (out(w0 + h) - out(w0 - h)) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-5)
    exact = np.sum(-2 * np.cos(w0 * T) * np.sin(w0 * T) * T)
    np.testing.assert_allclose(g, exact, rtol=1e-6)


def test_forward_mode_jacobian(decay):
    def out(p):
        return sb.simulate(decay, T, params=p, sensitivities="forward",
                           rtol=1e-11, atol=1e-12)["y"]

    jac = jax.jacfwd(out)(jnp.array([0.5, 2.0]))
    np.testing.assert_allclose(jac[:, 0], -T * 2.0 * np.exp(-0.5 * T), atol=1e-7)
    np.testing.assert_allclose(jac[:, 1], np.exp(-0.5 * T), atol=1e-8)


def test_second_call_does_not_recompile(decay):
    traces = []

    def rhs(t, y, p, u):
        traces.append(1)
        return -p[0] * y

    m = decay.replace(rhs=rhs)
    sb.simulate(m, T)
    n = len(traces)
    assert n > 0
    sb.simulate(m, T + 0.5, params={"k": 0.7}, rtol=1e-7)
    assert len(traces) == n


def test_simulation_inside_user_jit(decay):
    f = jax.jit(lambda k: sb.simulate(decay, T, params={"k": k})["y"][-1])
    np.testing.assert_allclose(f(0.5), 2.0 * np.exp(-2.0), rtol=1e-7)


def test_vmap_over_parameters(decay):
    ks = jnp.array([0.1, 0.5, 1.0])
    ys = jax.vmap(lambda k: sb.simulate(decay, T, params={"k": k})["y"])(ks)
    np.testing.assert_allclose(ys, 2.0 * np.exp(-np.outer(ks, T)), rtol=1e-7)


@pytest.mark.parametrize(
    "times, match",
    [
        (np.array([1.0, 0.5]), "non-decreasing"),
        (np.array([-1.0, 1.0]), "before t0"),
        (np.array([0.0]), "empty or negative"),
        (np.array([[0.0, 1.0]]), "1-D"),
        (np.array([0.0, np.nan]), "NaN"),
    ],
)
def test_bad_times(decay, times, match):
    with pytest.raises(InputError, match=match):
        sb.simulate(decay, times)


def test_bad_params_and_y0(decay):
    with pytest.raises(InputError, match="no parameter 'kk'"):
        sb.simulate(decay, T, params={"kk": 1.0})
    with pytest.raises(InputError, match=r"params has shape \(3,\)"):
        sb.simulate(decay, T, params=[1.0, 2.0, 3.0])
    with pytest.raises(InputError, match=r"y0 has shape \(2,\)"):
        sb.simulate(decay, T, y0=[1.0, 2.0])
    with pytest.raises(InputError, match="initial state is not finite for y"):
        sb.simulate(decay, T, y0=[np.nan])


def test_solver_failure_raises(decay):
    blowup = decay.replace(rhs=lambda t, y, p, u: y**2)
    with pytest.raises(SimulationError, match="max_steps"):
        sb.simulate(blowup, np.array([0.0, 2.0]), max_steps=1000)


def test_bad_model_definitions():
    with pytest.raises(ModelError, match="rhs returns shape"):
        sb.Model(states=["a", "b"], parameters={}, rhs=lambda t, y, p, u: y[:1],
                 initial=[0.0, 1.0])
    with pytest.raises(ModelError, match="unique"):
        sb.Model(states=["a", "a"], parameters={}, rhs=lambda t, y, p, u: y,
                 initial=[0.0, 1.0])
    with pytest.raises(ModelError, match="initial state has shape"):
        sb.Model(states=["a"], parameters={}, rhs=lambda t, y, p, u: y, initial=[0.0, 1.0])
    with pytest.raises(ModelError, match="scale 'ln' is unknown"):
        sb.Parameter("k", 1.0, scale="ln")
    with pytest.raises(ModelError, match="lower bound 2.0 exceeds upper 1.0"):
        sb.Parameter("k", 1.5, lower=2.0, upper=1.0)


def _threshold_dosing(decay):
    """y' = -k y; whenever y falls through 1, add 1: a sawtooth of period ln(2)/k."""
    dose = sb.Event(lambda t, y, p: (y + 1.0, p), trigger=lambda t, y, p: 1.0 - y[0],
                    name="top_up")
    return decay.replace(events=(dose,))


def test_state_triggered_event_sawtooth(decay):
    m = _threshold_dosing(decay)
    period = np.log(2.0) / 0.5
    ts = np.array([0.5, 1.0, 1.5, 2.0, 4.0, 6.0, 6.5])
    sol = sb.simulate(m, ts, rtol=1e-10, atol=1e-12)
    exact = 2.0 * np.exp(-0.5 * np.mod(ts, period))
    np.testing.assert_allclose(sol["y"], exact, rtol=1e-7)
    assert np.all(np.asarray(sol["y"]) >= 1.0 - 1e-9)


@pytest.mark.slow  # kept out of the default run for time; run with -m slow
def test_state_triggered_event_gradient(decay):
    m = _threshold_dosing(decay)
    ts = np.array([1.0, 3.0, 5.0])

    def last(k):
        return sb.simulate(m, ts, params=jnp.stack([k, 2.0]), rtol=1e-11, atol=1e-12)["y"][-1]

    k0, h = 0.5, 1e-5
    fd = (last(k0 + h) - last(k0 - h)) / (2 * h)
    np.testing.assert_allclose(jax.grad(last)(k0), fd, rtol=1e-4)
    # exact: y(T) = 2 exp(-k (T mod ln2/k)) = 2 exp(-(k T - n ln 2)), so dy/dk = -T y
    np.testing.assert_allclose(fd, -5.0 * last(k0), rtol=1e-5)


def test_state_events_in_ensemble(decay):
    m = _threshold_dosing(decay)
    ens = sb.simulate_ensemble(m, {"k": [0.5, 1.0]}, np.array([1.0, 2.0]), rtol=1e-10,
                               atol=1e-12)
    for i, k in enumerate([0.5, 1.0]):
        exact = 2.0 * np.exp(-k * np.mod(np.array([1.0, 2.0]), np.log(2.0) / k))
        np.testing.assert_allclose(ens.states[i, :, 0], exact, rtol=1e-7)


def test_event_needs_times_or_trigger():
    with pytest.raises(ModelError, match="either times or a trigger"):
        sb.Event(lambda t, y, p: (y, p))


def test_state_event_large_threshold_tight_tolerance():
    # threshold at 1e5 (nM-scale models): the root finder must stop on the time step
    m = sb.Model(states=["y"], parameters={"k": 0.5}, initial=[2e5], stiff=False,
                 rhs=lambda t, y, p, u: -p[0] * y,
                 events=[sb.Event(lambda t, y, p: (y + 1e5, p),
                                  trigger=lambda t, y, p: 1e5 - y[0])])
    ts = np.array([1.0, 2.0, 3.0])
    sol = sb.simulate(m, ts, rtol=1e-12, atol=1e-14)
    exact = 2e5 * np.exp(-0.5 * np.mod(ts, np.log(2.0) / 0.5))
    np.testing.assert_allclose(sol["y"], exact, rtol=1e-8)


def test_state_event_whose_affect_keeps_trigger_true_fires_once(decay):
    # the affect changes a parameter the trigger does not see: one firing, not a cascade
    flip = sb.Event(lambda t, y, p: (y, p.at[0].add(1.0)), trigger=lambda t, y, p: 1.0 - y[0])
    sol = sb.simulate(decay.replace(events=(flip,)), np.array([3.0]), rtol=1e-10, atol=1e-12)
    t_cross = np.log(2.0) / 0.5
    np.testing.assert_allclose(sol["y"], [np.exp(-1.5 * (3.0 - t_cross))], rtol=1e-7)


def test_rodas5_single_run_and_forward_derivatives(decay):
    from scalebridge.solvers import Rodas5

    k = decay.parameters[0].value
    sol = sb.simulate(decay, T, solver=Rodas5(), rtol=1e-10, atol=1e-12)
    ref = sb.simulate(decay, T, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sol.states, ref.states, rtol=1e-8, atol=1e-12)

    def last(kk):
        return sb.simulate(decay, T, params={"k": kk}, solver=Rodas5(), rtol=1e-10,
                           atol=1e-12).states[-1, 0]

    y0 = float(ref.states[0, 0])
    exact = -T[-1] * y0 * np.exp(-k * T[-1])  # d/dk of y0 exp(-k t)
    assert float(jax.jacfwd(last)(k)) == pytest.approx(exact, rel=1e-7)
    # state-triggered events need the root-finding diffrax path
    ev = sb.Event(lambda t, y, p: (y, p), trigger=lambda t, y, p: 0.5 - y[0])
    with pytest.raises(InputError, match="state-triggered"):
        sb.simulate(decay.replace(events=(ev,)), T, solver=Rodas5())


def test_equal_models_share_one_compilation():
    compiles = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda name, secs, **kw: compiles.append(name) if "backend_compile" in name else None)
    ts = np.linspace(0.0, 24.0, 7)
    sb.simulate(sb.load_zoo("pk_two_compartment"), ts, params={"CL": 5.0})
    n = len(compiles)
    sb.simulate(sb.load_zoo("pk_two_compartment"), ts, params={"CL": 2.0})
    assert n > 0 and len(compiles) == n
