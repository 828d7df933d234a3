"""Spatial zoo: ready-made tissue models for the command line.

``load_spatial(name, grid)`` builds a model on a grid given as text, ``"200"`` (1D, 200
nodes) or ``"100x100"`` (2D); ``spatial_setup`` also returns the solver settings and the
state to show. Each model has a fixed physical domain (the grid sets the resolution; a 2D
grid keeps the node spacing of ``x`` along ``y``), a diffusivity and a stimulus protocol:

=====================  ========================  ===============================  =========
name                   units (space, time)       domain, diffusivity              protocol
=====================  ========================  ===============================  =========
``fisher_kpp``         um, h                     1000 um, D = 500 um^2/h          colony
``porous_fisher_kpp``  um, h                     1000 um, D = 1000 um^2/h, m = 1  colony
``gray_scott``         dimensionless             2.5 (periodic), Pearson 1993     seeded
``aliev_panfilov``     dimensionless             80, D = 1                        S1-S2
``fitzhugh_nagumo``    dimensionless             100, D = 1                       paced
``beeler_reuter``      mm, ms                    20 mm, D = 0.1 mm^2/ms           paced
=====================  ========================  ===============================  =========

For the excitable models (``aliev_panfilov``, ``fitzhugh_nagumo``, ``beeler_reuter``),
``spatial_setup(name, grid, cell=..., stimuli=...)`` swaps in another cell model (e.g. a
learned surrogate) and another stimulus protocol on the same domain.

All use diffrax's explicit Tsit5 with loose tolerances: the implicit solvers form a
dense Jacobian, hopeless beyond a few hundred nodes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import diffrax
import jax.numpy as jnp
import numpy as np

from ..errors import InputError
from ..model.inputs import PulseTrain
from ..model.model import Model
from .grid import Grid, grid1d, grid2d
from .models import _logistic, gray_scott, monodomain
from .tissue import Stimulus, reaction_diffusion


@dataclass(frozen=True)
class SpatialSetup:
    """A spatial zoo model with how to solve and show it."""

    name: str
    model: Model
    variable: str  # the cell state to plot and animate
    units: dict = field(default_factory=dict)  # {"space": ..., "time": ...}
    solver: object = field(default_factory=diffrax.Tsit5)
    rtol: float = 1e-4
    atol: float = 1e-6
    suggested_t_end: float = 100.0


def parse_grid(spec: str) -> tuple[int, ...]:
    """``"200"`` -> ``(200,)``, ``"100x100"`` -> ``(100, 100)``."""
    text = str(spec).strip().lower()
    if not re.fullmatch(r"\d+(x\d+)?", text):
        raise InputError(f"grid {spec!r}: expected a node count N (1D) or NXxNY (2D), "
                         "e.g. --grid 200 or --grid 100x100")
    shape = tuple(int(s) for s in text.split("x"))
    if min(shape) < 3:
        raise InputError(f"grid {spec!r}: every axis needs at least 3 nodes, e.g. --grid 200")
    if math.prod(shape) > 4_000_000:
        raise InputError(f"grid {spec!r}: {math.prod(shape)} nodes is too many for one run; "
                         "use at most 2000x2000")
    return shape


def _grid(shape, length: float, boundary: str = "noflux") -> Grid:
    if len(shape) == 1:
        return grid1d(shape[0], length, boundary)
    nx, ny = shape
    return grid2d(nx, ny, length, length * (ny - 1) / (nx - 1), boundary)


def _quiet(cell: Model) -> Model:
    """The cell with a silent ``I_stim`` input (the tissue stimuli replace it)."""
    quiet = PulseTrain("I_stim", 0.0, 1.0, 1.0, start=math.inf)
    others = [i for i in cell.inputs if i.name != "I_stim"]
    return cell.replace(inputs=(*others, quiet))


def _edge(grid: Grid, fraction: float = 0.03):
    width = max(fraction * grid.axes[0].length, 1.5 * grid.spacing[0])
    return lambda x, *rest: x <= width


def _fisher(shape, porous: bool) -> SpatialSetup:
    """Fisher-KPP invasion of a cell population (scratch assay scales, Jin et al. 2016 J
    Theor Biol 390:136): u = density / carrying capacity, r = 0.05 /h."""
    L = 1000.0
    D = 1000.0 if porous else 500.0
    grid = _grid(shape, L)
    mesh = grid.mesh()
    if grid.ndim == 1:
        u0 = np.where(mesh[0] <= 0.05 * L, 1.0, 0.0)  # cells on the left, invading rightwards
    else:  # a round colony in the middle
        cx, cy = (a.length / 2 for a in grid.axes)
        u0 = np.where(np.hypot(mesh[0] - cx, mesh[1] - cy) <= 0.1 * L, 1.0, 0.0)
    kw = {}
    if porous:
        kw["nonlinear_diffusion"] = lambda u, p: jnp.maximum(u / p[1], 0.0)  # m = 1
    name = "porous_fisher_kpp" if porous else "fisher_kpp"
    model = reaction_diffusion(_logistic(0.05, 1.0), grid, diffusion={"u": D}, name=name,
                               initial=u0.ravel(), **kw)
    return SpatialSetup(name, model, "u", {"space": "um", "time": "h"},
                        rtol=1e-5, atol=1e-8, suggested_t_end=48.0)


def _gray_scott(shape) -> SpatialSetup:
    if len(shape) != 2 or shape[0] != shape[1]:
        raise InputError(f"gray_scott runs on a square 2D grid; got {'x'.join(map(str, shape))}"
                         ", give e.g. --grid 128x128")
    model = gray_scott(n=shape[0])
    return SpatialSetup("gray_scott", model, "v", {"space": "1", "time": "1"},
                        rtol=1e-4, atol=1e-7, suggested_t_end=10000.0)


def _excitable_cell(name: str, cell: Model | None, zoo_cell) -> Model:
    """The cell of an excitable tissue: ``cell`` if given, else the zoo's; silenced."""
    if cell is None:
        from ..model.zoo import load_zoo

        cell = zoo_cell(load_zoo(name))
    elif not isinstance(cell, Model):
        raise InputError(f"cell for {name!r} must be a scalebridge Model, got "
                         f"{type(cell).__name__}")
    return _quiet(cell)


