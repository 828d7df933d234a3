"""Multi-start local optimisation of a :class:`~scalebridge.infer.problem.Problem`.

``fit(problem, n_starts=20, seed=0)`` draws start points from a Latin
hypercube in the scaled bounds, runs a local optimiser from each and collects the results in a
:class:`FitResult` (best start, starts converged to it, waterfall plot).

Optimisers (see docs/decisions/0007-local-optimiser.md):

- ``"fides"`` (default): :func:`local_minimize`, the Fides interior trust-region method on
  the NLL with its exact gradient and the Fisher information matrix as Hessian
  (:meth:`Problem.nll_grad_fim`, one forward-sensitivity pass per iteration);
- ``"trf"``: :func:`least_squares` (scipy's trust-region reflective, bounds) on a
  residual vector ``r(x)`` with ``0.5 * sum(r**2) + const == nll(x)`` and its Jacobian from
  :func:`jax.jacfwd` (forward sensitivities through the ODE solver), both jit-compiled once
  per problem and reused across starts and calls. For normal noise each measurement gives
  ``z = (h(m) - h(y)) / s`` and ``sqrt(2 log s + C)``, ``C`` = :data:`SIGMA_OFFSET` (real
  for ``s > exp(-C / 2)``, about 1e-12); for Laplace noise ``sqrt(2 |z|)`` and
  ``sqrt(2 log s + C)``;
- ``"lbfgs"``: :func:`bounded_minimize` (scipy's L-BFGS-B, bounds) on
  :meth:`Problem.nll_and_grad`.

Start points: :meth:`ParameterSpace.start_points <scalebridge.ParameterSpace.start_points>`
of the problem's space, which do not depend on ``n_starts`` (the first 3 of 20 starts are
the 3 starts of ``n_starts=3``), so resuming with more starts stays consistent.

With ``out=DIR`` (a run directory, :mod:`scalebridge.runtime.run`) the results are written
to ``DIR/result.json`` (atomically, after each start); a later call with the same directory,
problem content (model, tables, measurements), seed, optimiser and ``max_iter`` loads the
finished starts and runs only the missing ones; after any change it stops with an error
naming what changed, unless ``restart=True``.
"""

from __future__ import annotations

import math
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputError
from ..runtime.files import read_json, write_json
from ..runtime.run import open_run
from .problem import Problem
from .space import LHS_BLOCK

__all__ = ["fit", "FitResult", "local_minimize", "minimize_starts", "residual_function",
           "SIGMA_OFFSET"]

SIGMA_OFFSET = 2 * math.log(1e12) + 1.0
CONVERGED_DELTA = 1.92  # chi2(1) 0.95 quantile / 2
OPTIMIZERS = ("fides", "trf", "lbfgs")
RESULT_FILE = "result.json"
FORMAT = "scalebridge-fit"
FORMAT_VERSION = 1
_BAD_COST = 1e8  # residual value used where the simulation fails during a run


# ----- residuals ------------------------------------------------------------------------------
def _residuals(problem: Problem, x):
    """Residual vector (JAX) of ``problem`` at scaled ``x``; see the module docstring."""
    preds = problem._predictions(x)
    parts = []
    for g, (y, sd) in zip(problem._groups, preds, strict=True):
        spec, m = g["spec"], jnp.asarray(g["m"])
        tr = spec.transformation
        if tr == "lin":
            r = m - y
        elif tr == "log":
            r = jnp.log(m) - jnp.log(y)
        else:
            r = jnp.log10(m) - jnp.log10(y)
        z = r / sd
        if spec.distribution == "normal":
            parts.append(z)
        else:
            parts.append(jnp.sqrt(2 * jnp.abs(z)))
        parts.append(jnp.sqrt(2 * jnp.log(sd) + SIGMA_OFFSET))
    return jnp.concatenate(parts)


def _residual_constant(problem: Problem) -> float:
    """``const`` with ``nll(x) == 0.5 * sum(r(x)**2) + const`` for every ``x``."""
    c = 0.0
    for g in problem._groups:
        spec, m = g["spec"], np.asarray(g["m"], dtype=float)
        n = m.size
        if spec.transformation == "log":
            c += float(np.sum(np.log(m)))
        elif spec.transformation == "log10":
            c += float(np.sum(np.log(m * math.log(10))))
        if spec.distribution == "normal":
            c += n * 0.5 * math.log(2 * math.pi)
        else:
            c += n * math.log(2.0)
        c -= n * 0.5 * SIGMA_OFFSET
    return c


