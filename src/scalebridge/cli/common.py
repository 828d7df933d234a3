"""Helpers shared by the sub-commands: model lookup and argument parsing."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError


def resolve_model(spec: str):
    """A zoo name, an SBML file (.xml/.sbml) or a saved model (.npz)."""
    from ..model.zoo import load_zoo

    path = Path(spec)
    suffix = path.suffix.lower()
    if suffix in (".xml", ".sbml"):
        from ..model.sbml import load_sbml

        return load_sbml(path)
    if suffix == ".npz":
        from ..io import load

        return load(path, kind="model")
    return load_zoo(spec)


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
