"""Acquisition functions and their optimisation: which point (and fidelity) to evaluate next.

Every acquisition function here is written in ``jax.numpy`` on a posterior mean and standard
deviation, so it can be differentiated through a Gaussian process' ``predict``. Internally
scalebridge always *minimises*; maximisation is minimisation of ``-f``.

- :func:`expected_improvement` and :func:`log_expected_improvement` (Jones, Schonlau and
  Welch 1998, J. Global Optim. 13: 455-492), the logarithm computed stably far from the
  incumbent following Ament et al. (2023, NeurIPS, "Unexpected improvements to expected
  improvement"), so that the optimiser sees a gradient where EI underflows to 0;
- :func:`lower_confidence_bound` / :func:`upper_confidence_bound` (GP-UCB, Srinivas et al.
  2010, ICML) with the schedule :func:`ucb_beta`;
- :func:`maximum_variance`: uncertainty sampling for active learning (MacKay 1992);
- :func:`augmented_expected_improvement`: cost-aware multi-fidelity EI of Huang et al.
  (2006, Struct. Multidisc. Optim. 32: 369-382), which picks both the point and the
  fidelity; and :func:`variance_reduction_per_cost`, its active-learning counterpart.

:func:`optimize_acquisition` maximises an acquisition over the unit box: a scrambled
Sobol' set of candidates (plus points near the incumbents) ranks the region, and the best few
are polished by L-BFGS-B with gradients from :func:`jax.grad`. :func:`propose_batch` gives
``q`` points at once by local penalisation (Gonzalez et al. 2016, AISTATS, "Batch Bayesian
optimization via local penalization"): each chosen point multiplies the acquisition by a
penalty that excludes the ball in which the minimum cannot lie, given a Lipschitz constant
of the objective estimated from the gradient of the posterior mean.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import erfcx, log_ndtr, ndtr

from ..errors import InputError

__all__ = [
    "log_expected_improvement", "expected_improvement", "lower_confidence_bound",
    "upper_confidence_bound", "ucb_beta", "maximum_variance", "augmented_expected_improvement",
    "variance_reduction_per_cost", "ExpectedImprovement", "ConfidenceBound", "MaximumVariance",
    "make_acquisition", "ACQUISITIONS", "local_penalty", "lipschitz_constant",
    "optimize_acquisition", "propose_batch", "Proposal",
]

ACQUISITIONS = ("ei", "ucb", "variance")
_C1 = 0.5 * math.log(2 * math.pi)
_C2 = 0.5 * math.log(math.pi / 2)
_Z_ASYMPTOTIC = -1.0 / math.sqrt(np.finfo(float).eps)  # below: log h(z) ~ -z^2/2 - c1 - 2log|z|
_TINY_STD = 1e-150


def _log1mexp(x):
    """``log(1 - exp(x))`` for ``x < 0`` without cancellation (Maechler 2012)."""
    x = jnp.minimum(x, -1e-300)
    return jnp.where(x > -math.log(2.0), jnp.log(-jnp.expm1(x)), jnp.log1p(-jnp.exp(x)))


def _log_h(z):
    """``log(phi(z) + z Phi(z))``, accurate for every finite ``z`` and with finite
    gradients (each branch sees only inputs where it is exact)."""
    z = jnp.asarray(z)
    za = jnp.maximum(z, -1.0)
    direct = jnp.log(jnp.exp(-0.5 * za**2 - _C1) + za * ndtr(za))
    zb = jnp.clip(z, _Z_ASYMPTOTIC, -1.0)
    mills = -0.5 * zb**2 - _C1 + _log1mexp(jnp.log(erfcx(-zb / math.sqrt(2)) * -zb) + _C2)
    zc = jnp.minimum(z, _Z_ASYMPTOTIC)
    tail = -0.5 * zc**2 - _C1 - 2 * jnp.log(-zc)
    return jnp.where(z > -1.0, direct, jnp.where(z > _Z_ASYMPTOTIC, mills, tail))


def log_expected_improvement(mean, std, best, *, xi: float = 0.0, minimize: bool = True):
    """Logarithm of the expected improvement over ``best`` (Jones et al. 1998):
    ``log E[max(best - xi - f, 0)]`` for minimisation (``max(f - best - xi, 0)`` when
    ``minimize=False``) with ``f ~ N(mean, std^2)``. Finite (and with a useful gradient)
    even where EI itself underflows to 0 (Ament et al. 2023)."""
    mean, std = jnp.asarray(mean), jnp.asarray(std)
    sign = 1.0 if minimize else -1.0
    s = jnp.maximum(std, _TINY_STD)
    z = (sign * (best - mean) - xi) / s
    return jnp.log(s) + _log_h(z)


def expected_improvement(mean, std, best, *, xi: float = 0.0, minimize: bool = True):
    """Expected improvement ``sigma (z Phi(z) + phi(z))``, ``z = (best - xi - mean) / sigma``
    for minimisation (Jones, Schonlau and Welch 1998, eq. 15)."""
    return jnp.exp(log_expected_improvement(mean, std, best, xi=xi, minimize=minimize))


def lower_confidence_bound(mean, std, beta):
    """``mean - sqrt(beta) std``: the optimistic value when minimising (GP-LCB); the
    next point minimises it (Srinivas et al. 2010)."""
    return jnp.asarray(mean) - jnp.sqrt(beta) * jnp.asarray(std)


def upper_confidence_bound(mean, std, beta):
    """``mean + sqrt(beta) std``: GP-UCB for maximisation (Srinivas et al. 2010)."""
    return jnp.asarray(mean) + jnp.sqrt(beta) * jnp.asarray(std)


def ucb_beta(t: int, d: int, *, delta: float = 0.1, scale: float = 0.2) -> float:
    """GP-UCB exploration weight at iteration ``t >= 1`` in ``d`` dimensions:
    ``scale * 2 log(t^(d/2 + 2) pi^2 / (3 delta))``, the continuous-domain schedule of
    Srinivas et al. (2010, Thm. 2) in the form of Brochu, Cora and de Freitas (2010,
    arXiv:1012.2599); ``scale = 0.2`` is the factor 5 reduction Srinivas et al. used in
    their experiments (the theoretical value is conservative)."""
    if t < 1 or d < 1:
        raise InputError(f"ucb_beta needs t >= 1 and d >= 1, got t={t}, d={d}")
    if not 0 < delta < 1:
        raise InputError(f"ucb_beta: delta must lie in (0, 1), got {delta}")
    return scale * 2.0 * math.log(t ** (d / 2 + 2) * math.pi**2 / (3 * delta))


def maximum_variance(mean, std):
    """Posterior variance ``std^2``: uncertainty sampling, the active-learning rule that
    evaluates where the surrogate knows least (MacKay 1992, Neural Comput. 4: 590-604)."""
    del mean
    return jnp.asarray(std) ** 2


def augmented_expected_improvement(mean_top, std_top, best, correlation, cost, cost_top, *,
                                   noise_std=0.0):
    """Augmented expected improvement of Huang et al. (2006, eq. 13) for evaluating fidelity
    ``l`` at a point: ``EI_top(x) * corr[Y_l(x), Y_top(x)] * (1 - noise_l / sqrt(var_l(x) +
    noise_l^2)) * cost_top / cost_l``. ``mean_top``, ``std_top``: posterior of the highest
    fidelity at the point; ``best``: the effective best solution (Huang et al. use the
    sampled point minimising ``mean + std`` of the top level); ``correlation``: posterior
    correlation between the level-``l`` and the top-level outputs at the point (1 for the top
    level itself). Minimisation."""
    ei = expected_improvement(mean_top, std_top, best)
    noise = jnp.asarray(noise_std)
    alpha2 = 1.0 - noise / jnp.sqrt(jnp.asarray(std_top) ** 2 + noise**2 + 1e-300)
    return ei * jnp.abs(correlation) * alpha2 * (cost_top / cost)


def variance_reduction_per_cost(var_top, correlation, cost):
    """Reduction of the top-fidelity posterior variance at a point from an exact observation
    of level ``l`` there, ``corr^2 var_top``, per unit cost: the cost-aware active-learning
    rule (the pointwise form of the variance-reduction criteria of multi-fidelity kriging,
    Le Gratiet and Cannamela 2015, Technometrics 57: 418-427; cost weighting as in Huang
    et al. 2006)."""
    return jnp.asarray(correlation) ** 2 * jnp.asarray(var_top) / cost


# ----- acquisition objects: what the optimiser maximises ---------------------------------------
class _Acquisition(abc.ABC):
    """An acquisition on standardised posterior moments. ``value`` is the quantity reported
    (to maximise); ``log_utility`` a smooth, monotone transform of it that is finite everywhere
    (its logarithm where it is positive), which is what :func:`optimize_acquisition` and the
    local penalisation work on."""

    @abc.abstractmethod
    def value(self, mean, std):
        """The acquisition value at standardised posterior moments (to maximise)."""

    @abc.abstractmethod
    def log_utility(self, mean, std):
        """A smooth, monotone, everywhere-finite transform of :meth:`value`."""


@dataclass(frozen=True)
class ExpectedImprovement(_Acquisition):
    """EI over ``best`` (minimisation); ``xi``: a margin that favours exploration."""

    best: float
    xi: float = 0.0

    def value(self, mean, std):
        return expected_improvement(mean, std, self.best, xi=self.xi)

    def log_utility(self, mean, std):
        return log_expected_improvement(mean, std, self.best, xi=self.xi)


@dataclass(frozen=True)
class ConfidenceBound(_Acquisition):
    """GP-LCB for minimisation: maximise ``sqrt(beta) std - mean`` (the negated lower
    bound); the log-utility is ``log softplus`` of it (Gonzalez et al. 2016, sec. 3.2)."""

    beta: float

    def value(self, mean, std):
        return -lower_confidence_bound(mean, std, self.beta)

    def log_utility(self, mean, std):
        v = self.value(mean, std)
        vs = jnp.maximum(v, -30.0)
        return jnp.where(v > -30.0, jnp.log(jnp.logaddexp(0.0, vs)), v)


@dataclass(frozen=True)
class MaximumVariance(_Acquisition):
    """Uncertainty sampling: maximise the posterior variance."""

    def value(self, mean, std):
        return maximum_variance(mean, std)

    def log_utility(self, mean, std):
        return 2.0 * jnp.log(jnp.maximum(jnp.asarray(std), _TINY_STD))


def make_acquisition(name: str, *, best: float | None = None, beta: float | None = None,
                     xi: float = 0.0) -> _Acquisition:
    """The acquisition called ``name`` (``"ei"``, ``"ucb"`` or ``"variance"``)."""
    if name == "ei":
        if best is None:
            raise InputError("expected improvement needs the best value observed so far")
        return ExpectedImprovement(float(best), float(xi))
    if name == "ucb":
        if beta is None or not beta > 0:
            raise InputError(f"confidence bound needs beta > 0, got {beta}")
        return ConfidenceBound(float(beta))
    if name == "variance":
        return MaximumVariance()
    raise InputError(f"acquisition {name!r} is unknown; use one of {', '.join(ACQUISITIONS)}")


# ----- local penalisation ----------------------------------------------------------------------
def local_penalty(u, centre, mean_c, std_c, lipschitz, best):
    """Log of the local penaliser of Gonzalez et al. (2016, eq. 6) at points ``u`` (m, d) for a
    pending point ``centre`` whose posterior is ``N(mean_c, std_c^2)``: ``log Phi((L |u - c| -
    mean_c + best) / std_c)``, the probability that ``u`` lies outside the ball around ``c``
    in which no point better than ``best`` can lie for an ``L``-Lipschitz objective."""
    dist = jnp.sqrt(jnp.sum((jnp.asarray(u) - centre) ** 2, axis=-1) + 1e-300)
    z = (lipschitz * dist - mean_c + best) / jnp.maximum(std_c, 1e-12)
    return log_ndtr(z)


def lipschitz_constant(predict_mean: Callable, u) -> float:
    """Largest norm of the gradient of the posterior mean over the points ``u`` (m, d): the
    Lipschitz estimate of Gonzalez et al. (2016, sec. 3.3)."""
    g = jax.vmap(jax.grad(lambda x: predict_mean(x[None])[0]))(jnp.asarray(u))
    norms = np.asarray(jnp.sqrt(jnp.sum(g**2, axis=1)))
    norms = norms[np.isfinite(norms)]
    return max(float(norms.max()) if norms.size else 0.0, 1e-7)


# ----- optimisation over the unit box ----------------------------------------------------------
@dataclass(frozen=True)
class Proposal:
    """Points chosen by :func:`propose_batch`: ``u`` (q, d) in the unit box, the acquisition
    ``value`` at each (before penalisation) and the Lipschitz constant used (None for q=1)."""

    u: np.ndarray
    value: np.ndarray
    lipschitz: float | None = None


def _candidates(d: int, n: int, rng: np.random.Generator, near=None) -> np.ndarray:
    from scipy.stats import qmc

    m = max(1, int(math.ceil(math.log2(max(n, 2)))))
    sob = qmc.Sobol(d, scramble=True, seed=rng).random_base2(m)[:n]
    parts = [sob]
    if near is not None and len(near):
        near = np.atleast_2d(np.asarray(near, float))
        k = max(1, n // (10 * len(near)))
        for scale in (0.1, 0.02, 0.002):
            parts.append(near[:, None, :] + scale * rng.standard_normal((len(near), k, d)))
    out = np.concatenate([p.reshape(-1, d) for p in parts])
    return np.clip(out, 0.0, 1.0)


def _evaluate_chunks(fun, u: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """``fun`` on the rows of ``u`` in chunks of one size (the last one padded), so a
    compiled ``fun`` is traced once."""
    vals = []
    for i in range(0, len(u), chunk):
        part = u[i:i + chunk]
        k = len(part)
        if len(u) > chunk and k < chunk:
            part = np.concatenate([part, np.repeat(part[-1:], chunk - k, axis=0)])
        vals.append(np.asarray(fun(jnp.asarray(part)))[:k])
    v = np.concatenate(vals) if vals else np.zeros(0)
    return np.where(np.isfinite(v), v, -np.inf)


def _polish(fun, u0: np.ndarray, maxiter: int, vg=None) -> tuple[np.ndarray, float]:
    """L-BFGS-B on ``-fun`` in [0, 1]^d from ``u0``; returns the better of start and end.
    ``vg(u) -> (fun(u), grad)`` for one point ``u`` (d,) (default: jit of jax.grad)."""
    from ..infer.fit import bounded_minimize

    if vg is None:
        vg = jax.jit(jax.value_and_grad(lambda x: fun(x[None])[0]))

    def f(x):
        v, g = vg(jnp.asarray(x))
        v, g = -float(v), -np.asarray(g, float)
        if not (math.isfinite(v) and np.all(np.isfinite(g))):
            return 1e300, np.zeros_like(x)
        return v, g

    start = -float(vg(jnp.asarray(u0))[0])
    try:
        sol = bounded_minimize(f, u0, np.zeros(u0.size), np.ones(u0.size), max_iter=maxiter)
        x, v = np.clip(sol.x, 0.0, 1.0), float(sol.fun)
    except (ValueError, FloatingPointError):
        x, v = u0, start
    if not (math.isfinite(v) and v <= start):
        return u0, -start
    return x, -v


def optimize_acquisition(fun: Callable, d: int, *, seed=0, n_candidates: int | None = None,
                         n_polish: int = 5, near=None, maxiter: int = 100,
                         exclude=None, exclude_radius: float = 1e-3, value_and_grad=None
                         ) -> tuple[np.ndarray, float]:
    """Maximise ``fun`` ((m, d) JAX array -> (m,)) over the unit box ``[0, 1]^d``: rank
    ``n_candidates`` scrambled Sobol' points (default ``min(512 d, 4096)``) plus Gaussian
    perturbations of the points ``near`` (the incumbents), then polish the ``n_polish`` best
    distinct ones by L-BFGS-B with :func:`jax.grad`. Candidates within ``exclude_radius`` of
    a row of ``exclude`` are skipped. ``value_and_grad(u) -> (fun(u[None])[0], gradient)``
    for one point (default: compiled from ``fun`` on each call; pass a cached one to avoid
    recompiling). Returns ``(u, fun(u))``."""
    rng = np.random.default_rng(seed)
    n = int(n_candidates) if n_candidates is not None else min(512 * d, 4096)
    cand = _candidates(d, n, rng, near)
    if exclude is not None and len(exclude):
        ex = np.atleast_2d(np.asarray(exclude, float))
        dmin = np.min(np.linalg.norm(cand[:, None, :] - ex[None], axis=2), axis=1)
        cand = cand[dmin > exclude_radius]
        if not len(cand):
            raise InputError("every candidate point lies next to an excluded point; widen "
                             "the space or lower exclude_radius")
    vals = _evaluate_chunks(fun, cand)
    order = np.argsort(-vals, kind="stable")
    starts: list[np.ndarray] = []
    for i in order:
        if not np.isfinite(vals[i]):
            break
        if all(np.linalg.norm(cand[i] - s) > 1e-3 for s in starts):
            starts.append(cand[i])
        if len(starts) >= n_polish:
            break
    if not starts:  # every candidate gave -inf: take the first Sobol' point
        return cand[0], float(vals[0])
    best_u, best_v = starts[0], float(vals[order[0]])
    vg = value_and_grad or jax.jit(jax.value_and_grad(lambda x: fun(x[None])[0]))
    for s in starts:
        u, v = _polish(fun, s, maxiter, vg)
        if exclude is not None and len(exclude) and np.min(
                np.linalg.norm(np.atleast_2d(exclude) - u, axis=1)) <= exclude_radius:
            continue
        if v > best_v:
            best_u, best_v = u, v
    return np.asarray(best_u, float), best_v


def propose_batch(predict: Callable, acquisition: _Acquisition, q: int, d: int, *, seed=0,
                  best: float | None = None, near=None, n_candidates: int | None = None,
                  n_polish: int = 5, exclude=None, lipschitz: float | None = None
                  ) -> Proposal:
    """``q`` points of the unit box that maximise ``acquisition`` on the posterior
    ``predict(u) -> (mean, var)`` (standardised, minimisation), chosen one after the other
    with local penalisation (Gonzalez et al. 2016): point ``k`` maximises
    ``log_utility(u) + sum_j<k log phi(u; u_j)``. ``best``: the lowest observed value (M in
    the paper; default: the lowest mean over the candidates); ``lipschitz``: ``L`` (default:
    :func:`lipschitz_constant` over Sobol' points). ``exclude``: points not to propose
    again (earlier evaluations that failed)."""
    if q < 1:
        raise InputError(f"batch size must be >= 1, got {q}")

    def moments(u):
        m, v = predict(u)
        return m, jnp.sqrt(jnp.maximum(v, 0.0))

    def base(u):
        m, s = moments(u)
        return acquisition.log_utility(m, s)

    rng = np.random.default_rng(seed)
    seeds = rng.integers(0, 2**63 - 1, size=q + 1)
    fixed = [] if exclude is None else list(np.atleast_2d(np.asarray(exclude, float)))
    chosen, values = [], []
    pen_terms: list[tuple] = []
    L = lipschitz
    for k in range(q):
        if k == 0:
            fun = base
        else:
            if L is None:
                from scipy.stats import qmc

                pts = qmc.Sobol(d, scramble=True, seed=int(seeds[q])).random_base2(
                    min(9, 4 + d))
                L = lipschitz_constant(lambda u: predict(u)[0], pts)
            if best is None:
                best = float(np.min(np.asarray(predict(jnp.asarray(_candidates(
                    d, 256, np.random.default_rng(int(seeds[q])))))[0])))
            uc = jnp.asarray(chosen[-1])[None]
            mc, sc = moments(uc)
            pen_terms.append((jnp.asarray(chosen[-1]), mc[0], sc[0]))
            terms = tuple(pen_terms)

            def fun(u, terms=terms, L=L, best=best):
                out = base(u)
                for c, mc, sc in terms:
                    out = out + local_penalty(u, c, mc, sc, L, best)
                return out
        excl = fixed + chosen
        u, _ = optimize_acquisition(fun, d, seed=int(seeds[k]), n_candidates=n_candidates,
                                    n_polish=n_polish, near=near,
                                    exclude=np.asarray(excl) if excl else None)
        m, s = moments(jnp.asarray(u)[None])
        chosen.append(u)
        values.append(float(acquisition.value(m, s)[0]))
    return Proposal(np.asarray(chosen), np.asarray(values), L)
