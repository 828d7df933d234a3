"""The mechanistic model: the object every part of scalebridge takes and gives back."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputError, ModelError
from .events import Event
from .inputs import AbstractInput
from .parameter import Parameter, as_parameters


def _names(kind: str, names) -> tuple[str, ...]:
    names = tuple(names)
    for n in names:
        if not isinstance(n, str) or not n:
            raise ModelError(f"{kind} names must be non-empty strings, got {n!r}")
    seen: set[str] = set()
    dupes = sorted({n for n in names if n in seen or seen.add(n)})
    if dupes:
        raise ModelError(f"{kind} names must be unique; repeated: {', '.join(dupes)}")
    return names


class Model(eqx.Module):
    """An ODE model ``dy/dt = rhs(t, y, p, u)`` with named states and parameters.

    - ``rhs(t, y, p, u)``: JAX function of time, state vector, parameter vector and the
      vector of input values ``u`` at ``t`` (empty when the model has no inputs); returns
      dy/dt with the shape of ``y``.
    - ``initial``: the initial state, a sequence of numbers or a function ``p -> y0``.
    - ``observables``: ``{name: fn(t, y, p)}`` of scalar outputs.
    - ``inputs``: time-dependent signals (:mod:`scalebridge.model.inputs`).
    - ``events``: time-triggered changes of states or parameters.
    - ``breakpoints``: a function ``p -> times`` (an array; non-finite entries are ignored)
      where ``rhs`` jumps in time at instants set by the parameters (a dose switched on at
      ``t_on``); the solvers land on them instead of stepping across, which keeps
      sensitivities accurate. SBML import finds them in ``piecewise`` conditions on time.
    - ``stiff``: whether a stiff solver is the default (``False`` selects Tsit5).
    - ``gates``: states whose equations are linear in themselves (Hodgkin-Huxley gating
      variables, ``dg/dt = a(V) (1 - g) - b(V) g``), which Rush-Larsen integrators update
      exactly over a step.

    The model is an equinox Module (a pytree) whose functions and specifications are static,
    so it passes through ``jax.jit``, ``jax.vmap`` and ``jax.grad`` unchanged; parameter
    values travel as arrays (see :func:`scalebridge.simulate`).
    """

    name: str = eqx.field(static=True)
    state_names: tuple[str, ...] = eqx.field(static=True)
    parameter_specs: tuple[Parameter, ...] = eqx.field(static=True)
    nominal: jax.Array
    rhs: Callable = eqx.field(static=True)
    initial_fn: Callable | None = eqx.field(static=True)
    initial_values: jax.Array | None
    observables: tuple[tuple[str, Callable], ...] = eqx.field(static=True)
    inputs: tuple[AbstractInput, ...]
    events: tuple[Event, ...]
    breakpoints: Callable | None = eqx.field(static=True)
    stiff: bool = eqx.field(static=True)
    gates: tuple[str, ...] = eqx.field(static=True)
    citation: str = eqx.field(static=True)
    source: tuple[str, str] | None = eqx.field(static=True)

    def __init__(
        self,
        *,
        states: Sequence[str],
        parameters,
        rhs: Callable,
        initial,
        observables: Mapping[str, Callable] | None = None,
        inputs: Sequence[AbstractInput] = (),
        events: Sequence[Event] = (),
        breakpoints: Callable | None = None,
        stiff: bool = True,
        gates: Sequence[str] = (),
        name: str = "model",
        citation: str = "",
        source: tuple[str, str] | None = None,
    ):
        self.name = str(name)
        self.state_names = _names("state", states)
        specs = as_parameters(parameters)
        _names("parameter", [p.name for p in specs])
        # the numbers are array leaves, the rest of each specification is static: a model
        # with other values is the same program (no recompilation)
        self.nominal = jnp.asarray([p.value for p in specs], dtype=jnp.float64)
        self.parameter_specs = tuple(p.replace(value=0.0) for p in specs)
        if not callable(rhs):
            raise ModelError(f"model {name!r}: rhs must be a function (t, y, p, u) -> dy/dt")
        self.rhs = rhs
        if callable(initial):
            self.initial_fn, self.initial_values = initial, None
        else:
            try:
                y0 = jnp.asarray(initial, dtype=jnp.float64)
            except (TypeError, ValueError):
                raise ModelError(f"model {name!r}: initial must be numbers or a function "
                                 f"p -> y0, got {initial!r}") from None
            if y0.shape != (len(self.state_names),):
                raise ModelError(
                    f"model {name!r}: initial state has shape {y0.shape}, expected "
                    f"({len(self.state_names)},) for states {self.state_names}"
                )
            self.initial_fn, self.initial_values = None, y0
        obs = dict(observables or {})
        _names("observable", list(obs))
        clash = sorted(set(obs) & set(self.state_names))
        if clash:
            raise ModelError(f"model {name!r}: observables reuse state names {clash}")
        for k, fn in obs.items():
            if not callable(fn):
                raise ModelError(f"model {name!r}: observable {k!r} must be a function (t, y, p)")
        self.observables = tuple(obs.items())
        self.inputs = tuple(inputs)
        for i in self.inputs:
            if not isinstance(i, AbstractInput):
                raise ModelError(f"model {name!r}: inputs must be Input objects, got {i!r}")
        _names("input", [i.name for i in self.inputs])
        self.events = tuple(events)
        for e in self.events:
            if not isinstance(e, Event):
                raise ModelError(f"model {name!r}: events must be Event objects, got {e!r}")
        if breakpoints is not None and not callable(breakpoints):
            raise ModelError(f"model {name!r}: breakpoints must be a function p -> times")
        self.breakpoints = breakpoints
        self.stiff = bool(stiff)
        self.gates = tuple(gates)
        unknown = [g for g in self.gates if g not in self.state_names]
        if unknown:
            raise ModelError(f"model {name!r}: gates {unknown} are not states")
        self.citation = citation
        self.source = source

    def __check_init__(self):
        self._check_shapes()

    def _check_shapes(self):
        n = len(self.state_names)
        p = jax.ShapeDtypeStruct((len(self.parameters),), jnp.float64)
        y = jax.ShapeDtypeStruct((n,), jnp.float64)
        t = jax.ShapeDtypeStruct((), jnp.float64)
        try:
            y0 = jax.eval_shape(self.initial_state, p)
            dy = jax.eval_shape(self.vector_field, t, y, p)
            obs = jax.eval_shape(self.observe, t, y, p)
        except ModelError:
            raise
        except Exception as exc:  # the user's function failed on abstract inputs
            raise ModelError(
                f"model {self.name!r}: evaluating rhs/initial/observables failed with "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if y0.shape != (n,):
            raise ModelError(f"model {self.name!r}: initial(p) returns shape {y0.shape}, "
                             f"expected ({n},)")
        if dy.shape != (n,):
            raise ModelError(f"model {self.name!r}: rhs returns shape {dy.shape}, expected ({n},)")
        if obs.shape != (len(self.observables),):
            raise ModelError(f"model {self.name!r}: every observable must return a scalar")

    # ----- names and values -------------------------------------------------------------
    @property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameter_specs)

    @property
    def parameters(self) -> tuple[Parameter, ...]:
        """The parameter specifications with their nominal values (needs concrete values:
        outside ``jax.jit``; inside, use :meth:`parameter_values`)."""
        values = np.asarray(self.nominal, dtype=float)
        return tuple(p.replace(value=float(v))
                     for p, v in zip(self.parameter_specs, values, strict=True))

    @property
    def initial(self):
        """The initial state: a function ``p -> y0``, or the array of initial values."""
        return self.initial_fn if self.initial_fn is not None else self.initial_values

    @property
    def observable_names(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.observables)

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.inputs)

    def state_index(self, name: str) -> int:
        try:
            return self.state_names.index(name)
        except ValueError:
            raise InputError(
                f"model {self.name!r} has no state {name!r}; states: {', '.join(self.state_names)}"
            ) from None

    def parameter_index(self, name: str) -> int:
        try:
            return self.parameter_names.index(name)
        except ValueError:
            raise InputError(
                f"model {self.name!r} has no parameter {name!r}; parameters: "
                f"{', '.join(self.parameter_names)}"
            ) from None

    def parameter_values(self) -> jax.Array:
        """The nominal parameter vector."""
        return self.nominal

    def param_array(self, params=None) -> jax.Array:
        """Resolve ``params`` to a full parameter vector.

        ``None`` gives the nominal values; a mapping ``{name: value}`` overrides some of
        them; an array gives all of them in the order of :attr:`parameter_names`.
        """
        base = self.parameter_values()
        if params is None:
            return base
        if isinstance(params, Mapping):
            for k, v in params.items():
                base = base.at[self.parameter_index(k)].set(v)
            return base
        arr = jnp.asarray(params, dtype=jnp.float64)
        if arr.shape != base.shape:
            raise InputError(
                f"params has shape {arr.shape}, expected ({base.size},) for parameters "
                f"{self.parameter_names}; pass a dict to set only some of them"
            )
        return arr

    def with_parameters(self, **values) -> Model:
        """A copy whose nominal values are changed, e.g. ``m.with_parameters(k1=2.0)``:
        the same program with new data (simulating it compiles nothing new)."""
        nominal = self.nominal
        for k, v in values.items():
            nominal = nominal.at[self.parameter_index(k)].set(v)
        return eqx.tree_at(lambda m: m.nominal, self, nominal)

    def with_initial(self, y0) -> Model:
        """A copy with new initial values (a model whose initial state is numbers)."""
        if self.initial_values is None:
            raise InputError(f"model {self.name!r} computes its initial state from its "
                             "parameters; change those, or pass y0 to the simulation")
        y0 = jnp.asarray(y0, dtype=jnp.float64)
        if y0.shape != self.initial_values.shape:
            raise InputError(f"initial values have shape {y0.shape}, expected "
                             f"{self.initial_values.shape} for states {self.state_names}")
        return eqx.tree_at(lambda m: m.initial_values, self, y0)

    _INIT_FIELDS = ("states", "parameters", "rhs", "initial", "observables", "inputs",
                    "events", "breakpoints", "stiff", "gates", "name", "citation", "source")

    def replace(self, **fields) -> Model:
        """A copy built again with some of the constructor's arguments replaced
        (``parameters``, ``initial``, ``inputs``, ``events``, ``rhs`` ...)."""
        unknown = sorted(set(fields) - set(self._INIT_FIELDS))
        if unknown:
            raise InputError(f"Model has no field {unknown[0]!r}; replaceable: "
                             f"{', '.join(self._INIT_FIELDS)}")
        args = dict(states=self.state_names, parameters=self.parameters, rhs=self.rhs,
                    initial=self.initial, observables=dict(self.observables),
                    inputs=self.inputs, events=self.events, breakpoints=self.breakpoints,
                    stiff=self.stiff,
                    gates=self.gates, name=self.name, citation=self.citation,
                    source=self.source)
        return Model(**(args | fields))

    def fingerprint(self) -> str:
        """SHA-256 of what defines this model's results: its source (the SBML text, the
        zoo entry), its functions (source code and the values they close over, so a
        replaced right-hand side or a retrained network counts), states, parameter specs,
        initial values, inputs and events. Run directories compare it to refuse resuming
        with a changed model."""
        from ..runtime.run import content_hash, fingerprint

        functions = {"rhs": self.rhs, "initial": self.initial_fn,
                     "breakpoints": self.breakpoints, **dict(self.observables)}
        return content_hash({
            "name": self.name, "source": None if self.source is None else list(self.source),
            "functions": fingerprint(functions), "states": list(self.state_names),
            "parameters": fingerprint(list(self.parameters)),
            "initial": fingerprint(self.initial_values), "inputs": fingerprint(self.inputs),
            "events": fingerprint(self.events), "stiff": self.stiff,
            "gates": list(self.gates)})

    def with_rhs(self, rhs: Callable) -> Model:
        """This model with ``rhs`` in place of its right-hand side (same signature and
        shape), without the constructor's checks, so it also works on a model whose numbers
        are traced and on a ``rhs`` that closes over traced values (a network's weights
        during training). :meth:`replace` builds and checks a model anew."""
        new = object.__new__(Model)
        for f in dataclasses.fields(self):
            object.__setattr__(new, f.name, getattr(self, f.name))
        object.__setattr__(new, "rhs", rhs)
        return new

    # ----- evaluation ---------------------------------------------------------------------
    def initial_state(self, p) -> jax.Array:
        if self.initial_fn is not None:
            return jnp.asarray(self.initial_fn(p), dtype=jnp.float64)
        return self.initial_values

    def input_values(self, t, p) -> jax.Array:
        if not self.inputs:
            return jnp.zeros(0)
        return jnp.stack([jnp.asarray(i(t, p), dtype=jnp.float64) for i in self.inputs])

    def vector_field(self, t, y, p) -> jax.Array:
        """dy/dt at ``(t, y)`` under parameters ``p`` (inputs evaluated at ``t``)."""
        return jnp.asarray(self.rhs(t, y, p, self.input_values(t, p)))

    def observe(self, t, y, p) -> jax.Array:
        """The vector of observables at ``(t, y)``."""
        if not self.observables:
            return jnp.zeros(0)
        return jnp.stack([jnp.asarray(fn(t, y, p), dtype=jnp.float64)
                          for _, fn in self.observables])

    def breakpoint_times(self, p) -> jax.Array | None:
        """:attr:`breakpoints` at ``p`` as an array (non-finite entries as +inf, which no
        solver reaches); ``None`` for a model without them."""
        if self.breakpoints is None:
            return None
        b = jnp.atleast_1d(jnp.asarray(self.breakpoints(p), dtype=jnp.float64))
        return jnp.where(jnp.isfinite(b), b, jnp.inf)

    def jump_times(self, t0: float, t1: float) -> np.ndarray:
        """Discontinuities of the inputs in ``[t0, t1]``."""
        js = [i.jump_times(t0, t1) for i in self.inputs]
        return np.unique(np.concatenate(js)) if js else np.zeros(0)

    def __repr__(self):
        return (f"Model({self.name!r}, states={list(self.state_names)}, "
                f"parameters={list(self.parameter_names)})")
