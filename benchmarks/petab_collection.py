"""The PEtab benchmark collection: load, compile, NLL and gradient of every problem, against AMICI.

For each problem folder in tests/data/petab/ (the Benchmark-Models-PEtab problems, Hass et al.
2019, Bioinformatics 35:3073; copied from the collection, tests/data/README.md), in one run:

- scalebridge: ``sb.load_petab(yaml)`` (load seconds), the NLL at the nominal parameters
  (``problem.nll()``) and the NLL with its gradient (``problem.nll_and_grad()``: forward
  sensitivities, which also give the Fisher information, or for a model of 65 states or more
  the discrete adjoint; the row's ``gradient_sensitivities``). The first call of each includes the
  JIT compilation: ``compile_s`` is the two first calls less one timed call of each. NLL and
  gradient times are medians of repeated calls at the nominal parameters.
- AMICI (``amici`` 1.0, the bench extra) through its PEtab import
  (``amici.importers.petab.v1.import_petab_problem``): model import and C++ compilation
  seconds, the NLL at the nominal parameters (``simulate_petab``, -llh), and the times of a
  simulation of all conditions and of a forward-sensitivity gradient (CVODES, staggered) on
  ExpData prepared once, as pyPESTO's AMICI objective caches them (``run_simulations``; the
  mapping of model to problem parameters is excluded from AMICI's time, as the Python around
  the solver; AMICI's NLL, the row's ``nll`` and the reference are the likelihood alone;
  ``nll_with_priors`` beside it where a problem has priors). Both tools run at rtol 1e-8, atol
  1e-10 (the scalebridge Problem defaults).

Each tool runs on each problem in a child process with a time limit; a problem that a tool
cannot load, simulate or finish in time gets a row that says why. The reference NLL is AMICI's
benchmark table (tests/benchmark_models/benchmark_models.yaml of AMICI-dev/AMICI, nll = -llh),
as listed in
tests/data/README.md. Results: benchmarks/results/petab_collection.{json,md}, rewritten
atomically after every problem and tool; a rerun keeps the rows of problems whose files,
scalebridge source and tool versions are unchanged (``--force`` redoes them). AMICI's compiled
models are kept in benchmarks/.amici_models/<problem>-<content hash>/ (never reused for changed
files).

    python benchmarks/petab_collection.py                         # every problem, both tools
    python benchmarks/petab_collection.py --problems Boehm_JProteomeRes2014 --tools scalebridge
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

# the PEtab helpers of the calibration benchmark (this folder is on sys.path when run)
from calibration import (
    AMICI_MODELS,
    NO_REFERENCE,
    PETAB_DIR,
    REFERENCE,
    _first_line,
    _hash_files,
    _num,
    _ratio,
    petab_yaml,
    problem_hash,
)
from calibration import _versions as versions

HERE = Path(__file__).parent
ROOT = HERE.parent
RESULTS = HERE / "results"
RTOL, ATOL = 1e-8, 1e-10
NLL_RTOL = 1e-4  # the issue's target: within 1e-4 relative of the reference
COMPILE_TARGET_S = 30.0


# ----- helpers ----------------------------------------------------------------------------------
def _versions() -> dict:
    return versions(("scalebridge", "jax", "jaxlib", "diffrax", "amici", "petab", "numpy"))


def source_hash() -> str:
    """Content hash of scalebridge's source: a changed engine redoes the scalebridge rows."""
    return _hash_files(list((ROOT / "src" / "scalebridge").rglob("*.py")))


def tool_key(tool: str) -> str:
    """What a tool's numbers depend on besides the problem: scalebridge's source and JAX
    version, or AMICI's version."""
    if tool == "scalebridge":
        return f"{source_hash()}-jax{version('jax')}"
    return f"amici{version('amici')}"


def _timed(fn, repeats: int, budget_s: float) -> float:
    """Median milliseconds of up to ``repeats`` calls of ``fn``: at least three, or one
    when that one call alone takes more than the budget ``budget_s``."""
    times, start = [], time.perf_counter()
    while len(times) < repeats:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
        enough = 1 if times[0] > budget_s else 3
        if len(times) >= enough and time.perf_counter() - start > budget_s:
            break
    return 1e3 * statistics.median(times)


