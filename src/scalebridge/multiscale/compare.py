"""Full cell model against its surrogate, in single cells and in tissue.

:func:`tissue_run` simulates a monodomain tissue of any cell model by operator splitting and
measures activation, conduction velocity and APD90; :func:`largest_dt` finds the largest
step that keeps a model's conduction velocity within a tolerance of its converged value
(second-order Strang splitting at a small step); :func:`compare_runs` compares two runs of
:func:`tissue_run` (each model at its own largest step, from the same stimulus): the
surrogate's errors and its speed-up; :func:`validate_cell` compares paced single cells
on held-out protocols.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import diffrax
import numpy as np

from ..model.inputs import PulseTrain
from ..model.model import Model
from ..pde.grid import Grid
from ..pde.measure import activation_times, apd, conduction_velocity
from ..pde.models import monodomain
from ..pde.splitting import OperatorSplitting
from ..pde.tissue import Stimulus
from ..simulate import simulate

__all__ = ["tissue_run", "largest_dt", "compare_runs", "validate_cell", "DT_CANDIDATES"]

#: Steps tried by :func:`largest_dt` (model time units), Godunov splitting with Rush-Larsen.
DT_CANDIDATES = (0.005, 0.01, 0.0125, 0.02, 0.025, 0.04, 0.05)


def tissue_run(cell: Model, grid: Grid, *, stimuli: Sequence[Stimulus], D: float, dt: float,
               t_end: float, output_every: float = 0.5, scheme: str = "godunov",
               threshold: float = -40.0, repeats: int = 1) -> dict:
    """Simulate the monodomain tissue of ``cell`` and measure it.

    Returns ``{"V": (n_times, *grid.shape), "times", "activation", "cv", "apd90"
    (first beat per node), "run_s" (best of ``repeats`` runs after compilation),
    "compile_s" (first call minus a run), "steps", "ok"}``.
    """
    model = monodomain(cell, grid, D=D, stimuli=stimuli)
    times = np.arange(0.0, t_end + output_every / 2, output_every)
    solver = OperatorSplitting(dt, scheme=scheme)
    start = time.perf_counter()
    sol = simulate(model, times, solver=solver, throw=False)
    first = time.perf_counter() - start
    runs = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        sol = simulate(model, times, solver=solver, throw=False)
        runs.append(time.perf_counter() - start)
    V = np.asarray(sol.states)[:, :grid.size].reshape(len(times), *grid.shape)
    act = activation_times(V, times, threshold)
    try:
        cv = conduction_velocity(act, grid)
    except Exception:  # no wave: reported as NaN, the caller decides
        cv = float("nan")
    ap = apd(V, times)
    apd90 = ap[..., 0] if ap.shape[-1] else np.full(grid.shape, np.nan)
    return {"V": V, "times": times, "activation": act, "cv": cv, "apd90": apd90, "dt": dt,
            "run_s": min(runs), "compile_s": max(0.0, first - min(runs)),
            "steps": int(np.ceil(t_end / dt)), "ok": bool(np.all(np.isfinite(V)))}


def largest_dt(cell: Model, grid: Grid, *, stimuli, D: float, t_end: float,
               candidates: Sequence[float] = DT_CANDIDATES, tolerance: float = 0.01,
               reference_dt: float = 0.0025, output_every: float = 0.25,
               threshold: float = -40.0) -> dict:
    """The largest step in ``candidates`` whose conduction velocity (Godunov splitting,
    Rush-Larsen) lies within ``tolerance`` of the converged one (Strang splitting at
    ``reference_dt``), with every smaller candidate within it too.

    Returns ``{"dt", "reference_cv", "cv": {dt: cv}}``; ``dt`` is None when even the
    smallest candidate misses.
    """
    kw = dict(stimuli=stimuli, D=D, t_end=t_end, output_every=output_every,
              threshold=threshold)
    ref = tissue_run(cell, grid, dt=reference_dt, scheme="strang", **kw)["cv"]
    cvs, best = {}, None
    for dt in sorted(candidates):
        if dt > output_every:
            break
        cv = tissue_run(cell, grid, dt=dt, **kw)["cv"]
        cvs[float(dt)] = float(cv)
        if not (np.isfinite(cv) and abs(cv / ref - 1) <= tolerance):
            break
        best = float(dt)
    return {"dt": best, "reference_cv": float(ref), "cv": cvs}


def _rmse(a, b):
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.sqrt(np.mean((a[ok] - b[ok]) ** 2))) if ok.any() else float("nan")


def compare_runs(a: dict, b: dict, *, full_states: int, surrogate_states: int) -> dict:
    """The surrogate's run ``b`` against the full model's run ``a`` (both from
    :func:`tissue_run` on the same grid and stimuli): its errors and its speed-up, split
    into the ratio of step counts and the ratio of costs per step."""
    apd_err = np.abs(b["apd90"] / a["apd90"] - 1)

    def side(r, states):
        return {"dt": r["dt"], "cv": r["cv"], "run_s": r["run_s"], "compile_s": r["compile_s"],
                "steps": r["steps"], "apd90_mean": float(np.nanmean(r["apd90"])),
                "states": states}

    return {
        "speedup": a["run_s"] / b["run_s"],
        "cv_error_percent": 100 * abs(b["cv"] / a["cv"] - 1),
        "activation_rmse_ms": _rmse(b["activation"], a["activation"]),
        "apd_error_percent": 100 * float(np.nanmean(apd_err)),
        "apd_error_max_percent": 100 * float(np.nanmax(apd_err)),
        "speedup_from_steps": a["steps"] / b["steps"],
        "speedup_per_step": (a["run_s"] / a["steps"]) / (b["run_s"] / b["steps"]),
        "nodes_activated": int(np.sum(np.isfinite(a["activation"])
                                      & np.isfinite(b["activation"]))),
        "full": side(a, full_states), "surrogate": side(b, surrogate_states),
    }


def _paced(cell: Model, amplitude, duration, period, start, stop):
    pulse = PulseTrain("I_stim", amplitude, duration, period, start=start, stop=stop)
    return cell.replace(inputs=(*(i for i in cell.inputs if i.name != "I_stim"), pulse))


def validate_cell(full: Model, surrogate: Model, *, period: float, beats: int,
                  amplitude: float = 60.0, duration: float = 2.0,
                  output_every: float = 0.1) -> dict:
    """Paced single cells (``beats`` beats every ``period``), full against surrogate:
    AP-shape RMSE over the last beat (mV), APD90 and maximal upstroke velocity of the last
    beat, and the APD90 of every beat (stability over long pacing)."""
    t_end = 5.0 + beats * period
    times = np.arange(0.0, t_end, output_every)
    out = {}
    for name, cell, solver in (("full", full, None), ("surrogate", surrogate,
                                                      diffrax.Tsit5())):
        paced = _paced(cell, amplitude, duration, period, 5.0, t_end)
        sol = simulate(paced, times, solver=solver, rtol=1e-7, atol=1e-9,
                       max_steps=2_000_000)
        v = np.asarray(sol.states)[:, 0]
        last = times >= 5.0 + (beats - 1) * period
        out[name] = {"v": v, "last": v[last], "apd": apd(v, times),
                     "dvdt_max": float(np.max(np.gradient(v[last], times[last])))}
    f, s = out["full"], out["surrogate"]
    n = min(len(f["apd"]), len(s["apd"]))
    return {
        "period": period, "beats": beats,
        "shape_rmse_mV": float(np.sqrt(np.mean((f["last"] - s["last"]) ** 2))),
        "apd90_full": float(f["apd"][-1]) if len(f["apd"]) else None,
        "apd90_surrogate": float(s["apd"][-1]) if len(s["apd"]) else None,
        "apd90_error_percent": (100 * abs(s["apd"][n - 1] / f["apd"][n - 1] - 1)
                                if n else None),
        "upstroke_full": f["dvdt_max"], "upstroke_surrogate": s["dvdt_max"],
        "upstroke_error_percent": 100 * abs(s["dvdt_max"] / f["dvdt_max"] - 1),
        "beats_full": len(f["apd"]), "beats_surrogate": len(s["apd"]),
        "apd90_per_beat_full": [float(x) for x in f["apd"]],
        "apd90_per_beat_surrogate": [float(x) for x in s["apd"]],
    }