@dataclass
class _Compiled:
    res: Callable
    jac: Callable
    const: float
    const_size: int = 0
    warm: set = field(default_factory=set)


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def residual_function(problem: Problem):
    """``(residual(x), jacobian(x), const)``: jit-compiled NumPy-returning functions with
    ``problem.nll(x) == 0.5 * sum(residual(x)**2) + const``; cached per problem."""
    c = _compiled(problem)
    return (lambda x: np.asarray(c.res(jnp.asarray(x, dtype=jnp.float64))),
            lambda x: np.asarray(c.jac(jnp.asarray(x, dtype=jnp.float64))), c.const)


def _compiled(problem: Problem) -> _Compiled:
    c = _CACHE.get(problem)
    if c is None:
        def res(x):
            return _residuals(problem, x)

        c = _Compiled(jax.jit(res), jax.jit(jax.jacfwd(res)), _residual_constant(problem))
        _CACHE[problem] = c
    return c


# ----- results --------------------------------------------------------------------------------
def _json_num(v):
    return float(v) if v is not None and math.isfinite(v) else None


@dataclass
class FitResult:
    """Results of :func:`fit`: ``records`` (one dict per start, by start index) with keys
    ``index``, ``x0``, ``x`` (scaled), ``params`` (linear, by id), ``nll``, ``success``,
    ``status``, ``message``, ``iterations``, ``n_evaluations``, ``time_s``."""

    parameter_ids: tuple
    records: list = field(default_factory=list)
    optimizer: str = "trf"
    seed: int = 0
    compile_s: float = 0.0

    @property
    def n_starts(self) -> int:
        return len(self.records)

    @property
    def successful(self) -> list:
        return [r for r in self.records
                if r["success"] and r["nll"] is not None and math.isfinite(r["nll"])]

    @property
    def failed(self) -> list:
        """Starts that gave no finite NLL (a failed simulation, an error)."""
        return [r for r in self.records if r["nll"] is None or not math.isfinite(r["nll"])]

    @property
    def best(self) -> dict | None:
        """The record with the lowest objective: the NLL, or the negative log posterior
        where the problem has objective priors (None if every start failed)."""
        ok = [r for r in self.records if _finite(_objective(r))]
        return min(ok, key=_objective) if ok else None

    @property
    def best_nll(self) -> float:
        b = self.best
        return b["nll"] if b else math.nan

    @property
    def best_x(self) -> np.ndarray | None:
        b = self.best
        return np.asarray(b["x"]) if b else None

    @property
    def best_params(self) -> dict:
        """Linear-scale parameters of the best start, by parameter id."""
        b = self.best
        return dict(b["params"]) if b else {}

    @property
    def n_converged(self) -> int:
        """Starts whose NLL is within 1.92 of the best."""
        b = self.best
        if b is None:
            return 0
        top = _objective(b)
        return sum(1 for r in self.records
                   if _finite(_objective(r)) and _objective(r) <= top + CONVERGED_DELTA)

    # ----- the result protocol -----
    def to_dict(self) -> dict:
        """A JSON-ready dict: the summary (``best_nll``, ``best_params``, ``n_starts``,
        ``n_converged``) and one record per start under ``starts``."""
        return {"best_nll": _json_num(self.best_nll), "best_params": self.best_params,
                "n_starts": self.n_starts, "n_converged": self.n_converged,
                "optimizer": self.optimizer, "seed": self.seed,
                "compile_s": float(self.compile_s),
                "parameter_ids": list(self.parameter_ids),
                "starts": [_record_json(r) for r in self.records]}

    @classmethod
    def from_dict(cls, data) -> FitResult:
        """The result of :meth:`to_dict` (also a fit's ``result.json``)."""
        return cls(tuple(data["parameter_ids"]), [_record_from_json(r) for r in data["starts"]],
                   str(data.get("optimizer", "trf")), int(data.get("seed", 0)),
                   float(data.get("compile_s", 0.0)))

    def to_pandas(self):
        """One row per start (index ``start``): objective, NLL, success, iterations, time
        and the linear parameter values."""
        import pandas as pd

        rows = [{"start": r["index"], "nll": _nan(r["nll"]), "objective": _nan(_objective(r)),
                 "success": r["success"], "iterations": r.get("iterations"),
                 "time_s": r.get("time_s"), **r.get("params", {})} for r in self.records]
        cols = ["start", "nll", "objective", "success", "iterations", "time_s",
                *self.parameter_ids]
        return pd.DataFrame(rows, columns=cols).set_index("start")

    def plot(self, ax=None):
        """The waterfall plot: sorted final objectives (minus the best, plus 1, on a log
        axis) with the convergence threshold; draws into ``ax`` (a new figure if None) and
        returns it."""
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(5, 3.5))
        vals = sorted(_objective(r) for r in self.records if _finite(_objective(r)))
        if vals:
            best = vals[0]
            d = np.asarray(vals) - best + 1.0
            ax.plot(np.arange(1, len(vals) + 1), d, "o-", ms=4)
            ax.axhline(1.0 + CONVERGED_DELTA, color="grey", ls="--", lw=0.8,
                       label=f"best + {CONVERGED_DELTA}")
            ax.set_yscale("log")
            ax.legend(loc="upper left")
            ax.set_title(f"{self.n_converged}/{self.n_starts} starts converged, "
                         f"best NLL {best:.4f}")
        ax.set_xlabel("start (sorted)")
        ax.set_ylabel("NLL - best NLL + 1")
        return ax

    def __repr__(self):
        return (f"FitResult(optimizer={self.optimizer!r}, n_starts={self.n_starts}, "
                f"best_nll={self.best_nll:.6g}, n_converged={self.n_converged})")


