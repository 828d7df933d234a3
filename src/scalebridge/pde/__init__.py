"""Spatial models: grids, diffusion operators and reaction-diffusion tissue models built
from any cell model (method of lines), solved by :func:`scalebridge.simulate`."""

from .grid import Axis, Grid, grid1d, grid2d
from .models import fisher_kpp, gray_scott, left_edge, monodomain, porous_fisher_kpp
from .operators import Diffusion, fibre_tensor, gradient
from .tissue import ReactionDiffusionRHS, Stimulus, node_names, reaction_diffusion

__all__ = ["Axis", "Grid", "grid1d", "grid2d", "Diffusion", "fibre_tensor", "gradient",
           "Stimulus", "reaction_diffusion", "ReactionDiffusionRHS", "node_names",
           "fisher_kpp", "porous_fisher_kpp", "gray_scott", "monodomain", "left_edge"]

from .checks import check_stability, check_wave_resolution, stability_limit  # noqa: E402
from .splitting import OperatorSplitting  # noqa: E402

__all__ += ["OperatorSplitting", "check_stability", "check_wave_resolution", "stability_limit"]

from .fields import initial_from_fields, read_fields, to_fields, write_fields  # noqa: E402
from .measure import (  # noqa: E402
    activation_times,
    apd,
    conduction_velocity,
    front_position,
    front_speed,
)
from .zoo import load_spatial, spatial_setup  # noqa: E402

__all__ += ["to_fields", "initial_from_fields", "write_fields", "read_fields",
            "activation_times", "conduction_velocity", "apd", "front_position", "front_speed",
            "load_spatial", "spatial_setup"]
