"""Full Beeler-Reuter tissue against tissue of its learned cell surrogates (issue 8).

Two surrogate families (docs/decisions/0015-cell-surrogates.md):

- ``gated``: latents from the full model's gates, functions of V learned by regression
  (5 states, faithful);
- ``two_variable``: a cubic excitable model fitted to paced action potentials and to the
  full model's conduction velocity at 0.1 and 0.2 mm spacing (2 states, fast).

For a 1D cable (2 cm at 0.01 cm) and a 2D sheet (2 x 2 cm at 0.02 cm), each model runs with
Godunov splitting and Rush-Larsen at the largest step that keeps its own conduction
velocity within 1% of its converged value (Strang splitting at 0.005 ms); all then run
from the same stimulus for 400 ms, timed in this process. Writes
benchmarks/results/multiscale.json::

    {"grids": {"cable_1d": {"speedup", "cv_error_percent", "activation_rmse_ms",
                            "apd_error_percent", "family", "families": {...}, ...},
               "sheet_2d": {...}},
     "cell_validation": {...}, "surrogates": {...}}

The per-grid numbers at the top are those of the ``--headline`` family (default
``two_variable``, the one built for speed); ``families`` holds both. Also writes
benchmarks/results/multiscale.md (the tables). Run: ``python benchmarks/multiscale.py``
(``--grids cable_1d`` for one grid; ``--retrain`` to learn the surrogates again instead of
reading them from benchmarks/results/multiscale/). Times are wall-clock on this machine;
pin a core (``taskset -c 0``) for stable numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import jax

from scalebridge.io import save
from scalebridge.model.zoo import load_zoo
from scalebridge.multiscale import (
    CellProtocol,
    build_cell_surrogate,
    cell_training_states,
    load_surrogate,
    train_cell_surrogate,
)
from scalebridge.multiscale.compare import compare_runs, largest_dt, tissue_run, validate_cell
from scalebridge.pde import Stimulus, grid1d, grid2d
from scalebridge.pde.zoo import _quiet
from scalebridge.runtime.files import write_json

HERE = Path(__file__).parent
RESULTS = HERE / "results"
FAMILIES = ("gated", "two_variable")
D = 0.1  # mm^2/ms
T_ACTIVATE = 60.0  # ms: the wave crosses 20 mm in about 43 ms
T_END = 400.0  # ms: one full action potential everywhere


def surrogate_path(family: str) -> Path:
    return RESULTS / "multiscale" / f"beeler_reuter_{family}.npz"


def grids():
    return {
        "cable_1d": (grid1d(201, 20.0), [Stimulus(lambda x: x <= 0.5, 60.0, 1.0, 2.0)]),
        "sheet_2d": (grid2d(101, 101, 20.0, 20.0),
                     [Stimulus(lambda x, y: x <= 0.5, 60.0, 1.0, 2.0)]),
    }


def surrogate(cell, family: str, retrain: bool, previous: dict):
    """The stored surrogate and the seconds its training took when it was made (kept in its
    meta; for a file saved before that was recorded, the last results file's number for the
    same file), or a newly trained one with this run's seconds."""
    path = surrogate_path(family)
    if path.is_file() and not retrain:
        sur = load_surrogate(path)
        return sur, sur.meta.get("training_seconds", previous.get("training_seconds"))
    start = time.perf_counter()
    sur = build_cell_surrogate(cell, family=family, trained_for="beeler_reuter", verbose=True)
    seconds = time.perf_counter() - start
    sur = sur.replace(meta={**sur.meta, "training_seconds": seconds})
    save(sur, path)
    return sur, seconds


