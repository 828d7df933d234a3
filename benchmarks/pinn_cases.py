"""The four PINN cases of the issue, each run from its TOML exactly as ``scalebridge pinn``
runs it, with the targets checked and a summary table:

- Burgers forward (``examples/pinn_burgers/burgers.toml``): relative L2 error <= 1e-3
  against the Cole-Hopf solution;
- yeast glycolysis inverse (``examples/pinn_glycolysis/glycolysis*.toml``), S5 and S6
  observed, all 14 parameters: each within 5% (noise-free);
- Aliev-Panfilov 1D inverse (``examples/pinn_aliev_panfilov/aliev_panfilov.toml``): D within
  5%, a and b within 10%;
- Eikonal activation mapping (``examples/pinn_eikonal/eikonal.toml``): lower RMSE of T than
  linear interpolation and Gaussian-process regression.

Each case's report goes to ``benchmarks/results/pinn_cases/<case>/`` (result.json, plots);
``benchmarks/results/pinn_cases.json`` and ``.md`` collect them. A case already reported is
skipped unless ``--again``; a killed run resumes from its checkpoint. Pin to one core:

    taskset -c 0 python benchmarks/pinn_cases.py [--case burgers ...]
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

from scalebridge.pinn import run_case
from scalebridge.runtime.files import write_json

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "examples"
RESULTS = HERE / "results"

CASES = {  # name: (TOML, {parameter or "relative_l2_error" or "rmse": target})
    "burgers": ("pinn_burgers/burgers.toml", {"relative_l2_error": 1e-3}),
    "glycolysis": ("pinn_glycolysis/glycolysis.toml", {"*": 0.05}),
    "glycolysis_noisy": ("pinn_glycolysis/glycolysis_noisy.toml", {}),
    "aliev_panfilov": ("pinn_aliev_panfilov/aliev_panfilov.toml",
                       {"D": 0.05, "a": 0.10, "b": 0.10}),
    "eikonal": ("pinn_eikonal/eikonal.toml", {"rmse_below": ("linear", "gp")}),
}


def check(report: dict, targets: dict) -> dict:
    """``{target: met}`` for one case's report."""
    out = {}
    params = report.get("parameters", {})
    for key, limit in targets.items():
        if key == "relative_l2_error":
            out[f"relative L2 <= {limit:g}"] = report["relative_l2_error"] <= limit
        elif key == "rmse_below":
            comp = report["comparison"]
            for other in limit:
                out[f"RMSE below {other}"] = comp["pinn"]["rmse"] < comp[other]["rmse"]
        elif key == "*":
            for name, row in params.items():
                out[f"{name} within {100 * limit:g}%"] = row["relative_error"] <= limit
        else:
            out[f"{key} within {100 * limit:g}%"] = params[key]["relative_error"] <= limit
    return out


def table(results: dict) -> str:
    lines = ["# PINN cases", "", f"Machine: {platform.machine()}, one core; "
             "`python benchmarks/pinn_cases.py`.", "",
             "| case | steps | compile (s) | run (s) | relative L2 | parameters (relative "
             "error) | targets met |", "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        rep = r["report"]
        params = ", ".join(f"{k} {100 * v['relative_error']:.1f}%"
                           for k, v in rep.get("parameters", {}).items() if "truth" in v)
        if "comparison" in rep:
            params = ", ".join(f"RMSE {k} {v['rmse']:.4f}" for k, v in rep["comparison"].items())
        met = r["targets"]
        missed = ", ".join(k for k, v in met.items() if not v)
        l2 = rep.get("relative_l2_error")
        lines.append(f"| {name} | {rep['steps']} | {rep['compile_seconds']:.1f} | "
                     f"{rep['run_seconds']:.1f} | {'' if l2 is None else f'{l2:.2e}'} | "
                     f"{params} | {sum(met.values())}/{len(met)}"
                     f"{f' (missed: {missed})' if missed else ''} |")
    return "\n".join(lines) + "\n"


def summarise():
    """Collect every case's result.json into pinn_cases.json and pinn_cases.md."""
    results = {}
    for name, (_toml, targets) in CASES.items():
        path = RESULTS / "pinn_cases" / name / "result.json"
        if path.is_file():
            report = json.loads(path.read_text())
            results[name] = {"report": report, "targets": check(report, targets)}
    write_json(RESULTS / "pinn_cases.json", results)
    (RESULTS / "pinn_cases.md").write_text(table(results))
    return results


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", action="append", choices=list(CASES))
    ap.add_argument("--again", action="store_true", help="rerun cases already reported")
    ap.add_argument("--summary-only", action="store_true", help="only rebuild the summary")
    args = ap.parse_args(argv)
    for name in [] if args.summary_only else (args.case or list(CASES)):
        toml = CASES[name][0]
        out = RESULTS / "pinn_cases" / name
        if (out / "result.json").is_file() and not args.again:
            continue
        if args.again:
            (out / "checkpoint.eqx").unlink(missing_ok=True)
        report = run_case(EXAMPLES / toml, out)
        report["file"] = f"examples/{toml}"
        write_json(out / "result.json", report)
        (out / "checkpoint.eqx").unlink(missing_ok=True)  # large; the report is what counts
        print(f"{name}: {summarise()[name]['targets']}")
    summarise()


if __name__ == "__main__":
    main()
