"""The simulation engine: :class:`Simulator`, and simulate(), simulate_ensemble() and
steady_state() on it.

The time axis is split at the model's event times into segments; each segment is one
``diffrax.diffeqsolve`` that saves at the output times inside it, and the events are
applied between segments. Which output times fall in which segment is decided outside
the compiled function (it fixes array shapes), while the times themselves, parameters and
initial states are traced, so new values never recompile.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .errors import InputError, SimulationError
from .event_queue import Triggers, _outputs_and_end, segment
from .model.events import schedule
from .model.model import Model
from .solution import EnsembleSolution, Solution
from .solvers.segment import AbstractSegmentSolver


def _check_times(times, t0) -> np.ndarray:
    try:
        ts = np.asarray(times, dtype=float)
    except jax.errors.TracerArrayConversionError:
        raise InputError("times must be concrete numbers, not traced JAX values; "
                         "pass them as a NumPy array") from None
    except (TypeError, ValueError):
        raise InputError(f"times must be a 1-D array of numbers, got {times!r}") from None
    if ts.ndim != 1 or ts.size == 0:
        raise InputError(f"times must be a non-empty 1-D array, got shape {ts.shape}")
    if not np.all(np.isfinite(ts)):
        raise InputError("times contain NaN or infinity; give finite output times")
    if np.any(np.diff(ts) < 0):
        raise InputError("times must be non-decreasing; sort the output times")
    if ts[0] < t0:
        raise InputError(f"times start at {ts[0]} before t0={t0}; output times must be >= t0")
    if ts[-1] <= t0:
        raise InputError(f"the time span [{t0}, {ts[-1]}] is empty or negative; "
                         "give output times after t0")
    return ts


# above this many states a stiff default would form a dense n x n Jacobian (200 MB at 5,000)
_DENSE_JACOBIAN_LIMIT = 5000


def _check_dense_jacobian(model: Model):
    n = len(model.state_names)
    if model.stiff and n > _DENSE_JACOBIAN_LIMIT:
        raise InputError(
            f"model {model.name!r} is stiff with {n} states: the default stiff solver would form "
            f"a dense {n} x {n} Jacobian ({8 * n * n / 1e9:.1f} GB). Pass a solver: for tissue "
            "models scalebridge.pde.OperatorSplitting(dt=...), or diffrax.Tsit5() if explicit "
            "steps are stable")


# Rodas5 forms and inverts a dense n x n matrix at every step up to this many states;
# above, it runs on models whose Jacobian is sparse (sparse_jacobian)
_ROSENBROCK_STATE_LIMIT = 64

#: from this many states a Rosenbrock step uses the model's sparse Jacobian pattern
SPARSE_FROM = 32
_PATTERNS: dict = {}
# probe times: piecewise laws in time are seen on both sides of switches over many scales
_PROBE_TIMES = (0.0, 0.5, 7.0, 60.0, 900.0, 3.0e4)


def sparse_jacobian(model: Model):
    """The Rosenbrock steps' linear algebra for ``model``: a
    :class:`~scalebridge.solvers.sparse.SparseJacobian` for a model of at least
    :data:`SPARSE_FROM` states whose Jacobian compresses to at most half as many
    directional derivatives as it has states, else ``None`` (dense). The pattern is the
    union of the nonzeros of the dense Jacobian at the nominal point and at random points
    around it (:func:`scalebridge.solvers.sparse.probe`), found once per model; a model
    whose numbers are traced values (one passed through ``jax.jit``) stays dense."""
    n = len(model.state_names)
    if not SPARSE_FROM <= n <= _DENSE_JACOBIAN_LIMIT or \
            not all(_is_concrete(v) for v in jax.tree.leaves(model)):
        return None  # (the probes form dense Jacobians: at most 5,000 states)
    key = (model.rhs, model.state_names, model.parameter_names)
    if key not in _PATTERNS:
        _PATTERNS[key] = _probe_pattern(model)
        if len(_PATTERNS) > 32:
            _PATTERNS.pop(next(iter(_PATTERNS)))
    return _PATTERNS[key]


def _probe_pattern(model: Model):
    """:func:`sparse_jacobian`'s pattern of ``model``, or ``None`` where dense pays."""
    from .solvers.sparse import SparseJacobian, probe

    n = len(model.state_names)
    rng = np.random.default_rng(0)
    p0 = np.asarray(model.nominal, dtype=float)
    with jax.ensure_compile_time_eval():  # (also when called while tracing)
        y0 = np.asarray(model.initial_state(jnp.asarray(p0)), dtype=float)
    ys, ps = [y0], [p0]
    for _ in _PROBE_TIMES[1:]:
        ys.append(np.abs(y0) * rng.uniform(0.5, 2.0, n)
                  + rng.uniform(0.1, 1.0, n) * max(float(np.mean(np.abs(y0))), 1e-3))
        ps.append(np.where(p0 != 0, p0 * rng.uniform(0.5, 2.0, p0.shape),
                           rng.uniform(0.1, 1.0, p0.shape)))

    def f(t, y, p):
        return model.vector_field(t, y, p)

    # compiled ahead of time: the executable runs on concrete arrays also while a caller
    # is being traced
    jac = jax.jit(jax.jacfwd(f, argnums=1)).lower(0.0, y0, p0).compile()
    try:  # reverse mode for dense rows, where f has it (a while loop in f has not)
        jax.eval_shape(lambda y: jax.vjp(partial(f, 0.0, p=p0), y)[1](y), y0)
        reverse = True
    except (TypeError, ValueError, NotImplementedError):
        reverse = False
    sj = SparseJacobian.of(probe(jac, n, ys, ps, _PROBE_TIMES), reverse=reverse)
    return sj if sj.n_colours + sj.reverse.size <= n // 2 else None