def _objective(r: dict):
    """What a start minimised: ``objective`` (with priors) or ``nll``."""
    v = r.get("objective", r["nll"])
    return math.nan if v is None else v


def _finite(v) -> bool:
    return v is not None and math.isfinite(v)


def _nan(v) -> float:
    return math.nan if v is None else float(v)


def _record_from_json(r: dict) -> dict:
    r = dict(r)
    r["nll"] = _nan(r.get("nll"))
    if "objective" in r:
        r["objective"] = _nan(r["objective"])
    for k in ("x0", "x"):
        if r.get(k) is not None:
            r[k] = np.asarray([_nan(v) for v in r[k]])
    return r


def _record_json(r: dict) -> dict:
    out = dict(r)
    out["x0"] = [_json_num(float(v)) for v in r["x0"]]
    out["x"] = [_json_num(float(v)) for v in r["x"]] if r["x"] is not None else None
    out["nll"] = _json_num(r["nll"])
    if "objective" in r:
        out["objective"] = _json_num(r["objective"])
    return out


def _load_previous(run) -> dict:
    """{index: record} of the earlier call into the run directory ``run``."""
    data = read_json(run.file(RESULT_FILE), FORMAT, "fit results")
    if data is None:
        return {}
    run.check(data, RESULT_FILE, records_key="starts")
    try:
        recs = [_record_from_json(r) for r in data["starts"]]
        return {int(r["index"]): r for r in recs}
    except (KeyError, TypeError, ValueError):
        raise InputError(f"{run.file(RESULT_FILE)}: the fit results are damaged; use restart "
                         "(--restart) to start over, or another out directory") from None


# ----- one start ------------------------------------------------------------------------------
class _Failed(Exception):
    pass


def least_squares(residuals: Callable, jacobian: Callable, x0, lower, upper, *,
                  max_evaluations: int, x_scale="jac", tolerances=(1e-8, 1e-8, 1e-8)):
    """The local least-squares solver of ``infer``: trust-region reflective
    (:func:`scipy.optimize.least_squares`, ``method="trf"``; Branch, Coleman & Li 1999) on
    ``residuals(x)`` with ``jacobian(x)`` inside the bounds ``lower``/``upper``. ``fit``
    runs it from each start (``optimizer="trf"``); reaction-diffusion discovery and the
    two-variable cell surrogate fit their residual problems with it. ``tolerances``:
    ``(ftol, xtol, gtol)``. Returns scipy's result."""
    from scipy.optimize import least_squares as trf

    ftol, xtol, gtol = tolerances
    return trf(residuals, np.asarray(x0, dtype=float), jac=jacobian, bounds=(lower, upper),
               method="trf", x_scale=x_scale, max_nfev=int(max_evaluations), ftol=ftol,
               xtol=xtol, gtol=gtol)


