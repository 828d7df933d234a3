"""Parameter estimation: problems (model + data + likelihood) and PEtab formulas."""

from .formula import Formula, parse_formula
from .problem import ObservableSpec, Problem
from .space import ParameterSpace

__all__ = ["Formula", "parse_formula", "ObservableSpec", "Problem", "ParameterSpace"]
