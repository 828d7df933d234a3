"""Scalar outputs of a model as vectorised functions of its parameters.

:class:`ModelOutput` turns a :class:`~scalebridge.Model` and an output spec such as
``"max:glucose"`` into a function of an ``(m, d)`` array of parameter values (over the
chosen parameters; the others keep their nominal values) that returns ``(m,)`` outputs.
It solves all ``m`` members in one jit-compiled, vmapped call (the ensemble path of
:func:`scalebridge.simulate_ensemble`); a failed solve gives NaN, never an exception.

Output specs (parsed by :func:`parse_output`, never evaluated):

============== ===========================================================================
``NAME@T``     value of observable or state NAME at time T (solver accuracy: the solver
               steps onto T)
``final:NAME`` value at ``t_end``
``max:NAME``   maximum over ``[t0, t_end]``; ``min:NAME`` the minimum
``tpeak:NAME`` time of the maximum; ``tmin:NAME`` time of the minimum
``auc:NAME``   area under the curve over ``[t0, t_end]``; ``mean:NAME`` = auc / duration
============== ===========================================================================

Extremes and areas use a uniform output grid of ``points`` times (odd; the solver steps
onto each of them): the maximum and its time are refined by the parabola through the
largest grid value and its two neighbours (error O(h^3) in the value for a smooth peak
inside the interval), the area by composite Simpson's rule (error O(h^4)). NAME is an
observable first, else a state.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputError
from .distributions import LogUniform, Uniform

MAX_POINTS = 1_000_000  # the longest output grid (memory: points x states per simulation)

__all__ = ["ModelOutput", "OutputSpec", "parse_output", "OUTPUT_KINDS"]

OUTPUT_KINDS = ("value", "final", "max", "min", "tpeak", "tmin", "auc", "mean")
_NAME = r"[A-Za-z_][A-Za-z0-9_.]*"
_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_AT = re.compile(rf"^({_NAME})@({_NUMBER})$")
_KIND = re.compile(rf"^([a-z]+):({_NAME})$")
_FORMS = ("NAME@T (value at time T), final:NAME, max:NAME, min:NAME, tpeak:NAME, tmin:NAME, "
          "auc:NAME or mean:NAME")


@dataclass(frozen=True)
class OutputSpec:
    """A parsed output spec: ``kind`` (one of :data:`OUTPUT_KINDS`), the observable or
    state ``name`` and, for ``kind="value"``, the ``time``."""

    kind: str
    name: str
    time: float | None = None

    def __str__(self):
        return f"{self.name}@{self.time:g}" if self.kind == "value" else f"{self.kind}:{self.name}"


def parse_output(spec: str) -> OutputSpec:
    """Parse an output spec string (see the module docstring); raises InputError with the
    accepted forms for anything else."""
    if isinstance(spec, OutputSpec):
        return spec
    if not isinstance(spec, str):
        raise InputError(f"output must be a string such as 'max:G', got {type(spec).__name__}")
    text = spec.strip()
    m = _AT.match(text)
    if m:
        t = float(m.group(2))
        if not math.isfinite(t):
            raise InputError(f"output {spec!r}: the time must be finite")
        return OutputSpec("value", m.group(1), t)
    m = _KIND.match(text)
    if m:
        kind = m.group(1)
        if kind not in OUTPUT_KINDS or kind == "value":
            raise InputError(f"output {spec!r}: unknown kind {kind!r}; use {_FORMS}")
        return OutputSpec(kind, m.group(2))
    raise InputError(f"output {spec!r} is not understood; use {_FORMS}, e.g. 'max:G' or "
                     "'G@120'")


def _vertex(y, t, i):
    """Value and time of the extreme of the parabola through grid points i-1, i, i+1
    (the grid value itself at either end of the grid)."""
    n = y.shape[0]
    if n < 3:
        return y[i], t[i]
    inner = (i > 0) & (i < n - 1)
    j = jnp.clip(i, 1, n - 2)
    ym, y0, yp = y[j - 1], y[j], y[j + 1]
    curv = ym - 2.0 * y0 + yp
    safe = jnp.where(curv == 0.0, 1.0, curv)
    delta = jnp.where(curv == 0.0, 0.0, jnp.clip(0.5 * (ym - yp) / safe, -0.5, 0.5))
    h = t[1] - t[0]
    value = jnp.where(inner, y0 - 0.25 * (ym - yp) * delta, y[i])
    when = jnp.where(inner, t[j] + delta * h, t[i])
    return value, when


def _reduce(kind, y, t):
    """One member's series ``y`` on the uniform grid ``t`` -> the output of kind number
    ``kind`` (an index into :data:`OUTPUT_KINDS`; traced, so one compilation serves every
    kind)."""
    vmax, tmax = _vertex(y, t, jnp.argmax(y))
    vmin, tmin = _vertex(-y, t, jnp.argmin(y))
    area = _simpson(y, t)
    duration = jnp.where(t[-1] > t[0], t[-1] - t[0], 1.0)
    values = jnp.stack([y[-1], y[-1], vmax, -vmin, tmax, tmin, area, area / duration])
    return values[kind]


def _simpson(y, t):
    """Composite Simpson's rule on a uniform grid with an odd number of points (a single
    point, as for ``NAME@T`` outputs, gives 0)."""
    if y.shape[0] < 3:
        return jnp.zeros_like(y[0])
    h = t[1] - t[0]
    return h / 3.0 * (y[0] + y[-1] + 4.0 * jnp.sum(y[1:-1:2]) + 2.0 * jnp.sum(y[2:-1:2]))


class ModelOutput:
    """A scalar output of ``model`` as a function of some of its parameters.

    ``output``: a spec string (see :mod:`scalebridge.sensitivity.outputs`), e.g.
    ``"max:glucose"``, ``"G@120"``, ``"auc:Ip"``. ``parameters``: the names that vary, in
    the column order of the input, or a :class:`~scalebridge.ParameterSpace` (its
    estimated parameters; default: every parameter with a non-zero nominal value).
    ``t_end``: end of the simulated span (default: the time of a ``NAME@T`` output;
    required for the others). ``points``: output grid size for extremes and
    areas (made odd for Simpson's rule).

    Calling it on an ``(m, d)`` array returns ``(m,)`` outputs; NumPy input is solved in
    jit-compiled batches of ``batch_size`` members (one compilation for all calls), a traced
    JAX input (inside ``jax.jit``, ``jax.jacfwd`` ...) goes through the same pure function.
    Failed solves give NaN.
    """

    is_jax = True
    compiled = True  # calls on NumPy arrays run its own compiled function

    def __init__(self, model, output: str, parameters=None, *, t_end: float | None = None,
                 t0: float = 0.0, points: int = 1001, rtol: float = 1e-8, atol: float = 1e-10,
                 max_steps: int = 100_000, solver=None, batch_size: int = 256):
        from ..model.model import Model
        from ..simulate import Simulator

        if not isinstance(model, Model):
            raise InputError(f"model must be a scalebridge Model, got {type(model).__name__}")
        self.output = parse_output(output)
        self.spec = str(self.output)
        name = self.output.name
        if name in model.observable_names:
            self._series = len(model.state_names) + model.observable_names.index(name)
        elif name in model.state_names:
            self._series = model.state_names.index(name)
        else:
            raise InputError(f"output {output!r}: model {model.name!r} has no observable or "
                             f"state {name!r}; observables: {', '.join(model.observable_names)}"
                             f"; states: {', '.join(model.state_names)}")
        from ..infer.space import ParameterSpace

        if isinstance(parameters, ParameterSpace):  # its fixed values hold, its estimated vary
            fixed = {p.name: p.value for p in parameters.parameters
                     if not p.estimate and p.name in model.parameter_names}
            model = model.with_parameters(**fixed) if fixed else model
            parameters = parameters.ids
        self.model = model
        values = np.asarray(model.parameter_values())
        if parameters is None:
            parameters = [p for p, v in zip(model.parameter_names, values, strict=True) if v]
        if isinstance(parameters, str):
            parameters = [parameters]
        parameters = tuple(parameters)
        if not parameters:
            raise InputError("parameters is empty; name at least one parameter to vary")
        if len(set(parameters)) != len(parameters):
            raise InputError(f"parameters must be unique, got {list(parameters)}")
        self._index = np.asarray([model.parameter_index(p) for p in parameters])
        self.names = parameters
        self.nominal = values[self._index]
        self.t0 = float(t0)
        if t_end is None:
            if self.output.kind != "value":
                raise InputError(f"output {self.spec!r} needs t_end, the end of the simulated "
                                 "span (e.g. t_end=600)")
            t_end = self.output.time
        self.t_end = float(t_end)
        if self.output.kind == "value":
            if not self.t0 < self.output.time <= self.t_end:
                raise InputError(f"output {self.spec!r}: the time must lie in (t0, t_end] = "
                                 f"({self.t0:g}, {self.t_end:g}]")
            ts = np.asarray([self.output.time])
        else:
            points = int(points)
            if not 3 <= points <= MAX_POINTS:
                raise InputError(f"points must be between 3 and {MAX_POINTS:,} (the output "
                                 f"grid of one simulation), got {points:,}")
            self.points = points + (points % 2 == 0)
            if not self.t_end > self.t0:
                raise InputError(f"t_end={self.t_end:g} must be after t0={self.t0:g}")
            ts = np.linspace(self.t0, self.t_end, self.points)
        if int(batch_size) < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self._ts = ts
        self._sim = Simulator(model, ts, t0=self.t0, solver=solver, rtol=rtol, atol=atol,
                              sensitivities="forward", max_steps=max_steps)

    def fingerprint(self) -> str:
        """SHA-256 of what this output computes: the model's fingerprint, the output spec,
        the varied parameters, the time grid and the solver settings (run directories)."""
        from ..runtime.run import content_hash

        sim = self._sim
        return content_hash([self.model.fingerprint(), self.spec, list(self.names),
                             content_hash(np.asarray(self._ts).tobytes()), self.t0,
                             repr(sim.solver), float(sim.rtol), float(sim.atol),
                             sim.max_steps])

    def default_bounds(self, factor: float = 2.0) -> dict:
        """``{name: LogUniform(nominal / factor, nominal * factor)}`` for every parameter
        (negative nominal values: the same range, mirrored)."""
        factor = float(factor)
        if not factor > 1:
            raise InputError(f"factor must be > 1, got {factor}")
        out = {}
        for name, v in zip(self.names, self.nominal, strict=True):
            if v > 0:
                out[name] = LogUniform(v / factor, v * factor)
            elif v < 0:
                out[name] = Uniform(v * factor, v / factor)
            else:
                raise InputError(f"parameter {name!r} has nominal value 0, so it has no "
                                 "default range; give its bounds explicitly")
        return out

    def _args(self):
        return (self._sim, jnp.asarray(self._index),
                jnp.asarray(OUTPUT_KINDS.index(self.output.kind)), jnp.asarray(self._series))

    def __call__(self, x):
        if isinstance(x, jax.core.Tracer):
            return _apply(jnp.atleast_2d(x), *self._args())
        x = np.asarray(x, dtype=float)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != len(self.names):
            raise InputError(f"parameter values have shape {x.shape}, expected (m, "
                             f"{len(self.names)}) for parameters {list(self.names)}")
        m, bs = x.shape[0], self.batch_size
        out = np.empty(m)
        args = self._args()
        for start in range(0, m, bs):
            chunk = x[start:start + bs]
            k = chunk.shape[0]
            if k < bs:
                chunk = np.concatenate([chunk, np.repeat(chunk[:1], bs - k, axis=0)])
            out[start:start + k] = np.asarray(_apply_jit(jnp.asarray(chunk), *args))[:k]
        return out

    def __repr__(self):
        return (f"ModelOutput({self.model.name!r}, {self.spec!r}, parameters="
                f"{list(self.names)}, t_end={self.t_end:g})")


def _apply(x, sim, index, kind, series):
    base = sim.model.parameter_values()
    ps = jnp.broadcast_to(base, (x.shape[0], base.shape[0])).at[:, index].set(x)
    y0s = jax.vmap(sim.model.initial_state)(ps)
    ys, obs, ok = sim.solve_batch(ps, y0s)
    traj = jnp.concatenate([ys, obs], axis=2)[:, :, series]
    out = jax.vmap(lambda y: _reduce(kind, y, sim.times))(traj)
    return jnp.where(ok, out, jnp.nan)


# one compiled function for every ModelOutput: outputs of the same model on the same grid
# layout reuse its compilation, whatever their kind, series and the model's numbers (those
# are traced; the model's functions and the plan are static)
_apply_jit = eqx.filter_jit(_apply)
