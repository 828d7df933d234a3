"""Exact Gaussian-process regression (Rasmussen & Williams 2006, ch. 2 and 5).

:class:`GaussianProcess` is a scikit-learn style estimator: ``__init__`` stores its
arguments, :meth:`GaussianProcess.fit` validates the data, learns the hyperparameters by
type-II maximum likelihood and returns ``self``; learned attributes end in ``_``.

Fitting. Inputs are mapped to the unit box and outputs to z-scores (both optional); the
hyperparameters (kernel log lengthscales and log variances, log noise variance above a
floor, and the coefficients of a linear mean where one is used) are optimised in these
unconstrained coordinates by BFGS (``infer.fit.minimize_starts``, inside ``jit``) on the
negative log marginal likelihood (Cholesky, R&W eq. 2.30), optionally plus weak Gaussian
priors on the log hyperparameters (``hyperprior=True``; off by default, because on the
multi-fidelity benchmarks they cost accuracy, see docs/decisions/0012). All starts (the
first from a default: half the input range as lengthscales, the output variance as signal
variance, noise 1e-2 of it; the others perturbed from it by a seeded normal draw) run in
one compiled call (``lax.map`` over the starts). The training data are padded to the next
multiple of 32 points with a mask (padding rows get zero kernel rows and columns, a unit
diagonal and a zero residual, and the likelihood constant counts only real points, so no
result changes); the compiled function is cached on these padded shapes and the kernel
structure: a later fit with any number of points in the same bucket does not recompile.
``warm_start=True`` adds the previous fit's hyperparameters as the first start (for loops
that refit after each new point); ``lengthscale_bounds=(low, high)`` keeps the lengthscales
(normalised input units) within bounds by optimising ``t`` with
``log l = log low + (log high - log low) sigmoid(t)``.

Prediction. The fitted state is :class:`GPPosterior`, an equinox Module (a pytree of the
training inputs, Cholesky factor, weights and normalisation constants). ``predict`` is pure
JAX: ``jax.grad``/``jax.jit`` of a function of the new inputs that calls
``gp.predict`` works, and ``eqx.filter_jit(lambda post, x: post.predict(x))`` compiles a
predictor that takes the posterior as an argument (no recompilation after a refit with the
same number of points).

Ill-conditioning. The kernel matrix gets a jitter relative to its mean diagonal: 1e-12
silently, then 1e-10, 1e-8 and 1e-6 with a warning each; if it is still not factorisable
(or the likelihood is not finite) an :class:`~scalebridge.errors.InputError` names the
likely cause (duplicate inputs with noise fixed at zero, noise too small, outputs on an
extreme scale) and the fix.
"""

from __future__ import annotations

import math
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputError, SerializationError
from ..infer.fit import minimize_starts
from .kernels import (
    _PRIOR_SD_LENGTHSCALE,
    AbstractKernel,
    Matern52,
    _Stationary,
    kernel_from_data,
    kernel_to_data,
)

__all__ = ["GaussianProcess", "GPPosterior"]

_JITTERS = (1e-12, 1e-10, 1e-8, 1e-6)
_MIN_PIVOT_RATIO = 1e-11  # min(diag L)^2 / max(diag L)^2 below this counts as singular
_PRIOR_SD_NOISE = 3.0
_NOISE_INIT = 1e-2  # initial noise variance, relative to the output variance
_BUCKET = 32  # training sets are padded to a multiple of this many points

# traces of the compiled functions (a trace is a compilation); tests read this
_TRACES = {"optimise": 0, "factor": 0, "predict": 0}


class _Hyper(eqx.Module):
    kernel: AbstractKernel
    log_noise: jnp.ndarray  # learned noise variance = floor + exp(log_noise)
    beta: jnp.ndarray  # coefficients of the mean h(x) @ beta, shape (q,)


