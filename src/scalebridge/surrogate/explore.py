"""Design-space exploration: Bayesian optimisation and active learning with GP surrogates.

``explore(objective, space, budget=50)`` evaluates a scrambled Sobol' initial design, then
repeatedly fits a Gaussian process to everything evaluated so far and evaluates the point(s)
that maximise an acquisition function (:mod:`scalebridge.surrogate.acquisition`):

- ``"ei"``: expected improvement (Jones, Schonlau and Welch 1998), optimised as log-EI;
- ``"ucb"``: GP-UCB/LCB (Srinivas et al. 2010) with the schedule
  :func:`~scalebridge.surrogate.acquisition.ucb_beta` (or a fixed ``beta``);
- ``"variance"``: active learning by uncertainty sampling; the goal is a surrogate that is
  accurate everywhere, reported as its mean predictive standard deviation over the space
  (and its RMSE on ``test`` points where given).

``batch_size > 1`` proposes that many points per round by local penalisation (Gonzalez et al.
2016), evaluated together (on ``executor`` if given).

Multi-fidelity: ``objective`` may be a list of functions, lowest fidelity first, with their
``costs``; the budget is then a total cost. The surrogate is
:class:`~scalebridge.surrogate.multifidelity.LinearMultiFidelityGP`, the auto-regressive model
of Kennedy and O'Hagan (2000, Biometrika 87: 1-13), ``f_t(x) = rho_t f_{t-1}(x) +
delta_t(x)``, fitted level by level (Le Gratiet and Garnier 2014), and each round picks the
point *and* the level: for ``"ei"`` the augmented expected improvement of Huang et al.
(2006), for ``"variance"`` the reduction of the top-level variance per unit cost; both need
the posterior correlation between a level and the top level, from
:meth:`~scalebridge.surrogate.multifidelity.LinearMultiFidelityGP.correlation`.

With one fidelity the surrogate is a :class:`~scalebridge.surrogate.gp.GaussianProcess`
(Matern 5/2 ARD) on the unit box of ``space`` with z-scored outputs, its hyperpriors
(log-normal lengthscales around half the box with sd 1) and lengthscales bounded to
``[1e-3, 2]`` (``lengthscale_bounds``: an input the data seem
not to need keeps some influence, so the search does not stall in a local minimum),
warm-started from the previous round (``warm_start``; every fifth round also from the
default and ``restarts`` random starts). The GP pads its data to multiples of 32 points, and
the acquisition functions are compiled functions of its fitted state (``posterior_``), so
they are reused across rounds and runs instead of being recompiled for every new number of
points.

Non-finite objective values are recorded (``y = null`` in the JSON) and counted in a warning.
For optimisation they enter the surrogate at the worst finite value seen so far (which steers
the search away from regions where the model fails); for active learning they are left out of
the surrogate (an imputed value would corrupt it) and their points are not proposed again.

With ``out=DIR`` (a run directory, :mod:`scalebridge.runtime.run`) every round is written
atomically to ``DIR/explore.json``; a later call with the same objective (its code and, for
a model output, the model's content) and settings (space, acquisition, seed, ...; the
budget may grow) continues where the earlier one stopped and gives the same result as an
uninterrupted run; after any change it stops with an error naming it, unless
``restart=True``.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputError
from ..infer.space import ParameterSpace
from ..runtime.files import read_json, write_json
from ..runtime.run import fingerprint, open_run
from . import acquisition as acq
from .gp import GaussianProcess, GPPosterior, _Hyper
from .kernels import Matern52
from .multifidelity import LinearMultiFidelityGP, LinearMultiFidelityPosterior

__all__ = ["explore", "ExploreResult", "Surrogate"]

FORMAT = "scalebridge-explore"
FORMAT_VERSION = 1
RESULT_FILE = "explore.json"
_NOISE_FLOOR = 1e-8  # smallest noise variance, relative to the (unit) output variance
# lengthscales (unit box) within these bounds, with the weak log-normal hyperprior of
# GaussianProcess around half the box: without the cap, ARD switched off inputs of Hartmann-6
# (lengthscales 4-20) and EI stalled in its local minimum -3.20
_LENGTHSCALE_BOUNDS = (1e-3, 2.0)
_LENGTHSCALE_PRIOR_SD = 1.0  # with sd 2, Hartmann-6 seed 9 of the benchmark stalled at -3.14
_FULL_FIT_EVERY = 5  # rounds between fits from the default and random starts
_N_REFERENCE = 1024  # Sobol' points on which the active-learning error is reported


# ----- the surrogate inside the loop ----------------------------------------------------------
# One fidelity: a GaussianProcess; several: a LinearMultiFidelityGP. Both are fitted on the
# unit box of the space and z-scored outputs; their fitted states (``posterior_``, pytrees)
# are passed as arguments to the compiled acquisition functions below, so that these compile
# once per padding bucket of the training set (gp.py pads to multiples of 32 points).
def _single_gp(seed: int) -> GaussianProcess:
    return GaussianProcess(Matern52(), normalize_x=False, normalize_y=False,
                           hyperprior=True, lengthscale_prior_sd=_LENGTHSCALE_PRIOR_SD,
                           noise_floor=_NOISE_FLOOR, warm_start=True,
                           lengthscale_bounds=_LENGTHSCALE_BOUNDS, seed=seed)


def _hyper_vector(gp: GaussianProcess) -> np.ndarray:
    """``[log lengthscales, log variance, log noise]`` of a fitted single-fidelity GP (the
    ``hyper`` record of a round, which a resumed run warm-starts from)."""
    k = gp.hyper_.kernel
    return np.concatenate([np.asarray(k.log_lengthscale), [float(k.log_variance)],
                           [float(gp.hyper_.log_noise)]])


def _restore_warm_start(gp: GaussianProcess, vector, d: int) -> None:
    """Give ``gp`` the previous round's fitted hyperparameters ``vector`` (from the saved
    results of an interrupted run) as its warm start, exactly as an uninterrupted run has
    them."""
    v = jnp.asarray(np.asarray(vector, float))
    kernel = eqx.tree_at(lambda k: (k.log_lengthscale, k.log_variance),
                         Matern52().initialise(np.eye(2, d)), (v[:d], v[d]))
    gp.hyper_ = _Hyper(kernel, v[d + 1], jnp.zeros(0))


def _multi_gp(seed: int, restarts: int) -> LinearMultiFidelityGP:
    return LinearMultiFidelityGP(Matern52, normalize_x=False, restarts=restarts, seed=seed)


def _n_levels(post) -> int:
    return post.n_levels if isinstance(post, LinearMultiFidelityPosterior) else 1


def _mean_var(post, u, level: int | None = None):
    """Mean and variance (standardised units) of fidelity ``level`` (default the top) at
    the unit-box points ``u`` (m, d)."""
    if isinstance(post, LinearMultiFidelityPosterior):
        return post.predict(u, -1 if level is None else level)
    m, v = post.predict(u)
    return m, jnp.maximum(v, 1e-300)


@partial(jax.jit, static_argnames=("level",))
def _predict_jit(post, u, level):
    return _mean_var(post, u, level)


def _predict_np(post, u, level: int | None = None, chunk: int = 256):
    """Mean and variance (NumPy) at the rows of ``u``, in padded chunks of one size so
    that the compiled prediction is reused."""
    level = _n_levels(post) - 1 if level is None else int(level)
    u = np.atleast_2d(np.asarray(u, float))
    ms, vs = [], []
    for i in range(0, len(u), chunk):
        part = u[i:i + chunk]
        k = len(part)
        if k < chunk:
            part = np.concatenate([part, np.repeat(part[-1:], chunk - k, axis=0)])
        m, v = _predict_jit(post, jnp.asarray(part), level)
        ms.append(np.asarray(m)[:k])
        vs.append(np.asarray(v)[:k])
    return np.concatenate(ms), np.concatenate(vs)


@partial(jax.jit, static_argnames=("kind",))
def _penalised(post, u, kind, best, beta, centres, mc, sc, active, lipschitz, m_best):
    """Log-utility plus the local penalties (Gonzalez et al. 2016) of the ``active``
    pending points ``centres`` with posterior ``N(mc, sc^2)``."""
    out = _log_utility(post, u, kind, best, beta)
    pen = jax.vmap(lambda c, m, s: acq.local_penalty(u, c, m, s, lipschitz, m_best))(
        centres, mc, sc)
    return out + jnp.sum(jnp.where(active[:, None], pen, 0.0), axis=0)


@partial(jax.jit, static_argnames=("kind",))
def _penalised_vg(post, x, kind, best, beta, centres, mc, sc, active, lipschitz, m_best):
    return jax.value_and_grad(lambda z: _penalised(post, z[None], kind, best, beta, centres,
                                                   mc, sc, active, lipschitz, m_best)[0])(x)


@jax.jit
def _max_mean_gradient(post, u):
    g = jax.vmap(jax.grad(lambda x: _mean_var(post, x[None])[0][0]))(u)
    return jnp.max(jnp.sqrt(jnp.sum(g**2, axis=1)))


def _fit(u, lev, y, n_levels: int, rng: np.random.Generator, gp=None, restarts: int = 1,
         full: bool = True):
    """Fit the surrogate to standardised ``y`` at the unit-box points ``u`` of fidelities
    ``lev``. One fidelity: ``gp`` (a :func:`_single_gp`, warm-started from its previous fit;
    ``full``: also from the default and ``restarts`` random starts); several: a
    :class:`LinearMultiFidelityGP` with ``restarts`` random starts per level. Returns the
    fitted state (``posterior_``) and the hyperparameters as a flat list."""
    seed = int(rng.integers(0, 2**31 - 1))
    if n_levels == 1:
        gp = _single_gp(seed) if gp is None else gp
        gp.seed = seed
        gp.restarts = restarts if full or not hasattr(gp, "hyper_") else 0
        gp.fit(u, y)
        return gp.posterior_, _hyper_vector(gp)
    xs = [u[lev == lv] for lv in range(n_levels)]
    ys = [y[lev == lv] for lv in range(n_levels)]
    model = _multi_gp(seed, restarts).fit(xs, ys)
    theta = [float(v) for gp in model.levels_ for v in _hyper_vector(gp)]
    theta += [float(r[0]) for r in model.rho_]
    return model.posterior_, np.asarray(theta)


@partial(jax.jit, static_argnames=("kind",))
def _log_utility(post, u, kind, best, beta):
    m, v = _mean_var(post, u)
    s = jnp.sqrt(v)
    if kind == "ei":
        return acq.log_expected_improvement(m, s, best)
    if kind == "ucb":
        return acq.ConfidenceBound(beta).log_utility(m, s)
    return 2.0 * jnp.log(s)


@partial(jax.jit, static_argnames=("kind",))
def _log_utility_vg(post, x, kind, best, beta):
    return jax.value_and_grad(lambda z: _log_utility(post, z[None], kind, best, beta)[0])(x)


@partial(jax.jit, static_argnames=("kind", "level"))
def _log_mf_utility(post, u, kind, level, best, log_cost_ratio):
    m, v, corr = post.correlation(u, level)
    v = jnp.maximum(v, 1e-300)
    if kind == "ei":
        # log AEI (Huang et al. 2006) without the noise factor (noise-free objectives)
        return (acq.log_expected_improvement(m, jnp.sqrt(v), best)
                + jnp.log(jnp.abs(corr) + 1e-300) + log_cost_ratio)
    return jnp.log(v) + 2.0 * jnp.log(jnp.abs(corr) + 1e-300) + log_cost_ratio


@partial(jax.jit, static_argnames=("kind", "level"))
def _log_mf_utility_vg(post, x, kind, level, best, log_cost_ratio):
    return jax.value_and_grad(
        lambda z: _log_mf_utility(post, z[None], kind, level, best, log_cost_ratio)[0])(x)


# ----- the surrogate handed to the user --------------------------------------------------------
@dataclass
class Surrogate:
    """The final surrogate of :func:`explore`, in the units of the space and the objective:
    ``predict(X, level=-1) -> (mean, var)`` (JAX arrays; differentiable in ``X`` for inputs
    that are not log-scaled)."""

    space: ParameterSpace
    posterior: GPPosterior | LinearMultiFidelityPosterior
    y_shift: float
    y_scale: float
    sign: float  # +1 minimisation, -1 maximisation (the GP models sign * y)

    def predict(self, X, level: int = -1):
        n_levels = _n_levels(self.posterior)
        if not -n_levels <= level < n_levels:
            raise InputError(f"level {level} does not exist; the surrogate has {n_levels}")
        X = jnp.atleast_2d(jnp.asarray(X, dtype=float))
        if X.shape[1] != self.space.size:
            raise InputError(f"X must have {self.space.size} columns (one per input), got "
                             f"shape {X.shape}")
        u = self.space.to_unit(X)
        m, v = _predict_jit(self.posterior, u, level % n_levels)
        return self.sign * (self.y_shift + self.y_scale * m), self.y_scale**2 * v

    @property
    def hyperparameters(self) -> dict:
        """Per fidelity level: lengthscales (unit box) and signal variances (standardised
        outputs); ``rho``: the auto-regressive coefficient of each level above the first;
        ``noise``: the noise variance of the top level's GP (standardised outputs)."""
        p = self.posterior
        posts = p.levels if isinstance(p, LinearMultiFidelityPosterior) else (p,)
        return {"lengthscales": [np.asarray(q.kernel.lengthscale).tolist() for q in posts],
                "variances": [float(q.kernel.variance) for q in posts],
                "rho": [float(q.beta[0]) for q in posts[1:]],
                "noise": float(posts[-1].noise)}

