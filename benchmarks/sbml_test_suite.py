"""The SBML Test Suite's semantic time-course cases: scalebridge and libroadrunner, case by case.

The cases (SBML Test Suite 3.3.0, the odd-numbered half; tests/data/sbml-test-suite/, LGPL,
its LICENSE.txt) each give a model, the output times, the variables to report (as amounts
or concentrations) and the expected values with the tolerances a simulator must meet:
``|x - expected| <= absolute + relative * |expected|`` at every time and variable (NaN
where the expected value is NaN). Every case ends in one of:

- ``passed``: within the tolerances;
- ``failed``: simulated, but a value is outside them or the simulation failed (a wrong
  number: a bug);
- ``refused``: an ``SBMLError`` naming a feature that is not supported;
- ``crashed``: any other exception.

Both tools run each case in this process (scalebridge at rtol 1e-10, atol 1e-14;
libroadrunner's CVODE at the same tolerances), and the results go to
benchmarks/results/sbml_test_suite.json: the counts, failures and refusals by test tag and
component tag, and each case's outcome with its reason, for both tools. The file is
rewritten atomically every 25 cases, and a rerun keeps the outcomes of cases whose files
and scalebridge source are unchanged (``--force`` redoes them).

    python benchmarks/sbml_test_suite.py                   # every case
    python benchmarks/sbml_test_suite.py --cases 1-100     # a range of case numbers
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
import warnings
from collections import Counter
from importlib.metadata import version
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
ROOT = HERE.parent
CASES = ROOT / "tests" / "data" / "sbml-test-suite" / "cases"
RESULTS = HERE / "results" / "sbml_test_suite.json"
RTOL, ATOL = 1e-10, 1e-14
LEVELS = ("l3v2", "l3v1", "l2v5")  # the file each case is run from: the newest level given


# ----- one case ------------------------------------------------------------------------
def read_case(number: int | str) -> dict:
    """A case's settings, tags, SBML file and expected results."""
    folder = CASES / f"{int(number):05d}"
    name = folder.name
    case = {"case": name, "folder": folder}
    meta = {}
    for line in (folder / f"{name}-model.m").read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("testTags", "componentTags", "testType", "packagesPresent"):
            meta[key.strip()] = [v.strip() for v in value.split(",") if v.strip()]
    case["tags"] = meta.get("testTags", []) + meta.get("packagesPresent", [])
    case["components"] = meta.get("componentTags", [])
    case["type"] = (meta.get("testType") or ["?"])[0]
    if case["type"] != "TimeCourse":  # flux balance and stochastic cases are not run
        return case
    for line in (folder / f"{name}-settings.txt").read_text().splitlines():
        key, _, value = line.partition(":")
        case[key.strip()] = value.strip()
    for key in ("variables", "amount", "concentration"):
        case[key] = [v.strip() for v in case.get(key, "").split(",") if v.strip()]
    for key in ("start", "duration", "absolute", "relative"):
        case[key] = float(case[key])
    case["steps"] = int(case["steps"])
    case["sbml"] = next(folder / f"{name}-sbml-{lv}.xml" for lv in LEVELS
                        if (folder / f"{name}-sbml-{lv}.xml").is_file())
    lines = (folder / f"{name}-results.csv").read_text().splitlines()
    header = [h.strip() for h in lines[0].split(",")]
    values = np.array([[float(x) for x in ln.split(",")] for ln in lines[1:] if ln.strip()])
    # the first column is the time, whatever its name (a model may have a variable "Time")
    case["expected"] = {h: values[:, j] for j, h in enumerate(header) if j > 0}
    return case


def case_numbers() -> list[int]:
    return sorted(int(p.name) for p in CASES.iterdir() if p.is_dir())


def times_of(case) -> np.ndarray:
    return np.linspace(case["start"], case["start"] + case["duration"], case["steps"] + 1)


