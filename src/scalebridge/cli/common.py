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


def resolve_spatial(spec: str, grid: str):
    """A spatial zoo model (:func:`scalebridge.pde.zoo.spatial_setup`) on ``--grid``."""
    from ..pde.zoo import spatial_setup

    return spatial_setup(spec, grid)


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
