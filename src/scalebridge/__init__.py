"""scalebridge: machine learning joined with multiscale mechanistic models.

Importing scalebridge switches JAX to float64 (see :mod:`scalebridge._x64`).
"""

from . import (
    _x64,  # noqa: F401  (must come first: the one global JAX switch)
    discover,
    errors,
    multiscale,
    pinn,
    sensitivity,
    surrogate,
    testproblems,
)
from ._console import Progress
from .discover import SINDy
from .infer import Problem
from .infer.fit import FitResult, fit
from .infer.profile import ProfileResult, fisher_intervals, profile
from .infer.sample import PosteriorResult, sample
from .infer.space import ParameterSpace
from .io import load, save
from .model import (
    Event,
    FunctionInput,
    Interpolated,
    Model,
    Parameter,
    Prior,
    PulseTrain,
    bolus,
    load_sbml,
    set_parameter,
)
from .model.zoo import load_zoo, zoo_names
from .petab import load_petab
from .sensitivity import ModelOutput, MorrisResult, SobolResult, morris, sobol
from .simulate import Simulator, simulate, simulate_ensemble, steady_state
from .solution import EnsembleSolution, Solution
from .surrogate import (
    ExploreResult,
    GaussianProcess,
    LinearMultiFidelityGP,
    NonlinearMultiFidelityGP,
    explore,
)

__version__ = "0.1.0"

__all__ = [
    "errors", "load_sbml", "Model", "Parameter", "Prior", "Event", "bolus", "set_parameter",
    "PulseTrain", "Interpolated", "FunctionInput", "Simulator", "simulate", "simulate_ensemble",
    "steady_state", "Solution",
    "EnsembleSolution", "save", "load", "load_zoo", "zoo_names", "load_petab", "Problem",
    "ParameterSpace", "fit",
    "FitResult", "profile", "ProfileResult", "fisher_intervals", "sample", "PosteriorResult",
    "sensitivity", "sobol", "SobolResult", "morris", "MorrisResult", "ModelOutput", "surrogate",
    "GaussianProcess", "LinearMultiFidelityGP", "NonlinearMultiFidelityGP", "explore",
    "ExploreResult", "testproblems", "discover", "SINDy", "pinn", "multiscale", "Progress",
    "__version__",
]
