"""Time-dependent inputs u(t) of a model: stimulus protocols, infusions, measured signals.

An input knows the times where it jumps, so the solver lands on them exactly instead of
stepping over a short pulse (diffrax's ``PIDController(jump_ts=...)``).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ModelError


def _samples(values) -> jnp.ndarray:
    arr = jnp.asarray(values, dtype=jnp.float64)
    if arr.ndim != 1:
        raise ModelError(f"input samples must be 1-D, got shape {arr.shape}")
    return arr


def _number(value) -> jnp.ndarray:
    return jnp.asarray(value, dtype=jnp.float64)


def _concrete(x) -> np.ndarray:
    try:
        return np.asarray(x, dtype=float)
    except jax.errors.TracerArrayConversionError:
        raise ModelError("an input's jump times need concrete numbers; build the simulation "
                         "(scalebridge.Simulator) outside jax.jit") from None


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
    ``start`` until ``stop`` (a pacing protocol). The numbers are array leaves: a new
    amplitude, period or start is new data for the same compiled simulation."""

    name: str = eqx.field(static=True)
    amplitude: jax.Array = eqx.field(converter=_number)
    duration: jax.Array = eqx.field(converter=_number)
    period: jax.Array = eqx.field(converter=_number)
    start: jax.Array = eqx.field(converter=_number, default=0.0)
    stop: jax.Array = eqx.field(converter=_number, default=math.inf)

    def __check_init__(self):
        if isinstance(self.period, jax.core.Tracer) or isinstance(self.duration,
                                                                  jax.core.Tracer):
            return  # built inside a traced function: checked where it was concrete
        d, per = float(self.duration), float(self.period)
        if not (d > 0 and per > 0 and d <= per):
            raise ModelError(
                f"input {self.name!r}: need 0 < duration <= period, got duration="
                f"{self.duration}, period={self.period}"
            )

    def __call__(self, t, p):
        phase = jnp.mod(t - self.start, self.period)
        on = (t >= self.start) & (t < self.stop) & (phase < self.duration)
        return jnp.where(on, self.amplitude, 0.0)

    def jump_times(self, t0, t1):
        start, stop, period, duration = (float(_concrete(v)) for v in
                                         (self.start, self.stop, self.period, self.duration))
        end = min(t1, stop)
        if end < start:
            return np.zeros(0)
        k = np.arange(0, math.floor((end - start) / period) + 1)
        on = start + k * period
        out = np.concatenate([on, on + duration])
        return np.sort(out[(out >= t0) & (out <= t1)])


class Interpolated(AbstractInput):
    """A tabulated signal, linear between samples (``kind="linear"``) or held constant
    from each sample to the next (``kind="previous"``, e.g. an infusion schedule). The
    samples are array leaves: new data of the same length compile nothing new."""

    name: str = eqx.field(static=True)
    times: jax.Array = eqx.field(converter=_samples)
    values: jax.Array = eqx.field(converter=_samples)
    kind: str = eqx.field(static=True, default="linear")

    def __check_init__(self):
        if self.times.shape != self.values.shape or not self.times.size:
            raise ModelError(
                f"input {self.name!r}: times and values must be 1-D of the same non-zero length"
            )
        if not isinstance(self.times, jax.core.Tracer) and \
                np.any(np.diff(np.asarray(self.times)) <= 0):
            raise ModelError(f"input {self.name!r}: times must be strictly increasing")
        if self.kind not in ("linear", "previous"):
            raise ModelError(f"input {self.name!r}: kind must be 'linear' or 'previous'")

    def __call__(self, t, p):
        ts, vs = self.times, self.values
        if self.kind == "linear":
            return jnp.interp(t, ts, vs)
        idx = jnp.clip(jnp.searchsorted(ts, t, side="right") - 1, 0, ts.size - 1)
        return vs[idx]

    def jump_times(self, t0, t1):
        if self.kind == "linear":
            return np.zeros(0)
        ts = _concrete(self.times)
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
