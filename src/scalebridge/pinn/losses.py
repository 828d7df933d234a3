"""Problem descriptions and their loss terms.

:class:`ODEProblem` derives the physics from a scalebridge :class:`~scalebridge.Model`;
:class:`PDEProblem` describes a PDE in one or two space dimensions, stationary or in time,
by a residual function. Both give named loss terms: ``residual`` (mean square of the
equation residual at the collocation points, optionally with causal weights), ``initial``,
``boundary:<kind>`` and ``data`` or ``data:<name>`` (mean square errors), after Raissi,
Perdikaris & Karniadakis 2019 ("Physics-informed neural networks", J. Comput. Phys. 378:686-707).

Unknown parameters are trained with the network, in the unconstrained coordinates of their
:class:`~scalebridge.ParameterSpace` (so they stay within their bounds); the results are
reported on the linear scale. ``estimate`` is a ParameterSpace (its estimated parameters)
or ``{name: initial guess}``: for an ODE problem each such parameter keeps its model
specification (bounds, scale), and a parameter without bounds on the linear scale with a
positive guess is trained on the log scale.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputError
from ..infer.space import ParameterSpace
from ..model.model import Model
from ..model.parameter import Parameter
from .residuals import derivatives, ode_residual, pde_residual

__all__ = ["ODEProblem", "PDEProblem", "Dirichlet", "Neumann", "Periodic", "causal_mse"]


# ----- boundary conditions ------------------------------------------------------------------
_SIDES = ("both", "left", "right")


@dataclass(frozen=True)
class _EndCondition:
    """A condition at the left (``x = x0``), right (``x = x1``) or both ends; ``value`` is a
    number or a function ``t -> value``."""

    value: float | Callable = 0.0
    side: str = "both"

    def __post_init__(self):
        if self.side not in _SIDES:
            raise InputError(f"{type(self).__name__}: side={self.side!r} is unknown; use "
                             f"'both', 'left' or 'right'")


class Dirichlet(_EndCondition):
    """``u = value`` at the chosen ends."""


class Neumann(_EndCondition):
    """``du/dx = value`` at the chosen ends."""


@dataclass(frozen=True)
class Periodic:
    """``u(x0, t) = u(x1, t)`` and ``u_x(x0, t) = u_x(x1, t)``."""


def _value(v, t):
    return jnp.asarray(v(t) if callable(v) else v, dtype=jnp.float64)


# ----- the compiled description shared by both problem kinds ---------------------------------
@dataclass(frozen=True, eq=False)  # hashed by identity: a static argument of jit
class _Spec:
    in_size: int
    out_size: int
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    time_index: int | None
    residual: Callable            # (net, q, z) -> residual vector at one point
    terms: tuple[tuple[str, Callable], ...]  # (net, q) -> scalar, besides the residual
    resolve: Callable             # unconstrained estimated parameters -> q (what residual takes)
    space: ParameterSpace         # of the estimated parameters
    est_init: tuple[float, ...]   # unconstrained coordinates of the initial guesses
    settings: dict = field(default_factory=dict)  # for checkpoint keys
    compiled: dict = field(default_factory=dict, repr=False)  # step functions by settings

    @property
    def term_names(self) -> tuple[str, ...]:
        return ("residual",) + tuple(n for n, _ in self.terms)

    def linear(self, theta_p) -> dict[str, float]:
        """Estimated parameters on the linear scale."""
        return self.space.as_dict(self.space.unconstrained_to_scaled(np.asarray(theta_p)))


def _estimates(estimate, model: Model | None, owner: str) -> ParameterSpace:
    """The space of the estimated parameters (see the module docstring)."""
    if isinstance(estimate, ParameterSpace):
        space = ParameterSpace([estimate.parameters[i] for i in estimate.estimated_index])
        names = space.ids
    else:
        names = list(dict(estimate or {}))
    known = None if model is None else model.parameter_names
    for name in names:
        if known is not None and name not in known:
            raise InputError(f"estimate: {name!r} is not a parameter of {owner} (parameters: "
                             f"{', '.join(known)}); fix the name in estimate=")
    if isinstance(estimate, ParameterSpace):
        _strictly_inside(space)
        return space
    specs = []
    for name, guess in dict(estimate or {}).items():
        g = float(guess)
        if not np.isfinite(g):
            raise InputError(f"estimate: the initial guess of {name!r} is {g}; give a finite "
                             f"number")
        spec = (Parameter(name, g) if model is None else
                model.parameters[model.parameter_index(name)].replace(value=g, estimate=True))
        if not spec.lower < g < spec.upper:
            raise InputError(f"estimate: the initial guess {g} of {name!r} lies on or outside "
                             f"its bounds [{spec.lower}, {spec.upper}]; give a guess strictly "
                             "inside them")
        if spec.scale == "lin" and np.isinf(spec.lower) and np.isinf(spec.upper) and g > 0:
            spec = spec.replace(scale="log", lower=0.0)
        specs.append(spec)
    return ParameterSpace(specs)


def _strictly_inside(space: ParameterSpace) -> None:
    """Training starts from the initial guesses in unconstrained coordinates, where a guess
    on a bound is infinitely far: each must lie strictly inside its bounds."""
    x, lo, hi = space.nominal, space.lower, space.upper
    bad = [n for n, v, a, b in zip(space.ids, x, lo, hi, strict=True) if not a < v < b]
    if bad:
        raise InputError(f"estimate: the initial guesses of {', '.join(map(repr, bad))} lie on "
                         "or outside their bounds; give guesses strictly inside the bounds")


def _initial(space: ParameterSpace) -> tuple[float, ...]:
    return tuple(float(v) for v in space.to_unconstrained(space.nominal))


def _cached(problem, build) -> _Spec:
    """One spec per problem object, so that training it again reuses the compiled steps."""
    spec = problem.__dict__.get("_spec_cache")
    if spec is None:
        spec = build()
        object.__setattr__(problem, "_spec_cache", spec)
    return spec


def _inside(what, values, lo, hi, coord, fix):
    v = np.asarray(values, dtype=float)
    bad = v[(v < lo - 1e-12) | (v > hi + 1e-12) | ~np.isfinite(v)]
    if bad.size:
        raise InputError(f"{what}: {coord} {bad[:5].tolist()} lie outside the domain "
                         f"[{lo}, {hi}]; {fix}")


# ----- ODE problems -------------------------------------------------------------------------
@dataclass(frozen=True)
class ODEProblem:
    """A PINN for ``model`` on ``t_span = (t0, t1)``: the network is ``t -> y(t)``.

    ``data``: ``{name: (times, values)}`` for states or observables of the model;
    ``estimate``: the parameters trained with the network, a ParameterSpace or
    ``{parameter: initial guess}`` (module docstring); ``params``:
    ``{parameter: value}`` overriding the model's nominal values; ``initial_condition``:
    penalise ``y(t0) - model.initial_state(p)`` (turn off when the network's
    ``output_transform`` imposes it); ``residual_weights``: ``{state: w}`` weights of the
    squared residuals of single equations (default 1), as Yazdani et al. (2020) weigh the
    equations of fast and slow species.
    """

    model: Model
    t_span: tuple[float, float]
    data: Mapping[str, tuple] | None = None
    estimate: ParameterSpace | Mapping[str, float] | None = None
    params: Mapping[str, float] | None = None
    initial_condition: bool = True
    residual_weights: Mapping[str, float] | None = None

    def __post_init__(self):
        if not isinstance(self.model, Model):
            raise InputError(f"ODEProblem: model must be a scalebridge Model, got "
                             f"{type(self.model).__name__}")
        t0, t1 = (float(v) for v in self.t_span)
        if not t1 > t0:
            raise InputError(f"ODEProblem: t_span={self.t_span} must be (t0, t1) with t0 < t1")
        object.__setattr__(self, "t_span", (t0, t1))
        for name in (self.params or {}):
            if name not in self.model.parameter_names:
                raise InputError(f"params: {name!r} is not a parameter of model "
                                 f"{self.model.name!r} (parameters: "
                                 f"{', '.join(self.model.parameter_names)}); fix the name")
        _estimates(self.estimate, self.model, f"model {self.model.name!r}")
        for name, w in (self.residual_weights or {}).items():
            if name not in self.model.state_names:
                raise InputError(f"residual_weights: {name!r} is not a state of model "
                                 f"{self.model.name!r} (states: "
                                 f"{', '.join(self.model.state_names)}); fix the name")
            if not (np.isfinite(w) and w >= 0):
                raise InputError(f"residual_weights: {name!r} has weight {w}; give a finite "
                                 f"number >= 0")
        self._data()

    def _data(self):
        m = self.model
        out = []
        for name, pair in (self.data or {}).items():
            if name in m.state_names:
                kind, idx = "state", m.state_names.index(name)
            elif name in m.observable_names:
                kind, idx = "observable", m.observable_names.index(name)
            else:
                raise InputError(
                    f"data: {name!r} is neither a state nor an observable of model {m.name!r} "
                    f"(states: {', '.join(m.state_names)}; observables: "
                    f"{', '.join(m.observable_names) or 'none'}); rename the data or add the "
                    f"observable to the model")
            try:
                times, values = pair
            except (TypeError, ValueError):
                raise InputError(f"data: {name!r} must be a pair (times, values)") from None
            times = np.asarray(times, dtype=float).ravel()
            values = np.asarray(values, dtype=float).ravel()
            if times.shape != values.shape or times.size == 0:
                raise InputError(f"data: {name!r} has {times.size} times and {values.size} "
                                 f"values; give one value per time")
            if not np.all(np.isfinite(values)):
                raise InputError(f"data: {name!r} holds NaN or infinite values; drop them")
            _inside(f"data {name!r}", times, *self.t_span, "times",
                    "extend t_span or drop those measurements")
            out.append((name, kind, idx, times, values))
        return out

    def _spec(self) -> _Spec:
        return _cached(self, self._build)

    def _build(self) -> _Spec:
        m = self.model
        space = _estimates(self.estimate, m, f"model {m.name!r}")
        names = space.ids
        base = m.param_array(dict(self.params or {}))
        idx = jnp.asarray([m.parameter_index(n) for n in names], dtype=int)
        t0, t1 = self.t_span

        def resolve(theta_p):
            if not names:
                return base
            return base.at[idx].set(space.to_linear(space.from_unconstrained(theta_p)[0]))

        rw = self.residual_weights or {}
        scale = jnp.sqrt(jnp.asarray([float(rw.get(n, 1.0)) for n in m.state_names]))

        def residual(net, p, z):
            return scale * ode_residual(m, net, z[0], p)

        terms = []
        if self.initial_condition:
            def initial(net, p):
                return jnp.mean((net(jnp.asarray([t0])) - m.initial_state(p)) ** 2)
            terms.append(("initial", initial))
        for name, kind, i, times, values in self._data():
            tt, vv = jnp.asarray(times), jnp.asarray(values)

            def data_term(net, p, kind=kind, i=i, tt=tt, vv=vv):
                def one(t):
                    u = net(jnp.reshape(t, (1,)))
                    return u[i] if kind == "state" else m.observe(t, u, p)[i]
                return jnp.mean((jax.vmap(one)(tt) - vv) ** 2)
            terms.append((f"data:{name}", data_term))
        return _Spec(1, len(m.state_names), (t0,), (t1,), 0, residual, tuple(terms), resolve,
                     space, _initial(space),
                     {"kind": "ode", "model": m.name, "t_span": [t0, t1],
                      "residual_weights": {k: float(v) for k, v in rw.items()},
                      "terms": [n for n, _ in terms],
                      "estimate": space.to_dict()["parameters"]})


# ----- PDE problems in 1-2 space dimensions, stationary or in time ---------------------------
def _span(name, value):
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(f"PDEProblem: {name}={value!r} must be a pair (lo, hi)") from None
    if not b > a:
        raise InputError(f"PDEProblem: {name}={value} must be (lo, hi) with lo < hi")
    return (a, b)


@dataclass(frozen=True)
class PDEProblem:
    """A PINN for a PDE in space ``x`` (and ``y`` when ``y_span`` is given) and time ``t``
    (stationary when ``t_span`` is None); the network maps ``z = (x[, y][, t])`` to
    ``n_outputs`` fields.

    ``residual(d, params)`` returns the residual at one point: ``d`` holds ``u``, ``u_x``,
    ``u_xx`` (and ``u_y``, ``u_yy``, ``u_t`` where they exist), each of shape
    ``(n_outputs,)``, and the coordinates ``x`` (``y``, ``t``); ``params`` is a dict of the
    known ``params`` and the ``estimate``-d ones. ``initial``: ``u(x[, y])`` at ``t0``,
    penalised at ``n_initial`` points; ``boundary``: :class:`Dirichlet`, :class:`Neumann`
    or :class:`Periodic` conditions at both ends of ``x`` (one space dimension), at
    ``n_boundary`` times; ``data``: ``(z, values)`` with ``z`` of shape ``(n, n_inputs)``
    and values ``(n, len(observed))`` for the outputs ``observed`` (default: all).
    """

    residual: Callable
    x_span: tuple[float, float]
    t_span: tuple[float, float] | None = None
    n_outputs: int = 1
    y_span: tuple[float, float] | None = None
    params: Mapping[str, float] | None = None
    estimate: ParameterSpace | Mapping[str, float] | None = None
    initial: Callable | None = None
    boundary: Sequence = ()
    data: tuple | None = None
    observed: Sequence[int] | None = None
    n_initial: int = 64
    n_boundary: int = 64

    def __post_init__(self):
        if not callable(self.residual):
            raise InputError("PDEProblem: residual must be a function (d, params)")
        for nm in ("x_span", "y_span", "t_span"):
            if getattr(self, nm) is not None or nm == "x_span":
                object.__setattr__(self, nm, _span(nm, getattr(self, nm)))
        object.__setattr__(self, "boundary", tuple(self.boundary))
        for bc in self.boundary:
            if not isinstance(bc, (Dirichlet, Neumann, Periodic)):
                raise InputError(f"PDEProblem: boundary conditions must be Dirichlet, Neumann "
                                 f"or Periodic, got {bc!r}")
        if self.boundary and (self.y_span is not None or self.t_span is None):
            raise InputError("PDEProblem: boundary conditions are supported in one space "
                             "dimension with time; in 2D or stationary problems impose them "
                             "through the network's output_transform or as data")
        if self.initial is not None and self.t_span is None:
            raise InputError("PDEProblem: initial= needs t_span; a stationary problem has no "
                             "initial condition")
        obs = tuple(range(self.n_outputs)) if self.observed is None else \
            tuple(int(i) for i in self.observed)
        if not obs or any(i < 0 or i >= self.n_outputs for i in obs):
            raise InputError(f"PDEProblem: observed={self.observed} must name outputs among "
                             f"0..{self.n_outputs - 1}")
        object.__setattr__(self, "observed", obs)
        clash = sorted(set(self.params or {}) & set(_estimates(self.estimate, None,
                                                               "the PDE").ids))
        if clash:
            raise InputError(f"PDEProblem: {clash} are in both params and estimate; keep each "
                             f"parameter in one of them")
        self._data()
        self._check_residual()

    @property
    def coords(self) -> tuple[str, ...]:
        """Names of the network's inputs, in order."""
        return ("x",) + (("y",) if self.y_span else ()) + (("t",) if self.t_span else ())

    @property
    def box(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The domain: lower and upper corners, in the order of :attr:`coords`."""
        spans = [self.x_span] + [s for s in (self.y_span, self.t_span) if s is not None]
        return tuple(s[0] for s in spans), tuple(s[1] for s in spans)

    def _check_residual(self):
        n, coords = self.n_outputs, self.coords
        space = _estimates(self.estimate, None, "the PDE")
        guesses = space.as_dict(space.nominal)
        q = {k: jnp.float64(v) for k, v in {**(self.params or {}), **guesses}.items()}

        def net(z):
            return jnp.zeros(n) + jnp.prod(z)
        try:
            out = jax.eval_shape(lambda: pde_residual(self.residual, net,
                                                      jnp.zeros(len(coords)), coords, q))
        except KeyError as exc:
            raise InputError(f"PDEProblem: the residual reads {exc.args[0]!r}, which is neither "
                             f"a parameter in params or estimate nor one of the derivatives "
                             f"{sorted(derivatives(net, jnp.zeros(len(coords)), coords))}; "
                             f"fix the name or add the parameter") from None
        if out.ndim != 1:
            raise InputError(f"PDEProblem: the residual returns shape {out.shape}; return a "
                             f"number or a 1-D array per point")

    def _data(self):
        if self.data is None:
            return None
        coords = self.coords
        try:
            z, v = self.data
        except (TypeError, ValueError):
            raise InputError("PDEProblem: data must be a pair (z, values)") from None
        z = np.asarray(z, dtype=float)
        v = np.asarray(v, dtype=float)
        if z.ndim == 1 and len(coords) == 1:
            z = z[:, None]
        if v.ndim == 1 and len(self.observed) == 1:
            v = v[:, None]
        if z.ndim != 2 or z.shape[1] != len(coords) or z.shape[0] == 0 or \
                v.shape != (z.shape[0], len(self.observed)):
            raise InputError(f"PDEProblem: data has points of shape {z.shape} and values of "
                             f"shape {v.shape}; give z of shape (n, {len(coords)}) (columns "
                             f"{', '.join(coords)}) and values of shape (n, "
                             f"{len(self.observed)})")
        if not np.all(np.isfinite(v)):
            raise InputError("PDEProblem: data values hold NaN or infinite entries; drop them")
        for i, (c, lo, hi) in enumerate(zip(coords, *self.box, strict=True)):
            _inside("PDEProblem data", z[:, i], lo, hi, c,
                    f"extend the {c} span or drop those points")
        return z, v

    def _spec(self) -> _Spec:
        return _cached(self, self._build)

    def _build(self) -> _Spec:
        space = _estimates(self.estimate, None, "the PDE")
        names = space.ids
        known = {k: jnp.float64(v) for k, v in (self.params or {}).items()}
        coords, (lower, upper) = self.coords, self.box
        fn, n_out = self.residual, self.n_outputs

        def resolve(theta_p):
            vals = space.to_linear(space.from_unconstrained(theta_p)[0]) if names else ()
            return {**known, **{n: vals[i] for i, n in enumerate(names)}}

        def residual(net, q, z):
            return pde_residual(fn, net, z, coords, q)

        terms = []
        if self.initial is not None:
            spans = [self.x_span] + ([self.y_span] if self.y_span else [])
            if len(spans) == 1:
                zs = np.linspace(*self.x_span, self.n_initial)[:, None]
            else:
                rng = np.random.default_rng(0)
                lo, hi = np.array(spans).T
                zs = lo + (hi - lo) * rng.random((self.n_initial, 2))
            z0 = jnp.asarray(np.hstack([zs, np.full((len(zs), 1), self.t_span[0])]))
            target = jax.vmap(lambda z: jnp.broadcast_to(
                jnp.asarray(self.initial(*z[:-1]), dtype=jnp.float64), (n_out,)))(z0)

            def initial(net, q):
                return jnp.mean((jax.vmap(net)(z0) - target) ** 2)
            terms.append(("initial", initial))
        if self.boundary:
            terms += self._boundary_terms()
        data = self._data()
        if data is not None:
            dz, dv = jnp.asarray(data[0]), jnp.asarray(data[1])
            obs = jnp.asarray(self.observed)

            def data_term(net, q):
                return jnp.mean((jax.vmap(net)(dz)[:, obs] - dv) ** 2)
            terms.append(("data", data_term))
        return _Spec(len(coords), n_out, lower, upper,
                     coords.index("t") if "t" in coords else None, residual, tuple(terms),
                     resolve, space, _initial(space),
                     {"kind": "pde", "coords": list(coords), "lower": list(lower),
                      "upper": list(upper), "terms": [n for n, _ in terms],
                      "estimate": space.to_dict()["parameters"]})

    def _boundary_terms(self):
        (x0, x1), (t0, t1) = self.x_span, self.t_span
        tb = jnp.linspace(t0, t1, self.n_boundary)

        def value_and_slope(net, x, t):
            return jax.jvp(lambda s: net(jnp.stack([s, t])), (jnp.float64(x),),
                           (jnp.float64(1.0),))

        terms = []
        for k, bc in enumerate(self.boundary):
            if isinstance(bc, Periodic):
                def term(net, q):
                    def one(t):
                        a, b = value_and_slope(net, x0, t), value_and_slope(net, x1, t)
                        return jnp.sum((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2)
                    return jnp.mean(jax.vmap(one)(tb))
            else:
                sides = {"both": (x0, x1), "left": (x0,), "right": (x1,)}[bc.side]
                which = 0 if isinstance(bc, Dirichlet) else 1

                def term(net, q, bc=bc, sides=sides, which=which):
                    def one(t):
                        return sum(jnp.sum((value_and_slope(net, x, t)[which]
                                            - _value(bc.value, t)) ** 2) for x in sides)
                    return jnp.mean(jax.vmap(one)(tb)) / len(sides)
            name = f"boundary:{type(bc).__name__.lower()}"
            if name in dict(terms):
                name = f"{name}{k}"
            terms.append((name, term))
        return terms


# ----- the residual term, optionally causal -------------------------------------------------
def causal_mse(r2, t, mask, t_lo, t_hi, eps: float | None, n_chunks: int):
    """Mean of the squared residuals ``r2`` over the points where ``mask`` is 1.

    With ``eps``, the causal weighting of Wang, Sankaran & Perdikaris 2022 ("Respecting
    causality is all you need for training physics-informed neural networks",
    arXiv:2203.07404): the points are binned into ``n_chunks`` time slices with losses
    ``L_i``, weighted by ``w_i = exp(-eps sum_{k<i} L_k)`` (held constant in the gradient),
    so later times count only once earlier ones are resolved. Returns the loss and the
    smallest weight (1 without causal weighting).
    """
    if eps is None:
        return jnp.sum(mask * r2) / jnp.maximum(jnp.sum(mask), 1.0), jnp.float64(1.0)
    b = jnp.clip(((t - t_lo) / (t_hi - t_lo) * n_chunks).astype(int), 0, n_chunks - 1)
    num = jax.ops.segment_sum(mask * r2, b, n_chunks)
    den = jax.ops.segment_sum(mask, b, n_chunks)
    li = num / jnp.maximum(den, 1.0)
    w = jax.lax.stop_gradient(jnp.exp(-eps * (jnp.cumsum(li) - li)))
    return jnp.mean(w * li), jnp.min(w)