def _s1_s2(grid: Grid) -> list[Stimulus]:
    """Aliev-Panfilov protocol: paced left end (1D), S1-S2 spiral induction (2D)."""
    if grid.ndim == 1:
        return [Stimulus(_edge(grid), 1.0, 0.0, 1.0, period=60.0)]
    lx, ly = (a.length for a in grid.axes)
    return [Stimulus(_edge(grid), 1.0, 0.0, 1.0),
            Stimulus(lambda x, y: (x <= lx / 2) & (y <= ly / 2), 1.0, 60.0, 1.0)]


def _aliev_panfilov(shape, cell: Model | None = None, stimuli=None) -> SpatialSetup:
    """Aliev-Panfilov tissue, dimensionless (1 t.u. = 12.9 ms; u = (V + 80 mV) / 100 mV);
    domain 80 x 80 (2D) with D = 1. 1D: the left end paced every 60 t.u. 2D: S1 on the
    left edge at t = 0, S2 on the lower-left quadrant at t = 60, when the S1 wave's
    refractory tail covers the quadrant's right half; its broken front curls into a
    spiral wave (about one rotation per 30 t.u.)."""
    grid = _grid(shape, EXCITABLE["aliev_panfilov"])
    if stimuli is None:
        stimuli = _s1_s2(grid)
    cell = _excitable_cell("aliev_panfilov", cell, lambda c: c)
    model = monodomain(cell, grid, D=1.0, stimuli=stimuli, name="aliev_panfilov_tissue")
    return SpatialSetup("aliev_panfilov", model, "u", {"space": "1", "time": "t.u. (12.9 ms)"},
                        rtol=1e-3, atol=1e-5, suggested_t_end=300.0)


