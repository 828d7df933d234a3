"""Lorenz system.

Lorenz EN (1963) Deterministic nonperiodic flow. J Atmos Sci 20:130-141.

``dx/dt = sigma (y - x)``, ``dy/dt = x (rho - z) - y``, ``dz/dt = x y - beta z``, with the
classical chaotic values sigma = 10, rho = 28, beta = 8/3 of the paper.
"""

from __future__ import annotations

import jax.numpy as jnp

from ..model import Model
from ..parameter import Parameter

CITATION = "Lorenz EN (1963) Deterministic nonperiodic flow. J Atmos Sci 20:130-141"


def _rhs(t, y, p, u):
    x, yy, z = y
    sigma, rho, beta = p
    return jnp.stack([sigma * (yy - x), x * (rho - z) - yy, x * yy - beta * z])


def lorenz() -> Model:
    """The Lorenz-63 system with sigma = 10, rho = 28, beta = 8/3 (Lorenz 1963)."""
    params = [
        Parameter("sigma", 10.0, lower=0.0),  # Prandtl number, Lorenz (1963)
        Parameter("rho", 28.0, lower=0.0),  # Rayleigh number ratio, Lorenz (1963)
        Parameter("beta", 8.0 / 3.0, lower=0.0),  # geometric factor b, Lorenz (1963)
    ]
    return Model(
        name="lorenz",
        states=["x", "y", "z"],
        parameters=params,
        rhs=_rhs,
        initial=[1.0, 1.0, 1.0],  # a conventional start near the origin (not from the paper)
        stiff=False,
        citation=CITATION,
        source=("zoo", "lorenz"),
    )