class _Data(eqx.Module):
    x: jnp.ndarray  # (n, d), normalised
    y: jnp.ndarray  # (n,), normalised
    h: jnp.ndarray  # (n, q) mean features
    hvar: jnp.ndarray  # (n, q): extra noise variance (hvar @ beta)^2 per point
    fixed_noise: jnp.ndarray  # noise variance when not learned (normalised units)
    floor: jnp.ndarray  # noise floor when learned
    jitter: jnp.ndarray  # relative to the mean kernel diagonal
    x_range: jnp.ndarray  # (d,) for the priors
    y_var: jnp.ndarray
    mask: jnp.ndarray  # (n,): 1 for a data point, 0 for a padding row
    ls_prior_sd: jnp.ndarray  # sd of the log lengthscale prior (hyperprior)
    log_ls_bounds: jnp.ndarray  # (2,) log lengthscale bounds (used when ``bounded``)
    learn_noise: bool = eqx.field(static=True)
    use_prior: bool = eqx.field(static=True)
    bounded: bool = eqx.field(static=True)


def _noise_var(hyp: _Hyper, data: _Data):
    if data.learn_noise:
        return data.floor + jnp.exp(hyp.log_noise)
    return data.fixed_noise


def _factor(hyp: _Hyper, data: _Data):
    # padding rows (mask 0) are decoupled: zero kernel rows and columns, unit diagonal, zero
    # residual, so they add nothing to alpha, log det or the quadratic form
    m = data.mask
    n = jnp.sum(m)
    k = hyp.kernel(data.x, data.x) * m[:, None] * m[None, :]
    scale = jnp.sum(jnp.diag(k)) / n
    point_noise = _noise_var(hyp, data) + (data.hvar @ hyp.beta) ** 2
    k = k + jnp.diag(jnp.where(m > 0, point_noise + data.jitter * scale, 1.0))
    chol = jnp.linalg.cholesky(k)
    resid = (data.y - data.h @ hyp.beta) * m
    alpha = jax.scipy.linalg.cho_solve((chol, True), resid)
    lml = (-0.5 * resid @ alpha - jnp.sum(jnp.log(jnp.diag(chol)))
           - 0.5 * n * math.log(2 * math.pi))
    return chol, alpha, lml


def _log_prior(hyp: _Hyper, data: _Data):
    lp = hyp.kernel.log_prior(data.x_range, data.y_var, data.ls_prior_sd)
    if data.learn_noise:
        z = (hyp.log_noise - jnp.log(_NOISE_INIT * data.y_var)) / _PRIOR_SD_NOISE
        lp = lp - 0.5 * z**2
    return lp


def _loss(hyp: _Hyper, data: _Data):
    lml = _factor(hyp, data)[2]
    if data.use_prior:
        lml = lml + _log_prior(hyp, data)
    return -lml


def _is_stationary(v) -> bool:
    return isinstance(v, _Stationary)


def _map_log_lengthscales(hyp: _Hyper, fn) -> _Hyper:
    """``hyp`` with ``fn`` applied to the log lengthscales of every stationary kernel."""
    def one(k):
        if not _is_stationary(k):
            return k
        return eqx.tree_at(lambda q: q.log_lengthscale, k, fn(k.log_lengthscale))

    kernel = jax.tree.map(one, hyp.kernel, is_leaf=_is_stationary)
    return _Hyper(kernel, hyp.log_noise, hyp.beta)


def _constrain(hyp: _Hyper, data: _Data) -> _Hyper:
    """Optimiser coordinates -> hyperparameters: with ``lengthscale_bounds`` the log
    lengthscales are ``lo + (hi - lo) sigmoid(t)``."""
    if not data.bounded:
        return hyp
    lo, hi = data.log_ls_bounds[0], data.log_ls_bounds[1]
    return _map_log_lengthscales(hyp, lambda t: lo + (hi - lo) * jax.nn.sigmoid(t))


def _unconstrain(hyp: _Hyper, data: _Data) -> _Hyper:
    """Inverse of :func:`_constrain` (starts outside the bounds are moved just inside)."""
    if not data.bounded:
        return hyp
    lo, hi = data.log_ls_bounds[0], data.log_ls_bounds[1]

    def inv(v):
        p = jnp.clip((v - lo) / (hi - lo), 1e-6, 1.0 - 1e-6)
        return jnp.log(p) - jnp.log1p(-p)

    return _map_log_lengthscales(hyp, inv)


