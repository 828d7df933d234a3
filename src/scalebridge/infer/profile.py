"""Profile likelihoods and Fisher-information confidence intervals of a fitted
:class:`~scalebridge.infer.problem.Problem`.

``profile(problem, x_opt)`` computes, for each chosen parameter ``x_i``, the profile
``PL(c) = min_{x: x_i = c} nll(x)`` on a grid that walks from the optimum towards each bound
(Raue et al. 2009, Bioinformatics 25: 1923; Murphy & van der Vaart 2000, JASA 95: 449). By
Wilks' theorem ``2 (PL(c) - nll_opt)`` is asymptotically chi-squared with one degree of
freedom, so the pointwise ``alpha`` confidence interval of ``x_i`` is
``{c: PL(c) - nll_opt <= chi2.ppf(alpha, 1) / 2}`` (1.92 for 95%). The interval ends are
found by linear interpolation where the profile crosses that threshold; a side where the
profile reaches the parameter bound without crossing is open, and the parameter is flagged
*practically non-identifiable* on that side (a profile that stays flat is structurally
non-identifiable, which the profile alone cannot tell apart from practical
non-identifiability within bounds).

The walk (per direction, until ``PL - nll_opt > threshold + margin``, the bound, or
``max_steps``): fix ``x_i`` at the next grid value, start the other parameters from a
first-order predictor (the Fisher-information tangent ``dz/dx_i = -F_zz^+ F_zi`` at the
first step, the secant of the last two points afterwards) and re-optimise them with
:func:`~scalebridge.infer.fit.local_minimize` (Fides, with the reduced NLL, gradient and
Fisher information of :meth:`Problem.nll_grad_fim`). The step is adaptive as in Raue et
al. (2009) and pyPESTO: it is chosen so that the NLL rises by about ``target_delta`` per
step, from the profile's slope (the gradient component ``g_i`` at the re-optimised point,
by the envelope theorem) and curvature (the Schur complement
``F_ii - F_iz F_zz^+ F_zi`` of the Fisher information), kept within ``min_step`` and
``max_step`` times the parameter's bound span, and halved (retried) when a step overshoots
``2 target_delta``. A point whose NLL is lower than ``nll_opt`` by more than
:data:`BETTER_TOL` means ``x_opt`` was not the optimum: that profile stops and records
``better_optimum`` (its ``x``); :func:`profile` warns. Refit from that point and profile
again.

Each parameter is one task of an executor (``executor=None``: this process;
``"dask://HOST:PORT"``: a Dask cluster). With ``out=DIR`` the profiles are written to
``DIR/profiles.json`` (atomically, after each parameter); a later call with the same
directory (a run directory, :mod:`scalebridge.runtime.run`), problem content, ``x_opt``,
``alpha`` and settings loads the finished parameters and profiles only the missing ones;
after any change it stops with an error naming what changed, unless ``restart=True``.

:func:`fisher_intervals` gives the Wald intervals ``x_i +- z se_i`` from the inverse Fisher
information (or a finite-difference Hessian) at the optimum: cheap, but symmetric on the
scaled axis, blind to bounds and exact only for models linear in the parameters.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError, SimulationError
from ..runtime.files import read_json, write_json
from ..runtime.run import open_run
from .fit import FitResult, _Failed, _first_line, local_minimize
from .problem import Problem
from .space import scaled_to_linear

__all__ = ["profile", "ProfileResult", "ParameterProfile", "fisher_intervals",
           "profile_threshold", "BETTER_TOL"]

RESULT_FILE = "profiles.json"
FORMAT = "scalebridge-profile"
FORMAT_VERSION = 1
BETTER_TOL = 1e-3  # a profile point this much below nll_opt means x_opt was not the optimum
IDENTIFIABLE = "identifiable"
_STOP_OPEN = "bound"  # the side reached the parameter bound below the threshold


def profile_threshold(alpha: float = 0.95) -> float:
    """``chi2.ppf(alpha, 1) / 2``: the NLL rise that bounds a pointwise ``alpha`` confidence
    interval (1.92 for 0.95)."""
    from scipy.stats import chi2

    return float(chi2.ppf(alpha, 1) / 2)


def _to_lin(v, scale: str):
    """A scaled value on the linear scale (None stays None; overflow gives inf)."""
    return None if v is None else float(scaled_to_linear([v], [scale])[0])


def _num(v):
    """A JSON number (None for None, NaN and infinities)."""
    return float(v) if v is not None and math.isfinite(v) else None


def _span(lo: float, hi: float, x: float) -> float:
    """The bound span of a parameter; ``10 max(1, |x|)`` when a bound is infinite."""
    return hi - lo if math.isfinite(hi - lo) else 10.0 * max(1.0, abs(x))


# ----- results --------------------------------------------------------------------------------
@dataclass
class ParameterProfile:
    """The profile of one parameter.

    ``values``: grid of the parameter on its scale (ascending); ``nll``: profile NLL there;
    ``xs``: the re-optimised full parameter vector (scaled) at each point; ``success``:
    whether the re-optimisation converged; ``stop``: why the walk stopped on each side
    (``"threshold"``, ``"bound"``, ``"max_steps"``, ``"failed"`` or ``"better_optimum"``);
    ``better_optimum``: ``{"x", "nll"}`` of a point below ``nll_opt - BETTER_TOL``, or None.
    """

    parameter: str
    index: int
    scale: str
    x_opt: float
    values: np.ndarray
    nll: np.ndarray
    xs: np.ndarray
    success: np.ndarray
    stop: dict
    nll_opt: float
    threshold: float
    n_evaluations: int = 0
    time_s: float = 0.0
    better_optimum: dict | None = None

    @property
    def delta(self) -> np.ndarray:
        """``nll - nll_opt`` at the grid values."""
        return self.nll - self.nll_opt

    @property
    def ratio(self) -> np.ndarray:
        """The likelihood ratio ``exp(-(nll - nll_opt))``."""
        return np.exp(-self.delta)

    def _crossing(self, side: str) -> float | None:
        """Where the profile first crosses the threshold walking outward from ``x_opt``."""
        v, d = self.values, self.delta
        if v.size == 0:
            return None
        c = int(np.argmin(np.abs(v - self.x_opt)))
        order = range(c - 1, -1, -1) if side == "lower" else range(c + 1, v.size)
        prev = c
        for j in order:
            if d[j] > self.threshold >= d[prev]:
                t = (self.threshold - d[prev]) / (d[j] - d[prev])
                return float(v[prev] + t * (v[j] - v[prev]))
            prev = j
        return None

    @property
    def ci_lower(self) -> float | None:
        """Lower end of the confidence interval (scaled; None: open, no crossing)."""
        return self._crossing("lower")

    @property
    def ci_upper(self) -> float | None:
        """Upper end of the confidence interval (scaled; None: open, no crossing)."""
        return self._crossing("upper")

    @property
    def ci_lin(self) -> tuple:
        """The confidence interval on the linear scale (None for an open end)."""
        return (_to_lin(self.ci_lower, self.scale), _to_lin(self.ci_upper, self.scale))

    @property
    def identifiable(self) -> str:
        """``"identifiable"`` (both ends found), ``"practically non-identifiable (lower|upper|
        both)"`` (the profile reached the bound on that side below the threshold), or, when a
        side stopped for another reason, ``"inconclusive (...)"``."""
        if self.better_optimum is not None:
            return "inconclusive (better optimum found)"
        open_, other = [], []
        for side, ci in (("lower", self.ci_lower), ("upper", self.ci_upper)):
            if ci is None:
                reason = self.stop.get(side, "")
                (open_ if reason == _STOP_OPEN else other).append((side, reason))
        if not open_ and not other:
            return IDENTIFIABLE
        parts = []
        if open_:
            which = "both" if len(open_) == 2 else open_[0][0]
            parts.append(f"practically non-identifiable ({which})")
        if other:
            parts.append("inconclusive (" + ", ".join(f"{s}: {r}" for s, r in other) + ")")
        return "; ".join(parts)

    def to_dict(self) -> dict:
        """JSON-ready: the profile points and the derived interval and flag."""
        lo_lin, hi_lin = self.ci_lin
        return {"parameter": self.parameter, "index": self.index, "scale": self.scale,
                "x_opt": float(self.x_opt), "values": [float(v) for v in self.values],
                "nll": [float(v) for v in self.nll],
                "xs": [[float(v) for v in row] for row in self.xs],
                "success": [bool(s) for s in self.success], "stop": dict(self.stop),
                "n_evaluations": int(self.n_evaluations), "time_s": float(self.time_s),
                "better_optimum": self.better_optimum,
                "ci_lower": _num(self.ci_lower), "ci_upper": _num(self.ci_upper),
                "ci_lower_lin": _num(lo_lin), "ci_upper_lin": _num(hi_lin),
                "identifiable": self.identifiable}

    @classmethod
    def from_dict(cls, d: dict, nll_opt: float, threshold: float) -> ParameterProfile:
        n = len(d["values"])
        xs = np.asarray(d["xs"], float).reshape(n, -1) if n else np.zeros((0, 0))
        return cls(d["parameter"], int(d["index"]), d["scale"], float(d["x_opt"]),
                   np.asarray(d["values"], float), np.asarray(d["nll"], float), xs,
                   np.asarray(d["success"], bool), dict(d["stop"]), float(nll_opt),
                   float(threshold), int(d.get("n_evaluations", 0)),
                   float(d.get("time_s", 0.0)), d.get("better_optimum"))

    def __repr__(self):
        return (f"ParameterProfile({self.parameter!r}, points={self.values.size}, "
                f"ci=({self.ci_lower}, {self.ci_upper}), {self.identifiable!r})")


@dataclass
class ProfileResult:
    """Profiles of some parameters around one optimum; see the module docstring.

    ``profiles``: ``{parameter id: ParameterProfile}`` in the order profiled;
    ``problem_ids``: all estimated parameters (the columns of each profile's ``xs``).
    """

    problem_ids: tuple
    x_opt: np.ndarray
    nll_opt: float
    alpha: float
    profiles: dict = field(default_factory=dict)

    @property
    def threshold(self) -> float:
        return profile_threshold(self.alpha)

    @property
    def parameter_ids(self) -> tuple:
        return tuple(self.profiles)

    def __getitem__(self, pid: str) -> ParameterProfile:
        return self.profiles[pid]

    @property
    def better_optimum(self) -> dict | None:
        """``{"parameter", "x", "nll"}`` of the lowest point below ``nll_opt - BETTER_TOL``
        found by any profile, or None."""
        best = None
        for pid, p in self.profiles.items():
            b = p.better_optimum
            if b is not None and (best is None or b["nll"] < best["nll"]):
                best = {"parameter": pid, **b}
        return best

    def summary(self):
        """One row per parameter: optimum, confidence interval (scaled and linear), flag."""
        import pandas as pd

        rows = []
        for pid, p in self.profiles.items():
            lo_lin, hi_lin = p.ci_lin
            nan = math.nan
            rows.append({
                "parameter": pid, "scale": p.scale, "estimate": p.x_opt,
                "ci_lower": nan if p.ci_lower is None else p.ci_lower,
                "ci_upper": nan if p.ci_upper is None else p.ci_upper,
                "value_lin": _to_lin(p.x_opt, p.scale),
                "ci_lower_lin": nan if lo_lin is None else lo_lin,
                "ci_upper_lin": nan if hi_lin is None else hi_lin,
                "identifiable": p.identifiable, "points": int(p.values.size),
                "stop_lower": p.stop.get("lower"), "stop_upper": p.stop.get("upper"),
                "time_s": p.time_s})
        return pd.DataFrame(rows).set_index("parameter")

    def to_dict(self) -> dict:
        """JSON-ready; what ``DIR/profiles.json`` of a run holds (with its run key)."""
        return {"alpha": self.alpha, "threshold": self.threshold,
                "nll_opt": float(self.nll_opt), "x_opt": [float(v) for v in self.x_opt],
                "problem_ids": list(self.problem_ids),
                "better_optimum": self.better_optimum,
                "profiles": {k: p.to_dict() for k, p in self.profiles.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> ProfileResult:
        """The result of :meth:`to_dict` (e.g. ``DIR/profiles.json``)."""
        alpha, nll_opt = float(data["alpha"]), float(data["nll_opt"])
        thr = profile_threshold(alpha)
        return cls(tuple(data["problem_ids"]), np.asarray(data["x_opt"], float), nll_opt,
                   alpha, {k: ParameterProfile.from_dict(v, nll_opt, thr)
                           for k, v in data["profiles"].items()})

    def to_pandas(self):
        """The profile points, one row each: ``parameter``, ``value`` (scaled), ``nll``,
        ``delta`` (``nll - nll_opt``) and ``success``."""
        import pandas as pd

        cols = ["parameter", "value", "nll", "delta", "success"]
        return pd.DataFrame([(pid, v, f, f - self.nll_opt, bool(ok))
                             for pid, p in self.profiles.items()
                             for v, f, ok in zip(p.values, p.nll, p.success, strict=True)],
                            columns=cols)

    def plot(self, ax=None, *, kind: str = "delta"):
        """One panel per parameter: the profile (``kind="delta"``: ``nll - nll_opt``;
        ``"ratio"``: likelihood ratio ``exp(-(nll - nll_opt))``) against the scaled
        parameter, the threshold (dashed), the optimum (red dot) and the confidence
        interval (shaded; an open side is shaded to the end of the profile). ``ax``: one
        Axes per profiled parameter (a new figure with a grid of panels if None); returns
        the array of axes."""
        if kind not in ("delta", "ratio"):
            raise InputError(f"kind must be 'delta' or 'ratio', got {kind!r}")
        n = max(1, len(self.profiles))
        if ax is None:
            import matplotlib.pyplot as plt

            ncols = min(3, n)
            nrows = math.ceil(n / ncols)
            fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows),
                                     squeeze=False)
            fig.suptitle(f"profile likelihoods, {100 * self.alpha:g}% threshold "
                         f"(NLL optimum {self.nll_opt:.4f})", fontsize=10)
        else:
            axes = np.atleast_2d(np.asarray(ax, dtype=object))
            if axes.size < len(self.profiles):
                raise InputError(f"ax: {len(self.profiles)} profiles need as many axes, got "
                                 f"{axes.size}")
        thr = self.threshold
        for a, (pid, p) in zip(axes.flat, self.profiles.items(), strict=False):
            y = p.delta if kind == "delta" else p.ratio
            a.plot(p.values, y, ".-", ms=3, lw=1)
            a.axhline(thr if kind == "delta" else math.exp(-thr), color="grey", ls="--",
                      lw=0.8)
            a.plot([p.x_opt], [0.0 if kind == "delta" else 1.0], "o", color="C3", ms=5)
            if p.values.size:
                lo = p.ci_lower if p.ci_lower is not None else p.values.min()
                hi = p.ci_upper if p.ci_upper is not None else p.values.max()
                a.axvspan(lo, hi, color="C0", alpha=0.12, lw=0)
            if kind == "delta":
                top = max(1.5 * thr, min(float(np.max(y, initial=0.0)), 3 * thr) + 0.1)
                a.set_ylim(min(-0.05 * thr, float(np.min(y, initial=0.0))), top)
            else:
                a.set_ylim(-0.02, 1.05)
            a.set_xlabel(pid if p.scale == "lin" else f"{p.scale}({pid})")
            a.set_ylabel("NLL - optimum" if kind == "delta" else "likelihood ratio")
            flag = p.identifiable
            a.set_title(flag if len(flag) < 45 else flag[:42] + "...", fontsize=8)
        if ax is None:
            for a in list(axes.flat)[len(self.profiles):]:
                a.set_visible(False)
        return axes

    def __repr__(self):
        flags = ", ".join(f"{k}: {p.identifiable}" for k, p in self.profiles.items())
        return f"ProfileResult(nll_opt={self.nll_opt:.6g}, alpha={self.alpha}, {flags})"


# ----- one parameter --------------------------------------------------------------------------
class _Reduced:
    """``fun(z) -> (nll, grad_z, fim_zz)`` of the other parameters ``z`` with ``x_i`` fixed;
    keeps the full NLL, gradient and Fisher information of its lowest evaluation."""

    def __init__(self, problem: Problem, i: int, x: np.ndarray):
        self.problem, self.i = problem, i
        self.keep = np.arange(x.size) != i
        self.x = np.array(x, float)
        self.best = None

    def fix(self, xi: float):
        self.x[self.i] = xi
        self.best = None

    def full(self, z) -> np.ndarray:
        x = self.x.copy()
        x[self.keep] = z
        return x

    def __call__(self, z):
        x = self.full(z)
        v, g, f = self.problem.nll_grad_fim(x)
        if math.isfinite(v) and (self.best is None or v < self.best[1]):
            self.best = (x, v, g, f)
        k = self.keep
        return v, g[k], f[np.ix_(k, k)]


def _tangent_and_curvature(g, f, i, keep):
    """Profile slope ``g_i``, curvature (Schur complement of the Fisher information) and the
    first-order path of the other parameters ``dz/dx_i`` at a re-optimised point."""
    fzz = f[np.ix_(keep, keep)]
    fzi = f[keep, i]
    sol = np.linalg.pinv(fzz, rcond=1e-12, hermitian=True) @ fzi if fzi.size else fzi
    curv = max(float(f[i, i] - fzi @ sol), 0.0)
    return float(g[i]), curv, -sol


class _Walker:
    def __init__(self, problem: Problem, i: int, x_opt, nll_opt: float, s: dict):
        self.problem, self.i = problem, i
        self.nll_opt = nll_opt
        self.threshold = profile_threshold(s["alpha"])
        self.s = s
        self.lo, self.hi = np.asarray(problem.lower, float), np.asarray(problem.upper, float)
        self.red = _Reduced(problem, i, np.asarray(x_opt, float))
        keep = self.red.keep
        span = np.array([_span(a, b, x) for a, b, x in zip(self.lo, self.hi, x_opt,
                                                            strict=True)])
        self.span = span
        # strictly inside: Fides is an interior-point method
        self.zlo = self.lo[keep] + 1e-10 * span[keep]
        self.zhi = self.hi[keep] - 1e-10 * span[keep]
        self.h_min = s["min_step"] * span[i]
        self.h_max = s["max_step"] * span[i]
        self.n_eval = 0

    def point(self, xi: float, z0) -> dict:
        """Re-optimise the others at ``x_i = xi`` from ``z0``; raise _Failed if impossible."""
        red = self.red
        red.fix(xi)
        z0 = np.clip(np.asarray(z0, float), self.zlo, self.zhi)
        if z0.size == 0:
            x = red.full(z0)
            try:
                v, g, f = self.problem.nll_grad_fim(x)
            except SimulationError as exc:
                raise _Failed(_first_line(exc)) from None
            self.n_eval += 1
            success = True
        else:
            out = local_minimize(red, z0, self.zlo, self.zhi, max_iter=self.s["max_iter"])
            self.n_eval += out["n_evaluations"]
            x = red.full(out["x"])
            success = out["success"]
            if red.best is not None and np.array_equal(red.best[0], x):
                _, v, g, f = red.best
            else:
                try:
                    v, g, f = self.problem.nll_grad_fim(x)
                except SimulationError as exc:
                    raise _Failed(_first_line(exc)) from None
                self.n_eval += 1
        if not (math.isfinite(v) and np.all(np.isfinite(g)) and np.all(np.isfinite(f))):
            raise _Failed("NLL, gradient or Fisher information is not finite")
        slope, curv, dz = _tangent_and_curvature(g, f, self.i, red.keep)
        return dict(xi=float(xi), x=x, z=x[red.keep], nll=float(v), success=bool(success),
                    slope=slope, curv=curv, dz=dz)

    def _next_step(self, pt: dict, d: int, last: float | None) -> float:
        """Step for an NLL rise of ``target_delta`` from the local quadratic model."""
        t = self.s["target_delta"]
        a = max(d * pt["slope"], 0.0)
        den = a + math.sqrt(a * a + 2.0 * pt["curv"] * t)
        h = 2.0 * t / den if den > 0 else math.inf
        if last is not None:
            h = min(h, 4.0 * last)
        return min(max(h, self.h_min), self.h_max)

    def walk(self, centre: dict, d: int) -> tuple[list, str]:
        """Points from ``centre`` outward in direction ``d`` and the reason it stopped."""
        bound = self.hi[self.i] if d > 0 else self.lo[self.i]
        target, margin = self.s["target_delta"], self.s["margin"]
        pts, prev = [], centre
        h = self._next_step(centre, d, None)
        dz = centre["dz"]
        for _ in range(self.s["max_steps"]):
            room = (bound - prev["xi"]) * d
            if room <= 1e-12 * self.span[self.i]:
                return pts, "bound"
            while True:
                step = min(h, room)
                xi = bound if step == room else prev["xi"] + d * step
                pt = None
                for z0 in (prev["z"] + (xi - prev["xi"]) * dz, prev["z"]):
                    try:
                        pt = self.point(xi, z0)
                        break
                    except _Failed:
                        continue
                if pt is None:
                    if step > self.h_min:
                        h = max(step / 2, self.h_min)
                        continue
                    return pts, "failed"
                rise = pt["nll"] - prev["nll"]
                if rise > 2 * target and step > self.h_min * (1 + 1e-9):
                    h = max(step * min(0.5, math.sqrt(target / rise)), self.h_min)
                    continue
                break
            pts.append(pt)
            if pt["nll"] < self.nll_opt - BETTER_TOL:
                return pts, "better_optimum"
            if pt["nll"] - self.nll_opt > self.threshold + margin:
                return pts, "threshold"
            dz = (pt["z"] - prev["z"]) / (pt["xi"] - prev["xi"])
            h = self._next_step(pt, d, step)
            prev = pt
        return pts, "max_steps"


def _profile_task(problem: Problem, i: int, x_opt, nll_opt: float, settings: dict) -> dict:
    """Profile of parameter ``i`` (an executor task; ``problem`` is the shared object)."""
    t0 = time.perf_counter()
    w = _Walker(problem, i, np.asarray(x_opt, float), float(nll_opt), settings)
    x_opt = np.asarray(x_opt, float)
    stop = {}
    try:
        centre = w.point(x_opt[i], x_opt[w.red.keep])
    except _Failed as exc:
        centre = None
        stop = {"lower": "failed", "upper": "failed", "message": str(exc)}
    lower, upper = [], []
    if centre is not None:
        if centre["nll"] < nll_opt - BETTER_TOL:
            stop = {"lower": "better_optimum", "upper": "better_optimum"}
        else:
            lower, stop["lower"] = w.walk(centre, -1)
            if stop["lower"] == "better_optimum":
                stop["upper"] = "better_optimum"
            else:
                upper, stop["upper"] = w.walk(centre, +1)
    pts = [*lower[::-1], *([centre] if centre is not None else []), *upper]
    better = [p for p in pts if p["nll"] < nll_opt - BETTER_TOL]
    best = min(better, key=lambda p: p["nll"]) if better else None
    scale = problem.space.scales[i]
    return dict(parameter=problem.parameter_ids[i], index=int(i), scale=scale,
                x_opt=float(x_opt[i]), values=[p["xi"] for p in pts],
                nll=[p["nll"] for p in pts], xs=[[float(v) for v in p["x"]] for p in pts],
                success=[p["success"] for p in pts], stop=stop,
                n_evaluations=int(w.n_eval), time_s=time.perf_counter() - t0,
                better_optimum=None if best is None else
                {"x": [float(v) for v in best["x"]], "nll": float(best["nll"])})


# ----- the driver -----------------------------------------------------------------------------
def _x_opt(problem: Problem, x_opt) -> np.ndarray:
    if x_opt is None:
        x = problem.x_nominal
    elif isinstance(x_opt, FitResult):
        if x_opt.best_x is None:
            raise InputError("the fit result has no start with a finite NLL; nothing to "
                             "profile around")
        x = np.asarray(x_opt.best_x, float)
    else:
        x = np.asarray(x_opt, float)
    n = len(problem.parameter_ids)
    if x.shape != (n,):
        raise InputError(f"x_opt has shape {x.shape}, expected ({n},) for "
                         f"{', '.join(problem.parameter_ids)}")
    if not np.all(np.isfinite(x)):
        raise InputError("x_opt holds non-finite values")
    lo, hi = np.asarray(problem.lower, float), np.asarray(problem.upper, float)
    bad = [pid for pid, v, a, b in zip(problem.parameter_ids, x, lo, hi, strict=True)
           if not a <= v <= b]
    if bad:
        raise InputError(f"x_opt is outside the bounds for {', '.join(bad)}; give the "
                         "optimum of the problem (scaled, within its bounds)")
    return x


def _load_previous(run) -> dict:
    """{parameter id: record} of the earlier call into the run directory ``run``."""
    data = read_json(run.file(RESULT_FILE), FORMAT, "profiles")
    if data is None:
        return {}
    run.check(data, RESULT_FILE, records_key="profiles")
    if not isinstance(data.get("profiles"), dict):
        raise InputError(f"{run.file(RESULT_FILE)}: the profiles are damaged; use restart "
                         "(--restart) to start over, or another out directory")
    return dict(data["profiles"])


def profile(problem: Problem, x_opt=None, *, parameters: Sequence[str] | str | None = None,
            alpha: float = 0.95, target_delta: float = 0.15, min_step: float = 1e-4,
            max_step: float = 0.05, max_steps: int = 100, margin: float = 0.5,
            max_iter: int = 200, executor=None, out=None,
            progress: Callable | None = None, restart: bool = False) -> ProfileResult:
    """Profile likelihoods of ``parameters`` around the optimum ``x_opt``; see the module
    docstring.

    ``x_opt``: the optimum (scaled vector, a :class:`~scalebridge.infer.fit.FitResult`, or
    None for the nominal values). ``parameters``: ids to profile (default: all estimated).
    ``alpha``: confidence level (threshold ``chi2.ppf(alpha, 1) / 2``). ``target_delta``:
    NLL rise aimed at per step. ``min_step``/``max_step``: step bounds as fractions of the
    parameter's bound span. ``max_steps``: steps per direction. ``margin``: how far past the
    threshold each side walks. ``max_iter``: optimiser iterations per point.
    ``executor``: where the parameters run (one task each; see
    :func:`~scalebridge.runtime.executor.get_executor`). ``out``: directory for
    ``profiles.json`` (resumable). ``progress``: a :class:`~scalebridge.Progress`, or any
    ``progress(done, total, **info)``, called after each parameter profiled (not for those
    loaded from ``out``) with ``parameter``, ``identifiable`` and ``profile`` (its
    :class:`ParameterProfile`). ``restart``: start over in ``out`` instead of resuming.
    """
    from ..runtime.executor import get_executor

    if not isinstance(problem, Problem):
        raise InputError(f"profile needs a scalebridge Problem, got {type(problem).__name__}")
    ids = tuple(problem.parameter_ids)
    if parameters is None:
        chosen = list(ids)
    else:
        chosen = [parameters] if isinstance(parameters, str) else list(parameters)
        unknown = [p for p in chosen if p not in ids]
        if unknown:
            raise InputError(f"parameters {', '.join(map(repr, unknown))} are not estimated "
                             f"parameters of the problem; estimated: {', '.join(ids)}")
        chosen = list(dict.fromkeys(chosen))
    alpha = float(alpha)
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be in (0, 1), got {alpha}")
    for name, v in (("target_delta", target_delta), ("min_step", min_step),
                    ("max_step", max_step), ("margin", margin)):
        if not (math.isfinite(v) and v > 0) and not (name == "margin" and v == 0):
            raise InputError(f"{name} must be a positive number, got {v}")
    if min_step > max_step:
        raise InputError(f"min_step ({min_step}) must not exceed max_step ({max_step})")
    if int(max_steps) < 1 or int(max_iter) < 1:
        raise InputError(f"max_steps and max_iter must be >= 1, got {max_steps}, {max_iter}")
    x = _x_opt(problem, x_opt)
    try:  # nll_grad_fim, not nll: the profile needs only this one compiled function
        nll_opt = problem.nll_grad_fim(x)[0]
    except SimulationError as exc:
        raise InputError(f"the model does not simulate at x_opt: {_first_line(exc)}") \
            from None
    if not math.isfinite(nll_opt):
        raise InputError(f"the NLL at x_opt is {nll_opt}; give a point where the model "
                         "simulates")
    settings = dict(alpha=alpha, target_delta=float(target_delta), min_step=float(min_step),
                    max_step=float(max_step), max_steps=int(max_steps), margin=float(margin),
                    max_iter=int(max_iter))
    threshold = profile_threshold(alpha)
    run = None if out is None else open_run(
        out, "profile", inputs=problem.fingerprint(), restart=restart,
        results=(RESULT_FILE, "profiles.png", "fisher_intervals.tsv"),
        settings=dict(x_opt=[float(v) for v in x], **settings))
    records = _load_previous(run) if run is not None else {}

    def save():
        if run is None:
            return
        res = _result(ids, x, nll_opt, alpha, records, list(records))
        data = {"format": FORMAT, "format_version": FORMAT_VERSION, **res.to_dict()}
        write_json(run.file(RESULT_FILE), run.stamp(data, records_key="profiles"))

    todo = [p for p in chosen if p not in records]
    ex = get_executor(executor)
    try:
        tasks = [(ids.index(p), x, nll_opt, settings) for p in todo]
        for _, rec in ex.map(_profile_task, tasks, shared=problem):
            records[rec["parameter"]] = rec
            save()
            if progress is not None:
                pp = ParameterProfile.from_dict(rec, nll_opt, threshold)
                progress(sum(p in records for p in chosen), len(chosen),
                         parameter=pp.parameter, identifiable=pp.identifiable, profile=pp)
    finally:
        if ex is not executor:
            ex.close()
    result = _result(ids, x, nll_opt, alpha, records, chosen)
    b = result.better_optimum
    if b is not None:
        warnings.warn(f"the profile of {b['parameter']} found NLL {b['nll']:.6g}, below the "
                      f"optimum {nll_opt:.6g}: x_opt is not the optimum; refit from "
                      "result.better_optimum['x'] and profile again", stacklevel=2)
    return result


def _result(ids, x, nll_opt, alpha, records, chosen) -> ProfileResult:
    thr = profile_threshold(alpha)
    return ProfileResult(tuple(ids), np.asarray(x, float), float(nll_opt), alpha,
                         {p: ParameterProfile.from_dict(records[p], nll_opt, thr)
                          for p in chosen})


# ----- Fisher information ---------------------------------------------------------------------
def _fd_hessian(problem: Problem, x: np.ndarray, step: float) -> np.ndarray:
    """Central differences of the exact gradient: ``H[:, j] = (g(x + h e_j) -
    g(x - h e_j)) / 2h``, ``h = step max(1, |x_j|)``; symmetrised."""
    n = x.size
    h_mat = np.empty((n, n))
    for j in range(n):
        h = step * max(1.0, abs(x[j]))
        e = np.zeros(n)
        e[j] = h
        gp = problem.nll_grad_fim(x + e)[1]
        gm = problem.nll_grad_fim(x - e)[1]
        h_mat[:, j] = (gp - gm) / (2 * h)
    return 0.5 * (h_mat + h_mat.T)


def fisher_intervals(problem: Problem, x_opt=None, *, alpha: float = 0.95,
                     method: str = "fim", rtol: float = 1e-10, step: float = 1e-4):
    """Wald confidence intervals ``x_i +- z se_i`` (``z = norm.ppf((1 + alpha) / 2)``) on
    the scaled axis, with ``se_i = sqrt((H^+)_ii)``, ``H`` the Fisher information
    (``method="fim"``, the expected Hessian from :meth:`Problem.nll_grad_fim`) or the
    observed Hessian (``"hessian"``: central differences of the exact gradient with relative
    ``step``) at ``x_opt`` (as for :func:`profile`). The pseudo-inverse comes from the
    eigen-decomposition of ``H``; eigenvalues below ``rtol`` times the largest are a null
    space, and a parameter with weight in it (``sum_k V_ik^2 > 1e-6`` over null vectors)
    has infinite variance: ``"non-identifiable (singular ...)"``; one whose interval is
    wider than its bound span is ``"non-identifiable (interval wider than the bounds)"``.
    Negative curvature (``"hessian"`` away from a minimum) is flagged ``"not a minimum"``.
    The intervals ignore the bounds and are exact only for linear models with Gaussian
    noise; compare with :func:`profile`.

    Returns a DataFrame indexed by parameter: ``scale``, ``estimate``, ``se``, ``ci_lower``,
    ``ci_upper`` (scaled), ``value_lin``, ``ci_lower_lin``, ``ci_upper_lin``,
    ``identifiable``.
    """
    import pandas as pd
    from scipy.stats import norm

    if not isinstance(problem, Problem):
        raise InputError(f"fisher_intervals needs a scalebridge Problem, got "
                         f"{type(problem).__name__}")
    if method not in ("fim", "hessian"):
        raise InputError(f"method must be 'fim' or 'hessian', got {method!r}")
    alpha = float(alpha)
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be in (0, 1), got {alpha}")
    x = _x_opt(problem, x_opt)
    _, _, fim = problem.nll_grad_fim(x)
    h = _fd_hessian(problem, x, step) if method == "hessian" else 0.5 * (fim + fim.T)
    if not np.all(np.isfinite(h)):
        raise InputError(f"the {method} at x_opt is not finite; check that the model "
                         "simulates there")
    w, v = np.linalg.eigh(h)
    wmax = max(float(np.max(np.abs(w), initial=0.0)), np.finfo(float).tiny)
    good = w > rtol * wmax
    neg = w < -rtol * wmax
    cov = (v[:, good] / w[good]) @ v[:, good].T
    null_weight = np.sum(v[:, ~good] ** 2, axis=1)
    neg_weight = np.sum(v[:, neg] ** 2, axis=1)
    z = float(norm.ppf(0.5 + alpha / 2))
    what = "FIM" if method == "fim" else "Hessian"
    rows = []
    for k, (pid, scale) in enumerate(zip(problem.parameter_ids, problem.space.scales,
                                         strict=True)):
        span = float(problem.upper[k] - problem.lower[k])
        se = math.sqrt(max(cov[k, k], 0.0))
        if neg_weight[k] > 1e-6:
            se, flag = math.inf, f"not a minimum (negative curvature of the {what})"
        elif null_weight[k] > 1e-6:
            se, flag = math.inf, f"non-identifiable (singular {what})"
        elif 2 * z * se > span:
            flag = "non-identifiable (interval wider than the bounds)"
        else:
            flag = IDENTIFIABLE
        lo, hi = x[k] - z * se, x[k] + z * se
        rows.append({"parameter": pid, "scale": scale, "estimate": float(x[k]), "se": se,
                     "ci_lower": lo, "ci_upper": hi, "value_lin": _to_lin(x[k], scale),
                     "ci_lower_lin": _to_lin(lo, scale), "ci_upper_lin": _to_lin(hi, scale),
                     "identifiable": flag})
    return pd.DataFrame(rows).set_index("parameter")
