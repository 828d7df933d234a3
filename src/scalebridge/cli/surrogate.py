"""``scalebridge surrogate train-cell``: learn a cell surrogate for tissue simulations."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from ..errors import InputError

app = typer.Typer(help="Learned surrogates of models.", no_args_is_help=True,
                  add_completion=False)


def _numbers(text: str, option: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InputError(f"{option} {text!r}: give comma-separated numbers, e.g. "
                         "250,400,1000") from None
    if not values:
        raise InputError(f"{option} is empty; give comma-separated numbers")
    return values


def _latents(specs: list[str]) -> dict[str, tuple[str, ...]] | None:
    """``NAME=STATE*STATE`` -> ``{NAME: (STATE, STATE)}``."""
    if not specs:
        return None
    out = {}
    for spec in specs:
        name, sep, rhs = spec.partition("=")
        parts = tuple(p.strip() for p in rhs.split("*"))
        if not sep or not name.strip() or not all(parts):
            raise InputError(f"--latent {spec!r}: expected NAME=STATE or NAME=STATE*STATE, "
                             "e.g. --latent h=h*j")
        out[name.strip()] = parts
    return out


def train_cell(
    model: str = typer.Argument(..., help="Zoo cell model (e.g. beeler_reuter) or SBML file."),
    out: Path = typer.Option(..., "--out", help="Surrogate file to write (.npz)."),
    periods: str = typer.Option("250,300,400,600,1000", "--periods",
                                help="Pacing periods of the training simulations."),
    conductivities: str = typer.Option("0,0.5,1,2", "--conductivities",
                                       help="Relative conductivities of the training cables "
                                            "(0: isolated paced cells)."),
    amplitudes: str = typer.Option("30,60,120", "--amplitudes",
                                   help="Stimulus amplitudes of the isolated cells."),
    beats: int = typer.Option(5, "--beats", help="Beats per training simulation."),
    latent: list[str] = typer.Option(None, "--latent", help="Latent state as a product of "
                                     "the model's gates, NAME=STATE*STATE (repeat; default "
                                     "per zoo model)."),
    pair: list[str] = typer.Option(None, "--pair", help="Two latents whose product carries "
                                   "current, A*B (repeat)."),
    family: str = typer.Option("gated", "--family", help="gated (latents from the model's "
                               "gates: faithful) or two-variable (a cubic excitable model "
                               "fitted to action potentials and conduction velocity: fast)."),
    check_dt: bool = typer.Option(True, "--check-dt/--no-check-dt",
                                  help="Find the largest step keeping CV within 1%."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sample thinning."),
):
    """Train a cell surrogate on simulations of MODEL (isolated paced cells and paced
    cables) and save it with the ranges it was trained on."""
    from ..io import save
    from ..multiscale import CellProtocol, build_cell_surrogate
    from ..pde.zoo import _quiet
    from .common import resolve_model

    if out.suffix.lower() != ".npz":
        raise InputError(f"--out {out}: the surrogate is saved as a NumPy archive; give a "
                         ".npz file name")
    if beats < 1:
        raise InputError(f"--beats {beats}: give at least 1")
    cell = resolve_model(model)
    if "I_stim" not in cell.input_names:
        raise InputError(f"model {model!r} has no I_stim input; a cell surrogate needs a "
                         "stimulus current input named I_stim")
    pairs = None
    if pair:
        pairs = []
        for p in pair:
            a, sep, b = p.partition("*")
            if not sep or not a.strip() or not b.strip():
                raise InputError(f"--pair {p!r}: expected A*B naming two latents")
            pairs.append((a.strip(), b.strip()))
    proto = CellProtocol(periods=_numbers(periods, "--periods"),
                         conductivities=_numbers(conductivities, "--conductivities"),
                         amplitudes=_numbers(amplitudes, "--amplitudes"), beats=beats,
                         seed=seed)
    start = time.perf_counter()
    name = Path(model).stem if Path(model).suffix else model
    family = family.replace("-", "_")
    if family != "gated" and (latent or pair):
        raise InputError("--latent and --pair choose the latents of the gated family; drop "
                         "them or use --family gated")
    sur = build_cell_surrogate(_quiet(cell), proto, family=family, latents=_latents(latent),
                               pairs=pairs, trained_for=name, check_dt=check_dt, verbose=True)
    save(sur, out)
    typer.echo(f"wrote {out}: {sur.family} surrogate, {len(sur.state_names)} states "
               f"({', '.join(sur.state_names)}) for {len(cell.state_names)}, recommended dt "
               f"{sur.recommended_dt:g}, {time.perf_counter() - start:.1f} s")
