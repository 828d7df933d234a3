"""simulate() and simulate_ensemble(): solve a Model's ODEs with diffrax.

The time axis is split at the model's event times into segments; each segment is one
``diffrax.diffeqsolve`` that saves at the output times inside it, and the events are
applied between segments. Which output times fall in which segment is decided outside
the compiled function (it fixes array shapes), while the times themselves, parameters and
initial states are traced, so new values never recompile.
"""

from __future__ import annotations

from collections.abc import Mapping

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .errors import InputError, SimulationError
from .model.model import Model
from .solution import EnsembleSolution, Solution
from .solvers.segment import AbstractSegmentSolver


class _Plan(eqx.Module):
    """Static layout of a simulation: per segment, the slice of output times it saves and
    the events applied at its end."""

    slices: tuple[tuple[int, int], ...] = eqx.field(static=True)
    fire: tuple[tuple[int, ...], ...] = eqx.field(static=True)
    n_at_end: int = eqx.field(static=True)  # outputs at t_end that see events fired there


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


def _plan(model: Model, ts: np.ndarray, t0: float):
    """Segment boundaries (traced later) and the static plan."""
    t_end = float(ts[-1])
    ev = sorted({t for e in model.events for t in e.times if t0 < t < t_end})
    bounds = [t0, *ev, t_end]
    slices, fire = [], []
    for k in range(len(bounds) - 1):
        a, b = bounds[k], bounds[k + 1]
        last = k == len(bounds) - 2
        lo = int(np.searchsorted(ts, a, side="left"))
        hi = int(np.searchsorted(ts, b, side="right" if last else "left"))
        slices.append((lo, hi))
        fire.append(tuple(i for i, e in enumerate(model.events) if b in e.times))
    # events exactly at t0 act on the initial state
    at_t0 = tuple(i for i, e in enumerate(model.events) if t0 in e.times)
    n_end = int(np.sum(ts == t_end)) if fire[-1] else 0
    plan = _Plan(slices=tuple(slices), fire=((at_t0,) + tuple(fire)), n_at_end=n_end)
    return np.asarray(bounds, dtype=float), plan


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


def _default_solver(model: Model):
    _check_dense_jacobian(model)
    return diffrax.Kvaerno5() if model.stiff else diffrax.Tsit5()


def _solve(model: Model, plan: _Plan, bounds, ts, jump_ts, p, y0, rtol, atol,
           solver, max_steps: int, adjoint, max_events: int = 1000):
    """Integrate over all segments. Returns states and observables at ``ts`` and a success
    flag."""
    term = diffrax.ODETerm(lambda t, y, args: model.vector_field(t, y, args[0]))
    # step_ts: land on every output time, so outputs carry the solver's own accuracy rather
    # than that of its (lower-order) dense interpolation
    controller = diffrax.PIDController(rtol=rtol, atol=atol, step_ts=ts, jump_ts=jump_ts)
    kw = dict(solver=solver, stepsize_controller=controller, max_steps=max_steps,
              adjoint=adjoint, throw=False)
    state_events = tuple(e for e in model.events if e.trigger is not None)
    y, pc = y0, p
    for i in plan.fire[0]:
        y, pc = model.events[i].affect(bounds[0], y, pc)
    armed = jnp.stack([e.trigger(bounds[0], y, pc) <= 0 for e in state_events]) \
        if state_events else None
    ys_parts, ps_parts, ok = [], [], jnp.asarray(True)
    for k, (lo, hi) in enumerate(plan.slices):
        a, b = bounds[k], bounds[k + 1]
        if isinstance(solver, AbstractSegmentSolver):
            ys_k, y, ok_k = solver.integrate(model, a, b, ts[lo:hi], y, pc)
            ps_k = jnp.broadcast_to(pc, (hi - lo, pc.size))
        elif state_events:
            ys_k, ps_k, y, pc, armed, ok_k = _segment_with_triggers(
                term, kw, state_events, a, b, ts[lo:hi], y, pc, armed, rtol, atol, max_events)
        else:
            sol = diffrax.diffeqsolve(term, t0=a, t1=b, dt0=None, y0=y, args=(pc, None),
                                      saveat=_outputs_and_end(ts[lo:hi], b), **kw)
            ok_k = sol.result == diffrax.RESULTS.successful
            ys_k, y = sol.ys[0][:hi - lo], sol.ys[1][0]
            ps_k = jnp.broadcast_to(pc, (hi - lo, pc.size))
        ok = ok & ok_k
        ys_parts.append(ys_k)
        ps_parts.append(ps_k)
        for i in plan.fire[k + 1]:
            y, pc = model.events[i].affect(b, y, pc)
    ys, ps = jnp.concatenate(ys_parts), jnp.concatenate(ps_parts)
    if plan.n_at_end:  # events at the final time: report the state after them
        ys = ys.at[-plan.n_at_end:].set(y)
        ps = ps.at[-plan.n_at_end:].set(pc)
    ok = ok & jnp.all(jnp.isfinite(ys))
    obs = jax.vmap(model.observe)(ts, ys, ps)
    return ys, obs, ok


