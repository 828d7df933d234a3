"""Bayesian posteriors of a :class:`~scalebridge.infer.problem.Problem` with NUTS.

``sample(problem, n_chains=4, n_warmup=1000, n_samples=1000, seed=0)`` draws from

    p(x | data) ∝ exp(-nll(x)) · prior(x),    x in the box [lower, upper]

with the No-U-Turn Sampler (Hoffman & Gelman 2014, JMLR 15:1593; numpyro's
implementation with multinomial trajectory sampling and dual-averaging step size / windowed
mass-matrix adaptation during warmup). ``x`` is the vector of estimated parameters on their
scales (:attr:`Problem.parameter_ids`).

Priors (``prior=``):

- ``"petab"`` (default): a parameter's PEtab prior where it has one, uniform in its scaled
  bounds otherwise. A prior on the linear value (``normal``, ``logNormal``, ...) of a
  parameter estimated on log/log10 scale gets the Jacobian ``|d theta / d x|`` so that the
  posterior of the linear value is the one the prior specifies; ``parameterScale*`` priors
  are densities of ``x`` itself. Priors are truncated to the bounds;
- ``"uniform"``: uniform in the scaled bounds for every parameter (needs finite bounds).

The sampler works in the problem space's unconstrained coordinates ``u``
(:meth:`ParameterSpace.from_unconstrained <scalebridge.ParameterSpace.from_unconstrained>`:
``x = lower + (upper - lower) * sigmoid(u)`` for a finite box, ``lower + exp(u)`` / ``upper
- exp(u)`` for one finite bound, ``x = u`` for none) with the log-Jacobian added to the
potential, so no chain ever leaves the bounds. The potential is ``nll(x) - log prior(x) -
log|dx/du|``; its gradient comes from :attr:`Problem.nll_jax` (forward sensitivities through
the ODE solver). NUTS runs on ``v`` with ``u = u0 + L v``, where ``L L^T`` is the inverse
Hessian of the potential at the start point (central differences of the exact gradient;
variances capped at 1): a fixed affine preconditioner that makes the posterior near the
start roughly standard normal, so that warmup does not begin with the long trajectories of a
badly scaled space (parameters of ODE models differ in posterior width by orders of
magnitude); the mass matrix is then adapted as usual.

Chains run in one compiled program, in chunks of :data:`CHUNK` iterations:
``chain_method="sequential"`` (default) steps one chain after the other within each
iteration; ``"vectorized"`` batches the chains' steps with ``vmap``, so every iteration
costs the longest of the chains' trajectories, and the batched ODE solves step in lockstep.
On the Boehm problem (2 CPU cores) sequential was 3.3x faster per chain-iteration
(benchmarks/boehm_posterior.py); vectorized pays off only for cheap potentials.

With ``out=DIR`` (a run directory, :mod:`scalebridge.runtime.run`) the sampler state is
written after each chunk (``DIR/state-<iteration>.npz``, written before the record that
points at it, so a run killed at any moment resumes from its last chunk), and the finished
run is written as ``DIR/posterior.json`` (settings, diagnostics, summary, timings) and
``DIR/samples.npz`` (draws); a later call with the same problem content and settings
loads it, and a call after any change stops with an error naming it (``restart=True``
starts over).

Diagnostics (Vehtari, Gelman, Simpson, Carpenter & Bürkner 2021, Bayesian Analysis 16:667):
rank-normalised split R-hat (the larger of bulk and folded), bulk ESS (of rank-normalised
split chains) and tail ESS (of the 5% and 95% quantile indicators), computed with
:func:`numpyro.diagnostics.gelman_rubin` / :func:`~numpyro.diagnostics.effective_sample_size`
on the transformed draws; divergent transitions after warmup are counted per chain.

:meth:`PosteriorResult.predictive` simulates thinned posterior draws on a fine time grid per
condition and adds noise drawn from each observable's noise model (posterior predictive
bands, Gelman et al., Bayesian Data Analysis, 3rd ed., ch. 6).
"""

from __future__ import annotations

import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputError, ScalebridgeError, SerializationError, SimulationError
from ..runtime.files import read_json, write_atomic, write_json
from ..runtime.run import content_hash, open_run
from .problem import Problem
from .space import PRIOR_KINDS, ParameterSpace, scaled_to_linear

__all__ = ["sample", "PosteriorResult", "PredictiveResult", "rank_diagnostics", "CHUNK"]

CHUNK = 50  # iterations per compiled call (progress, checkpoint and resume granularity)
CHAIN_METHODS = ("vectorized", "sequential")
PRECONDITIONERS = ("hessian", "none")
FORMAT = "scalebridge-posterior"
FORMAT_VERSION = 1
RESULT_FILE = "posterior.json"
SAMPLES_FILE = "samples.npz"
STATE_FILES = "state-*.npz"  # state-<iteration>.npz: the checkpoint of a running chain
QUANTILES = (0.025, 0.5, 0.975)
_CACHE: OrderedDict = OrderedDict()  # (id(problem), config) -> (problem, compiled parts)
_CACHE_SIZE = 2


# ----- rank-normalised diagnostics ------------------------------------------------------------
def _ranks(a: np.ndarray) -> np.ndarray:
    """Average ranks (1-based) of all entries of ``a``."""
    flat = a.ravel()
    order = np.argsort(flat, kind="mergesort")
    r = np.empty(flat.size)
    r[order] = np.arange(1, flat.size + 1)
    _, inv, counts = np.unique(flat, return_inverse=True, return_counts=True)
    return (np.bincount(inv, weights=r) / counts)[inv].reshape(a.shape)


def _z_scale(a: np.ndarray) -> np.ndarray:
    from jax.scipy.special import ndtri

    return np.asarray(ndtri((_ranks(a) - 0.375) / (a.size + 0.25)))


def _split_chains(a: np.ndarray) -> np.ndarray:
    """(chains, draws) -> (2 chains, draws // 2): first and last halves."""
    n = a.shape[1] // 2
    return np.concatenate([a[:, :n], a[:, a.shape[1] - n:]], axis=0)


