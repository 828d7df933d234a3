"""Resumable parameter sweeps.

:func:`run_sweep` evaluates ``fn(shared, **point)`` at every point of a cartesian grid of
axis values through an :class:`~scalebridge.runtime.executor.Executor` (in-process, threads or
a Dask cluster) and appends each result, as it arrives, to the JSON-lines file
``points.jsonl`` of its run directory::

    res = run_sweep(cable_point, {"conductivity": [0.2, 0.5, 1.0], "period": [200, 400]},
                    out="sweep", shared=(cell, CableProtocol()), executor="threads:2")
    res.to_pandas()   # one row per point; res.plot() maps the outcome classes

The file's first line is a header naming the axes and their values and the fingerprint of
``fn`` and ``shared`` (:func:`~scalebridge.runtime.run.fingerprint`); every further line is
one point: its axis values and ``fn``'s results. A line is written, flushed and synced to
disk before the next result is taken, so a run killed midway loses at most the points in
progress; running the same sweep again skips the points already in the file (a trailing
partial line, left by a kill during a write, is dropped). A file made for other axes, or by
another function or shared input, is refused with :class:`~scalebridge.errors.InputError`
rather than mixed. :meth:`SweepResult.plot` draws the outcome classes over two axes.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._console import Progress
from ..errors import InputError
from .executor import Executor, get_executor
from .files import jsonable, write_atomic
from .run import fingerprint, open_run

__all__ = ["run_sweep", "read_sweep", "sweep_grid", "SweepResult", "OUTCOMES"]

POINTS = "points.jsonl"  # the results of a sweep in its run directory
FORMAT = "scalebridge-sweep"
FORMAT_VERSION = 1
OUTCOMES = ("conduction", "block", "failure")  # known classes: their colours and order


# ----- the generic sweep -----------------------------------------------------------------
def _axes(axes) -> dict[str, tuple[float, ...]]:
    if not isinstance(axes, Mapping) or not axes:
        raise InputError("axes must be a non-empty dict {name: values}, e.g. "
                         "{'conductivity': [0.5, 1.0], 'period': [200, 400]}")
    out = {}
    for name, values in axes.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise InputError(f"axis name {name!r} must be a Python identifier (it becomes a "
                             "keyword argument of fn)")
        try:
            vals = tuple(float(v) for v in np.atleast_1d(np.asarray(values, dtype=float)))
        except (TypeError, ValueError):
            raise InputError(f"axis {name!r}: values must be numbers, got {values!r}") from None
        if not vals:
            raise InputError(f"axis {name!r} has no values")
        if not all(math.isfinite(v) for v in vals):
            raise InputError(f"axis {name!r} has NaN or infinite values")
        if len(set(vals)) != len(vals):
            raise InputError(f"axis {name!r} repeats a value: {list(vals)}")
        out[name] = vals
    return out


def sweep_grid(axes) -> list[dict[str, float]]:
    """The points of the cartesian grid of ``axes``, in a fixed order: the first axis
    varies slowest, each axis in the order its values are given."""
    ax = _axes(axes)
    names = list(ax)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*ax.values())]


def _key(point: Mapping, names) -> tuple[float, ...]:
    return tuple(float(point[n]) for n in names)


def _header(axes: dict, inputs: str | None = None) -> dict:
    return {"format": FORMAT, "format_version": FORMAT_VERSION,
            "axes": {k: list(v) for k, v in axes.items()}, "inputs_sha256": inputs}


def read_sweep(path, axes=None) -> list[dict]:
    """The point records of a sweep (its run directory, or the ``points.jsonl`` in it; a
    trailing partial line is ignored); with ``axes``, check that it was run for exactly
    these axes and values."""
    path = Path(path)
    return _read(path / POINTS if path.is_dir() else path,
                 None if axes is None else _axes(axes))[0]


def _read(path: Path, axes: dict | None,
          inputs: str | None = None) -> tuple[list[dict], int | None]:
    """``(records, good_length)``: the complete records, and the byte length up to the
    last complete line when a partial line follows it (else None). ``inputs``: the
    fingerprint of the sweep's function and shared inputs, checked against the header's."""
    data = path.read_bytes()
    good = data.rfind(b"\n") + 1
    partial = data[good:]
    lines = data[:good].split(b"\n")[:-1]
    if not lines:  # killed while the header was being written (cannot happen: atomic)
        raise InputError(f"{path} is not a scalebridge sweep file (no header line); use "
                         "another out file")
    try:
        header = json.loads(lines[0])
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise InputError(f"{path} is not a scalebridge sweep file; use another out file")
    if header.get("format_version") != FORMAT_VERSION:
        raise InputError(f"{path}: sweep file version {header.get('format_version')} is not "
                         f"supported (reads version {FORMAT_VERSION})")
    old = {k: tuple(float(x) for x in v) for k, v in header.get("axes", {}).items()}
    if axes is not None and old != axes:
        raise InputError(f"{path} holds a sweep over other axes: {_mismatch(old, axes)}; "
                         "use another out file (or delete this one)")
    if inputs is not None and header.get("inputs_sha256") != inputs:
        raise InputError(f"{path}: the sweep's function or its shared inputs (the model, the "
                         "cell surrogate, the protocol) changed since this file was written; "
                         "use restart (--restart) to start over, or another out file")
    names = list(old)
    records = []
    for i, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            _key(rec, names)
        except (ValueError, KeyError, TypeError):
            raise InputError(f"{path}, line {i}: not a sweep record; the file is corrupt "
                             "(fix or delete that line)") from None
        records.append(rec)
    return records, (good if partial else None)


def _mismatch(old: dict, new: dict) -> str:
    if list(old) != list(new):
        return f"axes {list(old)} in the file, {list(new)} asked for"
    diff = [k for k in new if old[k] != new[k]]
    return "; ".join(f"{k} = {list(old[k])} in the file, {list(new[k])} asked for"
                     for k in diff)


def _point_task(pack, names, values):
    """The executor task: ``fn(shared, **point)`` (``pack`` = ``(fn, shared)``, sent once)."""
    fn, shared = pack
    return fn(shared, **dict(zip(names, values, strict=True)))


def run_sweep(fn: Callable, axes: Mapping[str, Sequence[float]], *, out, shared=None,
              executor=None, progress=True, restart: bool = False):
    """Evaluate ``fn(shared, **point)`` on the cartesian grid of ``axes`` and return a
    :class:`SweepResult`: every point's axis values and results (``to_pandas()``, grid
    order, see :func:`sweep_grid`).

    ``fn`` returns a dict of JSON-able results (NumPy scalars and NaN are accepted; NaN and
    infinity are stored as null); it should catch the failures it expects and report them
    as results. ``out``: the run directory (:mod:`scalebridge.runtime.run`); the results
    are appended to ``out/points.jsonl`` as they finish, and points already there are not
    computed again (resume). A directory of a sweep over other axes, or of another ``fn`` or
    ``shared`` (their :func:`~scalebridge.runtime.run.fingerprint`: the code, the model's
    content, a surrogate's data), raises :class:`~scalebridge.errors.InputError`;
    ``restart=True`` starts over. ``executor``: as
    :func:`~scalebridge.runtime.executor.get_executor` (``None``: in this process,
    ``"threads:N"``, ``"dask://HOST:PORT"`` or an :class:`Executor`, which is left open);
    ``fn`` and ``shared`` are sent once to each Dask worker, so make them picklable
    (module-level functions). An exception escaping ``fn`` stops the sweep with the
    executor's :class:`~scalebridge.runtime.executor.TaskError`; the points finished before
    it stay in ``out``. ``progress``: ``True`` draws a progress bar on standard error;
    ``False`` shows nothing; or a :class:`~scalebridge.Progress` or any
    ``progress(done, total)``.
    """
    import pandas as pd

    if not callable(fn):
        raise InputError(f"fn must be callable, got {type(fn).__name__}")
    ax = _axes(axes)
    names = list(ax)
    points = sweep_grid(ax)
    inputs = fingerprint((fn, shared))
    run = open_run(out, "sweep", inputs={"function and shared inputs": (None, inputs)},
                   settings={"axes": {k: list(v) for k, v in ax.items()}}, restart=restart,
                   results=(POINTS,))
    path = run.file(POINTS)
    if path.exists():
        records, good = _read(path, ax, inputs)
        if good is not None:  # drop the partial last line before appending
            with open(path, "r+b") as fh:
                fh.truncate(good)
                fh.flush()
                os.fsync(fh.fileno())
    else:
        records = []
        header = (json.dumps(_header(ax, inputs), allow_nan=False) + "\n").encode()
        write_atomic(path, lambda fh: fh.write(header))
    grid_keys = {_key(p, names) for p in points}
    found = {}
    for rec in records:
        k = _key(rec, names)
        if k not in grid_keys:  # cannot happen with a matching header unless edited
            raise InputError(f"{path} holds a point {dict(zip(names, k, strict=True))} "
                             "outside the sweep's grid; the file is corrupt")
        found.setdefault(k, rec)
    todo = [p for p in points if _key(p, names) not in found]
    ex = get_executor(executor)
    owned = not isinstance(executor, Executor)
    own = progress is True
    meter = Progress(f"sweep {path.name}", bar=True, enabled=bool(todo)) if own else \
        (progress or None)
    try:
        if todo:
            tasks = [(tuple(names), _key(p, names)) for p in todo]
            with open(path, "ab") as fh:
                for i, result in ex.map(_point_task, tasks, shared=(fn, shared)):
                    point = todo[i]
                    if not isinstance(result, Mapping):
                        raise InputError(f"fn returned a {type(result).__name__} at {point}; "
                                         "it must return a dict of results")
                    clash = set(result) & set(names)
                    if clash:
                        raise InputError(f"fn's result names {sorted(clash)} clash with the "
                                         "axes; rename them")
                    rec = {**point, **jsonable(dict(result))}
                    try:
                        line = json.dumps(rec, allow_nan=False) + "\n"
                    except (TypeError, ValueError) as exc:
                        raise InputError(f"the result at {point} is not JSON-able: "
                                         f"{exc}") from None
                    fh.write(line.encode())
                    fh.flush()
                    os.fsync(fh.fileno())
                    found[_key(point, names)] = rec
                    if meter is not None:
                        meter(len(found), len(points))
    finally:
        if own:
            meter.close()
        if owned:
            ex.close()
    rows = [found[_key(p, names)] for p in points]
    df = pd.DataFrame.from_records(rows)
    rest = [c for c in df.columns if c not in names]
    return SweepResult(ax, df[names + rest])


# ----- the outcome map -------------------------------------------------------------------
_COLOURS = {"conduction": "#4daf4a", "block": "#ff7f00", "failure": "#e41a1c"}
_OTHER = ("#377eb8", "#984ea3", "#a65628", "#f781bf", "#999999", "#ffff33")


@dataclass
class SweepResult:
    """A finished sweep (the result protocol, decision 0018): ``axes`` (``{name: values}``)
    and ``table``, one row per grid point in grid order (:func:`sweep_grid`): the axis
    values, then ``fn``'s results."""

    axes: dict
    table: object  # pandas.DataFrame

    def to_pandas(self):
        return self.table.copy()

    def to_dict(self) -> dict:
        """The axes and the table's rows (NaN as null)."""
        return {"axes": {k: [float(v) for v in vs] for k, vs in self.axes.items()},
                "columns": [str(c) for c in self.table.columns],
                "rows": jsonable(self.table.to_dict(orient="records"))}

    @classmethod
    def from_dict(cls, d) -> SweepResult:
        import pandas as pd

        table = pd.DataFrame.from_records(d["rows"], columns=d["columns"])
        return cls({k: tuple(v) for k, v in d["axes"].items()}, table)

    def plot(self, ax=None, *, x: str | None = None, y: str | None = None,
             outcome: str = "outcome", title: str | None = None):
        """A categorical map of the column ``outcome`` over the axes ``x`` and ``y``
        (default: the first two axes), one coloured cell per grid point (cells span half-way
        to their neighbours, so any grid density works) and a legend entry per class
        present, into ``ax`` (a new figure if None); returns the axes."""
        import matplotlib.pyplot as plt
        from matplotlib.colors import ListedColormap
        from matplotlib.patches import Patch

        names = list(self.axes)
        x = x or names[0]
        y = y or (names[1] if len(names) > 1 else None)
        df = self.table
        for col in (x, y, outcome):
            if col is None or col not in df.columns:
                raise InputError(f"no column {col!r} in the sweep; give x=, y= and outcome= "
                                 f"from its columns {list(df.columns)}")
        if df.empty:
            raise InputError("the sweep has no rows to plot")
        present = list(dict.fromkeys(str(v) for v in df[outcome]))
        classes = [c for c in OUTCOMES if c in present] + sorted(c for c in present
                                                                 if c not in OUTCOMES)
        others = iter(_OTHER * (len(classes) // len(_OTHER) + 1))
        colours = [_COLOURS.get(c) or next(others) for c in classes]
        xs = np.unique(df[x].to_numpy(float))
        ys = np.unique(df[y].to_numpy(float))
        code = np.full((ys.size, xs.size), np.nan)
        ix = np.searchsorted(xs, df[x].to_numpy(float))
        iy = np.searchsorted(ys, df[y].to_numpy(float))
        code[iy, ix] = [classes.index(str(v)) for v in df[outcome]]

        def edges(v):
            if v.size == 1:
                return np.array([v[0] - 0.5, v[0] + 0.5])
            mid = (v[1:] + v[:-1]) / 2
            return np.concatenate([[v[0] - (mid[0] - v[0])], mid, [v[-1] + (v[-1] - mid[-1])]])

        if ax is None:
            _, ax = plt.subplots(figsize=(6.4, 4.8))
        few = xs.size * ys.size <= 400
        ax.pcolormesh(edges(xs), edges(ys), np.ma.masked_invalid(code),
                      cmap=ListedColormap(colours), vmin=-0.5, vmax=len(classes) - 0.5,
                      edgecolors="white" if few else "face", linewidth=0.5 if few else 0.0)
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.set_title(title or f"{outcome} over {x} and {y} ({xs.size} x {ys.size} points)")
        ax.legend(handles=[Patch(color=c, label=k) for k, c in zip(classes, colours,
                                                                    strict=True)],
                  title=outcome, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        return ax