# ----- results ---------------------------------------------------------------------------------
def _num(v):
    return None if v is None or not math.isfinite(v) else float(v)


@dataclass
class ExploreResult:
    """What :func:`explore` did: every evaluation (``evaluations``: dicts with ``index``,
    ``batch``, ``x``, ``y`` (None if not finite), ``fidelity``, ``cost``, ``acquisition``
    (its value at the point when chosen; None for the initial design), ``time_s``), every
    round (``batches``: hyperparameters, Lipschitz constant, surrogate error) and the final
    ``surrogate``."""

    space: ParameterSpace
    evaluations: list
    batches: list
    acquisition: str
    minimize: bool
    costs: tuple | None
    surrogate: Surrogate | None = None
    settings: dict = field(default_factory=dict)
    final_error: dict = field(default_factory=dict)
    saved_hyperparameters: dict | None = field(default=None, repr=False)  # of a loaded result

    @property
    def X(self) -> np.ndarray:
        return np.asarray([e["x"] for e in self.evaluations], float).reshape(-1, self.space.size)

    @property
    def y(self) -> np.ndarray:
        return np.asarray([math.nan if e["y"] is None else e["y"] for e in self.evaluations],
                          float)

    @property
    def fidelity(self) -> np.ndarray:
        return np.asarray([e["fidelity"] for e in self.evaluations], int)

    @property
    def n_levels(self) -> int:
        return len(self.costs) if self.costs else 1

    def _top(self):
        top = self.fidelity == self.n_levels - 1
        y = np.where(top & np.isfinite(self.y), self.y, np.nan)
        return y if self.minimize else -y

    @property
    def best_index(self) -> int | None:
        y = self._top()
        return None if np.all(np.isnan(y)) else int(np.nanargmin(y))

    @property
    def best_x(self) -> np.ndarray | None:
        i = self.best_index
        return None if i is None else self.X[i]

    @property
    def best_y(self) -> float:
        i = self.best_index
        return math.nan if i is None else float(self.y[i])

    @property
    def best_params(self) -> dict:
        x = self.best_x
        return {} if x is None else dict(zip(self.space.ids, map(float, x), strict=True))

    def trace(self) -> np.ndarray:
        """Best top-fidelity value after each evaluation (NaN before the first one)."""
        y = self._top()
        out = np.fmin.accumulate(np.where(np.isnan(y), np.inf, y))
        out = np.where(np.isinf(out), np.nan, out)
        return out if self.minimize else -out

    def cost_trace(self) -> np.ndarray:
        """Total cost spent after each evaluation."""
        return np.cumsum([e["cost"] for e in self.evaluations])

    def evaluations_to(self, target: float) -> int | None:
        """Number of evaluations after which the best value first reached ``target``
        (``<= target`` when minimising), or None."""
        t = self.trace()
        hit = (t <= target) if self.minimize else (t >= target)
        return int(np.argmax(hit)) + 1 if np.any(hit) else None

    @property
    def n_failed(self) -> int:
        return int(np.sum(~np.isfinite(self.y)))

    @property
    def error(self) -> dict:
        """The error of the final surrogate (fitted on every evaluation): mean and max
        predictive standard deviation over the space (1024 Sobol' points), and RMSE on the
        test points where given."""
        return dict(self.final_error)

    def to_dict(self) -> dict:
        """JSON-ready: the space, settings, every evaluation and round, and a summary (the
        final surrogate is described by its hyperparameters; :meth:`from_dict` gives a
        result without ``surrogate``)."""
        return {"space": self.space.to_dict(), "acquisition": self.acquisition,
                "minimize": self.minimize, "costs": None if self.costs is None else
                list(self.costs), "n_evaluations": len(self.evaluations),
                "n_failed": self.n_failed, "best_y": _num(self.best_y),
                "best_x": None if self.best_x is None else self.best_x.tolist(),
                "best_params": self.best_params, "best_index": self.best_index,
                "error": self.error,
                "hyperparameters": self.saved_hyperparameters if self.surrogate is None
                else self.surrogate.hyperparameters,
                "settings": self.settings, "evaluations": self.evaluations,
                "batches": self.batches, "final_error": self.final_error}

    @classmethod
    def from_dict(cls, data) -> ExploreResult:
        costs = data.get("costs")
        return cls(ParameterSpace.from_dict(data["space"]), list(data["evaluations"]),
                   list(data["batches"]), data["acquisition"], bool(data["minimize"]),
                   None if costs is None else tuple(costs), None,
                   dict(data.get("settings") or {}), dict(data.get("final_error") or {}),
                   data.get("hyperparameters"))

    def to_pandas(self):
        """One row per evaluation (index ``index``): the inputs by name, ``y``,
        ``fidelity``, ``cost``, ``batch``, ``acquisition`` and ``time_s``."""
        import pandas as pd

        rows = [{**dict(zip(self.space.ids, e["x"], strict=True)),
                 **{k: e.get(k) for k in ("index", "y", "fidelity", "cost", "batch",
                                          "acquisition", "time_s")}}
                for e in self.evaluations]
        cols = [*self.space.ids, "index", "y", "fidelity", "cost", "batch", "acquisition",
                "time_s"]
        return pd.DataFrame(rows, columns=cols).set_index("index")

    def plot(self, ax=None):
        """Convergence: the best value against evaluations (optimisation) or the surrogate's
        mean predictive std (and test RMSE) against evaluations (active learning), into
        ``ax`` (a new figure if None); returns the axes."""
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(5.5, 3.8))
        n_init = sum(1 for e in self.evaluations if e["acquisition"] is None)
        xs = np.arange(1, len(self.evaluations) + 1)
        if self.acquisition == "variance":
            rows = self.batches + ([self.final_error] if self.final_error else [])
            nb = [b["n_fit"] for b in rows]
            ax.plot(nb, [b["mean_std"] for b in rows], "o-", ms=3,
                    label="mean predictive std")
            if rows and "test_rmse" in rows[0]:
                ax.plot(nb, [b["test_rmse"] for b in rows], "s-", ms=3, label="test RMSE")
            ax.set_yscale("log")
            ax.set_ylabel("surrogate error")
        else:
            y = self.y
            ax.plot(xs, y, ".", color="grey", ms=4, label="evaluations")
            ax.plot(xs, self.trace(), "-", color="C0", label="best so far")
            ax.set_ylabel("objective")
            finite = y[np.isfinite(y)]
            if finite.size and np.ptp(finite) > 0:
                lo, hi = np.percentile(finite, [0, 90])
                pad = 0.05 * (hi - lo) if hi > lo else 1.0
                ax.set_ylim(lo - pad, hi + pad)
        if n_init:
            ax.axvline(n_init + 0.5, color="grey", ls="--", lw=0.8, label="initial design")
        ax.set_xlabel("evaluation")
        ax.set_title(f"{self.acquisition}: best {self.best_y:.6g}" if
                     self.acquisition != "variance" else "active learning")
        ax.legend(fontsize=8)
        return ax

    def __repr__(self):
        return (f"ExploreResult(acquisition={self.acquisition!r}, n_evaluations="
                f"{len(self.evaluations)}, best_y={self.best_y:.6g}, n_failed={self.n_failed})")


