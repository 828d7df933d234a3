"""SEIR epidemic model (SIR with a latent, exposed class).

Kermack WO, McKendrick AG (1927) A contribution to the mathematical theory of epidemics.
Proc R Soc Lond A 115:700-721 (the general theory includes an incubation period).

Fractions: ``dS/dt = -beta S I``, ``dE/dt = beta S I - sigma E``,
``dI/dt = sigma E - gamma I``, ``dR/dt = gamma I``; S + E + I + R = 1. Time in days.
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
    s, e, i, r = y
    beta, sigma, gamma = p
    infection = beta * s * i
    return jnp.stack([-infection, infection - sigma * e, sigma * e - gamma * i, gamma * i])


def _r_eff(t, y, p):
    return p[0] * y[0] / p[2]


def seir() -> Model:
    """SEIR in fractions with R0 = beta/gamma = 2.5 (illustrative values)."""
    params = [
        Parameter("beta", 0.5, lower=0.0, unit="1/day"),  # transmission rate
        Parameter("sigma", 0.2, lower=0.0, unit="1/day"),  # 1/latent period (5 days)
        Parameter("gamma", 0.2, lower=0.0, unit="1/day"),  # 1/infectious period (5 days)
    ]
    return Model(
        name="seir",
        states=["S", "E", "I", "R"],
        parameters=params,
        rhs=_rhs,
        initial=[0.999, 0.0, 0.001, 0.0],  # 0.1% initially infectious
        observables={"R_eff": _r_eff},
        stiff=False,
        citation=CITATION,
        source=("zoo", "seir"),
    )