# ----- the two tools (each in its own child process) ----------------------------------------
def run_scalebridge(name: str, repeats: int, budget_s: float) -> dict:
    import jax

    import scalebridge as sb

    out = {}
    t = time.perf_counter()
    problem = sb.load_petab(petab_yaml(name))
    out["load_s"] = time.perf_counter() - t
    model = problem.model
    keys = [c for c in ("preequilibrationConditionId", "simulationConditionId")
            if c in problem.measurements]
    out.update(states=len(model.state_names), parameters=len(problem.parameter_ids),
               conditions=len(problem.measurements[keys].drop_duplicates()),
               data_points=len(problem.measurements))
    out["gradient_sensitivities"] = problem.gradient_sensitivities
    x = problem.x_nominal
    t = time.perf_counter()
    nll = problem.nll(x)
    first_nll = time.perf_counter() - t
    out["nll_ms"] = _timed(lambda: problem.nll(x), repeats, budget_s)
    out["nll"] = nll
    if problem.space.has_priors:  # with the priors too (negative log posterior), for the record
        out["nll_likelihood_only"] = nll
        out["nll"] = nll - problem.log_prior(x)
    out["nll_compile_s"] = first_nll - out["nll_ms"] / 1e3
    # what the row keeps if the gradient does not finish within the parent's time limit
    print("PARTIAL " + json.dumps(out), flush=True)
    t = time.perf_counter()
    problem.nll_and_grad(x)
    first_grad = time.perf_counter() - t
    out["gradient_ms"] = _timed(lambda: problem.nll_and_grad(x), repeats, budget_s)
    out["compile_s"] = (first_nll - out["nll_ms"] / 1e3) + (first_grad - out["gradient_ms"] / 1e3)
    out["device"] = str(jax.devices()[0].platform)
    return out


def run_amici(name: str, repeats: int, budget_s: float) -> dict:
    import logging

    import amici
    import petab.v1 as petab
    from amici.importers.petab.v1 import import_petab_problem
    from amici.sim.sundials import SensitivityMethod, SensitivityOrder, run_simulations
    from amici.sim.sundials.petab.v1 import simulate_petab
    from amici.sim.sundials.petab.v1._conditions import create_edatas, fill_in_parameters
    from amici.sim.sundials.petab.v1._parameter_mapping import create_parameter_mapping

    logging.getLogger("amici").setLevel(logging.ERROR)
    out = {}
    pp = petab.Problem.from_yaml(petab_yaml(name))
    build = AMICI_MODELS / f"{name}-{problem_hash(name)}-amici{amici.__version__}"
    out["amici_model_reused"] = (build / ".complete").is_file()
    t = time.perf_counter()
    model = import_petab_problem(pp, build, compile_=not out["amici_model_reused"])
    out["amici_import_s"] = time.perf_counter() - t
    (build / ".complete").touch()
    solver = model.create_solver()
    solver.set_relative_tolerance(RTOL)
    solver.set_absolute_tolerance(ATOL)
    solver.set_max_steps(100_000)
    x = {pid: v for pid, v in zip(pp.x_free_ids, pp.x_nominal_free_scaled, strict=True)}
    res = simulate_petab(pp, amici_model=model, solver=solver, problem_parameters=x,
                         scaled_parameters=True)
    if not all(r.status == amici.sim.sundials.AMICI_SUCCESS for r in res["rdatas"]):
        raise RuntimeError("AMICI's simulation at the nominal parameters failed")
    out["amici_nll"] = -float(res["llh"])  # the likelihood only (no priors)
    conditions = pp.get_simulation_conditions_from_measurement_df()
    edatas = create_edatas(model, pp, conditions)
    mapping = create_parameter_mapping(pp, conditions, scaled_parameters=True, amici_model=model)
    fill_in_parameters(edatas, x, True, mapping, model)

    def run(order):
        solver.set_sensitivity_order(order)
        rd = run_simulations(model, solver, edatas)
        if not all(r.status == amici.sim.sundials.AMICI_SUCCESS for r in rd):
            raise RuntimeError(f"AMICI's simulation failed (sensitivity order {order})")

    solver.set_sensitivity_method(SensitivityMethod.forward)
    run(SensitivityOrder.none)
    out["amici_simulation_ms"] = _timed(lambda: run(SensitivityOrder.none), repeats, budget_s)
    run(SensitivityOrder.first)
    out["amici_gradient_ms"] = _timed(lambda: run(SensitivityOrder.first), repeats, budget_s)
    return out