def _bounded_loss(t: _Hyper, data: _Data):
    return _loss(_constrain(t, data), data)


@eqx.filter_jit
def _optimise(hyp0: _Hyper, data: _Data, max_steps: int):
    """The batched local solver of ``infer`` from each of the stacked starts ``hyp0``;
    returns the stacked optima and their losses."""
    _TRACES["optimise"] += 1
    starts = jax.vmap(_unconstrain, in_axes=(0, None))(hyp0, data)
    values, losses = minimize_starts(_bounded_loss, starts, data, max_steps=max_steps)
    return jax.vmap(_constrain, in_axes=(0, None))(values, data), losses


@eqx.filter_jit
def _factor_checked(hyp: _Hyper, data: _Data):
    _TRACES["factor"] += 1
    chol, alpha, lml = _factor(hyp, data)
    d = jnp.diag(chol)
    real = data.mask > 0  # the unit pivots of padding rows do not count
    ok = (jnp.all(jnp.isfinite(chol)) & jnp.all(jnp.isfinite(alpha)) & jnp.isfinite(lml)
          & (jnp.min(jnp.where(real, d, jnp.inf)) ** 2
             > _MIN_PIVOT_RATIO * jnp.max(jnp.where(real, d, 0.0)) ** 2))
    return chol, alpha, lml, ok


class GPPosterior(eqx.Module):
    """The fitted state of a GP: a pytree, so it can be passed through ``jax.jit``.

    ``predict`` returns the predictive mean and variance (or covariance) of the latent
    function in the original output units (R&W 2006, eqs. 2.25-2.26)."""

    kernel: AbstractKernel
    x: jnp.ndarray  # normalised training inputs (n, d), padded to the bucket size
    mask: jnp.ndarray  # (n,): 1 for a training point, 0 for a padding row
    chol: jnp.ndarray  # Cholesky factor of K + noise (n, n)
    alpha: jnp.ndarray  # (K + noise)^-1 (y - h beta), (n,)
    beta: jnp.ndarray  # mean coefficients (q,)
    noise: jnp.ndarray  # noise variance, normalised units
    x_shift: jnp.ndarray
    x_scale: jnp.ndarray
    y_shift: jnp.ndarray
    y_scale: jnp.ndarray

    def _normalise(self, x):
        return (x - self.x_shift) / self.x_scale

    def predict(self, x, full_cov: bool = False, include_noise: bool = False, h=None):
        """Mean and variance (``full_cov``: covariance) at ``x`` (m, d); ``h`` (m, q) are
        the mean features at ``x`` (only for a GP with a linear mean)."""
        xs = self._normalise(x)
        ks = self.kernel(xs, self.x) * self.mask[None, :]
        mean = ks @ self.alpha
        if h is not None:
            mean = mean + h @ self.beta
        v = jax.scipy.linalg.solve_triangular(self.chol, ks.T, lower=True)
        if full_cov:
            cov = self.kernel(xs, xs) - v.T @ v
            if include_noise:
                cov = cov + self.noise * jnp.eye(x.shape[0], dtype=cov.dtype)
            out = cov * self.y_scale**2
        else:
            var = jnp.maximum(self.kernel.diag(xs) - jnp.sum(v * v, axis=0), 0.0)
            if include_noise:
                var = var + self.noise
            out = var * self.y_scale**2
        return self.y_shift + self.y_scale * mean, out


@eqx.filter_jit
def _predict(post: GPPosterior, x, h, full_cov: bool, include_noise: bool):
    _TRACES["predict"] += 1
    return post.predict(x, full_cov=full_cov, include_noise=include_noise, h=h)


def _as_2d(x, name: str, d: int | None = None) -> np.ndarray:
    try:
        a = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be an array of numbers, got {type(x).__name__}") from None
    if a.ndim != 2:
        raise InputError(f"{name} must be a 2-D array (n points, d inputs), got shape "
                         f"{a.shape}; reshape a single input column with x.reshape(-1, 1)")
    if d is not None and a.shape[1] != d:
        raise InputError(f"{name} has {a.shape[1]} columns but the GP was fitted on {d} "
                         "inputs")
    if not np.all(np.isfinite(a)):
        raise InputError(f"{name} contains NaN or infinity; remove or impute those points")
    return a


