"""Morris elementary effects screening.

References: Morris (1991) Technometrics 33:161 (one-at-a-time trajectories on a p-level
grid, mu and sigma); Campolongo, Cariboni, Saltelli (2007) Environ. Model. Softw. 22:1509
(mu*, the mean absolute elementary effect).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from ..errors import InputError, SimulationError
from . import _result
from ._evaluate import evaluate, evaluations_file, warn_nonfinite
from .distributions import as_distributions, transform
from .sobol import _check_int

__all__ = ["morris", "MorrisResult", "morris_design"]


@dataclass(frozen=True, eq=False)
class MorrisResult:
    """Morris statistics per parameter: ``mu`` (mean elementary effect), ``mu_star`` (mean
    absolute effect), ``sigma`` (standard deviation of the effects) and ``mu_star_conf``
    (half-width of a bootstrap confidence interval over trajectories, normal approximation;
    NaN without bootstrap). Elementary effects are per unit of the normalised input: the
    change of the output when an input moves through its whole range (its quantile from 0
    to 1), as in SALib."""

    names: tuple[str, ...]
    mu: np.ndarray
    mu_star: np.ndarray
    sigma: np.ndarray
    mu_star_conf: np.ndarray
    trajectories: int
    levels: int
    n_evaluations: int
    n_nonfinite: int
    confidence: float
    n_bootstrap: int
    seed: int
    distributions: tuple[str, ...] = field(default=())
    output: str = "f"

    def to_pandas(self):
        """A pandas DataFrame: one row per parameter; mu, mu_star, mu_star_conf, sigma."""
        import pandas as pd

        return pd.DataFrame({"mu": self.mu, "mu_star": self.mu_star,
                             "mu_star_conf": self.mu_star_conf, "sigma": self.sigma},
                            index=pd.Index(list(self.names), name="parameter"))

    def plot(self, ax=None, *, title: str | None = None):
        """Bar chart of mu* (with its confidence interval) and sigma into ``ax`` (a new
        figure if None); returns the axes."""
        return _result.bar_chart(
            ax, self.names,
            [("mu*", self.mu_star, self.mu_star_conf), ("sigma", self.sigma, None)],
            title or f"Morris screening of {self.output} (r={self.trajectories}, "
                     f"p={self.levels})", "elementary effect")

    def to_dict(self) -> dict:
        return {
            "kind": "morris", "format_version": _result.FORMAT_VERSION, "output": self.output,
            "names": list(self.names), "distributions": list(self.distributions),
            "mu": self.mu, "mu_star": self.mu_star, "mu_star_conf": self.mu_star_conf,
            "sigma": self.sigma, "trajectories": self.trajectories, "levels": self.levels,
            "n_evaluations": self.n_evaluations, "n_nonfinite": self.n_nonfinite,
            "confidence": self.confidence, "n_bootstrap": self.n_bootstrap, "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, d) -> MorrisResult:
        """The result of :meth:`to_dict` (arrays as arrays or JSON lists)."""
        d = _result.check_kind(d, "morris", "Morris")
        arr = _result.array
        return cls(names=tuple(d["names"]), mu=arr(d["mu"]), mu_star=arr(d["mu_star"]),
                   sigma=arr(d["sigma"]), mu_star_conf=arr(d["mu_star_conf"]),
                   trajectories=d["trajectories"], levels=d["levels"],
                   n_evaluations=d["n_evaluations"], n_nonfinite=d["n_nonfinite"],
                   confidence=d["confidence"], n_bootstrap=d["n_bootstrap"], seed=d["seed"],
                   distributions=tuple(d["distributions"]), output=d["output"])

    def __repr__(self):
        return (f"MorrisResult(output={self.output!r}, trajectories={self.trajectories}, "
                f"levels={self.levels})\n"
                f"{self.to_pandas().to_string(float_format=lambda v: f'{v:.4g}')}")


def morris_design(d: int, trajectories: int, levels: int = 4, *, seed: int = 0):
    """Unit-hypercube Morris trajectories: ``(r, d + 1, d)`` points, the factor moved at
    each step ``(r, d)`` and the signed step ``(r, d)``.

    Each trajectory starts at a random point of the grid ``{0, 1/(p-1), ..., 1}`` and moves
    every factor once, in random order, by ``delta = p / (2 (p - 1))``: up from the lower
    half of the grid, down from the upper half (Morris 1991), so each level is visited
    equally often.
    """
    rng = np.random.default_rng(seed)
    p = levels
    delta = p / (2.0 * (p - 1))
    start = rng.integers(0, p, size=(trajectories, d))
    step = np.where(start < p // 2, delta, -delta)
    order = np.argsort(rng.random((trajectories, d)), axis=1)
    x = np.empty((trajectories, d + 1, d))
    x[:, 0] = start / (p - 1)
    rows = np.arange(trajectories)
    for k in range(d):
        x[:, k + 1] = x[:, k]
        i = order[:, k]
        x[rows, k + 1, i] += step[rows, i]
    x = np.clip(x, 0.0, 1.0)  # rounding only
    return x, order, np.take_along_axis(step, order, axis=1)


def morris(
    f,
    bounds,
    *,
    trajectories: int = 50,
    levels: int = 4,
    seed: int = 0,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    executor=None,
    batch_size: int | None = None,
    names=None,
    jax: bool | None = None,
    max_nonfinite: float = 0.1,
    progress=None,
    out=None,
    restart: bool = False,
) -> MorrisResult:
    """Morris elementary-effects screening of a scalar output ``f``.

    ``f``, ``bounds``, ``names``, ``jax``, ``executor``, ``batch_size``: as in
    :func:`~scalebridge.sensitivity.sobol` (inputs must be bounded: use ``TruncNormal``
    for a normal input). ``trajectories`` (r) one-at-a-time paths on a ``levels``-point
    grid (p, even) cost ``r (d + 1)`` evaluations (Morris 1991). Reports mu, mu*
    (Campolongo et al. 2007) and sigma; ``mu_star_conf`` from ``n_bootstrap`` resamples of
    the trajectories. An elementary effect touching a non-finite output is left out (with a
    warning); more than ``max_nonfinite`` of a parameter's effects lost raises
    :class:`~scalebridge.errors.SimulationError`. ``out``, ``restart`` and ``progress``: as in
    :func:`~scalebridge.sensitivity.sobol` (resumable runs).
    """
    dists, names = as_distributions(bounds, names)
    d = len(dists)
    r = _check_int(trajectories, "trajectories")
    p = _check_int(levels, "levels")
    seed = _check_int(seed, "seed")
    n_bootstrap = _check_int(n_bootstrap, "n_bootstrap")
    if r < 2:
        raise InputError(f"trajectories={r} is too small; use at least 2 (10 to 50 is usual)")
    if p < 2 or p % 2:
        raise InputError(f"levels must be an even number >= 2 (4 is usual), got {p}")
    if n_bootstrap < 0:
        raise InputError(f"n_bootstrap must be >= 0 (0: no confidence intervals), got "
                         f"{n_bootstrap}")
    if not 0 < float(confidence) < 1:
        raise InputError(f"confidence must be in (0, 1), e.g. 0.95, got {confidence}")
    unbounded = [nm for nm, dist in zip(names, dists, strict=True) if not dist.bounded]
    if unbounded:
        raise InputError(f"Morris screening needs bounded inputs; {', '.join(unbounded)} "
                         "are unbounded: use TruncNormal(mean, sd, low, high)")
    if jax is not None and not isinstance(jax, bool):
        raise InputError(f"jax must be True, False or None (detect), got {jax!r}")
    u, order, step = morris_design(d, r, p, seed=seed)
    x = transform(dists, u.reshape(-1, d))
    ckpt = evaluations_file(out, "morris", f, dict(
        trajectories=r, levels=p, seed=seed, bounds=[repr(v) for v in dists],
        names=list(names)), restart)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        y = evaluate(f, x, jax_mode=jax, executor=executor, batch_size=batch_size,
                     progress=progress, checkpoint=ckpt).reshape(r, d + 1)
    n_nonfinite = int(np.sum(~np.isfinite(y)))
    with np.errstate(invalid="ignore"):
        ee_step = (y[:, 1:] - y[:, :-1]) / step  # (r, d) in the order of the steps
    ee = np.empty((r, d))
    np.put_along_axis(ee, order, ee_step, axis=1)
    ok = np.isfinite(ee)
    lost = 1.0 - ok.mean(axis=0)
    if np.any(lost > max_nonfinite) or np.any(ok.sum(axis=0) < 2):
        worst = names[int(np.argmax(lost))]
        raise SimulationError(
            f"f gave NaN or infinite outputs at {n_nonfinite} of {y.size} points, which spoils "
            f"{lost.max():.0%} of the elementary effects of {worst} (more than "
            f"max_nonfinite={max_nonfinite:g}); narrow the bounds, fix the model, or raise "
            "max_nonfinite")
    if n_nonfinite:
        warn_nonfinite(n_nonfinite, y.size,
                       f"left out {int(np.sum(~ok))} of {ee.size} elementary effects")
    mu = np.nanmean(ee, axis=0)
    mu_star = np.nanmean(np.abs(ee), axis=0)
    sigma = np.nanstd(ee, axis=0, ddof=1)
    conf = np.full(d, np.nan)
    if n_bootstrap:
        rng = np.random.default_rng([seed, 0x3025])
        a = np.where(ok, np.abs(ee), 0.0)
        w = rng.multinomial(r, np.full(r, 1.0 / r), size=n_bootstrap).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            boot = (w @ a) / (w @ ok)
        z = float(special.ndtri(0.5 + float(confidence) / 2))
        conf = z * np.nanstd(boot, axis=0, ddof=1)
    return MorrisResult(
        names=names, mu=mu, mu_star=mu_star, sigma=sigma, mu_star_conf=conf, trajectories=r,
        levels=p, n_evaluations=int(y.size), n_nonfinite=n_nonfinite,
        confidence=float(confidence), n_bootstrap=n_bootstrap, seed=seed,
        distributions=tuple(dd.describe() for dd in dists),
        output=str(getattr(f, "spec", getattr(f, "__name__", "f"))))