def child_main(tool: str, name: str, repeats: int, budget_s: float):
    fn = run_scalebridge if tool == "scalebridge" else run_amici
    key = f"{problem_hash(name)}-{tool_key(tool)}"  # what this child runs, hashed as it starts
    try:
        out = {"ok": True, **fn(name, repeats, budget_s)}
    except Exception as exc:  # recorded in the row: the benchmark goes on with the others
        out = {"ok": False, "error": _first_line(exc)}
    out["key"] = key
    print("RESULT " + json.dumps(out), flush=True)


def run_child(tool: str, name: str, args) -> dict:
    env = dict(os.environ)
    # AMICI's model compilation needs the swig executable of this environment
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", tool, name,
           "--repeats", str(args.repeats), "--budget", str(args.budget)]
    key = f"{problem_hash(name)}-{tool_key(tool)}"  # for a child that gives no result
    t = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, env=env)
    except subprocess.TimeoutExpired as exc:
        out = {"ok": False, "error": f"no result within {args.timeout:.0f} s (--timeout)",
               "key": key}
        stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        partial = [ln for ln in stdout.splitlines() if ln.startswith("PARTIAL ")]
        if partial:  # the NLL finished, the gradient did not
            out = {**json.loads(partial[-1][8:]), **out,
                   "error": f"gradient: no result within {args.timeout:.0f} s (--timeout)"}
        return out
    wall = time.perf_counter() - t
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            out = json.loads(line[7:])
            out["wall_s"] = wall
            return out
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"ok": False, "error": f"child process exited {proc.returncode}: {tail[:300]}",
            "key": key}


def _local(message: str | None) -> str | None:
    """A message with paths relative to the repository."""
    return None if message is None else message.replace(str(ROOT) + os.sep, "")


# ----- the table ----------------------------------------------------------------------------------
# references in the collection's table that no tool reproduces on the collection's files
DISPUTED = {
    "Chen_MSB2009": "the reference disagrees with AMICI 1.0.1 on the same files (its NLL in "
                    "this table) and with the collection's own simulatedData table (NLL "
                    "130669.49, petab's formula); scalebridge agrees with AMICI",
}


def make_row(name: str, sb_out: dict | None, am_out: dict | None) -> dict:
    ref = REFERENCE.get(name)
    row = {"problem": name, "reference_nll": ref,
           "reference_note": NO_REFERENCE.get(name) or DISPUTED.get(name)}
    sb_out = sb_out or {}
    am_out = am_out or {}
    for k in ("states", "parameters", "conditions", "data_points", "gradient_sensitivities"):
        row[k] = sb_out.get(k)
    for k in ("load_s", "compile_s", "nll_compile_s", "nll_ms", "gradient_ms"):
        row[k] = _num(sb_out.get(k))
    # the child's "nll" includes the priors where the problem has any; the reference (and
    # AMICI's NLL) is of the likelihood alone
    row["nll"] = _num(sb_out.get("nll_likelihood_only", sb_out.get("nll")))
    row["nll_with_priors"] = _num(sb_out.get("nll")) if "nll_likelihood_only" in sb_out \
        else None
    row["error"] = None if sb_out.get("ok", True) else _local(sb_out.get("error"))
    nll = row["nll"]
    row["nll_rel_error"] = (abs(nll - ref) / abs(ref)) if nll is not None and ref else None
    row["nll_within_1e-4"] = (row["nll_rel_error"] <= NLL_RTOL) \
        if row["nll_rel_error"] is not None else None
    row["compile_within_30s"] = (row["compile_s"] <= COMPILE_TARGET_S) \
        if row["compile_s"] is not None else None
    for k in ("amici_import_s", "amici_nll", "amici_simulation_ms", "amici_gradient_ms"):
        row[k] = _num(am_out.get(k))
    row["amici_model_reused"] = am_out.get("amici_model_reused")
    row["amici_error"] = None if am_out.get("ok", True) else _local(am_out.get("error"))
    # below 1: scalebridge faster than AMICI
    row["gradient_ratio"] = _ratio(row["gradient_ms"], row["amici_gradient_ms"])
    row["simulation_ratio"] = _ratio(row["nll_ms"], row["amici_simulation_ms"])
    return row


