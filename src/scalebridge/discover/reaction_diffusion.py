"""Discover density-dependent reaction-diffusion models from 1D density profiles.

The model class is ``u_t = (D(u) u_x)_x + G(u) u`` on ``[0, L]`` with no-flux boundaries,
where the diffusivity ``D(u) = sum_k c_k d_k(u/K)`` and the per-capita growth rate
``G(u) = sum_k c_k g_k(u/K)`` are sparse combinations of a small library of terms
(:func:`polynomial_library`: powers of ``u/K``). Classical Fisher-KPP is ``D0`` with
logistic growth; porous Fisher-KPP (Sherratt & Murray 1990, Proc R Soc B 241:29-36) has
``D = D1 u/K``; Jin et al. 2016 (J Theor Biol 390:136-145) compared both on scratch
assays, and Lagergren et al. 2020 (PLoS Comput Biol 16:e1008462) learned ``D`` and ``G``
with biologically-informed neural networks.

Because such data have few time points (too few for derivative-based regression such as
PDE-FIND), every candidate set of terms is fitted by simulation: the method of lines on
a vertex-centred grid (the conservative flux form of :mod:`scalebridge.pde`, with
``D`` averaged onto cell faces), solved by the engine's :class:`~scalebridge.Simulator`
(Tsit5), least squares on all replicates with forward-mode Jacobians. One set of terms is
shared by all conditions (e.g. initial densities) and the coefficients are fitted per
condition; the set is chosen by an information criterion (BIC by default) over all
conditions together.

``discover_reaction_diffusion`` selects the terms; ``fit_reaction_diffusion`` fits a
given set. Both return a :class:`ReactionDiffusionFit`, whose :meth:`~ReactionDiffusionFit.model`
builds the same scalebridge :class:`~scalebridge.Model` that the fit simulates
(:func:`density_model`, on :func:`scalebridge.pde.reaction_diffusion`).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from .. import _x64  # noqa: F401  (float64)
from .._console import progress
from ..errors import InputError
from ..infer.fit import least_squares

DIFFUSION = "diffusion"
GROWTH = "growth"
DELAY = "delay"


@dataclass(frozen=True)
class Term:
    """One library term: a function ``fn(v)`` of the scaled density ``v = u/K`` that
    enters the diffusivity (``kind="diffusion"``) or the per-capita growth rate
    (``kind="growth"``) with a fitted coefficient named ``name``; or one of the two
    coefficients of the time delay (``kind="delay"``, see :func:`delay_terms`)."""

    name: str
    kind: str
    fn: Callable = field(compare=False)
    label: str = ""

    def __post_init__(self):
        if self.kind not in (DIFFUSION, GROWTH, DELAY):
            raise InputError(f"term {self.name!r}: kind must be 'diffusion', 'growth' or "
                             f"'delay', got {self.kind!r}")
        if not self.name.isidentifier():
            raise InputError(f"term name {self.name!r} must be an identifier, e.g. 'D1'")


def _power(k: int):
    if k == 0:
        return lambda v: jnp.ones_like(v)
    return lambda v: v**k


def _power_label(k: int) -> str:
    return "1" if k == 0 else ("(u/K)" if k == 1 else f"(u/K)^{k}")


def diffusion_term(power: int) -> Term:
    """``D<power> (u/K)^power`` in the diffusivity."""
    return Term(f"D{power}", DIFFUSION, _power(power), _power_label(power))


def growth_term(power: int) -> Term:
    """``r<power> (u/K)^power`` in the per-capita growth rate."""
    return Term(f"r{power}", GROWTH, _power(power), _power_label(power))


def logistic_growth() -> Term:
    """``r (1 - u/K)``: logistic growth with carrying capacity ``K`` as one term."""
    return Term("r", GROWTH, lambda v: 1.0 - v, "(1 - u/K)")


def delay_terms() -> tuple[Term, Term]:
    """A delayed response to the scratch: the whole right-hand side is multiplied by
    ``T(t) = 1 / (1 + a_T exp(-b_T (t - t0)))`` (``a_T, b_T >= 0``; ``a_T = 0`` is no
    delay). Lagergren et al. 2020 found such a delay with BINNs (their logistic
    ``1 / (1 + exp(-(beta0 + beta1 t)))`` with ``a_T = exp(-beta0)``, ``b_T = beta1``).
    The pair is selected or dropped together."""
    return (Term("a_T", DELAY, lambda t: t, "a_T"), Term("b_T", DELAY, lambda t: t, "b_T"))


def polynomial_library(diffusion_powers: Sequence[int] = (0, 1, 2),
                       growth_powers: Sequence[int] = (0, 1, 2)) -> tuple[Term, ...]:
    """Terms ``D_k (u/K)^k`` and ``r_k (u/K)^k`` for the given powers."""
    return (*(diffusion_term(int(k)) for k in diffusion_powers),
            *(growth_term(int(k)) for k in growth_powers))


def classical_fisher_kpp_terms() -> tuple[Term, ...]:
    """``u_t = D0 u_xx + r u (1 - u/K)`` (Fisher 1937; Kolmogorov et al. 1937)."""
    return (diffusion_term(0), logistic_growth())


def porous_fisher_kpp_terms() -> tuple[Term, ...]:
    """``u_t = (D1 (u/K) u_x)_x + r u (1 - u/K)`` (Sherratt & Murray 1990)."""
    return (diffusion_term(1), logistic_growth())


# ----------------------------------------------------------------------------- validation

def _as_data(data, positions, times):
    x = np.asarray(positions, dtype=float)
    t = np.asarray(times, dtype=float)
    if x.ndim != 1 or x.size < 3:
        raise InputError(f"positions must be a 1-D array of at least 3 positions, got shape "
                         f"{x.shape}")
    if not np.all(np.isfinite(x)) or np.any(np.diff(x) <= 0):
        raise InputError("positions must be finite and strictly increasing; sort the columns "
                         "of the data by position")
    if t.ndim != 1 or t.size < 3:
        raise InputError(f"times must be a 1-D array of at least 3 times (the first gives the "
                         f"initial condition), got shape {t.shape}")
    if not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
        raise InputError("times must be finite and strictly increasing; sort the data by time")
    u = np.asarray(data, dtype=float)
    while u.ndim < 4:  # (times, positions) -> (1 replicate) -> (1 condition)
        u = u[None]
    if u.ndim != 4 or u.shape[2:] != (t.size, x.size):
        raise InputError(f"data has shape {np.shape(data)}; expected (conditions, replicates, "
                         f"times, positions) with {t.size} times and {x.size} positions")
    if not np.all(np.isfinite(u)):
        c, r, i, j = np.argwhere(~np.isfinite(u))[0]
        raise InputError(f"data contain NaN or infinity (first at condition {c}, replicate "
                         f"{r}, time {t[i]:g}, position {x[j]:g}); drop or impute those "
                         "values before fitting")
    return u, x, t


def _check_terms(terms) -> tuple[Term, ...]:
    terms = tuple(terms)
    if not terms or not all(isinstance(s, Term) for s in terms):
        raise InputError("terms must be a non-empty sequence of Term, e.g. "
                         "polynomial_library() or porous_fisher_kpp_terms()")
    names = [s.name for s in terms]
    if len(set(names)) != len(names):
        raise InputError(f"term names must be unique, got {names}")
    delays = sorted(s.name for s in terms if s.kind == DELAY)
    if delays and delays != ["a_T", "b_T"]:
        raise InputError(f"delay terms {delays} are incomplete; add both with delay_terms()")
    return terms


# ----------------------------------------------------------------------------- simulation

def _delay_index(library) -> tuple[int, int] | None:
    names = [s.name for s in library]
    return (names.index("a_T"), names.index("b_T")) if "a_T" in names else None


def density_model(terms: Sequence[Term], coefs, K: float, nodes: np.ndarray, initial,
                  t0: float, name: str = "rd"):
    """``u_t = T(t) [(D(u) u_x)_x + G(u) u]`` on the vertex-centred grid ``nodes`` (no-flux
    boundaries) as a scalebridge :class:`~scalebridge.Model`, built by
    :func:`scalebridge.pde.reaction_diffusion` (its finite-volume :class:`~scalebridge.pde.
    Diffusion` operator, the factor ``D(u)`` averaged onto the faces). Its parameters are
    the coefficients of ``terms`` (values ``coefs``), then ``K`` (fixed), then the tissue's
    diffusion multiplier ``D`` (1); ``T(t)`` is 1 unless ``terms`` hold :func:`delay_terms`
    (measured from ``t0``)."""
    from ..model.model import Model
    from ..model.parameter import Parameter
    from ..pde.grid import grid1d
    from ..pde.tissue import reaction_diffusion

    terms = tuple(terms)
    n = len(terms)
    d_idx = [k for k, s in enumerate(terms) if s.kind == DIFFUSION]
    g_idx = [k for k, s in enumerate(terms) if s.kind == GROWTH]
    params = [Parameter(s.name, float(v), lower=-math.inf if s.kind == GROWTH else 0.0)
              for s, v in zip(terms, coefs, strict=True)]
    params.append(Parameter("K", float(K), lower=0.0, estimate=False))

    def cell_rhs(t, y, p, u):
        v = y / p[n]
        g = sum((p[k] * terms[k].fn(v) for k in g_idx), jnp.zeros_like(y))
        return g * y

    def density_diffusivity(u, p):
        v = u / p[n]
        return sum((p[k] * terms[k].fn(v) for k in d_idx), jnp.zeros_like(u))

    cell = Model(name="density", states=["u"], parameters=params, rhs=cell_rhs,
                 initial=[0.0], stiff=False)
    grid = grid1d(nodes.size, float(nodes[-1] - nodes[0]), "noflux")
    model = reaction_diffusion(
        cell, grid, diffusion={"u": 1.0},
        nonlinear_diffusion=density_diffusivity if d_idx else None,
        initial=np.asarray(initial, dtype=float), name=name, stiff=False,
    ).replace(citation="Jin et al. (2016) J Theor Biol 390:136; Lagergren et al. (2020) "
                       "PLoS Comput Biol 16:e1008462")
    delay = _delay_index(terms)
    if delay is not None:  # T(t) multiplies reaction and diffusion alike
        inner = model.rhs

        def delayed(t, y, p, u):
            return inner(t, y, p, u) / (1.0 + p[delay[0]] * jnp.exp(-p[delay[1]] * (t - t0)))

        model = model.replace(rhs=delayed)
    return model


class _Solver:
    """Forward simulation (the engine's :class:`~scalebridge.Simulator`, Tsit5) and
    residuals for one library and one space-time layout, in scaled densities ``v = u/K``.
    Coefficient vectors ``c`` of the library become the model's parameters ``(c, K=1,
    D=1)``."""

    def __init__(self, library, nodes, positions, times, rtol, atol, max_steps):
        from ..simulate import Simulator

        self.library = library
        self.obs = jnp.asarray(_interp_matrix(nodes, positions))
        model = density_model(library, np.zeros(len(library)), 1.0, nodes,
                              np.zeros(nodes.size), float(times[0]))
        sim = Simulator(model, times, t0=float(times[0]), solver=diffrax.Tsit5(), rtol=rtol,
                        atol=atol, max_steps=max_steps, sensitivities="forward")
        one = jnp.ones(2)

        def observed(c, v0):  # (times, positions); NaN where the solve failed
            ys, _, ok = sim.solve(jnp.concatenate([c, one]), v0)
            return jnp.where(ok, ys, jnp.nan) @ self.obs.T

        def residuals(c, v0, data):  # data: (replicates, times, positions), times > t0
            return (observed(c, v0)[1:][None] - data).ravel()

        self.observed = jax.jit(observed)
        self.residuals = jax.jit(residuals)
        self.jacobian = jax.jit(jax.jacfwd(residuals))


def _interp_matrix(nodes: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Linear interpolation from node values to ``positions`` as a matrix."""
    m = np.zeros((positions.size, nodes.size))
    j = np.clip(np.searchsorted(nodes, positions, side="right") - 1, 0, nodes.size - 2)
    w = (positions - nodes[j]) / (nodes[j + 1] - nodes[j])
    m[np.arange(positions.size), j] = 1.0 - w
    m[np.arange(positions.size), j + 1] = w
    return m


