"""scalebridge.solvers: Rodas order of convergence, stiff accuracy, ensembles, failures."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import scalebridge as sb
from scalebridge.errors import InputError
from scalebridge.solvers import RODAS4, RODAS5, Rodas4, Rodas5, inverse, rosenbrock_step
from scalebridge.solvers.rosenbrock import _reference_step


def _fixed_step_error(tab, n):
    """y' = -2 t y^2, y(0) = 1 (non-autonomous, nonlinear): y = 1 / (1 + t^2)."""
    f = lambda t, y, p: -2.0 * t * y**2  # noqa: E731
    h = 2.0 / n

    def body(i, y):
        return rosenbrock_step(tab, f, i * h, y, None, h)[0]

    y = jax.jit(lambda: jax.lax.fori_loop(0, n, body, jnp.ones(1)))()
    return abs(float(y[0]) - 1.0 / 5.0)


@pytest.mark.parametrize("tab", [RODAS5, RODAS4], ids=lambda t: t.name)
def test_observed_order_matches_theory(tab):
    errs = [_fixed_step_error(tab, n) for n in (20, 40, 80)]
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert abs(orders[-1] - tab.order) < 0.3, orders


def test_inverse_with_pivoting():
    A = np.array([[0.0, 2.0, 1.0], [1.0, 0.0, 0.0], [3.0, 1.0, 5.0]])  # needs row swaps
    np.testing.assert_allclose(inverse(jnp.asarray(A)), np.linalg.inv(A), rtol=1e-12,
                               atol=1e-14)
    for n in (6, 20):  # elimination up to 16 rows, LAPACK above
        batch = np.random.default_rng(1).normal(size=(4, n, n))
        np.testing.assert_allclose(jax.vmap(inverse)(jnp.asarray(batch)), np.linalg.inv(batch),
                                   rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize(("t_cap", "looped"), [(None, False), (0.33, True)],
                         ids=["unrolled", "looped-capped"])
def test_step_derivative_equals_plain_autodiff(t_cap, looped, monkeypatch):
    """The step's own forward and reverse rules (through the step's W^-1) against JAX's
    differentiation of every operation of the same step, in forward and reverse mode, with
    respect to time, state, parameters, step size and a constant the right-hand side closes
    over (a model's input data); with the stages unrolled and in a loop (large models)."""
    import scalebridge.solvers.rosenbrock as R

    monkeypatch.setattr(R, "LOOP_STAGES_ABOVE", 0 if looped else 10**9)
    n, m = 7, 5
    rng = np.random.default_rng(3)
    A = jnp.asarray(rng.normal(size=(n, n)) / n)
    B = jnp.asarray(rng.normal(size=(n, m)))

    def make(step):
        def g(x):
            t, y, p, h, data = x[0], x[1:n + 1], x[n + 1:n + 1 + m], x[-2], x[-1]

            def f(t, y, p):  # closes over data, traced here
                return (-jnp.exp(p[0]) * y + A @ jnp.tanh(y) * (1 + 0.1 * jnp.sin(3 * t))
                        + B @ p ** 2 / (1 + y ** 2) + data * t)

            return jnp.concatenate(step(RODAS5, f, t, y, p, h, t_cap))
        return g

    x = jnp.asarray(np.concatenate([[0.3], rng.normal(size=n), 0.3 * rng.normal(size=m),
                                    [0.05, 0.7]]))
    reference = partial(_reference_step, looped=looped)
    ref = jax.jacfwd(make(reference))(x)
    np.testing.assert_array_equal(make(rosenbrock_step)(x), make(reference)(x))
    # the reverse rule (the adjoint's steps) also, in reverse mode
    for jac, step in ((jax.jacfwd, rosenbrock_step), (jax.jacrev, rosenbrock_step),
                      (jax.jacrev, partial(rosenbrock_step, reverse=True))):
        np.testing.assert_allclose(jac(make(step))(x), ref, rtol=1e-11,
                                   atol=1e-12 * float(jnp.max(jnp.abs(ref))))


def _robertson():
    def rhs(t, y, p, u):
        k1, k2, k3 = p[0], p[1], p[2]
        r1, r2, r3 = k1 * y[0], k2 * y[1] ** 2, k3 * y[1] * y[2]
        return jnp.stack([-r1 + r3, r1 - r2 - r3, r2])

    return sb.Model(name="robertson", states=["A", "B", "C"],
                    parameters={"k1": 0.04, "k2": 3e7, "k3": 1e4}, rhs=rhs,
                    initial=[1.0, 0.0, 0.0])


ROBERTSON = _robertson()


def test_robertson_matches_radau_at_tight_tolerance():
    m = ROBERTSON
    ts = np.array([0.0, 1e-3, 0.1, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5])
    ps = np.array([[0.04, 3e7, 1e4], [0.08, 1e7, 3e4]])
    ens = sb.simulate_ensemble(m, ps, ts, solver=Rodas5(), rtol=1e-9, atol=1e-14)
    assert bool(np.all(ens.success))
    for i, p in enumerate(ps):
        def rhs(t, y, k1=p[0], k2=p[1], k3=p[2]):
            return [-k1 * y[0] + k3 * y[1] * y[2], k1 * y[0] - k2 * y[1] ** 2 - k3 * y[1] * y[2],
                    k2 * y[1] ** 2]

        ref = solve_ivp(rhs, (0.0, ts[-1]), [1.0, 0.0, 0.0], method="Radau", t_eval=ts,
                        rtol=1e-12, atol=1e-16).y.T
        dev = np.abs(np.asarray(ens.states[i]) - ref) / np.max(np.abs(ref), axis=0)
        assert dev.max() < 1e-6, dev.max()


def test_ensemble_equals_loop_of_single_runs():
    ts = np.array([0.0, 0.5, 2.0, 40.0])
    ps = np.array([[0.04, 3e7, 1e4], [0.4, 3e6, 1e3], [0.01, 1e8, 1e4], [0.1, 3e7, 5e3],
                   [0.04, 1e6, 1e4]])
    kw = dict(rtol=1e-8, atol=1e-12)
    loop = np.stack([sb.simulate_ensemble(ROBERTSON, p[None], ts, solver=Rodas5(), **kw)
                     .states[0] for p in ps])
    for solver in (Rodas5(), Rodas5(slots=2), Rodas5(driver="lockstep")):
        ens = sb.simulate_ensemble(ROBERTSON, ps, ts, solver=solver, **kw)
        assert bool(np.all(ens.success))
        # each member takes the same steps whatever the batching
        np.testing.assert_allclose(ens.states, loop, rtol=1e-12, atol=1e-15)
    r4 = sb.simulate_ensemble(ROBERTSON, ps, ts, solver=Rodas4(slots=3), **kw)
    np.testing.assert_allclose(r4.states, loop, rtol=1e-5, atol=1e-10)
    for i in (0, 2):
        single = sb.simulate(ROBERTSON, ts, params=ps[i], rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(loop[i], single.states, rtol=1e-5, atol=1e-10)


def test_failing_member_flagged_others_unaffected():
    m = sb.Model(states=["y"], parameters={"a": 1.0}, initial=[1.0], stiff=True,
                 rhs=lambda t, y, p, u: p[0] * y**2)  # blows up at t = 1/a
    for solver in (Rodas5(slots=1), Rodas5(driver="lockstep")):
        ens = sb.simulate_ensemble(m, {"a": [-1.0, 1.0, -2.0, jnp.nan]}, np.array([0.0, 2.0]),
                                   solver=solver, max_steps=2000)
        np.testing.assert_array_equal(np.asarray(ens.success), [True, False, True, False])
        assert np.all(np.isnan(ens.states[1])) and np.all(np.isnan(ens.states[3]))
        np.testing.assert_allclose(ens.states[0, -1, 0], 1.0 / 3.0, rtol=1e-7)
        np.testing.assert_allclose(ens.states[2, -1, 0], 1.0 / 5.0, rtol=1e-7)


def test_max_steps_flags_member(decay):
    ens = sb.simulate_ensemble(decay, {"k": [0.5, 50.0]}, np.linspace(0, 3, 4),
                               solver=Rodas5(), max_steps=100, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(np.asarray(ens.success), [True, False])


def test_events_inputs_and_observables_match_simulate(decay):
    dosed = decay.replace(events=(sb.bolus(0, 1.0, [1.0, 2.0, 3.0]),), stiff=True)
    ts = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0])
    ens = sb.simulate_ensemble(dosed, {"k": [0.5, 1.5]}, ts, rtol=1e-10, atol=1e-12)
    for i, k in enumerate([0.5, 1.5]):
        single = sb.simulate(dosed, ts, params={"k": k}, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ens.states[i], single.states, rtol=1e-7)
        np.testing.assert_allclose(ens.observables[i], single.observables, rtol=1e-7)
    pulsed = sb.Model(
        states=["y"], parameters={"k": 1.0}, initial=[0.0],
        inputs=[sb.PulseTrain("u", amplitude=2.0, duration=0.7, period=10.0, start=0.5)],
        rhs=lambda t, y, p, u: u[0] - p[0] * y)
    ts = np.linspace(0.0, 3.0, 7)
    ens = sb.simulate_ensemble(pulsed, {"k": [1.0]}, ts, rtol=1e-10, atol=1e-12)
    single = sb.simulate(pulsed, ts, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ens.states[0], single.states, rtol=1e-7, atol=1e-10)


def test_bad_solver_options():
    with pytest.raises(InputError, match="driver"):
        Rodas5(driver="fast")
    with pytest.raises(InputError, match="slots"):
        Rodas5(slots=0)