def compare(case, values: dict) -> str | None:
    """None if every variable is within the case's tolerances, else what is off."""
    worst = None
    for v in case["variables"]:
        expected = case["expected"][v]
        got = np.asarray(values[v], dtype=float)
        if got.shape != expected.shape:
            return f"{v}: {got.shape[0]} values, expected {expected.shape[0]}"
        same_nan = np.isnan(expected) & np.isnan(got)
        same_inf = np.isinf(expected) & (got == expected)
        with np.errstate(invalid="ignore"):
            excess = np.abs(got - expected) / (case["absolute"]
                                               + case["relative"] * np.abs(expected))
        excess = np.where(same_nan | same_inf, 0.0, np.nan_to_num(excess, nan=np.inf))
        i = int(np.argmax(excess))
        if excess[i] > 1.0 and (worst is None or excess[i] > worst[0]):
            worst = (excess[i], v, i, got[i], expected[i])
    if worst is None:
        return None
    excess, v, i, got, expected = worst
    return (f"{v} at t={times_of(case)[i]:g}: {got:.6g}, expected {expected:.6g} "
            f"({excess:.3g} times the tolerance)")


def run_scalebridge(case) -> tuple[str, str | None]:
    import scalebridge as sb
    from scalebridge.errors import SBMLError, SimulationError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = sb.load_sbml(case["sbml"])
        values = _scalebridge_values(sb, model, case)
    except SBMLError as exc:
        return "refused", str(exc).replace(str(ROOT) + os.sep, "")
    except SimulationError as exc:  # simulated, but no numbers: as wrong as wrong ones
        return "failed", str(exc)[:300]
    except _Unreported as exc:
        return "refused", f"{exc.args[0]!r} is not a state, observable or parameter"
    except Exception as exc:  # noqa: BLE001 - every other failure is a crash, recorded
        return "crashed", f"{type(exc).__name__}: {str(exc)[:300]}"
    problem = compare(case, values)
    return ("passed", None) if problem is None else ("failed", problem)


def _scalebridge_values(sb, model, case) -> dict:
    """Each requested variable on the case's times, in amounts or concentrations."""
    import libsbml

    times = times_of(case)
    grid = times if times[0] == 0.0 else np.concatenate([[0.0], times])
    sol = sb.simulate(model, grid, rtol=RTOL, atol=ATOL, max_steps=1_000_000)
    m = libsbml.readSBMLFromFile(str(case["sbml"])).getModel()
    params = dict(zip(model.parameter_names, np.asarray(model.parameter_values()),
                      strict=True))

    def series(name):
        if name in model.state_names or name in model.observable_names:
            out = np.asarray(sol[name])
            return out[-len(times):]
        if name in params:
            return np.full(len(times), params[name])
        raise _Unreported(name)

    out = {}
    for v in case["variables"]:
        species = m.getSpecies(v)
        value = series(v)
        if species is not None:
            size = series(species.getCompartment())
            only_amount = species.getHasOnlySubstanceUnits()
            if v in case["amount"] and not only_amount:
                value = value * size
            elif v in case["concentration"] and only_amount:
                value = value / size
        out[v] = value
    return out


class _Unreported(Exception):
    """A requested variable the model does not report."""


def run_roadrunner(case) -> tuple[str, str | None]:
    try:
        import roadrunner
    except ImportError:
        return "crashed", "libroadrunner is not installed (pip install libroadrunner)"
    try:
        rr = roadrunner.RoadRunner(str(case["sbml"]))
        rr.integrator.relative_tolerance = RTOL
        rr.integrator.absolute_tolerance = ATOL
        rr.integrator.setValue("maximum_num_steps", 1_000_000)
        select = []
        for v in case["variables"]:
            is_species = v in rr.model.getFloatingSpeciesIds() + \
                rr.model.getBoundarySpeciesIds()
            select.append(f"[{v}]" if is_species and v in case["concentration"] else v)
        rr.timeCourseSelections = ["time", *select]
        t = times_of(case)
        res = np.asarray(rr.simulate(t[0], t[-1], len(t)))
    except Exception as exc:  # noqa: BLE001 - libroadrunner reports unsupported input this way
        return "refused", f"{type(exc).__name__}: {str(exc)[:300]}"
    values = {v: res[:, i + 1] for i, v in enumerate(case["variables"])}
    problem = compare(case, values)
    return ("passed", None) if problem is None else ("failed", problem)


