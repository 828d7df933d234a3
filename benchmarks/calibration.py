"""Multi-start calibration of PEtab benchmark problems: scalebridge vs pyPESTO with AMICI and
with RoadRunner.

In one run and from the same start points, for each problem (default: the ten problems of the
PEtab benchmark collection with the cheapest gradients, ``PROBLEMS``; PEtab files in
tests/data/petab/<name>/):

- scalebridge: ``scalebridge.fit(problem, n_starts=N, seed=S)`` with the fit default
  optimiser, or each of ``--optimizer NAME[,NAME...]``;
- ``pypesto-amici-fides``: pyPESTO 0.7 with its AMICI objective (``PetabImporter(...,
  simulator_type="amici")``, AMICI 1.0: forward sensitivities, CVODES) and Fides, whose
  Hessian is the objective's Fisher information (pyPESTO's default), as pyPESTO users run it;
  the compiled models are kept in benchmarks/.amici_models/ by problem content hash;
- pyPESTO 0.7 with its RoadRunner objective (``PetabImporter(..., simulator_type=
  "roadrunner")``). That objective has no gradients, so the optimisers get central finite
  differences from ``pypesto.objective.FD`` (pyPESTO's default step 1e-6): ``pypesto-fides``
  (Fides, BFGS Hessian update) and ``pypesto-lbfgsb`` (scipy L-BFGS-B through
  ``pypesto.optimize.ScipyOptimizer``).

Start points: ``problem.space.start_points(N, seed)`` (PEtab scaled space of
the estimated parameters, parameter-table order), clipped 1e-10 of the span inside the bounds as
``fit`` does; pyPESTO receives the same vectors (its free ``x_names`` and ``x_scales`` are
checked to be the same ids and scales, in the same order). The finite differences run over the
free parameters only (the RoadRunner objective of the pyPESTO problem, which fills in the fixed
ones, is wrapped in a plain ``pypesto.Objective``); ``FD`` on the importer's problem itself
would also difference the fixed parameters. RoadRunner (CVODE) runs at the tolerances and step
limit of the scalebridge problem.

Reported per tool and problem: the NLL at the nominal parameters (a peer whose value differs
from scalebridge's by more than ``NOMINAL_ATOL`` computes another objective: its fits are
skipped unless ``--fit-mismatched``; one that cannot load the problem is recorded with the
error), the best NLL and its difference to the reference, the starts within 1.92 of the best
value any tool found (or of the reference where lower: converged), their fraction, the wall
time of the multi-start run (for scalebridge also the JIT compile time and the time to the
first finished start), the time per converged start, ratios to scalebridge (the first
scalebridge optimiser), each tool's NLL at the others' best points, and per problem the
issue's targets (time per converged start at or below pyPESTO + AMICI, best NLL at or below
the reference within ``BEST_ATOL``, no problem where a peer converges and scalebridge does
not) as met or missed. The JSON is rewritten (atomically) after each tool and problem.

    python benchmarks/calibration.py                      # 100 starts, all problems and tools
    python benchmarks/calibration.py --starts 3 --problems Boehm_JProteomeRes2014
    python benchmarks/calibration.py --tools scalebridge --optimizer trf,lbfgs
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import logging
import math
import os
import platform
import sys
import time
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

import scalebridge as sb
from scalebridge.runtime.files import write_json

HERE = Path(__file__).parent
ROOT = HERE.parent
PETAB_DIR = ROOT / "tests" / "data" / "petab"
AMICI_MODELS = HERE / ".amici_models"  # compiled AMICI models, by problem content hash
# the ten problems of the collection with the cheapest gradients (benchmarks/results/
# petab_collection.md); the others take seconds per gradient, hours for 100 starts here
PROBLEMS = ("Bertozzi_PNAS2020", "Armistead_CellDeathDis2024", "Blasi_CellSystems2016",
            "Boehm_JProteomeRes2014", "Crauste_CellSystems2017", "Fiedler_BMCSystBiol2016",
            "Weber_BMC2015", "Borghans_BiophysChem1997", "Brannmark_JBC2010",
            "Schwen_PONE2014")
# reference NLL at the nominal parameters (tests/data/README.md; ../shared/data/README.md):
# AMICI's benchmark table, except Bertozzi (converged scipy Radau) and Blasi (petab's
# calculate_llh of the collection's simulatedData table). Every one is the likelihood alone:
# Isensee's, said to include its priors, is our likelihood's to 4e-10 (3949.375967 against
# 3953.83 with the priors), and Schwen's too (943.999 against 956.5).
REFERENCE = {
    "Bachmann_MSB2011": -418.405733,
    "Beer_MolBioSystems2014": -58622.914563,
    "Bertozzi_PNAS2020": 158.8643,
    "Blasi_CellSystems2016": -642.826894,
    "Boehm_JProteomeRes2014": 138.221997,
    "Borghans_BiophysChem1997": -83.323719,
    "Brannmark_JBC2010": 141.889114,
    "Chen_MSB2009": 115700.119263,
    "Crauste_CellSystems2017": 190.965219,
    "Fiedler_BMCSystBiol2016": -58.583902,
    "Isensee_JCB2018": 3949.375967,
    "Lucarelli_CellSystems2018": 1681.605988,
    "Schwen_PONE2014": 943.999299,
    "Weber_BMC2015": 296.201792,
}
NO_REFERENCE = {
    "Alkan_SciSignal2018": "the collection has no trusted reference NLL",
    "Armistead_CellDeathDis2024": "the collection has no reference NLL (SBML comp model)",
}
# a lower optimum than the reference, known for Crauste
KNOWN_BEST = {"Crauste_CellSystems2017": 190.4571}
CONVERGED_DELTA = 1.92  # chi2(1) 0.95 quantile / 2
NOMINAL_ATOL = 0.01  # |NLL_peer - NLL_scalebridge| at the nominal parameters, NLL units
BEST_ATOL = 1e-3  # a best NLL this far above the reference counts as at the reference
TOOLS = ("scalebridge", "scalebridge-threads", "pypesto-amici-fides", "pypesto-fides",
         "pypesto-lbfgsb")
# scalebridge-threads: the same starts on one thread per CPU core (the CLI default)
# per-start limits of the pyPESTO optimisers (iterations; scipy also counts objective calls,
# each FD gradient being one call of the FD objective)
PYPESTO_MAXITER = 1000
PYPESTO_MAXFUN = 3000
FD_DELTA = 1e-6  # pypesto.objective.FD default
CLIP = 1e-10  # start points are moved this fraction of the span inside the bounds (as fit does)


# ----- helpers --------------------------------------------------------------------------------
def _num(v):
    """A JSON-safe float (None for NaN/inf/None)."""
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _ratio(a, b):
    a, b = _num(a), _num(b)
    return a / b if a is not None and b not in (None, 0.0) else None


def _first_line(exc) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _versions(packages=("scalebridge", "jax", "diffrax", "pypesto", "fides", "libroadrunner",
                        "petab", "scipy", "numpy")) -> dict:
    out = {}
    for pkg in packages:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def _hash_files(paths) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(str(p.name).encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def problem_hash(name: str) -> str:
    """Content hash of a problem's files (a changed table or model is never reused)."""
    return _hash_files([p for p in (PETAB_DIR / name).rglob("*") if p.is_file()])


