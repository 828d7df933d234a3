"""Helpers shared by the sub-commands: model lookup and argument parsing."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError


def resolve_model(spec: str):
    """A zoo name, an SBML file (.xml/.sbml) or a saved model (.npz)."""
    from ..model.zoo import ZOO, load_zoo
    from ..pde.zoo import SPATIAL

    path = Path(spec)
    suffix = path.suffix.lower()
    if suffix in (".xml", ".sbml"):
        from ..model.sbml import load_sbml

        return load_sbml(path)
    if suffix == ".npz":
        from ..io import load

        return load(path, kind="model")
    if spec in SPATIAL and spec not in ZOO:
        raise InputError(f"{spec!r} is a spatial model; give a grid, e.g. --grid 200 (1D) or "
                         "--grid 100x100 (2D)")
    return load_zoo(spec)


def parse_vary(items: list[str] | None, model):
    """The ParameterSpace of ``model`` that varies the ``--vary`` parameters: options
    ``name=low:high`` (uniform) or ``name=low:high:log`` (log-uniform); the others fixed."""
    from ..infer.space import ParameterSpace

    ranges = {}
    for item in items or []:
        name, sep, spec = item.partition("=")
        parts = spec.split(":")
        if not sep or len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
            raise InputError(f"--vary {item!r}: expected name=low:high or name=low:high:log")
        try:
            lo, hi = float(parts[0]), float(parts[1])
        except ValueError:
            raise InputError(f"--vary {item!r}: low and high must be numbers") from None
        log = len(parts) == 3
        if not lo < hi or (log and lo <= 0):
            raise InputError(f"--vary {item!r}: need low < high (and low > 0 for :log)")
        ranges[name.strip()] = (lo, hi, "log" if log else "lin")
    for name in ranges:
        model.parameter_index(name)
    return ParameterSpace.from_model(model, bounds=ranges) if ranges else None


def resolve_spatial(spec: str, grid: str):
    """A spatial zoo model (:func:`scalebridge.pde.zoo.spatial_setup`) on ``--grid``."""
    from ..pde.zoo import spatial_setup

    return spatial_setup(spec, grid)


def spatial_fields(solution, setup):
    """The fields Dataset of a spatial zoo simulation, with its space and time units."""
    from ..pde.fields import to_fields

    ds = to_fields(solution, setup.model)
    ds.attrs.update(units_space=setup.units.get("space", ""),
                    units_time=setup.units.get("time", ""))
    return ds


def warn_coarse_front(solution, model) -> tuple[float, str | None]:
    """Print a ``warning:`` line on stderr when the wavefront spans fewer than 4 grid
    points; returns the measured number (NaN without a front) and the warning (or None)."""
    import typer

    from ..pde.checks import check_wave_resolution

    points = check_wave_resolution(solution, model, warn=False)
    if not points < 4:
        return points, None
    message = (f"the wavefront spans only {points:.2g} grid points (10-90% rise); results "
               "depend on the grid: use a finer --grid")
    typer.echo(f"warning: {message}", err=True)
    return points, message


def parse_assignments(items: list[str] | None, option: str) -> dict[str, float]:
    """Parse ``name=value`` pairs of a repeated option."""
    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InputError(f"{option} {item!r}: expected name=value, e.g. {option} k1=0.5")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise InputError(f"{option} {item!r}: value {value!r} is not a number") from None
    return out


def fresh_run(out: Path, kind: str, results, *, inputs: dict | None = None,
              settings: dict | None = None):
    """Take ``out`` as the run directory of a command that computes afresh each time (its
    earlier ``results`` are replaced): ``run.json`` records the call, and a directory of
    another kind of run is refused, never overwritten."""
    from ..runtime.run import open_run

    return open_run(out, kind, inputs=inputs or {}, settings=settings or {}, restart=True,
                    results=results)


MAX_VALUES = 200_000_000  # numbers one command may hold at once (1.6 GB of float64)


def check_size(n_values: float, what: str, fix: str) -> None:
    """Refuse, before anything is allocated, a result of more than :data:`MAX_VALUES`
    numbers; ``what`` says what they are and ``fix`` how to shrink it."""
    if n_values > MAX_VALUES:
        raise InputError(f"{what} would hold {n_values:.3g} numbers, more than the limit of "
                         f"{MAX_VALUES:.0e}; {fix}")
