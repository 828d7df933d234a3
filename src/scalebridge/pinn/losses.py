"""Problem descriptions and their loss terms.

:class:`ODEProblem` derives the physics from a scalebridge :class:`~scalebridge.Model`;
:class:`PDEProblem` describes a PDE in one space and one time dimension by a residual
function. Both give named loss terms: ``residual`` (mean square of the equation residual at
the collocation points, optionally with causal weights), ``initial``, ``boundary:<kind>``
and ``data:<name>`` (mean square errors), after Raissi, Perdikaris & Karniadakis 2019
("Physics-informed neural networks", J. Comput. Phys. 378:686-707).

Unknown parameters (``estimate={name: initial guess}``) are trained with the network; a
positive guess is trained on the log scale, the results are reported on the linear scale.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputError
from ..model.model import Model
from .residuals import ode_residual, pde_residual, space_time_derivatives

__all__ = ["ODEProblem", "PDEProblem", "Dirichlet", "Neumann", "Periodic", "causal_mse"]


# ----- boundary conditions ------------------------------------------------------------------
_SIDES = ("both", "left", "right")


def _check_side(kind, side):
    if side not in _SIDES:
        raise InputError(f"{kind}: side={side!r} is unknown; use 'both', 'left' or 'right'")


@dataclass(frozen=True)
class Dirichlet:
    """``u = value`` on the left (``x = x0``), right (``x = x1``) or both ends; ``value`` is
    a number or a function ``t -> u``."""

    value: float | Callable = 0.0
    side: str = "both"

    def __post_init__(self):
        _check_side("Dirichlet", self.side)


@dataclass(frozen=True)
class Neumann:
    """``du/dx = value`` on the left, right or both ends (a number or a function of t)."""

    value: float | Callable = 0.0
    side: str = "both"

    def __post_init__(self):
        _check_side("Neumann", self.side)


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
    time_index: int
    residual: Callable            # (net, q, z) -> residual vector at one point
    terms: tuple[tuple[str, Callable], ...]  # (net, q) -> scalar, besides the residual
    resolve: Callable             # scaled estimated parameters -> q (what residual takes)
    est_names: tuple[str, ...]
    est_log: tuple[bool, ...]
    est_init: tuple[float, ...]   # on the training scale
    settings: dict = field(default_factory=dict)  # for checkpoint keys
    compiled: dict = field(default_factory=dict, repr=False)  # step functions by settings

    @property
    def term_names(self) -> tuple[str, ...]:
        return ("residual",) + tuple(n for n, _ in self.terms)

    def linear(self, theta_p) -> dict[str, float]:
        """Estimated parameters on the linear scale."""
        th = np.asarray(theta_p, dtype=float)
        return {n: float(np.exp(v) if lg else v)
                for n, v, lg in zip(self.est_names, th, self.est_log, strict=True)}


def _estimates(estimate, log_parameters, known: Sequence[str] | None, owner: str):
    est = dict(estimate or {})
    names, logs, init = [], [], []
    for name, guess in est.items():
        if known is not None and name not in known:
            raise InputError(f"estimate: {name!r} is not a parameter of {owner} (parameters: "
                             f"{', '.join(known)}); fix the name in estimate=")
        g = float(guess)
        if not np.isfinite(g):
            raise InputError(f"estimate: the initial guess of {name!r} is {g}; give a finite "
                             f"number")
        lg = bool(log_parameters) and g > 0
        names.append(name)
        logs.append(lg)
        init.append(float(np.log(g)) if lg else g)
    return tuple(names), tuple(logs), tuple(init)


def _cached(problem, build) -> _Spec:
    """One spec per problem object, so that training it again reuses the compiled steps."""
    spec = problem.__dict__.get("_spec_cache")
    if spec is None:
        spec = build()
        object.__setattr__(problem, "_spec_cache", spec)
    return spec


def _unscale(theta_p, logs):
    logs = jnp.asarray(logs)
    return jnp.where(logs, jnp.exp(theta_p), theta_p)


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
    ``estimate``: ``{parameter: initial guess}`` trained with the network; ``params``:
    ``{parameter: value}`` overriding the model's nominal values; ``initial_condition``:
    penalise ``y(t0) - model.initial_state(p)`` (turn off when the network's
    ``output_transform`` imposes it).
    """

    model: Model
    t_span: tuple[float, float]
    data: Mapping[str, tuple] | None = None
    estimate: Mapping[str, float] | None = None
    params: Mapping[str, float] | None = None
    initial_condition: bool = True
    log_parameters: bool = True

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
        _estimates(self.estimate, self.log_parameters, self.model.parameter_names,
                   f"model {self.model.name!r}")
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
        names, logs, init = _estimates(self.estimate, self.log_parameters,
                                       m.parameter_names, f"model {m.name!r}")
        base = m.param_array(dict(self.params or {}))
        idx = jnp.asarray([m.parameter_index(n) for n in names], dtype=int)
        t0, t1 = self.t_span

        def resolve(theta_p):
            if not names:
                return base
            return base.at[idx].set(_unscale(theta_p, logs))

        def residual(net, p, z):
            return ode_residual(m, net, z[0], p)

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
                     names, logs, init,
                     {"kind": "ode", "model": m.name, "t_span": [t0, t1],
                      "terms": [n for n, _ in terms], "estimate": list(names)})