# ----- the loop ----------------------------------------------------------------------------------
def _evaluate(fn, x: np.ndarray, executor, which: str) -> np.ndarray:
    """``fn`` on the rows of ``x``: one vectorised call, or one task per row on
    ``executor``."""
    if executor is None:
        y = fn(x)
        try:
            y = np.asarray(y, dtype=float)
        except (TypeError, ValueError):
            raise InputError(f"{which} returned {type(y).__name__}, not numbers; it must map "
                             "an (m, d) array to m values") from None
        if y.shape not in ((len(x),), (len(x), 1)):
            raise InputError(f"{which} returned shape {y.shape} for {len(x)} points; it must "
                             f"map an (m, d) array to an (m,) array")
        return y.reshape(-1)
    from ..runtime.executor import get_executor

    ex = get_executor(executor)
    out = np.full(len(x), math.nan)
    try:
        for i, v in ex.map(_one_point, [(row,) for row in x], shared=fn):
            out[i] = v
    finally:
        if ex is not executor:
            ex.close()
    return out


def _one_point(fn, row):
    v = np.asarray(fn(np.asarray(row)[None, :]), dtype=float).reshape(-1)
    if v.size != 1:
        raise InputError(f"the objective returned {v.size} values for one point")
    return float(v[0])


def _sobol(d: int, n: int, seed: int) -> np.ndarray:
    from scipy.stats import qmc

    m = max(1, int(math.ceil(math.log2(max(n, 2)))))
    return qmc.Sobol(d, scramble=True, seed=np.random.default_rng([seed, 0, 1])
                     ).random_base2(m)[:n]