def petab_yaml(name: str) -> Path:
    d = PETAB_DIR / name
    p = d / f"{name}.yaml"
    if p.is_file():
        return p
    found = sorted(d.glob("*.yaml"))
    if len(found) != 1:
        raise FileNotFoundError(f"no single PEtab YAML file in {d}")
    return found[0]


def summarize(nlls, times, wall_s, best_found, known_best=None) -> dict:
    """Best NLL, starts within CONVERGED_DELTA of ``best_found`` (the best value any tool
    found, or the reference where lower), fraction, time per converged start, median time of
    one start (``times``)."""
    v = np.asarray([np.nan if x is None else x for x in nlls], dtype=float)
    ok = np.isfinite(v)
    n_conv = int(np.sum(ok & (v <= best_found + CONVERGED_DELTA))) \
        if best_found is not None else 0
    t = np.asarray([np.nan if x is None else x for x in times], dtype=float)
    out = dict(best_nll=_num(np.min(v[ok])) if ok.any() else None, n_starts=int(v.size),
               n_finite=int(ok.sum()), n_converged=n_conv,
               fraction_converged=n_conv / v.size if v.size else None,
               wall_s=_num(wall_s), time_per_converged_s=_num(wall_s / n_conv) if n_conv else None,
               median_start_s=_num(np.nanmedian(t)) if np.isfinite(t).any() else None)
    if known_best is not None:
        out["n_converged_known_best"] = int(np.sum(ok & (v <= known_best + CONVERGED_DELTA)))
    return out


