"""Figures of results."""

from .plots import plot_solution

__all__ = ["plot_solution"]