def rank_diagnostics(draws) -> dict:
    """Rank-normalised split R-hat, bulk and tail ESS (Vehtari et al. 2021) of ``draws``
    with shape (chains, draws) or (chains, draws, parameters); arrays per parameter."""
    from numpyro.diagnostics import effective_sample_size, gelman_rubin

    a = np.asarray(draws, float)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[1] < 4:
        raise InputError(f"draws must have shape (chains, draws >= 4[, parameters]), got "
                         f"{np.shape(draws)}")
    rhat, bulk, tail = [], [], []
    for k in range(a.shape[2]):
        s = a[:, :, k]
        if np.ptp(s) == 0:
            rhat.append(math.nan)
            bulk.append(math.nan)
            tail.append(math.nan)
            continue
        sp = _split_chains(s)
        r_bulk = float(gelman_rubin(_z_scale(sp)))
        r_fold = float(gelman_rubin(_z_scale(_split_chains(np.abs(s - np.median(s))))))
        rhat.append(max(r_bulk, r_fold))
        bulk.append(float(effective_sample_size(_z_scale(sp))))
        ess_q = []
        for q in (0.05, 0.95):
            ind = (sp <= np.quantile(s, q)).astype(float)
            ess_q.append(float(effective_sample_size(ind)) if np.ptp(ind) > 0 else math.nan)
        tail.append(min(ess_q))
    return {"rhat": np.asarray(rhat), "ess_bulk": np.asarray(bulk),
            "ess_tail": np.asarray(tail)}


# ----- results ---------------------------------------------------------------------------------
def _num(v):
    v = float(v)
    return v if math.isfinite(v) else None


def _write_npz(path: Path, arrays: dict) -> None:
    write_atomic(path, lambda fh: np.savez(fh, **arrays))


def _file_hash(path: Path) -> str:
    return content_hash(Path(path).read_bytes())