# ----- scalebridge ----------------------------------------------------------------------------
def run_scalebridge(problem, n, seed, optimizer, x0s, executor=None) -> dict:
    kwargs = dict(n_starts=n, seed=seed, out=None, executor=executor)
    if optimizer is not None:
        kwargs["optimizer"] = optimizer
    first = []
    if "progress" in inspect.signature(sb.fit).parameters:
        kwargs["progress"] = lambda *_, **__: first.append(time.perf_counter()) \
            if not first else None
    t0 = time.perf_counter()
    res = sb.fit(problem, **kwargs)
    wall = time.perf_counter() - t0
    recs = list(res.records)
    x0_rec = np.asarray([r["x0"] for r in recs], dtype=float)
    compile_s = _num(getattr(res, "compile_s", None))
    if first:
        first_s = first[0] - t0
    elif recs:  # no progress callback: compile plus the first start
        first_s = (compile_s or 0.0) + float(recs[0]["time_s"])
    else:
        first_s = None
    # what each start minimised: the negative log posterior where the problem has priors
    # (as pyPESTO's objective), else the NLL
    starts = [dict(index=int(r["index"]), nll=_num(r.get("objective", r["nll"])),
                   success=bool(r["success"]),
                   status=r.get("status"), message=str(r.get("message", ""))[:200],
                   iterations=r.get("iterations"), n_evaluations=r.get("n_evaluations"),
                   time_s=_num(r.get("time_s"))) for r in recs]
    best = res.best if hasattr(res, "best") else None
    return dict(
        optimizer=getattr(res, "optimizer", optimizer), compile_s=compile_s,
        first_start_s=_num(first_s), wall_s=wall,
        start_points_match=bool(x0_rec.shape == x0s.shape
                                and np.allclose(x0_rec, x0s, rtol=0, atol=1e-12)),
        nlls=[s["nll"] for s in starts], starts=starts,
        best_x=[float(v) for v in best["x"]] if best and best.get("x") is not None else None)


# ----- pyPESTO --------------------------------------------------------------------------------
def _part(objective, attribute: str):
    """``attribute`` of a pyPESTO objective, or of the simulator's objective inside an
    aggregated one (a problem with priors aggregates it with theirs)."""
    parts = getattr(objective, "_objectives", [objective])
    return getattr(next(o for o in parts if hasattr(o, attribute)), attribute)


