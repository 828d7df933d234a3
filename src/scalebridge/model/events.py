"""Discrete events: changes of states or parameters at given times (dosing, protocol steps)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import equinox as eqx
import numpy as np

from ..errors import ModelError


def _times(ts) -> tuple[float, ...]:
    return tuple(float(t) for t in np.atleast_1d(np.asarray(ts, dtype=float)))


class Event(eqx.Module):
    """A discrete change ``(y, p) -> affect(t, y, p)`` of states or parameters.

    Time-triggered: give ``times``; the event fires at each of them. State-triggered: give
    ``trigger(t, y, p) -> float``; the event fires when the trigger crosses zero upwards
    (from negative to positive, as an SBML trigger turns from false to true), at the
    crossing time found by root finding, and re-arms only after the trigger has gone
    negative again. ``affect`` returns the new state and parameter vectors. Outputs at an
    event time report the state just after the event, as SBML simulators do. Events at the
    same time are applied in the order the model lists them.
    """

    affect: Callable = eqx.field(static=True)
    times: tuple[float, ...] = eqx.field(static=True, default=(), converter=_times)
    trigger: Callable | None = eqx.field(static=True, default=None)
    name: str = eqx.field(static=True, default="event")

    def __check_init__(self):
        if not callable(self.affect):
            raise ModelError(f"event {self.name!r}: affect must be a function (t, y, p) -> (y, p)")
        if any(not np.isfinite(t) for t in self.times):
            raise ModelError(f"event {self.name!r}: event times must be finite")
        if (self.trigger is None) == (not self.times):
            raise ModelError(f"event {self.name!r}: give either times or a trigger function")
        if self.trigger is not None and not callable(self.trigger):
            raise ModelError(f"event {self.name!r}: trigger must be a function (t, y, p) -> float")


@dataclass(frozen=True)
class _AddToState:
    """affect: add ``amount`` to state ``index`` (equal by value, so equal models share one
    compiled simulation)."""

    index: int
    amount: float

    def __call__(self, t, y, p):
        return y.at[self.index].add(self.amount), p


@dataclass(frozen=True)
class _SetParameter:
    """affect: set parameter ``index`` to ``value``."""

    index: int
    value: float

    def __call__(self, t, y, p):
        return y, p.at[self.index].set(self.value)


def bolus(state_index: int, amount: float, times, name: str = "dose") -> Event:
    """A dosing event that adds ``amount`` to one state at each of ``times``."""
    return Event(_AddToState(int(state_index), float(amount)), times=times, name=name)


def set_parameter(param_index: int, value: float, time: float, name: str = "step") -> Event:
    """An event that sets one parameter to ``value`` from ``time`` on."""
    return Event(_SetParameter(int(param_index), float(value)), times=(time,), name=name)
