"""The engine (sb.Simulator): a model's numbers are data. New values of parameters, initial
states, input samples, pacing and doses run the program already compiled, and give the
exact solution of the new problem (a stale compiled constant would give the old one)."""

import contextlib
import math

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import monitoring

import scalebridge as sb
from scalebridge.errors import InputError, SimulationError

# every jit cache miss lowers a program to MLIR (whether or not the persistent compilation
# cache then spares the backend compile); checking a model's shapes (jax.eval_shape) does not
_LOWERINGS = []
monitoring.register_event_duration_secs_listener(
    lambda name, dur, **kw: _LOWERINGS.append(name)
    if name.endswith("jaxpr_to_mlir_module_duration") else None)


@contextlib.contextmanager
def no_new_compilation():
    """Fails if any program is compiled inside the block."""
    before = len(_LOWERINGS)
    yield
    assert len(_LOWERINGS) == before, f"{len(_LOWERINGS) - before} new compilation(s)"


# the model's functions are its structure: defined once, shared by every model built here
def _decay_rhs(t, y, p, u):
    return -p[0] * y


def _sum_of_inputs(t, y, p, u):
    return jnp.sum(u, keepdims=True)


def _decay(**kw):
    return sb.Model(name="decay", states=["y"], parameters={"k": 0.5}, rhs=_decay_rhs,
                    initial=[2.0], stiff=False, **kw)


def _integrator(inputs, events=()):
    """dy/dt = sum of the inputs (each in u): y(t) is the integral of the inputs."""
    return sb.Model(name="integrator", states=["y"], parameters={"k": 1.0},
                    rhs=_sum_of_inputs, initial=[0.0], inputs=inputs, events=events,
                    stiff=False)


T = np.linspace(0.0, 10.0, 11)


