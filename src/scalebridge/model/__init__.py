"""Models: the Model class, parameter specs, inputs, events, SBML import and the zoo."""

from .events import Event, bolus, set_parameter
from .inputs import AbstractInput, FunctionInput, Interpolated, PulseTrain
from .model import Model
from .parameter import Parameter, Prior
from .sbml import load_sbml

__all__ = ["Model", "Parameter", "Prior", "Event", "bolus", "set_parameter", "AbstractInput",
           "PulseTrain", "Interpolated", "FunctionInput", "load_sbml"]