def _run_trf(problem, c: _Compiled, x0, lo, hi, max_iter):
    n_eval = [0]

    def fun(x):
        n_eval[0] += 1
        try:
            r = np.asarray(c.res(jnp.asarray(x)))
        except Exception as exc:
            if n_eval[0] == 1:
                raise _Failed(f"simulation failed at the start point: {_first_line(exc)}") \
                    from None
            r = None
        if r is None or not np.all(np.isfinite(r)):
            if n_eval[0] == 1:
                raise _Failed("residuals are not finite at the start point")
            return np.full(c.const_size, _BAD_COST)
        c.const_size = r.size
        return r

    def jac(x):
        try:
            J = np.asarray(c.jac(jnp.asarray(x)))
        except Exception as exc:
            raise _Failed(f"Jacobian failed: {_first_line(exc)}") from None
        if not np.all(np.isfinite(J)):
            raise _Failed("Jacobian is not finite")
        return J

    sol = least_squares(fun, jac, x0, lo, hi, max_evaluations=max_iter,
                        tolerances=(1e-10, 1e-10, 1e-8))
    return dict(x=sol.x, success=bool(sol.status > 0), status=int(sol.status),
                message=str(sol.message), iterations=int(sol.njev or 0),
                n_evaluations=int(sol.nfev))


def _guarded(fun, n: int):
    """``fun`` returning (value, gradient, matrix) with NaNs where it fails, except at the
    first call (a start point that cannot be simulated is a failed start)."""
    calls = [0]

    def g(x):
        calls[0] += 1
        try:
            v, gr, H = fun(x)
            ok = math.isfinite(v) and np.all(np.isfinite(gr)) and np.all(np.isfinite(H))
        except Exception as exc:
            if calls[0] == 1:
                raise _Failed(f"simulation failed at the start point: {_first_line(exc)}") \
                    from None
            ok = False
        if not ok:
            if calls[0] == 1:
                raise _Failed("NLL, gradient or Fisher information is not finite at the "
                              "start point")
            return math.nan, np.full(n, math.nan), np.full((n, n), math.nan)
        return v, gr, H

    return g, calls


def local_minimize(fun, x0, lower, upper, *, max_iter: int = 500) -> dict:
    """Minimise ``fun(x) -> (value, gradient, hessian_approximation)`` within bounds from
    ``x0`` with Fides (Fröhlich & Sorger 2022, PLoS Comput Biol 18: e1010322): an interior
    trust-region method for bound constraints (Coleman & Li 1996) with a 2D subspace and
    truncated step-back at the bounds. Failed evaluations (NaN) shrink the trust region. It
    stops when an accepted step lowers the value by less than 1e-10 relative (Fides'
    default 1e-8 stopped Boehm starts up to 2e-4 above the optimum, in its flat valley).

    Returns ``x``, ``nll``, ``success``, ``status`` (Fides exit flag), ``message``,
    ``iterations``, ``n_evaluations``. Raises :class:`_Failed` when ``fun`` fails at ``x0``.
    """
    import logging

    import fides

    x0 = np.asarray(x0, float)
    g, calls = _guarded(fun, x0.size)
    opt = fides.Optimizer(g, ub=np.asarray(upper, float), lb=np.asarray(lower, float),
                          verbose=logging.ERROR,
                          options={fides.Options.MAXITER: int(max_iter),
                                   fides.Options.STEPBACK_STRAT: "truncate",
                                   fides.Options.FRTOL: 1e-10, fides.Options.FATOL: 0.0})
    try:
        fval, x, _, _ = opt.minimize(x0)
    except RuntimeError as exc:  # non-finite values at an accepted point
        if not math.isfinite(getattr(opt, "fval_min", math.inf)):
            raise _Failed(f"optimizer stopped: {_first_line(exc)}") from None
        fval, x = opt.fval_min, opt.x_min
    flag = opt.exitflag
    ok = flag in (fides.ExitFlag.FTOL, fides.ExitFlag.XTOL, fides.ExitFlag.GTOL)
    return dict(x=np.asarray(x, float), nll=float(fval), success=bool(ok),
                status=int(flag.value), message=str(flag.name),
                iterations=int(opt.iteration), n_evaluations=int(calls[0]))


def bounded_minimize(value_and_grad: Callable, x0, lower, upper, *, max_iter: int,
                     ftol: float | None = None, gtol: float | None = None):
    """The local quasi-Newton solver of ``infer``: L-BFGS-B (Byrd, Lu, Nocedal & Zhu 1995;
    :func:`scipy.optimize.minimize`) on ``value_and_grad(x) -> (value, gradient)`` inside
    the bounds. ``fit`` runs it from each start (``optimizer="lbfgs"``) and Bayesian
    optimisation polishes its acquisition maxima with it. ``ftol``/``gtol``: scipy's
    defaults when None. Returns scipy's result."""
    from scipy.optimize import minimize

    options = {"maxiter": int(max_iter)}
    options.update({k: v for k, v in (("ftol", ftol), ("gtol", gtol)) if v is not None})
    return minimize(value_and_grad, np.asarray(x0, dtype=float), jac=True, method="L-BFGS-B",
                    bounds=list(zip(lower, upper, strict=True)), options=options)