def test_new_parameters_initial_values_and_models_reuse_the_program():
    model = _decay()
    sim = sb.Simulator(model, T)
    sim(params={"k": 0.3})  # compiles
    with no_new_compilation():
        a = sim(params={"k": 0.7})
        b = sb.simulate(model.with_parameters(k=1.1), T)
        c = sb.Simulator(model.with_initial([5.0]), T)(params=[0.2])
        d = sim(y0=[3.0])
        e = sb.Simulator(model, T / 2)()  # new output times, as many
    np.testing.assert_allclose(a["y"], 2.0 * np.exp(-0.7 * T), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(b["y"], 2.0 * np.exp(-1.1 * T), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(c["y"], 5.0 * np.exp(-0.2 * T), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(d["y"], 3.0 * np.exp(-0.5 * T), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(e["y"], 2.0 * np.exp(-0.25 * T), rtol=1e-7, atol=1e-9)
    assert model.parameters[0].value == 0.5  # the original is unchanged


def test_batches_of_new_members_reuse_the_program():
    sim = sb.Simulator(_decay(), T)
    sim.batch({"k": [0.1, 0.2, 0.3]})
    with no_new_compilation():
        ens = sim.batch({"k": [0.4, 0.5, 0.6]}, y0=np.full((3, 1), 4.0))
    assert ens.success.all()
    ks = np.array([0.4, 0.5, 0.6])
    np.testing.assert_allclose(ens.states[:, :, 0], 4.0 * np.exp(-np.outer(ks, T)),
                               rtol=1e-7, atol=1e-9)


def test_new_interpolated_samples_reuse_the_program():
    knots = np.array([0.0, 2.5, 5.0, 7.5])

    def run(values):
        inp = sb.Interpolated("u", knots, values, kind="previous")
        return sb.simulate(_integrator([inp]), T)["y"]

    run([1.0, 2.0, 3.0, 4.0])
    values = np.array([4.0, -1.0, 0.5, 2.0])
    with no_new_compilation():
        y = run(values)
    # the integral of a step function held from each knot to the next (the last for ever)
    widths = np.array([2.5, 2.5, 2.5, np.inf])
    exact = [np.sum(values * np.clip(t - knots, 0.0, widths)) for t in T]
    np.testing.assert_allclose(y, exact, rtol=1e-9, atol=1e-9)


def test_new_pacing_reuses_the_program():
    """A new period, amplitude or start of a PulseTrain (within the same power-of-two count
    of pulse edges in the span) is data."""
    def run(amplitude, period, start):
        pulse = sb.PulseTrain("stim", amplitude=amplitude, duration=0.25, period=period,
                              start=start)
        return sb.simulate(_integrator([pulse]), T)["y"]

    run(1.0, 2.0, 0.5)  # 5 pulses in [0, 10]: 10 edges
    with no_new_compilation():
        y = run(3.0, 1.5, 0.2)  # 7 pulses: 14 edges, the same bucket of 16
    starts = 0.2 + 1.5 * np.arange(7)
    exact = [3.0 * np.sum(np.clip(t - starts, 0.0, 0.25)) for t in T]
    np.testing.assert_allclose(y, exact, rtol=1e-9, atol=1e-9)


def _dosed(amount, times):
    exact = 2.0 * np.exp(-0.5 * T) + sum(amount * np.exp(-0.5 * (T - td)) * (T >= td)
                                         for td in times if td <= T[-1])
    return _decay(events=[sb.bolus(0, amount, times=times)]), exact


def test_new_doses_reuse_the_program():
    def run(amount, times):
        model, exact = _dosed(amount, times)
        return sb.simulate(model, T)["y"], exact

    run(1.0, [2.0, 6.0])
    # new amounts, new times: between outputs, on an output, at t0, at the end, past it,
    # out of order and twice at once (the ties add up)
    for amount, times in ((4.0, [2.0, 6.0]), (3.0, [2.5, 7.25]), (1.5, [0.0, 10.0]),
                          (2.0, [12.0, 4.0]), (1.0, [5.0, 5.0])):
        with no_new_compilation():
            y, exact = run(amount, times)
        np.testing.assert_allclose(y, exact, rtol=1e-7, atol=1e-9, err_msg=str(times))


def test_new_dose_times_in_a_stiff_batch_reuse_the_program():
    """The batched Rosenbrock loop lands on event times as data, too."""
    def run(times):
        model, exact = _dosed(1.0, times)
        sim = sb.Simulator(model.replace(stiff=True), T)
        return sim.batch(np.array([[0.5], [0.5]])).states[:, :, 0], exact

    run([2.0, 6.0])
    for times in ([2.5, 7.25], [0.0, 10.0], [5.0, 5.0], [12.0, 4.0]):
        with no_new_compilation():
            y, exact = run(times)
        np.testing.assert_allclose(y, np.stack([exact, exact]), rtol=1e-6, atol=1e-9,
                                   err_msg=str(times))


def _slope(t, y, p, u):
    return jnp.stack([p[0]])


def _offset(p):
    return p[1:2]


def test_new_petab_parameter_vectors_reuse_the_program():
    def line(a, b):
        return sb.Problem.from_table(
            sb.Model(name="line", states=["y"], parameters={"a": a, "b": b},
                     rhs=_slope, initial=_offset, stiff=False),
            {"observable": ["y"] * 3, "time": [1.0, 2.0, 3.0], "value": [1.0, 2.1, 2.9],
             "sigma": [0.1] * 3})

    problem = line(1.0, 0.0)
    problem.nll(problem.x_nominal)  # the NLL's program and the gradient's
    problem.nll_and_grad(problem.x_nominal)
    with no_new_compilation():
        nll = problem.nll([0.9, 0.2])
        _, grad = problem.nll_and_grad([1.2, -0.1])
    resid = np.array([1.0, 2.1, 2.9]) - (0.2 + 0.9 * np.array([1.0, 2.0, 3.0]))
    assert nll == pytest.approx(0.5 * np.sum((resid / 0.1) ** 2)
                                + 3 * math.log(0.1 * math.sqrt(2 * math.pi)), rel=1e-9)
    resid = np.array([1.0, 2.1, 2.9]) - (-0.1 + 1.2 * np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(grad, [-np.sum(resid * [1, 2, 3]) / 0.01,
                                      -np.sum(resid) / 0.01], rtol=1e-7, atol=1e-9)


def test_simulator_under_jit_vmap_and_derivatives():
    model = _decay()
    sim = sb.Simulator(model, T)
    y_end = jax.jit(lambda k: sim(params=jnp.stack([k]))["y"][-1])
    assert float(y_end(0.4)) == pytest.approx(2.0 * math.exp(-4.0), rel=1e-7)
    ks = jnp.array([0.2, 0.4])
    np.testing.assert_allclose(jax.vmap(y_end)(ks), 2.0 * np.exp(-10 * ks), rtol=1e-7, atol=1e-9)
    exact = -20.0 * math.exp(-4.0)  # d/dk of 2 exp(-10 k)
    assert float(jax.grad(y_end)(0.4)) == pytest.approx(exact, rel=1e-6)
    fwd = sb.Simulator(model, T, sensitivities="forward")
    assert float(jax.jacfwd(lambda k: fwd(params=jnp.stack([k]))["y"][-1])(0.4)) == \
        pytest.approx(exact, rel=1e-6)
    adj = sb.Simulator(model, T, sensitivities="adjoint")
    assert float(jax.grad(lambda k: adj(params=jnp.stack([k]))["y"][-1])(0.4)) == \
        pytest.approx(exact, rel=1e-5)
    batch = jax.jit(lambda k: sim.batch(k[:, None]).states[:, -1, 0])
    np.testing.assert_allclose(batch(ks), 2.0 * np.exp(-10 * ks), rtol=1e-7, atol=1e-9)


def test_windows_at_traced_times_under_vmap_and_grad():
    """Multiple shooting's use: one simulator, windows of output times traced under vmap,
    each from its own start; the exact solution and its derivative in k."""
    sim = sb.Simulator(_decay(), np.linspace(0.0, 4.0, 4))
    windows = jnp.array([[0.0, 0.5, 1.0, 1.5], [1.0, 2.0, 4.0, 4.0], [2.5, 2.6, 2.7, 3.0]])
    starts = jnp.array([2.0, 1.0, 3.0])

    def ends(k):
        one = lambda ts, y0: sim.at(ts).solve(jnp.stack([k]), y0[None])[0][:, 0]  # noqa: E731
        return jax.vmap(one)(windows, starts)

    exact = starts[:, None] * np.exp(-0.4 * (windows - windows[:, :1]))
    np.testing.assert_allclose(jax.jit(ends)(0.4), exact, rtol=1e-7)
    d_exact = -(windows - windows[:, :1]) * exact
    np.testing.assert_allclose(jax.jacrev(ends)(0.4), d_exact, rtol=1e-6, atol=1e-12)
    with pytest.raises(InputError, match="shape"):
        sim.at(np.linspace(0.0, 1.0, 3))
    with pytest.raises(InputError, match="non-decreasing"):
        sim.at(np.array([0.0, 2.0, 1.0, 3.0]))


def test_steady_state_against_the_closed_form():
    # dy/dt = s - k y: y* = s / k, from any start
    model = sb.Model(name="turnover", states=["y"], parameters={"s": 3.0, "k": 0.5},
                     rhs=lambda t, y, p, u: p[0] - p[1] * y, initial=[0.0])
    np.testing.assert_allclose(sb.steady_state(model), [6.0], rtol=1e-6)
    np.testing.assert_allclose(sb.steady_state(model, {"k": 2.0}, y0=[10.0]), [1.5], rtol=1e-6)
    growth = sb.Model(name="growth", states=["y"], parameters={"r": 1.0},
                      rhs=lambda t, y, p, u: p[0] * y, initial=[1.0], stiff=False)
    with pytest.raises(SimulationError, match="no steady state"):
        sb.steady_state(growth, max_steps=200)


def test_steady_state_is_exact_and_keeps_conservation_laws():
    # A <-> B (k1, k2) with A + B = T conserved: A* = T k2 / (k1 + k2). The integration stops
    # within 10x the tolerances of dA/dt = 0 (A off by ~1e-7 here); the Newton polish makes
    # the state exact to rounding, and its derivative the implicit function's
    model = sb.Model(name="isomer", states=["A", "B"], parameters={"k1": 2.0, "k2": 0.5},
                     rhs=lambda t, y, p, u: jnp.stack([-p[0] * y[0] + p[1] * y[1],
                                                       p[0] * y[0] - p[1] * y[1]]),
                     initial=[3.0, 1.0])
    exact = np.array([4.0 * 0.5 / 2.5, 4.0 * 2.0 / 2.5])
    np.testing.assert_allclose(sb.steady_state(model), exact, rtol=1e-13)
    d_a = jax.jacfwd(lambda k1: sb.steady_state(model, jnp.stack([k1, 0.5]))[0])(2.0)
    assert float(d_a) == pytest.approx(-4.0 * 0.5 / 2.5**2, rel=1e-10)


@pytest.mark.parametrize("limit", [64, 0], ids=["Rodas5 loop", "diffrax"])
def test_steady_states_of_a_batch_on_either_integrator(limit, monkeypatch):
    """Steady states of several members at once: the batched Rodas5 loop (up to 64 states)
    and vmapped diffrax (above) give the closed form, with exact derivatives."""
    import sys

    S = sys.modules["scalebridge.simulate"]
    monkeypatch.setattr(S, "_ROSENBROCK_STATE_LIMIT", limit)
    model = sb.Model(name="isomer", states=["A", "B"], parameters={"k1": 2.0, "k2": 0.5},
                     rhs=lambda t, y, p, u: jnp.stack([-p[0] * y[0] + p[1] * y[1],
                                                       p[0] * y[0] - p[1] * y[1]]),
                     initial=[3.0, 1.0])
    k1 = jnp.asarray([2.0, 0.3, 7.0])
    y0 = jnp.asarray([[3.0, 1.0], [0.0, 2.0], [1.0, 1.0]])

    def a_star(k1):
        ps = jnp.stack([k1, jnp.full(3, 0.5)], axis=1)
        return S.steady_states(model, ps, y0, 1e-8, 1e-10, 10_000)[:, 0]

    total = y0.sum(axis=1)
    np.testing.assert_allclose(a_star(k1), total * 0.5 / (k1 + 0.5), rtol=1e-12)
    np.testing.assert_allclose(jnp.diag(jax.jacfwd(a_star)(k1)), -total * 0.5 / (k1 + 0.5)**2,
                               rtol=1e-9)


def test_bad_engine_arguments_name_the_fix():
    model = _decay()
    with pytest.raises(InputError, match="sensitivities"):
        sb.Simulator(model, T, sensitivities="backward")
    with pytest.raises(InputError, match="max_steps"):
        sb.Simulator(model, T, max_steps=0)
    with pytest.raises(InputError, match="initial values"):
        _decay().with_initial([1.0, 2.0])
    with pytest.raises(InputError, match="no field"):
        model.replace(colour="red")


N_CHAIN = 120


def _chain(t, y, p, u):
    """A linear chain of N_CHAIN compartments: y_i flows on to y_{i+1} at rate p_i."""
    out = p * y
    return jnp.concatenate([-out[:1], out[:-1] - out[1:]])


def test_adjoint_gradient_of_a_120_state_model_matches_finite_differences():
    """The discrete adjoint (sensitivities="adjoint") on 120 states and 120 parameters
    against central finite differences of the same simulator (all 240 perturbed runs in
    one batch)."""
    rng = np.random.default_rng(0)
    k = rng.uniform(1.0, 3.0, N_CHAIN)
    y0 = np.zeros(N_CHAIN)
    y0[0] = 1.0
    model = sb.Model(name="chain", states=[f"y{i}" for i in range(N_CHAIN)],
                     parameters={f"k{i}": v for i, v in enumerate(k)}, rhs=_chain,
                     initial=y0, stiff=False)
    times = np.array([5.0, 20.0, 40.0])
    weights = rng.uniform(0.5, 1.5, (times.size, N_CHAIN))

    def loss(states):
        return jnp.sum(weights * states ** 2, axis=(-2, -1))

    kw = dict(rtol=1e-10, atol=1e-12)
    adjoint = sb.Simulator(model, times, sensitivities="adjoint", **kw)
    grad = np.asarray(jax.grad(lambda p: loss(adjoint(p).states))(jnp.asarray(k)))
    h = 1e-5 * k
    plus_minus = np.concatenate([k + np.diag(h), k - np.diag(h)])
    values = np.asarray(loss(sb.Simulator(model, times, **kw).batch(plus_minus).states))
    fd = (values[:N_CHAIN] - values[N_CHAIN:]) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-7 * np.abs(fd).max())


def _chain2(t, y, p, u):
    return jnp.stack([-p[0] * y[0], p[0] * y[0] - p[1] * y[1]])


# the seeding is the same for every solver; Kvaerno5 (the diffrax path) runs with -m slow
@pytest.mark.parametrize("solver", [sb.solvers.Rodas5(), pytest.param(
    diffrax.Kvaerno5(), marks=pytest.mark.slow)], ids=["Rodas5", "Kvaerno5"])
def test_per_member_derivatives_equal_those_of_the_whole_batch(solver):
    """Sensitivities seeded per member along the columns a member depends on, contracted
    with the outer tangents, equal forward differentiation of the whole batch along every
    outer direction; the first state has the closed form y0 exp(-k1 t)."""
    from scalebridge.simulate import per_member_derivatives

    model = sb.Model(states=["A", "B"], parameters={"k1": 0.5, "k2": 0.3}, rhs=_chain2,
                     initial=[1.0, 0.0])
    sim = sb.Simulator(model, T, solver=solver, sensitivities="forward")

    def members(x):  # three members, each with its own rate k1 and y0 of A; k2 shared
        P = jnp.stack([x[:3], jnp.full(3, x[3])], axis=1)
        y0 = jnp.stack([x[4:7], jnp.zeros(3)], axis=1)
        return P, y0

    def whole(x):
        return sim.solve_batch(*members(x))[:2]

    seeded = per_member_derivatives(lambda P, y0: sim.solve_batch(P, y0)[:2], [0, 1], [0])
    x = jnp.asarray([0.2, 0.5, 0.9, 0.3, 1.0, 2.0, 0.5])
    ref = jax.jacfwd(whole)(x)
    got = jax.jacfwd(lambda x: seeded(*members(x)))(x)
    for a, b in zip(got, ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)
    np.testing.assert_array_equal(seeded(*members(x))[0], whole(x)[0])
    dA_dk1 = got[0][:, :, 0, :3]  # (member, time, k1 of each member)
    exact = -T[None, :] * x[4:7, None] * np.exp(-x[:3, None] * T[None, :])
    np.testing.assert_allclose(np.einsum("mtm->mt", dA_dk1), exact, rtol=1e-6, atol=1e-9)
    # members are independent: no member's state depends on another member's rate
    assert np.all(np.asarray(dA_dk1).transpose(0, 2, 1)[~np.eye(3, dtype=bool)] == 0)