def rosenbrock_fits(model: Model) -> bool:
    """Whether the Rosenbrock ensemble solvers suit ``model``: no state-triggered events,
    and at most 64 states or a sparse Jacobian (:func:`sparse_jacobian`)."""
    if any(e.trigger is not None for e in model.events):
        return False
    return len(model.state_names) <= _ROSENBROCK_STATE_LIMIT or \
        sparse_jacobian(model) is not None


def default_solver(model: Model, *, batched: bool = False):
    """The one rule for the default solver: Tsit5 for non-stiff models; for stiff ones
    Kvaerno5 (it differentiates in reverse mode too), or :class:`scalebridge.solvers.Rodas5`
    (each member with its own adaptive steps; much faster on small stiff models and on
    large sparse ones) for a batch that :func:`rosenbrock_fits` and for one run of a model
    of more than 64 states that fits."""
    if not model.stiff:
        return diffrax.Tsit5()
    large = len(model.state_names) > _ROSENBROCK_STATE_LIMIT
    if (batched or large) and rosenbrock_fits(model):
        from .solvers import Rodas5

        return Rodas5()
    _check_dense_jacobian(model)
    return diffrax.Kvaerno5()


#: the gradient of a scalar is taken by the adjoint from this many states and parameters
ADJOINT_FROM_STATES, ADJOINT_FROM_PARAMETERS = 65, 8


def gradient_sensitivities(model: Model, n_parameters: int) -> str:
    """The one rule for the gradient of one scalar of a model's simulations (a likelihood)
    with respect to ``n_parameters``: forward sensitivities cost one tangent per parameter,
    each cheaper than a solve (they share the step's factorisation and are vectorised); the
    discrete adjoint costs a few solves whatever the number of parameters (reverse mode
    through checkpointed steps). ``"adjoint"`` for a model of at least
    :data:`ADJOINT_FROM_STATES` states and :data:`ADJOINT_FROM_PARAMETERS` parameters
    (Chen et al. 2009, 500 states and 155 parameters: about 55 s against none within
    400 s), else ``"forward"``."""
    if len(model.state_names) >= ADJOINT_FROM_STATES and n_parameters >= ADJOINT_FROM_PARAMETERS:
        return "adjoint"
    return "forward"


def rosenbrock_for(n_members: int):
    """Rodas5 with the driver that suits a batch of ``n_members``: lockstep under 8 (one
    pass, no queue bookkeeping), the refill queue from 8 on (Bachmann, 36 simulations: 1.2 s
    per NLL against 2.3 s in lockstep)."""
    from .solvers import Rodas5

    return Rodas5(driver="lockstep") if n_members < 8 else Rodas5()


