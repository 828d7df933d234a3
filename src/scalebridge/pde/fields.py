"""Tissue solutions as fields: node states <-> arrays of the grid's shape.

A tissue model's states are node values, state-major (all nodes of the cell's first state
in C order, then the second, ...). :func:`to_fields` turns a :class:`~scalebridge.Solution`
of such a model into an ``xarray.Dataset`` with one variable per cell state over
``(time, x)`` or ``(time, x, y)``; :func:`initial_from_fields` builds a flat initial state
from fields; :func:`write_fields` / :func:`read_fields` keep a Dataset in scalebridge's
``.npz`` format (arrays + JSON, never pickle).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..errors import InputError, SerializationError
from .grid import Axis, Grid
from .tissue import ReactionDiffusionRHS

DIMS = ("x", "y")
FIELDS_KIND = "fields"


def tissue_parts(model) -> ReactionDiffusionRHS:
    """The reaction-diffusion right-hand side of a tissue model (its grid and cell)."""
    rhs = getattr(model, "rhs", None)
    if not isinstance(rhs, ReactionDiffusionRHS):
        raise InputError(f"model {getattr(model, 'name', model)!r} is not a tissue model; "
                         "build one with scalebridge.pde.reaction_diffusion or monodomain")
    return rhs


def _grid_attrs(grid: Grid) -> dict:
    return {"lengths": [a.length for a in grid.axes],
            "boundaries": [a.boundary for a in grid.axes]}


def to_fields(solution, model):
    """An ``xarray.Dataset`` with one variable per cell state, dims ``(time, x)`` (1D) or
    ``(time, x, y)`` (2D), coordinates from the model's grid.

    Attributes record the model name, the grid's lengths and boundaries."""
    import xarray as xr

    rhs = tissue_parts(model)
    grid, names = rhs.grid, tuple(rhs.cell.state_names)
    states = np.asarray(solution.states)
    if states.ndim != 2 or states.shape[1] != len(names) * grid.size:
        raise InputError(f"solution has states of shape {states.shape}; model {model.name!r} "
                         f"needs (n_times, {len(names) * grid.size})")
    data = states.reshape((states.shape[0], len(names), *grid.shape))
    dims = ("time", *DIMS[:grid.ndim])
    coords = {"time": np.asarray(solution.times)}
    coords.update({d: c for d, c in zip(DIMS, grid.coords, strict=False)})
    ds = xr.Dataset({s: (dims, data[:, k]) for k, s in enumerate(names)}, coords=coords)
    ds.attrs.update(model=model.name, **_grid_attrs(grid))
    return ds


def initial_from_fields(model, fields: Mapping, params=None) -> np.ndarray:
    """A flat initial state for a tissue model from ``{state: field}``.

    Each field is a number or an array of the grid's shape; states not given keep the
    model's own initial values (under ``params``). Pass the result as ``y0`` to
    :func:`scalebridge.simulate`."""
    rhs = tissue_parts(model)
    grid, names = rhs.grid, list(rhs.cell.state_names)
    base = np.array(model.initial_state(model.param_array(params)), dtype=float)
    base = base.reshape((len(names), *grid.shape))
    for state, value in fields.items():
        if state not in names:
            raise InputError(f"initial field {state!r}: the cell has no such state; its states "
                             f"are {', '.join(names)}")
        arr = np.asarray(value, dtype=float)
        if arr.ndim and arr.shape != grid.shape:
            raise InputError(f"initial field {state!r} has shape {arr.shape}; give a number or "
                             f"an array of the grid's shape {grid.shape}")
        if not np.all(np.isfinite(arr)):
            raise InputError(f"initial field {state!r} contains NaN or infinity")
        base[names.index(state)] = arr
    return base.ravel()


def grid_of(ds) -> Grid:
    """The :class:`~scalebridge.pde.Grid` of a fields Dataset (from its coordinates and
    the ``lengths``/``boundaries`` attributes, else a no-flux grid over the coordinates)."""
    dims = [d for d in DIMS if d in ds.dims]
    if not dims:
        raise InputError("the dataset has no x coordinate; expected fields from to_fields")
    lengths = ds.attrs.get("lengths") or [float(ds[d][-1] - ds[d][0]) for d in dims]
    bounds = ds.attrs.get("boundaries") or ["noflux"] * len(dims)
    return Grid(tuple(Axis(int(ds.sizes[d]), float(L), str(b))
                      for d, L, b in zip(dims, np.atleast_1d(lengths), np.atleast_1d(bounds),
                                         strict=True)))


def write_fields(ds, path, meta: Mapping | None = None):
    """Write a fields Dataset to ``path`` (``.npz``, scalebridge's archive format): arrays
    ``time``, ``x`` (``y``) and ``field_<state>``; state names, dims and grid in the JSON."""
    from ..io import write_archive

    names = [str(v) for v in ds.data_vars]
    dims = [d for d in ("time", *DIMS) if d in ds.dims]
    arrays = {d: np.asarray(ds[d]) for d in dims}
    arrays.update({f"field_{n}": np.asarray(ds[n].transpose(*dims)) for n in names})
    info = {"states": names, "dims": dims,
            "attrs": {k: v for k, v in ds.attrs.items() if isinstance(v, str | int | float | list)}}
    info.update(meta or {})
    return write_archive(path, FIELDS_KIND, arrays, info)


def read_fields(path):
    """Read a file written by :func:`write_fields` (or ``scalebridge simulate --grid``)
    back into an ``xarray.Dataset``."""
    import xarray as xr

    from ..io import read_archive

    arrays, meta, _ = read_archive(path, FIELDS_KIND)
    try:
        dims = tuple(meta["dims"])
        ds = xr.Dataset({n: (dims, arrays[f"field_{n}"]) for n in meta["states"]},
                        coords={d: arrays[d] for d in dims})
    except (KeyError, ValueError) as exc:
        raise SerializationError(f"{path}: corrupt fields file ({exc})") from None
    ds.attrs.update(meta.get("attrs", {}))
    return ds


__all__ = ["to_fields", "initial_from_fields", "write_fields", "read_fields", "grid_of",
           "tissue_parts"]
