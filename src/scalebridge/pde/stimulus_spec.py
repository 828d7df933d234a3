"""Stimulus protocols written as text, for the command line and configuration files.

``parse_stimulus("x=0:0.5 amplitude=60 start=5 duration=2 period=500", ndim=1)`` gives a
:class:`~scalebridge.pde.Stimulus`. A spec is a list of ``key=value`` pairs separated by
spaces or commas, each key at most once; nothing is evaluated (numbers are read with
``float``):

=================  =====================================================  ===========
key                meaning                                                default
=================  =====================================================  ===========
``x=LO:HI``        region along x, both ends included (space units)       required
``y=LO:HI``        region along y (2D grids only)                         whole height
``amplitude=A``    strength fed to the cell's ``I_stim`` input            required
``duration=D``     length of each pulse (time units), > 0                 required
``start=T``        onset of the first pulse, >= 0                         0
``period=P``       pulses repeat every ``P`` (> duration)                 single pulse
``stop=T``         no stimulation after ``T`` (> start)                   never
=================  =====================================================  ===========

The region is an axis-aligned box (:class:`Box`); :func:`check_region` tells whether it
holds a node of a given grid, naming the domain when it does not.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .grid import Grid
from .tissue import Stimulus

AXES = ("x", "y")
NUMBERS = ("amplitude", "duration", "start", "period", "stop")
REQUIRED = ("x", "amplitude", "duration")
FORM = ("x=LO:HI [y=LO:HI] amplitude=A duration=D [start=T] [period=P] [stop=T], "
        "e.g. 'x=0:0.5 amplitude=60 start=5 duration=2 period=500'")


@dataclass(frozen=True)
class Box:
    """An axis-aligned region ``lo <= coordinate <= hi`` per axis (``None``: the whole
    axis); a stimulus region callable on the node coordinate arrays."""

    bounds: tuple[tuple[float, float] | None, ...]

    def __call__(self, *coords):
        inside = np.ones(np.shape(coords[0]), dtype=bool)
        for c, b in zip(coords, self.bounds, strict=True):
            if b is not None:
                lo, hi = b
                tol = 1e-9 * max(1.0, abs(lo), abs(hi))  # ends given in decimal text
                inside &= (c >= lo - tol) & (c <= hi + tol)
        return inside

    def __str__(self) -> str:
        return " ".join(f"{a}={b[0]:g}:{b[1]:g}" for a, b in zip(AXES, self.bounds,
                                                                  strict=False)
                        if b is not None)


def _number(key: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InputError(f"stimulus {key}={text!r}: expected a finite number, e.g. "
                         f"{key}=2; a stimulus reads {FORM}")
    return value


def _interval(key: str, text: str) -> tuple[float, float]:
    lo, sep, hi = text.partition(":")
    if not sep:
        raise InputError(f"stimulus {key}={text!r}: expected a range {key}=LO:HI, e.g. "
                         f"{key}=0:0.5")
    a, b = _number(key, lo), _number(key, hi)
    if a > b:
        raise InputError(f"stimulus {key}={text!r}: the range is reversed; write "
                         f"{key}={b:g}:{a:g}")
    return a, b


def _pairs(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for token in (t for t in re.split(r"[\s,]+", str(text).strip()) if t):
        key, sep, value = token.partition("=")
        key = key.strip().lower()
        if not sep or not key or not value:
            raise InputError(f"stimulus {text!r}: {token!r} is not key=value; a stimulus "
                             f"reads {FORM}")
        if key not in AXES + NUMBERS:
            raise InputError(f"stimulus key {key!r} is unknown; keys: "
                             f"{', '.join(AXES + NUMBERS)}; a stimulus reads {FORM}")
        if key in out:
            raise InputError(f"stimulus {text!r}: {key!r} is given twice")
        out[key] = value
    return out


def _check_timing(v: dict[str, float]) -> None:
    if v["duration"] <= 0:
        raise InputError(f"stimulus duration={v['duration']:g}: must be > 0, e.g. duration=2")
    if v["start"] < 0:
        raise InputError(f"stimulus start={v['start']:g}: must be >= 0 (the simulation "
                         "starts at 0)")
    if "period" in v and v["period"] <= v["duration"]:
        raise InputError(f"stimulus period={v['period']:g}: must exceed duration="
                         f"{v['duration']:g}; leave period out for a single pulse")
    if "stop" in v and v["stop"] <= v["start"]:
        raise InputError(f"stimulus stop={v['stop']:g}: must be after start={v['start']:g}")


def parse_stimulus(text: str, ndim: int) -> Stimulus:
    """A :class:`~scalebridge.pde.Stimulus` from a spec such as
    ``"x=0:0.5 amplitude=60 start=5 duration=2 period=500"`` (see the module docstring)
    on a grid of ``ndim`` (1 or 2) dimensions. Raises
    :class:`~scalebridge.errors.InputError` naming the key at fault and the expected form."""
    if ndim not in (1, 2):
        raise InputError(f"ndim={ndim}: stimuli are for 1D or 2D grids")
    pairs = _pairs(text)
    missing = [k for k in REQUIRED if k not in pairs]
    if missing:
        raise InputError(f"stimulus {text!r}: {', '.join(missing)} missing; a stimulus "
                         f"reads {FORM}")
    if "y" in pairs and ndim == 1:
        raise InputError(f"stimulus {text!r}: y applies to 2D grids only; drop it or use "
                         "a 2D grid, e.g. --grid 101x101")
    values = {"start": 0.0}
    values.update({k: _number(k, pairs[k]) for k in NUMBERS if k in pairs})
    _check_timing(values)
    bounds = tuple(_interval(a, pairs[a]) if a in pairs else None for a in AXES[:ndim])
    return Stimulus(Box(bounds), values["amplitude"], values["start"], values["duration"],
                    period=values.get("period"), stop=values.get("stop", math.inf))


def domain_text(grid: Grid, unit: str = "") -> str:
    """The extent of ``grid``, e.g. ``"x=0:20 mm"`` or ``"x=0:20 y=0:20 mm"``."""
    text = " ".join(f"{a}={c[0]:g}:{c[-1]:g}" for a, c in zip(AXES, grid.coords, strict=False))
    return f"{text} {unit}".strip() if unit not in ("", "1") else text


def check_region(stimulus: Stimulus, grid: Grid, unit: str = "") -> np.ndarray:
    """The node mask of ``stimulus`` on ``grid``; raises
    :class:`~scalebridge.errors.InputError` naming the region and the domain when the
    region lies outside the domain or between nodes (``unit``: of space, for messages)."""
    region = stimulus.region
    mask = np.asarray(region(*grid.mesh()) if callable(region) else region, dtype=bool)
    if mask.shape == grid.shape and mask.any():
        return mask
    if not isinstance(region, Box):
        raise InputError(f"a stimulus region holds no node of the domain "
                         f"{domain_text(grid, unit)}; give a region inside it")
    if any(b is not None and (b[1] < c[0] or b[0] > c[-1])
           for b, c in zip(region.bounds, grid.coords, strict=False)):
        raise InputError(f"stimulus region {region} lies outside the domain "
                         f"{domain_text(grid, unit)}; give a region inside it")
    spacing = ", ".join(f"{h:g}" for h in grid.spacing)
    raise InputError(f"stimulus region {region} contains no grid node (spacing {spacing}"
                     f"{'' if unit in ('', '1') else ' ' + unit}); widen it or refine --grid")


__all__ = ["parse_stimulus", "check_region", "domain_text", "Box"]