def _outputs_and_end(ts, t1):
    """Save at the output times and, separately, the state where the solve stops. (With
    no output times, a dummy save at ``t1`` keeps the layout; callers slice it away.)"""
    ts = ts if ts.shape[0] else jnp.reshape(t1, (1,))
    return diffrax.SaveAt(subs=[diffrax.SubSaveAt(ts=ts), diffrax.SubSaveAt(t1=True)])


def _segment_with_triggers(term, kw, events, a, b, ts, y, p, armed, rtol, atol, max_events):
    """Integrate ``[a, b]`` with state-triggered events: stop at each zero crossing (root
    found), apply the event, restart. An armed event watches its trigger ``g`` rising
    through zero; after firing it watches ``-g`` instead, which re-arms it once ``g`` is
    negative again (a crossing that only re-arms applies nothing)."""
    import optimistix as optx

    n = ts.shape[0]
    # Newton stops when both the step in t and |g| are small; |g| is divided by the size of
    # the state at the segment start, so that a threshold of 1e5 (nM) can be met to rounding
    g_scale = 1.0 + jnp.max(jnp.abs(y))
    cond = [lambda t, y, args, i=i, **_: jnp.where(args[1][i], 1.0, -1.0)
            * events[i].trigger(t, y, args[0]) / g_scale for i in range(len(events))]
    event = diffrax.Event(cond, root_finder=optx.Newton(rtol=1e-12, atol=1e-12),
                          direction=True)

    def body(carry):
        t, y, p, armed, out_y, out_p, ok, _, count = carry
        sol = diffrax.diffeqsolve(term, t0=t, t1=b, dt0=None, y0=y, args=(p, armed),
                                  saveat=_outputs_and_end(jnp.clip(ts, t, b), b), event=event,
                                  **kw)
        stopped = sol.result == diffrax.RESULTS.event_occurred
        ok = ok & ((sol.result == diffrax.RESULTS.successful) | stopped)
        ys_out, t_stop, y_stop = sol.ys[0][:n], sol.ts[1][0], sol.ys[1][0]
        mask = jnp.stack(sol.event_mask) & stopped
        keep = (ts >= t) & jnp.where(stopped, ts < t_stop, ts <= b)
        out_y = jnp.where(keep[:, None], ys_out, out_y)
        out_p = jnp.where(keep[:, None], p, out_p)
        fired = mask & armed
        g_before = jnp.stack([e.trigger(t_stop, y_stop, p) for e in events])
        for i, e in enumerate(events):
            y_new, p_new = e.affect(t_stop, y_stop, p)
            y_stop = jnp.where(fired[i], y_new, y_stop)
            p = jnp.where(fired[i], p_new, p)
        # a fired event stays armed only if its affect made the trigger clearly false (a
        # root found a hair before the crossing must not fire twice); a crossing of a
        # disarmed event re-arms it
        g = jnp.stack([e.trigger(t_stop, y_stop, p) for e in events])
        false_again = (g < 0) & (g < g_before - 1e-12 * (1.0 + jnp.abs(g_before)))
        armed = jnp.where(fired, false_again, armed | mask)
        at_stop = (stopped & (ts == t_stop))[:, None]
        out_y = jnp.where(at_stop, y_stop, out_y)
        out_p = jnp.where(at_stop, p, out_p)
        return t_stop, y_stop, p, armed, out_y, out_p, ok, ~stopped, count + 1

    init = (jnp.asarray(a, float), y, p, armed, jnp.full((n, y.size), jnp.nan),
            jnp.full((n, p.size), jnp.nan), jnp.asarray(True), jnp.asarray(False), 0)
    t, y, p, armed, out_y, out_p, ok, done, _ = eqx.internal.while_loop(
        lambda c: ~c[7] & c[6] & (c[8] < max_events), body, init,
        max_steps=max_events, kind="checkpointed")
    return out_y, out_p, y, p, armed, ok & done


_solve_jit = eqx.filter_jit(_solve)


def _compose_events(model: Model, which: tuple[int, ...]):
    if not which:
        return None

    def fire(t, y, p):
        for i in which:
            y, p = model.events[i].affect(t, y, p)
        return y, p

    return fire


