"""2D Aliev-Panfilov sheet: scalebridge OperatorSplitting vs the same scheme in NumPy.

A square no-flux sheet of ``--size`` x ``--size`` nodes (default 200 x 200) at 0.1 cm spacing
(about 20 cm across), Aliev & Panfilov (1996) kinetics in their dimensionless time (1 time
unit = 12.9 ms), D = 0.1 cm^2 per time unit (0.0078 cm^2/ms), stimulated on the left edge
(x <= 0.3 cm, amplitude 1 for 1 time unit from t = 0): a plane wave crosses most of the sheet
in 500 ms. Both implementations take fixed steps of dt = 0.02 time units (0.26 ms; the
explicit diffusion limit is 0.025) with no-flux boundaries by mirroring, for two schemes:

- ``godunov``: forward-Euler reaction, then forward-Euler diffusion;
- ``strang``: half reaction step (explicit midpoint), Heun diffusion step, half reaction step
  (the default of ``OperatorSplitting``; Aliev-Panfilov has no gates, so Rush-Larsen is the
  midpoint rule here).

scalebridge runs through ``scalebridge.simulate(model, times, solver=OperatorSplitting(...))``
(JIT-compiled, compile time reported apart: first call minus the best steady call); the NumPy
version is plain vectorised NumPy (no JIT), run once. Agreement: max |u_jax - u_numpy| at the
end. Output every ``--t-end`` / 10.

    python benchmarks/pde.py                       # 200 x 200, 500 ms; writes results/pde.json
    python benchmarks/pde.py --size 400 --t-end 200 --device "H100, CUDA 12"
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import jax
import numpy as np

import scalebridge as sb
from scalebridge import pde
from scalebridge.model.zoo.aliev_panfilov import MS_PER_TIME_UNIT

HERE = Path(__file__).parent
DX = 0.1  # cm
D = 0.1  # cm^2 per time unit
DT = 0.02  # time units
STIM = dict(width=0.3, amplitude=1.0, start=0.0, duration=1.0)


def sheet(n: int):
    grid = pde.grid2d(n, n, DX * (n - 1), DX * (n - 1))
    return pde.monodomain(sb.load_zoo("aliev_panfilov"), grid, D=D, stimuli=[
        pde.Stimulus(pde.left_edge(STIM["width"]), amplitude=STIM["amplitude"],
                     start=STIM["start"], duration=STIM["duration"])])


class NumpySheet:
    """The same splitting schemes, written directly in NumPy."""

    def __init__(self, model, n: int):
        self.n, self.dx = n, DX
        value = dict(zip(model.parameter_names, map(float, model.parameter_values()),
                         strict=True))
        self.k, self.a, self.b, self.eps0, self.mu1, self.mu2 = (
            value[k] for k in ("k", "a", "b", "eps0", "mu1", "mu2"))
        x, _ = model.rhs.grid.mesh()
        self.mask = (x <= STIM["width"]).astype(float)

    def stim(self, t):
        on = STIM["start"] <= t < STIM["start"] + STIM["duration"]
        return STIM["amplitude"] * self.mask if on else 0.0

    def reaction(self, t, u, v):
        eps = self.eps0 + self.mu1 * v / (u + self.mu2)
        du = self.k * u * (1 - u) * (u - self.a) - u * v + self.stim(t)
        dv = eps * (-v - self.k * u * (u - self.b - 1))
        return du, dv

    def laplacian(self, u):
        p = np.pad(u, 1, mode="reflect")
        return D * (p[2:, 1:-1] + p[:-2, 1:-1] + p[1:-1, 2:] + p[1:-1, :-2]
                    - 4 * u) / self.dx ** 2

    def step(self, scheme, t, h, u, v):
        if scheme == "godunov":
            du, dv = self.reaction(t, u, v)
            u, v = u + h * du, v + h * dv
            return u + h * self.laplacian(u), v
        for j in range(2):  # R(h/2) D(h) R(h/2), midpoint reaction, Heun diffusion
            s, r = t + j * h / 2, h / 2
            du, dv = self.reaction(s, u, v)
            du, dv = self.reaction(s + r / 2, u + r / 2 * du, v + r / 2 * dv)
            u, v = u + r * du, v + r * dv
            if j == 0:
                u1 = u + h * self.laplacian(u)
                u = 0.5 * (u + u1 + h * self.laplacian(u1))
        return u, v

    def run(self, scheme, times):
        u = np.zeros((self.n, self.n))
        v = np.zeros((self.n, self.n))
        t, out = 0.0, []
        for s in times:  # steps as OperatorSplitting takes them
            m = max(int(np.ceil((s - t) / DT - 1e-9)), 0)
            h = (s - t) / max(m, 1)
            for i in range(m):
                u, v = self.step(scheme, t + i * h, h, u, v)
            t = s
            out.append(u.copy())
        return np.stack(out)


def front_position(u, grid):
    """x (cm) of the rightmost node with u > 0.5 on the middle row."""
    row = u[:, grid.shape[1] // 2]
    above = np.nonzero(row > 0.5)[0]
    return float(grid.coords[0][above[-1]]) if above.size else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=200, help="nodes per side")
    ap.add_argument("--t-end", type=float, default=500.0, help="simulated ms")
    ap.add_argument("--repeats", type=int, default=3, help="steady JAX calls (best is kept)")
    ap.add_argument("--device", default="", help="free-text note on the machine")
    ap.add_argument("--out", default=str(HERE / "results" / "pde.json"))
    args = ap.parse_args()

    n = args.size
    model = sheet(n)
    grid = model.rhs.grid
    n_steps = int(round(args.t_end / MS_PER_TIME_UNIT / DT))
    t_end = n_steps * DT  # time units, a multiple of dt
    times = DT * np.round(np.linspace(0, n_steps, 11)[1:])
    t_ms = t_end * MS_PER_TIME_UNIT
    ref = NumpySheet(model, n)
    limit = pde.check_stability(model, DT)
    rows = []
    for scheme in ("godunov", "strang"):
        solver = pde.OperatorSplitting(DT, scheme=scheme, reaction="euler")

        def run(solver=solver):
            sol = sb.simulate(model, times, solver=solver)
            return jax.block_until_ready(sol.states)

        t0 = time.perf_counter()
        ys = run()
        first = time.perf_counter() - t0
        steady = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            ys = run()
            steady.append(time.perf_counter() - t0)
        best = min(steady)
        t0 = time.perf_counter()
        u_np = ref.run(scheme, times)
        t_np = time.perf_counter() - t0
        u_jax = np.asarray(ys)[:, :grid.size].reshape(len(times), *grid.shape)
        points = pde.check_wave_resolution(np.asarray(ys), model, warn=False)
        rows.append(dict(
            scheme=scheme, compile_s=first - best, jax_s=best, numpy_s=t_np,
            jax_ms_per_sim_ms=1e3 * best / t_ms, numpy_ms_per_sim_ms=1e3 * t_np / t_ms,
            speedup=t_np / best, max_abs_diff_u=float(np.max(np.abs(u_jax[-1] - u_np[-1]))),
            front_x_cm=front_position(u_jax[-1], grid), points_per_front=points))
        print(f"{scheme}: compile {first - best:.2f} s, jax {best:.3f} s, numpy {t_np:.2f} s",
              flush=True)

    result = dict(
        benchmark="2D Aliev-Panfilov sheet, OperatorSplitting vs NumPy (same scheme)",
        size=[n, n], spacing_cm=DX, sheet_cm=DX * (n - 1), D_cm2_per_tu=D,
        D_cm2_per_ms=D / MS_PER_TIME_UNIT, dt_tu=DT, dt_ms=DT * MS_PER_TIME_UNIT,
        explicit_limit_tu=limit, t_end_tu=t_end, t_end_ms=t_ms, steps=n_steps,
        outputs=len(times), stimulus=STIM, rows=rows,
        jax_version=jax.__version__, jax_devices=[str(d) for d in jax.devices()],
        device_note=args.device, platform=platform.platform(),
        processor=platform.processor(), cpu_count=os.cpu_count(),
        load_average=os.getloadavg(), date=time.strftime("%Y-%m-%d %H:%M"))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")

    print(f"\n{n} x {n} nodes, {t_ms:.0f} ms ({n_steps} steps of {DT * MS_PER_TIME_UNIT:.3f} "
          f"ms), devices {result['jax_devices']}\n")
    print("| scheme | compile (s) | scalebridge (ms / sim. ms) | NumPy (ms / sim. ms) | "
          "speed-up | max abs diff u | front x (cm) | points / front |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['scheme']} | {r['compile_s']:.2f} | {r['jax_ms_per_sim_ms']:.3f} | "
              f"{r['numpy_ms_per_sim_ms']:.3f} | {r['speedup']:.1f}x | "
              f"{r['max_abs_diff_u']:.1e} | {r['front_x_cm']:.1f} | "
              f"{r['points_per_front']:.1f} |")


if __name__ == "__main__":
    main()
