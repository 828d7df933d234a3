"""Discrete events: changes of states or parameters at given times (dosing, protocol steps)."""

from __future__ import annotations

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ModelError


def _times(ts) -> jax.Array:
    return jnp.reshape(jnp.asarray(ts, dtype=jnp.float64), (-1,))


class Event(eqx.Module):
    """A discrete change ``(y, p) -> affect(t, y, p)`` of states or parameters.

    Time-triggered: give ``times``; the event fires at each of them. State-triggered: give
    ``trigger(t, y, p) -> float``; the event triggers when the trigger crosses zero upwards
    (from negative to positive, as an SBML trigger turns from false to true), at the
    crossing time found by root finding, and re-arms only after the trigger has gone
    negative again. ``affect`` returns the new state and parameter vectors. Outputs at an
    event time report the state just after the event, as SBML simulators do. Events at the
    same time are applied in the order the model lists them.

    A state-triggered event follows SBML's event semantics (SBML Level 3 Version 2,
    section 4.11) where asked:

    - ``delay(t, y, p)``: evaluated when the event triggers; the event executes that long
      after (several executions of one event may be pending at once);
    - ``priority(t, y, p)``: of events due at the same instant, the highest priority
      executes first (evaluated just before each execution; equal priorities in random
      order, from a fixed seed; no priority executes after every prioritised one, in the
      order the events triggered); after each
      execution the triggers are looked at again, so an event may trigger another;
    - ``persistent=False``: a pending execution is dropped if the trigger turns false
      before it is due;
    - ``at_trigger``: with an :class:`Assignments` affect, its values are computed when
      the event triggers (SBML's ``useValuesFromTriggerTime``), else when it executes;
    - ``fires_at_start``: a trigger that holds at the start counts as having turned true
      there (SBML's ``initialValue="false"``); otherwise it must turn false first;
    - ``holds(t, y, p) -> bool``: whether the trigger holds, where that differs from
      ``trigger > 0`` (``x >= 1`` holds at ``x = 1``); used at the start and after each
      execution, while ``trigger`` locates crossings during integration;
    - ``relations(t, y, p) -> array``: where ``trigger`` combines several relations
      (``a < x < b``, ``x > a or y > b``), each one's value, positive where it holds:
      integration also stops where one of them changes sign, so that a trigger true only
      inside one solver step is not missed.

    The times are an array leaf, like the amounts of :func:`bolus` and
    :func:`set_parameter`: a new dosing schedule with as many times is new data for the
    same compiled simulation.
    """

    affect: Callable = eqx.field(converter=lambda f: f if isinstance(f, eqx.Module)
                                 else _Function(f))
    times: jax.Array = eqx.field(default=(), converter=_times)
    trigger: Callable | None = eqx.field(static=True, default=None)
    name: str = eqx.field(static=True, default="event")
    delay: Callable | None = eqx.field(static=True, default=None)
    priority: Callable | None = eqx.field(static=True, default=None)
    persistent: bool = eqx.field(static=True, default=True)
    at_trigger: bool = eqx.field(static=True, default=True)
    fires_at_start: bool = eqx.field(static=True, default=False)
    holds: Callable | None = eqx.field(static=True, default=None)
    relations: Callable | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        fn = self.affect.fn if isinstance(self.affect, _Function) else self.affect
        if not callable(fn):
            raise ModelError(f"event {self.name!r}: affect must be a function (t, y, p) -> (y, p)")
        if not isinstance(self.times, jax.core.Tracer) and \
                not np.all(np.isfinite(np.asarray(self.times))):
            raise ModelError(f"event {self.name!r}: event times must be finite")
        if (self.trigger is None) == (self.times.shape[0] == 0):
            raise ModelError(f"event {self.name!r}: give either times or a trigger function")
        if self.trigger is not None and not callable(self.trigger):
            raise ModelError(f"event {self.name!r}: trigger must be a function (t, y, p) -> float")
        if self.trigger is None and (self.delay is not None or self.priority is not None
                                     or not self.persistent or self.fires_at_start
                                     or self.holds is not None
                                     or self.relations is not None):
            raise ModelError(f"event {self.name!r}: delay, priority, persistent, holds, "
                             "relations and fires_at_start apply to state-triggered events; "
                             "give a trigger "
                             "(a time event at T is the trigger t - T)")
        if self.delay is not None and self.at_trigger and isinstance(self.affect, _Function):
            raise ModelError(f"event {self.name!r}: a delayed event whose values come from the "
                             "trigger time needs an Assignments affect (values, then assign); "
                             "or give at_trigger=False to evaluate the affect when it executes")


