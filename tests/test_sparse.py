"""scalebridge.solvers.sparse: compressed Jacobians and the fixed-pattern LU, alone and
inside Rosenbrock steps on large reaction networks, against dense linear algebra, the
matrix exponential and scipy's Radau."""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from scipy.integrate import solve_ivp

import scalebridge as sb
from scalebridge.solvers import RODAS5, rosenbrock_step
from scalebridge.solvers.rosenbrock import _reference_step
from scalebridge.solvers.sparse import SparseJacobian, SparseLU, colour_columns

engine = sys.modules["scalebridge.simulate"]


def _pattern(n, density, seed, dense_rows=()):
    rng = np.random.default_rng(seed)
    pattern = rng.uniform(size=(n, n)) < density
    for r in dense_rows:
        pattern[r, ::2] = True
        pattern[::3, r] = True
    return pattern


@pytest.mark.parametrize(("n", "density"), [(2, 1.0), (12, 0.3), (60, 0.05), (200, 0.015)])
def test_sparse_lu_solves_like_dense(n, density):
    """Sizes without and with the trailing dense block, one system and a batch of them."""
    pattern = _pattern(n, density, seed=n)
    lu = SparseLU.of(pattern)
    rng = np.random.default_rng(0)
    J = np.where(pattern, rng.normal(size=(n, n)), 0.0)
    rows, cols = np.nonzero(pattern)
    factors, ok = jax.jit(lu.factor)(jnp.asarray(J[rows, cols]), 4.0)
    assert bool(ok)
    B = rng.normal(size=(5, n))
    x = jax.jit(jax.vmap(lu.solve, (None, 0)))(factors, jnp.asarray(B))
    np.testing.assert_allclose(x, np.linalg.solve(4.0 * np.eye(n) - J, B.T).T,
                               rtol=1e-10, atol=1e-12)


def test_dense_block_takes_the_end_of_the_chain():
    lu = SparseLU.of(_pattern(200, 0.015, seed=200))
    assert 4 <= lu.block.size <= 64
    lu_small = SparseLU.of(np.eye(3, dtype=bool))  # no chain: no block
    assert lu_small.block.size == 0


def test_zero_pivot_is_reported():
    """Diagonal pivots cannot swap rows: a zero pivot rejects the factorisation (the
    Rosenbrock step then retries with a smaller step, where W is diagonally dominant)."""
    pattern = np.array([[True, True], [True, True]])
    lu = SparseLU.of(pattern)
    J = np.array([[1.0, 2.0], [3.0, 1.0]])  # W = I - J has a zero diagonal
    _, ok = lu.factor(jnp.asarray(J[np.nonzero(pattern)]), 1.0)
    assert not bool(ok)


def test_colouring_separates_columns_that_share_a_row():
    pattern = _pattern(80, 0.04, seed=2, dense_rows=(3, 40))
    colour = colour_columns(pattern)
    for c in range(colour.max() + 1):
        assert pattern[:, colour == c].sum(axis=1).max() <= 1


