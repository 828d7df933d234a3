"""Multi-fidelity Gaussian processes: many cheap runs of a low-fidelity model and few
expensive ones of a high-fidelity model, fitted together.

- :class:`LinearMultiFidelityGP`: the auto-regressive model of Kennedy & O'Hagan (2000),
  ``f_t(x) = rho_t(x) f_{t-1}(x) + delta_t(x)``, in the recursive form of Le Gratiet &
  Garnier (2014): the levels are fitted one after the other, level ``t`` being a GP for
  ``delta_t`` whose mean ``rho_t(x) m_{t-1}(x) + b_t`` uses the posterior mean ``m_{t-1}`` of
  the level below at its own inputs, and whose noise includes ``rho_t(x)^2 v_{t-1}(x)`` (the
  posterior variance below; zero at nested points that the lower level interpolates).
  ``rho_t`` is a constant (``rho="constant"``) or linear in ``x`` (``rho="linear"``); its
  coefficients are learned with the GP hyperparameters by maximum likelihood. Prediction:
  mean ``rho m_{t-1} + m_delta``, variance ``rho^2 v_{t-1} + v_delta``.
- :class:`NonlinearMultiFidelityGP` (NARGP; Perdikaris et al. 2017, Proc. R. Soc. A 473:
  20160751): level ``t`` is a GP on ``[x, f_{t-1}(x)]`` with kernel
  ``k_rho(x) k_f(f_{t-1}) + k_delta(x)``, trained on the posterior mean of the level below
  at its inputs. Prediction propagates the uncertainty of the lower levels by Monte Carlo:
  ``n_samples`` draws of ``f_{t-1}(x)`` are pushed through level ``t`` (seeded, so the
  result is deterministic), and the mean and variance of the top level follow from the law
  of total variance.

Training sets may be nested or not; inputs of all levels share the same ``d`` columns.
``fit`` does all the hyperparameter optimisation (time it to time the training), ``predict``
is pure JAX.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputError
from .gp import GaussianProcess, _predict, check_xy
from .kernels import RBF, AbstractKernel, Matern32, Matern52, Product, Sum

__all__ = ["LinearMultiFidelityGP", "LinearMultiFidelityPosterior", "NonlinearMultiFidelityGP"]

_BASES = {"RBF": RBF, "Matern32": Matern32, "Matern52": Matern52}


def _check_levels(Xs, ys):
    if not isinstance(Xs, list | tuple) or not isinstance(ys, list | tuple):
        raise InputError("give the training data as lists, lowest fidelity first: "
                         "fit([X_low, ..., X_high], [y_low, ..., y_high])")
    if len(Xs) != len(ys):
        raise InputError(f"{len(Xs)} input arrays but {len(ys)} output arrays; give one "
                         "(X, y) pair per fidelity level")
    if len(Xs) < 2:
        raise InputError(f"a multi-fidelity GP needs at least 2 levels, got {len(Xs)}; use "
                         "GaussianProcess for one")
    data = [check_xy(x, y, name=f"[{t}]") for t, (x, y) in enumerate(zip(Xs, ys, strict=True))]
    d = data[0][0].shape[1]
    for t, (x, _) in enumerate(data):
        if x.shape[1] != d:
            raise InputError(f"X[{t}] has {x.shape[1]} columns but X[0] has {d}; all levels "
                             "need the same inputs")
    return data


def _kernel_class(kernel):
    if isinstance(kernel, type) and kernel.__name__ in _BASES and \
            issubclass(kernel, AbstractKernel):
        return kernel
    raise InputError("kernel must be one of the kernel classes RBF, Matern32, Matern52 "
                     f"(the class, not an instance), got {kernel!r}")


class _MultiFidelityBase:
    """Shared estimator plumbing: settings, validation, level GPs, saving."""


    def _gp(self, kernel):
        return GaussianProcess(kernel, noise=self.noise, normalize_x=self.normalize_x,
                               normalize_y=self.normalize_y, restarts=self.restarts,
                               seed=self.seed, max_steps=self.max_steps)

    def _check_fitted(self):
        if not hasattr(self, "levels_"):
            raise InputError(f"this {type(self).__name__} is not fitted yet; call "
                             "fit([X_low, ..., X_high], [y_low, ..., y_high]) first")

    def _level(self, level) -> int:
        self._check_fitted()
        n = len(self.levels_)
        if not isinstance(level, int | np.integer) or not -n <= level < n:
            raise InputError(f"level must be an integer in [{-n}, {n - 1}], got {level!r}")
        return int(level) % n

    def _x(self, X):
        self._check_fitted()
        return self.levels_[0]._x(X)

    @property
    def n_levels_(self) -> int:
        self._check_fitted()
        return len(self.levels_)

    def to_dict(self) -> dict:
        """The settings and every level's GP (arrays under ``arrays``); what
        :func:`scalebridge.save` stores."""
        self._check_fitted()
        arrays, levels = {}, []
        for t, gp in enumerate(self.levels_):
            meta, arr = gp._to_data(f"level{t}.")
            levels.append(meta)
            arrays.update(arr)
        arrays.update(self._extra_arrays())
        return {"settings": self._settings(), "levels": levels, "arrays": arrays}

    @classmethod
    def from_dict(cls, d):
        arrays = d["arrays"]
        model = cls(**cls._decode_settings(d["settings"]))
        model.levels_ = [GaussianProcess._from_data(m, arrays, f"level{t}.")
                         for t, m in enumerate(d["levels"])]
        model._load_extra(arrays)
        return model

    def to_pandas(self):
        """The training data of all levels: inputs ``x0 ..``, output ``y`` and ``level``."""
        import pandas as pd

        self._check_fitted()
        d = np.asarray(self.levels_[0].X_train_).shape[1]
        frames = []
        for t, gp in enumerate(self.levels_):
            f = gp.to_pandas()  # a NARGP's upper levels also see the lower prediction: dropped
            f = f[[*f.columns[:d], "y"]].copy()
            f["level"] = t
            frames.append(f)
        return pd.concat(frames, ignore_index=True)

    def plot(self, ax=None, *, dim: int = 0, n_points: int = 200):
        """Each level's predictive mean (the top one with its 95% band) along input ``dim``
        (other inputs at the mean of the lowest level's training inputs), with the training
        points, into ``ax`` (a new figure if None); returns the axes."""
        self._check_fitted()
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(5.5, 3.5))
        X = np.asarray(self.levels_[0].X_train_)
        lo = min(float(np.min(np.asarray(g.X_train_)[:, dim])) for g in self.levels_)
        hi = max(float(np.max(np.asarray(g.X_train_)[:, dim])) for g in self.levels_)
        grid = np.linspace(lo, hi, n_points)
        Z = np.tile(X.mean(axis=0), (n_points, 1))
        Z[:, dim] = grid
        for t, gp in enumerate(self.levels_):
            m, v = (np.asarray(a) for a in self.predict(Z, level=t))
            top = t == len(self.levels_) - 1
            if top:
                sd = np.sqrt(np.maximum(v, 0.0))
                ax.fill_between(grid, m - 1.96 * sd, m + 1.96 * sd, color=f"C{t}", alpha=0.2)
            ax.plot(grid, m, color=f"C{t}", lw=1.5 if top else 1.0, label=f"level {t}")
            ax.plot(np.asarray(gp.X_train_)[:, dim], np.asarray(gp.y_train_), ".",
                    color=f"C{t}", ms=4)
        ax.set_xlabel(f"x{dim}")
        ax.legend(fontsize=8)
        return ax

    def _extra_arrays(self) -> dict:
        return {}

    def _load_extra(self, arrays):
        pass


class LinearMultiFidelityGP(_MultiFidelityBase):
    """Linear auto-regressive multi-fidelity GP (Kennedy & O'Hagan 2000), fitted level by
    level (Le Gratiet & Garnier 2014).

    Parameters
    ----------
    kernel : kernel class for every level (ARD): ``RBF``, ``Matern32`` or ``Matern52``.
    rho : ``"constant"`` or ``"linear"`` (``rho_t(x) = w_0 + w . x``, x in the unit box).
    noise, normalize_x, normalize_y, restarts, seed, max_steps : as in
        :class:`~scalebridge.surrogate.gp.GaussianProcess`, for each level (9 random starts
        by default: on the 3-level Branin, 5 starts per level found a worse local optimum
        for one of six seeds).
    """


    def __init__(self, kernel=RBF, *, rho: str = "constant", noise: float | None = None,
                 normalize_x: bool = True, normalize_y: bool = True, restarts: int = 9,
                 seed: int = 0, max_steps: int = 200):
        self.kernel = kernel
        self.rho = rho
        self.noise = noise
        self.normalize_x = normalize_x
        self.normalize_y = normalize_y
        self.restarts = restarts
        self.seed = seed
        self.max_steps = max_steps

    def _settings(self):
        return {"kernel": self.kernel.__name__, "rho": self.rho, "noise": self.noise,
                "normalize_x": self.normalize_x, "normalize_y": self.normalize_y,
                "restarts": self.restarts, "seed": self.seed, "max_steps": self.max_steps}

    @staticmethod
    def _decode_settings(s):
        return {**s, "kernel": _BASES[s["kernel"]]}

    def _basis(self, x):
        return _rho_basis(x, self.x_lo_, self.x_span_, self.rho == "linear")

    def fit(self, Xs, ys) -> LinearMultiFidelityGP:
        """Fit levels ``0..T-1`` (lowest fidelity first) to ``Xs[t]`` (n_t, d), ``ys[t]``."""
        cls = _kernel_class(self.kernel)
        if self.rho not in ("constant", "linear"):
            raise InputError(f"rho must be 'constant' or 'linear', got {self.rho!r}")
        data = _check_levels(Xs, ys)
        allx = np.vstack([x for x, _ in data])
        self.x_lo_ = jnp.asarray(allx.min(axis=0))
        span = np.ptp(allx, axis=0)
        self.x_span_ = jnp.asarray(np.where(span > 0, span, 1.0))
        self.levels_ = [self._gp(cls()).fit(*data[0])]
        for x, y in data[1:]:
            m, v = self._predict_level(jnp.asarray(x), len(self.levels_) - 1)
            m, v = np.asarray(m), np.asarray(v)
            scale = float(np.std(y)) if self.normalize_y else 1.0
            scale = scale if scale > 0 else 1.0
            basis = np.asarray(self._basis(jnp.asarray(x)))
            h = np.hstack([basis * (m / scale)[:, None], np.ones((len(y), 1))])
            hvar = np.hstack([basis * (np.sqrt(v) / scale)[:, None], np.zeros((len(y), 1))])
            z = (y - (np.mean(y) if self.normalize_y else 0.0)) / scale
            beta0 = np.linalg.lstsq(h, z, rcond=None)[0]
            gp = self._gp(cls())
            self.levels_.append(gp._fit_arrays(x, y, h=h, hvar=hvar, beta0=beta0))
        return self

    @property
    def rho_(self) -> list[np.ndarray]:
        """Per level above the first, the coefficients of ``rho_t`` (``[w_0]`` or
        ``[w_0, w_1..w_d]`` on the unit box of all training inputs)."""
        self._check_fitted()
        return [np.asarray(gp.posterior_.beta[:-1]) for gp in self.levels_[1:]]

    @property
    def posterior_(self) -> LinearMultiFidelityPosterior:
        """The fitted state of all levels: a pytree, so a jitted function can take it as an
        argument (no recompilation after a refit within the same padding bucket)."""
        self._check_fitted()
        return LinearMultiFidelityPosterior(
            tuple(gp.posterior_ for gp in self.levels_), self.x_lo_, self.x_span_,
            self.rho == "linear")

    def _predict_level(self, x, level):
        return _linear_mf_predict(self.posterior_, x, level)

    def predict(self, X, level: int = -1):
        """Predictive mean and variance ``(m,)`` of fidelity ``level`` (default: the
        highest) at ``X`` (m, d). Pure JAX."""
        return self._predict_level(self._x(X), self._level(level))

    def correlation(self, X, level: int):
        """Mean ``(m,)`` and variance ``(m,)`` of the top level at ``X`` and the posterior
        correlation ``(m,)`` between fidelity ``level`` and the top level there (what the
        augmented expected improvement of Huang et al. 2006 needs); see
        :meth:`LinearMultiFidelityPosterior.correlation`. Pure JAX."""
        return self.posterior_.correlation(self._x(X), self._level(level))

    def _extra_arrays(self):
        return {"x_lo": np.asarray(self.x_lo_), "x_span": np.asarray(self.x_span_)}

    def _load_extra(self, arrays):
        self.x_lo_, self.x_span_ = jnp.asarray(arrays["x_lo"]), jnp.asarray(arrays["x_span"])


def _rho_basis(x, x_lo, x_span, linear: bool):
    ones = jnp.ones((x.shape[0], 1), dtype=x.dtype)
    return jnp.concatenate([ones, (x - x_lo) / x_span], axis=1) if linear else ones


class LinearMultiFidelityPosterior(eqx.Module):
    """The fitted state of a :class:`LinearMultiFidelityGP` (the posteriors of its levels
    and the map of ``rho_t(x)``); a pytree."""

    levels: tuple
    x_lo: jnp.ndarray
    x_span: jnp.ndarray
    linear_rho: bool = eqx.field(static=True)

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    def _steps(self, x, level: int):
        """Mean, variance and ``rho_t(x)`` of every level up to ``level``."""
        m, v = self.levels[0].predict(x)
        out = [(m, v, None)]
        basis = _rho_basis(x, self.x_lo, self.x_span, self.linear_rho)
        for post in self.levels[1:level + 1]:
            h = jnp.concatenate([basis * (m / post.y_scale)[:, None],
                                 jnp.ones((x.shape[0], 1), dtype=x.dtype)], axis=1)
            md, vd = post.predict(x, h=h)
            rho = basis @ post.beta[:-1]
            m, v = md, vd + rho**2 * v
            out.append((m, v, rho))
        return out

    def predict(self, x, level: int = -1):
        """Mean and variance of fidelity ``level`` at ``x`` (m, d) (in input units)."""
        return self._steps(x, level % self.n_levels)[-1][:2]

    def correlation(self, x, level: int):
        """Top-level mean and variance at ``x`` and its correlation with fidelity ``level``.

        In the recursive model ``f_T = rho_T f_{T-1} + delta_T`` the posterior of each
        ``delta_t`` is treated as independent of the levels below (the approximation behind
        the predictive variance ``rho_t^2 v_{t-1} + v_delta``; Le Gratiet & Garnier 2014), so
        ``cov(f_l, f_T) = prod_{t>l} rho_t(x) v_l(x)`` and the correlation is
        ``prod_{t>l} rho_t(x) sqrt(v_l(x) / v_T(x))``, clipped to [-1, 1]."""
        level = level % self.n_levels
        steps = self._steps(x, self.n_levels - 1)
        m_top, v_top, _ = steps[-1]
        gain = jnp.ones_like(m_top)
        for _, _, rho in steps[level + 1:]:
            gain = gain * rho
        v_l = steps[level][1]
        tiny = jnp.finfo(x.dtype).tiny
        corr = gain * jnp.sqrt(jnp.maximum(v_l, tiny) / jnp.maximum(v_top, tiny))
        return m_top, v_top, jnp.clip(corr, -1.0, 1.0)


@eqx.filter_jit
def _linear_mf_predict(post: LinearMultiFidelityPosterior, x, level: int):
    return post.predict(x, level)


class NonlinearMultiFidelityGP(_MultiFidelityBase):
    """Nonlinear auto-regressive multi-fidelity GP, NARGP (Perdikaris et al. 2017).

    Parameters
    ----------
    kernel : kernel class (``RBF``, the paper's choice, ``Matern32`` or ``Matern52``) used
        for level 0 and for ``k_rho``, ``k_f`` and ``k_delta`` above it.
    n_samples : Monte Carlo samples per level for prediction.
    noise, normalize_x, normalize_y, restarts, seed, max_steps : as in
        :class:`~scalebridge.surrogate.gp.GaussianProcess`, for each level (9 random starts
        by default, see :class:`LinearMultiFidelityGP`); ``seed`` also seeds the Monte
        Carlo propagation.
    """


    def __init__(self, kernel=RBF, *, n_samples: int = 100, noise: float | None = None,
                 normalize_x: bool = True, normalize_y: bool = True, restarts: int = 9,
                 seed: int = 0, max_steps: int = 200):
        self.kernel = kernel
        self.n_samples = n_samples
        self.noise = noise
        self.normalize_x = normalize_x
        self.normalize_y = normalize_y
        self.restarts = restarts
        self.seed = seed
        self.max_steps = max_steps

    def _settings(self):
        return {"kernel": self.kernel.__name__, "n_samples": self.n_samples,
                "noise": self.noise, "normalize_x": self.normalize_x,
                "normalize_y": self.normalize_y, "restarts": self.restarts, "seed": self.seed,
                "max_steps": self.max_steps}

    @staticmethod
    def _decode_settings(s):
        return {**s, "kernel": _BASES[s["kernel"]]}

    @staticmethod
    def _level_kernel(cls, d) -> AbstractKernel:
        xs, f = tuple(range(d)), (d,)
        return Sum(Product(cls(active_dims=xs), cls(active_dims=f)), cls(active_dims=xs))

    def fit(self, Xs, ys) -> NonlinearMultiFidelityGP:
        """Fit levels ``0..T-1`` (lowest fidelity first) to ``Xs[t]`` (n_t, d), ``ys[t]``."""
        cls = _kernel_class(self.kernel)
        if int(self.n_samples) != self.n_samples or self.n_samples < 1:
            raise InputError(f"n_samples must be an integer >= 1, got {self.n_samples!r}")
        data = _check_levels(Xs, ys)
        d = data[0][0].shape[1]
        self.levels_ = [self._gp(cls()).fit(*data[0])]
        for x, y in data[1:]:
            m = np.asarray(self._plugin_mean(jnp.asarray(x), len(self.levels_) - 1))
            z = np.hstack([x, m[:, None]])
            self.levels_.append(self._gp(self._level_kernel(cls, d)).fit(z, y))
        return self

    def _plugin_mean(self, x, level):
        """Mean of level ``level`` with the lower levels replaced by their means."""
        m = _predict(self.levels_[0].posterior_, x, None, False, False)[0]
        for gp in self.levels_[1:level + 1]:
            m = _predict(gp.posterior_, jnp.concatenate([x, m[:, None]], axis=1), None,
                         False, False)[0]
        return m

    def predict(self, X, level: int = -1):
        """Predictive mean and variance ``(m,)`` of fidelity ``level`` (default: the
        highest) at ``X`` (m, d), by Monte Carlo through the levels below. Pure JAX."""
        x, level = self._x(X), self._level(level)
        posts = tuple(gp.posterior_ for gp in self.levels_[:level + 1])
        return _nargp_predict(posts, x, jax.random.key(int(self.seed)), int(self.n_samples))


@eqx.filter_jit
def _nargp_predict(posts, x, key, n_samples: int):
    m, v = posts[0].predict(x)
    if len(posts) == 1:
        return m, v
    keys = jax.random.split(key, len(posts) - 1)
    f = m + jnp.sqrt(v) * jax.random.normal(keys[0], (n_samples, x.shape[0]), dtype=x.dtype)
    for t, post in enumerate(posts[1:], start=1):
        ms, vs = jax.vmap(lambda fs, post=post: post.predict(
            jnp.concatenate([x, fs[:, None]], axis=1)))(f)
        if t < len(posts) - 1:
            f = ms + jnp.sqrt(vs) * jax.random.normal(keys[t], ms.shape, dtype=x.dtype)
    return jnp.mean(ms, axis=0), jnp.mean(vs, axis=0) + jnp.var(ms, axis=0)