def _check_positive_int(v, name: str, minimum: int = 1) -> int:
    if isinstance(v, bool) or int(v) != v or v < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {v!r}")
    return int(v)


def _load_previous(run) -> dict | None:
    """The evaluations and rounds of the earlier call into the run directory ``run``."""
    data = read_json(run.file(RESULT_FILE), FORMAT, "exploration results")
    if data is None:
        return None
    run.check(data, RESULT_FILE, records_key=("evaluations", "batches"))
    if not (isinstance(data.get("evaluations"), list) and isinstance(data.get("batches"), list)):
        raise InputError(f"{run.file(RESULT_FILE)}: the exploration results are damaged; use "
                         "restart (--restart) to start over, or another out directory")
    return data


def explore(objective: Callable | Sequence[Callable], space, *, budget: float,
            acquisition: str = "ei", n_initial: int | None = None, batch_size: int = 1,
            seed: int = 0, out=None, executor=None, costs: Sequence[float] | None = None,
            progress: Callable | None = None, minimize: bool = True,
            beta: float | None = None, xi: float = 0.0, restarts: int = 1,
            n_candidates: int | None = None, test=None,
            restart: bool = False) -> ExploreResult:
    """Bayesian optimisation (``acquisition="ei"`` or ``"ucb"``) or active learning
    (``"variance"``) of ``objective`` over ``space``; see the module docstring.

    ``objective``: a vectorised function ``(m, d) -> (m,)`` (NumPy or JAX), or a list of such
    functions, lowest fidelity first, with ``costs`` (cost of one evaluation of each).
    ``space``: a :class:`~scalebridge.ParameterSpace` (its estimated parameters, with
    finite bounds, explored uniformly on their scales), or what
    :meth:`ParameterSpace.from_bounds <scalebridge.ParameterSpace.from_bounds>` takes:
    ``[(low, high), ...]`` or ``{name: (low, high)}`` (``(low, high, "log")`` for a log
    scale).
    ``budget``: number of evaluations (one fidelity) or total cost (several).
    ``n_initial``: size of the Sobol' initial design (default ``2 (d + 1)``; with several
    fidelities, level ``l`` of ``L`` gets ``n_initial * 2^(L - l)`` points, nested).
    ``batch_size``: points per round (local penalisation; one fidelity only).
    ``executor``: evaluate the points of a round as separate tasks (see
    :func:`~scalebridge.runtime.executor.get_executor`); default one vectorised call.
    ``progress``: a :class:`~scalebridge.Progress`, or any ``progress(done, total, **info)``,
    called after each round with the budget spent and the round's record (``batch``,
    ``n_fit``, ``n_evaluations``, ``mean_std``, ``max_std``, ``test_rmse`` with a test
    set). ``minimize``: False maximises. ``beta``: fixed GP-UCB weight (default
    :func:`~.acquisition.ucb_beta`).
    ``xi``: EI margin (in standardised output units). ``restarts``: random restarts of the
    hyperparameter fit per round. ``n_candidates``: Sobol' candidates of the acquisition
    search. ``test``: ``(X, y)`` on which the surrogate's RMSE is recorded each round.
    ``restart``: start over in ``out`` instead of resuming.
    """
    space = ParameterSpace.from_bounds(space)
    space.require_finite_bounds("explore")
    d = space.size
    fns = list(objective) if isinstance(objective, (list, tuple)) else [objective]
    if not fns or not all(callable(f) for f in fns):
        raise InputError("objective must be a function (m, d) -> (m,) or a list of them, "
                         "lowest fidelity first")
    n_levels = len(fns)
    if acquisition not in acq.ACQUISITIONS:
        raise InputError(f"acquisition {acquisition!r} is unknown; use one of "
                         f"{', '.join(acq.ACQUISITIONS)}")
    if n_levels > 1:
        if costs is None or len(costs) != n_levels:
            raise InputError(f"{n_levels} fidelities need {n_levels} costs (costs=[...], "
                             "lowest fidelity first)")
        costs = tuple(float(c) for c in costs)
        if not all(math.isfinite(c) and c > 0 for c in costs):
            raise InputError(f"costs must be positive numbers, got {list(costs)}")
        if acquisition == "ucb":
            raise InputError("with several fidelities use acquisition 'ei' (augmented EI) or "
                             "'variance'; 'ucb' has no cost-aware form here")
        if batch_size != 1:
            raise InputError("with several fidelities the batch size must be 1")
    elif costs is not None and len(costs) != 1:
        raise InputError(f"one objective takes one cost, got costs={list(costs)}")
    else:
        costs = None
    batch_size = _check_positive_int(batch_size, "batch_size")
    restarts = _check_positive_int(restarts, "restarts", 0)
    seed = int(seed)
    cost_of = costs or (1.0,)
    if n_initial is None:
        n_initial = 2 * (d + 1)
    n_initial = _check_positive_int(n_initial, "n_initial", 2)
    init_sizes = [n_initial * 2 ** (n_levels - 1 - lv) for lv in range(n_levels)]
    init_cost = sum(n * c for n, c in zip(init_sizes, cost_of, strict=True))
    try:
        budget = float(budget)
    except (TypeError, ValueError):
        raise InputError(f"budget must be a number, got {budget!r}") from None
    if not budget >= init_cost:
        what = "evaluations" if n_levels == 1 else "cost"
        raise InputError(f"budget {budget:g} is smaller than the initial design ({init_cost:g} "
                         f"{what}); raise the budget or lower n_initial")
    if beta is not None and not (math.isfinite(beta) and beta > 0):
        raise InputError(f"beta must be a positive number, got {beta!r}")
    if test is not None:
        tx, ty = test
        tu = np.asarray(space.to_unit(np.atleast_2d(np.asarray(tx, float))))
        ty = np.asarray(ty, float).reshape(-1)
        if tu.shape[0] != ty.size or not np.all(np.isfinite(ty)):
            raise InputError("test must be (X, y) with one finite value per row of X")

    key = dict(space=space.to_dict(), acquisition=acquisition, n_initial=n_initial,
               batch_size=batch_size, seed=seed, minimize=bool(minimize),
               costs=None if costs is None else list(costs), beta=beta, xi=float(xi),
               restarts=restarts, n_candidates=n_candidates, n_levels=n_levels)
    rundir = None if out is None else open_run(
        out, "explore", inputs={"objective": (None, fingerprint(fns)),
                                "test set": (None, fingerprint(test))},
        settings={k: v for k, v in key.items() if k != "budget"}, seed=seed, restart=restart,
        results=(RESULT_FILE, "explore.png"))
    prev = _load_previous(rundir) if rundir is not None else None
    evals: list = list(prev["evaluations"]) if prev else []
    batches: list = list(prev["batches"]) if prev else []
    sign = 1.0 if minimize else -1.0
    reference = _sobol(d, _N_REFERENCE, seed + 1)
    result = ExploreResult(space, evals, batches, acquisition, bool(minimize), costs,
                           settings={k: v for k, v in key.items() if k != "space"})

    def save():
        if rundir is not None:
            data = {"format": FORMAT, "format_version": FORMAT_VERSION, "budget": budget,
                    **result.to_dict()}
            write_json(rundir.file(RESULT_FILE),
                       rundir.stamp(data, records_key=("evaluations", "batches")))

    def run(u: np.ndarray, levels: np.ndarray, values, batch: int):
        x = np.atleast_2d(space.from_unit(u))
        for lv in sorted(set(levels.tolist())):
            rows = np.flatnonzero(levels == lv)
            t0 = time.perf_counter()
            which = "the objective" if n_levels == 1 else f"the objective of fidelity {lv}"
            y = _evaluate(fns[lv], x[rows], executor, which)
            dt = (time.perf_counter() - t0) / len(rows)
            for r, yv in zip(rows, y, strict=True):
                evals.append({"index": len(evals), "batch": batch, "x": x[r].tolist(),
                              "y": _num(float(yv)), "fidelity": int(lv),
                              "cost": cost_of[lv],
                              "acquisition": None if values is None else _num(values[r]),
                              "time_s": dt})

    if not evals:  # the initial design (round 0)
        u0 = _sobol(d, max(init_sizes), seed)
        us = np.concatenate([u0[:n] for n in init_sizes])
        lv = np.concatenate([np.full(n, i) for i, n in enumerate(init_sizes)])
        run(us, lv, None, 0)
        save()

    def spent():
        return sum(e["cost"] for e in evals)

    state = {}
    gp = _single_gp(seed) if n_levels == 1 else None
    if gp is not None and batches:  # resumed: warm-start as the uninterrupted run does
        _restore_warm_start(gp, batches[-1]["hyper"], d)
    while True:
        batch = (evals[-1]["batch"] + 1) if evals else 1
        remaining = budget - spent()
        affordable = [lv for lv in range(n_levels) if cost_of[lv] <= remaining + 1e-12]
        rnd = np.random.default_rng([seed, batch])
        post, theta, info = _fit_round(evals, space, sign, n_levels, acquisition, rnd, gp,
                                       restarts, batch)
        state.update(post=post, info=info)
        if not affordable:
            break
        if n_levels == 1:
            q = min(batch_size, int(remaining + 1e-9))
            u, levels, values, lip = _propose(post, info, acquisition, q, batch, d, rnd,
                                              beta, xi, n_candidates)
        else:
            u, levels, values = _propose_mf(post, info, acquisition, affordable, cost_of, d,
                                            rnd, n_candidates)
            lip = None
        rec = {"batch": batch, "n_fit": len(evals), "hyper": theta.tolist(),
               "lipschitz": lip, **_errors(post, info, reference, test, space, sign)}
        run(u, levels, values, batch)
        rec["n_evaluations"] = len(evals)
        batches.append(rec)
        save()
        if progress is not None:
            progress(min(spent(), budget), budget, **rec)
    post, info = state["post"], state["info"]
    result.surrogate = Surrogate(space, post, info["shift"], info["scale"], sign)
    result.final_error = {"n_fit": len(evals),
                          **_errors(post, info, reference, test, space, sign)}
    if result.n_failed:
        warnings.warn(f"{result.n_failed} of {len(evals)} evaluations gave a non-finite value "
                      f"({'left out of the surrogate' if acquisition == 'variance' else 'given the worst finite value to the surrogate'})",  # noqa: E501
                      RuntimeWarning, stacklevel=2)
    save()
    return result


