"""``scalebridge pinn CASE.toml --out DIR``: train a physics-informed network for a case."""

from __future__ import annotations

from pathlib import Path

import typer


def pinn(
    case: Path = typer.Argument(..., help="Case TOML: the model (zoo, SBML or PDE formulas), "
                                "domain, data file, unknown parameters and training budget."),
    out: Path = typer.Option(..., "--out", help="Output directory: result.json, network.eqx, "
                             "prediction.csv, losses.png, fields.png, checkpoint.eqx (a "
                             "second run with the same case resumes from it)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress lines."),
    restart: bool = typer.Option(False, "--restart", help="Start over in OUT instead of "
                                 "resuming the run there."),
) -> None:
    """Train a PINN for CASE and report parameters and errors (examples/pinn_*/*.toml)."""
    from ..pinn import load_case, run_case

    report = run_case(load_case(case), out, verbose=not quiet, restart=restart)
    lines = [f"{report['case']}: {report['steps']} steps, compile "
             f"{report['compile_seconds']:.1f} s, run {report['run_seconds']:.1f} s"]
    if "relative_l2_error" in report:
        lines.append(f"relative L2 error {report['relative_l2_error']:.3e}")
    for name, row in report.get("parameters", {}).items():
        err = f" (truth {row['truth']:.6g}, error {100 * row['relative_error']:.2f}%)" \
            if "truth" in row else ""
        lines.append(f"{name} = {row['value']:.6g}{err}")
    for kind, row in report.get("comparison", {}).items():
        lines.append(f"{kind}: RMSE {row['rmse']:.4g}")
    typer.echo("\n".join(lines))
    typer.echo(f"wrote {out / 'result.json'}")
