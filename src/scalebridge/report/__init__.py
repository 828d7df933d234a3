"""Figures of results."""

from .fields import animate_field, plot_fields, plot_kymograph, plot_snapshot, plot_traces
from .plots import plot_solution, save_plot

__all__ = ["plot_solution", "save_plot", "plot_snapshot", "plot_kymograph", "plot_traces",
           "plot_fields", "animate_field"]
