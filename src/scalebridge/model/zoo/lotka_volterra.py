"""Lotka-Volterra predator-prey model.

Lotka AJ (1925) Elements of Physical Biology. Williams & Wilkins, Baltimore.
Volterra V (1926) Fluctuations in the abundance of a species considered mathematically.
Nature 118:558-560.

``dx/dt = alpha x - beta x y``, ``dy/dt = delta x y - gamma y`` (prey ``x``, predator ``y``).
``V = delta x - gamma ln x + beta y - alpha ln y`` is conserved along solutions.
"""

from __future__ import annotations

import jax.numpy as jnp

from ..model import Model
from ..parameter import Parameter

CITATION = (
    "Lotka AJ (1925) Elements of Physical Biology, Williams & Wilkins; "
    "Volterra V (1926) Nature 118:558-560"
)


def _rhs(t, y, p, u):
    x, z = y
    alpha, beta, gamma, delta = p
    return jnp.stack([alpha * x - beta * x * z, delta * x * z - gamma * z])


def lotka_volterra() -> Model:
    """The Lotka-Volterra model with illustrative rates (the original works give none)."""
    # Lotka's and Volterra's treatments are symbolic; these commonly used textbook values
    # give a closed orbit around the coexistence point (gamma/delta, alpha/beta) = (4, 2.75).
    params = [
        Parameter("alpha", 1.1, lower=0.0, unit="1/time"),  # prey growth rate
        Parameter("beta", 0.4, lower=0.0, unit="1/(predator time)"),  # predation rate
        Parameter("gamma", 0.4, lower=0.0, unit="1/time"),  # predator death rate
        Parameter("delta", 0.1, lower=0.0, unit="1/(prey time)"),  # predator growth per prey
    ]
    return Model(
        name="lotka_volterra",
        states=["prey", "predator"],
        parameters=params,
        rhs=_rhs,
        initial=[10.0, 10.0],
        stiff=False,
        citation=CITATION,
        source=("zoo", "lotka_volterra"),
    )
