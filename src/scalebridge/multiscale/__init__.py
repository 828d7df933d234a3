"""Bridging scales: learned cell surrogates that run inside tissue solvers.

:func:`cell_training_states` simulates the full cell model alone and in paced cables;
:func:`train_cell_surrogate` learns a low-dimensional gated surrogate from those states
(faithful); :func:`train_two_variable_surrogate` fits a two-variable cubic model to paced
action potentials and tissue conduction velocity (fast); :func:`build_cell_surrogate` does
either end to end;
the surrogate's ``to_model()`` is a cell :class:`~scalebridge.Model`, so the PDE layer
(:func:`scalebridge.pde.monodomain`, :class:`~scalebridge.pde.OperatorSplitting`) runs it
at every node of a tissue. :func:`compare_runs` measures a surrogate against the full model
in tissue; :func:`run_sweep` (from :mod:`scalebridge.runtime.sweep`) runs resumable
parameter sweeps (:func:`cable_outcome`: conduction or block in a paced cable) through the
project's executors.
"""

from ..runtime.sweep import SweepResult, read_sweep, run_sweep
from .build import build_cell_surrogate
from .cell_surrogate import DEFAULT_LATENTS, CellSurrogate, train_cell_surrogate
from .compare import compare_runs, largest_dt, tissue_run, validate_cell
from .surrogate_base import load_surrogate
from .sweep import CableProtocol, cable_outcome
from .training_data import CellProtocol, cell_training_states
from .two_variable import TwoVariableSurrogate, train_two_variable_surrogate

__all__ = ["CellSurrogate", "train_cell_surrogate", "load_surrogate", "DEFAULT_LATENTS",
           "CellProtocol", "cell_training_states", "build_cell_surrogate", "compare_runs",
           "largest_dt", "tissue_run", "validate_cell", "run_sweep", "read_sweep",
           "CableProtocol", "cable_outcome", "SweepResult", "TwoVariableSurrogate",
           "train_two_variable_surrogate"]