def one_grid(name, cell, surrogates, grid, stimuli):
    print(f"[{name}] largest steps ...", flush=True)
    kw = dict(stimuli=stimuli, D=D, t_end=T_ACTIVATE, reference_dt=0.005)
    search = {"full": largest_dt(cell, grid, **kw)}
    for fam, sur in surrogates.items():
        search[fam] = largest_dt(sur.to_model(), grid, **kw)
    print(f"[{name}] steps: " + ", ".join(f"{k} {v['dt']}" for k, v in search.items()),
          flush=True)
    missing = [k for k, v in search.items() if v["dt"] is None]
    if missing:
        raise SystemExit(f"[{name}] no candidate step keeps CV within 1% for {missing}")
    run = dict(stimuli=stimuli, D=D, t_end=T_END, output_every=0.5, repeats=2)
    a = tissue_run(cell, grid, dt=search["full"]["dt"], **run)
    out = {"nodes": list(grid.shape), "spacing_mm": list(grid.spacing), "families": {}}
    for fam, sur in surrogates.items():
        b = tissue_run(sur.to_model(), grid, dt=search[fam]["dt"], **run)
        r = compare_runs(a, b, full_states=len(cell.state_names),
                         surrogate_states=len(sur.state_names))
        r["dt_search"] = {"full": search["full"], "surrogate": search[fam]}
        r["met"] = {"speedup": r["speedup"] >= 10, "cv_error_percent":
                    r["cv_error_percent"] <= 2, "activation_rmse_ms":
                    r["activation_rmse_ms"] <= 1}
        out["families"][fam] = r
        print(f"[{name}] {fam}: speed-up {r['speedup']:.2f} (steps "
              f"{r['speedup_from_steps']:.2f} x per step {r['speedup_per_step']:.2f}), CV error "
              f"{r['cv_error_percent']:.2f}%, activation RMSE {r['activation_rmse_ms']:.3f} ms,"
              f" APD90 error {r['apd_error_percent']:.2f}%", flush=True)
    out["targets"] = {"speedup": ">= 10", "cv_error_percent": "<= 2",
                      "activation_rmse_ms": "<= 1"}
    return out