def _solve(model: Model, bounds, ts, jump_ts, p, y0, rtol, atol, solver, max_steps: int,
           adjoint, max_events: int = 100_000):
    """Integrate from ``bounds[0]`` to ``bounds[1]``, restarting at every time event. Returns
    states and observables at ``ts`` and a success flag.

    Each firing of a time event ends a segment; the segments' edges are the sorted event
    times clipped to the span (data, so new times do not recompile), and each segment saves
    at the output times clipped into it, keeping those that lie in it: an output at an
    event time belongs to the next segment and reports the state after the event."""
    term = diffrax.ODETerm(lambda t, y, args: model.vector_field(t, y, args[0]))
    t0, t1 = bounds[0], bounds[-1]
    # step_ts: land on every output time, so outputs carry the solver's own accuracy rather
    # than that of its (lower-order) dense interpolation
    jump_ts = _with_breakpoints(model, jump_ts, p, t0, t1)
    controller = diffrax.PIDController(rtol=rtol, atol=atol, step_ts=ts, jump_ts=jump_ts)
    kw = dict(solver=solver, stepsize_controller=controller, max_steps=max_steps,
              adjoint=adjoint, throw=False)
    state_events = tuple(e for e in model.events if e.trigger is not None)
    events = schedule(model.events)
    y, pc = y0, p
    if events is None:
        edges = jnp.stack([t0, t1])
    else:
        y, pc = events.fire_at(t0, y, pc)  # events at t0 act on the initial state
        edges = jnp.concatenate([t0[None], jnp.clip(events.times, t0, t1), t1[None]])
    triggers = Triggers(state_events, y, pc) if state_events else None
    if triggers is not None:
        y, pc, pending = triggers.start(t0, y, pc)
    n_seg = edges.shape[0] - 1
    ys = jnp.zeros((ts.shape[0], y.shape[0]), y.dtype)
    ps = jnp.zeros((ts.shape[0], pc.shape[0]), pc.dtype)
    ok = jnp.asarray(True)
    for k in range(n_seg):
        a, b = edges[k], edges[k + 1]
        last = k == n_seg - 1
        ts_k = jnp.clip(ts, a, b)
        if isinstance(solver, AbstractSegmentSolver):
            ys_k, y, ok_k = solver.integrate(model, a, b, ts_k, y, pc)
            ps_k = pc
        elif triggers is not None:
            ys_k, ps_k, y, pc, pending, ok_k = segment(triggers, term, kw, a, b, ts_k, y, pc,
                                                       pending, max_events)
        else:
            sol = diffrax.diffeqsolve(term, t0=a, t1=b, dt0=None, y0=y, args=(pc, None),
                                      saveat=_outputs_and_end(ts_k, b), **kw)
            ok_k = sol.result == diffrax.RESULTS.successful
            ys_k, y = sol.ys[0], sol.ys[1][0]
            ps_k = pc
        inside = ((ts >= a) & ((ts <= b) if last else (ts < b)))[:, None]
        ys = jnp.where(inside, ys_k, ys)
        ps = jnp.where(inside, ps_k, ps)
        ok = ok & ok_k
        if not last:  # the k-th firing, if it falls in (t0, t1]
            ye, pe = events.fire(k, b, y, pc)
            on = (events.times[k] > t0) & (events.times[k] <= t1)
            if triggers is not None:  # a time event may turn triggers true or false
                ye, pe, moved = triggers.instant(b, ye, pe, pending)
                pending = jax.tree.map(partial(jnp.where, on), moved, pending)
            y, pc = jnp.where(on, ye, y), jnp.where(on, pe, pc)
    ok = ok & jnp.all(jnp.isfinite(ys))
    obs = jax.vmap(model.observe)(ts, ys, ps)
    return ys, obs, ok


def _with_breakpoints(model: Model, jump_ts, p, t0, t1):
    """The input jumps and the model's breakpoints at ``p`` (those outside the span moved
    past its end, where the padding of :func:`_jump_times` sits)."""
    b = model.breakpoint_times(p)
    if b is None:
        return jump_ts
    b = jnp.where((b > t0) & (b < t1), b, t1 + (t1 - t0) + 1.0)
    return b if jump_ts is None else jnp.concatenate([jump_ts, b])


#: memory for the stored steps of a reverse-mode (checkpointed) Rosenbrock solve
CHECKPOINT_BYTES = 2**29


