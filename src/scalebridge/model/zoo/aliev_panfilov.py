"""Aliev-Panfilov model of cardiac excitation.

Aliev RR, Panfilov AV (1996) A simple two-variable model of cardiac excitation. Chaos
Solitons Fractals 7:293-301.

``du/dt = k u (1 - u)(u - a) - u v + I_stim(t)``,
``dv/dt = (eps0 + mu1 v / (u + mu2)) (-v - k u (u - b - 1))``.
The original has one threshold (``b = a``); Herrero Martin et al. (2022, "EP-PINNs: cardiac
electrophysiology characterisation using physics-informed neural networks", Front.
Cardiovasc. Med. 8:768419) give the recovery equation its own ``b``, as here.
``u`` (excitation) and ``v`` (recovery) and the time are dimensionless; the paper maps
them to physical units by E = 100 u - 80 mV and t[ms] = 12.9 t, given here as the
observables ``V`` (mV) and ``t_ms``.
"""

from __future__ import annotations

import jax.numpy as jnp

from ..inputs import PulseTrain
from ..model import Model
from ..parameter import Parameter

CITATION = (
    "Aliev RR, Panfilov AV (1996) A simple two-variable model of cardiac excitation. "
    "Chaos Solitons Fractals 7:293-301"
)

MS_PER_TIME_UNIT = 12.9  # Aliev & Panfilov (1996): 1 dimensionless time unit = 12.9 ms


def _rhs(t, y, p, u):
    uu, v = y
    k, a, b, eps0, mu1, mu2 = p
    eps = eps0 + mu1 * v / (uu + mu2)
    du = k * uu * (1 - uu) * (uu - a) - uu * v + u[0]
    dv = eps * (-v - k * uu * (uu - b - 1))
    return jnp.stack([du, dv])


def _potential_mv(t, y, p):
    return 100.0 * y[0] - 80.0  # Aliev & Panfilov (1996)


def _time_ms(t, y, p):
    return MS_PER_TIME_UNIT * t


def aliev_panfilov(
    amplitude: float = 1.0, duration: float = 0.5, period: float = 100.0, start: float = 1.0
) -> Model:
    """The Aliev-Panfilov cell, paced by dimensionless pulses of ``amplitude`` lasting
    ``duration`` every ``period`` time units (100 t.u. = 1290 ms) from ``start``."""
    params = [  # Aliev & Panfilov (1996), the values used for their restitution fits
        Parameter("k", 8.0, lower=0.0),
        Parameter("a", 0.15, lower=0.0),
        Parameter("b", 0.15, lower=0.0),
        Parameter("eps0", 0.002, lower=0.0),
        Parameter("mu1", 0.2, lower=0.0),
        Parameter("mu2", 0.3, lower=0.0),
    ]
    return Model(
        name="aliev_panfilov",
        states=["u", "v"],
        parameters=params,
        rhs=_rhs,
        initial=[0.0, 0.0],  # the resting state
        observables={"V": _potential_mv, "t_ms": _time_ms},
        inputs=[PulseTrain("I_stim", amplitude, duration, period, start)],
        stiff=False,
        citation=CITATION,
        source=("zoo", "aliev_panfilov"),
    )
