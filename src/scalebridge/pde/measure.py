"""Measurements on simulated fields: activation times, conduction velocity, action
potential duration (APD), and invasion-front position and speed.

Every function takes NumPy arrays (or ``xarray.DataArray`` from
:func:`scalebridge.pde.to_fields`, whose ``time`` coordinate then supplies the times) with
time as the first axis: a trace ``(n_times,)`` or a field ``(n_times, *grid.shape)``.
Crossing times are interpolated linearly between output times, so their accuracy is set by
the output spacing (keep it a fraction of the upstroke or front-passage time).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputError
from .grid import Grid


def _series(data, times):
    """``(values with time first, times)`` from an array or an xarray DataArray."""
    if hasattr(data, "dims") and hasattr(data, "coords"):
        if "time" not in data.dims:
            raise InputError("the DataArray has no 'time' dimension; pass a field from "
                             "to_fields(...)[state]")
        if times is None:
            times = np.asarray(data["time"])
        data = data.transpose("time", ...).values
    values = np.asarray(data, dtype=float)
    if times is None:
        raise InputError("times are missing; pass the output times (or an xarray field)")
    t = np.asarray(times, dtype=float)
    if t.ndim != 1 or values.ndim < 1 or values.shape[0] != t.size or t.size < 2:
        raise InputError(f"data of shape {values.shape} does not match {t.size} times; time "
                         "must be the first axis")
    if np.any(np.diff(t) <= 0):
        raise InputError("times must be strictly increasing")
    return values, t


def _crossings(v, t, level, upward: bool):
    """Times of crossings of ``level`` along axis 0, as a list per node (flattened)."""
    v2 = v.reshape(v.shape[0], -1)
    lev = np.broadcast_to(np.asarray(level, dtype=float), v.shape[1:]).ravel()
    a, b = v2[:-1], v2[1:]
    hit = (a < lev) & (b >= lev) if upward else (a > lev) & (b <= lev)
    k, node = np.nonzero(hit)
    frac = (lev[node] - a[k, node]) / (b[k, node] - a[k, node])
    tc = t[k] + frac * (t[k + 1] - t[k])
    out = [[] for _ in range(v2.shape[1])]
    for n, time in zip(node, tc, strict=True):
        out[n].append(time)
    return out


def activation_times(field, times=None, threshold: float = 0.0):
    """Per node, the time of the first upward crossing of ``threshold`` (linearly
    interpolated between output times); NaN where the node never crosses it.

    A node already at or above threshold at the first output time counts only when it
    crosses again after falling below. Returns a float for a trace, else an array of the
    grid's shape. Given JAX arrays (``field`` and ``times``), it is a JAX function of
    them (a JAX array, differentiable where the crossing is): a fit can measure the
    activation of what it simulates."""
    if isinstance(field, jax.Array):
        if times is None:
            raise InputError("times are missing; pass the output times with a JAX field")
        v, t, xp = field, jnp.asarray(times), jnp
    else:
        (v, t), xp = _series(field, times), np
    v2 = v.reshape(v.shape[0], -1)
    hit = (v2[:-1] < threshold) & (v2[1:] >= threshold)
    any_hit = hit.any(axis=0)
    k = xp.argmax(hit, axis=0)
    cols = xp.arange(v2.shape[1])
    a, b = v2[k, cols], v2[k + 1, cols]
    gap = xp.where(any_hit, b - a, 1.0)  # no crossing: any finite value, masked below
    act = t[k] + (threshold - a) / gap * (t[k + 1] - t[k])
    act = xp.where(any_hit, act, xp.nan).reshape(v.shape[1:])
    if xp is jnp:
        return act
    return float(act) if act.ndim == 0 else act


def conduction_velocity(activation, grid: Grid, *, method: str = "fit", points=None,
                        margin: float = 0.1, outlier: float = 3.0):
    """Conduction velocity (space units per time unit) from activation times on ``grid``.

    ``method="fit"`` (default), for a planar wave: least-squares fit of the plane
    ``T = t0 + g . x`` to the finite activation times of the nodes at least ``margin``
    (a fraction of the domain) from every edge, so that the stimulated region and the
    boundary layers are left out; nodes whose residual exceeds ``outlier`` times the
    residuals' robust spread (1.4826 x median absolute deviation) are dropped and the
    plane refitted once. Returns ``1 / |g|``, the speed along the wave's direction.

    ``method="gradient"``: the local speed ``1 / |grad T|`` at every node (central
    differences; NaN where the gradient vanishes or is undefined), an array.

    ``points=(p1, p2)`` (coordinates, e.g. ``(2.0,)`` or ``(2.0, 5.0)``): the distance
    between the nodes nearest to the two points over the difference of their activation
    times; the wave must travel from one to the other along the line between them.
    """
    act = np.asarray(activation, dtype=float)
    if act.shape != grid.shape:
        raise InputError(f"activation times have shape {act.shape}, expected the grid's "
                         f"{grid.shape}")
    if points is not None:
        idx, pos = [], []
        for p in points:
            p = np.atleast_1d(np.asarray(p, dtype=float))
            if p.size != grid.ndim:
                raise InputError(f"point {tuple(p)} needs {grid.ndim} coordinate(s)")
            i = tuple(int(np.argmin(np.abs(c - q))) for c, q in zip(grid.coords, p, strict=True))
            idx.append(i)
            pos.append(np.array([c[j] for c, j in zip(grid.coords, i, strict=True)]))
        dt = act[idx[1]] - act[idx[0]]
        if not np.isfinite(dt) or dt == 0:
            raise InputError("the activation times at the two points are missing or equal; "
                             "pick points the wave passes at different times")
        return float(np.linalg.norm(pos[1] - pos[0]) / abs(dt))
    if method == "gradient":
        grads = np.gradient(act, *grid.spacing) if grid.ndim > 1 else [np.gradient(
            act, grid.spacing[0])]
        norm = np.sqrt(sum(g**2 for g in grads))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(norm > 0, 1.0 / norm, np.nan)
    if method != "fit":
        raise InputError(f"method {method!r} is unknown; use 'fit' or 'gradient'")
    mesh = grid.mesh()
    keep = np.isfinite(act)
    for c, ax in zip(mesh, grid.axes, strict=True):
        keep &= (c >= margin * ax.length) & (c <= (1 - margin) * ax.length)
    if keep.sum() < grid.ndim + 2:
        raise InputError("too few activated nodes inside the margins to fit a conduction "
                         "velocity; run longer or lower margin")
    A = np.column_stack([np.ones(keep.sum()), *(c[keep] for c in mesh)])
    T = act[keep]
    coef = np.linalg.lstsq(A, T, rcond=None)[0]
    res = T - A @ coef
    spread = 1.4826 * np.median(np.abs(res - np.median(res)))
    good = np.abs(res) <= outlier * spread if spread > 0 else np.ones(T.size, bool)
    if good.sum() >= grid.ndim + 2 and not good.all():
        coef = np.linalg.lstsq(A[good], T[good], rcond=None)[0]
    slope = np.linalg.norm(coef[1:])
    if slope == 0:
        raise InputError("activation times do not vary in space; no travelling wave to measure")
    return float(1.0 / slope)


def apd(data, times=None, level: float = 0.9, *, rest=None, peak=None):
    """Action potential duration at ``level`` repolarisation (APD90 by default), per beat.

    For each node the resting value ``rest`` is by default the value at the first output
    time (start a simulation at rest, before the first stimulus), ``"min"`` for the
    trace's minimum, or a number or field; ``peak`` is by default the trace's maximum.
    The reference value is ``rest + (1 - level) (peak - rest)``. Each beat runs from an
    upward crossing of the reference (the upstroke) to the next downward crossing
    (``level`` repolarised); both are interpolated linearly in time, and a beat still
    depolarised at the end is left out.

    Returns ``(n_beats,)`` for a trace, or ``(*grid.shape, max_beats)`` for a field, NaN
    where a node has fewer beats (or no action potential at all: peak == rest).
    """
    if not 0 < level < 1:
        raise InputError(f"level {level} must lie in (0, 1), e.g. 0.9 for APD90")
    v, t = _series(data, times)
    if rest is None:
        lo = v[0]
    elif isinstance(rest, str):
        if rest != "min":
            raise InputError(f"rest {rest!r}: give None (first value), 'min' or a number")
        lo = np.nanmin(v, axis=0)
    else:
        lo = np.broadcast_to(np.asarray(rest, dtype=float), v.shape[1:])
    hi = np.nanmax(v, axis=0) if peak is None else np.broadcast_to(peak, v.shape[1:])
    ref = lo + (1 - level) * (hi - lo)
    ref = np.where(hi > lo, ref, np.inf)  # flat traces: no beats
    ups = _crossings(v, t, ref, upward=True)
    downs = _crossings(v, t, ref, upward=False)
    beats = []
    for up, down in zip(ups, downs, strict=True):
        d = np.asarray(down)
        out = []
        for u in up:
            later = d[d > u]
            if later.size:
                out.append(later[0] - u)
        beats.append(out)
    if v.ndim == 1:
        return np.asarray(beats[0], dtype=float)
    n = max((len(b) for b in beats), default=0)
    arr = np.full((len(beats), n), np.nan)
    for i, b in enumerate(beats):
        arr[i, :len(b)] = b
    return arr.reshape((*v.shape[1:], n))


def front_position(field, grid: Grid, level: float = 0.5):
    """Position of an invasion front moving towards +x: the largest ``x`` where the field
    reaches ``level`` (interpolated linearly between the last node at or above it and the
    next). Accepts one snapshot (the grid's shape) or a series with time first; in 2D
    there is one position per ``y`` row (last axis). NaN where no node reaches ``level``.
    """
    u = np.asarray(getattr(field, "values", field), dtype=float)
    nx = grid.shape[0]
    lead = u.ndim - grid.ndim
    if lead < 0 or u.shape[lead:] != grid.shape:
        raise InputError(f"field of shape {u.shape} does not end with the grid's shape "
                         f"{grid.shape}")
    x = grid.coords[0]
    ux = np.moveaxis(u, lead, -1)  # x last
    above = ux >= level
    has = above.any(axis=-1)
    last = nx - 1 - np.argmax(above[..., ::-1], axis=-1)
    nxt = np.minimum(last + 1, nx - 1)
    a = np.take_along_axis(ux, last[..., None], -1)[..., 0]
    b = np.take_along_axis(ux, nxt[..., None], -1)[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where((nxt > last) & (a != b), (a - level) / (a - b), 0.0)
    pos = np.where(has, x[last] + frac * (x[nxt] - x[last]), np.nan)
    return float(pos) if pos.ndim == 0 else pos


def front_speed(field, grid: Grid, times=None, level: float = 0.5, *, window=None):
    """Speed of an invasion front: slope of a least-squares line through the front
    positions (:func:`front_position`, averaged over ``y`` in 2D) against time.

    ``window=(t_start, t_end)`` selects the times fitted; by default the second half of
    the times at which the front is inside the domain (more than two nodes from either
    end), which skips the initial transient of a front that is still forming."""
    u, t = _series(field, times)
    pos = front_position(u, grid, level)
    if pos.ndim > 1:
        pos = np.nanmean(pos, axis=-1)
    dx, L = grid.spacing[0], grid.axes[0].length
    inside = np.isfinite(pos) & (pos > 2 * dx) & (pos < L - 2 * dx)
    if window is not None:
        sel = inside & (t >= window[0]) & (t <= window[1])
    else:
        idx = np.nonzero(inside)[0]
        sel = np.zeros_like(inside)
        sel[idx[len(idx) // 2:]] = True
    if sel.sum() < 2:
        raise InputError("fewer than two times with the front inside the domain; run longer, "
                         "widen the window or check the level")
    return float(np.polyfit(t[sel], pos[sel], 1)[0])


__all__ = ["activation_times", "conduction_velocity", "apd", "front_position", "front_speed"]
