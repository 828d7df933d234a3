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


def _default_solver(model: Model):
    return diffrax.Kvaerno5() if model.stiff else diffrax.Tsit5()


def _solve(model: Model, plan: _Plan, bounds, ts, jump_ts, p, y0, rtol, atol,
           solver, max_steps: int, adjoint):
    """Integrate over all segments. Returns states at ``ts`` and a success flag."""
    term = diffrax.ODETerm(lambda t, y, args: model.vector_field(t, y, args))
    # step_ts: land on every output time, so outputs carry the solver's own accuracy rather
    # than that of its (lower-order) dense interpolation
    controller = diffrax.PIDController(rtol=rtol, atol=atol, step_ts=ts, jump_ts=jump_ts)
    y, pc = y0, p
    for i in plan.fire[0]:
        y, pc = model.events[i].affect(bounds[0], y, pc)
    pieces, ok = [], jnp.asarray(True)
    for k, (lo, hi) in enumerate(plan.slices):
        saveat = diffrax.SaveAt(ts=ts[lo:hi], t1=True) if hi > lo else diffrax.SaveAt(t1=True)
        sol = diffrax.diffeqsolve(
            term, solver, bounds[k], bounds[k + 1], None, y, args=pc, saveat=saveat,
            stepsize_controller=controller, max_steps=max_steps, throw=False, adjoint=adjoint,
        )
        ok = ok & (sol.result == diffrax.RESULTS.successful)
        if hi > lo:
            pieces.append(sol.ys[:-1])
        y = sol.ys[-1]
        for i in plan.fire[k + 1]:
            y, pc = model.events[i].affect(bounds[k + 1], y, pc)
    ys = jnp.concatenate(pieces, axis=0)
    if plan.n_at_end:  # events at the final time: report the state after them
        ys = ys.at[-plan.n_at_end:].set(y)
    ok = ok & jnp.all(jnp.isfinite(ys))
    obs = jax.vmap(model.observe, in_axes=(0, 0, None))(ts, ys, p)
    return ys, obs, ok


_solve_jit = eqx.filter_jit(_solve)


def _solve_ensemble(model, plan, bounds, ts, jump_ts, ps, y0s, rtol, atol, solver, max_steps,
                    adjoint):
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
    solver: diffrax.AbstractSolver | None = None,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    max_steps: int = 100_000,
    adjoint: diffrax.AbstractAdjoint | None = None,
) -> Solution:
    """Solve ``model`` from ``t0`` and report states and observables at ``times``.

    ``params``: ``None`` (nominal values), ``{name: value}`` or a full vector. ``y0``:
    ``None`` (the model's initial state), ``{state: value}`` or a full vector.
    ``solver``: a diffrax solver; by default Kvaerno5 for stiff models, Tsit5 otherwise.
    ``adjoint``: how derivatives are taken, e.g. ``diffrax.ForwardMode()`` for
    ``jax.jacfwd`` with respect to few parameters (default: reverse-mode checkpointing).

    Raises :class:`~scalebridge.errors.SimulationError` when the solver fails.
    """
    if not isinstance(model, Model):
        raise InputError(f"model must be a scalebridge Model, got {type(model).__name__}")
    ts = _check_times(times, float(t0))
    p = model.param_array(params)
    y = _y0(model, p, y0)
    if _is_concrete(y) and not bool(jnp.all(jnp.isfinite(y))):
        finite = np.isfinite(np.asarray(y))
        bad = [n for n, ok in zip(model.state_names, finite, strict=True) if not ok]
        raise InputError(f"initial state is not finite for {', '.join(bad)}; give finite y0")
    bounds, plan = _plan(model, ts, float(t0))
    jump = jnp.asarray(model.jump_times(float(t0), float(ts[-1])))
    ys, obs, ok = _solve_jit(
        model, plan, jnp.asarray(bounds), jnp.asarray(ts), jump if jump.size else None, p, y,
        jnp.asarray(rtol, float), jnp.asarray(atol, float),
        solver or _default_solver(model), int(max_steps),
        adjoint or diffrax.RecursiveCheckpointAdjoint(),
    )
    if _is_concrete(ok):
        if not bool(ok):
            raise SimulationError(_failure_message(model, max_steps))
    else:
        ys = eqx.error_if(ys, ~ok, _failure_message(model, max_steps))
    return Solution(jnp.asarray(ts), ys, obs, model.state_names, model.observable_names)


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
    solver: diffrax.AbstractSolver | None = None,
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
    static = (solver or _default_solver(model), int(max_steps), diffrax.DirectAdjoint())
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
