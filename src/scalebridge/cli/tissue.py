"""``scalebridge tissue``: an excitable tissue (spatial zoo model, or its domain with a
learned cell surrogate) paced by stimuli, solved by operator splitting; writes fields,
an activation map, traces, an animation and a JSON summary (conduction velocity, APD90).
"""

from __future__ import annotations

import json
import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import typer

from ..errors import InputError
from .common import spatial_fields, warn_coarse_front


@dataclass(frozen=True)
class TissueDefaults:
    """Per-model defaults: time step, output spacing, activation threshold (of the first
    cell state, in the model's units)."""

    dt: float
    output_every: float
    threshold: float


# dt: the godunov CV is within 1% of a fine Strang reference on the default grids (201, 101x101)
DEFAULTS = {
    "beeler_reuter": TissueDefaults(dt=0.01, output_every=0.5, threshold=-40.0),  # mV
    "aliev_panfilov": TissueDefaults(dt=0.02, output_every=0.5, threshold=0.5),
    "fitzhugh_nagumo": TissueDefaults(dt=0.05, output_every=0.5, threshold=0.0),
}
MAX_OUTPUT_BYTES = 2e9
N_TRACES = 5
MAX_STEPS = 10_000_000  # splitting steps of one run (minutes for a cable, hours for a sheet)


def tissue(
    model: str = typer.Argument(..., help="An excitable spatial model: beeler_reuter "
                                          "(mm, ms, mV), aliev_panfilov, fitzhugh_nagumo "
                                          "(dimensionless)."),
    grid: str = typer.Option(..., "--grid", help="Nodes: N (1D cable, e.g. 201) or NXxNY "
                                                 "(2D sheet, e.g. 101x101)."),
    t_end: float = typer.Option(..., "--t-end", help="End time (model time units)."),
    out: Path = typer.Option(..., "--out", help="Directory for the results (created)."),
    stimulus: list[str] = typer.Option(None, "--stimulus", help="A stimulus, e.g. 'x=0:0.5 "
                                       "amplitude=60 start=5 duration=2 period=500' (y=LO:HI "
                                       "in 2D; period optional); repeatable. Default: the "
                                       "model's own protocol."),
    surrogate: Path = typer.Option(None, "--surrogate", help="A learned cell surrogate to "
                                                             "use as the cell model."),
    dt: float = typer.Option(None, "--dt", help="Splitting step (default: 0.01 ms for "
                                                "beeler_reuter, 0.02 aliev_panfilov, 0.05 "
                                                "fitzhugh_nagumo, the surrogate's own)."),
    scheme: str = typer.Option("godunov", "--scheme", help="godunov (first order) or strang "
                                                           "(second order)."),
    diffusion: str = typer.Option("explicit", "--diffusion", help="explicit or implicit."),
    output_every: float = typer.Option(None, "--output-every", help="Output time spacing "
                                                                    "(default 0.5)."),
    fps: int = typer.Option(15, "--fps", help="Frames per second of the animation."),
    max_frames: int = typer.Option(100, "--max-frames", help="At most this many animation "
                                                             "frames (thinned evenly)."),
) -> None:
    """Simulate an excitable tissue and write, in --out: fields.npz, activation.csv,
    activation.png, traces.png, animation.gif and summary.json."""
    defaults = _defaults(model)
    if fps < 1 or max_frames < 1:
        raise InputError(f"--fps {fps}, --max-frames {max_frames}: both must be >= 1")
    sur = _load_surrogate(surrogate, model)
    setup, stimuli = _build(model, grid, stimulus, sur)
    dt = float(dt if dt is not None else sur.recommended_dt if sur else defaults.dt)
    if sur is not None and dt > sur.recommended_dt * (1 + 1e-9):
        typer.echo(f"warning: --dt {dt:g} is larger than the step the surrogate was checked "
                   f"at ({sur.recommended_dt:g}); its conduction velocity may be off by more "
                   "than 1%", err=True)
    if t_end / dt > MAX_STEPS:
        raise InputError(f"--dt {dt:g} over --t-end {t_end:g} means {t_end / dt:.3g} steps, "
                         f"more than the limit of {MAX_STEPS:.0e}; raise --dt or shorten "
                         "--t-end")
    solver = _solver(setup, dt, scheme, diffusion)
    times = _output_times(t_end, defaults.output_every if output_every is None
                          else output_every, setup)
    from ..runtime.run import fingerprint
    from .common import fresh_run

    fresh_run(out, "tissue", ("fields.npz", "activation.csv", "activation.png", "traces.png",
                              "animation.gif", "summary.json"),
              inputs={"model": (model, fingerprint(setup.model)),
                      **({"surrogate": (surrogate.name, fingerprint(surrogate.read_bytes()))}
                         if surrogate is not None else {})},
              settings=dict(grid=grid, t_end=t_end, stimulus=stimulus, dt=dt, scheme=scheme,
                            diffusion=diffusion, output_every=output_every))
    sol, seconds = _run(setup, times, solver, dt, scheme, diffusion)
    summary = {
        "model": model, "grid": "x".join(map(str, setup.model.rhs.grid.shape)),
        "cell": setup.model.rhs.cell.name, "cell_states": list(setup.model.rhs.cell.state_names),
        "units": dict(setup.units), "domain": _domain(setup),
        "dt": dt, "scheme": scheme, "diffusion": diffusion, "t_end": float(times[-1]),
        "output_every": float(times[1] - times[0]), "n_outputs": int(times.size),
        "stimuli": stimuli, **seconds,
        "surrogate": None if sur is None else {
            "path": str(surrogate), "trained_for": sur.trained_for,
            "recommended_dt": float(sur.recommended_dt)},
    }
    _write_outputs(sol, setup, summary, out, defaults.threshold, sur, (fps, max_frames))
    _echo_summary(summary, out)


