"""Time-dependent inputs u(t) of a model: stimulus protocols, infusions, measured signals.

An input knows the times where it jumps, so the solver lands on them exactly instead of
stepping over a short pulse (diffrax's ``PIDController(jump_ts=...)``).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from ..errors import ModelError


def _floats(values) -> tuple[float, ...]:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise ModelError(f"input samples must be 1-D, got shape {arr.shape}")
    return tuple(float(v) for v in arr)


class AbstractInput(eqx.Module):
    """A named scalar signal ``u(t, p)``."""

    name: eqx.AbstractVar[str]

    @abc.abstractmethod
    def __call__(self, t, p):
        """The input's value at time ``t`` under parameters ``p``."""

    def jump_times(self, t0: float, t1: float) -> np.ndarray:
        """Times in ``[t0, t1]`` where the input is discontinuous."""
        return np.zeros(0)


class PulseTrain(AbstractInput):
    """Rectangular pulses of ``amplitude`` lasting ``duration``, every ``period`` from
    ``start`` until ``stop`` (a pacing protocol)."""

    name: str = eqx.field(static=True)
    amplitude: float = eqx.field(static=True)
    duration: float = eqx.field(static=True)
    period: float = eqx.field(static=True)
    start: float = eqx.field(static=True, default=0.0)
    stop: float = eqx.field(static=True, default=math.inf)

    def __check_init__(self):
        if not (self.duration > 0 and self.period > 0 and self.duration <= self.period):
            raise ModelError(
                f"input {self.name!r}: need 0 < duration <= period, got duration="
                f"{self.duration}, period={self.period}"
            )

    def __call__(self, t, p):
        phase = jnp.mod(t - self.start, self.period)
        on = (t >= self.start) & (t < self.stop) & (phase < self.duration)
        return jnp.where(on, self.amplitude, 0.0)

    def jump_times(self, t0, t1):
        end = min(t1, self.stop)
        if end < self.start:
            return np.zeros(0)
        k = np.arange(0, math.floor((end - self.start) / self.period) + 1)
        on = self.start + k * self.period
        out = np.concatenate([on, on + self.duration])
        return np.sort(out[(out >= t0) & (out <= t1)])


class Interpolated(AbstractInput):
    """A tabulated signal, linear between samples (``kind="linear"``) or held constant
    from each sample to the next (``kind="previous"``, e.g. an infusion schedule)."""

    name: str = eqx.field(static=True)
    times: tuple[float, ...] = eqx.field(static=True, converter=_floats)
    values: tuple[float, ...] = eqx.field(static=True, converter=_floats)
    kind: str = eqx.field(static=True, default="linear")

    def __check_init__(self):
        if len(self.times) != len(self.values) or not self.times:
            raise ModelError(
                f"input {self.name!r}: times and values must be 1-D of the same non-zero length"
            )
        if np.any(np.diff(self.times) <= 0):
            raise ModelError(f"input {self.name!r}: times must be strictly increasing")
        if self.kind not in ("linear", "previous"):
            raise ModelError(f"input {self.name!r}: kind must be 'linear' or 'previous'")

    def __call__(self, t, p):
        ts = jnp.asarray(self.times)
        vs = jnp.asarray(self.values)
        if self.kind == "linear":
            return jnp.interp(t, ts, vs)
        idx = jnp.clip(jnp.searchsorted(ts, t, side="right") - 1, 0, ts.size - 1)
        return vs[idx]

    def jump_times(self, t0, t1):
        if self.kind == "linear":
            return np.zeros(0)
        ts = np.asarray(self.times)
        return ts[(ts >= t0) & (ts <= t1)]


class FunctionInput(AbstractInput):
    """Any JAX function ``fn(t, p)``; list its discontinuities in ``jumps``."""

    name: str = eqx.field(static=True)
    fn: Callable = eqx.field(static=True)
    jumps: tuple[float, ...] = eqx.field(static=True, default=())

    def __call__(self, t, p):
        return self.fn(t, p)

    def jump_times(self, t0, t1):
        j = np.asarray(self.jumps, dtype=float)
        return j[(j >= t0) & (j <= t1)]
