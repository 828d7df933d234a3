"""Plots of simulated trajectories (matplotlib, no display needed)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def save_plot(result, path, *, figsize=(5, 3.5), dpi: int = 100) -> Path:
    """Draw ``result.plot(ax)`` on a new figure, save it to ``path`` and close it."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize)
    result.plot(ax=ax)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return Path(path)


def plot_solution(sol, path=None, *, names=None, title: str | None = None):
    """Small multiples of the states and observables of a Solution over time.

    ``names`` selects series (default: all, up to 16). Saves to ``path`` if given and
    returns the matplotlib Figure.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    names = list(names or sol.names)[:16]
    n = len(names)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False,
                             sharex=True, constrained_layout=True)
    t = np.asarray(sol.times)
    for ax, name in zip(axes.flat, names, strict=False):
        ax.plot(t, np.asarray(sol[name]), lw=1.4)
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=8)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("time", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig
