"""Spatial models: grids, diffusion operators and reaction-diffusion tissue models built
from any cell model (method of lines), solved by :func:`scalebridge.simulate`; operator
splitting with Rush-Larsen gating; fields, measurements and the spatial zoo."""

from .checks import check_stability, check_wave_resolution, stability_limit
from .fields import Fields, initial_from_fields, to_fields
from .grid import Axis, Grid, grid1d, grid2d
from .measure import activation_times, apd, conduction_velocity, front_position, front_speed
from .models import fisher_kpp, gray_scott, left_edge, monodomain, porous_fisher_kpp
from .operators import Diffusion, fibre_tensor, gradient
from .splitting import OperatorSplitting
from .tissue import ReactionDiffusionRHS, Stimulus, node_names, reaction_diffusion
from .zoo import load_spatial, spatial_setup

__all__ = [
    "Axis", "Grid", "grid1d", "grid2d", "Diffusion", "fibre_tensor", "gradient", "Stimulus",
    "reaction_diffusion", "ReactionDiffusionRHS", "node_names", "fisher_kpp",
    "porous_fisher_kpp", "gray_scott", "monodomain", "left_edge", "OperatorSplitting",
    "check_stability", "check_wave_resolution", "stability_limit", "to_fields",
    "initial_from_fields", "Fields", "activation_times",
    "conduction_velocity", "apd", "front_position", "front_speed", "load_spatial",
    "spatial_setup",
]