class PypestoPeer:
    """A pyPESTO problem of a PEtab problem on ``simulator``: ``"roadrunner"`` (objective
    without gradients: central finite differences over the free parameters) or ``"amici"``
    (AMICI's objective: forward sensitivities, the Fisher information as Fides' Hessian)."""

    def __init__(self, yaml_path: Path, sb_problem, simulator: str):
        import petab.v1 as petab
        import pypesto
        import pypesto.petab
        from pypesto.objective import FD

        self.pypesto, self.simulator, self.flattened = pypesto, simulator, False
        pp = petab.Problem.from_yaml(str(yaml_path))
        if petab.lint.measurement_table_has_timepoint_specific_mappings(pp.measurement_df):
            # neither simulator imports observable or noise parameters that differ between
            # time points: one observable per mapping instead (the same likelihood)
            petab.flatten_timepoint_specific_output_overrides(pp)
            self.flattened = True
        rtol = float(getattr(sb_problem, "rtol", 1e-8))
        atol = float(getattr(sb_problem, "atol", 1e-10))
        max_steps = int(getattr(sb_problem, "max_steps", 100_000))
        if simulator == "amici":
            import amici

            name = yaml_path.parent.name
            model = f"pypesto_{name}_{problem_hash(name)}_amici{amici.__version__}" + \
                ("_flat" if self.flattened else "")
            model = model.replace(".", "_")  # a valid C++ identifier
            importer = pypesto.petab.PetabImporter(pp, output_folder=str(AMICI_MODELS / model),
                                                   model_name=model, simulator_type="amici")
        else:
            importer = pypesto.petab.PetabImporter(pp, simulator_type="roadrunner")
        inner = importer.create_problem()
        if simulator == "amici":
            from amici.sim.sundials import SensitivityMethod

            solver = _part(inner.objective, "amici_solver")
            solver.set_relative_tolerance(rtol)
            solver.set_absolute_tolerance(atol)
            solver.set_max_steps(max_steps)
            solver.set_sensitivity_method(SensitivityMethod.forward)
            self.solver_options = dict(relative_tolerance=rtol, absolute_tolerance=atol,
                                       max_steps=max_steps, sensitivities="forward")
        else:
            opts = _part(inner.objective, "solver_options")
            opts.relative_tolerance, opts.absolute_tolerance = rtol, atol
            opts.maximum_num_steps = max_steps
            self.solver_options = dict(opts)
        self.free = free = list(inner.x_free_indices)
        self.x_names = [inner.x_names[i] for i in free]
        self.x_scales = [inner.x_scales[i] for i in free]
        if self.x_names != list(sb_problem.parameter_ids):
            raise ValueError(f"pyPESTO free parameters {self.x_names} differ from scalebridge's "
                             f"{list(sb_problem.parameter_ids)}")
        sb_scales = list(sb_problem.space.scales)
        if self.x_scales != sb_scales:
            raise ValueError(f"pyPESTO scales {self.x_scales} differ from {sb_scales}")
        lb, ub = np.asarray(inner.lb, float), np.asarray(inner.ub, float)
        if not (np.allclose(lb, sb_problem.lower) and np.allclose(ub, sb_problem.upper)):
            raise ValueError("pyPESTO bounds differ from scalebridge's")
        self.inner = inner
        self.n_sim = 0

        def fun(x):
            self.n_sim += 1
            return float(inner.objective(np.asarray(x, float)))

        self.fun = fun
        if simulator == "amici":
            self.problem = inner  # its objective takes the free parameters
        else:
            obj = FD(pypesto.Objective(fun=fun), grad=True, hess=False, sres=False,
                     delta_fun=FD_DELTA, method=FD.CENTRAL)
            self.problem = pypesto.Problem(objective=obj, lb=lb, ub=ub, x_names=self.x_names,
                                           x_scales=self.x_scales)

    def nll(self, x) -> float:
        return self.fun(np.asarray(x, float))

    def initial_assignment_parameters(self) -> dict:
        """Global parameters set by an SBML initial assignment: formula and RoadRunner's
        value now (after an objective call). RoadRunner's ``reset()``, which pyPESTO calls
        after setting the condition parameters, does not recompute them."""
        import libsbml

        model = self.inner.objective.petab_problem.model.sbml_model
        rr = self.inner.objective.roadrunner_instance
        out = {}
        for ia in model.getListOfInitialAssignments():
            sym = ia.getSymbol()
            if model.getParameter(sym) is not None:
                out[sym] = dict(formula=libsbml.formulaToL3String(ia.getMath()),
                                roadrunner_value=_num(rr[sym]))
        return out

    def optimizer(self, tool: str):
        import pypesto.optimize as po

        if tool in ("pypesto-fides", "pypesto-amici-fides"):
            # the Hessian: the objective's where it has one (AMICI's Fisher information),
            # else BFGS
            return po.FidesOptimizer(verbose=logging.ERROR,
                                     options={"maxiter": PYPESTO_MAXITER})
        if tool == "pypesto-lbfgsb":
            return po.ScipyOptimizer(method="L-BFGS-B",
                                     options={"maxiter": PYPESTO_MAXITER,
                                              "maxfun": PYPESTO_MAXFUN, "disp": False})
        raise ValueError(f"unknown pyPESTO tool {tool!r}")

    def run(self, tool: str, x0s) -> dict:
        import pypesto.optimize as po

        opt = self.optimizer(tool)
        starts, first_s = [], None
        t0 = time.perf_counter()
        for i, x0 in enumerate(x0s):
            n0, ts = self.n_sim, time.perf_counter()
            rec = dict(index=i, nll=None, success=False, status=None, message="",
                       n_gradients=None, n_evaluations=None, time_s=None, x=None)
            try:
                r = opt.minimize(self.problem, x0=np.array(x0, float), id=str(i),
                                 history_options=self.pypesto.HistoryOptions(),
                                 optimize_options=po.OptimizeOptions(allow_failed_starts=True))
                flag = r.exitflag
                x = None if r.x is None else np.asarray(r.x, float)
                if x is not None and x.size != len(self.free):  # pyPESTO reports all
                    x = x[self.free]
                rec.update(nll=_num(r.fval), status=str(flag), message=str(r.message)[:200],
                           n_gradients=r.n_grad,
                           x=None if x is None else [float(v) for v in x])
                if self.simulator == "amici":  # its objective is not counted by self.fun
                    rec["n_evaluations"] = int(r.n_fval)
                if tool in ("pypesto-fides", "pypesto-amici-fides"):
                    import fides
                    rec["success"] = flag in (fides.ExitFlag.FTOL, fides.ExitFlag.XTOL,
                                              fides.ExitFlag.GTOL)
                else:
                    rec["success"] = flag == 0
            except Exception as exc:  # one failed start must not stop the others
                rec["message"] = f"failed: {_first_line(exc)}"
            if self.simulator != "amici":  # objective (simulation) calls, FD included
                rec["n_evaluations"] = self.n_sim - n0
            rec["time_s"] = time.perf_counter() - ts
            starts.append(rec)
            if first_s is None:
                first_s = time.perf_counter() - t0
        wall = time.perf_counter() - t0
        ok = [s for s in starts if s["nll"] is not None]
        best = min(ok, key=lambda s: s["nll"]) if ok else None
        return dict(optimizer=str(opt), first_start_s=first_s, wall_s=wall,
                    nlls=[s["nll"] for s in starts],
                    starts=[{k: v for k, v in s.items() if k != "x"} for s in starts],
                    best_x=best["x"] if best else None)