def _fit_round(evals, space, sign, n_levels, acquisition, rng, gp, restarts, batch):
    """Fit the surrogate to the evaluations so far; returns the posterior, the
    hyperparameters and what the acquisition needs (standardised best value, incumbents,
    failed points)."""
    u = np.asarray(space.to_unit(np.asarray([e["x"] for e in evals], float)))
    lev = np.asarray([e["fidelity"] for e in evals], int)
    y = np.asarray([math.nan if e["y"] is None else sign * e["y"] for e in evals], float)
    ok = np.isfinite(y)
    if not np.any(ok):
        raise InputError("every evaluation of the objective so far gave a non-finite value; "
                         "check the objective and the bounds of the space")
    failed = u[~ok]
    if acquisition == "variance":
        u_fit, lev_fit, y_fit = u[ok], lev[ok], y[ok]
    else:  # failures steer the search away: they get the worst finite value of their level
        y_fit = y.copy()
        for lv in np.unique(lev[~ok]):
            same = ok & (lev == lv)
            y_fit[~ok & (lev == lv)] = np.max(y[same]) if np.any(same) else np.max(y[ok])
        u_fit, lev_fit = u, lev
    shift = float(np.mean(y_fit))
    scale = float(np.std(y_fit))
    scale = scale if scale > 0 else 1.0
    z = (y_fit - shift) / scale
    post, theta = _fit(u_fit, lev_fit, z, n_levels, rng, gp, restarts,
                       full=batch % _FULL_FIT_EVERY == 1)
    top = (lev_fit == n_levels - 1)
    zt = z[top & np.isfinite(y_fit)] if np.any(top) else z
    if n_levels == 1:
        best = float(np.min(zt))
        order = np.argsort(z)[:3]
        near = u_fit[order]
    else:  # effective best of Huang et al. (2006): sampled point minimising mean + std
        m, v = _predict_np(post, u_fit)
        crit = m + np.sqrt(v)
        i = int(np.argmin(crit))
        best = float(m[i])
        near = u_fit[np.argsort(crit)[:3]]
    return post, theta, {"best": best, "near": near, "failed": failed, "shift": shift,
                         "scale": scale, "n": int(len(y)), "sign": sign}


