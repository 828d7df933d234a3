"""Uniform 1D and 2D grids and their boundary conditions.

Nodes are vertex-centred: on a non-periodic axis of length ``L`` with ``n`` nodes they sit
at ``x_i = i L / (n - 1)``, so the first and last nodes lie on the boundary; on a periodic
axis they sit at ``x_i = i L / n`` (the node at ``L`` is the node at 0). Each node owns a
control volume (half a cell at a boundary), which makes no-flux boundaries conserve the
trapezoidal mass :meth:`Grid.integrate` exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError

BOUNDARIES = ("noflux", "dirichlet", "periodic")


@dataclass(frozen=True)
class Axis:
    """One axis: ``n`` nodes over ``[0, length]`` with a boundary condition at both ends."""

    n: int
    length: float
    boundary: str = "noflux"

    def __post_init__(self):
        if not isinstance(self.n, int | np.integer) or self.n < 3:
            raise InputError(f"a grid axis needs at least 3 nodes, got n={self.n!r}")
        if not np.isfinite(self.length) or self.length <= 0:
            raise InputError(f"a grid axis needs a positive finite length, got {self.length!r}")
        if self.boundary not in BOUNDARIES:
            raise InputError(f"boundary {self.boundary!r} is unknown; use one of "
                             f"{', '.join(BOUNDARIES)}")
        object.__setattr__(self, "n", int(self.n))
        object.__setattr__(self, "length", float(self.length))

    @property
    def periodic(self) -> bool:
        return self.boundary == "periodic"

    @property
    def dx(self) -> float:
        return self.length / (self.n if self.periodic else self.n - 1)

    @property
    def coords(self) -> np.ndarray:
        return np.arange(self.n) * self.dx

    @property
    def weights(self) -> np.ndarray:
        """Control-volume lengths (trapezoidal weights)."""
        w = np.full(self.n, self.dx)
        if not self.periodic:
            w[0] = w[-1] = self.dx / 2
        return w


@dataclass(frozen=True)
class Grid:
    """A uniform grid of one or two axes (``x``, then ``y``); fields have shape
    ``grid.shape`` and are flattened in C order (``x`` slowest) when they become states."""

    axes: tuple[Axis, ...]

    def __post_init__(self):
        if len(self.axes) not in (1, 2):
            raise InputError(f"grids have 1 or 2 axes, got {len(self.axes)}")

    @property
    def ndim(self) -> int:
        return len(self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(a.n for a in self.axes)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def spacing(self) -> tuple[float, ...]:
        return tuple(a.dx for a in self.axes)

    @property
    def coords(self) -> tuple[np.ndarray, ...]:
        """1-D coordinate arrays, one per axis."""
        return tuple(a.coords for a in self.axes)

    def mesh(self) -> tuple[np.ndarray, ...]:
        """Coordinate arrays of shape ``grid.shape`` (``indexing="ij"``)."""
        return tuple(np.meshgrid(*self.coords, indexing="ij"))

    @property
    def weights(self) -> np.ndarray:
        """Control-volume sizes of shape ``grid.shape``."""
        w = self.axes[0].weights
        for a in self.axes[1:]:
            w = np.multiply.outer(w, a.weights)
        return w

    def integrate(self, field) -> np.ndarray:
        """Trapezoidal integral of a field over the domain (last axes = grid axes)."""
        f = np.asarray(field)
        w = self.weights
        return np.sum(f * w, axis=tuple(range(f.ndim - w.ndim, f.ndim)))


def grid1d(n: int, length: float, boundary: str = "noflux") -> Grid:
    """A 1D grid of ``n`` nodes over ``[0, length]``."""
    return Grid((Axis(n, length, boundary),))


def grid2d(nx: int, ny: int, lx: float, ly: float, boundary: str | tuple[str, str] = "noflux"
           ) -> Grid:
    """A 2D grid of ``nx x ny`` nodes over ``[0, lx] x [0, ly]``; ``boundary`` is one
    condition or one per axis."""
    bx, by = (boundary, boundary) if isinstance(boundary, str) else boundary
    return Grid((Axis(nx, lx, bx), Axis(ny, ly, by)))