@dataclass
class PosteriorResult:
    """Posterior draws of :func:`sample` and their diagnostics.

    ``samples``: (chains, draws, parameters) on the parameters' scales (``samples_linear``:
    linear values); ``warmup``: the warmup draws, same layout; ``stats``: per-draw arrays
    (chains, draws) ``potential_energy`` (-log posterior density in the sampler's
    unconstrained space, up to a constant), ``diverging``, ``num_steps`` (leapfrog steps),
    ``accept_prob``; ``step_size``: adapted step size per chain; ``settings``: the
    arguments of the run; ``timings``: ``compile_s``, ``warmup_s``, ``sampling_s``.
    """

    parameter_ids: tuple
    scales: tuple
    lower: np.ndarray
    upper: np.ndarray
    samples: np.ndarray
    warmup: np.ndarray
    stats: dict
    step_size: np.ndarray
    settings: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    problem: str = ""
    _diag: dict | None = field(default=None, repr=False)

    # ----- shapes and views -----
    @property
    def n_chains(self) -> int:
        return int(self.samples.shape[0])

    @property
    def n_draws(self) -> int:
        return int(self.samples.shape[1])

    @property
    def samples_linear(self) -> np.ndarray:
        """Draws of the linear parameter values (chains, draws, parameters)."""
        return np.asarray(scaled_to_linear(self.samples, self.scales))

    def flat(self, linear: bool = False) -> np.ndarray:
        """All draws of all chains, (chains * draws, parameters)."""
        s = self.samples_linear if linear else self.samples
        return s.reshape(-1, s.shape[-1])

    # ----- diagnostics -----
    @property
    def diagnostics(self) -> dict:
        """``rhat``, ``ess_bulk``, ``ess_tail`` (arrays per parameter; Vehtari et al.
        2021), ``divergences`` (per chain, after warmup)."""
        if self._diag is None:
            d = rank_diagnostics(self.samples)
            d["divergences"] = np.asarray(self.stats["diverging"]).sum(axis=1).astype(int)
            self._diag = d
        return self._diag

    @property
    def rhat(self) -> np.ndarray:
        return self.diagnostics["rhat"]

    @property
    def ess_bulk(self) -> np.ndarray:
        return self.diagnostics["ess_bulk"]

    @property
    def ess_tail(self) -> np.ndarray:
        return self.diagnostics["ess_tail"]

    @property
    def n_divergences(self) -> int:
        """Divergent transitions after warmup, all chains."""
        return int(self.diagnostics["divergences"].sum())

    def converged(self, rhat: float = 1.01, ess: float = 400.0) -> bool:
        """R-hat <= ``rhat`` and bulk ESS >= ``ess`` for every parameter."""
        d = self.diagnostics
        return bool(np.all(d["rhat"] <= rhat) and np.all(d["ess_bulk"] >= ess))

    def summary(self, linear: bool = False):
        """DataFrame, one row per parameter: ``mean``, ``sd``, ``q2.5``, ``q50``, ``q97.5``
        (on the parameters' scales, or linear values), ``rhat``, ``ess_bulk``, ``ess_tail``."""
        import pandas as pd

        s = self.flat(linear)
        q = np.quantile(s, QUANTILES, axis=0)
        d = self.diagnostics
        return pd.DataFrame({
            "scale": ["lin"] * len(self.scales) if linear else list(self.scales),
            "mean": s.mean(axis=0), "sd": s.std(axis=0, ddof=1),
            "q2.5": q[0], "q50": q[1], "q97.5": q[2],
            "rhat": d["rhat"], "ess_bulk": d["ess_bulk"], "ess_tail": d["ess_tail"],
        }, index=pd.Index(list(self.parameter_ids), name="parameter"))

    # ----- the result protocol -----
    def report(self) -> dict:
        """The JSON summary (no draws): settings, timings, diagnostics and the per-parameter
        :meth:`summary`; what ``DIR/posterior.json`` of a run holds."""
        d = self.diagnostics
        summ = self.summary()
        rows = {pid: {c: (_num(v) if not isinstance(v, str) else v)
                      for c, v in summ.loc[pid].items()} for pid in self.parameter_ids}
        return {
            "problem": self.problem,
            "parameter_ids": list(self.parameter_ids), "scales": list(self.scales),
            "lower": [_num(v) for v in self.lower], "upper": [_num(v) for v in self.upper],
            "n_chains": self.n_chains, "n_draws": self.n_draws,
            "settings": self.settings, "timings": self.timings,
            "diagnostics": {
                "max_rhat": _num(np.nanmax(d["rhat"])),
                "min_ess_bulk": _num(np.nanmin(d["ess_bulk"])),
                "min_ess_tail": _num(np.nanmin(d["ess_tail"])),
                "divergences": [int(v) for v in d["divergences"]],
                "converged": self.converged(),
                "step_size": [_num(v) for v in self.step_size],
                "mean_accept_prob": _num(np.mean(self.stats["accept_prob"])),
                "mean_num_steps": _num(np.mean(self.stats["num_steps"])),
                "max_num_steps": int(np.max(self.stats["num_steps"])),
            },
            "summary": rows,
        }

    def to_dict(self) -> dict:
        """:meth:`report` plus the arrays: ``samples``, ``warmup``, ``step_size`` and
        ``stats`` (NumPy arrays; :func:`scalebridge.save` stores them as arrays)."""
        return {**self.report(), **self._arrays()}

    @classmethod
    def from_dict(cls, data) -> PosteriorResult:
        inf = math.inf  # infinite bounds are written as null
        return cls(tuple(data["parameter_ids"]), tuple(data["scales"]),
                   np.asarray([-inf if v is None else v for v in data["lower"]], float),
                   np.asarray([inf if v is None else v for v in data["upper"]], float),
                   np.asarray(data["samples"]), np.asarray(data["warmup"]),
                   {k: np.asarray(v) for k, v in data["stats"].items()},
                   np.asarray(data["step_size"]), dict(data.get("settings") or {}),
                   dict(data.get("timings") or {}), str(data.get("problem", "")))

    def _arrays(self) -> dict:
        return {"samples": self.samples, "warmup": self.warmup, "step_size": self.step_size,
                "stats": {k: np.asarray(v) for k, v in self.stats.items()}}

    def to_pandas(self, linear: bool = False):
        """The draws, one row per (chain, draw), a column per parameter (on its scale, or
        linear values)."""
        import pandas as pd

        s = self.samples_linear if linear else self.samples
        index = pd.MultiIndex.from_product([range(self.n_chains), range(self.n_draws)],
                                           names=["chain", "draw"])
        return pd.DataFrame(s.reshape(-1, s.shape[-1]), index=index,
                            columns=list(self.parameter_ids))

    def to_arviz(self):
        """An ``arviz.InferenceData``: groups ``posterior`` and ``warmup_posterior`` (the
        draws on the parameters' scales), ``sample_stats`` and ``warmup_sample_stats``
        (``diverging``, ``n_steps``, ``acceptance_rate``, ``step_size``, and ``lp``: minus
        the potential energy, the log posterior density in the sampler's coordinates up to
        a constant). ``.to_netcdf(path)`` saves it."""
        import arviz as az

        def draws(a):
            return {pid: a[..., k] for k, pid in enumerate(self.parameter_ids)}

        st = self.stats
        steps = np.broadcast_to(self.step_size[:, None], st["potential_energy"].shape)
        stats = {"lp": -np.asarray(st["potential_energy"]), "diverging": st["diverging"],
                 "n_steps": st["num_steps"], "acceptance_rate": st["accept_prob"],
                 "step_size": steps}
        warm = {}
        if self.warmup.shape[1]:
            warm = {"warmup_posterior": draws(self.warmup),
                    "warmup_sample_stats": {"diverging": st["warmup_diverging"],
                                            "n_steps": st["warmup_num_steps"]}}
        return az.from_dict(posterior=draws(self.samples), sample_stats=stats,
                            save_warmup=bool(warm), attrs={"problem": self.problem,
                                                           "scales": list(self.scales)},
                            **warm)

    def plot(self, ax=None):
        """Median and 95% interval of each parameter on its scale (a forest plot); draws
        into ``ax`` (a new figure if None) and returns it."""
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(5, 0.35 * len(self.parameter_ids) + 1.2))
        q = np.quantile(self.flat(), QUANTILES, axis=0)
        y = np.arange(len(self.parameter_ids))[::-1]
        ax.hlines(y, q[0], q[2], color="C0", lw=2)
        ax.plot(q[1], y, "o", color="C0", ms=4)
        ax.set_yticks(y)
        ax.set_yticklabels([pid if sc == "lin" else f"{sc}({pid})"
                            for pid, sc in zip(self.parameter_ids, self.scales, strict=True)],
                           fontsize=8)
        ax.set_xlabel("posterior median and 95% interval")
        return ax

    # ----- the run directory of sample(out=DIR) -----
    def _write_run(self, run) -> Path:
        """Write ``posterior.json`` and ``samples.npz`` of the run directory ``run``
        (atomically); return its path."""
        arrays = self._arrays()
        arrays.update({f"stats_{k}": v for k, v in arrays.pop("stats").items()})
        _write_npz(run.file(SAMPLES_FILE), arrays)
        write_json(run.file(RESULT_FILE), run.stamp({
            "format": FORMAT, "format_version": FORMAT_VERSION, "status": "done",
            "samples_sha256": _file_hash(run.file(SAMPLES_FILE)), **self.report()},
            records_key="*"))
        return run.path

    @classmethod
    def _read_run(cls, out) -> PosteriorResult:
        """The result of a finished :func:`sample` run with ``out=``."""
        out = Path(out)
        path = out / RESULT_FILE
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise SerializationError(f"{path}: cannot read a posterior result: {exc}") \
                from None
        if data.get("format") != FORMAT:
            raise SerializationError(f"{path} is not a scalebridge posterior result")
        if data.get("format_version", 0) > FORMAT_VERSION:
            raise SerializationError(f"{path} has format version {data['format_version']}; "
                                     f"this scalebridge reads up to {FORMAT_VERSION}")
        if data.get("status") != "done":
            raise SerializationError(f"{path}: the run is not finished; call sample() with "
                                     "the same out directory to resume it")
        try:
            with np.load(out / SAMPLES_FILE, allow_pickle=False) as z:
                arr = {k: z[k] for k in z.files}
        except (OSError, ValueError) as exc:
            raise SerializationError(f"{out / SAMPLES_FILE}: cannot read the draws: {exc}") \
                from None
        arr["stats"] = {k.removeprefix("stats_"): arr.pop(k) for k in list(arr)
                        if k.startswith("stats_")}
        return cls.from_dict({**data, **arr})

    # ----- plots -----
    def plot_traces(self, ax=None, *, warmup: bool = False):
        """Trace (left) and per-chain density (right) of each parameter; divergent draws
        marked. ``warmup=True`` prepends the warmup draws (shaded). ``ax``: a
        ``(n_parameters, 2)`` array of Axes (a new figure if None); returns it."""
        d = len(self.parameter_ids)
        axes = _panels(ax, (d, 2), figsize=(10, 1.7 * d + 0.6),
                       gridspec_kw={"width_ratios": [3, 1]})
        fig = axes.flat[0].figure
        n_w = self.warmup.shape[1] if warmup else 0
        diag = self.diagnostics
        for k, pid in enumerate(self.parameter_ids):
            ax, axd = axes[k]
            for c in range(self.n_chains):
                y = self.samples[c, :, k]
                if warmup:
                    y = np.concatenate([self.warmup[c, :, k], y])
                ax.plot(np.arange(y.size), y, lw=0.5, alpha=0.8, color=f"C{c}")
                div = np.nonzero(np.asarray(self.stats["diverging"][c]))[0]
                if div.size:
                    ax.plot(n_w + div, self.samples[c, div, k], "|", color="red", ms=8)
                _density(axd, self.samples[c, :, k], color=f"C{c}", lower=self.lower[k],
                         upper=self.upper[k])
            if warmup and n_w:
                ax.axvspan(0, n_w, color="0.9", zorder=-1)
            ax.set_ylabel(f"{pid}\n[{self.scales[k]}]", fontsize=8)
            axd.set_title(f"R-hat {diag['rhat'][k]:.3f}, ESS {diag['ess_bulk'][k]:.0f}",
                          fontsize=8)
            axd.set_yticks([])
        axes[-1, 0].set_xlabel("iteration" + (" (warmup shaded)" if warmup else ""))
        fig.suptitle(f"{self.n_chains} chains x {self.n_draws} draws, "
                     f"{self.n_divergences} divergences", fontsize=10)
        return axes

    def plot_marginals(self, ax=None, *, pairs: bool = False, linear: bool = False):
        """Histograms of the pooled marginals with the median and 95% interval; with
        ``pairs=True`` a corner plot (2-d histograms below the diagonal). ``ax``: an array
        of Axes, ``(d, d)`` for pairs, else at least ``d`` (a new figure if None); returns
        it."""
        s = self.flat(linear)
        d = s.shape[1]
        labels = [f"{p} [{'lin' if linear else sc}]"
                  for p, sc in zip(self.parameter_ids, self.scales, strict=True)]
        q = np.quantile(s, QUANTILES, axis=0)
        if pairs:
            axes = _panels(ax, (d, d), figsize=(1.8 * d + 1, 1.8 * d + 1))
            for i in range(d):
                for j in range(d):
                    ax = axes[i, j]
                    if j > i:
                        ax.axis("off")
                        continue
                    if i == j:
                        ax.hist(s[:, i], bins=40, color="C0", alpha=0.7)
                        for v in q[:, i]:
                            ax.axvline(v, color="k", lw=0.7, ls="--")
                        ax.set_yticks([])
                    else:
                        ax.hist2d(s[:, j], s[:, i], bins=40, cmap="Blues")
                    if i == d - 1:
                        ax.set_xlabel(labels[j], fontsize=7)
                    else:
                        ax.set_xticklabels([])
                    if j == 0 and i > 0:
                        ax.set_ylabel(labels[i], fontsize=7)
                    elif j > 0:
                        ax.set_yticklabels([])
                    ax.tick_params(labelsize=6)
        else:
            ncol = min(3, d)
            nrow = -(-d // ncol)
            axes = _panels(ax, (nrow, ncol), figsize=(3.3 * ncol, 2.5 * nrow))
            for k in range(axes.size):
                ax = axes.flat[k]
                if k >= d:
                    ax.axis("off")
                    continue
                ax.hist(s[:, k], bins=50, density=True, color="C0", alpha=0.6)
                bounds = np.stack([self.lower, self.upper])
                lo, hi = (np.asarray(scaled_to_linear(bounds, self.scales))[:, k] if linear
                          else bounds[:, k])
                _density(ax, s[:, k], color="C0", flip=False, lower=lo, upper=hi)
                for v in q[:, k]:
                    ax.axvline(v, color="k", lw=0.8, ls="--")
                ax.axvspan(q[0, k], q[2, k], color="C0", alpha=0.08)
                ax.set_xlabel(labels[k], fontsize=8)
                ax.set_yticks([])
        axes.flat[0].figure.suptitle("posterior marginals (median and 95% interval)",
                                     fontsize=10)
        return axes

    # ----- predictions -----
    def predictive(self, problem: Problem, *, n_draws: int = 200, n_grid: int = 101,
                   seed: int = 0) -> PredictiveResult:
        """Posterior predictive bands: ``n_draws`` draws (evenly thinned over all chains)
        simulated on ``n_grid`` times from 0 to the last measurement of each condition
        (plus the measurement times), with noise drawn from each observable's noise
        model; quantiles 2.5/50/97.5% of the noise-free simulation and of the noisy
        prediction, on the grid (``bands``) and at each measurement (``at_data``)."""
        if not isinstance(problem, Problem):
            raise InputError(f"predictive needs the Problem that was sampled, got "
                             f"{type(problem).__name__}")
        if tuple(problem.parameter_ids) != tuple(self.parameter_ids):
            raise InputError(f"problem {problem.name!r} estimates "
                             f"{', '.join(problem.parameter_ids)}, but the posterior is over "
                             f"{', '.join(self.parameter_ids)}; pass the sampled problem")
        n_draws, n_grid = int(n_draws), int(n_grid)
        if n_draws < 2:
            raise InputError(f"n_draws must be >= 2, got {n_draws}")
        if n_grid < 2:
            raise InputError(f"n_grid must be >= 2, got {n_grid}")
        flat = self.flat()
        idx = np.unique(np.linspace(0, flat.shape[0] - 1, min(n_draws, flat.shape[0]))
                        .round().astype(int))
        grid = _grid_problem(problem, n_grid)
        rng = np.random.default_rng(seed)
        meas = problem.measurements
        sims = {"data": [], "grid": []}
        for i in idx:
            x = flat[i]
            try:
                a = problem.simulations(x)
                b = grid.simulations(x)
            except (ScalebridgeError, RuntimeError) as exc:
                raise SimulationError(f"posterior predictive: simulation at draw {int(i)} "
                                      f"failed: {str(exc).splitlines()[0]}") from exc
            sims["data"].append(a[["simulation", "sigma"]].to_numpy())
            sims["grid"].append(b[["simulation", "sigma"]].to_numpy())
        out = {}
        for name, table in (("data", meas), ("grid", grid.measurements)):
            arr = np.stack(sims[name])  # (draws, rows, 2)
            y, sd = arr[..., 0], arr[..., 1]
            noisy = _add_noise(problem, table["observableId"].to_numpy(), y, sd, rng)
            qs = np.nanquantile(y, QUANTILES, axis=0)
            qn = np.nanquantile(noisy, QUANTILES, axis=0)
            cols = ["observableId", "preequilibrationConditionId", "simulationConditionId",
                    "time"] + (["measurement"] if name == "data" else [])
            df = table[cols].copy().reset_index(drop=True)
            for j, lab in enumerate(("q2.5", "q50", "q97.5")):
                df[f"sim_{lab}"] = qs[j]
            for j, lab in enumerate(("q2.5", "q50", "q97.5")):
                df[f"pred_{lab}"] = qn[j]
            out[name] = df
        bands = out["grid"].sort_values(["observableId", "preequilibrationConditionId",
                                         "simulationConditionId", "time"]) \
            .reset_index(drop=True)
        return PredictiveResult(bands=bands, at_data=out["data"], n_draws=int(idx.size))


def _add_noise(problem: Problem, obs_ids, y, sd, rng) -> np.ndarray:
    """Draws ``h^-1(h(y) + sd * eps)`` with ``eps`` from each row's noise distribution."""
    out = np.empty_like(y)
    for oid in np.unique(obs_ids):
        cols = obs_ids == oid
        spec = problem.observables[str(oid)]
        shape = y[:, cols].shape
        eps = (rng.laplace(size=shape) if spec.distribution == "laplace"
               else rng.standard_normal(shape))
        yy, ss = y[:, cols], sd[:, cols]
        with np.errstate(invalid="ignore", divide="ignore"):
            if spec.transformation == "log":
                out[:, cols] = np.exp(np.log(yy) + ss * eps)
            elif spec.transformation == "log10":
                out[:, cols] = 10.0 ** (np.log10(yy) + ss * eps)
            else:
                out[:, cols] = yy + ss * eps
    return out


def _grid_problem(problem: Problem, n_grid: int) -> Problem:
    """A copy of ``problem`` whose measurement table has one row per grid time for every
    (observable, preequilibration, condition) that has data; each row copies the first
    measurement row of its group (placeholders, noise parameters)."""
    import pandas as pd

    m = problem.measurements
    keys = ["observableId", "preequilibrationConditionId", "simulationConditionId"]
    rows = []
    for _, g in m.groupby(keys, sort=False):
        tmax = float(m.loc[(m["preequilibrationConditionId"]
                            == g["preequilibrationConditionId"].iloc[0])
                           & (m["simulationConditionId"]
                              == g["simulationConditionId"].iloc[0]), "time"].max())
        times = np.union1d(np.linspace(0.0, tmax, n_grid), g["time"].to_numpy())
        rep = g.iloc[[0]]
        block = pd.concat([rep] * times.size, ignore_index=True)
        block["time"] = times
        rows.append(block)
    table = pd.concat(rows, ignore_index=True)
    return Problem(problem.model, problem.parameters, problem.conditions,
                   list(problem.observables.values()), table,
                   name=f"{problem.name}-predictive", rtol=problem.rtol, atol=problem.atol,
                   max_steps=problem.max_steps,
                   sources={"measurements": "predictive grid"})


@dataclass
class PredictiveResult:
    """Posterior predictive bands of :meth:`PosteriorResult.predictive`.

    ``bands``: one row per (observable, preequilibration, condition, grid time) with
    quantiles ``sim_q2.5/q50/q97.5`` of the noise-free simulation and ``pred_q2.5/q50/
    q97.5`` of the noisy prediction; ``at_data``: the same quantities at each measurement
    row, with the ``measurement``.
    """

    bands: object
    at_data: object
    n_draws: int

    @property
    def coverage(self) -> float:
        """Fraction of measurements inside their 95% posterior predictive interval."""
        d = self.at_data
        inside = (d["measurement"] >= d["pred_q2.5"]) & (d["measurement"] <= d["pred_q97.5"])
        return float(inside.mean())

    def plot(self, ax=None):
        """One panel per observable: data points, the 95% predictive band (light), the
        95% band of the noise-free simulation (dark) and the median, per condition. ``ax``:
        an array of at least one Axes per observable (a new figure if None); returns it."""
        b, d = self.bands, self.at_data
        obs = list(dict.fromkeys(b["observableId"]))
        ncol = min(3, len(obs))
        nrow = -(-len(obs) // ncol)
        axes = _panels(ax, (nrow, ncol), figsize=(max(4.2 * ncol, 6.0), 3.0 * nrow + 0.4))
        keys = ["preequilibrationConditionId", "simulationConditionId"]
        for k in range(axes.size):
            ax = axes.flat[k]
            if k >= len(obs):
                ax.axis("off")
                continue
            oid = obs[k]
            bo, do = b[b["observableId"] == oid], d[d["observableId"] == oid]
            for c, ((pre, sim), g) in enumerate(bo.groupby(keys, sort=False)):
                col = f"C{c % 10}"
                lab = f"{pre} -> {sim}" if pre else sim
                ax.fill_between(g["time"], g["pred_q2.5"], g["pred_q97.5"], color=col,
                                alpha=0.15, lw=0)
                ax.fill_between(g["time"], g["sim_q2.5"], g["sim_q97.5"], color=col,
                                alpha=0.35, lw=0)
                ax.plot(g["time"], g["sim_q50"], color=col, lw=1.2, label=lab)
                dd = do[(do["preequilibrationConditionId"] == pre)
                        & (do["simulationConditionId"] == sim)]
                ax.plot(dd["time"], dd["measurement"], "o", color=col, ms=3.5,
                        mec="k", mew=0.4)
            ax.set_title(oid, fontsize=9)
            ax.set_xlabel("time")
            if bo.groupby(keys).ngroups <= 8:
                ax.legend(fontsize=6)
        axes.flat[0].figure.suptitle(
            f"posterior predictive, {self.n_draws} draws, data coverage {self.coverage:.0%}"
            "\nlight: 95% with noise, dark: 95% of the simulation, line: median", fontsize=9)
        return axes

    # ----- the result protocol -----
    def to_pandas(self):
        """The bands: one row per observable, condition and grid time (``at_data`` holds
        the same quantities at each measurement)."""
        return self.bands.copy()

    def to_dict(self) -> dict:
        """Both tables, column by column, and the number of draws."""
        return {"bands": _columns(self.bands), "at_data": _columns(self.at_data),
                "n_draws": int(self.n_draws)}

    @classmethod
    def from_dict(cls, d) -> PredictiveResult:
        import pandas as pd

        return cls(pd.DataFrame(d["bands"]), pd.DataFrame(d["at_data"]), int(d["n_draws"]))


def _panels(ax, shape, **kw) -> np.ndarray:
    """``ax`` as an array of the given shape, or a new figure's grid of panels."""
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(*shape, squeeze=False, **kw)
    axes = np.asarray(ax, dtype=object)
    if axes.size < shape[0] * shape[1]:
        raise InputError(f"ax: give at least {shape[0] * shape[1]} Axes, got {axes.size}")
    return axes.reshape(-1)[:shape[0] * shape[1]].reshape(shape)


def _columns(df) -> dict:
    """A table as ``{column: array or list}`` (strings as lists, numbers as arrays)."""
    import pandas as pd

    return {str(c): (df[c].to_numpy(float) if pd.api.types.is_numeric_dtype(df[c])
                     else [None if pd.isna(v) else str(v) for v in df[c]]) for c in df.columns}


def _density(ax, v, color, flip: bool = True, lower=-math.inf, upper=math.inf):
    """A Gaussian kernel density estimate (Scott's bandwidth) of ``v`` on ``ax``, reflected
    at finite bounds ``lower``/``upper`` (no mass outside them)."""
    v = np.asarray(v, float)
    sd = v.std()
    if v.size < 2 or sd == 0:
        return
    h = 1.06 * sd * v.size ** (-0.2)
    grid = np.linspace(max(v.min() - 3 * h, lower), min(v.max() + 3 * h, upper), 200)
    sub = v if v.size <= 2000 else v[np.linspace(0, v.size - 1, 2000).astype(int)]
    centres = [sub] + [2 * b - sub for b in (lower, upper) if math.isfinite(b)]
    dens = sum(np.exp(-0.5 * ((grid[:, None] - c[None]) / h) ** 2).sum(1) for c in centres)
    dens /= sub.size * h * math.sqrt(2 * math.pi)
    if flip:
        ax.plot(dens, grid, color=color, lw=0.8)
    else:
        ax.plot(grid, dens, color=color, lw=1.0)


# ----- the sampler -----------------------------------------------------------------------------
def _start_points(problem: Problem, init, n_chains: int) -> np.ndarray:
    """Start points ``x`` of the chains: (d,) (one centre) or (n_chains, d)."""
    from .fit import FitResult

    d = len(problem.parameter_ids)
    if init is None:
        x0 = np.asarray(problem.x_nominal, float)
    elif isinstance(init, FitResult):
        if init.best_x is None:
            raise InputError("init: the FitResult has no successful start; fit again or "
                             "pass a parameter vector")
        if tuple(init.parameter_ids) != tuple(problem.parameter_ids):
            raise InputError("init: the FitResult is for parameters "
                             f"{', '.join(init.parameter_ids)}, not "
                             f"{', '.join(problem.parameter_ids)}")
        x0 = np.asarray(init.best_x, float)
    else:
        try:
            x0 = np.asarray(init, float)
        except (TypeError, ValueError):
            raise InputError(f"init must be a FitResult, a parameter vector or None, got "
                             f"{type(init).__name__}") from None
        if x0.shape not in ((d,), (n_chains, d)):
            raise InputError(f"init has shape {x0.shape}; expected ({d},) or "
                             f"({n_chains}, {d}) for {', '.join(problem.parameter_ids)}")
    if not np.all(np.isfinite(x0)):
        raise InputError("init: start point is not finite")
    bad = problem.space.outside(x0)
    if np.any(bad):
        names = [problem.parameter_ids[k] for k in np.nonzero(np.atleast_2d(bad).any(0))[0]]
        raise InputError(f"init: start point lies outside the bounds for {', '.join(names)}; "
                         "give values within [lower, upper] on the parameters' scales")
    return x0


def _preconditioner(problem: Problem, box: ParameterSpace, log_prior: Callable, x0,
                    use_hessian: bool) -> np.ndarray:
    """Lower-triangular ``L`` with ``u = u0 + L v``: the Cholesky factor of the inverse
    Hessian of the potential ``U(u)`` at ``u0 = u(x0)`` (central differences of its exact
    gradient, from :meth:`Problem.nll_grad_fim`), with variances capped at 1 (directions
    the data do not inform, or of negative curvature), so that the posterior is roughly
    standard normal in ``v`` near ``x0``. The identity if ``use_hessian`` is false or a
    gradient cannot be computed."""
    d = x0.size
    if not use_hessian:
        return np.eye(d)
    lp_grad = jax.jit(jax.grad(log_prior))

    def grad_u(u):
        x = box.unconstrained_to_scaled(u)
        _, g, _ = problem.nll_grad_fim(x)
        g = g - np.asarray(lp_grad(jnp.asarray(x)))
        dx, dlj = box.unconstrained_derivatives(u)
        return dx * g - dlj

    u0, h = box.to_unconstrained(x0), 1e-4
    try:
        H = np.stack([(grad_u(u0 + h * e) - grad_u(u0 - h * e)) / (2 * h)
                      for e in np.eye(d)])
    except ScalebridgeError:
        return np.eye(d)
    if not np.all(np.isfinite(H)):
        return np.eye(d)
    vals, vecs = np.linalg.eigh(0.5 * (H + H.T))
    cov = (vecs / np.maximum(vals, 1.0)) @ vecs.T
    return np.linalg.cholesky(0.5 * (cov + cov.T))


def _settings_key(problem: Problem, **kw) -> dict:
    return dict(problem=problem.name, parameter_ids=list(problem.parameter_ids),
                lower=[_num(v) for v in problem.lower], upper=[_num(v) for v in problem.upper],
                **kw)


def _check_args(problem, n_chains, n_warmup, n_samples, prior, target_accept,
                max_tree_depth, chain_method, jitter, precondition):
    if not isinstance(problem, Problem):
        raise InputError(f"sample needs a scalebridge Problem, got {type(problem).__name__}")
    if len(problem.parameter_ids) == 0:
        raise InputError(f"problem {problem.name!r} has no estimated parameters to sample")
    for name, v, lo in (("n_chains", n_chains, 1), ("n_warmup", n_warmup, 0),
                        ("n_samples", n_samples, 4), ("max_tree_depth", max_tree_depth, 1)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < lo:
            raise InputError(f"{name} must be an integer >= {lo}, got {v!r}")
    if prior not in PRIOR_KINDS:
        raise InputError(f"prior {prior!r} is unknown; use one of {', '.join(PRIOR_KINDS)}")
    if chain_method not in CHAIN_METHODS:
        raise InputError(f"chain_method {chain_method!r} is unknown; use one of "
                         f"{', '.join(CHAIN_METHODS)}")
    if precondition not in PRECONDITIONERS:
        raise InputError(f"precondition {precondition!r} is unknown; use one of "
                         f"{', '.join(PRECONDITIONERS)}")
    if not (isinstance(target_accept, float | int) and 0 < target_accept < 1):
        raise InputError(f"target_accept must be a number in (0, 1), got {target_accept!r}")
    if not (isinstance(jitter, float | int) and jitter >= 0):
        raise InputError(f"jitter must be a number >= 0, got {jitter!r}")


def sample(problem: Problem, *, n_chains: int = 4, n_warmup: int = 1000,
           n_samples: int = 1000, seed: int = 0, init=None, prior: str = "petab",
           target_accept: float = 0.8, max_tree_depth: int = 8, dense_mass: bool = True,
           chain_method: str = "sequential", precondition: str = "hessian", jitter: float = 1.0,
           progress: Callable | None = None, out=None,
           restart: bool = False) -> PosteriorResult:
    """Draw from the posterior of ``problem`` with NUTS; see the module docstring.

    ``init``: start of the chains: ``None`` (the nominal parameters), a
    :class:`~scalebridge.infer.fit.FitResult` (its best fit), a vector of scaled parameters,
    or one vector per chain (n_chains, d).
    ``precondition``: ``"hessian"`` samples ``v`` with ``u = u0 + L v``, ``L L^T`` the
    inverse Hessian of the potential at the start point (in the unconstrained space ``u``,
    variances capped at 1), so that warmup starts from a well-scaled posterior and its
    first trajectories are short; ``"none"``: ``L`` is the identity.
    ``jitter``: a single start point is spread over the chains by ``jitter`` standard
    normal deviates in ``v`` (about ``jitter`` posterior standard deviations).
    ``dense_mass``: adapt a dense (True) or diagonal mass matrix during warmup.
    ``max_tree_depth``: at most ``2**max_tree_depth`` leapfrog steps per iteration.
    ``chain_method``: ``"vectorized"`` or ``"sequential"`` (module docstring).
    ``progress``: a :class:`~scalebridge.Progress`, or any ``progress(done, total,
    **info)``, called after each chunk of iterations (``done`` of ``total`` per chain) with
    ``phase``, ``divergences`` (after warmup), ``warmup_divergences`` and ``elapsed_s``.
    ``out``: directory for checkpoints and results (module docstring); ``restart``: start
    over in ``out`` instead of resuming.
    """
    _check_args(problem, n_chains, n_warmup, n_samples, prior, target_accept,
                max_tree_depth, chain_method, jitter, precondition)
    n_chains, n_warmup, n_samples = int(n_chains), int(n_warmup), int(n_samples)
    seed, max_tree_depth = int(seed), int(max_tree_depth)
    box = problem.space
    log_prior = box.log_prior_density(prior)
    x0 = _start_points(problem, init, n_chains)
    d = x0.shape[-1]
    settings = dict(n_chains=n_chains, n_warmup=n_warmup, n_samples=n_samples, seed=seed,
                    prior=prior, target_accept=float(target_accept),
                    max_tree_depth=max_tree_depth, dense_mass=bool(dense_mass),
                    chain_method=chain_method, precondition=precondition,
                    jitter=float(jitter), init=[_num(v) for v in np.ravel(x0)])
    run = None if out is None else open_run(
        out, "sample", inputs=problem.fingerprint(), seed=seed, restart=restart,
        results=(RESULT_FILE, STATE_FILES, SAMPLES_FILE, "traces.png", "marginals.png",
                 "predictive.png", "predictive_bands.tsv", "predictive_at_data.tsv"),
        settings=settings)
    resume = _load_checkpoint(run) if run is not None else None
    if isinstance(resume, PosteriorResult):
        return resume

    centre = x0 if x0.ndim == 1 else x0[0]
    for xs in np.atleast_2d(x0):
        if not np.isfinite(float(log_prior(jnp.asarray(xs)))):
            raise InputError(f"the prior density is zero at the start point x = "
                             f"{xs.tolist()}; start inside the support of the priors (init=)")
    shift = box.to_unconstrained(centre)
    if resume is not None:
        chol = resume["arrays"]["chol"]
    else:
        chol = _preconditioner(problem, box, log_prior, centre, precondition == "hessian")
    if x0.ndim == 1:
        v0 = float(jitter) * np.random.default_rng(seed).standard_normal((n_chains, d))
    else:
        v0 = np.linalg.solve(chol, (box.to_unconstrained(x0) - shift).T).T
    config = (prior, n_chains, n_warmup, bool(dense_mass), float(target_accept),
              max_tree_depth, chain_method)
    t0 = time.perf_counter()
    init_fn, chunk_fn = _compiled(problem, box, log_prior, config)
    compile_s = time.perf_counter() - t0
    args = (jnp.asarray(shift), jnp.asarray(chol))
    keys = jax.random.split(jax.random.PRNGKey(seed), n_chains)
    state = init_fn(jnp.asarray(v0), keys, args)

    def to_x(v):
        return box.unconstrained_to_scaled(shift + np.asarray(v) @ chol.T)

    total = n_warmup + n_samples
    records = {k: [] for k in ("z", "pe", "div", "steps", "acc", "ss")}
    timings = {"compile_s": 0.0, "warmup_s": 0.0, "sampling_s": 0.0}
    if resume is not None:
        state, records, timings = _restore(resume, state)
    t0 = time.perf_counter()
    compiled = chunk_fn(state, args)
    timings["compile_s"] += compile_s + time.perf_counter() - t0
    done = int(np.asarray(state.i).ravel()[0])
    while done < total:
        n = min(CHUNK, (n_warmup if done < n_warmup else total) - done)
        t0 = time.perf_counter()
        new_state, pe0, buf = compiled(state, jnp.asarray(n), args)
        buf = jax.block_until_ready(buf)
        dt = time.perf_counter() - t0
        if done == 0 and not np.all(np.isfinite(np.asarray(pe0))):
            bad = np.nonzero(~np.isfinite(np.asarray(pe0)))[0].tolist()
            raise InputError(f"the log posterior is not finite at the start point of chain(s) "
                             f"{bad} (x = {to_x(v0[bad[0]]).tolist()}); start inside the "
                             "support of the priors, e.g. from a fit (init=FitResult)")
        state = new_state
        for k, b in zip(records, buf, strict=True):
            records[k].append(np.asarray(b[:n]))
        timings["warmup_s" if done < n_warmup else "sampling_s"] += dt
        done += n
        if run is not None:
            _save_checkpoint(run, state, records, timings, done, total, chol)
        if progress is not None:
            div = np.concatenate(records["div"], axis=0)
            progress(done, total, phase="warmup" if done <= n_warmup else "sampling",
                     divergences=int(div[n_warmup:].sum()),
                     warmup_divergences=int(div[:n_warmup].sum()),
                     elapsed_s=timings["warmup_s"] + timings["sampling_s"])
    cat = {k: np.concatenate(v, axis=0).swapaxes(0, 1) for k, v in records.items()}
    xs = to_x(cat["z"])
    result = PosteriorResult(
        tuple(problem.parameter_ids), tuple(problem.space.scales),
        np.asarray(problem.lower, float), np.asarray(problem.upper, float),
        samples=xs[:, n_warmup:], warmup=xs[:, :n_warmup],
        stats={"potential_energy": cat["pe"][:, n_warmup:],
               "diverging": cat["div"][:, n_warmup:].astype(bool),
               "num_steps": cat["steps"][:, n_warmup:].astype(int),
               "accept_prob": cat["acc"][:, n_warmup:],
               "warmup_diverging": cat["div"][:, :n_warmup].astype(bool),
               "warmup_num_steps": cat["steps"][:, :n_warmup].astype(int)},
        step_size=np.asarray(state.adapt_state.step_size, float).reshape(n_chains),
        settings=settings, timings={k: round(v, 3) for k, v in timings.items()},
        problem=problem.name)
    if run is not None:
        result._write_run(run)
        _remove_states(run)
    return result


def _compiled(problem: Problem, box: ParameterSpace, log_prior: Callable, config: tuple):
    """``(init(v0, keys, args) -> state, compile(state, args) -> run_chunk)`` for
    ``problem`` and the sampler ``config``; ``args = (u0, L)`` of the preconditioner. The
    last :data:`_CACHE_SIZE` are kept, so that a later run with the same problem and
    configuration (another seed, more draws, a resumed run) reuses the compiled program."""
    from numpyro.infer.hmc import hmc
    from numpyro.infer.util import ParamInfo

    ckey = (id(problem), config)
    if ckey in _CACHE:
        _CACHE.move_to_end(ckey)
        return _CACHE[ckey][1]
    prior, n_chains, n_warmup, dense_mass, target_accept, max_tree_depth, chain_method = config
    d = len(problem.parameter_ids)

    def potential_gen(shift, chol):
        def potential(v):
            x, log_jac = box.from_unconstrained(shift + chol @ v)
            return problem.nll_jax(x) - log_prior(x) - log_jac

        return potential

    init_kernel, sample_kernel = hmc(potential_fn_gen=potential_gen, algo="NUTS")

    def init_one(v, rng_key, args):
        # the potential at the start point is computed by the first chunk (placeholders here)
        return init_kernel(ParamInfo(v, jnp.zeros(()), jnp.zeros_like(v)), n_warmup,
                           dense_mass=dense_mass, target_accept_prob=target_accept,
                           max_tree_depth=max_tree_depth, model_args=args, rng_key=rng_key)

    init_fn = jax.jit(jax.vmap(init_one, in_axes=(0, 0, None)))

    def run_chunk(state, n, args):
        vg = jax.value_and_grad(potential_gen(*args))

        def one(s):
            return sample_kernel(s, args)

        if chain_method == "vectorized":
            step, value_grad = jax.vmap(one), jax.vmap(vg)
        else:
            step, value_grad = (lambda s: jax.lax.map(one, s)), (lambda v: jax.lax.map(vg, v))
        # potential and gradient of the current point are (re)computed at the start of
        # each chunk: the initial state carries placeholders, and this keeps one compiled
        # program for all chunks
        pe, grad = value_grad(state.z)
        state = state._replace(potential_energy=pe, z_grad=grad)

        def body(i, carry):
            st, buf = carry
            st = step(st)
            rec = (st.z, st.potential_energy, st.diverging, st.num_steps, st.accept_prob,
                   st.adapt_state.step_size)
            return st, tuple(b.at[i].set(r) for b, r in zip(buf, rec, strict=True))

        buf = (jnp.zeros((CHUNK, n_chains, d)), jnp.zeros((CHUNK, n_chains)),
               jnp.zeros((CHUNK, n_chains), bool), jnp.zeros((CHUNK, n_chains), int),
               jnp.zeros((CHUNK, n_chains)), jnp.zeros((CHUNK, n_chains)))
        state, buf = jax.lax.fori_loop(0, n, body, (state, buf))
        return state, pe, buf

    holder = {}

    def chunk_fn(state, args):
        if "run" not in holder:
            holder["run"] = jax.jit(run_chunk).lower(state, jnp.asarray(CHUNK), args).compile()
        return holder["run"]

    _CACHE[ckey] = (problem, (init_fn, chunk_fn))  # the problem is held: its id stays valid
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return init_fn, chunk_fn


# ----- checkpoints ----------------------------------------------------------------------------
def _load_checkpoint(run):
    """None (nothing to resume), a finished PosteriorResult, or the checkpoint dict of the
    earlier call into the run directory ``run``."""
    data = read_json(run.file(RESULT_FILE), FORMAT, "posterior run")
    if data is None:
        return None
    done = data.get("status") == "done"
    run.check(data, RESULT_FILE, records_key="*" if done else None)
    name = SAMPLES_FILE if done else str(data.get("state_file"))
    if not done and not (name.startswith("state-") and name.endswith(".npz") and "/" not in name):
        name = "state-?.npz"
    stored = data.get("samples_sha256" if done else "state_sha256")
    try:
        same = stored == _file_hash(run.file(name))
    except OSError:
        same = False
    if not same:
        raise InputError(f"{run.file(name)} is missing or was changed after scalebridge wrote "
                         "it; use restart (--restart) to start over, or another out directory")
    if done:
        return PosteriorResult._read_run(run.path)
    try:
        with np.load(run.file(name), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError):
        raise InputError(f"{run.file(name)} is damaged; use restart (--restart) to start "
                         "over, or another out directory") from None
    return {"arrays": arrays, "timings": data.get("timings", {})}


def _save_checkpoint(run, state, records, timings, done, total, chol) -> None:
    leaves = jax.tree_util.tree_leaves(state)
    arrays = {f"state_{i}": np.asarray(v) for i, v in enumerate(leaves)}
    arrays["chol"] = np.asarray(chol)
    for k, v in records.items():
        arrays[f"rec_{k}"] = np.concatenate(v, axis=0)
    # the new state goes to its own file before the record points at it, so a run killed
    # at any moment leaves a record whose state file is there and whole
    name = f"state-{done}.npz"
    _write_npz(run.file(name), arrays)
    write_json(run.file(RESULT_FILE), run.stamp({
        "format": FORMAT, "format_version": FORMAT_VERSION, "status": "running",
        "iteration": done, "total": total, "state_file": name,
        "state_sha256": _file_hash(run.file(name)),
        "timings": {k: round(v, 3) for k, v in timings.items()}}))
    _remove_states(run, keep=name)


def _remove_states(run, keep: str | None = None) -> None:
    for f in run.path.glob(STATE_FILES):
        if f.name != keep:
            f.unlink(missing_ok=True)


def _restore(ckpt: dict, template):
    leaves, treedef = jax.tree_util.tree_flatten(template)
    arr = ckpt["arrays"]
    new = []
    for i, leaf in enumerate(leaves):
        v = arr.get(f"state_{i}")
        if v is None or v.shape != np.shape(leaf):
            raise InputError("the checkpoint in the out directory does not match this run; "
                             "use another out directory")
        new.append(jnp.asarray(v, dtype=jnp.asarray(leaf).dtype))
    state = jax.tree_util.tree_unflatten(treedef, new)
    records = {k: [arr[f"rec_{k}"]] for k in ("z", "pe", "div", "steps", "acc", "ss")}
    timings = {"compile_s": 0.0, "warmup_s": 0.0, "sampling_s": 0.0}
    timings.update({k: float(v) for k, v in ckpt["timings"].items() if k in timings})
    return state, records, timings