def _write_outputs(sol, setup, summary: dict, out: Path, threshold: float, sur,
                   animation: tuple[int, int]) -> None:
    """Fields, activation table, measurements, warnings, figures and the summary."""
    ds = spatial_fields(sol, setup)
    _write_fields(ds, out / "fields.npz", summary)
    front, front_warning = warn_coarse_front(sol, setup.model)
    measured, act = _measure(ds, setup, threshold)
    _write_activation_csv(act, setup.model.rhs.grid, out / "activation.csv")
    summary.update(measured, front_grid_points=_finite(front))
    summary["warnings"] = [front_warning] if front_warning else []
    if sur is not None:
        summary["surrogate"]["range_warnings"] = _range_warnings(sur, ds, sol, setup)
        summary["warnings"] += summary["surrogate"]["range_warnings"]
    _figures(ds, setup, act, out, *animation)
    _write_json(out / "summary.json", summary)


# ----- inputs -------------------------------------------------------------------------
def _defaults(model: str) -> TissueDefaults:
    if model not in DEFAULTS:
        raise InputError(f"MODEL {model!r} is not an excitable tissue model; use one of "
                         f"{', '.join(DEFAULTS)}")
    return DEFAULTS[model]


def _load_surrogate(path: Path | None, model: str):
    """The surrogate at ``path`` (checked against ``model``), or ``None``."""
    if path is None:
        return None
    from ..multiscale import load_surrogate

    sur = load_surrogate(path)
    sur.check_trained_for(model)
    return sur


def _build(model: str, grid: str, specs: list[str] | None, sur):
    """The spatial setup with the chosen cell and stimuli, and the stimuli as text."""
    from ..pde.stimulus_spec import check_region, parse_stimulus
    from ..pde.zoo import spatial_setup

    cell = None if sur is None else sur.to_model()
    setup = spatial_setup(model, grid, cell=cell)
    if not specs:
        return setup, ["default protocol of the zoo model"]
    g = setup.model.rhs.grid
    stimuli = [parse_stimulus(s, g.ndim) for s in specs]
    for s in stimuli:
        check_region(s, g, setup.units.get("space", ""))
    return (spatial_setup(model, grid, cell=cell, stimuli=stimuli),
            [" ".join(s.split()) for s in specs])


def _solver(setup, dt: float, scheme: str, diffusion: str):
    """Operator splitting, with the explicit diffusion limit checked in CLI terms."""
    from ..pde.checks import stability_limit
    from ..pde.splitting import OperatorSplitting

    solver = OperatorSplitting(dt, scheme=scheme, diffusion=diffusion)
    if diffusion == "explicit":
        limit = stability_limit(setup.model)
        if dt > limit * (1 + 1e-12):
            m = setup.model
            D = m.parameters[m.rhs.d_index[0]].value
            spacing = ", ".join(f"{h:g}" for h in m.rhs.grid.spacing)
            raise InputError(
                f"--dt {dt:g} exceeds the explicit diffusion stability limit {limit:.4g} "
                f"(D={D:g}, spacing {spacing} {setup.units.get('space', '')}); use --dt "
                f"{_round_down(limit)} or less, --diffusion implicit, or a coarser --grid")
    return solver


