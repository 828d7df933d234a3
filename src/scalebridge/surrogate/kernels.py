"""Covariance functions for Gaussian-process regression (Rasmussen & Williams 2006, ch. 4).

Kernels are equinox Modules, so they are JAX pytrees: their hyperparameters are arrays
(stored in log space, the unconstrained coordinates that are optimised), their structure
(``active_dims``, ARD or not) is static. ``k(X1, X2)`` returns the ``(n, m)`` covariance
matrix, ``k.diag(X)`` its diagonal. Kernels compose with ``+`` (:class:`Sum`) and ``*``
(:class:`Product`); ``active_dims`` restricts a kernel to some input columns, which is how
the nonlinear multi-fidelity kernel ``k_rho(x) k_f(f) + k_delta(x)`` is built.

Stationary kernels have ARD lengthscales (one per active input) and a signal variance. A
lengthscale left as ``None`` is set by :meth:`AbstractKernel.initialise` to half the range
of the training inputs in each dimension. White noise is not a kernel here: the
:class:`~scalebridge.surrogate.gp.GaussianProcess` owns the noise variance.
"""

from __future__ import annotations

import abc
import math

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from ..errors import InputError, SerializationError

__all__ = ["AbstractKernel", "RBF", "Matern32", "Matern52", "Sum", "Product"]

# weak Gaussian priors on log hyperparameters (standard deviations, in nats of log space)
_PRIOR_SD_LENGTHSCALE = 2.0
_PRIOR_SD_VARIANCE = 2.0


class AbstractKernel(eqx.Module):
    """A covariance function ``k(x, x')`` on rows of ``(n, d)`` arrays."""

    @abc.abstractmethod
    def __call__(self, x1, x2):
        """The ``(n, m)`` covariance matrix between the rows of ``x1`` and ``x2``."""

    @abc.abstractmethod
    def diag(self, x):
        """``k(x_i, x_i)`` for each row of ``x``."""

    @abc.abstractmethod
    def initialise(self, x) -> AbstractKernel:
        """A copy with hyperparameter arrays sized for the training inputs ``x`` (n, d)."""

    @abc.abstractmethod
    def log_prior(self, x_range, y_var, lengthscale_sd=None):
        """Weak log prior density of the log hyperparameters, given the range of each
        input column and the variance of the outputs; ``lengthscale_sd`` is the width of
        the log-normal lengthscale priors (default: a weak one)."""

    def __add__(self, other):
        _check_kernel(other, "+")
        return Sum(self, other)

    def __mul__(self, other):
        _check_kernel(other, "*")
        return Product(self, other)


def _check_kernel(other, op):
    if not isinstance(other, AbstractKernel):
        raise InputError(f"kernels combine with {op} only with other kernels, got "
                         f"{type(other).__name__}")


def _columns(x, dims):
    return x if dims is None else x[:, jnp.asarray(dims)]


def _log_normal_pdf(z, loc, sd):
    return -0.5 * ((z - loc) / sd) ** 2 - jnp.log(sd) - 0.5 * math.log(2 * math.pi)