# ----- PDE problems in 1D space + time ------------------------------------------------------
@dataclass(frozen=True)
class PDEProblem:
    """A PINN for a PDE in ``x`` in ``x_span`` and ``t`` in ``t_span``; the network is
    ``(x, t) -> u`` with ``n_outputs`` components.

    ``residual(derivs, x, t, params)`` returns the residual at one point from ``derivs``
    (``u``, ``u_t``, ``u_x``, ``u_xx``, each of shape ``(n_outputs,)``) and ``params``
    (a dict of the known ``params`` and the ``estimate``-d ones). ``initial``: ``x -> u(x,
    t0)``; ``boundary``: :class:`Dirichlet`, :class:`Neumann` or :class:`Periodic`
    conditions, penalised at ``n_boundary`` times; ``data``: ``(x, t, values)`` with values
    of shape ``(n,)`` or ``(n, n_outputs)``.
    """

    residual: Callable
    x_span: tuple[float, float]
    t_span: tuple[float, float]
    n_outputs: int = 1
    params: Mapping[str, float] | None = None
    estimate: Mapping[str, float] | None = None
    initial: Callable | None = None
    boundary: Sequence = ()
    data: tuple | None = None
    n_initial: int = 64
    n_boundary: int = 64
    log_parameters: bool = True

    def __post_init__(self):
        if not callable(self.residual):
            raise InputError("PDEProblem: residual must be a function (derivs, x, t, params)")
        for nm in ("x_span", "t_span"):
            a, b = (float(v) for v in getattr(self, nm))
            if not b > a:
                raise InputError(f"PDEProblem: {nm}={getattr(self, nm)} must be (lo, hi), lo<hi")
            object.__setattr__(self, nm, (a, b))
        object.__setattr__(self, "boundary", tuple(self.boundary))
        for bc in self.boundary:
            if not isinstance(bc, (Dirichlet, Neumann, Periodic)):
                raise InputError(f"PDEProblem: boundary conditions must be Dirichlet, Neumann "
                                 f"or Periodic, got {bc!r}")
        clash = sorted(set(self.params or {}) & set(self.estimate or {}))
        if clash:
            raise InputError(f"PDEProblem: {clash} are in both params and estimate; keep each "
                             f"parameter in one of them")
        _estimates(self.estimate, self.log_parameters, None, "the PDE")
        self._data()
        self._check_residual()

    def _check_residual(self):
        n = self.n_outputs
        q = {k: jnp.float64(v) for k, v in {**(self.params or {}),
                                            **(self.estimate or {})}.items()}

        def net(z):
            return jnp.zeros(n) + z[0] * z[1]
        try:
            out = jax.eval_shape(lambda: pde_residual(self.residual, net, 0.0, 0.0, q))
        except KeyError as exc:
            raise InputError(f"PDEProblem: the residual reads parameter {exc.args[0]!r}, which "
                             f"is in neither params nor estimate; add it to one of them") from None
        if out.ndim != 1:
            raise InputError(f"PDEProblem: the residual returns shape {out.shape}; return a "
                             f"number or a 1-D array per point")

    def _data(self):
        if self.data is None:
            return None
        try:
            x, t, v = self.data
        except (TypeError, ValueError):
            raise InputError("PDEProblem: data must be a triple (x, t, values)") from None
        x = np.asarray(x, dtype=float).ravel()
        t = np.asarray(t, dtype=float).ravel()
        v = np.asarray(v, dtype=float).reshape(x.size, -1) if x.size else np.zeros((0, 1))
        if t.shape != x.shape or v.shape[1] != self.n_outputs or x.size == 0:
            raise InputError(f"PDEProblem: data has {x.size} x, {t.size} t and values of shape "
                             f"{v.shape}; give n points with values of shape (n, "
                             f"{self.n_outputs})")
        _inside("PDEProblem data", x, *self.x_span, "x", "extend x_span or drop those points")
        _inside("PDEProblem data", t, *self.t_span, "t", "extend t_span or drop those points")
        return x, t, v

    def _spec(self) -> _Spec:
        return _cached(self, self._build)

    def _build(self) -> _Spec:
        names, logs, init = _estimates(self.estimate, self.log_parameters, None, "the PDE")
        known = {k: jnp.float64(v) for k, v in (self.params or {}).items()}
        (x0, x1), (t0, t1) = self.x_span, self.t_span
        fn = self.residual

        def resolve(theta_p):
            vals = _unscale(theta_p, logs) if names else ()
            return {**known, **{n: vals[i] for i, n in enumerate(names)}}

        def residual(net, q, z):
            return pde_residual(fn, net, z[0], z[1], q)

        terms = []
        if self.initial is not None:
            xs = jnp.linspace(x0, x1, self.n_initial)
            target = jax.vmap(lambda x: jnp.broadcast_to(
                jnp.asarray(self.initial(x), dtype=jnp.float64), (self.n_outputs,)))(xs)

            def initial(net, q):
                u = jax.vmap(lambda x: net(jnp.stack([x, jnp.float64(t0)])))(xs)
                return jnp.mean((u - target) ** 2)
            terms.append(("initial", initial))
        tb = jnp.linspace(t0, t1, self.n_boundary)
        for k, bc in enumerate(self.boundary):
            sides = {"both": (x0, x1), "left": (x0,), "right": (x1,)}.get(
                getattr(bc, "side", "both"))
            if isinstance(bc, Periodic):
                def term(net, q):
                    def one(t):
                        a = space_time_derivatives(net, x0, t)
                        b = space_time_derivatives(net, x1, t)
                        return jnp.sum((a["u"] - b["u"]) ** 2 + (a["u_x"] - b["u_x"]) ** 2)
                    return jnp.mean(jax.vmap(one)(tb))
                name = "boundary:periodic"
            else:
                def term(net, q, bc=bc, sides=sides):
                    def one(t):
                        out = 0.0
                        for x in sides:
                            x = jnp.float64(x)
                            if isinstance(bc, Dirichlet):
                                v = net(jnp.stack([x, t]))
                            else:  # one forward-mode derivative in x
                                v = jax.jvp(lambda s: net(jnp.stack([s, t])), (x,),
                                            (jnp.ones_like(x),))[1]
                            out = out + jnp.sum((v - _value(bc.value, t)) ** 2)
                        return out
                    return jnp.mean(jax.vmap(one)(tb)) / len(sides)
                name = f"boundary:{type(bc).__name__.lower()}"
            if name in dict(terms):
                name = f"{name}{k}"
            terms.append((name, term))
        data = self._data()
        if data is not None:
            dz = jnp.asarray(np.stack(data[:2], axis=1))
            dv = jnp.asarray(data[2])

            def data_term(net, q):
                return jnp.mean((jax.vmap(net)(dz) - dv) ** 2)
            terms.append(("data:u", data_term))
        return _Spec(2, self.n_outputs, (x0, t0), (x1, t1), 1, residual, tuple(terms), resolve,
                     names, logs, init,
                     {"kind": "pde", "x_span": [x0, x1], "t_span": [t0, t1],
                      "terms": [n for n, _ in terms], "estimate": list(names)})


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
