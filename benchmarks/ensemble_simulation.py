"""Ensemble simulation of the Boehm et al. (2014) JAK-STAT model: scalebridge vs others.

1,000 parameter sets: the six kinetic parameters at their SBML values times 10^u,
u ~ U[-1, 1] (``numpy.random.default_rng(0)``); outputs at the 16 distinct measurement
times of the PEtab problem; rtol 1e-8, atol 1e-10 for every tool. Compared, in one run:

- scalebridge ``simulate_ensemble`` with its default stiff solver (Rodas5, refill driver);
- a plain ``jax.vmap`` of diffrax Kvaerno5 (``simulate_ensemble(solver=diffrax.Kvaerno5())``,
  what simulate_ensemble did before);
- a libroadrunner loop (CVODE BDF) and a scipy ``solve_ivp`` LSODA loop.

Accuracy is measured against libroadrunner at rtol 1e-12 / atol 1e-16 (itself checked
against scipy Radau at rtol 1e-12 on a subset), per member as the largest deviation relative
to each state's maximum over the trajectory. Compile time (first minus steady call, 2 members)
is reported apart from run time (best of ``--repeats`` steady calls).

    python benchmarks/ensemble_simulation.py            # writes results/ensemble_simulation.json
    python benchmarks/ensemble_simulation.py --sweep    # adds solver/driver/slot variants
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import roadrunner
from scipy.integrate import solve_ivp

import scalebridge as sb
from scalebridge.model.sbml import load_sbml
from scalebridge.solvers import Rodas4, Rodas5

HERE = Path(__file__).parent
SBML = HERE / "data" / "Boehm_JProteomeRes2014.xml"
MEASUREMENTS = HERE / "data" / "measurementData_Boehm_JProteomeRes2014.tsv"
KINETIC = ["Epo_degradation_BaF3", "k_exp_hetero", "k_exp_homo", "k_imp_hetero", "k_imp_homo",
           "k_phos"]
RTOL, ATOL = 1e-8, 1e-10


def parameter_sets(model, n: int) -> np.ndarray:
    base = np.asarray(model.parameter_values())
    ps = np.tile(base, (n, 1))
    idx = [model.parameter_index(k) for k in KINETIC]
    ps[:, idx] *= 10.0 ** np.random.default_rng(0).uniform(-1.0, 1.0, (n, len(idx)))
    return ps


def timed_ensemble(model, ps, ts, solver, repeats):
    """Compile time: first minus steady call on a 2-member ensemble (compilation barely
    depends on the batch size); run time: best steady call on all members."""

    def call(p):
        t0 = time.perf_counter()
        ens = sb.simulate_ensemble(model, p, ts, solver=solver, rtol=RTOL, atol=ATOL)
        jax.block_until_ready(ens.states)
        return ens, time.perf_counter() - t0

    first = call(ps[:2])[1]
    comp = max(first - min(call(ps[:2])[1] for _ in range(2)), 0.0)
    ens, _ = call(ps)  # compiles for the full batch shape
    runs = [call(ps) for _ in range(repeats)]
    ens, run = runs[-1][0], min(r[1] for r in runs)
    return np.asarray(ens.states), np.asarray(ens.success), comp, run


def roadrunner_loop(model, ps, ts, rtol, atol):
    rr = roadrunner.RoadRunner(str(SBML))
    rr.integrator.relative_tolerance = rtol
    rr.integrator.absolute_tolerance = atol
    rr.integrator.maximum_num_steps = 100_000
    rr.timeCourseSelections = ["time"] + [f"[{s}]" for s in model.state_names]
    idx = [model.parameter_index(k) for k in KINETIC]
    out, ok = np.full((len(ps), len(ts), len(model.state_names)), np.nan), np.ones(len(ps), bool)
    t0 = time.perf_counter()
    for i, p in enumerate(ps):
        rr.reset()
        for k, j in zip(KINETIC, idx, strict=True):
            rr[k] = p[j]
        try:
            out[i] = np.asarray(rr.simulate(times=list(ts)))[:, 1:]
        except RuntimeError:
            ok[i] = False
    return out, ok, time.perf_counter() - t0


def numpy_rhs(model):
    """Boehm et al. (2014) right-hand side in NumPy (checked against the SBML model)."""
    P = {k: model.parameter_index(k) for k in model.parameter_names}

    def rhs(t, y, p):
        A, B, pApB, pApA, pBpB, nA, nAB, nB = y
        cyt, nuc = p[P["cyt"]], p[P["nuc"]]
        epo = 1.25e-7 * np.exp(-p[P["Epo_degradation_BaF3"]] * t)
        kph, kiho, kihe = p[P["k_phos"]], p[P["k_imp_homo"]], p[P["k_imp_hetero"]]
        kxho, kxhe = p[P["k_exp_homo"]], p[P["k_exp_hetero"]]
        v1, v2, v3 = cyt * epo * A * A * kph, cyt * epo * A * B * kph, cyt * epo * B * B * kph
        v4, v5, v6 = cyt * kiho * pApA, cyt * kihe * pApB, cyt * kiho * pBpB
        v7, v8, v9 = nuc * kxho * nA, nuc * kxhe * nAB, nuc * kxho * nB
        return np.array([(-2 * v1 - v2 + 2 * v7 + v8) / cyt, (-v2 - 2 * v3 + v8 + 2 * v9) / cyt,
                         (v2 - v5) / cyt, (v1 - v4) / cyt, (v3 - v6) / cyt,
                         (v4 - v7) / nuc, (v5 - v8) / nuc, (v6 - v9) / nuc])

    return rhs


def scipy_loop(model, ps, ts, method, rtol, atol):
    rhs = numpy_rhs(model)
    y0s = np.asarray(jax.vmap(model.initial_state)(jnp.asarray(ps)))
    out, ok = np.full((len(ps), len(ts), y0s.shape[1]), np.nan), np.ones(len(ps), bool)
    t0 = time.perf_counter()
    for i, p in enumerate(ps):
        r = solve_ivp(rhs, (ts[0], ts[-1]), y0s[i], method=method, t_eval=ts, rtol=rtol,
                      atol=atol, args=(p,))
        ok[i] = r.success
        if r.success:
            out[i] = r.y.T
    return out, ok, time.perf_counter() - t0


def deviation(a, ref):
    """Per member: max |a - ref| relative to each state's maximum of |ref| over time."""
    scale = np.max(np.abs(ref), axis=1, keepdims=True)
    scale = np.where(scale > 0, scale, 1.0)
    return np.max(np.abs(a - ref) / scale, axis=(1, 2))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--radau-subset", type=int, default=20)
    ap.add_argument("--skip-kvaerno", action="store_true")
    ap.add_argument("--sweep", action="store_true", help="also time solver/driver/slot variants")
    ap.add_argument("--out", default=str(HERE / "results" / "ensemble_simulation.json"))
    args = ap.parse_args(argv)

    model = load_sbml(SBML)
    ts = np.sort(pd.read_csv(MEASUREMENTS, sep="\t")["time"].unique()).astype(float)
    ps = parameter_sets(model, args.n)
    y = np.linspace(1.0, 3.0, len(model.state_names))
    np.testing.assert_allclose(numpy_rhs(model)(3.0, y, ps[0]),
                               np.asarray(model.vector_field(3.0, jnp.asarray(y), ps[0])),
                               rtol=1e-12)

    # start JAX's runtime before timing, so that "compile" is the solver's own
    jax.block_until_ready(jax.jit(lambda x: x * 2.0)(jnp.ones(3)))
    rows, results = {}, {}
    print("reference: roadrunner rtol 1e-12 ...", flush=True)
    ref, ref_ok, _ = roadrunner_loop(model, ps, ts, 1e-12, 1e-16)
    k = min(args.radau_subset, args.n)
    radau, _, _ = scipy_loop(model, ps[:k], ts, "Radau", 1e-12, 1e-16)
    ref_check = float(np.max(deviation(ref[:k], radau)))

    variants = {"scalebridge Rodas5 (refill, 16 slots)": Rodas5()}
    if args.sweep:
        variants.update({
            "scalebridge Rodas5 (lockstep vmap)": Rodas5(driver="lockstep"),
            "scalebridge Rodas5 (refill, 8 slots)": Rodas5(slots=8),
            "scalebridge Rodas5 (refill, 32 slots)": Rodas5(slots=32),
            "scalebridge Rodas5 (refill, 128 slots)": Rodas5(slots=128),
            "scalebridge Rodas4 (refill, 16 slots)": Rodas4(),
        })
    if not args.skip_kvaerno:
        variants["plain vmap diffrax Kvaerno5"] = diffrax.Kvaerno5()
    for name, solver in variants.items():
        print(f"{name} ...", flush=True)
        ys, ok, comp, run = timed_ensemble(model, ps, ts, solver,
                                           1 if "Kvaerno5" in name else args.repeats)
        results[name] = ys
        rows[name] = dict(compile_s=comp, run_s=run, ok=ok)
    print("roadrunner loop ...", flush=True)
    ys, ok, run = roadrunner_loop(model, ps, ts, RTOL, ATOL)
    results["libroadrunner loop (CVODE)"], rows["libroadrunner loop (CVODE)"] = ys, dict(
        compile_s=0.0, run_s=run, ok=ok)
    print("scipy LSODA loop ...", flush=True)
    ys, ok, run = scipy_loop(model, ps, ts, "LSODA", RTOL, ATOL)
    results["scipy LSODA loop"], rows["scipy LSODA loop"] = ys, dict(compile_s=0.0, run_s=run,
                                                                     ok=ok)

    main_name = "scalebridge Rodas5 (refill, 16 slots)"
    rr_name = "libroadrunner loop (CVODE)"
    table = []
    for name, r in rows.items():
        dev = deviation(results[name], ref)
        good = r["ok"] & ref_ok
        table.append(dict(
            tool=name, compile_s=r["compile_s"], run_s=r["run_s"],
            ms_per_trajectory=1e3 * r["run_s"] / args.n,
            failed_members=int(np.sum(~r["ok"])),
            max_dev_vs_reference=float(np.max(dev[good])) if good.any() else None,
            members_within_1e6=int(np.sum(dev[good] <= 1e-6)),
            speedup_of_scalebridge=r["run_s"] / rows[main_name]["run_s"],
            max_dev_vs_scalebridge=float(np.nanmax(deviation(results[name], results[main_name]))),
        ))
    out = dict(
        model="Boehm_JProteomeRes2014 (load_sbml)", n_members=args.n,
        times=ts.tolist(), rtol=RTOL, atol=ATOL,
        reference="libroadrunner rtol 1e-12 atol 1e-16",
        reference_vs_radau_max_dev=ref_check, radau_subset=k,
        max_dev_scalebridge_vs_roadrunner=float(np.nanmax(
            deviation(results[main_name], results[rr_name]))),
        machine=dict(platform=platform.platform(), processor=platform.processor(),
                     jax=jax.__version__, roadrunner=roadrunner.__version__,
                     devices=[str(d) for d in jax.devices()], cpus=os.cpu_count(),
                     load_average_at_end=os.getloadavg()),
        rows=table,
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))

    print(f"\nBoehm JAK-STAT, {args.n} members, {len(ts)} output times, rtol {RTOL}, "
          f"atol {ATOL}; reference roadrunner rtol 1e-12 (vs Radau rtol 1e-12 on {k} members: "
          f"{ref_check:.1e})\n")
    print("| tool | compile (s) | run (s) | ms / trajectory | x slower than scalebridge | "
          "failed | max dev vs reference | within 1e-6 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in table:
        dev = "n/a" if r["max_dev_vs_reference"] is None else f"{r['max_dev_vs_reference']:.1e}"
        print(f"| {r['tool']} | {r['compile_s']:.2f} | {r['run_s']:.3f} | "
              f"{r['ms_per_trajectory']:.3f} | {r['speedup_of_scalebridge']:.1f} | "
              f"{r['failed_members']} | {dev} | {r['members_within_1e6']}/{args.n} |")
    print(f"\nlargest deviation scalebridge vs roadrunner (both rtol 1e-8): "
          f"{out['max_dev_scalebridge_vs_roadrunner']:.1e}")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