def _amici_rel_error(r: dict) -> float | None:
    """|NLL - AMICI's NLL| / |AMICI's NLL| (the likelihood alone, both)."""
    if r["nll"] is None or r["amici_nll"] is None:
        return None
    return abs(r["nll"] - r["amici_nll"]) / abs(r["amici_nll"])


def summary(rows: list[dict]) -> dict:
    with_ref = [r for r in rows if r["reference_nll"] is not None]
    ratios = [r["gradient_ratio"] for r in rows if r["gradient_ratio"] is not None]
    vs_amici = [q for q in map(_amici_rel_error, rows) if q is not None]
    return {
        "problems": len(rows),
        "nll_within_1e-4": sum(bool(r["nll_within_1e-4"]) for r in with_ref),
        "with_reference": len(with_ref),
        "nll_within_1e-4_of_amici": sum(q <= NLL_RTOL for q in vs_amici),
        "compared_with_amici": len(vs_amici),
        "compile_within_30s": sum(bool(r["compile_within_30s"]) for r in rows),
        "gradient_compared": len(ratios),
        "gradient_at_or_below_amici": sum(q <= 1.0 for q in ratios),
        "gradient_ratio_geomean": math.exp(statistics.fmean(math.log(q) for q in ratios))
        if ratios else None,
    }


def _f(v, fmt):
    return "–" if v is None else format(v, fmt)