class Assignments(eqx.Module):
    """An affect in two parts, so that its values can be computed when an event triggers
    and applied when it executes: ``values(t, y, p)`` gives a 1-D array,
    ``assign(t, y, p, values)`` the new ``(y, p)``. Calling it does both at once."""

    @abc.abstractmethod
    def values(self, t, y, p) -> jax.Array:
        """The values to assign, computed at ``(t, y, p)``."""

    @abc.abstractmethod
    def assign(self, t, y, p, values):
        """The new ``(y, p)`` with ``values`` assigned."""

    def __call__(self, t, y, p):
        return self.assign(t, y, p, self.values(t, y, p))


class _Function(eqx.Module):
    """A user's affect function, static (the event's numbers live in its closure)."""

    fn: Callable = eqx.field(static=True)

    def __call__(self, t, y, p):
        return self.fn(t, y, p)


class _AddToState(eqx.Module):
    """affect: add ``amount`` (an array leaf: a new dose is new data) to state ``index``."""

    index: int = eqx.field(static=True)
    amount: jax.Array = eqx.field(converter=lambda v: jnp.asarray(v, dtype=jnp.float64))

    def __call__(self, t, y, p):
        return y.at[self.index].add(self.amount), p


class _SetParameter(eqx.Module):
    """affect: set parameter ``index`` to ``value`` (an array leaf)."""

    index: int = eqx.field(static=True)
    value: jax.Array = eqx.field(converter=lambda v: jnp.asarray(v, dtype=jnp.float64))

    def __call__(self, t, y, p):
        return y, p.at[self.index].set(self.value)


def bolus(state_index: int, amount: float, times, name: str = "dose") -> Event:
    """A dosing event that adds ``amount`` to one state at each of ``times``."""
    return Event(_AddToState(int(state_index), float(amount)), times=times, name=name)


def set_parameter(param_index: int, value: float, time: float, name: str = "step") -> Event:
    """An event that sets one parameter to ``value`` from ``time`` on."""
    return Event(_SetParameter(int(param_index), float(value)), times=(time,), name=name)


class Schedule:
    """The time events of a model as data: one entry per firing in ``times``, sorted (ties
    in the order the model lists its events; the sort is stable). Only the number of
    firings is structure, so new times are new data. Built inside traced code."""

    def __init__(self, events):
        timed = [e for e in events if e.trigger is None]
        times = jnp.concatenate([e.times for e in timed])
        which = jnp.asarray(np.concatenate([np.full(e.times.shape[0], i)
                                            for i, e in enumerate(timed)]))
        order = jnp.argsort(times, stable=True)
        self.times, self._which = times[order], which[order]
        self._affects = [e.affect for e in timed]

    def fire(self, k, t, y, p):
        """Apply the ``k``-th firing's event at ``t``."""
        if len(self._affects) == 1:
            return self._affects[0](t, y, p)
        return jax.lax.switch(self._which[k], self._affects, t, y, p)

    def fire_at(self, t, y, p, when=True):
        """Apply, in order, every firing at time ``t`` (where ``when``)."""
        def one(k, yp):
            ye, pe = self.fire(k, t, *yp)
            hit = when & (self.times[k] == t)
            return jnp.where(hit, ye, yp[0]), jnp.where(hit, pe, yp[1])

        return jax.lax.fori_loop(0, self.times.shape[0], one, (y, p))


def schedule(events) -> Schedule | None:
    """The :class:`Schedule` of ``events``' time events; ``None`` when there are none."""
    return Schedule(events) if any(e.trigger is None for e in events) else None
