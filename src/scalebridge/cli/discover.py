"""``scalebridge discover sindy``: equations from trajectory data (SINDy)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import typer

from ..errors import InputError
from ..runtime.files import read_csv

app = typer.Typer(help="Identify dynamics from data.", no_args_is_help=True,
                  add_completion=False)


def read_trajectories(path: Path, time_col: str, trajectory_col: str | None,
                      controls: list[str]):
    """``(times, states, controls, state names)`` per trajectory from a CSV table."""
    import pandas as pd

    if not path.is_file():
        raise InputError(f"{path}: no such file; give a CSV table with a time column")
    df = read_csv(path)
    for col in [time_col, *([trajectory_col] if trajectory_col else []), *controls]:
        if col not in df.columns:
            raise InputError(f"{path}: no column {col!r}; columns: {', '.join(df.columns)}")
    states = [c for c in df.columns if c not in {time_col, trajectory_col, *controls}]
    if not states:
        raise InputError(f"{path}: no state columns besides {time_col!r}")
    bad = [c for c in [time_col, *states, *controls]
           if not pd.api.types.is_numeric_dtype(df[c])]
    if bad:
        raise InputError(f"{path}: columns {bad} are not numeric")
    groups = [g for _, g in df.groupby(trajectory_col, sort=False)] if trajectory_col else [df]
    out = []
    for g in groups:
        t = g[time_col].to_numpy(float)
        if np.any(~np.isfinite(t)):
            raise InputError(f"{path}: column {time_col!r} has missing or infinite times; "
                             "remove those rows")
        out.append((t, g[states].to_numpy(float), g[controls].to_numpy(float)))
    return out, states


def sindy(
    data: Path = typer.Argument(..., help="CSV table: a time column and one column per state."),
    out: Path = typer.Option(..., "--out", help="Output directory: equations.json, "
                             "equations.txt, model.xml (SBML), discovery.json, fit.png."),
    time_col: str = typer.Option("t", "--time-col", help="The time column."),
    library: str = typer.Option("poly:3", "--library", help="Candidate terms: poly:D "
                                "(monomials up to degree D, with a constant), fourier:K, "
                                "joined by + (both) or * (products)."),
    weak: bool = typer.Option(False, "--weak", help="Weak (integral) form, for noisy data."),
    threshold: float = typer.Option(None, "--threshold", help="Fixed sparsity threshold "
                                    "(default: chosen per equation by AICc over a path)."),
    optimizer: str = typer.Option("stlsq", "--optimizer", help="stlsq or sr3."),
    differentiation: str = typer.Option("finite", "--differentiation", help="finite, "
                                        "savgol or spectral (strong form only)."),
    ensemble: int = typer.Option(0, "--ensemble", help="Bagging ensemble of this many "
                                 "models (0: none); reports inclusion frequencies."),
    trajectory_col: str = typer.Option(None, "--trajectory-col", help="Column naming the "
                                       "trajectory of each row (several experiments)."),
    control: list[str] = typer.Option(None, "--control", help="A column that is a control "
                                      "input, not a state (repeatable)."),
) -> None:
    """Discover sparse equations dx/dt = f(x) from the trajectories in DATA."""
    from ..discover import SR3, STLSQ, Ensemble, SINDy, WeakForm, parse_library
    from ..discover.sindy import format_equations
    from ..runtime.files import write_json, write_text

    controls = list(control or [])
    trajs, states = read_trajectories(data, time_col, trajectory_col, controls)
    opt = optimizer.strip().lower()
    if opt not in ("stlsq", "sr3"):
        raise InputError(f"--optimizer {optimizer!r}: use stlsq or sr3")
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a directory")
    if ensemble < 0 or ensemble == 1:
        raise InputError(f"--ensemble {ensemble}: use 0 (none) or at least 2 models")
    model = SINDy(parse_library(library),
                  (STLSQ if opt == "stlsq" else SR3)(threshold),
                  differentiation=differentiation,
                  weak=WeakForm() if weak else None,
                  ensemble=Ensemble(n_models=ensemble) if ensemble else None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit([x for _, x, _ in trajs], [t for t, _, _ in trajs],
                  u=[u for _, _, u in trajs] if controls else None,
                  feature_names=states, control_names=controls or None)
        sims = [model.simulate(x[0], t, u if controls else None) for t, x, u in trajs]
    notes = [" ".join(str(w.message).split()) for w in caught]
    for note in notes:
        typer.echo(f"warning: {note}", err=True)
    from ..runtime.run import fingerprint
    from .common import fresh_run

    fresh_run(out, "sindy", ("equations.json", "equations.txt", "model.xml", "discovery.json",
                             "fit.png"),
              inputs={"data": (data.name, fingerprint(data.read_bytes()))},
              settings=dict(time_col=time_col, library=library, weak=weak,
                            threshold=threshold, optimizer=optimizer,
                            differentiation=differentiation, ensemble=ensemble,
                            trajectory_col=trajectory_col, control=controls))
    equations = model.equations()
    write_json(out / "equations.json", equations)
    text = format_equations(equations)
    write_text(out / "equations.txt", text + "\n")
    errors = _simulation_errors(trajs, sims)
    exported = None
    if not controls:
        model.to_sbml(out / "model.xml", initial=trajs[0][1][0], name="sindy")
        exported = "model.xml"
    write_json(out / "discovery.json", {
        "data": str(data), "states": states, "controls": controls,
        "library": library, "form": "weak" if weak else "strong",
        "optimizer": opt, "threshold": None if threshold is None else threshold,
        "thresholds_chosen": dict(zip(states, map(float, model.threshold_), strict=True)),
        "differentiation": None if weak else differentiation,
        "terms": list(model.terms_), "coefficients": model.coefficients_.tolist(),
        "inclusion": model.inclusion_.tolist() if ensemble else None,
        "simulation_relative_l2": errors, "warnings": notes, "sbml": exported,
    })
    _plot(trajs, sims, states, time_col, out / "fit.png")
    typer.echo(text)
    typer.echo(f"wrote {out}/equations.json, equations.txt, discovery.json, fit.png"
               + (", model.xml" if exported else ""))


def _simulation_errors(trajs, sims) -> list[float | None]:
    """Relative L2 error of each simulated trajectory against its data (None if it failed)."""
    out = []
    for (_, x, _), sol in zip(trajs, sims, strict=True):
        y = np.asarray(sol.states)
        ok = np.all(np.isfinite(y))
        out.append(float(np.linalg.norm(y - x) / np.linalg.norm(x)) if ok else None)
    return out


def _plot(trajs, sims, states, time_col, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..runtime.files import write_atomic

    fig, axes = plt.subplots(len(states), 1, figsize=(7, 1.8 * len(states) + 0.6),
                             sharex=True, squeeze=False)
    for k, ((t, x, _), sol) in enumerate(zip(trajs, sims, strict=True)):
        y = np.asarray(sol.states)
        for i, name in enumerate(states):
            ax = axes[i, 0]
            ax.plot(t, x[:, i], ".", ms=2, color="0.5", label="data" if k == 0 else None)
            ax.plot(t, y[:, i], "-", lw=1.2, color="C0", label="discovered" if k == 0 else None)
            ax.set_ylabel(name)
    axes[0, 0].legend(loc="upper right", fontsize=8)
    axes[-1, 0].set_xlabel(time_col)
    fig.suptitle("data and the discovered model simulated from the first sample")
    fig.tight_layout()
    write_atomic(path, lambda fh: fig.savefig(fh, format="png", dpi=120))
    plt.close(fig)
