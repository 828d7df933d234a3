"""Plots of a calibration: measurements against the simulation at fitted parameters."""

from __future__ import annotations

import math
from pathlib import Path


def plot_fit(problem, x=None, path=None):
    """One panel per observable: measurements (with their noise ``sigma`` as error bars)
    and the simulation at the scaled parameters ``x`` (None: nominal), one colour per
    (preequilibration, simulation) condition. Saves to ``path`` if given; returns the
    matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    table = problem.simulations(x)
    table["condition"] = [f"{p}:{s}" if p else s for p, s in zip(
        table["preequilibrationConditionId"], table["simulationConditionId"], strict=True)]
    obs = list(dict.fromkeys(table["observableId"]))
    n = len(obs)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows), squeeze=False,
                             constrained_layout=True)
    conds = list(dict.fromkeys(table["condition"]))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, oid in zip(axes.flat, obs, strict=False):
        sub = table[table["observableId"] == oid]
        for k, cond in enumerate(conds):
            part = sub[sub["condition"] == cond].sort_values("time")
            if part.empty:
                continue
            c = colours[k % len(colours)]
            ax.errorbar(part["time"], part["measurement"], yerr=part["sigma"], fmt="o", ms=3,
                        color=c, alpha=0.7, lw=0.8, label=cond if len(conds) > 1 else "data")
            ax.plot(part["time"], part["simulation"], "-", color=c, lw=1.4)
        ax.set_title(oid, fontsize=9)
        ax.tick_params(labelsize=8)
        ax.set_xlabel("time", fontsize=8)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    if len(conds) <= 8:
        axes.flat[0].legend(fontsize=7)
    nll = problem.nll(x)
    fig.suptitle(f"{problem.name}: NLL {nll:.4f}", fontsize=10)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
        plt.close(fig)
    return fig


__all__ = ["plot_fit"]