def _fitzhugh_nagumo(shape, cell: Model | None = None, stimuli=None) -> SpatialSetup:
    """FitzHugh-Nagumo tissue, dimensionless, excitable (I_ext = 0): domain 100, D = 1,
    the left edge paced every 100 time units."""
    grid = _grid(shape, EXCITABLE["fitzhugh_nagumo"])
    if stimuli is None:
        stimuli = [Stimulus(_edge(grid), 1.0, 0.0, 2.0, period=100.0)]
    cell = _excitable_cell("fitzhugh_nagumo", cell, lambda c: c.with_parameters(I_ext=0.0))
    model = monodomain(cell, grid, D=1.0, name="fitzhugh_nagumo_tissue", stimuli=stimuli)
    return SpatialSetup("fitzhugh_nagumo", model, "v", {"space": "1", "time": "1"},
                        rtol=1e-4, atol=1e-6, suggested_t_end=200.0)


def _beeler_reuter(shape, cell: Model | None = None, stimuli=None) -> SpatialSetup:
    """Beeler-Reuter ventricular tissue in mm and ms (V in mV): 20 mm, D = 0.1 mm^2/ms
    (1 cm^2/s), the left edge paced every 500 ms by 2 ms pulses of 60 uA/cm^2."""
    grid = _grid(shape, EXCITABLE["beeler_reuter"])
    if stimuli is None:
        stimuli = [Stimulus(_edge(grid), 60.0, 5.0, 2.0, period=500.0)]
    cell = _excitable_cell("beeler_reuter", cell, lambda c: c)
    model = monodomain(cell, grid, D=0.1, name="beeler_reuter_tissue", stimuli=stimuli)
    model = model.replace(stiff=False)
    return SpatialSetup("beeler_reuter", model, "V", {"space": "mm", "time": "ms"},
                        rtol=1e-4, atol=1e-6, suggested_t_end=400.0)


EXCITABLE = {"aliev_panfilov": 80.0, "fitzhugh_nagumo": 100.0, "beeler_reuter": 20.0}
"""The excitable spatial models (cell + stimulus protocol) and their domain lengths."""

SPATIAL = {
    "fisher_kpp": lambda shape: _fisher(shape, porous=False),
    "porous_fisher_kpp": lambda shape: _fisher(shape, porous=True),
    "gray_scott": _gray_scott,
    "aliev_panfilov": _aliev_panfilov,
    "fitzhugh_nagumo": _fitzhugh_nagumo,
    "beeler_reuter": _beeler_reuter,
}


def spatial_names() -> list[str]:
    """Names of the spatial zoo models."""
    return list(SPATIAL)


def spatial_setup(name: str, grid_spec: str, *, cell: Model | None = None,
                  stimuli=None) -> SpatialSetup:
    """A spatial zoo model on ``grid_spec`` (``"200"`` or ``"100x100"``) with its solver
    settings. Raises :class:`~scalebridge.errors.InputError` for an unknown name or grid.

    For the excitable models (:data:`EXCITABLE`), ``cell`` replaces the zoo's cell model
    (its first state is the membrane potential; its ``I_stim`` input is silenced and fed by
    the tissue stimuli) and ``stimuli`` (a list of :class:`~scalebridge.pde.Stimulus`)
    replaces the default protocol."""
    if name not in SPATIAL:
        raise InputError(f"no spatial model named {name!r}; spatial models: "
                         f"{', '.join(SPATIAL)}")
    shape = parse_grid(grid_spec)
    if cell is None and stimuli is None:
        return SPATIAL[name](shape)
    if name not in EXCITABLE:
        raise InputError(f"a custom cell or stimuli apply to the excitable spatial models "
                         f"({', '.join(EXCITABLE)}), not to {name!r}")
    return SPATIAL[name](shape, cell=cell, stimuli=None if stimuli is None else list(stimuli))


def load_spatial(name: str, grid_spec: str) -> Model:
    """The tissue :class:`Model` of a spatial zoo model on ``grid_spec`` (``"200"``: 1D,
    ``"100x100"``: 2D); see the module docstring for units, domains and protocols."""
    return spatial_setup(name, grid_spec).model


__all__ = ["SpatialSetup", "SPATIAL", "EXCITABLE", "load_spatial",
           "spatial_setup", "spatial_names", "parse_grid"]
