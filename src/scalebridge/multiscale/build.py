"""Train a cell surrogate end to end: training states, fit, and the largest safe step."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np

from .._console import progress
from ..errors import InputError
from ..model.model import Model
from ..pde.grid import grid1d
from ..pde.tissue import Stimulus
from .cell_surrogate import train_cell_surrogate
from .compare import largest_dt
from .training_data import CellProtocol, cell_training_states
from .two_variable import cable_velocity, paced_traces, train_two_variable_surrogate

FAMILIES = ("gated", "two_variable")

__all__ = ["build_cell_surrogate"]


def build_cell_surrogate(cell: Model, protocol: CellProtocol | None = None, *,
                         family: str = "gated",
                         latents: Mapping[str, Sequence[str]] | None = None,
                         pairs: Sequence[tuple[str, str]] | None = None,
                         trained_for: str | None = None, check_dt: bool = True,
                         verbose: bool = False):
    """Learn a surrogate of ``cell`` from its simulations under ``protocol``.

    ``family="gated"`` (:class:`CellSurrogate`): regression on states sampled from paced
    cells and cables; ``latents``/``pairs`` choose its latents. ``family="two_variable"``
    (:class:`TwoVariableSurrogate`): fitted to paced action potentials and to the full
    model's conduction velocity on cables of ``protocol.spacings``.

    With ``check_dt``, ``recommended_dt`` becomes the largest Godunov/Rush-Larsen step
    keeping the surrogate's conduction velocity within 1% of its converged value on a cable
    twice the protocol's length at the finest of ``protocol.spacings``.
    """
    proto = protocol or CellProtocol()
    if family not in FAMILIES:
        raise InputError(f"family {family!r} is unknown; use one of {', '.join(FAMILIES)}")
    start = time.perf_counter()
    if verbose:
        progress(f"simulating the full cell model ({family} surrogate) ...")
    if family == "gated":
        states, current = cell_training_states(cell, proto, verbose=verbose)
        sur = train_cell_surrogate(cell, states, latents=latents, pairs=pairs,
                                   local_current=current, trained_for=trained_for,
                                   meta={"protocol": proto.to_json(),
                                         "simulation_seconds": round(
                                             time.perf_counter() - start, 2)})
        if verbose:
            fit = sur.meta["fit"]
            progress(f"fitted {len(sur.latents)} latents on {fit['samples']} states: "
                     f"current RMSE {fit['current_rmse']:.3g} (scale "
                     f"{fit['current_scale']:.3g})")
    else:
        sur = _two_variable(cell, proto, trained_for, verbose)
    if check_dt:
        dx = min(proto.spacings)
        length = 2 * proto.length
        grid = grid1d(int(round(length / dx)) + 1, length)
        stim = [Stimulus(lambda x: x <= 2.5 * dx, 2 * max(proto.amplitudes), 1.0,
                         proto.duration)]
        found = largest_dt(sur.to_model(), grid, stimuli=stim, D=proto.D, t_end=proto.check_t_end)
        if found["dt"] is not None:
            sur = sur.replace(recommended_dt=found["dt"],
                              meta={**sur.meta, "dt_check": found})
        if verbose:
            progress(f"largest step within 1% of the converged conduction velocity: "
                     f"{found['dt']}")
    return sur


def _two_variable(cell, proto: CellProtocol, trained_for, verbose):
    amplitude = float(np.median(proto.amplitudes))
    stimulus = (amplitude, proto.duration, 5.0)
    traces = paced_traces(cell, proto.trace_periods, beats=proto.trace_beats,
                          amplitude=amplitude, duration=proto.duration)
    cable = dict(D=proto.D, stimulus=stimulus, length=proto.length,
                 t_end=proto.check_t_end / 2)
    targets = [(float(dx), cable_velocity(cell, dx, **cable)) for dx in proto.spacings]
    if verbose:
        progress("full model: conduction velocity " + ", ".join(
            f"{cv:.4g} at spacing {dx:g}" for dx, cv in targets))
    return train_two_variable_surrogate(
        cell, traces, stimulus=stimulus, cv_targets=targets, D=proto.D,
        cable_length=proto.length, cable_t_end=proto.check_t_end / 2,
        trained_for=trained_for, meta={"protocol": proto.to_json()}, verbose=verbose)