# ----- driver ---------------------------------------------------------------------------------
def tool_label(tool: str, optimizer: str | None) -> str:
    if not tool.startswith("scalebridge"):
        return tool
    return f"{tool}[{optimizer}]" if optimizer else tool


def _simulator(tool: str) -> str:
    return "amici" if tool == "pypesto-amici-fides" else "roadrunner"


def score(entry) -> None:
    """Each tool's summary against the best value any tool found (or the reference where
    lower), its ratios to the baseline scalebridge row, and the issue's targets."""
    rows = [r for r in entry["tools"].values() if r.get("starts") is not None]
    bests = [s["nll"] for r in rows for s in r["starts"] if s["nll"] is not None]
    ref = entry["reference_nll"]
    found = min(bests + ([ref] if ref is not None else [])) if bests or ref is not None \
        else None
    entry["best_found_nll"] = _num(found)
    entry["converged_threshold"] = _num(found + CONVERGED_DELTA) if found is not None else None
    for r in rows:
        r.update(summarize([s["nll"] for s in r["starts"]], [s["time_s"] for s in r["starts"]],
                           r["wall_s"], found, entry["known_best_nll"]))
    base = next((r for r in rows if r["tool"] == "scalebridge"), None)
    if base is None:
        return
    for r in rows:
        if r is base:
            continue
        r["vs_scalebridge"] = dict(
            wall_s=_ratio(r["wall_s"], base["wall_s"]),
            time_per_converged_s=_ratio(r["time_per_converged_s"],
                                        base["time_per_converged_s"]),
            fraction_converged=_ratio(r["fraction_converged"], base["fraction_converged"]),
            best_nll_minus=_num(r["best_nll"] - base["best_nll"])
            if r["best_nll"] is not None and base["best_nll"] is not None else None)
    amici = entry["tools"].get("pypesto-amici-fides")
    peers_converge = any(r["n_converged"] for r in rows if not r["tool"].startswith("scale"))
    # (where neither converges from any start, the time per converged start says nothing)
    sb_t = base["time_per_converged_s"]
    am_t = None if amici is None else amici.get("time_per_converged_s")
    entry["targets"] = dict(
        time_per_converged_at_or_below_amici=None if amici is None
        or amici.get("starts") is None or (sb_t is None and am_t is None)
        else bool(sb_t is not None and (am_t is None or sb_t <= am_t)),
        best_at_or_below_reference=None if ref is None or base["best_nll"] is None
        else bool(base["best_nll"] <= ref + BEST_ATOL),
        fails_where_a_peer_succeeds=bool(base["n_converged"] == 0 and peers_converge))