def test_compressed_jacobian_matches_jacfwd():
    """Dense rows in reverse mode, the rest by colour, df/dt by its own colour."""
    n = 80
    pattern = _pattern(n, 0.04, seed=4, dense_rows=(3, 40, 41))
    sj = SparseJacobian.of(pattern)
    assert sj.reverse.size > 0 and sj.n_colours < n // 2
    rng = np.random.default_rng(5)
    A = jnp.asarray(np.where(pattern, rng.normal(size=(n, n)), 0.0))
    c = jnp.asarray(rng.normal(size=n))

    def fz(z):
        return jnp.tanh(A @ z[:-1]) * (1 + z[-1] * c) + jnp.sin(z[-1]) * c

    z = jnp.asarray(rng.normal(size=n + 1))
    values, ft, f0 = sj.jacobian(fz, z)
    dense = jax.jacfwd(fz)(z)
    np.testing.assert_allclose(values, dense[sj.rows, sj.cols], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(ft, dense[:, -1], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(f0, fz(z), rtol=1e-15)
    x = jnp.asarray(rng.normal(size=n))
    np.testing.assert_allclose(sj.matvec(values, x), dense[:, :-1] @ x, rtol=1e-12,
                               atol=1e-14)


def _network(n=48, reversible=True):
    """A stiff reaction network: a chain S0 <-> S1 <-> ... with first-order rates spread
    over six decades, branches from every fourth species back to S0, and an enzyme E
    (the last state) that binds every fifth species (E + S_i -> E + S_{i+1}): a dense row
    and a dense column in a sparse Jacobian."""
    rng = np.random.default_rng(11)
    kf = 10.0 ** rng.uniform(-2, 4, n - 2)
    kb = 10.0 ** rng.uniform(-2, 3, n - 2) if reversible else np.zeros(n - 2)
    kx = 10.0 ** rng.uniform(-1, 1, n - 1)
    params = {"kcat": 0.5, "kdeg": 0.05}

    def rhs(t, y, p, u):
        s, e = y[:-1], y[-1]
        flow = jnp.asarray(kf) * s[:-1] - jnp.asarray(kb) * s[1:]
        ds = jnp.zeros(n - 1).at[:-1].add(-flow).at[1:].add(flow)
        back = jnp.asarray(kx[::4]) * s[::4]
        ds = ds.at[::4].add(-back).at[0].add(jnp.sum(back))
        cat = p[0] * e * s[::5]
        ds = ds.at[::5].add(-cat).at[1::5].add(cat[: len(range(1, n - 1, 5))])
        de = 1.0 - p[1] * e
        return jnp.concatenate([ds, de[None]])

    y0 = np.zeros(n)
    y0[0], y0[-1] = 1.0, 2.0
    return sb.Model(name="network", states=[f"S{i}" for i in range(n - 1)] + ["E"],
                    parameters=params, rhs=rhs, initial=y0)


def test_pattern_is_found_once_and_only_for_large_sparse_models():
    model = _network()
    sj = engine.sparse_jacobian(model)
    assert sj is not None and sj.reverse.size + sj.n_colours <= 24
    assert engine.sparse_jacobian(model) is sj  # found once
    assert isinstance(engine.default_solver(model, batched=True), sb.solvers.Rodas5)
    big = _network(n=70)  # one run of a large sparse model: Rodas5 (also in reverse mode)
    assert isinstance(engine.default_solver(big), sb.solvers.Rodas5)
    small = _network(n=20)
    assert engine.sparse_jacobian(small) is None
    coupled = sb.Model(name="coupled", states=[f"x{i}" for i in range(40)],
                       parameters={"k": 1.0},
                       rhs=lambda t, y, p, u: -p[0] * y + 0.01 * jnp.sum(y) ** 2,
                       initial=np.ones(40))
    assert engine.sparse_jacobian(coupled) is None  # every column shares every row


# a large model's right-hand side runs its stages in a loop; unrolled stages (small
# right-hand sides) take 14 s to compile here: run with -m slow
@pytest.mark.parametrize("looped", [pytest.param(False, marks=pytest.mark.slow), True],
                         ids=["unrolled", "looped"])
def test_sparse_step_equals_dense_step_and_its_derivative(looped, monkeypatch):
    import scalebridge.solvers.rosenbrock as R

    monkeypatch.setattr(R, "LOOP_STAGES_ABOVE", 0 if looped else 10**9)
    model = _network()
    sj = engine.sparse_jacobian(model)
    y = jnp.asarray(np.random.default_rng(1).uniform(0.1, 1.0, 48))

    def f(t, y, p):
        return model.vector_field(t, y, p)

    def step(x, linear):
        p, h = x[:2], x[2]
        return jnp.concatenate(rosenbrock_step(RODAS5, f, 0.1, y * x[3], p, h, None, linear))

    x = jnp.asarray([0.5, 0.05, 0.01, 1.0])
    np.testing.assert_allclose(jax.jit(step, static_argnums=1)(x, sj),
                               jax.jit(step, static_argnums=1)(x, None), rtol=1e-10,
                               atol=1e-13)
    ref = jax.jit(jax.jacfwd(lambda x: jnp.concatenate(_reference_step(
        RODAS5, f, 0.1, y * x[3], x[:2], x[2], looped=looped, linear=sj))))(x)
    np.testing.assert_allclose(jax.jit(jax.jacfwd(lambda x: step(x, sj)))(x), ref, rtol=1e-9,
                               atol=1e-11 * float(jnp.max(jnp.abs(ref))))

    def step_reverse(x):  # the adjoint's step: transposed sparse solves
        return jnp.concatenate(rosenbrock_step(RODAS5, f, 0.1, y * x[3], x[:2], x[2], None,
                                               sj, reverse=True))

    np.testing.assert_allclose(jax.jit(jax.jacrev(step_reverse))(x), ref, rtol=1e-9,
                               atol=1e-11 * float(jnp.max(jnp.abs(ref))))


def test_linear_network_matches_the_matrix_exponential():
    """Without the enzyme's catalysis (kcat = 0) the network is affine, y' = A y + b, and
    solves exactly as the matrix exponential of [[A, b], [0, 0]] applied to (y0, 1)."""
    model = _network().with_parameters(kcat=0.0)
    ts = np.array([0.0, 1e-3, 0.1, 1.0, 10.0, 100.0])
    sim = sb.Simulator(model, ts, rtol=1e-10, atol=1e-14)
    ys = np.asarray(sim.batch(np.asarray(model.nominal)[None]).states[0])
    A = np.asarray(jax.jacfwd(lambda y: model.vector_field(0.0, y, model.nominal))(
        jnp.zeros(48)))
    b = np.asarray(model.vector_field(0.0, jnp.zeros(48), model.nominal))
    aug = np.block([[A, b[:, None]], [np.zeros((1, 49))]])
    y0 = np.append(np.asarray(model.initial_state(model.nominal)), 1.0)
    ref = np.stack([scipy.linalg.expm(aug * t) @ y0 for t in ts])[:, :48]
    assert np.max(np.abs(ys - ref)) < 1e-8 * np.max(np.abs(ref))


def test_nonlinear_network_matches_radau_with_forward_sensitivities():
    model = _network()
    ts = np.array([0.0, 0.01, 1.0, 10.0, 50.0])
    ps = jnp.asarray([[0.5, 0.05], [2.0, 0.2]])
    assert isinstance(engine.default_solver(model, batched=True), sb.solvers.Rodas5)
    sim = sb.Simulator(model, ts, rtol=1e-10, atol=1e-14)
    solve = jax.jit(lambda P: sim.solve_batch(P, jax.vmap(model.initial_state)(P))[0])
    ys = np.asarray(solve(ps))
    f = jax.jit(lambda t, y, p: model.vector_field(t, y, p))
    jac = jax.jit(jax.jacfwd(f, argnums=1))
    for i, p in enumerate(ps):
        ref = solve_ivp(lambda t, y, p=p: np.asarray(f(t, y, p)), (0.0, ts[-1]),
                        np.asarray(model.initial_state(p)), method="Radau", t_eval=ts,
                        rtol=1e-12, atol=1e-15, jac=lambda t, y, p=p: np.asarray(jac(t, y, p))).y.T
        assert np.max(np.abs(ys[i] - ref)) < 1e-7 * np.max(np.abs(ref))
    # forward sensitivities through the sparse steps against central differences (the
    # pair p0 +- step is one batch of the same shape: no new compilation)
    grad = jax.jit(jax.jacfwd(lambda p: solve(p[None])[0, -1]))(ps[0])
    for k in range(2):
        e = jnp.zeros(2).at[k].set(1e-5)
        plus, minus = solve(jnp.stack([ps[0] + e, ps[0] - e]))[:, -1]
        # (E does not depend on kcat: its differences are rounding, 1e-9)
        np.testing.assert_allclose(grad[:, k], (plus - minus) / 2e-5, rtol=1e-4, atol=2e-9)


def test_adjoint_through_sparse_steps_equals_forward_sensitivities():
    """jax.grad through Rodas5's checkpointed loop (sensitivities="adjoint": the steps'
    sparse Jacobian and LU transposed) equals forward sensitivities on the same steps
    (which the test above holds to central differences)."""
    model = _network()
    ts = np.array([0.01, 1.0, 10.0, 50.0])
    weights = np.random.default_rng(1).uniform(0.5, 1.5, (ts.size, len(model.state_names)))
    kw = dict(rtol=1e-10, atol=1e-14, solver=sb.solvers.Rodas5())
    p0 = jnp.asarray([0.5, 0.05])

    def loss(sim):
        return lambda p: jnp.sum(weights * sim(p).states)

    adjoint = sb.Simulator(model, ts, sensitivities="adjoint", **kw)
    forward = sb.Simulator(model, ts, sensitivities="forward", **kw)
    g_adj = np.asarray(jax.jit(jax.grad(loss(adjoint)))(p0))
    g_fwd = np.asarray(jax.jit(jax.jacfwd(loss(forward)))(p0))
    np.testing.assert_allclose(g_adj, g_fwd, rtol=1e-9)


def test_steady_state_of_a_large_network():
    """The steady-state solve runs on the sparse steps too: at the steady state the flow
    vanishes and the species total, which every reaction conserves, is the initial one."""
    model = _network()
    y = np.asarray(sb.steady_state(model))
    flow = np.asarray(model.vector_field(0.0, jnp.asarray(y), model.nominal))
    assert np.max(np.abs(flow)) < 1e-9
    assert np.sum(y[:-1]) == pytest.approx(1.0, rel=1e-10)
    assert y[-1] == pytest.approx(1.0 / 0.05, rel=1e-10)  # dE/dt = 1 - kdeg E


def test_pattern_sees_a_coupling_that_switches_on_later_in_time():
    """A coupling that exists only after t = 100 (a piecewise law in time) is part of the
    pattern: the probes run at times up to 3e4."""
    n = 40

    def rhs(t, y, p, u):
        later = jnp.where(t > 100.0, p[0] * jnp.roll(y, 1), 0.0)
        return -y + later

    model = sb.Model(name="switch", states=[f"x{i}" for i in range(n)], parameters={"k": 2.0},
                     rhs=rhs, initial=np.ones(n))
    sj = engine.sparse_jacobian(model)
    pattern = set(zip(sj.rows.tolist(), sj.cols.tolist(), strict=True))
    assert all((i, (i - 1) % n) in pattern for i in range(n))
