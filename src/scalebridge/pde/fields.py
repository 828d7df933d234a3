"""Tissue solutions as fields: node states <-> arrays of the grid's shape.

A tissue model's states are node values, state-major (all nodes of the cell's first state
in C order, then the second, ...). :func:`to_fields` turns a :class:`~scalebridge.Solution`
of such a model into an ``xarray.Dataset`` with one variable per cell state over
``(time, x)`` or ``(time, x, y)``; :class:`Fields` is that Dataset as a result (saved by
``sb.save`` in scalebridge's ``.npz`` format, arrays + JSON, never pickle, or to netCDF);
:func:`initial_from_fields` builds a flat initial state from fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError, SerializationError
from .grid import Axis, Grid
from .tissue import ReactionDiffusionRHS

DIMS = ("x", "y")


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


@dataclass
class Fields:
    """A tissue simulation as fields (the result protocol, decision 0018): ``dataset`` is
    the ``xarray.Dataset`` of :func:`to_fields` (one variable per cell state over ``(time,
    x)`` or ``(time, x, y)``), ``meta`` a dict of JSON values about the run (model, grid,
    time step). ``sb.save(fields, "f.npz")`` writes scalebridge's archive (arrays ``time``,
    ``x`` (``y``) and ``field_<state>``; never pickle), ``sb.load`` reads it back, and
    :meth:`to_netcdf` writes netCDF through xarray."""

    dataset: object
    meta: dict = field(default_factory=dict)

    @classmethod
    def from_solution(cls, solution, model, meta: Mapping | None = None) -> Fields:
        """The fields of a tissue model's :class:`~scalebridge.Solution`."""
        return cls(to_fields(solution, model), dict(meta or {}))

    def to_xarray(self):
        return self.dataset

    def to_dict(self) -> dict:
        """State names, dims, coordinates and field arrays, the Dataset's attributes and
        ``meta``."""
        ds = self.dataset
        dims = [d for d in ("time", *DIMS) if d in ds.dims]
        return {"states": [str(v) for v in ds.data_vars], "dims": dims,
                "coords": {d: np.asarray(ds[d]) for d in dims},
                "fields": {str(n): np.asarray(ds[n].transpose(*dims)) for n in ds.data_vars},
                "attrs": {k: v for k, v in ds.attrs.items()
                          if isinstance(v, str | int | float | list)},
                "meta": dict(self.meta)}

    @classmethod
    def from_dict(cls, d) -> Fields:
        import xarray as xr

        dims = tuple(d["dims"])
        ds = xr.Dataset({n: (dims, np.asarray(d["fields"][n])) for n in d["states"]},
                        coords={k: np.asarray(d["coords"][k]) for k in dims})
        ds.attrs.update(d.get("attrs", {}))
        return cls(ds, dict(d.get("meta", {})))

    def to_pandas(self):
        """One row per time and node (index ``time, x[, y]``), one column per state."""
        return self.dataset.to_dataframe()

    def plot(self, ax=None, *, variable: str | None = None, time: float | None = None):
        """The field ``variable`` (default: the first state) at the output time nearest
        ``time`` (default: the last) into ``ax``: a line in 1D, an image in 2D."""
        from ..report.fields import plot_snapshot

        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(5, 4))
        plot_snapshot(self.dataset, variable, time, ax=ax)
        return ax

    def to_netcdf(self, path) -> Path:
        """Write the Dataset (with ``meta`` as JSON in the attribute ``scalebridge_meta``)
        to a netCDF file (h5netcdf)."""
        import json

        ds = self.dataset.copy()
        ds.attrs = {k: (json.dumps(v) if isinstance(v, list) else v)
                    for k, v in ds.attrs.items() if isinstance(v, str | int | float | list)}
        ds.attrs["scalebridge_meta"] = json.dumps(self.meta)
        ds.to_netcdf(path, engine="h5netcdf")
        return Path(path)


def encode_fields(fields: Fields) -> tuple[dict, dict]:
    """The archive layout of :class:`Fields`: arrays ``time``, ``x`` (``y``) and
    ``field_<state>``; state names, dims, attributes and ``meta`` in the JSON header."""
    d = fields.to_dict()
    arrays = dict(d["coords"])
    arrays.update({f"field_{n}": a for n, a in d["fields"].items()})
    return arrays, {"states": d["states"], "dims": d["dims"], "attrs": d["attrs"],
                    **d["meta"]}


def decode_fields(arrays: dict, info: dict) -> Fields:
    info = dict(info)
    try:
        states, dims = info.pop("states"), info.pop("dims")
        attrs = info.pop("attrs", {})
        return Fields.from_dict({"states": states, "dims": dims,
                                 "coords": {k: arrays[k] for k in dims},
                                 "fields": {n: arrays[f"field_{n}"] for n in states},
                                 "attrs": attrs, "meta": info})
    except (KeyError, ValueError) as exc:
        raise SerializationError(f"corrupt fields file ({exc})") from None


__all__ = ["Fields", "to_fields", "initial_from_fields", "grid_of", "tissue_parts"]
