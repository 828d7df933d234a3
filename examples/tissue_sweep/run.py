"""Conduction and block in a paced Beeler-Reuter cable over conductivity x pacing period.

    python examples/tissue_sweep/run.py                          # full model, 5 x 4 points
    python examples/tissue_sweep/run.py --executor threads:2     # on two threads
    python examples/tissue_sweep/run.py --executor dask://127.0.0.1:8786
    python examples/tissue_sweep/run.py --surrogate sur.npz      # + 20 x 10 with a surrogate

A 20 mm cable (201 nodes, D = 0.1 mm^2/ms at relative conductivity 1) is paced at its left
end for 6 beats; each point is classified as 1:1 conduction, block (some beats do not reach
the node at 16 mm, e.g. 2:1) or failure (none does); see scalebridge.multiscale.sweep and
scalebridge.runtime.sweep.
Writes the run directory OUT/full (run.json, points.jsonl) and OUT/full_map.png (and
OUT/surrogate_FAMILY, OUT/surrogate_FAMILY_map.png with --surrogate). The sweeps resume: run again after an interruption and only the missing
points are computed. The full-model sweep takes about 3-4 minutes on one core.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from scalebridge.multiscale.sweep import CableProtocol, cable_point
from scalebridge.runtime.sweep import run_sweep
from scalebridge.report import save_plot

HERE = Path(__file__).resolve().parent
# relative conductivity and pacing period (ms): BR conducts 1:1 at slow pacing and blocks
# (2:1 at the stimulus, or a dropped beat on the way) at periods under about 300 ms
COARSE = {"conductivity": [0.1, 0.45, 0.8, 1.15, 1.5], "period": [150.0, 250.0, 350.0, 500.0]}
DENSE = {"conductivity": np.round(np.linspace(0.1, 1.5, 20), 6).tolist(),
         "period": np.round(np.linspace(150.0, 500.0, 10), 6).tolist()}


def sweep(name, cell, protocol, axes, out: Path, executor):
    t0 = time.perf_counter()
    res = run_sweep(cable_point, axes, out=out / name, shared=(cell, protocol),
                    executor=executor)
    seconds = time.perf_counter() - t0
    save_plot(res.plot(x="conductivity", y="period",
                       title=f"{name}: {cell.name} cable, {protocol.beats} beats"),
              out / f"{name}_map.png", dpi=120)
    df = res.to_pandas()
    print(f"\n{name} sweep: {len(df)} points in {seconds:.1f} s "
          f"({executor or 'in-process'}, dt = {protocol.dt:g} ms)")
    table = df.pivot(index="period", columns="conductivity", values="outcome")
    conducted = df.pivot(index="period", columns="conductivity", values="conducted")
    print(table.to_string())
    print("beats conducted (of", protocol.beats, "):")
    print(conducted.to_string())
    if "seconds" in df:
        first = df[df.first_run.astype(bool)]["seconds"]
        rest = df[~df.first_run.astype(bool)]["seconds"]
        if len(rest):
            print(f"seconds per point: {rest.median():.2f} (median, compiled), "
                  f"{first.median():.2f} (median, first run of a period: compile + run)")
    return df


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--executor", default=None,
                    help="where points run: in-process (default), 'threads:N' or "
                         "'dask://HOST:PORT'")
    ap.add_argument("--out", default=str(HERE / "results"), help="output directory")
    ap.add_argument("--surrogate", default=None,
                    help="a saved cell surrogate: also run a 20 x 10 sweep with it")
    ap.add_argument("--beats", type=int, default=6, help="beats per point (default 6)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from scalebridge.model.zoo import load_zoo

    full = load_zoo("beeler_reuter")
    sweep("full", full, CableProtocol(beats=args.beats), COARSE, out, args.executor)

    if args.surrogate:
        from scalebridge.multiscale import load_surrogate

        sur = load_surrogate(args.surrogate)
        protocol = CableProtocol(beats=args.beats, dt=float(sur.recommended_dt))
        sweep(f"surrogate_{sur.family}", sur.to_model(), protocol, DENSE, out, args.executor)


if __name__ == "__main__":
    main()
