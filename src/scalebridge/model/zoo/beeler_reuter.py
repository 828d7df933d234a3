"""Beeler-Reuter model of the mammalian ventricular action potential.

Beeler GW, Reuter H (1977) Reconstruction of the action potential of ventricular myocardial
fibres. J Physiol 268:177-210.

Eight states: V (mV), Ca_i (intracellular calcium, mmol/L; the paper uses mol/L, so its
10^-7 becomes 10^-4 here), the x1 gate of I_x1 and the m, h, j, d, f gates of I_Na and I_s.
Time in ms, currents in uA/cm^2, capacitance 1 uF/cm^2. ``I_stim`` is the applied current.

Every rate has the paper's general form (Table 1)
``(C1 exp(C2 (V + C3)) + C4 (V + C5)) / (exp(C6 (V + C3)) + C7)``.
Two expressions have a removable singularity, alpha_m at V = -47 mV and the second term of
I_K1 at V = -23 mV; they are written with a NaN-free ``x / (exp(x) - 1)``. Note: some
implementations (e.g. Myokit's example model) write the denominator of beta_x1 as
``exp(-0.04 (V + 333)) + 1``; here it follows the general form with Table 1's C3 = 20,
``exp(-0.04 (V + 20)) + 1``, as Luo & Rudy (1991) also use.
"""

from __future__ import annotations

import jax.numpy as jnp

from ..inputs import PulseTrain
from ..model import Model
from ..parameter import Parameter
from ._common import x_over_expm1

CITATION = (
    "Beeler GW, Reuter H (1977) Reconstruction of the action potential of ventricular "
    "myocardial fibres. J Physiol 268:177-210"
)


def rates(v):
    """(alpha, beta) in 1/ms of the gates x1, m, h, j, d, f at potential ``v`` (mV),
    Beeler & Reuter (1977) Table 1."""
    e = jnp.exp
    a_x1 = 0.0005 * e(0.083 * (v + 50.0)) / (e(0.057 * (v + 50.0)) + 1.0)
    b_x1 = 0.0013 * e(-0.06 * (v + 20.0)) / (e(-0.04 * (v + 20.0)) + 1.0)
    a_m = 10.0 * x_over_expm1(-0.1 * (v + 47.0))  # -(v+47) / (exp(-0.1 (v+47)) - 1)
    b_m = 40.0 * e(-0.056 * (v + 72.0))
    a_h = 0.126 * e(-0.25 * (v + 77.0))
    b_h = 1.7 / (e(-0.082 * (v + 22.5)) + 1.0)
    a_j = 0.055 * e(-0.25 * (v + 78.0)) / (e(-0.2 * (v + 78.0)) + 1.0)
    b_j = 0.3 / (e(-0.1 * (v + 32.0)) + 1.0)
    a_d = 0.095 * e(-0.01 * (v - 5.0)) / (e(-0.072 * (v - 5.0)) + 1.0)
    b_d = 0.07 * e(-0.017 * (v + 44.0)) / (e(0.05 * (v + 44.0)) + 1.0)
    a_f = 0.012 * e(-0.008 * (v + 28.0)) / (e(0.15 * (v + 28.0)) + 1.0)
    b_f = 0.0065 * e(-0.02 * (v + 30.0)) / (e(-0.2 * (v + 30.0)) + 1.0)
    return ((a_x1, b_x1), (a_m, b_m), (a_h, b_h), (a_j, b_j), (a_d, b_d), (a_f, b_f))


def currents(y, p):
    """The ionic currents (I_K1, I_x1, I_Na, I_s) in uA/cm^2."""
    v, ca, x1, m, h, j, d, f = y
    g_na, g_nac, e_na, g_s, _c_m = p
    e = jnp.exp
    # 0.2 (v+23) / (1 - exp(-0.04 (v+23))) = 5 * x_over_expm1(-0.04 (v+23))
    i_k1 = 0.35 * (4.0 * (e(0.04 * (v + 85.0)) - 1.0) / (e(0.08 * (v + 53.0))
                                                         + e(0.04 * (v + 53.0)))
                   + 5.0 * x_over_expm1(-0.04 * (v + 23.0)))
    i_x1 = x1 * 0.8 * (e(0.04 * (v + 77.0)) - 1.0) / e(0.04 * (v + 35.0))
    i_na = (g_na * m**3 * h * j + g_nac) * (v - e_na)
    e_s = -82.3 - 13.0287 * jnp.log(ca * 1e-3)  # the paper's ln of [Ca]_i in mol/L
    i_s = g_s * d * f * (v - e_s)
    return i_k1, i_x1, i_na, i_s


def _rhs(t, y, p, u):
    v, ca = y[0], y[1]
    i_k1, i_x1, i_na, i_s = currents(y, p)
    dv = (u[0] - i_k1 - i_x1 - i_na - i_s) / p[4]
    dca = -1e-4 * i_s + 0.07 * (1e-4 - ca)  # Beeler & Reuter (1977) eq. 7, in mmol/L
    gates = y[2:]
    dg = [a * (1.0 - g) - b * g for (a, b), g in zip(rates(v), gates, strict=True)]
    return jnp.stack([dv, dca, *dg])


def _i_k1(t, y, p):
    return currents(y, p)[0]


def _i_x1(t, y, p):
    return currents(y, p)[1]


def _i_na(t, y, p):
    return currents(y, p)[2]


def _i_s(t, y, p):
    return currents(y, p)[3]


_OBSERVABLES = {"I_K1": _i_k1, "I_x1": _i_x1, "I_Na": _i_na, "I_s": _i_s}

# Resting state of these equations without stimulus (the steady state reached from the
# initial values of Beeler & Reuter (1977), V = -84.6 mV and [Ca]_i = 2e-7 mol/L), rounded.
_REST = {
    "V": -84.5738,
    "Ca_i": 1.78201e-4,
    "x1": 5.62865e-3,
    "m": 1.09820e-2,
    "h": 0.987721,
    "j": 0.974838,
    "d": 2.97072e-3,
    "f": 0.999981,
}


def beeler_reuter(
    amplitude: float = 40.0, duration: float = 1.0, period: float = 1000.0, start: float = 10.0
) -> Model:
    """The BR ventricular myocyte paced at 1 Hz by 1 ms pulses of ``amplitude`` uA/cm^2."""
    params = [  # Beeler & Reuter (1977) eqs. 2-6
        Parameter("g_Na", 4.0, lower=0.0, unit="mS/cm^2"),
        Parameter("g_NaC", 0.003, lower=0.0, unit="mS/cm^2"),
        Parameter("E_Na", 50.0, unit="mV"),
        Parameter("g_s", 0.09, lower=0.0, unit="mS/cm^2"),
        Parameter("C_m", 1.0, lower=0.0, unit="uF/cm^2"),
    ]
    return Model(
        name="beeler_reuter",
        states=list(_REST),
        parameters=params,
        rhs=_rhs,
        initial=list(_REST.values()),
        observables=_OBSERVABLES,
        inputs=[PulseTrain("I_stim", amplitude, duration, period, start)],
        stiff=True,
        gates=("x1", "m", "h", "j", "d", "f"),
        citation=CITATION,
        source=("zoo", "beeler_reuter"),
    )
