"""Numerical checks for tissue simulations: the explicit diffusion step limit and the
spatial resolution of travelling wavefronts.

- :func:`check_stability` raises when a forward-Euler (or Heun) diffusion step is above the
  limit ``1 / (2 D K_max sum_i 1/dx_i^2)`` of the grid (von Neumann analysis of the
  standard stencil; e.g. Morton & Mayers, *Numerical Solution of PDEs*, 2nd ed., ch. 2).
- :func:`check_wave_resolution` measures how many grid points a wavefront spans and warns
  when it is under about 4-5: below that a discrete front no longer travels at the speed of
  the continuous one (conduction velocity depends on the spacing, and under-resolved fronts
  can stall: "propagation failure", Keener 1987 SIAM J Appl Math 47:556; for cardiac
  monodomain benchmarks see Niederer et al. 2011 Phil Trans R Soc A 369:4331).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..errors import InputError
from .tissue import ReactionDiffusionRHS


def _tissue_rhs(model) -> ReactionDiffusionRHS:
    rhs = getattr(model, "rhs", None)
    if not isinstance(rhs, ReactionDiffusionRHS):
        raise InputError(f"model {getattr(model, 'name', model)!r} is not a reaction-diffusion "
                         "model; build it with scalebridge.pde.reaction_diffusion, monodomain "
                         "or one of the built-in tissue models")
    return rhs


def _params(model, params) -> np.ndarray:
    if params is None:  # plain floats: this also runs while simulate is being traced
        return np.array([prm.value for prm in model.parameters], dtype=float)
    return np.asarray(model.param_array(params), dtype=float)


def stability_limit(model, params=None) -> float:
    """The largest explicit diffusion step of a tissue model: the smallest over its
    diffusing states of ``op.stable_dt(D)`` (``params``: as in ``simulate``; default the
    nominal values). Nonlinear (density-dependent) diffusion is taken with factor 1."""
    rhs = _tissue_rhs(model)
    p = _params(model, params)
    return min(rhs.op.stable_dt(float(p[k])) for k in rhs.d_index)


def check_stability(model, dt: float, params=None) -> float:
    """Check that an explicit diffusion step ``dt`` is stable for ``model``; return the limit.

    Raises :class:`~scalebridge.errors.InputError` naming the limit, by how much ``dt``
    exceeds it and what to change when ``dt`` is above it (the step is stable up to the
    limit; cross terms of an anisotropic tensor need somewhat less).
    """
    rhs = _tissue_rhs(model)
    limit = stability_limit(model, params)
    if not (dt > 0 and math.isfinite(dt)):
        raise InputError(f"dt must be a positive finite number, got {dt!r}")
    if dt > limit * (1 + 1e-12):
        p = _params(model, params)
        ds = ", ".join(f"{model.parameter_names[k]}={p[k]:g}" for k in rhs.d_index)
        dx = ", ".join(f"{h:g}" for h in rhs.grid.spacing)
        raise InputError(
            f"dt={dt:g} exceeds the explicit diffusion stability limit {limit:.4g} "
            f"({ds}, conductivity max {rhs.op.kmax:g}, spacing {dx}) by a factor of "
            f"{dt / limit:.3g}; use dt <= {limit:.4g}, or "
            "OperatorSplitting(dt, diffusion='implicit'), or a coarser grid")
    return limit


def _field_series(solution_or_states, model, state):
    rhs = _tissue_rhs(model)
    ys = getattr(solution_or_states, "states", solution_or_states)
    ys = np.asarray(ys, dtype=float)
    n_states = len(model.state_names)
    if ys.ndim == 1:
        ys = ys[None]
    if ys.ndim != 2 or ys.shape[1] != n_states:
        raise InputError(f"states have shape {ys.shape}; expected (n_times, {n_states}) "
                         f"or ({n_states},) for model {model.name!r}")
    s = rhs.diffusing[0] if state is None else rhs.cell.state_index(state)
    fields = ys.reshape(ys.shape[0], rhs.n_cell_states, *rhs.grid.shape)[:, s]
    return rhs, rhs.cell.state_names[s], fields


def _front_width(field, grid, lo, hi):
    """Width (in grid spacings) of the 10-90% rise through the steepest node of one field,
    along the axis of its steepest component; ``None`` when the rise is cut by a boundary."""
    grads = np.gradient(field, *grid.spacing) if field.ndim > 1 else \
        [np.gradient(field, grid.spacing[0])]
    mags = [np.abs(g) for g in grads]
    steep = [m.max() for m in mags]
    axis = int(np.argmax(steep))
    node = np.unravel_index(np.argmax(mags[axis]), field.shape)
    idx = list(node)
    idx[axis] = slice(None)
    prof = field[tuple(idx)]
    i = node[axis]
    sign = np.sign(np.gradient(prof)[i]) or 1.0
    prof = sign * prof
    a, b = (lo, hi) if sign > 0 else (-hi, -lo)
    lo_level, hi_level = a + 0.1 * (b - a), a + 0.9 * (b - a)

    def crossing(level, step):
        j = i
        while 0 <= j + step < prof.size:
            k = j + step
            if (prof[k] - level) * (prof[j] - level) <= 0 and prof[k] != prof[j]:
                return j + step * (level - prof[j]) / (prof[k] - prof[j])
            if (prof[k] - prof[j]) * step < 0:  # no longer monotone: not this front
                return None
            j = k
        return None

    x_lo = crossing(lo_level, -1) if prof[i] >= lo_level else crossing(lo_level, +1)
    x_hi = crossing(hi_level, +1) if prof[i] <= hi_level else crossing(hi_level, -1)
    if x_lo is None or x_hi is None:
        return None, steep[axis]
    return abs(x_hi - x_lo), steep[axis]


def check_wave_resolution(solution_or_states, model, threshold: float = 4.0, *,
                          state: str | None = None, warn: bool = True) -> float:
    """Grid points across the travelling wavefronts of a tissue simulation.

    ``solution_or_states``: a :class:`~scalebridge.Solution` of ``model`` or its states
    ``(n_times, n_states)``. ``state``: the cell state whose front is measured (default the
    first diffusing one, e.g. ``V``). At every output time the front through the node of
    steepest gradient is measured along its steepest axis: the distance between the 10% and
    90% levels of the state's overall range (over all times and nodes), by linear
    interpolation, in grid spacings. The median over the output times whose steepest gradient
    is at least half the largest (times with a front) is returned.

    Emits a :class:`UserWarning` naming the measured number when it is below ``threshold``
    (default 4): refine the grid (the front width scales with ``sqrt(D)``, so it is fixed by
    the physics, not by the grid). Returns ``nan`` (silently) when no front was found, e.g.
    for a uniform field or when the front always touches the boundary.
    """
    rhs, name, fields = _field_series(solution_or_states, model, state)
    lo, hi = float(np.nanmin(fields)), float(np.nanmax(fields))
    if not np.isfinite(lo + hi) or hi - lo <= 0:
        return float("nan")
    measured = [_front_width(f, rhs.grid, lo, hi) for f in fields]
    steepest = max(s for _, s in measured)
    widths = [w for w, s in measured if w is not None and s >= 0.5 * steepest]
    if not widths or steepest == 0:
        return float("nan")
    points = float(np.median(widths))
    if warn and points < threshold:
        warnings.warn(
            f"the wavefront of {name!r} spans {points:.2g} grid points (10-90% rise, median "
            f"over {len(widths)} output times), fewer than {threshold:g}: the front is "
            f"under-resolved and its speed depends on the spacing "
            f"({', '.join(f'{h:g}' for h in rhs.grid.spacing)}); refine the grid to at least "
            f"{math.ceil(threshold / points * max(a.n for a in rhs.grid.axes))} nodes per "
            "axis or check the result against a finer grid",
            UserWarning, stacklevel=2)
    return points


__all__ = ["check_stability", "stability_limit", "check_wave_resolution"]