def _solve_ensemble_rosenbrock(model, plan, bounds, ts, jump_ts, ps, y0s, rtol, atol, solver,
                               max_steps):
    """The ensemble with a :mod:`scalebridge.solvers` Rosenbrock method (own control loop)."""
    from .solvers.ensemble import Problem, solve_lockstep, solve_refill

    pb = Problem(
        f=lambda t, y, p: model.vector_field(t, y, p), tab=solver.tableau, bounds=bounds, ts=ts,
        stops=jnp.zeros(0) if jump_ts is None else jump_ts,
        events0=_compose_events(model, plan.fire[0]),
        events=[_compose_events(model, f) for f in plan.fire[1:]],
        rtol=rtol, atol=atol, max_steps=max_steps)
    if solver.driver == "lockstep":
        ys, ps_out, ok, _ = solve_lockstep(pb, ps, y0s)
    else:
        ys, ps_out, ok, _ = solve_refill(pb, ps, y0s, solver.slots or 16)
    obs = jax.vmap(jax.vmap(model.observe))(jnp.broadcast_to(ts, ys.shape[:2]), ys, ps_out)
    ys = jnp.where(ok[:, None, None], ys, jnp.nan)
    obs = jnp.where(ok[:, None, None], obs, jnp.nan)
    return ys, obs, ok


def _solve_ensemble(model, plan, bounds, ts, jump_ts, ps, y0s, rtol, atol, solver, max_steps,
                    adjoint):
    from .solvers import AbstractRosenbrock

    if isinstance(solver, AbstractRosenbrock):
        if any(e.trigger is not None for e in model.events):
            raise InputError(f"{type(solver).__name__} does not support state-triggered "
                             "events; pass a diffrax solver, e.g. solver=diffrax.Kvaerno5()")
        return _solve_ensemble_rosenbrock(model, plan, bounds, ts, jump_ts, ps, y0s, rtol, atol,
                                          solver, max_steps)

    def one(p, y0):
        ys, obs, ok = _solve(model, plan, bounds, ts, jump_ts, p, y0, rtol, atol, solver,
                             max_steps, adjoint)
        nan = jnp.nan
        return jnp.where(ok, ys, nan), jnp.where(ok, obs, nan), ok

    return jax.vmap(one)(ps, y0s)


_solve_ensemble_jit = eqx.filter_jit(_solve_ensemble)


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


def simulate(
    model: Model,
    times,
    *,
    params=None,
    y0=None,
    t0: float = 0.0,
    solver=None,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    max_steps: int = 100_000,
    adjoint: diffrax.AbstractAdjoint | None = None,
    throw: bool = True,
) -> Solution:
    """Solve ``model`` from ``t0`` and report states and observables at ``times``.

    ``params``: ``None`` (nominal values), ``{name: value}`` or a full vector. ``y0``:
    ``None`` (the model's initial state), ``{state: value}`` or a full vector.
    ``solver``: a diffrax solver (by default Kvaerno5 for stiff models, Tsit5 otherwise),
    or one of scalebridge's own fixed-step solvers (e.g. operator splitting for tissue
    models, :class:`~scalebridge.solvers.segment.AbstractSegmentSolver`).
    :class:`scalebridge.solvers.Rodas5` / ``Rodas4`` are much faster on small stiff models
    (no state-triggered events); they support forward-mode derivatives (``jax.jvp``,
    ``jax.jacfwd``) only.
    ``adjoint``: how derivatives are taken, e.g. ``diffrax.ForwardMode()`` for
    ``jax.jacfwd`` with respect to few parameters (default: reverse-mode checkpointing).

    Raises :class:`~scalebridge.errors.SimulationError` when the solver fails; with
    ``throw=False`` a failed solve gives NaN states and observables instead (for use
    inside optimisers, which treat NaN as a failed trial point).
    """
    if not isinstance(model, Model):
        raise InputError(f"model must be a scalebridge Model, got {type(model).__name__}")
    from .solvers import AbstractRosenbrock

    if isinstance(solver, AbstractRosenbrock) and any(e.trigger is not None
                                                      for e in model.events):
        raise InputError(f"{type(solver).__name__} does not support state-triggered events; "
                         "pass a diffrax solver, e.g. solver=diffrax.Kvaerno5()")
    if isinstance(solver, AbstractSegmentSolver) and any(e.trigger is not None
                                                         for e in model.events):
        raise InputError(f"{type(solver).__name__} does not handle state-triggered events; "
                         "use a diffrax solver for this model")
    ts = _check_times(times, float(t0))
    p = model.param_array(params)
    y = _y0(model, p, y0)
    if _is_concrete(y) and not bool(jnp.all(jnp.isfinite(y))):
        finite = np.isfinite(np.asarray(y))
        bad = [n for n, ok in zip(model.state_names, finite, strict=True) if not ok]
        raise InputError(f"initial state is not finite for {', '.join(bad)}; give finite y0")
    bounds, plan = _plan(model, ts, float(t0))
    jump = jnp.asarray(model.jump_times(float(t0), float(ts[-1])))
    args = (model, plan, jnp.asarray(bounds), jnp.asarray(ts), jump if jump.size else None)
    if isinstance(solver, AbstractRosenbrock):  # one member of the ensemble loop
        ys, obs, ok = _solve_ensemble_jit(
            *args, p[None], y[None], jnp.asarray(rtol, float), jnp.asarray(atol, float),
            solver, int(max_steps), None)
        ys, obs, ok = ys[0], obs[0], ok[0]
    else:
        ys, obs, ok = _solve_jit(
            *args, p, y, jnp.asarray(rtol, float), jnp.asarray(atol, float),
            solver or _default_solver(model), int(max_steps),
            adjoint or diffrax.RecursiveCheckpointAdjoint(),
        )
    if not throw:
        ys, obs = jnp.where(ok, ys, jnp.nan), jnp.where(ok, obs, jnp.nan)
    elif _is_concrete(ok):
        if not bool(ok):
            raise SimulationError(_failure_message(model, max_steps))
    else:
        ys = eqx.error_if(ys, ~ok, _failure_message(model, max_steps))
    return Solution(jnp.asarray(ts), ys, obs, model.state_names, model.observable_names)