def run_problem(name, args, record, save) -> None:
    yaml_path = petab_yaml(name)
    ref, known = REFERENCE.get(name), KNOWN_BEST.get(name)
    entry = dict(petab_yaml=str(yaml_path.relative_to(ROOT)), reference_nll=ref,
                 reference_note=NO_REFERENCE.get(name), known_best_nll=known,
                 starts=args.starts, seed=args.seed, command=record["command"],
                 date=time.strftime("%Y-%m-%d"), tools={})
    record["problems"][name] = entry
    t0 = time.perf_counter()
    problem = sb.load_petab(yaml_path)
    sb_load = time.perf_counter() - t0
    lo, hi = np.asarray(problem.lower, float), np.asarray(problem.upper, float)
    x0s = problem.space.start_points(args.starts, args.seed)
    x0s = np.clip(x0s, lo + CLIP * (hi - lo), hi - CLIP * (hi - lo))
    entry.update(parameter_ids=list(problem.parameter_ids),
                 parameter_scales=list(problem.space.scales),
                 n_parameters=len(problem.parameter_ids),
                 start_points=[[float(v) for v in x] for x in x0s])
    sb_nominal = []  # computed once, after the first scalebridge fit (or before a peer)
    priors = problem.space.has_priors

    def objective(x):
        """What the tools minimise: the NLL, less the log prior where there are priors."""
        return float(problem.nll(x) - (problem.log_prior(x) if priors else 0.0))

    if priors and ref is not None:  # the reference is the NLL at the nominal parameters
        entry["reference_nll"] = ref - float(problem.log_prior(problem.x_nominal))
        entry["reference_note"] = (f"with priors: the objective is the negative log "
                                   f"posterior; the reference, {ref} without the priors, "
                                   "is taken at the nominal parameters with them")

    def nominal_sb():
        if not sb_nominal:
            sb_nominal.append(objective(problem.x_nominal))
        return sb_nominal[0]

    peers = {}  # simulator -> (peer or None, error or None, load seconds, nominal NLL)
    best_x = {}
    for tool in args.tools:
        for optimizer in (args.optimizer if tool.startswith("scalebridge") else [None]):
            label = tool_label(tool, optimizer)
            print(f"[{name}] {label}: {args.starts} starts ...", flush=True)
            row = dict(tool=tool, optimizer=optimizer)
            entry["tools"][label] = row
            if tool.startswith("scalebridge"):
                row.update(status="ok", load_s=sb_load)
                executor = "threads" if tool == "scalebridge-threads" else None
                row["executor"] = executor or "in-process, one start at a time"
                try:
                    out = run_scalebridge(problem, args.starts, args.seed, optimizer, x0s,
                                          executor)
                except Exception as exc:
                    row.update(status="error", error=_first_line(exc))
                    save()
                    continue
                row["nll_nominal"] = nominal_sb()
            else:
                simulator = _simulator(tool)
                if simulator not in peers:
                    t1 = time.perf_counter()
                    try:
                        peer = PypestoPeer(yaml_path, problem, simulator)
                        peers[simulator] = (peer, None, time.perf_counter() - t1,
                                            peer.nll(np.asarray(problem.x_nominal, float)))
                    except Exception as exc:
                        peers[simulator] = (None, _first_line(exc), time.perf_counter() - t1,
                                            None)
                peer, error, load_s, peer_nominal = peers[simulator]
                if error is not None:
                    row.update(status="load_failed", error=error, load_s=load_s)
                    print(f"  pyPESTO ({simulator}) cannot load {name}: {error}", flush=True)
                    save()
                    continue
                sbn = nominal_sb()
                agrees = bool(math.isfinite(peer_nominal) and abs(peer_nominal - sbn)
                              <= NOMINAL_ATOL)
                row.update(load_s=load_s, simulator=simulator, flattened=peer.flattened,
                           nll_nominal=_num(peer_nominal),
                           nll_nominal_scalebridge=sbn, nominal_agrees=agrees,
                           solver_options=peer.solver_options)
                if simulator == "roadrunner":
                    row["fd"] = dict(method="central", delta=FD_DELTA, over="free parameters")
                if not agrees:
                    try:
                        row["initial_assignment_parameters"] = \
                            peer.initial_assignment_parameters()
                    except Exception as exc:
                        row["initial_assignment_parameters"] = _first_line(exc)
                if not agrees and not args.fit_mismatched:
                    row.update(status="skipped_nll_mismatch",
                               error=f"NLL at the nominal parameters is {peer_nominal:.6g}, "
                                     f"scalebridge {sbn:.6g}")
                    print(f"  skipped: {row['error']}", flush=True)
                    save()
                    continue
                row["status"] = "ok" if agrees else "ok_nll_mismatch"
                out = peer.run(tool, x0s)
                out["start_points_match"] = True  # x0s passed as they are
            out.pop("nlls")
            row.update(out)
            best_x[label] = row.pop("best_x")
            score(entry)
            save()
            print(f"  best {row['best_nll']}, converged {row['n_converged']}/{args.starts} "
                  f"(so far), wall {row['wall_s']:.1f} s", flush=True)
    # each tool's best point under the other objectives (pyPESTO's, scalebridge's)
    for label, x in best_x.items():
        row = entry["tools"][label]
        if x is None:
            continue
        if not row["tool"].startswith("scalebridge"):
            row["scalebridge_nll_at_best"] = _num(objective(np.asarray(x, float)))
        own = None if row["tool"].startswith("scalebridge") else _simulator(row["tool"])
        for simulator, (peer, *_rest) in peers.items():
            if peer is not None and simulator != own:
                row[f"pypesto_{simulator}_nll_at_best"] = _num(peer.nll(x))
    entry["nll_nominal_scalebridge"] = sb_nominal[0] if sb_nominal else None
    score(entry)
    save()