def _round_down(x: float) -> str:
    """``x`` rounded down to 3 significant digits, as text."""
    scale = 10 ** (math.floor(math.log10(x)) - 2)
    return f"{math.floor(x / scale) * scale:.3g}"


def _output_times(t_end: float, every: float, setup) -> np.ndarray:
    if not (math.isfinite(t_end) and t_end > 0):
        raise InputError(f"--t-end {t_end}: must be a positive time, e.g. --t-end 400")
    if not (math.isfinite(every) and 0 < every <= t_end):
        raise InputError(f"--output-every {every}: must be > 0 and at most --t-end {t_end}")
    n = int(math.floor(t_end / every * (1 + 1e-12)))
    times = every * np.arange(n + 1)
    if t_end - times[-1] > 1e-9 * every:
        times = np.append(times, t_end)
    size = times.size * len(setup.model.state_names) * 8
    if size > MAX_OUTPUT_BYTES:
        raise InputError(f"{times.size} outputs of {len(setup.model.state_names)} node states "
                         f"need {size / 1e9:.1f} GB; raise --output-every or coarsen --grid")
    return times


# ----- run ----------------------------------------------------------------------------
@contextmanager
def _compile_timer():
    """Collect JAX's tracing and compilation time (seconds) while the block runs."""
    import jax.monitoring as monitoring

    total = [0.0]

    def listen(event, duration, **kwargs):
        if event.startswith("/jax/core/compile/"):
            total[0] += duration

    monitoring.register_event_duration_secs_listener(listen)
    try:
        yield total
    finally:
        monitoring.unregister_event_duration_listener(listen)


def _run(setup, times, solver, dt, scheme, diffusion):
    from ..simulate import simulate

    m = setup.model
    shape = "x".join(map(str, m.rhs.grid.shape))
    tu = setup.units.get("time", "")
    typer.echo(f"simulating {m.name} on {shape} nodes to t = {times[-1]:g} {tu} (dt {dt:g}, "
               f"{scheme}, {diffusion} diffusion) ...")
    start = time.perf_counter()
    with _compile_timer() as compile_s:
        sol = simulate(m, times, solver=solver)
        sol.states.block_until_ready()
    wall = time.perf_counter() - start
    return sol, {"wall_seconds": round(wall, 3), "compile_seconds": round(compile_s[0], 3)}


# ----- measurements -------------------------------------------------------------------
def _finite(x):
    """A JSON-safe float: ``None`` for NaN or infinity."""
    x = float(x)
    return x if math.isfinite(x) else None


def _measure(ds, setup, threshold: float) -> tuple[dict, np.ndarray]:
    """Activation, conduction velocity and APD90 for the summary, and the activation
    times (grid-shaped; NaN: never activated)."""
    from ..pde.measure import activation_times

    grid = setup.model.rhs.grid
    v = ds[setup.model.rhs.cell.state_names[0]]
    t = np.asarray(ds["time"])
    act = activation_times(np.asarray(v), t, threshold)
    done = np.isfinite(act)
    return {
        "activation": {"variable": str(v.name), "threshold": threshold,
                       "activated_nodes": int(done.sum()), "nodes": int(act.size),
                       "min": _finite(np.min(act[done])) if done.any() else None,
                       "max": _finite(np.max(act[done])) if done.any() else None},
        "conduction_velocity": _cv(act, grid, setup.units),
        "apd90": _apd90(np.asarray(v), t, done),
    }, act


def _write_activation_csv(act, grid, path: Path) -> None:
    import pandas as pd

    mesh = grid.mesh()
    cols = {a: c.ravel() for a, c in zip(("x", "y"), mesh, strict=False)}
    cols["activation_time"] = act.ravel()
    pd.DataFrame(cols).to_csv(path, index=False, na_rep="", float_format="%.6g")


def _cv(act, grid, units) -> dict:
    from ..pde.measure import conduction_velocity

    space, tu = units.get("space", ""), units.get("time", "")
    unit = "dimensionless" if space in ("", "1") else f"{space}/{tu}"
    out = {"value": None, "method": "fit", "units": unit, "reason": None}
    spread = _activated_spread(act, grid)
    if spread < 3:
        out["reason"] = (f"the wave activated nodes at only {spread} distinct positions along "
                         "an axis inside the 10% margins; a plane fit needs 3 (run longer or "
                         "refine --grid)")
        return out
    try:
        out["value"] = conduction_velocity(act, grid, method="fit")
    except InputError as exc:
        out["reason"] = str(exc)
    return out


