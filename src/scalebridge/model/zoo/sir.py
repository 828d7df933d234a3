"""SIR epidemic model.

Kermack WO, McKendrick AG (1927) A contribution to the mathematical theory of epidemics.
Proc R Soc Lond A 115:700-721.

Fractions of the population: ``dS/dt = -beta S I``, ``dI/dt = beta S I - gamma I``,
``dR/dt = gamma I``; S + I + R = 1 is conserved. Time in days. The observable ``R_eff``
is the effective reproduction number beta S / gamma. For counts, multiply the states by
the population size (beta then reads as beta/N in the count equations).
"""

from __future__ import annotations

import jax.numpy as jnp

from ..model import Model
from ..parameter import Parameter

CITATION = (
    "Kermack WO, McKendrick AG (1927) A contribution to the mathematical theory of "
    "epidemics. Proc R Soc Lond A 115:700-721"
)


def _rhs(t, y, p, u):
    s, i, r = y
    beta, gamma = p
    infection = beta * s * i
    return jnp.stack([-infection, infection - gamma * i, gamma * i])


def _r_eff(t, y, p):
    return p[0] * y[0] / p[1]


def sir() -> Model:
    """SIR in fractions, R0 = beta/gamma = 3 (illustrative; the 1927 paper is general)."""
    params = [
        Parameter("beta", 0.3, lower=0.0, unit="1/day"),  # transmission rate
        Parameter("gamma", 0.1, lower=0.0, unit="1/day"),  # recovery rate (10 days)
    ]
    return Model(
        name="sir",
        states=["S", "I", "R"],
        parameters=params,
        rhs=_rhs,
        initial=[0.99, 0.01, 0.0],  # 1% initially infected
        observables={"R_eff": _r_eff},
        stiff=False,
        citation=CITATION,
        source=("zoo", "sir"),
    )
