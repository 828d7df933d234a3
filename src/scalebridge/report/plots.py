"""Plots of simulated trajectories (matplotlib, no display needed)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def save_plot(obj, path, *, dpi: int = 110) -> Path:
    """Save a figure to ``path`` (atomically) and close it. ``obj``: a result (its
    ``plot()`` is drawn on a new figure), a matplotlib Figure, or Axes (one or an array of
    them)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if hasattr(obj, "plot") and not hasattr(obj, "savefig") and not hasattr(obj, "figure"):
        obj = obj.plot()
    fig = obj if hasattr(obj, "savefig") else np.ravel(obj)[0].figure
    fig.tight_layout()
    from ..runtime.files import write_atomic

    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    write_atomic(path, lambda fh: fig.savefig(fh, dpi=dpi, format=fmt))
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