def table(out) -> str:
    rows = ["| grid | surrogate (states) | full dt (ms) | surrogate dt (ms) | full run (s) | "
            "surrogate run (s) | speed-up (steps x per step) | CV error % | activation RMSE "
            "(ms) | APD90 error % (mean / max) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, g in out["grids"].items():
        for fam, r in g["families"].items():
            rows.append(
                f"| {name} {'x'.join(map(str, g['nodes']))} | {fam} ({r['surrogate']['states']})"
                f" | {r['full']['dt']} | {r['surrogate']['dt']} | {r['full']['run_s']:.2f} | "
                f"{r['surrogate']['run_s']:.3f} | **{r['speedup']:.1f}** "
                f"({r['speedup_from_steps']:.2f} x {r['speedup_per_step']:.2f}) | "
                f"{r['cv_error_percent']:.2f} | {r['activation_rmse_ms']:.3f} | "
                f"{r['apd_error_percent']:.2f} / {r['apd_error_max_percent']:.2f} |")
    rows += ["", "| held-out single cell | surrogate | AP shape RMSE (mV) | APD90 full / "
             "surrogate (ms) | APD90 error % | upstroke error % | beats full / surrogate |",
             "|---|---|---|---|---|---|---|"]
    for fam, vals in out["cell_validation"].items():
        for v in vals:
            rows.append(f"| {v['beats']} beats every {v['period']:g} ms | {fam} | "
                        f"{v['shape_rmse_mV']:.2f} | {v['apd90_full']:.1f} / "
                        f"{v['apd90_surrogate']:.1f} | {v['apd90_error_percent']:.2f} | "
                        f"{v['upstroke_error_percent']:.2f} | {v['beats_full']} / "
                        f"{v['beats_surrogate']} |")
    for key, var in out.get("variants", {}).items():
        r = var["cable_1d"]
        rows += ["", f"Variant {key} ({var['states']} states) on the cable: dt "
                 f"{r['surrogate']['dt']} ms, speed-up {r['speedup']:.2f} "
                 f"({r['speedup_from_steps']:.2f} x {r['speedup_per_step']:.2f}), CV error "
                 f"{r['cv_error_percent']:.2f}%, activation RMSE "
                 f"{r['activation_rmse_ms']:.3f} ms, APD90 error "
                 f"{r['apd_error_percent']:.2f}%"]
    return "\n".join(rows) + "\n"


def three_latents(cell):
    """The gated family with three latents (4 states): fewer states, less fidelity."""
    print("three-latent variant ...", flush=True)
    states, current = cell_training_states(cell, CellProtocol())
    three = train_cell_surrogate(cell, states, local_current=current,
                                 latents={"h": ("h", "j"), "d": ("d",), "f": ("f",)},
                                 pairs=[("d", "f")])
    grid, stimuli = grids()["cable_1d"]
    res = one_grid("cable_1d, 3 latents", cell, {"gated_3": three}, grid, stimuli)
    return {"latents": {k: list(v) for k, v in three.latents.items()},
            "states": len(three.state_names), "cable_1d": res["families"]["gated_3"]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grids", default="cable_1d,sheet_2d")
    ap.add_argument("--retrain", action="store_true")
    ap.add_argument("--headline", default="two_variable", choices=FAMILIES)
    ap.add_argument("--no-variant", action="store_true",
                    help="skip the three-latent gated surrogate on the cable")
    ap.add_argument("--out", type=Path, default=RESULTS / "multiscale.json")
    args = ap.parse_args(argv)
    cell = _quiet(load_zoo("beeler_reuter"))
    surrogates, info = {}, {}
    before = json.loads(args.out.read_text())["surrogates"] if args.out.is_file() else {}
    for fam in FAMILIES:
        same_file = before.get(fam, {}).get("file") == str(
            surrogate_path(fam).relative_to(HERE.parent))
        sur, seconds = surrogate(cell, fam, args.retrain, before[fam] if same_file else {})
        surrogates[fam] = sur
        info[fam] = {"file": str(surrogate_path(fam).relative_to(HERE.parent)),
                     "states": list(sur.state_names), "training_seconds": seconds,
                     "fit": sur.meta.get("fit"), "recommended_dt": sur.recommended_dt}
    out = {"machine": {"cpu": platform.processor() or platform.machine(),
                       "cores_visible": len(os.sched_getaffinity(0)), "jax": jax.__version__},
           "headline": args.headline, "full_states": len(cell.state_names),
           "surrogates": info, "grids": {}, "cell_validation": {}}
    print("held-out single cells ...", flush=True)
    for fam, sur in surrogates.items():
        out["cell_validation"][fam] = []
        for period, beats in ((350.0, 4), (800.0, 3), (300.0, 40)):
            v = validate_cell(cell, sur.to_model(), period=period, beats=beats, amplitude=45.0)
            if beats < 10:
                del v["apd90_per_beat_full"], v["apd90_per_beat_surrogate"]
            out["cell_validation"][fam].append(v)
            print(f"  {fam}, period {period:g}: shape RMSE {v['shape_rmse_mV']:.2f} mV, APD90 "
                  f"error {v['apd90_error_percent']:.2f}%", flush=True)
    all_grids = grids()
    for name in args.grids.split(","):
        grid, stimuli = all_grids[name]
        g = one_grid(name, cell, surrogates, grid, stimuli)
        head = g["families"][args.headline]
        out["grids"][name] = {"family": args.headline,
                              **{k: head[k] for k in ("speedup", "cv_error_percent",
                                                      "activation_rmse_ms",
                                                      "apd_error_percent")}, **g}
        write_json(args.out, out)
    if not args.no_variant:
        out["variants"] = {"gated_three_latents": three_latents(cell)}
    write_json(args.out, out)
    args.out.with_suffix(".md").write_text(table(out))
    print(table(out))


if __name__ == "__main__":
    main()