def _propose(post, info, acquisition, q, batch, d, rng, beta, xi, n_candidates):
    kind = acquisition
    b = float(beta) if beta is not None else acq.ucb_beta(batch, d)
    best = info["best"] - float(xi)
    if kind == "ei":
        a = acq.ExpectedImprovement(info["best"], float(xi))
    elif kind == "ucb":
        a = acq.ConfidenceBound(b)
    else:
        a = acq.MaximumVariance()
    exclude = info["failed"] if kind == "variance" and len(info["failed"]) else None
    seeds = rng.integers(0, 2**63 - 1, size=2)
    if q == 1:
        fun = partial(_log_utility, post, kind=kind, best=best, beta=b)
        vg = partial(_log_utility_vg, post, kind=kind, best=best, beta=b)
        u, _ = acq.optimize_acquisition(fun, d, seed=int(seeds[0]), n_candidates=n_candidates,
                                        near=None if kind == "variance" else info["near"],
                                        exclude=exclude, value_and_grad=vg)
        u = u[None]
        lip = None
    else:  # local penalisation, the same steps as acquisition.propose_batch, compiled once
        from scipy.stats import qmc

        pts = qmc.Sobol(d, scramble=True, seed=int(seeds[1])).random_base2(min(9, 4 + d))
        lip = max(float(_max_mean_gradient(post, jnp.asarray(pts))), 1e-7)
        centres, mc, sc = np.zeros((q, d)), np.zeros(q), np.ones(q)
        active = np.zeros(q, bool)
        fixed = [] if exclude is None else list(exclude)
        chosen = []
        sub = np.random.default_rng(int(seeds[0])).integers(0, 2**63 - 1, size=q)
        for k in range(q):
            args = dict(kind=kind, best=best, beta=b, centres=jnp.asarray(centres),
                        mc=jnp.asarray(mc), sc=jnp.asarray(sc), active=jnp.asarray(active),
                        lipschitz=lip, m_best=info["best"])
            excl = fixed + chosen
            uk, _ = acq.optimize_acquisition(
                partial(_penalised, post, **args), d, seed=int(sub[k]),
                n_candidates=n_candidates, near=None if kind == "variance" else info["near"],
                exclude=np.asarray(excl) if excl else None,
                value_and_grad=partial(_penalised_vg, post, **args))
            chosen.append(uk)
            mk, vk = _predict_np(post, uk[None])
            centres[k], mc[k], sc[k], active[k] = uk, mk[0], math.sqrt(vk[0]), True
        u = np.asarray(chosen)
    m, v = _predict_np(post, u)
    vals = np.asarray(a.value(jnp.asarray(m), jnp.sqrt(jnp.asarray(v))), float)
    # in the units of the objective
    s, sh = info["scale"], info["shift"]
    if kind == "ei":
        vals = s * vals
    elif kind == "ucb":
        vals = info["sign"] * (sh - s * vals)  # the confidence bound, in objective units
    else:
        vals = s**2 * vals
    return u, np.full(len(u), _n_levels(post) - 1), vals, lip


