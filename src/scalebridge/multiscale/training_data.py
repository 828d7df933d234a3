"""Training states for cell surrogates: the full cell model simulated as isolated paced cells
and inside paced cables, so the samples cover the stimuli, pacing rates and states (and the
diffusive current from neighbours) that tissue produces."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from .._console import progress as _progress
from ..errors import InputError
from ..model.model import Model
from ..pde.grid import grid1d
from ..pde.models import monodomain
from ..pde.splitting import OperatorSplitting
from ..pde.tissue import Stimulus
from ..simulate import simulate

__all__ = ["CellProtocol", "cell_training_states", "local_current"]


@dataclass(frozen=True)
class CellProtocol:
    """What the full model is simulated under to make training states.

    Cables of ``length`` (``nodes`` nodes) with diffusivity ``D`` times each of
    ``conductivities`` (0 gives isolated cells, each stimulated node pacing on its own),
    paced at the left end by ``amplitudes`` for ``duration`` every ``period`` in
    ``periods`` for ``beats`` beats, integrated by operator splitting at ``dt`` and sampled
    every ``sample_every``. ``check_t_end``: the time a wave needs to cross a cable twice
    ``length`` long (for the step check of :func:`~scalebridge.multiscale.build_cell_surrogate`).
    The two-variable surrogate is fitted instead to ``trace_beats`` paced beats at each of
    ``trace_periods`` and to the full model's conduction velocity on cables of ``length``
    at each of ``spacings``. Defaults: Beeler-Reuter units (mm, ms, uA/cm^2).
    """

    periods: Sequence[float] = (250.0, 300.0, 400.0, 600.0, 1000.0)
    conductivities: Sequence[float] = (0.0, 0.5, 1.0, 2.0)
    amplitudes: Sequence[float] = (30.0, 60.0, 120.0)
    duration: float = 2.0
    beats: int = 5
    length: float = 10.0
    nodes: int = 51
    D: float = 0.1
    dt: float = 0.01
    sample_every: float = 0.25
    max_samples: int = 400_000
    seed: int = 0
    check_t_end: float = 60.0
    spacings: Sequence[float] = (0.1, 0.2)
    trace_periods: Sequence[float] = (300.0, 500.0, 1000.0)
    trace_beats: int = 3

    def to_json(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def _cable(cell: Model, proto: CellProtocol, period: float, conductivity: float):
    grid = grid1d(proto.nodes, proto.length)
    x = grid.coords[0]
    if conductivity == 0.0:  # isolated cells: each amplitude paces its own node
        nodes = np.linspace(0, proto.nodes - 1, len(proto.amplitudes) + 2).astype(int)[1:-1]
        stimuli = [Stimulus(np.isclose(x, x[i]), a, 5.0, proto.duration, period=period)
                   for i, a in zip(nodes, proto.amplitudes, strict=True)]
    else:
        width = 3 * grid.spacing[0]
        amp = float(np.median(proto.amplitudes)) * max(1.0, conductivity)
        stimuli = [Stimulus(lambda x: x <= width, amp, 5.0, proto.duration, period=period)]
    model = monodomain(cell, grid, D=proto.D * max(conductivity, 1e-12), stimuli=stimuli)
    return model, grid


def local_current(model, times, flat):
    """Stimulus plus diffusion reaching each node's voltage, ``(n_times, n_nodes)``, from
    the flat states ``(n_times, n_states)`` of a tissue ``model``."""
    rhs = model.rhs
    p = model.param_array(None)
    n = rhs.grid.size

    def one(t, y):
        diff = rhs.diffusion(t, y, p)[:n]
        u = rhs.cell_inputs(t, p, model.input_values(t, p))
        return diff + (u[:, rhs.stim_input] if rhs.stim_input is not None else 0.0)

    return np.asarray(jax.jit(jax.vmap(one))(jnp.asarray(times), jnp.asarray(flat)))


def cell_training_states(cell: Model, protocol: CellProtocol | None = None, *,
                         verbose: bool = False):
    """Sampled full states ``(n, n_states)`` and the local current (stimulus plus diffusion,
    ``(n,)``, in ``V`` per time unit) at each sample, from the simulations of ``protocol``.

    Samples are thinned to ``max_samples``, keeping every sample on an upstroke (the rare
    states that set conduction velocity) and a random share of the rest.
    """
    proto = protocol or CellProtocol()
    if proto.beats < 1 or proto.nodes < 5 or proto.sample_every <= 0:
        raise InputError("protocol: need beats >= 1, nodes >= 5 and sample_every > 0")
    k = len(cell.state_names)
    rng = np.random.default_rng(proto.seed)
    states, currents, slopes = [], [], []
    for cond in proto.conductivities:
        for period in proto.periods:
            start = time.perf_counter()
            model, grid = _cable(cell, proto, float(period), float(cond))
            t_end = 5.0 + proto.beats * float(period)
            times = np.arange(0.0, t_end, proto.sample_every)
            sol = simulate(model, times, solver=OperatorSplitting(proto.dt, scheme="godunov"))
            flat = np.asarray(sol.states)
            Y = flat.reshape(len(times), k, grid.size)
            V = Y[:, 0]
            dVdt = np.gradient(V, times, axis=0)
            ys = np.moveaxis(Y, 1, 2).reshape(-1, k)  # (time*node, state)
            states.append(ys)
            currents.append(local_current(model, times, flat).reshape(-1))
            slopes.append(dVdt.reshape(-1))
            if verbose:
                _progress(f"  cable conductivity {cond:g}, period {period:g}: "
                          f"{len(times)} x {grid.size} samples, "
                          f"{time.perf_counter() - start:.1f} s")
    Y = np.concatenate(states)
    current = np.concatenate(currents)
    slope = np.concatenate(slopes)
    ok = np.all(np.isfinite(Y), axis=1)
    Y, current, slope = Y[ok], current[ok], slope[ok]
    # de-duplicate resting samples: keep upstrokes, thin the rest at random
    fast = np.abs(slope) > 1.0
    keep = fast | (rng.random(len(Y)) < max(0.0, (proto.max_samples - fast.sum()))
                   / max(1, (~fast).sum()))
    return Y[keep], current[keep]
