"""State-triggered events during a solve: root finding of the triggers, the queue of pending
executions, and the order of executions at one instant.

The semantics are SBML's (SBML Level 3 Version 2 Core, section 4.11 "Events"; Hucka et al.
2019, J Integr Bioinform 16:20190021):

- an event *triggers* when its trigger turns from false to true (``g`` crosses zero
  upwards; root-found during integration, or seen after another event's assignments; a
  trigger that combines relations also stops integration where one of them changes sign,
  so that a window ``a < x < b`` crossed within one step is seen);
- it then *executes* after its delay (none: at once), with values computed when it
  triggered (``at_trigger``) or when it executes; executions of one event may overlap;
- at one instant, the due execution with the highest priority goes first (equal
  priorities in random order, from a fixed seed; no priority: after every prioritised one,
  in the order of triggering); after each execution every
  trigger is looked at again: events that turned true trigger, and a non-persistent
  event whose trigger turned false loses its pending executions.

Everything is fixed-size array data: a queue of pending executions (64 plus two per
event), so a solve with events compiles once. Overfilling the queue, or an instant with
more executions than the queue holds plus one per event, fails the simulation (its ``ok``
flag) rather than dropping events.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import ClassVar

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import optimistix as optx

from .model.events import Event

CAPACITY = 64  # pending executions at once, beyond two per event


class Pending(eqx.Module):
    """The carried event state: which triggers are armed (false, waiting to turn true),
    and the queue of pending executions (event, due time, values, order of triggering)."""

    armed: jax.Array  # (E,) bool
    event: jax.Array  # (Q,) int
    due: jax.Array  # (Q,) float
    values: jax.Array  # (Q, V) float
    used: jax.Array  # (Q,) bool
    order: jax.Array  # (Q,) int
    count: jax.Array  # () int: executions triggered so far
    ok: jax.Array  # () bool: no overflow, no negative delay, no endless cascade


def _values(event: Event):
    f = getattr(event.affect, "values", None)
    return f if f is not None else (lambda t, y, p: jnp.zeros(0))


def _assign(event: Event):
    f = getattr(event.affect, "assign", None)
    return f if f is not None else (lambda t, y, p, v: event.affect(t, y, p))


class Triggers:
    """The state-triggered events of a model, for states and parameters shaped like
    ``y`` and ``p``. Built inside traced code."""

    def __init__(self, events: tuple[Event, ...], y, p):
        self.events = events
        sds = jax.ShapeDtypeStruct
        shapes = (sds((), jnp.float64), sds(y.shape, y.dtype), sds(p.shape, p.dtype))
        self.widths = [jax.eval_shape(_values(e), *shapes).shape[0] for e in events]
        self.width = max(self.widths, default=0)
        self.persistent = jnp.asarray([e.persistent for e in events])
        self.at_trigger = jnp.asarray([e.at_trigger for e in events])
        self.prioritised = jnp.asarray([e.priority is not None for e in events])
        # the queue's size, and the most executions at one instant (each pending one and
        # each event once more)
        self.capacity = CAPACITY + 2 * len(events)
        self.cascade = self.capacity + len(events) + 1

    def g(self, t, y, p) -> jax.Array:
        return jnp.stack([jnp.asarray(e.trigger(t, y, p), jnp.float64) for e in self.events])

    def _values(self, j, t, y, p):
        """Event ``j``'s assignment values, padded to the queue's width."""
        v = jnp.asarray(_values(self.events[j])(t, y, p), jnp.float64)
        return jnp.pad(v, (0, self.width - self.widths[j]))

    def _values_now(self, i, t, y, p):
        """The values of event ``i`` (traced) at ``(t, y, p)``."""
        if len(self.events) == 1:
            return self._values(0, t, y, p)
        return jax.lax.switch(i, [partial(self._values, j, t, y, p)
                                  for j in range(len(self.events))])

    def relations(self, t, y, p) -> jax.Array:
        """The relations of the triggers that combine several (see :class:`Event`)."""
        parts = [jnp.asarray(e.relations(t, y, p), jnp.float64) for e in self.events
                 if e.relations is not None]
        return jnp.concatenate(parts) if parts else jnp.zeros(0)

    def holds(self, t, y, p) -> jax.Array:
        """Whether each trigger holds (its ``holds``, else ``trigger > 0``)."""
        return jnp.stack([jnp.asarray(e.trigger(t, y, p) > 0 if e.holds is None
                                      else e.holds(t, y, p), bool) for e in self.events])

    def start(self, t0, y, p) -> tuple[jax.Array, jax.Array, Pending]:
        """Arm the triggers at ``t0`` and execute what triggers there: before the start a
        trigger counts as false (armed) with ``fires_at_start``, as true otherwise."""
        fires = jnp.asarray([e.fires_at_start for e in self.events])
        q = self.capacity
        st = Pending(armed=fires, event=jnp.zeros(q, int),
                     due=jnp.full(q, jnp.inf), values=jnp.zeros((q, self.width)),
                     used=jnp.zeros(q, bool), order=jnp.zeros(q, int),
                     count=jnp.asarray(0), ok=jnp.asarray(True))
        return self.instant(t0, y, p, st)

    def next_due(self, st: Pending) -> jax.Array:
        return jnp.min(jnp.where(st.used, st.due, jnp.inf))

    def transitions(self, t, y, p, st: Pending, rising, falling) -> Pending:
        """Trigger the ``rising`` events (queue an execution each), and let a ``falling``
        trigger re-arm its event and drop its non-persistent pending executions."""
        st = eqx.tree_at(lambda s: s.used, st,
                         st.used & ~(falling & ~self.persistent)[st.event])
        event, due, values, used, order, count = (st.event, st.due, st.values, st.used,
                                                  st.order, st.count)
        ok = st.ok
        for i, e in enumerate(self.events):
            delay = jnp.asarray(0.0) if e.delay is None else \
                jnp.asarray(e.delay(t, y, p), jnp.float64)
            v = self._values(i, t, y, p) if e.at_trigger else jnp.zeros(self.width)
            free = jnp.argmin(used)
            put = rising[i] & ~used[free]
            ok = ok & ~(rising[i] & used[free]) & ~(rising[i] & ~(delay >= 0))
            event = jnp.where(put, event.at[free].set(i), event)
            due = jnp.where(put, due.at[free].set(t + delay), due)
            values = jnp.where(put, values.at[free].set(v), values)
            order = jnp.where(put, order.at[free].set(count), order)
            used = used | (put & (jnp.arange(used.shape[0]) == free))
            count = count + put
        armed = jnp.where(rising, False, jnp.where(falling, True, st.armed))
        return Pending(armed, event, due, values, used, order, count, ok)

    def _execute_one(self, t, y, p, st: Pending):
        """Execute the due execution that goes first, if any."""
        prio = jnp.stack([jnp.asarray(-jnp.inf) if e.priority is None else
                          jnp.asarray(e.priority(t, y, p), jnp.float64)
                          for e in self.events])[st.event]
        due = st.used & (st.due <= t)
        top = due & (prio == jnp.max(jnp.where(due, prio, -jnp.inf)))
        k = jnp.argmin(jnp.where(top, st.order, jnp.iinfo(st.order.dtype).max))
        # equal priorities go in random order (SBML); a fixed seed: a run repeats exactly
        u = jax.random.uniform(jax.random.fold_in(jax.random.key(0), st.count + st.used.sum()),
                               st.used.shape)
        k = jnp.where(self.prioritised[st.event[k]],
                      jnp.argmax(jnp.where(top, u, -1.0)), k)
        any_due = jnp.any(due)
        i = st.event[k]
        v = jnp.where(self.at_trigger[i], st.values[k], self._values_now(i, t, y, p))
        assigns = [lambda y, p, v, j=j: _assign(self.events[j])(t, y, p, v[:self.widths[j]])
                   for j in range(len(self.events))]
        y2, p2 = assigns[0](y, p, v) if len(assigns) == 1 else \
            jax.lax.switch(i, assigns, y, p, v)
        y, p = jnp.where(any_due, y2, y), jnp.where(any_due, p2, p)
        st = eqx.tree_at(lambda s: s.used, st, st.used.at[k].set(st.used[k] & ~any_due))
        return y, p, st, any_due

    def instant(self, t, y, p, st: Pending, crossed=None):
        """Everything that happens at ``t``: triggers whose truth disagrees with their
        armed state (an armed one that holds triggers, a triggered one that does not hold
        re-arms), and the due executions in order, each followed by a new look.

        ``crossed = (rose, fell, g, tol)`` names the triggers that crossed zero at a root
        found here, which may lie a hair before the crossing: their truth is taken as
        true (rose) or false (fell) until an execution moves ``g`` by more than ``tol``."""
        if crossed is None:
            none = jnp.zeros_like(st.armed)
            crossed = (none, none, jnp.zeros(none.shape), jnp.zeros(none.shape))
        rose, fell, g_ref, tol = crossed

        def body(carry):
            y, p, st, _, n = carry
            now = self.holds(t, y, p)
            still = (rose | fell) & (jnp.abs(self.g(t, y, p) - g_ref) <= tol)
            now = jnp.where(still, rose, now)
            rising, falling = st.armed & now, ~st.armed & ~now
            st = self.transitions(t, y, p, st, rising, falling)
            y, p, st, executed = self._execute_one(t, y, p, st)
            return y, p, st, executed, n + 1

        y, p, st, executed, _ = eqx.internal.while_loop(
            lambda c: (c[4] == 0) | (c[3] & (c[4] < self.cascade)), body,
            (y, p, st, jnp.asarray(True), 0), max_steps=self.cascade, kind="checkpointed")
        return y, p, eqx.tree_at(lambda s: s.ok, st, st.ok & ~executed)


def segment(triggers: Triggers, term, kw, a, b, ts, y, p, st: Pending, max_events: int):
    """Integrate ``[a, b]`` with state-triggered events: stop where a trigger or one of
    the relations it combines crosses zero (root found) or where a pending execution is
    due, handle that instant, restart. An
    armed event watches its trigger ``g`` rising through zero; a triggered one watches
    ``-g``, which re-arms it once ``g`` is negative again. Returns the states and
    parameters at ``ts`` in ``[a, b]`` (NaN elsewhere), the state at ``b`` and success."""
    n = ts.shape[0]
    # one condition, the largest of the armed triggers and the negated triggered ones: all
    # are <= 0 after an instant, and it crosses zero where the first of them does. Its root
    # is found by Newton's method kept inside the step where the sign changed (robust where
    # it has kinks: the maximum here, min/max of and/or); |g| is divided by the size of the
    # state at the segment start, so that a threshold of 1e5 (nM) is met to rounding.
    g_scale = 1.0 + jnp.max(jnp.abs(y))
    near = 1e-9 * g_scale  # a trigger this close to zero at a root crosses there

    def signed(t, y, p, armed, watch):
        """The largest of the armed triggers, the negated triggered ones and the watched
        relations (each signed to be negative at the segment's start: a window
        ``a < x < b`` crossed within one step changes the sign of its relations, not of
        its trigger)."""
        out = jnp.max(jnp.where(armed, 1.0, -1.0) * triggers.g(t, y, p))
        sign, watched = watch
        if sign.shape[0]:
            out = jnp.maximum(out, jnp.max(jnp.where(watched, -sign * triggers.relations(
                t, y, p), -jnp.inf)))
        return out

    def watch(t, y, p):
        """Each relation's sign at a segment's start (near zero: the sign it moves to),
        and whether to watch it (not one sitting at zero)."""
        r, dr = jax.jvp(lambda t, y: triggers.relations(t, y, p), (t, y),
                        (jnp.ones_like(t), term.vf(t, y, (p,))))
        close = jnp.abs(r) <= near
        sign = jnp.where(close, jnp.sign(dr), jnp.sign(r))
        return sign, sign != 0

    def cond(t, y, args, **_):  # args: p, armed, the start's hair above zero (see below)
        p, armed, hair, signs = args
        return (signed(t, y, p, armed, signs) - hair) / g_scale

    event = diffrax.Event(cond, direction=True, root_finder=BracketedNewton(1e-12, 1e-12))

    def body(carry):
        t, y, p, st, out_y, out_p, ok, _, count = carry
        t_end = jnp.minimum(b, triggers.next_due(st))
        # after a root found a hair before its crossing, the condition starts a hair above
        # zero; it must start at or below zero, or a crossing in the first step goes unseen
        signs = watch(t, y, p)
        hair = jnp.clip(signed(t, y, p, st.armed, signs), 0.0, near)
        sol = diffrax.diffeqsolve(term, t0=t, t1=t_end, dt0=None, y0=y,
                                  args=(p, st.armed, hair, signs),
                                  saveat=_outputs_and_end(jnp.clip(ts, t, t_end), t_end),
                                  event=event, **kw)
        stopped = sol.result == diffrax.RESULTS.event_occurred
        ok = ok & ((sol.result == diffrax.RESULTS.successful) | stopped)
        ys_out, t_stop, y_stop = sol.ys[0][:n], sol.ts[1][0], sol.ys[1][0]
        final = ~stopped & (t_end >= b)
        keep = (ts >= t) & jnp.where(final, ts <= b, ts < t_stop)
        out_y = jnp.where(keep[:, None], ys_out, out_y)
        out_p = jnp.where(keep[:, None], p, out_p)
        # the root found may lie a hair before the crossing: at a root, a trigger within
        # the root finder's tolerance of zero and moving across it has crossed (all that
        # cross together do; one that sits at zero has not)
        g_stop, dg = jax.jvp(lambda t, y: triggers.g(t, y, p), (t_stop, y_stop),
                             (jnp.ones_like(t_stop), term.vf(t_stop, y_stop, (p,))))
        close = stopped & (jnp.abs(g_stop) <= near)
        rose = st.armed & ((g_stop > 0) | (close & (dg > 0)))
        fell = ~st.armed & ((g_stop < 0) | (close & (dg < 0)))
        st = triggers.transitions(t_stop, y_stop, p, st, rose, fell)
        y_stop, p, st = triggers.instant(t_stop, y_stop, p, st,
                                         (rose, fell, g_stop, jnp.full(g_stop.shape, near)))
        at_stop = (ts == t_stop)[:, None]
        out_y = jnp.where(at_stop, y_stop, out_y)
        out_p = jnp.where(at_stop, p, out_p)
        return t_stop, y_stop, p, st, out_y, out_p, ok & st.ok, final, count + 1

    init = (jnp.asarray(a, float), y, p, st, jnp.full((n, y.size), jnp.nan),
            jnp.full((n, p.size), jnp.nan), jnp.asarray(True), jnp.asarray(False), 0)
    t, y, p, st, out_y, out_p, ok, done, _ = eqx.internal.while_loop(
        lambda c: ~c[7] & c[6] & (c[8] < max_events), body, init,
        max_steps=max_events, kind="checkpointed")
    return out_y, out_p, y, p, st, ok & done


class _BracketState(eqx.Module):
    lower: jax.Array
    upper: jax.Array
    f: jax.Array
    step: jax.Array


class BracketedNewton(optx.AbstractRootFinder):
    """Newton's method for the root of a scalar function that increases through zero on
    ``[lower, upper]`` (the options diffrax passes: the step where an event's condition
    changed sign), safeguarded by bisection (Press et al., Numerical Recipes, 3rd ed.,
    section 9.4, ``rtsafe``): each value narrows the bracket, and a Newton step that would
    leave it, or a zero or non-finite slope, bisects instead. Exact on a linear condition
    (``time - T``: an event lands on T to rounding); converges on kinks and jumps, where
    Newton alone fails. Stops when ``|f| <= atol`` with a step below ``atol + rtol |t|``,
    or when the bracket is that narrow."""

    rtol: float
    atol: float
    norm: ClassVar[Callable] = jnp.abs

    def init(self, fn, y, args, options, f_struct, aux_struct, tags):
        inf = jnp.asarray(jnp.inf, f_struct.dtype)
        return _BracketState(jnp.asarray(options["lower"], f_struct.dtype),
                             jnp.asarray(options["upper"], f_struct.dtype), inf, inf)

    def step(self, fn, y, args, options, state, tags):
        f, df, aux = jax.jvp(lambda t: fn(t, args), (y,), (jnp.ones_like(y),), has_aux=True)
        lower = jnp.where(f < 0, y, state.lower)
        upper = jnp.where(f < 0, state.upper, y)
        newton = y - f / df
        inside = jnp.isfinite(newton) & (newton >= lower) & (newton <= upper)
        new = jnp.where(f == 0, y, jnp.where(inside, newton, 0.5 * (lower + upper)))
        return new, _BracketState(lower, upper, f, jnp.abs(new - y)), aux

    def terminate(self, fn, y, args, options, state, tags):
        scale = self.atol + self.rtol * jnp.abs(y)
        done = ((jnp.abs(state.f) <= self.atol) & (state.step <= scale)) | \
            (state.upper - state.lower <= scale)
        return done, optx.RESULTS.successful

    def postprocess(self, fn, y, aux, args, options, state, tags, result):
        return y, aux, {}


def _outputs_and_end(ts, t1):
    """Save at the output times and, separately, the state where the solve stops. (With
    no output times, a dummy save at ``t1`` keeps the layout; callers slice it away.)"""
    ts = ts if ts.shape[0] else jnp.reshape(t1, (1,))
    return diffrax.SaveAt(subs=[diffrax.SubSaveAt(ts=ts), diffrax.SubSaveAt(t1=True)])
