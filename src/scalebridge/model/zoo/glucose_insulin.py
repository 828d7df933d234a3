"""Ultradian glucose-insulin oscillator.

Sturis J, Polonsky KS, Mosekilde E, Van Cauter E (1991) Computer model for mechanisms
underlying ultradian oscillations of insulin and glucose. Am J Physiol 260:E801-E809.
Parameter values as tabulated by Li J, Kuang Y, Mason CC (2006) Modeling the glucose-insulin
regulatory system and ultradian insulin secretory oscillations with two explicit time
delays. J Theor Biol 242:722-735 (from Sturis et al. 1991 and Tolic et al. 2000).

States: Ip, Ii insulin in plasma and in the remote (interstitial) compartment (mU), G
glucose (mg), h1-h3 a three-stage delay from plasma insulin to hepatic glucose production.
Time in minutes; Gin is a constant glucose infusion (mg/min).
"""

from __future__ import annotations

import jax.numpy as jnp

from ..model import Model
from ..parameter import Parameter

CITATION = (
    "Sturis J, Polonsky KS, Mosekilde E, Van Cauter E (1991) Computer model for mechanisms "
    "underlying ultradian oscillations of insulin and glucose. Am J Physiol 260:E801-E809"
)

_NAMES = ("Vp", "Vi", "Vg", "E", "tp", "ti", "td", "Rm", "a1", "C1", "Ub", "C2", "C3", "U0",
          "Um", "beta", "C4", "Rg", "alpha", "C5", "Gin")


def _rhs(t, y, p, u):
    ip, ii, g, h1, h2, h3 = y
    vp, vi, vg, e, tp, ti, td, rm, a1, c1, ub, c2, c3, u0, um, beta, c4, rg, alpha, c5, gin = p
    f1 = rm / (1.0 + jnp.exp((c1 - g / vg) / a1))  # insulin secretion
    f2 = ub * (1.0 - jnp.exp(-g / (c2 * vg)))  # insulin-independent glucose use
    f3 = g / (c3 * vg)  # insulin-dependent glucose use ...
    kappa = (1.0 / vi + 1.0 / (e * ti)) / c4
    f4 = u0 + (um - u0) / (1.0 + jnp.exp(-beta * jnp.log(kappa * ii)))  # ... its insulin factor
    f5 = rg / (1.0 + jnp.exp(alpha * (h3 / vp - c5)))  # hepatic glucose production
    exchange = e * (ip / vp - ii / vi)
    return jnp.stack([
        f1 - exchange - ip / tp,
        exchange - ii / ti,
        gin - f2 - f3 * f4 + f5,
        3.0 / td * (ip - h1),
        3.0 / td * (h1 - h2),
        3.0 / td * (h2 - h3),
    ])


def _insulin_plasma(t, y, p):
    return y[0] / p[0]  # mU/l


def _glucose(t, y, p):
    return y[2] / (10.0 * p[2])  # mg/dl


def glucose_insulin() -> Model:
    """The Sturis et al. (1991) model under a constant glucose infusion of 216 mg/min."""
    values = {  # Li, Kuang & Mason (2006) Table 1 (Sturis et al. 1991; Tolic et al. 2000)
        "Vp": (3.0, "l"), "Vi": (11.0, "l"), "Vg": (10.0, "l"), "E": (0.2, "l/min"),
        "tp": (6.0, "min"), "ti": (100.0, "min"), "td": (36.0, "min"),
        "Rm": (210.0, "mU/min"), "a1": (300.0, "mg/l"), "C1": (2000.0, "mg/l"),
        "Ub": (72.0, "mg/min"), "C2": (144.0, "mg/l"), "C3": (1000.0, "mg/l"),
        "U0": (40.0, "mg/min"), "Um": (940.0, "mg/min"), "beta": (1.77, ""),
        "C4": (80.0, "mU/l"), "Rg": (180.0, "mg/min"), "alpha": (0.29, "l/mU"),
        "C5": (26.0, "mU/l"),
        "Gin": (216.0, "mg/min"),  # constant infusion, Li, Kuang & Mason (2006)
    }
    params = [Parameter(n, values[n][0], lower=0.0, unit=values[n][1]) for n in _NAMES]
    return Model(
        name="glucose_insulin",
        states=["Ip", "Ii", "G", "h1", "h2", "h3"],
        parameters=params,
        rhs=_rhs,
        # Yazdani et al. (2020) PLoS Comput Biol 16:e1007575: plasma insulin 12 mU/l,
        # remote insulin 4 mU/l, glucose 110 mg/dl (11000 mg in Vg = 10 l), empty delay.
        initial=[36.0, 44.0, 11000.0, 0.0, 0.0, 0.0],
        observables={"insulin_plasma": _insulin_plasma, "glucose": _glucose},
        stiff=False,
        citation=CITATION,
        source=("zoo", "glucose_insulin"),
    )
