"""Finite-volume diffusion and gradient operators on uniform grids, matrix-free.

``Diffusion(grid, conductivity)`` applies ``div(K grad u)`` to a field. ``K`` is a number,
a node field (heterogeneous), or an anisotropic tensor given by its components ``(Kxx, Kyy,
Kxy)`` (numbers or node fields), e.g. from :func:`fibre_tensor`. Face conductivities are
harmonic means of the node values for the diagonal terms (so a zero-conductivity region
blocks flux); the cross-term flux at a face is the average over its two nodes of ``Kxy``
times the central difference along the face (the standard 9-point stencil), which keeps
the operator symmetric in the trapezoidal inner product (``W A = (W A)^T``, ``W`` the
control volumes) for any conductivity field.

Boundaries: ``noflux`` means zero normal flux, ``n . K grad u = 0``: the boundary node owns
half a control volume and the flux through the boundary face is zero, so the trapezoidal
mass is conserved exactly (for the diagonal terms this is mirroring the field across the
boundary node; the cross term's flux is mirrored with the opposite sign, and the
tangential derivative it needs at a no-flux boundary node is one-sided, since the field
is not mirror-symmetric there when ``Kxy != 0``); ``periodic`` wraps; on a ``dirichlet``
axis the boundary nodes keep their values (the operator returns 0 there) and the boundary
values are the initial values.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sps

from ..errors import InputError
from .grid import Grid


def fibre_tensor(d_along: float, d_across: float, angle: float) -> tuple[float, float, float]:
    """Components ``(Kxx, Kyy, Kxy)`` of a 2D conductivity with fibres at ``angle``
    (radians from the x axis): ``K = d_across I + (d_along - d_across) f f^T``."""
    if d_along < 0 or d_across < 0:
        raise InputError(f"conductivities must be >= 0, got along={d_along}, "
                         f"across={d_across}")
    c, s = np.cos(angle), np.sin(angle)
    dd = d_along - d_across
    return (d_across + dd * c * c, d_across + dd * s * s, dd * c * s)


def _pad(u, grid: Grid):
    """Pad a field by one ghost node per side and axis, as the boundaries say."""
    for axis, ax in enumerate(grid.axes):
        mode = "wrap" if ax.periodic else "reflect"
        pad = [(0, 0)] * u.ndim
        pad[axis] = (1, 1)
        u = jnp.pad(u, pad, mode=mode)
    return u


def _end(a, axis, i):
    """``a[..., i, ...]`` with ``i`` indexing ``axis``."""
    return jnp.take(a, i, axis=axis)


def _set_end(a, axis, i, value):
    index = [slice(None)] * a.ndim
    index[axis] = i
    return a.at[tuple(index)].set(value)


def _as_field(value, grid: Grid, name: str):
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        arr = np.full(grid.shape, float(arr))
    if arr.shape != grid.shape:
        raise InputError(f"{name} has shape {arr.shape}; it must be a number or a field of "
                         f"the grid's shape {grid.shape}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name} contains NaN or infinity")
    return arr


class Diffusion:
    """The operator ``u -> div(K grad u)`` on ``grid``; ``K`` is scaled at call time by a
    factor (a model parameter such as ``D``), so the relative field stays fixed."""

    def __init__(self, grid: Grid, conductivity=1.0):
        self.grid = grid
        if isinstance(conductivity, tuple):
            if grid.ndim != 2 or len(conductivity) != 3:
                raise InputError("an anisotropic conductivity (Kxx, Kyy, Kxy) needs a 2D grid")
            kxx, kyy, kxy = (_as_field(c, grid, n) for c, n in
                             zip(conductivity, ("Kxx", "Kyy", "Kxy"), strict=True))
            if np.any(kxx < 0) or np.any(kyy < 0) or np.any(kxx * kyy - kxy**2 < -1e-12):
                raise InputError("the conductivity tensor must be positive semi-definite "
                                 "(Kxx >= 0, Kyy >= 0, Kxx Kyy >= Kxy^2) at every node")
            diag = (kxx, kyy)
            self.cross = kxy if np.any(kxy != 0) else None
        else:
            k = _as_field(conductivity, grid, "conductivity")
            if np.any(k < 0):
                raise InputError(f"conductivity must be >= 0 everywhere; min is {k.min():g}. "
                                 "Diffusivities are non-negative")
            diag = (k,) * grid.ndim
            self.cross = None
        self.diag = diag
        self.kmax = float(max(np.max(d) for d in diag))
        self.faces = tuple(self._face_conductivity(axis, k) for axis, k in enumerate(diag))
        held = np.zeros(grid.shape, dtype=bool)
        for axis, ax in enumerate(grid.axes):
            if ax.boundary == "dirichlet":
                idx = [slice(None)] * grid.ndim
                idx[axis] = [0, -1]
                held[tuple(idx)] = True
        self.held = held if held.any() else None

    def _face_conductivity(self, axis: int, k: np.ndarray):
        """Harmonic means of ``k`` on the faces normal to ``axis`` (ghost faces included),
        computed once; a plain number when ``k`` is uniform (the common case)."""
        if np.all(k == k.flat[0]):
            return float(k.flat[0])
        K = np.asarray(_pad(jnp.asarray(k), self.grid))
        inner = [slice(1, -1)] * self.grid.ndim
        lo, hi = list(inner), list(inner)
        lo[axis], hi[axis] = slice(0, -1), slice(1, None)
        a, b = K[tuple(hi)], K[tuple(lo)]
        s = a + b
        return np.where(s > 0, 2 * a * b / np.where(s > 0, s, 1.0), 0.0)

    def __call__(self, u, scale=1.0, factor=None):
        """``scale * div(factor K grad u)`` for a field ``u`` of the grid's shape.

        ``factor`` (optional, a node field computed at call time, e.g. ``(u/K)^m`` for
        density-dependent diffusion) multiplies the conductivity, averaged arithmetically
        onto the faces (so that flux can enter a region where the factor is zero)."""
        g = self.grid
        P = _pad(u, g)
        out = jnp.zeros(g.shape, dtype=P.dtype)
        inner = tuple(slice(1, -1) for _ in range(g.ndim))
        for axis, (ax, kf) in enumerate(zip(g.axes, self.faces, strict=True)):
            lo = list(inner)
            hi = list(inner)
            lo[axis] = slice(0, -1)
            hi[axis] = slice(1, None)
            du = P[tuple(hi)] - P[tuple(lo)]
            flux = (kf / ax.dx) * du
            if factor is not None:
                F = _pad(factor, g)
                flux = flux * 0.5 * (F[tuple(hi)] + F[tuple(lo)])
            if self.cross is not None:
                cross = self._cross_flux(P, axis, tuple(lo), tuple(hi))
                if ax.boundary == "noflux":
                    # zero flux through the boundary: the ghost face carries minus the
                    # first interior face's flux, so the half cell sees only the latter
                    # (the diagonal flux is antisymmetric there by the mirror already)
                    cross = _set_end(cross, axis, 0, -_end(cross, axis, 1))
                    cross = _set_end(cross, axis, -1, -_end(cross, axis, -2))
                flux = flux + cross
            out = out + (jnp.diff(flux, axis=axis)) / ax.dx
        out = scale * out
        if self.held is not None:
            out = jnp.where(self.held, 0.0, out)
        return out

    def _cross_flux(self, P, axis, lo, hi):
        """Kxy * (derivative along the other axis) at the faces normal to ``axis``."""
        g = self.grid
        other = 1 - axis
        C = _pad(jnp.asarray(self.cross), g)
        oax = g.axes[other]

        def d_other(index):
            a, b, m = list(index), list(index), list(index)
            a[other] = slice(2, None)
            b[other] = slice(0, -2)
            d = (P[tuple(a)] - P[tuple(b)]) / (2 * oax.dx)
            if oax.boundary == "noflux":
                # the mirrored ghost would make this derivative 0 on the boundary, which
                # is wrong when the normal flux Kxy u_t + Knn u_n = 0 needs u_n != 0;
                # use one-sided differences there
                m[other] = slice(1, -1)
                u = P[tuple(m)]
                d = _set_end(d, other, 0, (_end(u, other, 1) - _end(u, other, 0)) / oax.dx)
                d = _set_end(d, other, -1, (_end(u, other, -1) - _end(u, other, -2)) / oax.dx)
            return d

        lo_full, hi_full = list(lo), list(hi)
        lo_full[other] = hi_full[other] = slice(None)
        # the mean over the face's two nodes of Kxy times the tangential derivative (rather
        # than mean Kxy times mean derivative): with a varying Kxy this keeps the operator
        # symmetric in the trapezoidal inner product, like the continuous one
        return 0.5 * (C[hi] * d_other(hi_full) + C[lo] * d_other(lo_full))

    def stable_dt(self, scale: float) -> float:
        """Largest forward-Euler step for ``u' = scale * div(K grad u)``:
        ``1 / (2 scale K_max sum_i 1/dx_i^2)`` (cross terms need somewhat less)."""
        denom = 2 * scale * self.kmax * sum(1 / dx**2 for dx in self.grid.spacing)
        return float("inf") if denom == 0 else 1.0 / denom

    def to_sparse(self, scale: float = 1.0) -> sps.csr_matrix:
        """The operator as a SciPy sparse matrix on flattened fields (for direct solves and
        comparisons), assembled by probing with coloured unit vectors."""
        g = self.grid
        # the stencil reaches one node along each axis (9-point), so nodes whose indices
        # agree modulo 3 never share a row (see _axis_colours for periodic axes)
        colour = np.zeros(g.shape, dtype=int)
        n_colours = 1
        for a, ax in enumerate(g.axes):
            c, w = _axis_colours(ax)
            shape = [1] * g.ndim
            shape[a] = ax.n
            colour = colour * w + c.reshape(shape)
            n_colours *= w
        probes = jnp.asarray(np.stack([(colour == c).astype(float) for c in range(n_colours)]))
        apply = jax.jit(jax.vmap(lambda v, s: self(v, s), in_axes=(0, None)))
        results = np.asarray(apply(probes, scale)).reshape(n_colours, -1)
        flat_colour = colour.ravel()
        rows, cols, vals = [], [], []
        coords = np.indices(g.shape).reshape(g.ndim, -1)
        for off in np.ndindex(*([3] * g.ndim)):
            q = coords + np.array(off)[:, None] - 1
            valid = np.ones(g.size, dtype=bool)
            for a, ax in enumerate(g.axes):
                if ax.periodic:
                    q[a] %= ax.n
                else:
                    valid &= (q[a] >= 0) & (q[a] < ax.n)
            row = np.nonzero(valid)[0]
            col = np.ravel_multi_index(tuple(q[:, row]), g.shape)
            val = results[flat_colour[col], row]
            keep = val != 0
            rows.append(row[keep])
            cols.append(col[keep])
            vals.append(val[keep])
        return sps.csr_matrix((np.concatenate(vals), (np.concatenate(rows),
                                                      np.concatenate(cols))), shape=(g.size,) * 2)


def _axis_colours(ax) -> tuple[np.ndarray, int]:
    """Colours of an axis's nodes such that nodes of one colour are at least 3 apart (also
    across a periodic wrap), and their number: ``i mod 3``, except on a periodic axis
    whose length is not a multiple of 3, where the last one or two nodes get colours of
    their own (so at most 5 colours, however long the axis)."""
    c = np.arange(ax.n) % 3
    r = ax.n % 3
    if not ax.periodic or r == 0:
        return c, 3
    c[ax.n - r:] = 3 + np.arange(r)
    return c, 3 + r


def gradient(u, grid: Grid):
    """Central-difference gradient of a field (one array per axis), boundaries as in
    :class:`Diffusion`: zero normal derivative at no-flux boundaries, wrap-around on
    periodic axes, and second-order one-sided differences at Dirichlet boundary nodes
    (whose values are held, not mirrored). Exact for linear fields (except the normal
    derivative on a no-flux boundary, which is zero by the boundary condition)."""
    u = jnp.asarray(u)
    P = _pad(u, grid)
    out = []
    for axis, ax in enumerate(grid.axes):
        a = [slice(1, -1)] * grid.ndim
        b = [slice(1, -1)] * grid.ndim
        a[axis] = slice(2, None)
        b[axis] = slice(0, -2)
        d = (P[tuple(a)] - P[tuple(b)]) / (2 * ax.dx)
        if ax.boundary == "dirichlet":
            def at(i, axis=axis):
                return _end(u, axis, i)
            d = _set_end(d, axis, 0, (-3 * at(0) + 4 * at(1) - at(2)) / (2 * ax.dx))
            d = _set_end(d, axis, -1, (3 * at(-1) - 4 * at(-2) + at(-3)) / (2 * ax.dx))
        out.append(d)
    return tuple(out)