def _default_ensemble_solver(model: Model):
    from .solvers import Rodas5

    if not model.stiff:
        return diffrax.Tsit5()
    _check_dense_jacobian(model)
    if any(e.trigger is not None for e in model.events):
        return diffrax.Kvaerno5()
    return Rodas5()


def _param_matrix(model: Model, param_sets) -> jax.Array:
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


def simulate_ensemble(
    model: Model,
    param_sets,
    times,
    *,
    y0=None,
    t0: float = 0.0,
    solver=None,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    max_steps: int = 100_000,
    batch_size: int | None = None,
    progress=None,
) -> EnsembleSolution:
    """Simulate many parameter sets in one vmapped, jit-compiled call.

    ``param_sets``: an ``(n, n_params)`` array, or a dict/DataFrame of the parameters that
    vary (the others keep their nominal values). ``y0``: ``None`` (each member's model
    initial state) or an ``(n, n_states)`` array. Members are run in batches of
    ``batch_size`` (all at once by default; the last batch is padded, so one compilation
    serves all); ``progress(done, total)`` is called after each batch. A failing member is
    flagged in ``success`` and holds NaN; it never sinks the batch.

    ``solver``: a :mod:`scalebridge.solvers` method (default for stiff models:
    :class:`scalebridge.solvers.Rodas5`, each member with its own adaptive steps) or a diffrax
    solver (``jax.vmap`` of ``diffrax.diffeqsolve``; default Tsit5 for non-stiff models).
    """
    if not isinstance(model, Model):
        raise InputError(f"model must be a scalebridge Model, got {type(model).__name__}")
    ts = _check_times(times, float(t0))
    ps = _param_matrix(model, param_sets)
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
    bounds, plan = _plan(model, ts, float(t0))
    jump = jnp.asarray(model.jump_times(float(t0), float(ts[-1])))
    bs = n if batch_size is None else max(1, min(int(batch_size), n))
    static = (solver or _default_ensemble_solver(model), int(max_steps),
              diffrax.DirectAdjoint())
    ys_all, obs_all, ok_all = [], [], []
    for start in range(0, n, bs):
        pb, yb = ps[start:start + bs], y0s[start:start + bs]
        m = pb.shape[0]
        if m < bs:  # pad with copies of the first member so the batch shape stays fixed
            pb = jnp.concatenate([pb, jnp.repeat(pb[:1], bs - m, axis=0)])
            yb = jnp.concatenate([yb, jnp.repeat(yb[:1], bs - m, axis=0)])
        ys, obs, ok = _solve_ensemble_jit(
            model, plan, jnp.asarray(bounds), jnp.asarray(ts), jump if jump.size else None,
            pb, yb, jnp.asarray(rtol, float), jnp.asarray(atol, float), *static)
        ys_all.append(ys[:m])
        obs_all.append(obs[:m])
        ok_all.append(ok[:m])
        if progress is not None:
            progress(min(start + bs, n), n)
    return EnsembleSolution(
        jnp.asarray(ts), ps, jnp.concatenate(ys_all), jnp.concatenate(obs_all),
        jnp.concatenate(ok_all), model.state_names, model.observable_names,
        model.parameter_names)
