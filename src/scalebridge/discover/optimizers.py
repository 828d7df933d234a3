"""Sparse regression ``Y ~ Theta Xi^T`` for SINDy, compiled with JAX.

Both optimisers work on the Gram matrix ``Theta^T W Theta`` with the columns scaled to unit
norm (which leaves the answer unchanged and the linear systems well conditioned), so a
whole threshold path, every target and every ensemble member are one ``vmap``.

- :class:`STLSQ`: sequentially thresholded (ridge) least squares, Brunton, Proctor & Kutz
  (2016) PNAS 113:3932-3937.
- :class:`SR3`: sparse relaxed regularised regression, Zheng et al. (2019) IEEE Access
  7:1404-1423; Champion et al. (2020) IEEE Access 8:169259.

``threshold=None`` (the default) chooses the threshold of each equation by the corrected
Akaike information criterion over a path of thresholds (Mangan et al. 2017, Proc R Soc A
473:20170009).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputError

N_PATH = 48  # thresholds on the model-selection path


def _check_positive(name: str, value, allow_none: bool = False, zero: bool = False):
    if value is None and allow_none:
        return
    ok = isinstance(value, int | float | np.floating | np.integer) and np.isfinite(value) and (
        value >= 0 if zero else value > 0)
    if not ok:
        raise InputError(f"{name} must be a {'non-negative' if zero else 'positive'} number"
                         f"{' or None' if allow_none else ''}, got {value!r}")


def _scaled_system(Theta, Y, w):
    """Column-scaled weighted normal equations: ``(G, B, scale)``."""
    Tw = Theta * w[:, None]
    G = Theta.T @ Tw
    B = Tw.T @ Y  # (p, m)
    s = jnp.sqrt(jnp.maximum(jnp.diag(G), 1e-300))
    return G / jnp.outer(s, s), B / s[:, None], s


def _masked_solve(G, b, mask, ridge):
    """Solve ``(G + diag(ridge)) x = b`` on the support ``mask`` (zeros elsewhere)."""
    m = mask.astype(G.dtype)
    A = G * jnp.outer(m, m) + jnp.diag(ridge * m + (1.0 - m))
    return jnp.linalg.solve(A, b * m) * m


class Optimizer(ABC):
    """Base class. Subclasses implement ``_one(G, b, s, threshold, mask0, n) -> xi`` for
    one target in the scaled system (``xi`` in original units; ``s``: column norms, ``n``:
    the total row weight)."""

    threshold: float | None
    unbias: bool

    @abstractmethod
    def _validate(self):
        """Check the settings; raise InputError naming the bad one."""

    @abstractmethod
    def _one(self, G, b, s, threshold, mask0, n):
        """Coefficients of one target (see the class docstring)."""

    def _unbias(self, G, b, s, xi):
        mask = xi != 0
        if not self.unbias:
            return xi
        sol = _masked_solve(G, b, mask, 1e-12)
        return jnp.where(mask, sol / s, 0.0)

    def _path(self, Theta, Y, w, thresholds, mask0):
        """Coefficients for every threshold: ``thresholds`` ``(L, m)`` -> ``(L, m, p)``."""
        G, B, s = _scaled_system(Theta, Y, w)
        n = jnp.sum(w)

        def one_target(b, th, m0):
            return self._unbias(G, b, s, self._one(G, b, s, th, m0, n))

        per_threshold = jax.vmap(one_target, in_axes=(1, 0, 0))  # over targets
        return jax.vmap(per_threshold, in_axes=(None, 0, None))(B, thresholds, mask0)

    def _key(self):
        """Settings that shape the compiled code (a threshold's value does not: it is
        passed as an array)."""
        d = dict(vars(self))
        d["threshold"] = d.get("threshold") is None
        return type(self).__name__, tuple(sorted(d.items()))

    def __eq__(self, other):  # equal settings share compiled code
        return type(self) is type(other) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def units(self, s, n):
        """Scale from coefficients to the units ``threshold`` applies to (``s``: the
        column norms)."""
        return jnp.ones_like(s)

    def initial(self, Theta, Y, w, mask0):
        """The ridge solution on the full support, ``(m, p)`` (sets the threshold path)."""
        G, B, s = _scaled_system(Theta, Y, w)
        ridge = getattr(self, "alpha", 0.0) / s ** 2 + 1e-12
        return jax.vmap(lambda b, m0: _masked_solve(G, b, m0, ridge) / s,
                        in_axes=(1, 0))(B, mask0)


class STLSQ(Optimizer):
    """Sequentially thresholded least squares: fit by ridge regression (``alpha``), zero
    the coefficients smaller than ``threshold``, refit on the rest, repeat (``max_iter``);
    ``unbias`` refits the final support without the ridge term.

    ``normalize_columns=True`` thresholds the coefficients of unit-norm library columns
    (scale-free); otherwise the coefficients themselves, as in PySINDy.
    """

    def __init__(self, threshold: float | None = None, *, alpha: float = 0.05,
                 max_iter: int = 20, normalize_columns: bool = False, unbias: bool = True):
        self.threshold = threshold
        self.alpha = alpha
        self.max_iter = max_iter
        self.normalize_columns = normalize_columns
        self.unbias = unbias

    def _validate(self):
        _check_positive("STLSQ threshold", self.threshold, allow_none=True, zero=True)
        _check_positive("STLSQ alpha", self.alpha, zero=True)
        if not isinstance(self.max_iter, int) or self.max_iter < 1:
            raise InputError(f"STLSQ max_iter must be a positive integer, got {self.max_iter!r}")

    def units(self, s, n):
        return s if self.normalize_columns else jnp.ones_like(s)

    def _one(self, G, b, s, threshold, mask0, n):
        ridge = self.alpha / s ** 2 + 1e-12
        size = self.units(s, n)

        def step(_, mask):
            xi = _masked_solve(G, b, mask, ridge) / s
            return mask & (jnp.abs(xi) * size >= threshold)

        mask = jax.lax.fori_loop(0, self.max_iter, step, mask0)
        return jnp.where(mask, _masked_solve(G, b, mask, ridge) / s, 0.0)


class SR3(Optimizer):
    """Sparse relaxed regularised regression with an L0 (hard threshold) or L1 (soft)
    penalty: alternate ``v = argmin |y - Theta xi|^2 / (2 n) + |v - w|^2 / (2 nu)`` and
    ``w = prox(v)`` until ``w`` changes by less than ``tol`` (at most ``max_iter``), where
    ``v`` is ``xi`` times each column's RMS: a term's typical contribution to the target.
    The prox zeroes contributions below ``threshold`` (L0; L1 shrinks them by it), in the
    units of the target; ``nu`` sets how loosely ``v`` follows ``w`` relative to the
    unit-RMS columns (large: close to least squares).
    """

    def __init__(self, threshold: float | None = None, *, nu: float = 100.0,
                 regularizer: str = "l0", max_iter: int = 1000, tol: float = 1e-10,
                 unbias: bool = True):
        self.threshold = threshold
        self.nu = nu
        self.regularizer = regularizer
        self.max_iter = max_iter
        self.tol = tol
        self.unbias = unbias

    def _validate(self):
        _check_positive("SR3 threshold", self.threshold, allow_none=True, zero=True)
        _check_positive("SR3 nu", self.nu)
        if self.regularizer not in ("l0", "l1"):
            raise InputError(f"SR3 regularizer must be 'l0' or 'l1', got {self.regularizer!r}")

    def _one(self, G, b, s, threshold, mask0, n):
        # in the variables v = xi * column RMS, the objective is
        # |y - Theta xi|^2 / (2 n) = v^T G v / 2 - v^T b / sqrt(n) + const (G: unit diagonal)
        p = G.shape[0]
        nu = self.nu
        rms = s / jnp.sqrt(n)
        rhs0 = b * mask0 / jnp.sqrt(n)
        lhs = jnp.linalg.cholesky(G * jnp.outer(mask0, mask0) + jnp.eye(p) / nu)

        def prox(v):
            if self.regularizer == "l0":
                return jnp.where(jnp.abs(v) >= threshold, v, 0.0)
            return jnp.sign(v) * jnp.maximum(jnp.abs(v) - threshold, 0.0)

        def body(state):
            k, w, _ = state
            xi = jax.scipy.linalg.cho_solve((lhs, True), rhs0 + w / nu)
            w_new = prox(xi) * mask0
            return k + 1, w_new, jnp.max(jnp.abs(w_new - w))

        def cond(state):
            k, _, change = state
            return (k < self.max_iter) & (change > self.tol)

        _, w, _ = jax.lax.while_loop(cond, body, (0, jnp.zeros(p), jnp.inf))
        return w / rms

    def units(self, s, n):
        return s / jnp.sqrt(n)


def threshold_path(xi0, n: int = N_PATH):
    """Thresholds from just below the smallest to above the largest initial coefficient of
    each target, on a geometric grid (``(n, m)``), with 0 (no thresholding) first."""
    mags = jnp.abs(xi0)
    lo = jnp.min(jnp.where(mags > 0, mags, jnp.inf), axis=1) * 0.5
    hi = jnp.max(mags, axis=1) * 1.01
    lo = jnp.where(jnp.isfinite(lo), lo, 1e-12)
    frac = jnp.linspace(0.0, 1.0, n - 1)[:, None]
    grid = jnp.exp(jnp.log(lo) + frac * (jnp.log(jnp.maximum(hi, lo * 1.001)) - jnp.log(lo)))
    return jnp.concatenate([jnp.zeros((1, xi0.shape[0])), grid], axis=0)


def aicc(rss, k, n, floor=0.0, n_eff=None):
    """Corrected Akaike information criterion of a least-squares fit with ``k`` terms on
    ``n`` rows (Hurvich & Tsai 1989, Biometrika 76:297). ``floor``: an error variance the
    residual variance is not allowed to go below (derivative errors that are not noise, see
    :func:`~scalebridge.discover.derivatives.bias_floor`); ``n_eff``: the number of
    independent rows when rows are correlated (weak forms), ``n`` by default."""
    n_eff = n if n_eff is None else n_eff
    rss = jnp.maximum(jnp.maximum(rss, n * floor), 1e-300)
    denom = jnp.maximum(n_eff - k - 1, 1)
    return n_eff * jnp.log(rss / n) + 2 * k + 2 * k * (k + 1) / denom


__all__ = ["Optimizer", "STLSQ", "SR3", "aicc", "threshold_path"]