def markdown(doc: dict) -> str:
    s = doc["summary"]
    lines = [
        "# PEtab benchmark collection: scalebridge and AMICI",
        "",
        f"`python benchmarks/petab_collection.py` on {doc['machine']} ({doc['date']}); "
        f"versions {', '.join(f'{k} {v}' for k, v in doc['versions'].items() if v)}. "
        "rtol 1e-8, atol 1e-10 for both tools. Times are medians at the nominal parameters; "
        "`gradient` is scalebridge's NLL + gradient + Fisher information (forward "
        "sensitivities) and AMICI's forward-sensitivity run on prepared ExpData. ratio = "
        "scalebridge / AMICI (below 1: scalebridge faster).",
        "",
        f"- NLL within 1e-4 relative of the reference: {s['nll_within_1e-4']} of "
        f"{s['with_reference']} problems with one",
        f"- NLL within 1e-4 relative of AMICI's (same run, same files): "
        f"{s['nll_within_1e-4_of_amici']} of {s['compared_with_amici']} problems both gave",
        f"- compile (NLL + gradient) within 30 s: {s['compile_within_30s']} of {s['problems']}",
        f"- gradient at or below AMICI's: {s['gradient_at_or_below_amici']} of "
        f"{s['gradient_compared']} compared; geometric-mean ratio "
        f"{_f(s['gradient_ratio_geomean'], '.2f')}",
        "",
        "| problem | states | load s | compile s | NLL | reference | rel. error | NLL ms | "
        "gradient ms | AMICI import s | AMICI NLL | AMICI sim ms | AMICI gradient ms | "
        "gradient ratio | notes |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["rows"]:
        notes = "; ".join(n for n in (
            r["error"] and f"scalebridge: {r['error']}",
            r["amici_error"] and f"AMICI: {r['amici_error']}",
            r["reference_note"]) if n).replace("|", "/")
        lines.append(
            f"| {r['problem']} | {r['states'] if r['states'] is not None else '–'} | "
            f"{_f(r['load_s'], '.1f')} | {_f(r['compile_s'], '.1f')} | {_f(r['nll'], '.6f')} | "
            f"{_f(r['reference_nll'], '.6f')} | {_f(r['nll_rel_error'], '.1e')} | "
            f"{_f(r['nll_ms'], '.2f')} | {_f(r['gradient_ms'], '.2f')} | "
            f"{_f(r['amici_import_s'], '.0f')} | {_f(r['amici_nll'], '.6f')} | "
            f"{_f(r['amici_simulation_ms'], '.2f')} | {_f(r['amici_gradient_ms'], '.2f')} | "
            f"{_f(r['gradient_ratio'], '.2f')} | {notes} |")
    return "\n".join(lines) + "\n"


def write(doc: dict, rows_by_name: dict):
    from scalebridge.runtime.files import write_json

    doc["rows"] = [rows_by_name[n] for n in sorted(rows_by_name)]
    doc["summary"] = summary(doc["rows"])
    write_json(RESULTS / "petab_collection.json", doc["rows"])
    write_json(RESULTS / "petab_collection_run.json", {k: v for k, v in doc.items()
                                                       if k != "rows"})
    tmp = RESULTS / "petab_collection.md.tmp"
    tmp.write_text(markdown(doc))
    tmp.replace(RESULTS / "petab_collection.md")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", default=None,
                    help="comma-separated problem names (folders of tests/data/petab)")
    ap.add_argument("--tools", default="scalebridge,amici")
    ap.add_argument("--timeout", type=float, default=1200.0,
                    help="seconds for one tool on one problem, compilation included")
    ap.add_argument("--repeats", type=int, default=7, help="timed calls per number")
    ap.add_argument("--budget", type=float, default=30.0,
                    help="seconds of timed calls per number (at least 3 calls)")
    ap.add_argument("--force", action="store_true", help="redo rows a previous run recorded")
    ap.add_argument("--child", nargs=2, metavar=("TOOL", "PROBLEM"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child_main(*args.child, args.repeats, args.budget)

    names = sorted(p.name for p in PETAB_DIR.iterdir() if p.is_dir())
    if args.problems:
        wanted = args.problems.split(",")
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            sys.exit(f"error: no problem folder {', '.join(unknown)} in {PETAB_DIR}")
        names = wanted
    tools = args.tools.split(",")
    versions = _versions()
    old_path = RESULTS / "petab_collection.json"
    old_rows = {r["problem"]: r for r in json.loads(old_path.read_text())} \
        if old_path.is_file() else {}
    old_run = RESULTS / "petab_collection_run.json"
    raw = json.loads(old_run.read_text()).get("raw", {}) if old_run.is_file() else {}
    if "amici" not in tools and versions.get("amici") is None:  # AMICI rows of a previous run
        kept = {e["amici"]["key"].rsplit("-amici", 1)[-1] for e in raw.values()
                if "key" in e.get("amici", {})}
        versions["amici"] = f"{', '.join(sorted(kept))} (rows of an earlier run)" \
            if kept else None
    doc = {"benchmark": "petab_collection", "date": time.strftime("%Y-%m-%d"),
           "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, "
                      f"{platform.python_implementation()} {platform.python_version()}",
           "versions": versions, "rtol": RTOL, "atol": ATOL, "raw": raw}
    rows_by_name = {n: old_rows[n] for n in old_rows if (PETAB_DIR / n).is_dir()}
    for name in names:
        entry = raw.setdefault(name, {})
        for tool in ("scalebridge", "amici"):
            if tool not in tools:
                continue
            prev = entry.get(tool)
            fresh = prev and prev.get("key") == f"{problem_hash(name)}-{tool_key(tool)}"
            if fresh and not args.force:
                continue
            print(f"{name}: {tool} ...", flush=True)
            out = entry[tool] = run_child(tool, name, args)
            msg = out.get("error") or ", ".join(
                f"{k} {v:.4g}" for k, v in out.items()
                if isinstance(v, float) and k != "wall_s")
            print(f"{name}: {tool}: {msg}", flush=True)
            rows_by_name[name] = make_row(name, entry.get("scalebridge"), entry.get("amici"))
            write(doc, rows_by_name)
        rows_by_name[name] = make_row(name, entry.get("scalebridge"), entry.get("amici"))
    write(doc, rows_by_name)
    print(json.dumps(doc["summary"], indent=1))


if __name__ == "__main__":
    main()