class _Stationary(AbstractKernel):
    """A stationary kernel ``variance * g(r)`` of the scaled distance
    ``r = |(x - x') / lengthscale|``."""

    log_lengthscale: jnp.ndarray | None
    log_variance: jnp.ndarray
    active_dims: tuple[int, ...] | None = eqx.field(static=True)
    ard: bool = eqx.field(static=True)

    def __init__(self, lengthscale=None, variance=1.0, *, active_dims=None, ard=True):
        name = type(self).__name__
        if lengthscale is None:
            self.log_lengthscale = None
        else:
            ls = np.asarray(lengthscale, dtype=float)
            if ls.ndim > 1 or not np.all(np.isfinite(ls)) or np.any(ls <= 0):
                raise InputError(f"{name}: lengthscale must be a positive number or a 1-D "
                                 f"array of positive numbers, got {lengthscale!r}")
            self.log_lengthscale = jnp.log(jnp.asarray(ls))
        var = float(variance)
        if not (math.isfinite(var) and var > 0):
            raise InputError(f"{name}: variance must be a positive number, got {variance!r}")
        self.log_variance = jnp.asarray(math.log(var))
        if active_dims is not None:
            active_dims = tuple(int(i) for i in active_dims)
            if not active_dims or min(active_dims) < 0:
                raise InputError(f"{name}: active_dims must be non-negative column indices, "
                                 f"got {active_dims!r}")
        self.active_dims = active_dims
        self.ard = bool(ard)

    @property
    def lengthscale(self):
        """Lengthscales (one per active input with ARD)."""
        return None if self.log_lengthscale is None else jnp.exp(self.log_lengthscale)

    @property
    def variance(self):
        """Signal variance."""
        return jnp.exp(self.log_variance)

    @abc.abstractmethod
    def _profile(self, r2):
        """``k / variance`` as a function of the squared scaled distance."""

    def _scaled(self, x):
        if self.log_lengthscale is None:
            raise InputError(f"{type(self).__name__} has no lengthscale yet: give one, or "
                             "fit a GaussianProcess, which sets it from the data")
        return _columns(x, self.active_dims) / jnp.exp(self.log_lengthscale)

    def __call__(self, x1, x2):
        a, b = self._scaled(x1), self._scaled(x2)
        # differences, not |a|^2 + |b|^2 - 2ab: exact zeros on the diagonal, no cancellation
        r2 = jnp.sum((a[:, None, :] - b[None, :, :]) ** 2, axis=-1)
        return jnp.exp(self.log_variance) * self._profile(r2)

    def diag(self, x):
        return jnp.full(x.shape[0], jnp.exp(self.log_variance), dtype=x.dtype)

    def initialise(self, x):
        x = np.asarray(x)
        cols = x if self.active_dims is None else x[:, list(self.active_dims)]
        if self.active_dims is not None and max(self.active_dims) >= x.shape[1]:
            raise InputError(f"{type(self).__name__}: active_dims {self.active_dims} refer "
                             f"to columns beyond the {x.shape[1]} input columns")
        d = cols.shape[1]
        size = d if self.ard else 1
        if self.log_lengthscale is None:
            rng = np.ptp(cols, axis=0) if cols.shape[0] > 1 else np.ones(d)
            rng = np.where(rng > 0, rng, 1.0)
            ls = 0.5 * (rng if self.ard else np.array([np.mean(rng)]))
            new = jnp.log(jnp.asarray(ls))
        else:
            new = jnp.ravel(self.log_lengthscale)
            if new.size == 1:
                new = jnp.full(size, new[0])
            elif new.size != size:
                raise InputError(f"{type(self).__name__}: {new.size} lengthscales given for "
                                 f"{size} input dimension(s); give one per active input")
        return eqx.tree_at(lambda k: k.log_lengthscale, self, new,
                           is_leaf=lambda v: v is None)

    def log_prior(self, x_range, y_var, lengthscale_sd=None):
        rng = _columns(x_range[None, :], self.active_dims)[0]
        rng = rng if self.ard else jnp.mean(rng, keepdims=True)
        sd = _PRIOR_SD_LENGTHSCALE if lengthscale_sd is None else lengthscale_sd
        lp = jnp.sum(_log_normal_pdf(self.log_lengthscale, jnp.log(0.5 * rng), sd))
        return lp + _log_normal_pdf(self.log_variance, jnp.log(y_var), _PRIOR_SD_VARIANCE)

    def _meta(self):
        return {"type": type(self).__name__, "active_dims": self.active_dims, "ard": self.ard}


def _safe_r(r2):
    # sqrt with a zero gradient at r = 0 (where the Matern kernels are smooth in x)
    return jnp.sqrt(jnp.maximum(r2, 1e-36))


class RBF(_Stationary):
    """Squared-exponential kernel ``s2 exp(-r^2 / 2)`` (Rasmussen & Williams 2006, eq. 4.9)."""

    def _profile(self, r2):
        return jnp.exp(-0.5 * r2)