# ----------------------------------------------------------------------------- results

@dataclass(frozen=True, eq=False)
class ReactionDiffusionFit:
    """A fitted model ``u_t = (D(u) u_x)_x + G(u) u`` with one set of terms shared by all
    conditions and coefficients per condition.

    ``params[c]`` maps term names to coefficients for condition ``c`` (diffusion terms in
    position^2/time, growth terms in 1/time); ``rmse[c]`` is the root-mean-square error over
    replicates, positions and the times after the first (data units); ``aic`` and ``bic``
    are over all conditions (Gaussian errors with one variance); ``candidates`` lists every
    set of terms that was fitted, best first by the selection criterion.
    """

    terms: tuple[Term, ...]
    params: tuple[dict[str, float], ...]
    rmse: np.ndarray
    rss: float
    n_data: int
    aic: float
    bic: float
    conditions: tuple
    K: float
    length: float
    nodes: np.ndarray
    positions: np.ndarray
    times: np.ndarray
    initial: np.ndarray  # (conditions, nodes), data units
    criterion: str = "bic"
    candidates: tuple[dict, ...] = ()
    seconds: float = 0.0
    _solver: _Solver | None = field(default=None, repr=False)

    @property
    def term_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.terms)

    def equation(self) -> str:
        """The selected model as text, e.g. ``u_t = ((D1 (u/K)) u_x)_x + (r (1 - u/K)) u``."""
        def part(kind):
            return " + ".join(f"{s.name}" + ("" if s.label == "1" else f" {s.label}")
                              for s in self.terms if s.kind == kind)
        d, g = part(DIFFUSION), part(GROWTH)
        rhs = f"(({d}) u_x)_x" if d else ""
        if g:
            rhs = f"{rhs} + ({g}) u" if rhs else f"({g}) u"
        if _delay_index(self.terms) is not None:
            return f"u_t = T(t) [{rhs or '0'}], T(t) = 1/(1 + a_T exp(-b_T t))"
        return f"u_t = {rhs or '0'}"

    def _index(self, condition) -> int:
        if condition in self.conditions:
            return self.conditions.index(condition)
        if isinstance(condition, int | np.integer) and 0 <= condition < len(self.conditions):
            return int(condition)
        raise InputError(f"condition {condition!r} is unknown; use one of "
                         f"{list(self.conditions)} or an index")

    def _coefs(self, i: int) -> np.ndarray:
        return np.array([self.params[i][s.name] for s in self.terms])

    def diffusivity(self, u, condition=0) -> np.ndarray:
        """``D(u)`` for ``condition`` at densities ``u`` (data units; without the delay
        factor ``T(t)``, i.e. its late-time value)."""
        c = self._coefs(self._index(condition))
        v = jnp.asarray(u, dtype=float) / self.K
        return np.asarray(sum((c[i] * s.fn(v) for i, s in enumerate(self.terms)
                               if s.kind == DIFFUSION), jnp.zeros_like(v)))

    def growth_rate(self, u, condition=0) -> np.ndarray:
        """Per-capita growth rate ``G(u)`` for ``condition`` at densities ``u``."""
        c = self._coefs(self._index(condition))
        v = jnp.asarray(u, dtype=float) / self.K
        return np.asarray(sum((c[i] * s.fn(v) for i, s in enumerate(self.terms)
                               if s.kind == GROWTH), jnp.zeros_like(v)))

    def predict(self, condition=0) -> np.ndarray:
        """The fitted model at the data's times and positions, shape (times, positions)."""
        i = self._index(condition)
        v = self._solver.observed(jnp.asarray(self._coefs(i)),
                                  jnp.asarray(self.initial[i] / self.K))
        return np.asarray(v) * self.K

    def model(self, condition=0):
        """A scalebridge :class:`~scalebridge.Model` of ``condition``: the fitted equation on
        the fitting grid (states ``u[0] ... u[n-1]`` at :attr:`nodes`, initial state from
        the first time's data), built by :func:`density_model`. Its parameters are the term
        coefficients and ``K`` (fixed), then the tissue's diffusion multiplier ``D`` (1).
        Solve it with ``scalebridge.simulate(model, times)``."""
        i = self._index(condition)
        return density_model(self.terms, self._coefs(i), self.K, self.nodes, self.initial[i],
                             float(self.times[0]), name=f"rd_{self.conditions[i]}")

    def table(self) -> list[dict]:
        """One row per condition: label, RMSE and coefficients."""
        return [{"condition": c, "rmse": float(r), **p}
                for c, r, p in zip(self.conditions, self.rmse, self.params, strict=True)]


