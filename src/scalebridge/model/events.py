"""Discrete events: changes of states or parameters at given times (dosing, protocol steps)."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import numpy as np

from ..errors import ModelError


class Event(eqx.Module):
    """At each time in ``times``, replace ``(y, p)`` by ``affect(t, y, p)``.

    ``affect`` returns the new state vector and parameter vector (same shapes). Outputs at an
    event time report the state just after the event, as SBML simulators do. Several events
    at the same time are applied in the order the model lists them.
    """

    times: tuple[float, ...] = eqx.field(static=True, converter=lambda ts: tuple(
        float(t) for t in np.atleast_1d(np.asarray(ts, dtype=float))))
    affect: Callable = eqx.field(static=True)
    name: str = eqx.field(static=True, default="event")

    def __check_init__(self):
        if not callable(self.affect):
            raise ModelError(f"event {self.name!r}: affect must be a function (t, y, p) -> (y, p)")
        if any(not np.isfinite(t) for t in self.times):
            raise ModelError(f"event {self.name!r}: event times must be finite")


def bolus(state_index: int, amount: float, times, name: str = "dose") -> Event:
    """A dosing event that adds ``amount`` to one state at each of ``times``."""

    def affect(t, y, p):
        return y.at[state_index].add(amount), p

    return Event(times=times, affect=affect, name=name)


def set_parameter(param_index: int, value: float, time: float, name: str = "step") -> Event:
    """An event that sets one parameter to ``value`` from ``time`` on."""

    def affect(t, y, p):
        return y, p.at[param_index].set(value)

    return Event(times=(time,), affect=affect, name=name)