def check_xy(x, y, min_points: int = 2, name: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Validate training data: ``x`` (n, d) and ``y`` (n,), finite, ``n >= min_points``."""
    xn, yn = f"X{name}", f"y{name}"
    x = _as_2d(x, xn)
    try:
        y = np.asarray(y, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{yn} must be an array of numbers, got {type(y).__name__}") from None
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise InputError(f"{yn} must be 1-D (one output per point), got shape {y.shape}")
    if y.shape[0] != x.shape[0]:
        raise InputError(f"{xn} has {x.shape[0]} points but {yn} has {y.shape[0]} values; "
                         "give one output per input row")
    if not np.all(np.isfinite(y)):
        raise InputError(f"{yn} contains NaN or infinity; remove or impute those points")
    if x.shape[0] < min_points:
        raise InputError(f"{xn} has {x.shape[0]} point(s); a GP needs at least {min_points}")
    return x, y


def _stack(trees):
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def _perturb(hyp: _Hyper, rng: np.random.Generator, sd: float) -> _Hyper:
    """Random start: kernel and noise log hyperparameters moved by N(0, sd^2)."""
    params, static = eqx.partition((hyp.kernel, hyp.log_noise), eqx.is_inexact_array)
    params = jax.tree.map(lambda a: a + jnp.asarray(rng.normal(0.0, sd, np.shape(a))), params)
    kernel, log_noise = eqx.combine(params, static)
    return _Hyper(kernel, log_noise, hyp.beta)


class GaussianProcess:
    """Exact GP regression with hyperparameters learned by type-II maximum likelihood.

    Parameters
    ----------
    kernel : a kernel from :mod:`scalebridge.surrogate.kernels`; default ``Matern52()``
        with ARD lengthscales (Matern 5/2: twice differentiable, less prone than the RBF to
        over-smoothing and ill-conditioning; Snoek et al. 2012). Its hyperparameters are the
        starting point of the optimisation and act in the normalised input/output units.
    noise : ``None`` learns the noise variance (above ``noise_floor`` times the output
        variance); a number fixes it (a variance, in output units; ``0`` interpolates).
    normalize_x : map inputs to the unit box of the training data.
    normalize_y : z-score the outputs.
    restarts : random starts in addition to the default start.
    seed : seeds the random starts.
    optimize : ``False`` keeps the kernel's hyperparameters as given (then the kernel must
        have its lengthscales).
    hyperprior : add weak Gaussian priors on the log hyperparameters (lengthscale around
        half the input range, sd 2; signal variance around the output variance, sd 2; noise
        around 1e-2 of it, sd 3). Off by default: on the multi-fidelity benchmarks they cost
        accuracy (docs/decisions/0012-gaussian-processes.md).
    noise_floor : smallest learned noise variance, relative to the output variance.
    max_steps : BFGS iterations per start.
    lengthscale_bounds : ``None`` or ``(low, high)``: bounds on every stationary kernel's
        lengthscales, in normalised input units (the unit box with ``normalize_x``);
        enforced by a sigmoid reparametrisation of the log lengthscales during optimisation.
    lengthscale_prior_sd : with ``hyperprior``, the standard deviation of the log-normal
        lengthscale prior (in log units; default 2, weak).
    warm_start : when the estimator was fitted before, start the optimisation also from the
        previous fitted hyperparameters (as the first start; scikit-learn's name).
    """

    def __init__(self, kernel: AbstractKernel | None = None, noise: float | None = None, *,
                 normalize_x: bool = True, normalize_y: bool = True, restarts: int = 4,
                 seed: int = 0, optimize: bool = True, hyperprior: bool = False,
                 noise_floor: float = 1e-6, max_steps: int = 200,
                 lengthscale_bounds: tuple[float, float] | None = None,
                 lengthscale_prior_sd: float = _PRIOR_SD_LENGTHSCALE,
                 warm_start: bool = False):
        self.kernel = kernel
        self.noise = noise
        self.normalize_x = normalize_x
        self.normalize_y = normalize_y
        self.restarts = restarts
        self.seed = seed
        self.optimize = optimize
        self.hyperprior = hyperprior
        self.noise_floor = noise_floor
        self.max_steps = max_steps
        self.lengthscale_bounds = lengthscale_bounds
        self.lengthscale_prior_sd = lengthscale_prior_sd
        self.warm_start = warm_start

    # ----- fitting ---------------------------------------------------------------------------
    def _check_params(self):
        if self.kernel is not None and not isinstance(self.kernel, AbstractKernel):
            raise InputError("kernel must be a scalebridge.surrogate.kernels kernel (e.g. "
                             f"Matern52()), got {type(self.kernel).__name__}")
        if self.noise is not None and not (np.isscalar(self.noise) and
                                           math.isfinite(self.noise) and self.noise >= 0):
            raise InputError(f"noise must be None (learn it) or a variance >= 0, got "
                             f"{self.noise!r}")
        if int(self.restarts) != self.restarts or self.restarts < 0:
            raise InputError(f"restarts must be an integer >= 0, got {self.restarts!r}")
        if not (self.noise_floor > 0):
            raise InputError(f"noise_floor must be > 0, got {self.noise_floor!r}")
        if int(self.max_steps) != self.max_steps or self.max_steps < 1:
            raise InputError(f"max_steps must be an integer >= 1, got {self.max_steps!r}")
        sd = self.lengthscale_prior_sd
        if not (np.isscalar(sd) and math.isfinite(sd) and sd > 0):
            raise InputError(f"lengthscale_prior_sd must be a number > 0, got {sd!r}")
        b = self.lengthscale_bounds
        if b is not None:
            try:
                lo, hi = (float(v) for v in b)
            except (TypeError, ValueError):
                lo = hi = math.nan
            if not (0 < lo < hi < math.inf):
                raise InputError("lengthscale_bounds must be None or (low, high) with "
                                 f"0 < low < high, got {b!r}")

    def fit(self, X, y) -> GaussianProcess:
        """Learn the hyperparameters from ``X`` (n, d) and ``y`` (n,); returns ``self``."""
        x, y = check_xy(X, y)
        return self._fit_arrays(x, y)

    def _prepare(self, x, y, h, hvar, beta0, y_var=None):
        """Normalise the data; returns a ``jitter -> _Data`` function and the constants."""
        n, d = x.shape
        if self.normalize_x:
            x_shift = x.min(axis=0)
            x_scale = np.ptp(x, axis=0)
            x_scale = np.where(x_scale > 0, x_scale, 1.0)
        else:
            x_shift, x_scale = np.zeros(d), np.ones(d)
        if self.normalize_y:
            y_shift, y_scale = float(np.mean(y)), float(np.std(y))
            y_scale = y_scale if y_scale > 0 else 1.0
        else:
            y_shift, y_scale = 0.0, 1.0
        xn = (x - x_shift) / x_scale
        yn = (y - y_shift) / y_scale
        h = np.zeros((n, 0)) if h is None else np.asarray(h, dtype=float)
        hvar = np.zeros(h.shape) if hvar is None else np.asarray(hvar, dtype=float)
        beta0 = np.zeros(h.shape[1]) if beta0 is None else np.asarray(beta0, dtype=float)
        # output variance left to the kernel: centres the priors and scales the noise floor
        if y_var is None:
            y_var = max(float(np.var(yn - h @ beta0)), 1e-12)
        learn = self.noise is None
        fixed = 0.0 if learn else float(self.noise) / y_scale**2
        x_range = np.ptp(xn, axis=0)
        x_range = np.where(x_range > 0, x_range, 1.0)
        bounds = self.lengthscale_bounds
        log_bounds = np.log(bounds) if bounds is not None else np.zeros(2)
        f = jnp.asarray
        # padded to the bucket size: one compiled fit and prediction per bucket of n
        size = _BUCKET * max(1, -(-n // _BUCKET))
        mask = np.zeros(size)
        mask[:n] = 1.0

        def pad(a):
            out = np.repeat(a[:1], size, axis=0)  # copies of a data row keep k finite
            out[:n] = a
            return f(out)

        def data(jitter):
            return _Data(pad(xn), pad(yn) * f(mask), pad(h), pad(hvar) * f(mask)[:, None],
                         f(fixed), f(self.noise_floor * y_var), f(jitter), f(x_range),
                         f(y_var), f(mask), f(float(self.lengthscale_prior_sd)),
                         f(log_bounds), learn_noise=learn,
                         use_prior=bool(self.hyperprior), bounded=bounds is not None)

        const = dict(xn=xn, h=h, hvar=hvar, beta0=beta0, y_var=y_var, x_shift=x_shift,
                     x_scale=x_scale, y_shift=y_shift, y_scale=y_scale)
        return data, const

    def _fit_arrays(self, x, y, h=None, hvar=None, beta0=None):
        """Fit on validated arrays; ``h`` (n, q) are mean features whose coefficients are
        learned from ``beta0`` (used by the multi-fidelity models); ``hvar`` (n, q) adds the
        noise variance ``(hvar @ beta)^2`` per point."""
        self._check_params()
        data, c = self._prepare(x, y, h, hvar, beta0)
        kernel = Matern52() if self.kernel is None else self.kernel
        kernel = kernel.initialise(c["xn"])
        hyp = _Hyper(kernel, jnp.asarray(math.log(_NOISE_INIT * c["y_var"])),
                     jnp.asarray(c["beta0"]))
        if self.optimize:
            rng = np.random.default_rng(self.seed)
            first = [hyp] + [_perturb(hyp, rng, 1.0) for _ in range(self.restarts)]
            prev = self._warm(hyp)
            starts = _stack(first if prev is None else [prev] + first)
        for i, jitter in enumerate(_JITTERS):
            dat = data(jitter)
            best = hyp
            if self.optimize:
                values, losses = _optimise(starts, dat, int(self.max_steps))
                losses = np.asarray(losses)
                if np.any(np.isfinite(losses)):
                    k = int(np.argmin(np.where(np.isfinite(losses), losses, np.inf)))
                    best = jax.tree.map(lambda a, k=k: a[k], values)
            factor = _factor_checked(best, dat)
            if bool(factor[3]):
                break
            if i + 1 < len(_JITTERS):
                warnings.warn(
                    f"the GP kernel matrix is ill-conditioned ({self._cause(x)}); adding "
                    f"jitter {_JITTERS[i + 1]:g} x its mean diagonal", RuntimeWarning,
                    stacklevel=3)
        else:
            raise InputError(
                f"the GP kernel matrix cannot be factorised even with jitter {_JITTERS[-1]:g} "
                f"x its mean diagonal: {self._cause(x)}. Remove duplicate inputs, learn the "
                "noise (noise=None) or fix a larger noise, and keep normalize_y=True")
        self._store(x, y, c, best, dat, factor, jitter)
        return self

    def _warm(self, hyp: _Hyper) -> _Hyper | None:
        """The previous fitted hyperparameters as a start (``warm_start``), where they have
        the structure of the new default start."""
        if not (self.warm_start and hasattr(self, "hyper_")):
            return None
        prev = self.hyper_
        same = (jax.tree.structure(prev) == jax.tree.structure(hyp) and
                all(np.shape(a) == np.shape(b) for a, b in
                    zip(jax.tree.leaves(prev), jax.tree.leaves(hyp), strict=True)))
        if not same:
            return None
        return _Hyper(prev.kernel, prev.log_noise, hyp.beta)

    def _store(self, x, y, c, hyp, dat, factor, jitter):
        chol, alpha, lml, _ = factor
        self.hyper_ = hyp
        self.jitter_ = float(jitter)
        self.n_features_in_ = x.shape[1]
        self.X_train_, self.y_train_ = x, y
        self._h, self._hvar, self._y_var = c["h"], c["hvar"], c["y_var"]
        self.posterior_ = GPPosterior(
            hyp.kernel, dat.x, dat.mask, chol, alpha, hyp.beta, _noise_var(hyp, dat),
            *(jnp.asarray(c[k]) for k in ("x_shift", "x_scale", "y_shift", "y_scale")))
        # in the original output units (the z-score has Jacobian 1 / y_scale per point)
        self.log_marginal_likelihood_ = float(lml) - x.shape[0] * math.log(c["y_scale"])

    def _refit_at(self, x, y, h, hvar, hyp: _Hyper, jitter: float, y_var: float):
        """Rebuild the fitted state at given hyperparameters (no optimisation)."""
        data, c = self._prepare(x, y, h, hvar, np.asarray(hyp.beta), y_var)
        dat = data(jitter)
        factor = _factor_checked(hyp, dat)
        if not bool(factor[3]):
            raise SerializationError("the saved GP cannot be rebuilt: its kernel matrix is "
                                     "not factorisable")
        self._store(x, y, c, hyp, dat, factor, jitter)
        return self

    def _cause(self, x) -> str:
        dup = x.shape[0] - np.unique(x, axis=0).shape[0]
        parts = []
        if dup:
            parts.append(f"{dup} duplicate input point(s)")
        if self.noise is not None:
            parts.append(f"noise fixed at {self.noise:g}, too small for the kernel matrix")
        if not self.normalize_y:
            parts.append("outputs not normalised (normalize_y=False)")
        return "; ".join(parts) or "nearly collinear inputs for this kernel"

    # ----- fitted quantities ----------------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "posterior_"):
            raise InputError("this GaussianProcess is not fitted yet; call fit(X, y) first")

    @property
    def kernel_(self) -> AbstractKernel:
        """The fitted kernel (acting on normalised inputs, normalised output units)."""
        self._check_fitted()
        return self.posterior_.kernel

    @property
    def noise_(self) -> float:
        """The noise variance in output units (learned or fixed)."""
        self._check_fitted()
        return float(self.posterior_.noise * self.posterior_.y_scale**2)

    @property
    def lengthscales_(self) -> np.ndarray:
        """The fitted lengthscales of a single stationary kernel, in input units."""
        k = self.kernel_
        if not hasattr(k, "lengthscale"):
            raise InputError("lengthscales_ is defined for a single stationary kernel; "
                             "inspect kernel_ for composite kernels")
        scale = np.asarray(self.posterior_.x_scale)
        if k.active_dims is not None:
            scale = scale[list(k.active_dims)]
        ls = np.asarray(k.lengthscale)
        return ls * (scale if ls.size == scale.size else np.mean(scale))

    def _x(self, X):
        self._check_fitted()
        d = self.n_features_in_
        if isinstance(X, jax.core.Tracer):
            if X.ndim == 1 and d == 1:
                X = X[:, None]
            if X.ndim != 2 or X.shape[1] != d:
                raise InputError(f"X must have shape (m, {d}), got {X.shape}")
            return X
        if np.ndim(X) == 1 and d == 1:
            X = np.reshape(X, (-1, 1))
        return jnp.asarray(_as_2d(X, "X", d))

    def predict(self, X, full_cov: bool = False, include_noise: bool = False):
        """Predictive mean ``(m,)`` and variance ``(m,)`` (or covariance ``(m, m)`` with
        ``full_cov``) of the latent function at ``X`` (m, d); ``include_noise`` adds the
        noise variance (prediction of a new observation). Pure JAX: differentiable and
        jit-compatible in ``X``."""
        self._check_fitted()
        if self.posterior_.beta.shape[0]:
            raise InputError("this GP has a linear mean on features of a lower fidelity; "
                             "predict through its multi-fidelity model")
        return _predict(self.posterior_, self._x(X), None, bool(full_cov), bool(include_noise))

    def sample(self, X, n_samples: int = 1, seed: int = 0, include_noise: bool = False):
        """``n_samples`` joint draws ``(n_samples, m)`` from the posterior at ``X``."""
        if int(n_samples) != n_samples or n_samples < 1:
            raise InputError(f"n_samples must be an integer >= 1, got {n_samples!r}")
        mean, cov = self.predict(X, full_cov=True, include_noise=include_noise)
        return _draw(mean, cov, int(n_samples), jax.random.key(int(seed)))

    # ----- saving -------------------------------------------------------------------------------
    def _settings(self) -> dict:
        return {"noise": self.noise, "normalize_x": self.normalize_x,
                "normalize_y": self.normalize_y, "restarts": self.restarts, "seed": self.seed,
                "optimize": self.optimize, "hyperprior": self.hyperprior,
                "noise_floor": self.noise_floor, "max_steps": self.max_steps,
                "lengthscale_bounds": None if self.lengthscale_bounds is None else
                [float(v) for v in self.lengthscale_bounds],
                "lengthscale_prior_sd": float(self.lengthscale_prior_sd),
                "warm_start": bool(self.warm_start)}

    def _to_data(self, prefix: str = "") -> tuple[dict, dict]:
        self._check_fitted()
        kmeta, arrays = kernel_to_data(self.hyper_.kernel, prefix + "kernel")
        arrays.update({prefix + "X": self.X_train_, prefix + "y": self.y_train_,
                       prefix + "h": self._h, prefix + "hvar": self._hvar,
                       prefix + "beta": np.asarray(self.hyper_.beta),
                       prefix + "log_noise": np.asarray(self.hyper_.log_noise)})
        meta = {"settings": self._settings(), "kernel": kmeta, "jitter": self.jitter_,
                "y_var": self._y_var}
        return meta, arrays

    @classmethod
    def _from_data(cls, meta: dict, arrays: dict, prefix: str = "") -> GaussianProcess:
        kernel = kernel_from_data(meta["kernel"], arrays, prefix + "kernel")
        gp = cls(kernel, **meta["settings"])
        gp._check_params()
        hyp = _Hyper(kernel, jnp.asarray(arrays[prefix + "log_noise"]),
                     jnp.asarray(arrays[prefix + "beta"]))
        return gp._refit_at(arrays[prefix + "X"], arrays[prefix + "y"], arrays[prefix + "h"],
                            arrays[prefix + "hvar"], hyp, float(meta["jitter"]),
                            float(meta["y_var"]))

    def to_dict(self) -> dict:
        """The settings, fitted hyperparameters and training data (arrays under
        ``arrays``); :func:`scalebridge.save` stores it, :meth:`from_dict` refits nothing."""
        meta, arrays = self._to_data()
        return {**meta, "arrays": arrays}

    @classmethod
    def from_dict(cls, d) -> GaussianProcess:
        return cls._from_data(d, d["arrays"])

    def to_pandas(self):
        """The training data: one row per point, inputs ``x0 ..`` and output ``y``."""
        import pandas as pd

        self._check_fitted()
        X = np.asarray(self.X_train_)
        frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
        frame["y"] = np.asarray(self.y_train_)
        return frame

    def plot(self, ax=None, *, dim: int = 0, n_points: int = 200):
        """The predictive mean and 95% band along input ``dim`` (the other inputs at the
        mean of the training inputs), with the training points, into ``ax`` (a new figure
        if None); returns the axes."""
        self._check_fitted()
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(5.5, 3.5))
        X = np.asarray(self.X_train_)
        grid = np.linspace(X[:, dim].min(), X[:, dim].max(), n_points)
        Z = np.tile(X.mean(axis=0), (n_points, 1))
        Z[:, dim] = grid
        m, v = (np.asarray(a) for a in self.predict(Z))
        sd = np.sqrt(np.maximum(v, 0.0))
        ax.fill_between(grid, m - 1.96 * sd, m + 1.96 * sd, color="C0", alpha=0.2,
                        label="95% band")
        ax.plot(grid, m, color="C0", label="mean")
        ax.plot(X[:, dim], np.asarray(self.y_train_), "k.", ms=4, label="training points")
        ax.set_xlabel(f"x{dim}")
        ax.legend(fontsize=8)
        return ax


@eqx.filter_jit
def _draw(mean, cov, n_samples: int, key):
    # symmetric square root by eigendecomposition: robust where cov is singular
    w, v = jnp.linalg.eigh(0.5 * (cov + cov.T))
    root = v * jnp.sqrt(jnp.maximum(w, 0.0))
    z = jax.random.normal(key, (n_samples, mean.shape[0]), dtype=mean.dtype)
    return mean + z @ root.T