# ----------------------------------------------------------------------------- fitting

class _Problem:
    def __init__(self, data, positions, times, *, library, K, length, n_nodes, conditions,
                 rtol, atol, max_steps):
        u, x, t = _as_data(data, positions, times)
        if K is None:
            K = float(np.max(u))
        if not np.isfinite(K) or K <= 0:
            raise InputError(f"K (the density scale) must be a positive number, got {K}")
        if length is None:
            length = x[-1] + x[0] if x[0] > 0 else x[-1]
        if not length >= x[-1] or x[0] < 0:
            raise InputError(f"length {length} must be at least the last position {x[-1]} "
                             "and positions must be >= 0 (the domain is [0, length])")
        if n_nodes is None:
            n_nodes = int(round(length / (0.5 * np.min(np.diff(x))))) + 1
        if int(n_nodes) < 5:
            raise InputError(f"n_nodes must be at least 5, got {n_nodes}")
        if conditions is None:
            conditions = tuple(range(u.shape[0]))
        conditions = tuple(conditions)
        if len(conditions) != u.shape[0]:
            raise InputError(f"{len(conditions)} condition labels for {u.shape[0]} conditions "
                             "in the data; give one label per condition")
        self.u, self.x, self.t = u, x, t
        self.K, self.length = float(K), float(length)
        self.nodes = np.linspace(0.0, self.length, int(n_nodes))
        self.conditions = conditions
        self.library = _check_terms(library)
        self.v = u / self.K
        self.v0 = np.stack([np.interp(self.nodes, x, vi[:, 0].mean(axis=0)) for vi in self.v])
        self.solver = _Solver(self.library, self.nodes, x, t, rtol, atol, max_steps)
        span = t[-1] - t[0]
        self.scale = np.array([self.length**2 / span / 100.0 if s.kind == DIFFUSION
                               else (1.0 if s.name == "a_T" else 1.0 / span)
                               for s in self.library])

    def fit_condition(self, i: int, active: np.ndarray, start: np.ndarray):
        """Least squares for condition ``i`` over the library coefficients ``active``
        (others 0), from ``start`` (full coefficient vector); returns (coefs, rss)."""
        lib = self.library
        scale = self.scale[active]
        v0 = jnp.asarray(self.v0[i])
        data = jnp.asarray(self.v[i][:, 1:])
        n_lib = len(lib)
        idx = np.flatnonzero(active)

        def full(theta):
            c = np.zeros(n_lib)
            c[idx] = theta * scale
            return jnp.asarray(c)

        def fun(theta):
            return np.asarray(self.solver.residuals(full(theta), v0, data))

        def jac(theta):
            return np.asarray(self.solver.jacobian(full(theta), v0, data))[:, idx] * scale

        lower = np.array([-np.inf if lib[k].kind == GROWTH else 0.0 for k in idx])
        theta0 = start[idx] / scale
        theta0 = np.where(lower == 0.0, np.maximum(theta0, 1e-3), theta0)
        r0 = fun(theta0)
        if not np.all(np.isfinite(r0)):
            return None, np.inf
        res = least_squares(fun, jac, theta0, lower, np.full(idx.size, np.inf),
                            max_evaluations=200)
        c = np.zeros(n_lib)
        c[idx] = res.x * scale
        return c, float(2.0 * res.cost)

    def default_start(self, active: np.ndarray) -> np.ndarray:
        c = np.zeros(len(self.library))
        d = [k for k in np.flatnonzero(active) if self.library[k].kind == DIFFUSION]
        g = [k for k in np.flatnonzero(active) if self.library[k].kind == GROWTH]
        for k in d:
            c[k] = self.scale[k] / len(d)
        if g:
            c[g[0]] = self.scale[g[0]]
        for k in np.flatnonzero(active):
            if self.library[k].kind == DELAY:  # T rises from 0.2 to 0.99 over the span
                c[k] = 4.0 if self.library[k].name == "a_T" else 6.0 * self.scale[k]
        return c

    def fit_support(self, active, starts):
        coefs, rss = [], []
        for i in range(len(self.conditions)):
            best = (None, np.inf)
            for s in starts:
                r = self.fit_condition(i, active, s[i])
                if r[1] < best[1]:
                    best = r
            coefs.append(best[0])
            rss.append(best[1])
        return coefs, np.array(rss)

    def result(self, active, coefs, rss, criterion, candidates, seconds):
        terms = tuple(s for s, a in zip(self.library, active, strict=True) if a)
        n_per = self.v[0][:, 1:].size
        n = n_per * len(self.conditions)
        aic, bic = _criteria(rss.sum(), n, int(active.sum()) * len(self.conditions))
        params = tuple({s.name: float(c[k] if c is not None else np.nan)
                        for k, s in enumerate(self.library) if active[k]} for c in coefs)
        sub = _Solver(terms, self.nodes, self.x, self.t, *self._tol)
        return ReactionDiffusionFit(
            terms=terms, params=params, rmse=np.sqrt(rss / n_per) * self.K,
            rss=float(rss.sum()) * self.K**2, n_data=n, aic=aic, bic=bic,
            conditions=self.conditions, K=self.K, length=self.length, nodes=self.nodes,
            positions=self.x, times=self.t, initial=self.v0 * self.K, criterion=criterion,
            candidates=tuple(candidates), seconds=seconds, _solver=sub)