def _solve_ensemble_rosenbrock(model, bounds, ts, jump_ts, ps, y0s, rtol, atol, solver,
                               max_steps, reverse: bool = False):
    """The ensemble with a :mod:`scalebridge.solvers` Rosenbrock method (own control loop).
    ``reverse``: differentiable by ``jax.grad`` (the lockstep driver in a checkpointed
    loop that stores up to :data:`CHECKPOINT_BYTES` of member states)."""
    from .solvers.ensemble import Problem, solve_lockstep, solve_refill

    checkpoints = 0
    if reverse:  # a member's loop state: y, p, and the output tables of both
        n_out, n_y, n_p = ts.shape[0], y0s.shape[1], ps.shape[1]
        per_step = 8 * ps.shape[0] * ((n_out + 1) * (n_y + n_p) + 8)
        checkpoints = int(np.clip(CHECKPOINT_BYTES // per_step, 16, max_steps))
    pb = Problem(
        f=lambda t, y, p: model.vector_field(t, y, p), tab=solver.tableau, bounds=bounds, ts=ts,
        stops=jnp.zeros(0) if jump_ts is None else jump_ts,
        breakpoints=None if model.breakpoints is None else model.breakpoint_times,
        events=schedule(model.events), rtol=rtol, atol=atol, max_steps=max_steps,
        linear=sparse_jacobian(model), checkpoints=checkpoints)
    if solver.driver == "lockstep" or reverse:
        ys, ps_out, ok, _, _ = solve_lockstep(pb, ps, y0s)
    else:
        ys, ps_out, ok, _, _ = solve_refill(pb, ps, y0s, solver.slots or 16)
    obs = jax.vmap(jax.vmap(model.observe))(jnp.broadcast_to(ts, ys.shape[:2]), ys, ps_out)
    ys = jnp.where(ok[:, None, None], ys, jnp.nan)
    obs = jnp.where(ok[:, None, None], obs, jnp.nan)
    return ys, obs, ok


def _solve_ensemble(model, bounds, ts, jump_ts, ps, y0s, rtol, atol, solver, max_steps,
                    adjoint):
    from .solvers import AbstractRosenbrock

    if isinstance(solver, AbstractRosenbrock):  # (Simulator refuses state-triggered events)
        reverse = isinstance(adjoint, diffrax.RecursiveCheckpointAdjoint)
        return _solve_ensemble_rosenbrock(model, bounds, ts, jump_ts, ps, y0s, rtol, atol,
                                          solver, max_steps, reverse)

    def one(p, y0):
        ys, obs, ok = _solve(model, bounds, ts, jump_ts, p, y0, rtol, atol, solver,
                             max_steps, adjoint)
        nan = jnp.nan
        return jnp.where(ok, ys, nan), jnp.where(ok, obs, nan), ok

    return jax.vmap(one)(ps, y0s)


def _y0(model: Model, p, y0):
    if y0 is None:
        return model.initial_state(p)
    if isinstance(y0, Mapping):
        base = model.initial_state(p)
        for k, v in y0.items():
            base = base.at[model.state_index(k)].set(v)
        return base
    arr = jnp.asarray(y0, dtype=jnp.float64)
    if arr.shape != (len(model.state_names),):
        raise InputError(f"y0 has shape {arr.shape}, expected ({len(model.state_names)},) "
                         f"for states {model.state_names}")
    return arr


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _failure_message(model: Model, max_steps: int) -> str:
    return (f"simulation of model {model.name!r} failed: the solver hit max_steps={max_steps}, "
            "its step size collapsed, or the states became NaN/inf. Check parameters and the "
            "initial state, raise max_steps, or use a stiff solver (diffrax.Kvaerno5())")




def _jump_times(model: Model, t0: float, t_end: float):
    """The inputs' jump times in the span, padded past its end to a length that changes
    only by doubling (at least 8), so that a new pacing period or schedule is new data for
    the same compiled program; ``None`` for a model without inputs."""
    if not model.inputs:
        return None
    jumps = np.asarray(model.jump_times(t0, t_end), dtype=float)
    size = max(8, 1 << int(np.ceil(np.log2(max(jumps.size, 1)))))
    pad = np.full(size - jumps.size, t_end + (t_end - t0) + 1.0)
    return jnp.asarray(np.concatenate([jumps, pad]))


SENSITIVITIES = (None, "forward", "adjoint")


def _params_matrix(model: Model, param_sets) -> jax.Array:
    """An ``(n, n_params)`` array from an array, or a dict/DataFrame of varied columns."""
    if isinstance(param_sets, jax.core.Tracer):
        return param_sets
    base = np.asarray(model.parameter_values())
    if isinstance(param_sets, Mapping) or hasattr(param_sets, "columns"):
        cols = {k: np.asarray(param_sets[k], dtype=float) for k in
                (param_sets.columns if hasattr(param_sets, "columns") else param_sets)}
        sizes = {v.shape for v in cols.values()}
        if len(sizes) != 1 or len(next(iter(sizes))) != 1:
            raise InputError("param_sets columns must be 1-D and of equal length")
        n = next(iter(sizes))[0]
        out = np.tile(base, (n, 1))
        for k, v in cols.items():
            out[:, model.parameter_index(k)] = v
        return jnp.asarray(out)
    arr = np.asarray(param_sets, dtype=float)
    if arr.ndim != 2 or arr.shape[1] != base.size:
        raise InputError(
            f"param_sets has shape {arr.shape}, expected (n_members, {base.size}) for parameters "
            f"{model.parameter_names}; or pass a dict/DataFrame of the parameters that vary")
    return jnp.asarray(arr)


class Simulator(eqx.Module):
    """The simulation engine: one model on one time grid, compiled once.

    ``Simulator(model, times, *, t0=0, solver=None, rtol=1e-8, atol=1e-10,
    sensitivities=None, max_steps=100_000)``; then ``sim(params=None, y0=None)`` gives a
    :class:`~scalebridge.Solution` and ``sim.batch(params, y0=None)`` an
    :class:`~scalebridge.EnsembleSolution` of many parameter sets or initial states, each
    member with its own step control.

    The simulator is a pytree whose arrays are the model's numbers (nominal parameters,
    initial values, input data, event amounts) and the output times; the model's functions,
    the segment layout, the solver and the tolerances' kind are its static structure. A
    second simulator of the same model with new numbers (``model.with_parameters``, new
    ``Interpolated`` samples, a new pacing period, new output times of the same count) runs
    the program already compiled. Both calls are pure JAX functions of their arguments:
    they work under ``jax.jit`` and ``jax.vmap``, and under ``jax.grad`` / ``jax.jacfwd``
    as the sensitivities allow.

    ``solver``: ``None`` picks by :func:`default_solver` (per call: Kvaerno5 or Tsit5 for
    one run, :class:`scalebridge.solvers.Rodas5` for a stiff batch and for one run of a
    large model with a sparse Jacobian); a diffrax solver;
    a :mod:`scalebridge.solvers` Rosenbrock method (no state-triggered events); or a
    fixed-step segment solver such as operator splitting.

    ``sensitivities`` (how derivatives through the solve are taken), by one rule: a full
    Jacobian of the outputs, or the derivative along few parameters, is ``"forward"``
    (``jax.jacfwd``, ``jax.jvp``: one extra state vector per parameter; the likelihood's
    gradient and Fisher information); the gradient of one scalar with respect to many
    parameters of a large model is ``"adjoint"`` (``jax.grad``: the discrete adjoint,
    reverse mode through checkpointed steps, ``diffrax.RecursiveCheckpointAdjoint`` or,
    for the Rosenbrock methods, the same online checkpointing of their own loop; its cost
    does not grow with the number of parameters). :func:`gradient_sensitivities` is the
    rule :class:`~scalebridge.infer.Problem` follows. ``None`` is the adjoint for one run
    and direct differentiation for a batch (either mode), except with the Rosenbrock
    methods, where it is forward mode for one run too. The continuous backsolve adjoint
    is not offered: integrating the state backwards is unstable for dissipative models
    (on the 120-state chain of tests/test_engine.py its gradient is off by up to 1e13).
    """

    model: Model
    times: jax.Array
    bounds: jax.Array
    jumps: jax.Array | None
    rtol: jax.Array
    atol: jax.Array
    solver: object
    max_steps: int = eqx.field(static=True)
    sensitivities: str | None = eqx.field(static=True)

    def __init__(self, model: Model, times, *, t0: float = 0.0, solver=None,
                 rtol: float = 1e-8, atol: float = 1e-10, sensitivities: str | None = None,
                 max_steps: int = 100_000):
        if not isinstance(model, Model):
            raise InputError(f"model must be a scalebridge Model, got {type(model).__name__}")
        if sensitivities not in SENSITIVITIES:
            raise InputError(f"sensitivities={sensitivities!r} is unknown; use None, "
                             "'forward' or 'adjoint'")
        from .solvers import AbstractRosenbrock

        triggers = any(e.trigger is not None for e in model.events)
        if isinstance(solver, AbstractRosenbrock | AbstractSegmentSolver) and triggers:
            raise InputError(f"{type(solver).__name__} does not support state-triggered "
                             "events; pass a diffrax solver, e.g. solver=diffrax.Kvaerno5()")
        if not int(max_steps) > 0:
            raise InputError(f"max_steps must be positive, got {max_steps}")
        if isinstance(solver, AbstractSegmentSolver):
            solver.check(model)
        ts = _check_times(times, float(t0))
        self.model = model
        self.times = jnp.asarray(ts)
        self.bounds = jnp.asarray([float(t0), ts[-1]])
        self.jumps = _jump_times(model, float(t0), float(ts[-1]))
        self.rtol = jnp.asarray(rtol, dtype=jnp.float64)
        self.atol = jnp.asarray(atol, dtype=jnp.float64)
        self.solver = solver
        self.max_steps = int(max_steps)
        self.sensitivities = sensitivities

    # ----- the pure functions (traced; compiled by the calls below) -----------------------
    def _adjoint(self, batched: bool):
        if self.sensitivities == "forward":
            return diffrax.ForwardMode()
        if self.sensitivities == "adjoint" or not batched:
            return diffrax.RecursiveCheckpointAdjoint()
        return diffrax.DirectAdjoint()

    def solve(self, p, y0):
        """States, observables and success flag of one run from parameter vector ``p`` and
        initial state ``y0`` (pure; no checks)."""
        from .solvers import AbstractRosenbrock

        solver = default_solver(self.model) if self.solver is None else self.solver
        if isinstance(solver, AbstractRosenbrock):  # one member of the batched loop
            ys, obs, ok = self.solve_batch(p[None], y0[None])
            return ys[0], obs[0], ok[0]
        return _solve(self.model, self.bounds, self.times, self.jumps, p, y0, self.rtol,
                      self.atol, solver, self.max_steps, self._adjoint(False))

    def solve_batch(self, ps, y0s):
        """:meth:`solve` for the rows of ``ps`` and ``y0s`` (pure); failed members hold NaN."""
        solver = (default_solver(self.model, batched=True) if self.solver is None
                  else self.solver)
        return _solve_ensemble(self.model, self.bounds, self.times, self.jumps, ps, y0s,
                               self.rtol, self.atol, solver, self.max_steps,
                               self._adjoint(True))

    def at(self, times, t0=None) -> Simulator:
        """This simulator at other output times of the same count, from ``t0`` (default: the
        first time). The times may be traced, e.g. the windows of multiple shooting under
        ``jax.vmap``; traced times are not checked, so they must be non-decreasing from
        ``t0``. Input jumps stay those of the span the simulator was built for, so build it
        over the whole span the new times cover."""
        ts = jnp.asarray(times, dtype=jnp.float64)
        if ts.shape != self.times.shape:
            raise InputError(f"times has shape {ts.shape}, expected {self.times.shape} (the "
                             "count the simulator was built for)")
        start = ts[0] if t0 is None else jnp.asarray(t0, dtype=jnp.float64)
        if _is_concrete(ts) and _is_concrete(start):
            _check_times(np.asarray(ts), float(start))
        return eqx.tree_at(lambda s: (s.times, s.bounds), self,
                           (ts, jnp.stack([start, ts[-1]])))

    # ----- the public calls ---------------------------------------------------------------
    def __call__(self, params=None, y0=None, *, throw: bool = True) -> Solution:
        """One run: ``params`` ``None`` (nominal), ``{name: value}`` or a full vector;
        ``y0`` ``None`` (the model's initial state), ``{state: value}`` or a full vector.

        Raises :class:`~scalebridge.errors.SimulationError` when the solver fails; with
        ``throw=False`` a failed run gives NaN states and observables instead (for
        optimisers, which treat NaN as a failed trial point)."""
        model = self.model
        p = model.param_array(params)
        y = _y0(model, p, y0)
        if _is_concrete(y) and not np.all(np.isfinite(np.asarray(y))):
            finite = np.isfinite(np.asarray(y))
            bad = [n for n, ok in zip(model.state_names, finite, strict=True) if not ok]
            raise InputError(f"initial state is not finite for {', '.join(bad)}; give finite y0")
        ys, obs, ok = _solve_one_jit(self, p, y)
        if not throw:
            ys, obs = jnp.where(ok, ys, jnp.nan), jnp.where(ok, obs, jnp.nan)
        elif _is_concrete(ok):
            if not bool(ok):
                raise SimulationError(_failure_message(model, self.max_steps))
        else:
            ys = eqx.error_if(ys, ~ok, _failure_message(model, self.max_steps))
        return Solution(self.times, ys, obs, model.state_names, model.observable_names)

    def batch(self, params, y0=None, *, batch_size: int | None = None,
              progress=None) -> EnsembleSolution:
        """Many runs: ``params`` an ``(n, n_params)`` array or a dict/DataFrame of the
        parameters that vary (the others keep their nominal values); ``y0`` ``None`` (each
        member's model initial state) or an ``(n, n_states)`` array. Members run in
        batches of ``batch_size`` (all at once by default; the last batch is padded, so one
        compilation serves all), with ``progress(done, total)`` (e.g. a
        :class:`~scalebridge.Progress`) after each. A failing member
        is flagged in ``success`` and holds NaN; it never sinks the batch."""
        model = self.model
        ps = _params_matrix(model, params)
        n = ps.shape[0]
        if n == 0:
            raise InputError("param_sets is empty; give at least one parameter set")
        if y0 is None:
            y0s = jax.vmap(model.initial_state)(ps)
        else:
            y0s = jnp.asarray(y0, dtype=jnp.float64)
            if y0s.shape != (n, len(model.state_names)):
                raise InputError(f"y0 has shape {y0s.shape}, expected ({n}, "
                                 f"{len(model.state_names)})")
        names = (model.state_names, model.observable_names, model.parameter_names)
        if not (_is_concrete(ps) and _is_concrete(y0s)):  # traced: one pure solve
            ys, obs, ok = self.solve_batch(ps, y0s)
            return EnsembleSolution(self.times, ps, ys, obs, ok, *names)
        bs = n if batch_size is None else max(1, min(int(batch_size), n))
        parts = []
        for start in range(0, n, bs):
            pb, yb = ps[start:start + bs], y0s[start:start + bs]
            m = pb.shape[0]
            if m < bs:  # pad with copies of the first member so the batch shape stays fixed
                pb = jnp.concatenate([pb, jnp.repeat(pb[:1], bs - m, axis=0)])
                yb = jnp.concatenate([yb, jnp.repeat(yb[:1], bs - m, axis=0)])
            parts.append([a[:m] for a in _solve_batch_jit(self, pb, yb)])
            if progress is not None:
                progress(min(start + bs, n), n)
        ys, obs, ok = (jnp.concatenate(k) for k in zip(*parts, strict=True))
        return EnsembleSolution(self.times, ps, ys, obs, ok, *names)


def per_member_derivatives(solve, p_cols, y_cols):
    """``solve(ps, y0s) -> outputs`` (a pytree of per-member arrays) whose forward derivative
    is taken member by member along the parameter columns ``p_cols`` and state columns
    ``y_cols`` only: the sensitivities ``S_m`` of every member to its own
    ``(p[p_cols], y0[y_cols])`` come from one batched solve with ``len(p_cols) +
    len(y_cols)`` tangents, and any outer derivative is the product ``S_m @ dz_m``. With
    many outer directions (a likelihood over many estimated parameters, each member
    depending on few of them) this is cheaper than carrying every direction through the
    solve. The caller promises that tangents outside the columns are zero."""
    p_cols, y_cols = np.asarray(p_cols, np.int64), np.asarray(y_cols, np.int64)
    k_p = p_cols.size

    @jax.custom_jvp
    def seeded(ps, y0s):
        return solve(ps, y0s)

    @seeded.defjvp
    def rule(primals, tangents):
        ps, y0s = primals
        dps, dy0s = tangents
        k = k_p + y_cols.size
        seed_p = np.zeros((k,) + ps.shape)
        seed_p[np.arange(k_p), :, p_cols] = 1.0
        seed_y = np.zeros((k,) + y0s.shape)
        seed_y[k_p + np.arange(y_cols.size), :, y_cols] = 1.0
        out, sens = jax.vmap(lambda a, b: jax.jvp(solve, (ps, y0s), (a, b)),
                             out_axes=(None, 0))(jnp.asarray(seed_p, ps.dtype),
                                                 jnp.asarray(seed_y, y0s.dtype))
        dz = jnp.concatenate([dps[:, p_cols], dy0s[:, y_cols]], axis=1)  # (members, k)
        return out, jax.tree.map(lambda s: jnp.einsum("km...,mk->m...", s, dz), sens)

    return seeded


_solve_one_jit = eqx.filter_jit(Simulator.solve)
_solve_batch_jit = eqx.filter_jit(Simulator.solve_batch)


def simulate(model: Model, times, *, params=None, y0=None, t0: float = 0.0, solver=None,
             rtol: float = 1e-8, atol: float = 1e-10, max_steps: int = 100_000,
             sensitivities: str | None = None, throw: bool = True) -> Solution:
    """Solve ``model`` from ``t0`` and report states and observables at ``times``: one
    call of :class:`Simulator` (see there for ``solver``, ``sensitivities`` and
    ``throw``)."""
    sim = Simulator(model, times, t0=t0, solver=solver, rtol=rtol, atol=atol,
                    sensitivities=sensitivities, max_steps=max_steps)
    return sim(params, y0, throw=throw)


def simulate_ensemble(model: Model, param_sets, times, *, y0=None, t0: float = 0.0,
                      solver=None, rtol: float = 1e-8, atol: float = 1e-10,
                      max_steps: int = 100_000, batch_size: int | None = None,
                      progress=None) -> EnsembleSolution:
    """Simulate many parameter sets in one compiled call: :meth:`Simulator.batch`.

    ``param_sets``: an ``(n, n_params)`` array, or a dict/DataFrame of the parameters that
    vary. The default solver for stiff models is :class:`scalebridge.solvers.Rodas5`, each
    member with its own adaptive steps (:func:`default_solver`)."""
    sim = Simulator(model, times, t0=t0, solver=solver, rtol=rtol, atol=atol,
                    max_steps=max_steps)
    return sim.batch(param_sets, y0, batch_size=batch_size, progress=progress)


# pseudo-time steps of the polish after the integration, as fractions of the Jacobian's
# time scale: they grow by 100x a step (the tangents' rounding stays ~100 eps, see
# _polish) and end with two Newton-like steps
POLISH_STEPS = (1e1, 1e3, 1e5, 1e7, 1e9, 1e10, 1e10)


def _polish(model: Model, t, p, y, rtol, atol):
    """Pseudo-transient continuation (Kelley & Keyes 1998, SIAM J Numer Anal 35:508) from a
    near steady state ``y``: backward-Euler steps ``(I/h - J) dy = f(y)`` with ``h`` growing
    from 10 to 1e10 times the Jacobian's time scale (its largest entry with the states
    scaled by their tolerances; :data:`POLISH_STEPS`). The last are Newton steps on
    ``f(y) = 0`` that keep every linear conservation law exactly (``c^T dy = h c^T f =
    0``), where plain Newton's Jacobian is singular. A step is kept only where it lowers
    the scaled residual, so the result is the integration's state or closer to the exact
    steady state.

    Derivatives: every step updates the tangent as if taken, with the iteration matrix held
    constant, ``dy <- dy + (I/h - J)^-1 (J dy + f_p dp)``: each mode with ``|lambda| >>
    1/h`` converges to the implicit function theorem's tangent, and the conserved totals
    (the null space of ``J``) keep what they came with, so the tangent going in may be that
    of the initial state (:func:`steady_states` integrates without derivatives). ``h``
    grows step by step because the solve's rounding in the null space grows with
    ``h |J dy + f_p dp|``, which the previous step has made small. The steps run in a loop,
    with one copy of ``f`` and its Jacobian in the program."""
    fixed = jax.lax.stop_gradient(p)
    steps = jnp.asarray(POLISH_STEPS, y.dtype)

    def f(y, p=p):
        return model.vector_field(t, y, p)

    def scaled(v, y):
        return jnp.max(jnp.abs(v) / (atol + rtol * jnp.abs(y)))

    eye = jnp.eye(y.shape[0], dtype=y.dtype)

    def step(i, y):
        y0 = jax.lax.stop_gradient(y)
        fy, jac = f(y), jax.jacfwd(lambda z: f(z, fixed))(y0)
        w = atol + rtol * jnp.abs(y0)  # the Jacobian's time scale in the error norm's units
        rate = jnp.maximum(jnp.max(jnp.abs(jac * w[None, :] / w[:, None])), 1e-300)
        new = y + jnp.linalg.solve((rate / steps[i]) * eye - jac, fy)
        new0 = jax.lax.stop_gradient(new)
        finite = jnp.all(jnp.isfinite(new0))
        keep = finite & (scaled(f(new0, fixed), new0) < scaled(jax.lax.stop_gradient(fy), y0))
        moved = jnp.where(finite, new, y)  # the tangent to carry
        return jnp.where(keep, new0, y0) + (moved - jax.lax.stop_gradient(moved))

    return jax.lax.fori_loop(0, len(POLISH_STEPS), step, y)


def steady_states(model: Model, ps, y0s, rtol, atol, max_steps: int):
    """The steady states reached from the rows of ``y0s`` under the rows of ``ps`` (pure):
    integrate until ``|dy/dt| <= 10 (atol + rtol |y|)`` (RMS norms, as diffrax's
    steady-state event), then converge the rest of the way by :func:`_polish` (so the
    state, and anything computed from it, is a smooth function of ``p``); NaN where none
    is reached. The integration is one batched Rodas5 loop (each member stops at its own
    steady state: lockstep under 8 members, the refill queue from 8 on) for models of up
    to 64 states or with a sparse Jacobian, else vmapped diffrax (Kvaerno5 or Tsit5). It
    carries no derivatives: the polish gives those of the steady state (those of the
    implicit function theorem, with the conserved totals' from ``y0s``), so a derivative
    costs no tangents in the loop.
    Events do not act: a steady state is one of the vector field."""
    ps_in, y0s_in = ps, y0s
    ps, y0s = jax.lax.stop_gradient(ps), jax.lax.stop_gradient(y0s)
    linear = sparse_jacobian(model)
    if len(model.state_names) <= _ROSENBROCK_STATE_LIMIT or linear is not None:
        from .solvers import RODAS5
        from .solvers.ensemble import Problem, solve_lockstep, solve_refill

        pb = Problem(
            f=lambda t, y, p: model.vector_field(t, y, p), tab=RODAS5,
            bounds=jnp.asarray([0.0, jnp.inf]), ts=jnp.asarray([jnp.inf]), stops=jnp.zeros(0),
            breakpoints=None if model.breakpoints is None else model.breakpoint_times,
            events=None, rtol=rtol, atol=atol, max_steps=max_steps,
            steady=True, linear=linear)
        solver = rosenbrock_for(ps.shape[0])
        if solver.driver == "lockstep":
            ys, _, ok, _, ts = solve_lockstep(pb, ps, y0s)
        else:
            ys, _, ok, _, ts = solve_refill(pb, ps, y0s, solver.slots or 16)
        ys = ys[:, 0]
    else:
        term = diffrax.ODETerm(lambda t, y, args: model.vector_field(t, y, args))

        def one(p, y0):
            sol = diffrax.diffeqsolve(
                term, default_solver(model), 0.0, jnp.inf, None, y0, args=p,
                stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol, dtmin=None),
                event=diffrax.Event(diffrax.steady_state_event(rtol=rtol * 10,
                                                               atol=atol * 10)),
                max_steps=max_steps, adjoint=diffrax.ForwardMode(), throw=False)
            return sol.ys[-1], sol.result == diffrax.RESULTS.event_occurred, sol.ts[-1]

        ys, ok, ts = jax.vmap(one)(ps, y0s)
    ys = ys + (y0s_in - y0s)  # values of the integration, tangents of y0s
    y = jax.vmap(lambda t, p, y: _polish(model, t, p, y, rtol, atol))(ts, ps_in, ys)
    return jnp.where(ok[:, None], y, jnp.nan)


def steady_state_pure(model: Model, p, y0, rtol, atol, max_steps: int):
    """:func:`steady_states` of one member."""
    return steady_states(model, p[None], y0[None], rtol, atol, max_steps)[0]


_steady_state_jit = eqx.filter_jit(steady_state_pure)


def steady_state(model: Model, params=None, y0=None, *, rtol: float = 1e-8,
                 atol: float = 1e-10, max_steps: int = 100_000) -> jax.Array:
    """The steady state of ``model`` reached from ``y0`` (default: its initial state) under
    ``params`` (as in :func:`simulate`): integrated until the time derivative is within ten
    times the tolerances, then converged to rounding by :func:`_polish`. Raises
    :class:`~scalebridge.errors.SimulationError` when no steady state is reached within
    ``max_steps`` (oscillations, unbounded growth)."""
    if not isinstance(model, Model):
        raise InputError(f"model must be a scalebridge Model, got {type(model).__name__}")
    p = model.param_array(params)
    y = _y0(model, p, y0)
    out = _steady_state_jit(model, p, y, jnp.asarray(rtol, float), jnp.asarray(atol, float),
                            int(max_steps))
    if _is_concrete(out) and not bool(jnp.all(jnp.isfinite(out))):
        raise SimulationError(f"model {model.name!r} reached no steady state within "
                              f"max_steps={max_steps} (it oscillates, grows without bound or "
                              "needs more steps); raise max_steps or check the parameters")
    return out
