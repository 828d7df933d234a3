"""Identify system dynamics from data: sparse regression (SINDy, weak SINDy, PDE-FIND),
neural ODEs and hybrid models. Every result becomes a scalebridge :class:`Model`."""

from .derivatives import differentiate
from .hybrid import HybridModel, Recovery, recover_terms
from .implicit import SINDyPI
from .library import (
    ConcatLibrary,
    CustomLibrary,
    FourierLibrary,
    Library,
    PolynomialLibrary,
    TensorLibrary,
    parse_library,
)
from .neural import NeuralODE
from .optimizers import SR3, STLSQ
from .pdefind import PDEFIND
from .reaction_diffusion import ReactionDiffusionFit, discover_reaction_diffusion
from .sindy import (
    Ensemble,
    SINDy,
    format_equations,
    relative_error,
    sparse_regression,
    support_matches,
)
from .weak import WeakForm

__all__ = [
    "SINDy", "SINDyPI", "PDEFIND", "NeuralODE", "HybridModel", "recover_terms", "Recovery",
    "discover_reaction_diffusion", "ReactionDiffusionFit",
    "Ensemble", "WeakForm", "STLSQ", "SR3", "Library", "PolynomialLibrary", "FourierLibrary",
    "CustomLibrary", "ConcatLibrary", "TensorLibrary", "parse_library", "differentiate",
    "format_equations", "relative_error", "support_matches", "sparse_regression",
]