def _criteria(rss: float, n: int, k: int) -> tuple[float, float]:
    """AIC and BIC of a Gaussian model with one (profiled) error variance."""
    ll = n * math.log(max(rss, 1e-300) / n)
    return ll + 2.0 * (k + 1), ll + (k + 1) * math.log(n)


def _make_problem(data, positions, times, library, K, length, n_nodes, conditions, rtol, atol,
                  max_steps):
    prob = _Problem(data, positions, times, library=library, K=K, length=length,
                    n_nodes=n_nodes, conditions=conditions, rtol=rtol, atol=atol,
                    max_steps=max_steps)
    prob._tol = (rtol, atol, max_steps)
    return prob


def fit_reaction_diffusion(data, positions, times, terms, *, K: float | None = None,
                           length: float | None = None, n_nodes: int | None = None,
                           conditions: Sequence | None = None, rtol: float = 1e-6,
                           atol: float = 1e-8, max_steps: int = 4096) -> ReactionDiffusionFit:
    """Fit ``u_t = (D(u) u_x)_x + G(u) u`` with the given ``terms`` per condition.

    ``data``: densities of shape (conditions, replicates, times, positions) (or fewer
    leading axes); the first time gives the initial condition (replicate mean, linearly
    interpolated onto the grid), the later times are fitted. ``positions`` lie in
    ``[0, length]`` (default: ``last + first`` position, i.e. cell-centred data);
    ``n_nodes`` grid nodes (default: half the data spacing); ``K`` scales the density
    inside the terms (default: the largest datum). Returns a :class:`ReactionDiffusionFit`.
    """
    t_start = time.perf_counter()
    terms = _check_terms(terms)
    prob = _make_problem(data, positions, times, terms, K, length, n_nodes, conditions,
                         rtol, atol, max_steps)
    active = np.ones(len(terms), dtype=bool)
    start = prob.default_start(active)
    coefs, rss = prob.fit_support(active, [[start] * len(prob.conditions)])
    return prob.result(active, coefs, rss, "fixed", (),
                       time.perf_counter() - t_start)


