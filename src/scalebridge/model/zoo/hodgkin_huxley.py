"""Hodgkin-Huxley model of the squid giant axon membrane.

Hodgkin AL, Huxley AF (1952) A quantitative description of membrane current and its
application to conduction and excitation in nerve. J Physiol 117:500-544.

Written in the modern sign convention: V is the membrane potential in mV (inside minus
outside, depolarisation positive), resting near -65 mV; the paper's potentials are
displacements from rest with the opposite sign, so V = -V_paper - 65. Time in ms, currents
in uA/cm^2, conductances in mS/cm^2, capacitance 1 uF/cm^2, temperature 6.3 degC.
``I_stim`` (a :class:`~scalebridge.model.inputs.PulseTrain`) is the applied current.
"""

from __future__ import annotations

import jax.numpy as jnp

from ..inputs import PulseTrain
from ..model import Model
from ..parameter import Parameter
from ._common import x_over_expm1

CITATION = (
    "Hodgkin AL, Huxley AF (1952) A quantitative description of membrane current and its "
    "application to conduction and excitation in nerve. J Physiol 117:500-544"
)

V_REST = -65.0  # mV, the resting potential the paper's potentials are measured from


def rates(v):
    """Opening and closing rates (1/ms) of the m, h and n gates at potential ``v`` (mV).

    Hodgkin & Huxley (1952) eqs. 12, 13, 20, 21, 23, 24 with V_paper = -(v + 65).
    """
    alpha_m = x_over_expm1(-(v + 40.0) / 10.0)  # 0.1 (v+40) / (1 - exp(-(v+40)/10))
    beta_m = 4.0 * jnp.exp(-(v + 65.0) / 18.0)
    alpha_h = 0.07 * jnp.exp(-(v + 65.0) / 20.0)
    beta_h = 1.0 / (1.0 + jnp.exp(-(v + 35.0) / 10.0))
    alpha_n = 0.1 * x_over_expm1(-(v + 55.0) / 10.0)  # 0.01 (v+55) / (1 - exp(-(v+55)/10))
    beta_n = 0.125 * jnp.exp(-(v + 65.0) / 80.0)
    return alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n


def steady_gates(v):
    """Steady-state (m, h, n) at potential ``v``."""
    am, bm, ah, bh, an, bn = rates(v)
    return am / (am + bm), ah / (ah + bh), an / (an + bn)


def _rhs(t, y, p, u):
    v, m, h, n = y
    c_m, g_na, g_k, g_l, e_na, e_k, e_l = p
    am, bm, ah, bh, an, bn = rates(v)
    i_na = g_na * m**3 * h * (v - e_na)
    i_k = g_k * n**4 * (v - e_k)
    i_l = g_l * (v - e_l)
    dv = (u[0] - i_na - i_k - i_l) / c_m
    return jnp.stack([dv, am * (1 - m) - bm * m, ah * (1 - h) - bh * h, an * (1 - n) - bn * n])


def _i_na(t, y, p):
    return p[1] * y[1] ** 3 * y[2] * (y[0] - p[4])


def _i_k(t, y, p):
    return p[2] * y[3] ** 4 * (y[0] - p[5])


def _initial(p):
    m, h, n = steady_gates(jnp.asarray(V_REST))
    return jnp.stack([jnp.asarray(V_REST), m, h, n])


def hodgkin_huxley(
    amplitude: float = 20.0, duration: float = 1.0, period: float = 50.0, start: float = 5.0
) -> Model:
    """The HH squid axon with a train of ``amplitude`` uA/cm^2 pulses (``duration`` ms,
    every ``period`` ms from ``start``); the default pulses are well above threshold."""
    # Hodgkin & Huxley (1952), Table 3 and eq. 26: gNa = 120, gK = 36, gl = 0.3 mS/cm^2;
    # V_Na = -115, V_K = +12, V_l = -10.613 mV (paper convention) -> with
    # V = -V_paper - 65: E_Na = +50, E_K = -77, E_L = -54.387 mV.
    params = [
        Parameter("C_m", 1.0, lower=0.0, unit="uF/cm^2"),
        Parameter("g_Na", 120.0, lower=0.0, unit="mS/cm^2"),
        Parameter("g_K", 36.0, lower=0.0, unit="mS/cm^2"),
        Parameter("g_L", 0.3, lower=0.0, unit="mS/cm^2"),
        Parameter("E_Na", 50.0, unit="mV"),
        Parameter("E_K", -77.0, unit="mV"),
        Parameter("E_L", -54.387, unit="mV"),
    ]

    return Model(
        name="hodgkin_huxley",
        states=["V", "m", "h", "n"],
        parameters=params,
        rhs=_rhs,
        initial=_initial,  # rest: V = -65 mV, gates at their steady state
        observables={"I_Na": _i_na, "I_K": _i_k},
        inputs=[PulseTrain("I_stim", amplitude, duration, period, start)],
        stiff=False,
        gates=("m", "h", "n"),
        citation=CITATION,
        source=("zoo", "hodgkin_huxley"),
    )