def _activated_spread(act, grid, margin: float = 0.1) -> int:
    """The fewest distinct coordinates, over the axes, of the activated nodes that the
    plane fit of :func:`~scalebridge.pde.conduction_velocity` uses (its default margin)."""
    mesh = grid.mesh()
    keep = np.isfinite(act)
    for c, ax in zip(mesh, grid.axes, strict=True):
        keep &= (c >= margin * ax.length) & (c <= (1 - margin) * ax.length)
    return min(np.unique(c[keep]).size for c in mesh)


def _apd90(v, t, activated) -> dict:
    from ..pde.measure import apd

    out = {"beat": 1, "level": 0.9, "mean": None, "min": None, "max": None, "nodes": 0,
           "reason": None}
    beats = apd(v.reshape(v.shape[0], -1), t, 0.9)  # nodes flattened: (n_nodes, n_beats)
    first = beats[activated.ravel(), 0] if beats.shape[-1] else np.array([])
    first = first[np.isfinite(first)]
    if not first.size:
        out["reason"] = ("no node repolarised to 90% after its first upstroke before t_end; "
                         "run longer")
        return out
    out.update(mean=float(first.mean()), min=float(first.min()), max=float(first.max()),
               nodes=int(first.size))
    return out


def _range_warnings(sur, ds, sol, setup) -> list[str]:
    """The surrogate's messages for fields (and the local current, stimulus plus
    diffusion) that left its training range, also printed as ``warning:`` lines on
    stderr."""
    from ..multiscale.training_data import local_current

    values = {str(k): np.asarray(ds[k]) for k in ds.data_vars}
    values["I_local"] = local_current(setup.model, np.asarray(sol.times),
                                      np.asarray(sol.states))
    warnings = list(sur.range_warnings(values))
    for w in warnings:
        typer.echo(f"warning: {w}", err=True)
    return warnings


# ----- outputs ------------------------------------------------------------------------
def _domain(setup) -> dict:
    grid = setup.model.rhs.grid
    return {"lengths": [a.length for a in grid.axes], "spacing": list(grid.spacing),
            "shape": list(grid.shape)}


def _write_fields(ds, path: Path, summary: dict) -> None:
    from ..io import save
    from ..pde.fields import Fields

    sur = summary["surrogate"]
    save(Fields(ds, {"model": summary["model"], "grid": summary["grid"], "dt": summary["dt"],
                     "scheme": summary["scheme"],
                     "surrogate": None if sur is None else sur["path"]}), path)


def _trace_nodes(shape) -> list[tuple[int, ...]]:
    """A few nodes along the cable, or along the diagonal of a sheet."""
    return sorted({tuple(int(round(f * (n - 1))) for n in shape)
                   for f in np.linspace(0.0, 1.0, N_TRACES)})


def _figures(ds, setup, act, out: Path, fps: int, max_frames: int) -> None:
    from ..report.fields import animate_field, plot_activation, plot_traces

    grid = setup.model.rhs.grid
    var = setup.model.rhs.cell.state_names[0]
    plot_activation(act, grid.coords, out / "activation.png",
                    space_unit=setup.units.get("space", ""),
                    time_unit=setup.units.get("time", ""))
    plot_traces(ds, var, _trace_nodes(grid.shape), out / "traces.png")
    animate_field(ds, var, out / "animation.gif", fps=fps, max_frames=max_frames)


def _write_json(path: Path, data: dict) -> None:
    """Write ``data`` as JSON atomically (a temporary file, then a rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")
    os.replace(tmp, path)


def _echo_summary(s: dict, out: Path) -> None:
    a, cv, ap = s["activation"], s["conduction_velocity"], s["apd90"]
    typer.echo(f"done in {s['wall_seconds']:.1f} s (compile {s['compile_seconds']:.1f} s)")
    if a["min"] is not None:
        typer.echo(f"activated {a['activated_nodes']}/{a['nodes']} nodes between "
                   f"t = {a['min']:.4g} and {a['max']:.4g}")
    else:
        typer.echo(f"no node crossed {a['variable']} = {a['threshold']:g}")
    typer.echo(f"conduction velocity {cv['value']:.4g} {cv['units']}" if cv["value"] is not None
               else f"conduction velocity: not measured ({cv['reason']})")
    if ap["mean"] is not None:
        typer.echo(f"APD90 (first beat) {ap['mean']:.4g} (min {ap['min']:.4g}, max "
                   f"{ap['max']:.4g}) over {ap['nodes']} nodes")
    typer.echo(f"wrote fields.npz, activation.csv, activation.png, traces.png, "
               f"animation.gif, summary.json in {out}")