def _run_lbfgs(problem, x0, lo, hi, max_iter):
    n_eval = [0]

    def fg(x):
        n_eval[0] += 1
        try:
            v, g, _ = problem.objective_grad_hess(x)
        except Exception as exc:
            if n_eval[0] == 1:
                raise _Failed(f"simulation failed at the start point: {_first_line(exc)}") \
                    from None
            return 1e20, np.zeros_like(x)
        if not (math.isfinite(v) and np.all(np.isfinite(g))):
            if n_eval[0] == 1:
                raise _Failed("NLL or gradient is not finite at the start point")
            return 1e20, np.zeros_like(x)
        return v, g

    sol = bounded_minimize(fg, x0, lo, hi, max_iter=max_iter, ftol=1e-12, gtol=1e-6)
    return dict(x=sol.x, success=bool(sol.success), status=int(sol.status),
                message=str(sol.message), iterations=int(sol.nit),
                n_evaluations=int(sol.nfev))


def minimize_starts(loss: Callable, starts, args, *, max_steps: int, rtol: float = 1e-6,
                    atol: float = 1e-6):
    """The batched local solver of ``infer``: BFGS (Nocedal & Wright 2006, alg. 6.1;
    :class:`optimistix.BFGS`, backtracking line search) on a smooth ``loss(u, args)``
    from each of the stacked ``starts`` (a pytree whose leaves have a leading start axis)
    in unconstrained coordinates, all inside one traced call: callers compile it (Gaussian
    processes run their hyperparameter restarts with it). Starts run one after the other
    (``lax.map``), so each stops at its own convergence, where a ``vmap`` would run every
    start as long as the slowest. ``fit`` does not offer it: bounded likelihoods mapped
    to unconstrained coordinates trap starts at the bounds (docs/decisions/0019).

    Returns the stacked optima and their losses."""
    import optimistix as optx

    solver = optx.BFGS(rtol=rtol, atol=atol)

    def one(start):
        sol = optx.minimise(loss, solver, start, args=args, max_steps=int(max_steps),
                            throw=False)
        return sol.value, loss(sol.value, args)

    return jax.lax.map(one, starts)


def _first_line(exc) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _one_start(problem, c, optimizer, index, x0, lo, hi, max_iter) -> dict:
    t0 = time.perf_counter()
    rec = dict(index=int(index), x0=[float(v) for v in x0], x=None, params=None,
               nll=math.nan, success=False, status=-99, message="", iterations=0,
               n_evaluations=0, time_s=0.0)
    try:
        if optimizer == "fides":
            out = local_minimize(problem.objective_grad_hess, x0, lo, hi, max_iter=max_iter)
            out.pop("nll")
        elif optimizer == "trf":
            out = _run_trf(problem, c, x0, lo, hi, max_iter)
        else:
            out = _run_lbfgs(problem, x0, lo, hi, max_iter)
        x = np.asarray(out.pop("x"), dtype=float)
        nll = problem.nll(x)
        rec.update(out)
        rec["x"] = [float(v) for v in x]
        rec["params"] = problem.space.as_dict(x)
        rec["nll"] = float(nll)
        if problem.space.has_priors:  # what was minimised: the negative log posterior
            rec["objective"] = float(nll - problem.log_prior(x))
        if not math.isfinite(nll):
            rec["success"] = False
            rec["message"] = f"final NLL is {nll}; {rec['message']}"
    except _Failed as exc:
        rec["message"] = str(exc)
    except Exception as exc:  # a failed simulation must not stop the other starts
        rec["message"] = f"failed: {_first_line(exc)}"
    rec["time_s"] = time.perf_counter() - t0
    return rec


# ----- the driver -----------------------------------------------------------------------------
def _start_task(problem, optimizer, index, x0, lo, hi, max_iter) -> dict:
    """One start, as shipped to an executor (``problem`` is the shared object)."""
    return _one_start(problem, _compiled(problem), optimizer, index, np.asarray(x0), lo, hi,
                      max_iter)


