"""Spatial models: grids, diffusion operators and reaction-diffusion tissue models built
from any cell model (method of lines), solved by :func:`scalebridge.simulate`."""

from .grid import Axis, Grid, grid1d, grid2d
from .models import fisher_kpp, gray_scott, left_edge, monodomain, porous_fisher_kpp
from .operators import Diffusion, fibre_tensor, gradient
from .tissue import ReactionDiffusionRHS, Stimulus, node_names, reaction_diffusion

__all__ = ["Axis", "Grid", "grid1d", "grid2d", "Diffusion", "fibre_tensor", "gradient",
           "Stimulus", "reaction_diffusion", "ReactionDiffusionRHS", "node_names",
           "fisher_kpp", "porous_fisher_kpp", "gray_scott", "monodomain", "left_edge"]