# ----- the run ---------------------------------------------------------------------------
def _hash(paths) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def source_key() -> str:
    return _hash((ROOT / "src" / "scalebridge").rglob("*.py"))


def summary(outcomes: dict, tool: str) -> dict:
    counts = Counter(o[tool]["status"] for o in outcomes.values())
    by_tag: dict[str, Counter] = {}
    for o in outcomes.values():
        status = o[tool]["status"]
        if status == "passed":
            continue
        for tag in o["tags"] + o["components"]:
            by_tag.setdefault(tag, Counter())[status] += 1
    return {"passed": counts["passed"], "failed": counts["failed"],
            "refused": counts["refused"], "crashed": counts["crashed"],
            "total": len(outcomes),
            "not_passed_by_tag": {t: dict(c) for t, c in sorted(by_tag.items())}}


def write(doc: dict) -> None:
    outcomes = doc["cases"]
    doc["scalebridge"] = summary(outcomes, "scalebridge")
    doc["libroadrunner"] = summary(outcomes, "libroadrunner")
    for k in ("passed", "failed", "refused", "crashed", "total"):  # the headline fields
        doc[k] = doc["scalebridge"][k]
    doc["by_tag"] = doc["scalebridge"]["not_passed_by_tag"]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
    os.replace(tmp, RESULTS)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=None, help="case numbers, e.g. 1-100 or 1,3,5")
    ap.add_argument("--force", action="store_true", help="redo cases a previous run recorded")
    args = ap.parse_args(argv)
    numbers = case_numbers()
    if args.cases:
        wanted = set()
        for part in args.cases.split(","):
            lo, _, hi = part.partition("-")
            wanted.update(range(int(lo), int(hi or lo) + 1))
        numbers = [n for n in numbers if n in wanted]
    old = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    key = source_key()
    doc = {"benchmark": "sbml_test_suite", "suite": "SBML Test Suite 3.3.0 (odd cases)",
           "date": time.strftime("%Y-%m-%d"),
           "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, "
                      f"{platform.python_implementation()} {platform.python_version()}",
           "versions": {p: _version(p) for p in ("scalebridge", "jax", "diffrax",
                                                  "python-libsbml", "libroadrunner")},
           "rtol": RTOL, "atol": ATOL, "cases": old.get("cases", {})}
    done = 0
    for n in numbers:
        case = read_case(n)
        if case["type"] != "TimeCourse":
            continue
        files = _hash([case["sbml"], case["folder"] / f"{case['case']}-settings.txt",
                       case["folder"] / f"{case['case']}-results.csv"])
        prev = doc["cases"].get(case["case"])
        if prev and prev.get("key") == f"{files}-{key}" and not args.force:
            continue
        t = time.perf_counter()
        status, reason = run_scalebridge(case)
        ours = {"status": status, "reason": reason, "seconds": time.perf_counter() - t}
        status, reason = run_roadrunner(case)
        _release()
        doc["cases"][case["case"]] = {"tags": case["tags"], "components": case["components"],
                                      "scalebridge": ours,
                                      "libroadrunner": {"status": status, "reason": reason},
                                      "key": f"{files}-{key}"}
        print(f"{case['case']}: scalebridge {ours['status']}, libroadrunner {status}"
              + (f" ({ours['reason'][:120]})" if ours["reason"] else ""), flush=True)
        done += 1
        if done % 25 == 0:
            write(doc)
    write(doc)
    print(json.dumps({k: doc[k] for k in ("passed", "failed", "refused", "crashed", "total")}))
    print("libroadrunner:", json.dumps({k: doc["libroadrunner"][k] for k in
                                        ("passed", "failed", "refused", "crashed", "total")}))


def _release() -> None:
    """Drop the case's compiled programs: hundreds of models' machine code in one process
    exhaust LLVM's memory for executable code."""
    import gc

    import jax

    jax.clear_caches()
    gc.collect()


def _version(package: str) -> str | None:
    try:
        return version(package)
    except Exception:  # noqa: BLE001 - a missing package has no version
        return None


if __name__ == "__main__":
    sys.exit(main())
