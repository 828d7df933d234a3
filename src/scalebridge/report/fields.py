"""Figures of spatial fields (datasets from :func:`scalebridge.pde.to_fields`): snapshots,
space-time plots (kymographs), traces at nodes, overviews and animations (matplotlib,
no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _var(ds, variable):
    if variable is None:
        variable = next(iter(ds.data_vars))
    if variable not in ds.data_vars:
        names = ", ".join(map(str, ds.data_vars))
        raise InputError(f"no field named {variable!r}; fields: {names}")
    da = ds[variable]
    if "x" not in da.dims or "time" not in da.dims:
        raise InputError(f"field {variable!r} has dims {da.dims}; expected (time, x[, y])")
    return da.transpose("time", "x", *(("y",) if "y" in da.dims else ()))


def _limits(da, vmin, vmax):
    vals = np.asarray(da)
    lo = float(np.nanmin(vals)) if vmin is None else vmin
    hi = float(np.nanmax(vals)) if vmax is None else vmax
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


def _save(fig, path, dpi=120):
    if path is not None:
        plt = _plt()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi)
        plt.close(fig)
    return fig


def _extent(da):
    x, y = np.asarray(da["x"]), np.asarray(da["y"])
    return [x[0], x[-1], y[0], y[-1]]


def _draw(ax, snap, da, vmin, vmax, cmap):
    """Draw one snapshot on ``ax``; returns the artist."""
    if "y" in snap.dims:
        return ax.imshow(np.asarray(snap).T, origin="lower", extent=_extent(da), vmin=vmin,
                         vmax=vmax, cmap=cmap, aspect="equal", interpolation="nearest")
    (line,) = ax.plot(np.asarray(da["x"]), np.asarray(snap), lw=1.5)
    ax.set_ylim(vmin - 0.05 * (vmax - vmin), vmax + 0.05 * (vmax - vmin))
    return line



def _label(fig, ax, art, da):
    """Axis labels, and a colorbar for a 2D field."""
    ax.set_xlabel("x")
    if "y" in da.dims:
        ax.set_ylabel("y")
        fig.colorbar(art, ax=ax, label=da.name)
    else:
        ax.set_ylabel(da.name)

def plot_snapshot(ds, variable=None, time=None, path=None, *, ax=None, vmin=None, vmax=None,
                  cmap="viridis"):
    """The field at the output time nearest ``time`` (default: the last): a line in 1D,
    an image with a colorbar in 2D. Saves to ``path`` if given; returns the Figure."""
    plt = _plt()
    da = _var(ds, variable)
    snap = da.isel(time=-1) if time is None else da.sel(time=time, method="nearest")
    vmin, vmax = _limits(da, vmin, vmax)
    fig = ax.figure if ax is not None else plt.subplots(figsize=(5, 4),
                                                       constrained_layout=True)[0]
    ax = ax or fig.axes[0]
    art = _draw(ax, snap, da, vmin, vmax, cmap)
    _label(fig, ax, art, da)
    ax.set_title(f"{da.name}, t = {float(snap['time']):.4g}", fontsize=10)
    return _save(fig, path)


def plot_kymograph(ds, variable=None, path=None, *, ax=None, vmin=None, vmax=None,
                   cmap="viridis"):
    """Space-time plot of a 1D field: x across, time upwards, value as colour."""
    plt = _plt()
    da = _var(ds, variable)
    if "y" in da.dims:
        raise InputError("a kymograph needs a 1D field; for 2D plot snapshots or animate")
    vmin, vmax = _limits(da, vmin, vmax)
    fig = ax.figure if ax is not None else plt.subplots(figsize=(5, 4),
                                                       constrained_layout=True)[0]
    ax = ax or fig.axes[0]
    x, t = np.asarray(da["x"]), np.asarray(da["time"])
    im = ax.imshow(np.asarray(da), origin="lower", aspect="auto", extent=[x[0], x[-1], t[0], t[-1]],
                   vmin=vmin, vmax=vmax, cmap=cmap, interpolation="nearest")
    fig.colorbar(im, ax=ax, label=da.name)
    ax.set_xlabel("x")
    ax.set_ylabel("time")
    ax.set_title(f"{da.name} over space and time", fontsize=10)
    return _save(fig, path)


def plot_traces(ds, variable=None, nodes=None, path=None, *, ax=None):
    """Time courses of a field at chosen nodes: ``nodes`` is a list of index tuples
    (``(i,)`` or ``(i, j)``); default five nodes spread along x (mid-height in 2D)."""
    plt = _plt()
    da = _var(ds, variable)
    nx = da.sizes["x"]
    if nodes is None:
        xs = np.linspace(0, nx - 1, 5).round().astype(int)
        nodes = [(i, da.sizes["y"] // 2) if "y" in da.dims else (i,) for i in xs]
    fig = ax.figure if ax is not None else plt.subplots(figsize=(6, 3.5),
                                                       constrained_layout=True)[0]
    ax = ax or fig.axes[0]
    t = np.asarray(da["time"])
    for node in nodes:
        node = tuple(np.atleast_1d(node).astype(int))
        if len(node) != da.ndim - 1:
            raise InputError(f"node {node} needs {da.ndim - 1} index(es)")
        sel = dict(zip(da.dims[1:], node, strict=True))
        coords = ", ".join(f"{d}={float(da[d][i]):.3g}" for d, i in sel.items())
        ax.plot(t, np.asarray(da.isel(sel)), lw=1.3, label=coords)
    ax.set_xlabel("time")
    ax.set_ylabel(da.name)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_fields(ds, variable=None, path=None, *, title: str | None = None, n_snapshots: int = 4):
    """An overview: in 1D a kymograph, snapshots and traces; in 2D ``n_snapshots``
    images at evenly spaced times with one colorbar."""
    plt = _plt()
    da = _var(ds, variable)
    vmin, vmax = _limits(da, None, None)
    idx = np.unique(np.linspace(0, da.sizes["time"] - 1, n_snapshots).round().astype(int))
    if "y" in da.dims:
        fig, axes = plt.subplots(1, len(idx), figsize=(2.9 * len(idx) + 1.0, 3.4),
                                 constrained_layout=True, squeeze=False)
        for ax, i in zip(axes[0], idx, strict=True):
            im = _draw(ax, da.isel(time=i), da, vmin, vmax, "viridis")
            ax.set_title(f"t = {float(da['time'][i]):.4g}", fontsize=9)
            ax.set_xlabel("x")
        axes[0, 0].set_ylabel("y")
        fig.colorbar(im, ax=axes[0].tolist(), label=da.name)
    else:
        fig, axes = plt.subplots(1, 3, figsize=(14, 3.8), constrained_layout=True)
        plot_kymograph(ds, variable, ax=axes[0])
        for i in idx:
            axes[1].plot(np.asarray(da["x"]), np.asarray(da.isel(time=i)), lw=1.3,
                         label=f"t = {float(da['time'][i]):.4g}")
        axes[1].set_xlabel("x")
        axes[1].set_ylabel(da.name)
        axes[1].legend(fontsize=8)
        axes[1].set_title("snapshots", fontsize=10)
        plot_traces(ds, variable, ax=axes[2])
        axes[2].set_title("traces", fontsize=10)
    if title:
        fig.suptitle(title, fontsize=11)
    return _save(fig, path)


def plot_activation(activation, coords, path=None, *, space_unit: str = "",
                    time_unit: str = "", n_isochrones: int = 10):
    """An activation map: in 1D activation time against x, in 2D a colour map with
    ``n_isochrones`` isochrones. ``activation``: times of the grid's shape (NaN: never
    activated); ``coords``: the node coordinates per axis. Saves to ``path`` if given."""
    plt = _plt()
    act = np.asarray(activation, dtype=float)
    su = f" ({space_unit})" if space_unit not in ("", "1") else ""
    tu = f" ({time_unit})" if time_unit not in ("", "1") else ""
    fig, ax = plt.subplots(figsize=(5, 4) if act.ndim == 2 else (5.5, 3.5),
                           constrained_layout=True)
    if act.ndim == 1:
        ax.plot(np.asarray(coords[0]), act, "o-", ms=2.5, lw=1.2)
        ax.set_ylabel(f"activation time{tu}")
    else:
        x, y = (np.asarray(c) for c in coords)
        mesh = ax.pcolormesh(x, y, act.T, shading="nearest", cmap="plasma")
        fig.colorbar(mesh, ax=ax, label=f"activation time{tu}")
        finite = act[np.isfinite(act)]
        if finite.size and finite.max() > finite.min():
            levels = np.linspace(finite.min(), finite.max(), n_isochrones + 2)[1:-1]
            ax.contour(x, y, act.T, levels=levels, colors="k", linewidths=0.6)
        ax.set_aspect("equal")
        ax.set_ylabel(f"y{su}")
    ax.set_xlabel(f"x{su}")
    ax.set_title("activation map", fontsize=10)
    return _save(fig, path)


def animate_field(ds, variable=None, path=None, *, fps: int = 10, vmin=None, vmax=None,
                  cmap="viridis", dpi: int = 80, max_frames: int | None = None):
    """Animate a field over its output times and write it to ``path``: ``.gif`` with
    matplotlib's PillowWriter, ``.mp4`` with FFMpegWriter (needs ffmpeg on the PATH).
    ``max_frames`` thins the frames evenly. Returns the path."""
    import matplotlib.animation as animation

    plt = _plt()
    if fps < 1:
        raise InputError(f"fps {fps}: need at least 1 frame per second")
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".gif":
        writer = animation.PillowWriter(fps=fps)
    elif suffix == ".mp4":
        if not animation.writers.is_available("ffmpeg"):
            raise InputError(f"{path}: writing MP4 needs ffmpeg, which is not installed; "
                             "give a .gif file name instead")
        writer = animation.FFMpegWriter(fps=fps)
    else:
        raise InputError(f"{path}: animations are written as .gif (or .mp4 with ffmpeg)")
    da = _var(ds, variable)
    frames = np.arange(da.sizes["time"])
    if max_frames is not None and frames.size > max_frames:
        frames = np.unique(np.linspace(0, frames.size - 1, max_frames).round().astype(int))
    vmin, vmax = _limits(da, vmin, vmax)
    fig, ax = plt.subplots(figsize=(4.6, 4) if "y" in da.dims else (5.5, 3.5),
                           constrained_layout=True)
    art = _draw(ax, da.isel(time=frames[0]), da, vmin, vmax, cmap)
    _label(fig, ax, art, da)
    title = ax.set_title("", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    with writer.saving(fig, str(path), dpi):
        for i in frames:
            snap = np.asarray(da.isel(time=i))
            if "y" in da.dims:
                art.set_data(snap.T)
            else:
                art.set_ydata(snap)
            title.set_text(f"{da.name}, t = {float(da['time'][i]):.4g}")
            writer.grab_frame()
    plt.close(fig)
    return path


__all__ = ["plot_snapshot", "plot_kymograph", "plot_traces", "plot_fields", "plot_activation",
           "animate_field"]