def discover_reaction_diffusion(
    data, positions, times, *, library: Sequence[Term] | None = None,
    criterion: str = "bic", max_terms: int | None = None, K: float | None = None,
    length: float | None = None, n_nodes: int | None = None,
    conditions: Sequence | None = None, rtol: float = 1e-6, atol: float = 1e-8,
    max_steps: int = 4096, verbose: bool = False,
) -> ReactionDiffusionFit:
    """Select the terms of ``u_t = (D(u) u_x)_x + G(u) u`` from ``library`` (default
    :func:`polynomial_library`: ``D0, D1, D2, r0, r1, r2``) by ``criterion`` (``"bic"`` or
    ``"aic"``) over all conditions together, fitting every candidate set with at least one
    diffusion term (and at most ``max_terms`` terms) by simulation.

    Each set is fitted per condition from a default start and, warm, from the best fit
    among its subsets with one term fewer (the new term starting near zero), so larger
    sets rarely fit worse than their subsets. Add :func:`delay_terms` to the library to
    let the selection consider a delayed response (the pair counts as one term for
    ``max_terms`` and as two parameters for the criterion). Arguments as in
    :func:`fit_reaction_diffusion`. Sparse model selection by simulation suits assays with
    few time points (Jin et al. 2016; Lagergren et al. 2020).
    """
    t_start = time.perf_counter()
    if criterion not in ("aic", "bic"):
        raise InputError(f"criterion must be 'aic' or 'bic', got {criterion!r}")
    library = polynomial_library() if library is None else library
    prob = _make_problem(data, positions, times, library, K, length, n_nodes, conditions,
                         rtol, atol, max_steps)
    n_lib = len(prob.library)
    # units of selection: single terms, and the delay pair as one unit
    units = [(k,) for k, s in enumerate(prob.library) if s.kind != DELAY]
    delay = _delay_index(prob.library)
    if delay is not None:
        units.append(delay)
    max_terms = len(units) if max_terms is None else int(max_terms)
    if max_terms < 1:
        raise InputError(f"max_terms must be >= 1, got {max_terms}")
    is_d = np.array([s.kind == DIFFUSION for s in prob.library])
    if not is_d.any():
        raise InputError("library has no diffusion term; add one, e.g. diffusion_term(0)")
    fits: dict[tuple[int, ...], tuple[list, np.ndarray]] = {}
    candidates = []
    n_per = prob.v[0][:, 1:].size
    n = n_per * len(prob.conditions)
    n_cond = len(prob.conditions)
    for size in range(1, max_terms + 1):
        for combo in itertools.combinations(range(len(units)), size):
            support = tuple(sorted(k for u in combo for k in units[u]))
            active = np.zeros(n_lib, dtype=bool)
            active[list(support)] = True
            if not is_d[active].any():
                continue
            default = prob.default_start(active)
            starts = [[default] * n_cond]
            subs = [fits[sub] for sub in (tuple(sorted(k for u in combo if u != drop
                                                       for k in units[u])) for drop in combo)
                    if sub in fits]
            if subs:  # warm: per condition, the best fit among the subsets
                warm = []
                for i in range(n_cond):
                    c, _ = min(((f[0][i], f[1][i]) for f in subs), key=lambda z: z[1])
                    if c is None:
                        warm.append(default)
                        continue
                    w = np.where(active & (c == 0), default, c)
                    w = np.where(is_d & active & (c == 0), 1e-3 * prob.scale, w)
                    warm.append(w)
                starts.append(warm)
            coefs, rss = prob.fit_support(active, starts)
            fits[support] = (coefs, rss)
            aic, bic = _criteria(rss.sum(), n, len(support) * n_cond)
            cand = {"terms": [prob.library[k].name for k in support], "aic": aic, "bic": bic,
                    "rmse": (np.sqrt(rss / n_per) * prob.K).tolist()}
            candidates.append(cand)
            if verbose:
                rel = np.array2string(np.sqrt(rss / n_per), precision=4)
                progress(f"{'+'.join(cand['terms']):<26} aic={aic:10.1f} bic={bic:10.1f} "
                         f"rmse/K={rel}")
    candidates.sort(key=lambda c: c[criterion])
    best = candidates[0]
    support = tuple(k for k, s in enumerate(prob.library) if s.name in best["terms"])
    active = np.zeros(n_lib, dtype=bool)
    active[list(support)] = True
    coefs, rss = fits[support]
    return prob.result(active, coefs, rss, criterion, candidates,
                       time.perf_counter() - t_start)


__all__ = [
    "Term", "ReactionDiffusionFit", "density_model", "discover_reaction_diffusion",
    "fit_reaction_diffusion",
    "polynomial_library", "diffusion_term", "growth_term", "logistic_growth", "delay_terms",
    "classical_fisher_kpp_terms", "porous_fisher_kpp_terms",
]
