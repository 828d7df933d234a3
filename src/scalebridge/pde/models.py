"""Built-in reaction-diffusion models: Fisher-KPP, porous Fisher-KPP, Gray-Scott, and the
monodomain tissue of any excitable cell model."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ..errors import InputError
from ..model.model import Model
from ..model.parameter import Parameter
from .grid import Grid, grid1d
from .tissue import Stimulus, reaction_diffusion


def _logistic(r: float, K: float) -> Model:
    return Model(
        name="logistic",
        states=["u"],
        parameters=[Parameter("r", r, lower=0.0), Parameter("K", K, lower=0.0)],
        rhs=lambda t, y, p, u: p[0] * y * (1.0 - y / p[1]),
        initial=[0.0],
        stiff=False,
        citation="Verhulst PF (1838) Correspondance Mathematique et Physique 10:113-121",
    )


def _step_initial(grid: Grid, K: float, width: float):
    x = grid.coords[0]
    u0 = np.where(x <= width, K, 0.0)
    return u0


def fisher_kpp(*, length: float, n: int, D: float, r: float, K: float,
               boundary: str = "noflux") -> Model:
    """Fisher-KPP ``u_t = D u_xx + r u (1 - u/K)`` on ``n`` nodes over ``[0, length]``.

    Fisher RA (1937) Ann Eugen 7:355-369; Kolmogorov, Petrovsky, Piskunov (1937) Bull
    Moscow Univ Math Mech 1:1-26. States are the node densities ``u[0] ... u[n-1]`` in order;
    parameters ``r, K, D``. A front invading empty space travels at ``2 sqrt(r D)``. The
    default initial state is ``K`` on the first 5% of the domain and 0 elsewhere.
    """
    grid = grid1d(n, length, boundary)
    m = reaction_diffusion(_logistic(r, K), grid, diffusion={"u": D}, name="fisher_kpp",
                           initial=_step_initial(grid, K, 0.05 * length))
    return m.replace(citation="Fisher (1937) Ann Eugen 7:355; Kolmogorov, Petrovsky & "
                              "Piskunov (1937) Bull Moscow Univ Math Mech 1:1")


def porous_fisher_kpp(*, length: float, n: int, D: float, r: float, K: float, m: float = 1.0,
                      boundary: str = "noflux") -> Model:
    """Porous Fisher-KPP ``u_t = (D (u/K)^m u_x)_x + r u (1 - u/K)``: density-dependent
    diffusion with sharp-fronted travelling waves (Sherratt & Murray 1990, Proc R Soc B
    241:29-36; used for scratch assays by Jin et al. 2016, J Theor Biol 390:136).
    Parameters ``r, K, D`` (``m`` is fixed)."""
    if m <= 0:
        raise InputError(f"porous Fisher-KPP exponent m must be positive, got {m}")
    grid = grid1d(n, length, boundary)

    def density_factor(u, p):  # p = (r, K, D)
        return jnp.maximum(u / p[1], 0.0) ** m

    model = reaction_diffusion(_logistic(r, K), grid, diffusion={"u": D},
                               nonlinear_diffusion=density_factor, name="porous_fisher_kpp",
                               initial=_step_initial(grid, K, 0.05 * length))
    return model.replace(citation="Sherratt & Murray (1990) Proc R Soc B 241:29")


def gray_scott(*, n: int = 128, length: float = 2.5, Du: float = 2e-5, Dv: float = 1e-5,
               F: float = 0.04, k: float = 0.06, seed: int = 0) -> Model:
    """Gray-Scott reaction-diffusion on a periodic ``n x n`` square (Pearson 1993, Science
    261:189-192): ``u_t = Du lap u - u v^2 + F (1 - u)``, ``v_t = Dv lap v + u v^2 - (F + k) v``.
    Starts from ``u = 1, v = 0`` with a perturbed square in the middle (Pearson's set-up,
    noise of 1% from ``seed``); the defaults give spots and stripes over some 10^4 time
    units."""
    from .grid import grid2d

    cell = Model(
        name="gray_scott_cell",
        states=["u", "v"],
        parameters=[Parameter("F", F, lower=0.0), Parameter("k", k, lower=0.0)],
        rhs=lambda t, y, p, u: jnp.stack([-y[0] * y[1] ** 2 + p[0] * (1 - y[0]),
                                          y[0] * y[1] ** 2 - (p[0] + p[1]) * y[1]]),
        initial=[1.0, 0.0],
        stiff=False,
    )
    grid = grid2d(n, n, length, length, boundary="periodic")
    x, y = grid.mesh()
    centre = (np.abs(x - length / 2) < length * 0.1) & (np.abs(y - length / 2) < length * 0.1)
    rng = np.random.default_rng(seed)
    u0 = np.where(centre, 0.5, 1.0) + 0.01 * rng.standard_normal(grid.shape)
    v0 = np.where(centre, 0.25, 0.0) + 0.01 * rng.standard_normal(grid.shape)
    model = reaction_diffusion(cell, grid, diffusion={"u": Du, "v": Dv}, name="gray_scott",
                               initial=np.concatenate([u0.ravel(), v0.ravel()]))
    return model.replace(citation="Pearson JE (1993) Science 261:189-192")


def monodomain(cell: Model, grid: Grid, *, D: float, conductivity=1.0, stimuli=(),
               stimulus_input: str = "I_stim", name: str | None = None) -> Model:
    """Monodomain tissue: ``V_t = div(D K grad V) + I_ion(V, ...)`` with the cell's first
    state as the membrane potential (Keener & Sneyd, Mathematical Physiology, ch. 12)."""
    v = cell.state_names[0]
    return reaction_diffusion(cell, grid, diffusion={v: D}, conductivity=conductivity,
                              stimuli=stimuli, stimulus_input=stimulus_input,
                              name=name or f"{cell.name}_monodomain")


def left_edge(width: float):
    """A stimulus region: nodes with ``x <= width`` (1D or 2D)."""
    return lambda x, *rest: x <= width


__all__ = ["fisher_kpp", "porous_fisher_kpp", "gray_scott", "monodomain", "left_edge",
           "Stimulus"]
