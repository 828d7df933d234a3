"""Adaptive Rosenbrock integration of many members at once, as one ``lax.while_loop``.

Each member carries its own time, step size, step count and status, so it steps
with its own adaptive step control and lands exactly on output times, input jump times,
breakpoints and event times. Two drivers:

- ``lockstep``: ``jax.vmap`` of a per-member loop; every member iterates until the slowest
  is done (finished members idle).
- ``refill`` (default): a fixed number of slots works through a queue of members; when a
  member finishes, its slot writes the outputs and loads the next member, so slots idle only
  at the very end of the queue.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import equinox.internal as eqxi
import jax
import jax.numpy as jnp

from ..model.events import Schedule
from .rosenbrock import Tableau, rosenbrock_step

RUNNING, DONE, MAX_STEPS, FAILED = 0, 1, 2, 3


class MemberState(NamedTuple):
    t: jax.Array
    y: jax.Array
    p: jax.Array
    h: jax.Array
    k: jax.Array  # the next output row to fill
    out: jax.Array
    out_p: jax.Array
    n_steps: jax.Array
    status: jax.Array


class Problem(NamedTuple):
    """What every member shares. ``f(t, y, p)``; ``bounds``: start and end of the
    integration (the end infinite for a steady-state solve); ``ts``: output times (an output
    at an event time reports the state after it); ``stops``: further times to land on
    (input jumps); ``breakpoints(p)``: more of them that depend on the member's parameters
    (``None``: none); ``events``: the time events (a :class:`~scalebridge.model.events.
    Schedule`, whose times are landed on like the stops; ``None``: none)."""

    f: Callable
    tab: Tableau
    bounds: jax.Array
    ts: jax.Array
    stops: jax.Array
    breakpoints: Callable | None
    events: Schedule | None
    rtol: jax.Array
    atol: jax.Array
    max_steps: int
    steady: bool = False  # stop a member at a steady state (see attempt)
    linear: object = None  # the step's linear algebra (rosenbrock_step's ``linear``)
    checkpoints: int = 0  # > 0: reverse-mode derivatives, with this many stored steps


def _while(pb: Problem, cond, body, init):
    """The driver's loop: ``lax.while_loop`` (forward-mode derivatives), or with
    :attr:`Problem.checkpoints` an online-checkpointed loop that ``jax.grad`` differentiates
    (``equinox.internal.while_loop``; the treeverse schedule of Stumm & Walther 2010, SIAM
    J. Sci. Comput. 32:836, as diffrax's ``RecursiveCheckpointAdjoint``)."""
    if not pb.checkpoints:
        return jax.lax.while_loop(cond, body, init)
    return eqxi.while_loop(cond, body, init, max_steps=pb.max_steps, kind="checkpointed",
                           checkpoints=min(pb.checkpoints, pb.max_steps))


def _rms(x):
    return jnp.sqrt(jnp.mean(x * x))


# output tables of up to this many numbers (times x states) are written by a select over
# the whole table at every step
WHOLE_TABLE_SIZE = 256


def _whole_table(pb: Problem, n_y: int) -> bool:
    # (a steady-state solve needs the next row's index: it fills the rows still to come)
    return pb.ts.shape[0] * n_y <= WHOLE_TABLE_SIZE and not pb.steady


def _rows_up_to(ts, t):
    """How many output times are <= t (a comparison over all of them: no search loop in
    the step)."""
    return jnp.searchsorted(ts, t, side="right", method="compare_all")


def _start(pb: Problem, p, y0):
    """State and parameters at the start, after the events that fire there."""
    if pb.events is not None:
        return pb.events.fire_at(pb.bounds[0], y0, p)
    return y0, p


def _first_step(pb: Problem, y, p):
    """The first step size from the start ``(y, p)`` (:func:`_start`)."""
    t0 = pb.bounds[0]
    # initial step: Hairer, Norsett & Wanner (1993), Sect. II.4 (first part). Step sizes
    # carry no derivative (forward sensitivities are those of the discrete scheme on the
    # steps taken: discretise-then-differentiate), so f is evaluated without tangents
    y_, p_ = jax.lax.stop_gradient(y), jax.lax.stop_gradient(p)
    f0 = pb.f(t0, y_, p_)
    sc = pb.atol + pb.rtol * jnp.abs(y_)
    d0, d1 = _rms(y_ / sc), _rms(f0 / sc)
    h0 = jnp.where((d0 > 1e-5) & (d1 > 1e-5), 0.01 * d0 / d1, 1e-6)
    span = pb.bounds[-1] - t0  # infinite for a steady-state solve
    return jnp.clip(jnp.where(jnp.isfinite(h0), h0, 1e-6),
                    jnp.where(jnp.isfinite(span), 1e-10 * span, 1e-10), span)


def init_member(pb: Problem, p, y0, h0=None) -> MemberState:
    """A member at the start; ``h0``: its first step size, if computed already (the refill
    driver computes all members' at once, outside its loop, so that the loop holds no
    evaluation of f for it)."""
    t0 = pb.bounds[0]
    y, p = _start(pb, p, y0)
    h0 = _first_step(pb, y, p) if h0 is None else h0
    at0 = (pb.ts == t0)[:, None]
    out = jnp.where(at0, y[None, :], 0.0)
    out_p = jnp.broadcast_to(p, (pb.ts.shape[0], p.shape[0]))
    k = _rows_up_to(pb.ts, t0)
    return MemberState(t0, y, p, h0, k, out, out_p, jnp.asarray(0),
                       jnp.asarray(RUNNING))


def attempt(pb: Problem, st: MemberState) -> MemberState:
    """One step attempt (accepted or rejected) of a running member; others are unchanged."""
    running = st.status == RUNNING
    t, y, p = st.t, st.y, st.p
    te = pb.bounds[-1]
    stops = pb.stops if pb.breakpoints is None else \
        jnp.concatenate([pb.stops, pb.breakpoints(p)])
    cand = jnp.concatenate([pb.ts, stops] if pb.events is None else
                           [pb.ts, stops, pb.events.times])
    target = jnp.minimum(jnp.min(jnp.where(cand > t, cand, jnp.inf)), te)
    land = t + 1.01 * st.h >= target
    h = jnp.where(land, target - t, st.h)
    h = jnp.where(running & (h > 0), h, 1.0)  # keep idle members' arithmetic harmless
    # a step ending at a jump (of an input or the right-hand side) sees what holds before it
    jump = land & jnp.any(stops == target)
    t_cap = jnp.where(jump, jnp.nextafter(jax.lax.stop_gradient(target), -jnp.inf), jnp.inf)
    y_new, err_vec, f0 = rosenbrock_step(pb.tab, pb.f, t, y, p, h, t_cap, pb.linear,
                                         reverse=pb.checkpoints > 0)
    sc = pb.atol + pb.rtol * jnp.maximum(jnp.abs(y), jnp.abs(y_new))
    err = _rms(err_vec / sc)
    finite = jnp.isfinite(err) & jnp.all(jnp.isfinite(y_new))
    ok = finite & (err <= 1.0)
    q = pb.tab.order
    fac = jnp.where(finite, jnp.clip(0.9 * jnp.maximum(err, 1e-10) ** (-1.0 / q), 0.2, 6.0), 0.2)
    fac = jax.lax.stop_gradient(fac)
    # after an accepted step cut short to land on a stop, go on with the step size before it
    h_next = jnp.where(ok & land, jnp.maximum(h * fac, st.h),
                       h * jnp.where(ok, fac, jnp.minimum(fac, 1.0)))
    t_new = jnp.where(land, target, t + h)
    # accepted: advance, fire the events at t_new, record outputs there
    t1 = jnp.where(ok, t_new, t)
    y1 = jnp.where(ok, y_new, y)
    at_end = ok & land & (t_new == te)
    p1 = p
    if pb.events is not None:
        y1, p1 = pb.events.fire_at(t_new, y1, p, ok & land)
    # a small output table is written by a select over all of it; a larger one gets its
    # row written in place (one row per step: a scatter, with repeated output times filled
    # from their first row at the end, in _finish). The select costs the table's size per
    # step (times that of every tangent), the scatter a fixed overhead. Boehm's 16 x 8
    # ensemble, timed in one process: 0.345 ms per member with the select, as fast as the
    # loop before the scatter was introduced (0.342), where the scatter took 0.44-0.60;
    # Bachmann's 43 x 25 table with 32 tangents: 3.9 s per gradient with the scatter, 5.2 s
    # with the select (petab_collection.py)
    if _whole_table(pb, y.shape[0]):
        every = (ok & land & (pb.ts == t_new))[:, None]
        out = jnp.where(every, y1[None, :], st.out)
        out_p = jnp.where(every, p1[None, :], st.out_p)
        k = st.k  # (not needed)
    else:
        row = jnp.minimum(st.k, pb.ts.shape[0] - 1)
        hit = running & ok & land & (st.k < pb.ts.shape[0]) & (pb.ts[row] == t_new)
        out = st.out.at[row].set(jnp.where(hit, y1, st.out[row]))
        out_p = st.out_p.at[row].set(jnp.where(hit, p1, st.out_p[row]))
        k = jnp.where(hit, _rows_up_to(pb.ts, t_new), st.k)
    n_steps = st.n_steps + 1
    tiny = h_next < 1e-14 * jnp.maximum(jnp.abs(t1), 1.0)
    status = jnp.where(at_end, DONE, jnp.where(n_steps >= pb.max_steps, MAX_STEPS,
                                             jnp.where(tiny, FAILED, RUNNING)))
    if pb.steady:
        # at a steady state |dy/dt| <= 10 (atol + rtol |y|) (RMS norms, as diffrax's
        # steady_state_event), judged before the step: the member stops where it is, and
        # every output still to come holds that state
        settled = running & (_rms(f0) <= 10.0 * (pb.atol + pb.rtol * _rms(y)))
        later = (jnp.arange(pb.ts.shape[0]) >= st.k)[:, None]
        out = jnp.where(settled & later, y[None, :], out)
        out_p = jnp.where(settled & later, p[None, :], out_p)
        t1, y1, p1 = (jnp.where(settled, a, b) for a, b in ((t, t1), (y, y1), (p, p1)))
        status = jnp.where(settled, DONE, status)
    new = MemberState(t1, y1, p1, h_next, k, out, out_p, n_steps, status)
    keep = st._replace(out=out, out_p=out_p)  # (written only while running)
    return jax.tree.map(lambda a, b: jnp.where(running, a, b), new, keep)


def _finish(pb: Problem, st: MemberState):
    out, out_p = st.out, st.out_p
    if not _whole_table(pb, st.out.shape[-1]):  # repeated output times: their first row
        first = jnp.searchsorted(pb.ts, pb.ts, side="left")
        out, out_p = jnp.take(out, first, axis=-2), jnp.take(out_p, first, axis=-2)
    ok = (st.status == DONE) & jnp.all(jnp.isfinite(out), axis=(-2, -1))
    return out, out_p, ok, st.n_steps, st.t


def solve_lockstep(pb: Problem, ps, y0s):
    """``jax.vmap`` of one while loop per member. Returns ``(ys, ps_out, ok, n_steps,
    t_end)``: states and parameters at the output times, success flags, step attempts and
    the time each member stopped at."""

    def one(p, y0):
        st = _while(pb, lambda s: s.status == RUNNING, lambda s: attempt(pb, s),
                    init_member(pb, p, y0))
        return _finish(pb, st)

    return jax.vmap(one)(ps, y0s)


def solve_refill(pb: Problem, ps, y0s, slots: int):
    """A queue of members worked through by ``slots`` lanes; returns as
    :func:`solve_lockstep`."""
    n = ps.shape[0]
    slots = max(1, min(int(slots), n))
    n_out, n_y = pb.ts.shape[0], y0s.shape[1]
    h0s = jax.vmap(lambda p, y0: _first_step(pb, *_start(pb, p, y0)))(ps, y0s)
    init = jax.vmap(lambda p, y0, h0: init_member(pb, p, y0, h0))
    step = jax.vmap(lambda s: attempt(pb, s))
    member = jnp.arange(slots)
    st = init(ps[member], y0s[member], h0s[member])
    ys = jnp.zeros((n, n_out, n_y), y0s.dtype)
    pso = jnp.zeros((n, n_out, ps.shape[1]), ps.dtype)
    ok = jnp.zeros((n,), bool)
    nsteps = jnp.zeros((n,), jnp.int32)
    tend = jnp.zeros((n,), y0s.dtype)

    def cond(c):
        return jnp.any(c[1])

    def body(c):
        st, active, member, nxt, ys, pso, ok, nsteps, tend = c
        st = step(st)
        finished = active & (st.status != RUNNING)

        def retire(args):
            st, active, member, nxt, ys, pso, ok, nsteps, tend = args
            out, out_p, good, k, t_end = _finish(pb, st)
            idx = jnp.where(finished, member, n)  # n: out of range, dropped
            ys = ys.at[idx].set(out, mode="drop")
            pso = pso.at[idx].set(out_p, mode="drop")
            ok = ok.at[idx].set(good, mode="drop")
            nsteps = nsteps.at[idx].set(k.astype(jnp.int32), mode="drop")
            tend = tend.at[idx].set(t_end, mode="drop")
            new_member = nxt + jnp.cumsum(finished) - 1
            refill = finished & (new_member < n)
            member = jnp.where(refill, new_member, member)
            m = jnp.minimum(member, n - 1)
            fresh = init(ps[m], y0s[m], h0s[m])
            st = jax.tree.map(
                lambda a, b: jnp.where(refill.reshape((-1,) + (1,) * (a.ndim - 1)), a, b),
                fresh, st)
            active = jnp.where(finished, refill, active)
            return st, active, member, nxt + jnp.sum(finished), ys, pso, ok, nsteps, tend

        return jax.lax.cond(jnp.any(finished), retire, lambda a: a,
                            (st, active, member, nxt, ys, pso, ok, nsteps, tend))

    c = (st, jnp.ones((slots,), bool), member, jnp.asarray(slots), ys, pso, ok, nsteps, tend)
    c = _while(pb, cond, body, c)
    return c[4:]