def _fmt(v, spec=".4f"):
    return "–" if v is None else format(v, spec)


def markdown(record) -> str:
    lines = ["| problem | tool | NLL nominal | best NLL | best - reference | converged | "
             "fraction | wall s | compile s | s / converged | s/conv ratio |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    targets = []
    for name, entry in record["problems"].items():
        ref = entry.get("reference_nll")
        for label, r in entry["tools"].items():
            vs = r.get("vs_scalebridge", {})
            if r.get("status", "").startswith("ok") and "n_converged" in r:
                below = None if ref is None or r.get("best_nll") is None \
                    else r["best_nll"] - ref
                lines.append(
                    f"| {name} | {label} | {_fmt(r.get('nll_nominal'))} | "
                    f"{_fmt(r.get('best_nll'))} | {_fmt(below, '.2g')} | "
                    f"{r['n_converged']}/{r['n_starts']} | "
                    f"{_fmt(r['fraction_converged'], '.2f')} | {_fmt(r['wall_s'], '.1f')} | "
                    f"{_fmt(r.get('compile_s'), '.1f')} | "
                    f"{_fmt(r['time_per_converged_s'], '.2f')} | "
                    f"{_fmt(vs.get('time_per_converged_s'), '.2f')} |")
            else:
                lines.append(f"| {name} | {label} | {_fmt(r.get('nll_nominal'), '.4g')} | "
                             f"{r.get('status')}: {r.get('error', '')} | | | | | | | |")
        t = entry.get("targets")
        if t:
            targets.append(f"| {name} | {_yes(t['time_per_converged_at_or_below_amici'])} | "
                           f"{_yes(t['best_at_or_below_reference'])} | "
                           f"{_yes(not t['fails_where_a_peer_succeeds'])} |")
    if targets:
        lines += ["", "| problem | s / converged start at or below pyPESTO + AMICI | "
                  "best NLL at or below the reference | no failure where a peer succeeds |",
                  "|---|---|---|---|", *targets]
    return "\n".join(lines)


def _yes(flag) -> str:
    return "–" if flag is None else ("met" if flag else "missed")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--starts", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--problems", default=",".join(PROBLEMS),
                    help="comma-separated problem names (directories of tests/data/petab)")
    ap.add_argument("--tools", default=",".join(TOOLS), help=f"comma-separated of {TOOLS}")
    ap.add_argument("--optimizer", default=None,
                    help="scalebridge optimiser(s), comma-separated (default: fit's default)")
    ap.add_argument("--fit-mismatched", action="store_true",
                    help="also fit with a peer whose NLL at the nominal parameters differs")
    ap.add_argument("--out", default=str(HERE / "results" / "calibration.json"))
    args = ap.parse_args(argv)
    args.problems = [p.strip() for p in args.problems.split(",") if p.strip()]
    args.tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    bad = [t for t in args.tools if t not in TOOLS]
    if bad:
        ap.error(f"unknown tools {bad}; use {TOOLS}")
    args.optimizer = ([o.strip() for o in args.optimizer.split(",") if o.strip()]
                      if args.optimizer else [None])
    if args.starts < 1:
        ap.error("--starts must be >= 1")

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    for lg in ("pypesto", "fides", "petab"):
        logging.getLogger(lg).setLevel(logging.CRITICAL)

    fit_params = inspect.signature(sb.fit).parameters
    record = dict(
        benchmark="calibration", description=__doc__.split("\n\n")[0],
        command=" ".join(["python", "benchmarks/calibration.py",
                          *(sys.argv[1:] if argv is None else argv)]),
        machine=dict(platform=platform.platform(), python=platform.python_version(),
                     cpu_count=os.cpu_count(), processor=platform.processor()),
        versions=_versions(),
        settings=dict(
            starts=args.starts, seed=args.seed, problems=args.problems, tools=args.tools,
            scalebridge_optimizers=args.optimizer,
            scalebridge_fit_defaults={k: (v.default if v.default is not inspect._empty else None)
                                      for k, v in fit_params.items()
                                      if k in ("optimizer", "max_iter")},
            converged="final NLL <= reference_nll + 1.92",
            nominal_atol=NOMINAL_ATOL, start_point_clip=CLIP,
            pypesto=dict(objective="RoadRunnerObjective (CVODE) via PetabImporter("
                                   "simulator_type='roadrunner')",
                         gradient="pypesto.objective.FD, central, over free parameters",
                         fd_delta=FD_DELTA,
                         fides=dict(maxiter=PYPESTO_MAXITER, hessian_update="BFGS"),
                         lbfgsb=dict(maxiter=PYPESTO_MAXITER, maxfun=PYPESTO_MAXFUN)),
            pypesto_amici=dict(objective="AmiciObjective via PetabImporter("
                                         "simulator_type='amici')",
                               gradient="forward sensitivities (CVODES)",
                               fides=dict(maxiter=PYPESTO_MAXITER,
                                          hessian="the objective's Fisher information")),
            wall_time=("multi-start run only (problem loading in load_s); scalebridge's "
                       "includes JIT compilation (compile_s, as fit reports it; "
                       "first_start_s includes any compilation done in the first start). "
                       "With several scalebridge optimisers, later ones reuse the JIT caches "
                       "of the problem warmed by earlier ones"),
            ratios="tool / baseline scalebridge (time: > 1 means scalebridge is faster)"),
        problems={})
    out = Path(args.out)
    # a run over some problems keeps the other problems' entries of an earlier run (each
    # entry says its starts, seed and command)
    if out.is_file():
        kept = json.loads(out.read_text()).get("problems", {})
        record["problems"] = {k: v for k, v in kept.items() if k not in args.problems}

    def save():
        record["table_markdown"] = markdown(record)
        write_json(out, record)

    # start JAX's runtime before timing
    import jax
    import jax.numpy as jnp
    jax.block_until_ready(jax.jit(lambda x: x * 2.0)(jnp.ones(3)))
    t0 = time.perf_counter()
    for name in args.problems:
        run_problem(name, args, record, save)
    record["total_s"] = time.perf_counter() - t0
    save()
    print()
    print(markdown(record))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