class Matern32(_Stationary):
    """Matern 3/2 kernel ``s2 (1 + sqrt3 r) exp(-sqrt3 r)`` (R&W 2006, eq. 4.17)."""

    def _profile(self, r2):
        r = math.sqrt(3.0) * _safe_r(r2)
        return (1.0 + r) * jnp.exp(-r)


class Matern52(_Stationary):
    """Matern 5/2 kernel ``s2 (1 + sqrt5 r + 5 r^2 / 3) exp(-sqrt5 r)`` (R&W 2006, eq. 4.17)."""

    def _profile(self, r2):
        r = math.sqrt(5.0) * _safe_r(r2)
        return (1.0 + r + r * r / 3.0) * jnp.exp(-r)


class _Combination(AbstractKernel):
    k1: AbstractKernel
    k2: AbstractKernel

    def initialise(self, x):
        return type(self)(self.k1.initialise(x), self.k2.initialise(x))

    def log_prior(self, x_range, y_var, lengthscale_sd=None):
        return (self.k1.log_prior(x_range, y_var, lengthscale_sd)
                + self.k2.log_prior(x_range, y_var, lengthscale_sd))


class Sum(_Combination):
    """``k1(x, x') + k2(x, x')``."""

    def __call__(self, x1, x2):
        return self.k1(x1, x2) + self.k2(x1, x2)

    def diag(self, x):
        return self.k1.diag(x) + self.k2.diag(x)


class Product(_Combination):
    """``k1(x, x') * k2(x, x')``."""

    def __call__(self, x1, x2):
        return self.k1(x1, x2) * self.k2(x1, x2)

    def diag(self, x):
        return self.k1.diag(x) * self.k2.diag(x)


# ----- saving: kernel structure as JSON, hyperparameters as arrays ----------------------------
_KINDS = {"RBF": RBF, "Matern32": Matern32, "Matern52": Matern52, "Sum": Sum,
          "Product": Product}


def kernel_to_data(kernel: AbstractKernel, prefix: str = "kernel") -> tuple[dict, dict]:
    """``(meta, arrays)`` describing ``kernel``: its structure as JSON, its hyperparameters
    as arrays named after their position."""
    if isinstance(kernel, _Combination):
        m1, a1 = kernel_to_data(kernel.k1, prefix + ".0")
        m2, a2 = kernel_to_data(kernel.k2, prefix + ".1")
        return {"type": type(kernel).__name__, "terms": [m1, m2]}, {**a1, **a2}
    if isinstance(kernel, _Stationary):
        if kernel.log_lengthscale is None:
            raise SerializationError("cannot save a kernel without lengthscales; fit first")
        return kernel._meta(), {prefix + ".log_lengthscale": np.asarray(kernel.log_lengthscale),
                                prefix + ".log_variance": np.asarray(kernel.log_variance)}
    raise SerializationError(f"cannot save a kernel of type {type(kernel).__name__}")


def kernel_from_data(meta: dict, arrays: dict, prefix: str = "kernel") -> AbstractKernel:
    """Inverse of :func:`kernel_to_data`."""
    kind = meta.get("type")
    if kind not in _KINDS:
        raise SerializationError(f"unknown kernel type {kind!r}")
    cls = _KINDS[kind]
    if kind in ("Sum", "Product"):
        t1, t2 = meta["terms"]
        return cls(kernel_from_data(t1, arrays, prefix + ".0"),
                   kernel_from_data(t2, arrays, prefix + ".1"))
    dims = meta.get("active_dims")
    k = cls(active_dims=None if dims is None else tuple(dims), ard=meta["ard"])
    k = eqx.tree_at(lambda k: k.log_lengthscale, k,
                    jnp.asarray(arrays[prefix + ".log_lengthscale"]),
                    is_leaf=lambda v: v is None)
    return eqx.tree_at(lambda k: k.log_variance, k, jnp.asarray(arrays[prefix + ".log_variance"]))