def _warm_up(problem: Problem, optimizer: str, x) -> float:
    """Compile the objective of ``optimizer`` (once per problem); return the seconds taken."""
    c = _compiled(problem)
    if optimizer in c.warm:
        return 0.0
    t0 = time.perf_counter()
    try:
        if optimizer == "trf":
            c.const_size = int(np.asarray(c.res(jnp.asarray(x))).size)
            c.jac(jnp.asarray(x)).block_until_ready()
        else:
            problem.nll_grad_fim(x)
    except Exception:  # compiled anyway; the start itself records the failure
        c.const_size = c.const_size or int(sum(g["rows"].size for g in problem._groups) * 2)
    c.warm.add(optimizer)
    return time.perf_counter() - t0


def fit(problem: Problem, *, n_starts: int = 20, seed: int = 0, optimizer: str = "fides",
        out=None, max_iter: int = 500, executor=None,
        progress: Callable | None = None, restart: bool = False) -> FitResult:
    """Multi-start local optimisation of ``problem``; see the module docstring.

    ``max_iter``: iterations per start (``fides``, ``lbfgs``) or function evaluations
    (``trf``). ``executor``: where the starts run: ``None`` (this process), a
    ``"dask://HOST:PORT"`` address, a ``distributed.Client`` or an
    :class:`~scalebridge.runtime.executor.Executor`; results are the same for the same seed.
    ``progress``: a :class:`~scalebridge.Progress`, or any ``progress(done, total,
    **info)``, called after each start that ran (not for starts loaded from ``out``) with
    ``start`` (its index), ``nll`` and ``best_nll`` (so far). ``restart``: start over in
    ``out`` instead of resuming. Returns a :class:`FitResult` of starts
    ``0 .. n_starts - 1``.
    """
    from ..runtime.executor import DaskExecutor, get_executor

    if not isinstance(problem, Problem):
        raise InputError(f"fit needs a scalebridge Problem, got {type(problem).__name__}")
    if optimizer not in OPTIMIZERS:
        raise InputError(f"optimizer {optimizer!r} is unknown; use one of "
                         f"{', '.join(OPTIMIZERS)}")
    if optimizer == "trf" and problem.space.has_priors:
        raise InputError("optimizer 'trf' works on residuals and cannot include the objective "
                         "priors of this problem; use fides or lbfgs")
    n_starts, seed, max_iter = int(n_starts), int(seed), int(max_iter)
    if n_starts < 1:
        raise InputError(f"n_starts must be >= 1, got {n_starts}")
    if max_iter < 1:
        raise InputError(f"max_iter must be >= 1, got {max_iter}")
    lo, hi = np.asarray(problem.lower, float), np.asarray(problem.upper, float)
    starts = problem.space.start_points(n_starts, seed)
    # interior-point methods need strictly feasible start points
    span = hi - lo
    starts = np.clip(starts, lo + 1e-10 * span, hi - 1e-10 * span)

    run = None if out is None else open_run(
        out, "fit", inputs=problem.fingerprint(), seed=seed, restart=restart,
        results=(RESULT_FILE, "waterfall.png", "fit.png"),
        settings=dict(seed=seed, optimizer=optimizer, max_iter=max_iter,
                      lhs_block=LHS_BLOCK))
    records = _load_previous(run) if run is not None else {}
    result = FitResult(tuple(problem.parameter_ids), optimizer=optimizer, seed=seed)

    def save():
        if run is None:
            return
        allr = FitResult(result.parameter_ids, [records[k] for k in sorted(records)],
                         optimizer, seed)
        data = {"format": FORMAT, "format_version": FORMAT_VERSION, **allr.to_dict()}
        write_json(run.file(RESULT_FILE), run.stamp(data, records_key="starts"))

    todo = [i for i in range(n_starts)
            if not (i in records and np.allclose(records[i]["x0"], starts[i], rtol=0,
                                                 atol=1e-12))]
    ex = get_executor(executor)
    try:
        if todo and not isinstance(ex, DaskExecutor):  # compile once, before any thread
            result.compile_s = _warm_up(problem, optimizer, starts[todo[0]])
        tasks = [(optimizer, i, starts[i], lo, hi, max_iter) for i in todo]
        for _, rec in ex.map(_start_task, tasks, shared=problem):
            records[rec["index"]] = rec
            save()
            if progress is not None:
                done = [records[i]["nll"] for i in range(n_starts) if i in records]
                good = [v for v in done if v is not None and math.isfinite(v)]
                progress(len(done), n_starts, start=rec["index"], nll=rec["nll"],
                         best_nll=min(good) if good else math.nan)
    finally:
        if ex is not executor:
            ex.close()
    result.records = [records[i] for i in range(n_starts)]
    return result
