"""Reaction-diffusion models on grids, built from any cell model (method of lines).

``reaction_diffusion(cell, grid, diffusion={...})`` places a copy of ``cell`` at every node
and lets the chosen states diffuse. The result is an ordinary :class:`~scalebridge.Model`
(``simulate`` solves it) whose states are the node values, state-major: all nodes of the
cell's first state in C order (x slowest), then all nodes of the second, and so on, named
``V[i]`` (1D) or ``V[i,j]`` (2D). Its parameters are the cell's, followed by one diffusivity
per diffusing state (``D`` when only one state diffuses, else ``D_<state>``).

Stimuli are spatial protocols (:class:`Stimulus`): a region, an amplitude, a start, a
duration and optionally a period. At each node they feed the cell's stimulus input
(``I_stim`` by default), replacing the cell's own single-cell protocol.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputError, ModelError
from ..model.inputs import PulseTrain
from ..model.model import Model
from ..model.parameter import Parameter
from .grid import Grid
from .operators import Diffusion


@dataclass(frozen=True, eq=False)
class Stimulus:
    """A stimulus protocol: ``amplitude`` on ``region`` for ``duration`` from ``start``,
    repeated every ``period`` (``None``: once) until ``stop``.

    ``region`` is a boolean field of the grid's shape or a function of the node coordinate
    arrays (``lambda x: x < 0.1`` in 1D, ``lambda x, y: (x < 0.1) & (y < 0.5)`` in 2D).
    """

    region: np.ndarray | Callable
    amplitude: float
    start: float = 0.0
    duration: float = 1.0
    period: float | None = None
    stop: float = math.inf

    def mask(self, grid: Grid) -> np.ndarray:
        region = self.region(*grid.mesh()) if callable(self.region) else self.region
        mask = np.asarray(region, dtype=bool)
        if mask.shape != grid.shape:
            raise InputError(f"stimulus region has shape {mask.shape}, expected the grid's "
                             f"{grid.shape}")
        if not mask.any():
            raise InputError("stimulus region contains no grid node; enlarge it or refine "
                             "the grid")
        return mask

    def pulse(self, name: str) -> PulseTrain:
        period = self.period if self.period is not None else math.inf
        if self.duration <= 0:
            raise InputError(f"stimulus duration must be positive, got {self.duration}")
        if math.isinf(period):
            period = self.duration  # one pulse: cut it off with ``stop``
            stop = min(self.stop, self.start + self.duration)
        else:
            stop = self.stop
        return PulseTrain(name, amplitude=1.0, duration=self.duration, period=period,
                          start=self.start, stop=stop)


class ReactionDiffusionRHS:
    """The right-hand side of a reaction-diffusion model; its parts stay reachable for
    solvers that treat reaction and diffusion separately (operator splitting)."""

    def __init__(self, cell: Model, grid: Grid, op: Diffusion, diffusing: tuple[int, ...],
                 d_index: tuple[int, ...], stim_input: int | None,
                 masks: np.ndarray, nonlinear: Callable | None):
        self.cell, self.grid, self.op = cell, grid, op
        self.diffusing, self.d_index = diffusing, d_index
        self.stim_input, self.masks, self.nonlinear = stim_input, masks, nonlinear
        self.n_cell_states = len(cell.state_names)
        self.n_cell_params = len(cell.parameters)
        self.n_cell_inputs = len(cell.inputs)

    def fields(self, y):
        """States as fields: shape ``(n_cell_states, *grid.shape)``."""
        return y.reshape((self.n_cell_states, *self.grid.shape))

    def cell_inputs(self, t, p, u):
        """Per-node input values of the cell, shape ``(n_nodes, n_cell_inputs)``."""
        n = self.grid.size
        uc = jnp.broadcast_to(u[:self.n_cell_inputs], (n, self.n_cell_inputs))
        if self.stim_input is not None:
            pulses = u[self.n_cell_inputs:]
            stim = jnp.tensordot(pulses, jnp.asarray(self.masks), axes=1).ravel()
            uc = uc.at[:, self.stim_input].set(stim)
        return uc

    def reaction(self, t, y, p, u):
        """The cell dynamics at every node, as a flat vector like ``y``."""
        n = self.grid.size
        nodes = y.reshape(self.n_cell_states, n).T
        pc = p[:self.n_cell_params]
        dy = jax.vmap(self.cell.rhs, in_axes=(None, 0, None, 0))(
            t, nodes, pc, self.cell_inputs(t, p, u))
        return dy.T.reshape(-1)

    def diffusion(self, t, y, p):
        """The diffusion terms, as a flat vector like ``y`` (zero for non-diffusing states)."""
        fields = self.fields(y)
        out = jnp.zeros_like(fields)
        for s, k in zip(self.diffusing, self.d_index, strict=True):
            factor = None if self.nonlinear is None else self.nonlinear(fields[s], p)
            out = out.at[s].set(self.op(fields[s], p[k], factor))
        return out.reshape(-1)

    def __call__(self, t, y, p, u):
        return self.reaction(t, y, p, u) + self.diffusion(t, y, p)


def node_names(states: Sequence[str], grid: Grid) -> list[str]:
    """State names of a tissue model: ``V[i]`` or ``V[i,j]``, state-major."""
    idx = [",".join(map(str, i)) for i in np.ndindex(*grid.shape)]
    return [f"{s}[{i}]" for s in states for i in idx]


def reaction_diffusion(
    cell: Model,
    grid: Grid,
    *,
    diffusion: Mapping[str, float],
    conductivity=1.0,
    stimuli: Sequence[Stimulus] = (),
    stimulus_input: str = "I_stim",
    nonlinear_diffusion: Callable | None = None,
    initial=None,
    name: str | None = None,
    stiff: bool | None = None,
) -> Model:
    """A tissue :class:`Model`: ``cell`` at every node of ``grid``, with the states in
    ``diffusion`` (``{state: diffusivity}``) diffusing through ``conductivity`` (a number,
    a relative field, or an anisotropic tensor ``(Kxx, Kyy, Kxy)``).

    ``stimuli`` drive the cell input ``stimulus_input``. ``nonlinear_diffusion(u, p)``
    optionally multiplies the conductivity by a field computed from the diffusing state
    (density-dependent diffusion). ``initial``: a function ``p -> flat y0`` or an array of
    the flat state size; by default every node starts at the cell's initial state.
    """
    if not isinstance(cell, Model):
        raise InputError(f"cell must be a scalebridge Model, got {type(cell).__name__}")
    if not diffusion:
        raise InputError("diffusion is empty; name at least one state that diffuses, "
                         "e.g. diffusion={'V': 0.001}")
    diffusing = tuple(cell.state_index(s) for s in diffusion)
    for s, d in diffusion.items():
        if not np.isfinite(d) or d < 0:
            raise InputError(f"diffusivity of {s!r} is {d}; diffusivities must be finite and "
                             ">= 0")
    op = Diffusion(grid, conductivity)
    d_names = ["D"] if len(diffusion) == 1 else [f"D_{s}" for s in diffusion]
    clash = set(d_names) & set(cell.parameter_names)
    if clash:
        raise ModelError(f"cell parameter {sorted(clash)[0]!r} clashes with the diffusivity "
                         "parameter of the tissue model; rename it")
    params = (*cell.parameters,
              *(Parameter(n, d, lower=0.0) for n, d in zip(d_names, diffusion.values(),
                                                           strict=True)))
    n_cp = len(cell.parameters)
    d_index = tuple(range(n_cp, n_cp + len(diffusion)))
    stim_input = None
    masks = np.zeros((0, *grid.shape))
    pulses = []
    if stimuli:
        if stimulus_input not in cell.input_names:
            raise InputError(f"cell {cell.name!r} has no input {stimulus_input!r} for the "
                             f"stimuli; its inputs: {list(cell.input_names) or 'none'}")
        stim_input = cell.input_names.index(stimulus_input)
        masks = np.stack([s.amplitude * s.mask(grid) for s in stimuli]).astype(float)
        pulses = [s.pulse(f"stimulus{k}") for k, s in enumerate(stimuli)]
    rhs = ReactionDiffusionRHS(cell, grid, op, diffusing, d_index, stim_input, masks,
                               nonlinear_diffusion)
    k = len(cell.state_names)
    if initial is None:
        def initial(p):
            return jnp.repeat(cell.initial_state(p[:n_cp]), grid.size)
    elif not callable(initial):
        initial = np.asarray(initial, dtype=float)
        if initial.shape != (k * grid.size,):
            raise InputError(f"initial has shape {initial.shape}, expected ({k * grid.size},)"
                             " (states x nodes, flattened)")
    return Model(
        name=name or f"{cell.name}_tissue",
        states=node_names(cell.state_names, grid),
        parameters=params,
        rhs=rhs,
        initial=initial,
        inputs=(*cell.inputs, *pulses),
        stiff=cell.stiff if stiff is None else stiff,
        citation=cell.citation,
    )