def _propose_mf(post, info, acquisition, affordable, costs, d, rng, n_candidates):
    kind = acquisition
    top = _n_levels(post) - 1
    best_choice = None
    seeds = rng.integers(0, 2**63 - 1, size=len(affordable))
    exclude = info["failed"] if kind == "variance" and len(info["failed"]) else None
    for lv, sd in zip(affordable, seeds, strict=True):
        lr = math.log(costs[top] / costs[lv])
        fun = partial(_log_mf_utility, post, kind=kind, level=lv, best=info["best"],
                      log_cost_ratio=lr)
        vg = partial(_log_mf_utility_vg, post, kind=kind, level=lv, best=info["best"],
                     log_cost_ratio=lr)
        u, v = acq.optimize_acquisition(fun, d, seed=int(sd), n_candidates=n_candidates,
                                        near=None if kind == "variance" else info["near"],
                                        exclude=exclude, value_and_grad=vg)
        if best_choice is None or v > best_choice[2]:
            best_choice = (u, lv, v)
    u, lv, v = best_choice
    s = info["scale"]
    value = math.exp(v) * (s if kind == "ei" else s**2) if math.isfinite(v) else 0.0
    return u[None], np.array([lv]), np.array([value])


def _errors(post, info, reference, test, space, sign) -> dict:
    """Surrogate error of the current round (original output units)."""
    _, v = _predict_np(post, reference)
    sd = info["scale"] * np.sqrt(v)
    out = {"mean_std": float(np.mean(sd)), "max_std": float(np.max(sd))}
    if test is not None:
        tu = np.asarray(space.to_unit(np.atleast_2d(np.asarray(test[0], float))))
        mt, _ = _predict_np(post, tu)
        pred = sign * (info["shift"] + info["scale"] * mt)
        out["test_rmse"] = float(np.sqrt(np.mean((pred - np.asarray(test[1], float)) ** 2)))
    return out
