"""Independent NumPy versions of the zoo's models, written from the original papers.

Nothing here imports scalebridge or JAX. Each model is transcribed from the equations and
tables of its source, in the source's own variables and units where they differ from the
zoo's; the conversion to the zoo's variables is explicit and commented. Each ``simulate_*``
function returns the states in the zoo's order and units at the requested times, from
scipy's ``solve_ivp`` (tight tolerances, integrated piecewise between the edges of the
stimulus pulses) or, for the linear pharmacokinetic model, from the matrix exponential.

The protocols (stimulus pulses, doses, initial states) are the zoo's defaults, restated
here as numbers; where the zoo's initial state is itself derived (a resting state), the
tests check it against a root of the equations below.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.integrate import solve_ivp
from scipy.optimize import brentq, fsolve

# the independent source of each zoo model (the tests name it with each comparison)
SOURCES = {
    "lotka_volterra": "Volterra (1926) Nature 118:558, eqs. for two species (N1 prey, N2 "
                      "predator)",
    "fitzhugh_nagumo": "FitzHugh (1961) Biophys J 1:445, the BVP equations in x, y, z, c",
    "hodgkin_huxley": "Hodgkin & Huxley (1952) J Physiol 117:500, eqs. 12, 13, 20, 21, 23, "
                      "24, 26 in the paper's potentials",
    "aliev_panfilov": "Aliev & Panfilov (1996) Chaos Solitons Fractals 7:293, eqs. 1-2",
    "beeler_reuter": "Beeler & Reuter (1977) J Physiol 268:177, eqs. 1-7 and Table 1 "
                     "(mol/L calcium)",
    "yeast_glycolysis": "Ruoff et al. (2003) Biophys Chem 106:179, rate laws v1-v7 and "
                        "Table 1",
    "sir": "Kermack & McKendrick (1927) Proc R Soc A 115:700, constant-rate case in "
           "numbers of individuals",
    "seir": "Anderson & May (1991) Infectious Diseases of Humans, the SEIR model in "
            "numbers of individuals",
    "glucose_insulin": "Sturis et al. (1991) Am J Physiol 260:E801 as restated by Tolic et "
                       "al. (2000) J Theor Biol 207:361, eqs. 1-6 and Table 1",
    "pk_two_compartment": "Gibaldi & Perrier (1982) Pharmacokinetics, 2nd ed., two-"
                          "compartment model in micro-constants, solved by the matrix "
                          "exponential",
    "lorenz": "Lorenz (1963) J Atmos Sci 20:130, eqs. 25-27",
}


# ----- shared numerics ---------------------------------------------------------------------
def x_over_expm1(x: float) -> float:
    """x / (exp(x) - 1), with its limit 1 at x = 0 (a series near it)."""
    if abs(x) < 1e-6:
        return 1.0 - x / 2.0 + x * x / 12.0
    return x / math.expm1(x)


def pulse_edges(start, duration, period, t_end):
    """The switching times of a pulse train inside (0, t_end)."""
    on = start + period * np.arange(0, int(max(0.0, t_end - start) // period) + 1)
    edges = np.concatenate([on, on + duration])
    return np.sort(edges[(edges > 0.0) & (edges < t_end)])


def pulse_value(t, amplitude, start, duration, period):
    """The pulse train's value at ``t``: ``amplitude`` during [start + k period,
    start + k period + duration), else 0."""
    return amplitude if t >= start and (t - start) % period < duration else 0.0


def integrate(fun, y0, times, edges=(), method="DOP853", rtol=1e-12, atol=1e-14,
              jac=None, events=None):
    """``fun(t, y, tm)`` at ``times`` (from ``times[0]``), integrated piecewise between
    ``edges``; ``tm`` is the midpoint of the piece, at which a piecewise-constant input is
    evaluated. Returns (states at ``times``, event times or None)."""
    times = np.asarray(times, float)
    cuts = np.unique(np.concatenate([[times[0], times[-1]], np.asarray(edges, float)]))
    cuts = cuts[(cuts >= times[0]) & (cuts <= times[-1])]
    y = np.asarray(y0, float)
    out = np.full((times.size, y.size), np.nan)
    t_found, y_found = [], []
    for k, (a, b) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
        tm = 0.5 * (a + b)
        last = k == cuts.size - 2
        sel = (times >= a) & ((times <= b) if last else (times < b))
        t_eval = times[sel] if last else np.append(times[sel], b)
        extra = {} if jac is None else {"jac": lambda t, y, tm=tm: jac(t, y, tm)}
        sol = solve_ivp(lambda t, y, tm=tm: fun(t, y, tm), (a, b), y, method=method,
                        t_eval=t_eval, rtol=rtol, atol=atol, events=events, **extra)
        assert sol.success, sol.message
        out[sel] = sol.y.T[: int(sel.sum())]
        if events is not None:
            t_found.append(sol.t_events[0])
            y_found.append(sol.y_events[0].reshape(-1, y.size))
        y = sol.y[:, -1]
    if events is None:
        return out, None
    return out, (np.concatenate(t_found), np.concatenate(y_found))


# ----- Lotka-Volterra ----------------------------------------------------------------------
def lotka_volterra_rhs(t, n, tm, eps1=1.1, gamma1=0.4, eps2=0.4, gamma2=0.1):
    """Volterra (1926) Nature 118:558-560, the two-species equations
    dN1/dt = eps1 N1 - gamma1 N1 N2, dN2/dt = -eps2 N2 + gamma2 N1 N2 (prey N1, predator
    N2). The values are illustrative (the paper is symbolic); in the zoo's names
    eps1 = alpha, gamma1 = beta, eps2 = gamma, gamma2 = delta."""
    n1, n2 = n
    return [eps1 * n1 - gamma1 * n1 * n2, -eps2 * n2 + gamma2 * n1 * n2]


def simulate_lotka_volterra(times):
    return integrate(lotka_volterra_rhs, [10.0, 10.0], times)[0]


# ----- FitzHugh-Nagumo ---------------------------------------------------------------------
FHN_A, FHN_B = 0.7, 0.8  # FitzHugh (1961)
FHN_TAU = 12.5  # the zoo's time-scale ratio 1/phi, phi = 0.08 (FitzHugh's later form)
FHN_C = math.sqrt(FHN_TAU)  # FitzHugh (1961) writes c = 3; tau = c^2 (see below)
FHN_I = 0.5  # the zoo's constant current


def fitzhugh_rhs(tt, xy, tm, a=FHN_A, b=FHN_B, c=FHN_C, z=-FHN_I):
    """FitzHugh (1961) Biophys J 1:445-466, the Bonhoeffer-van der Pol equations
    dx/dT = c (y + x - x^3/3 + z), dy/dT = -(x - a + b y)/c.

    Conversion to the zoo's form dv/dt = v - v^3/3 - w + I, dw/dt = (v + a - b w)/tau:
    v = -x, w = y, I = -z and t = c T, which gives tau = c^2 (FitzHugh's c = 3 is tau = 9;
    the zoo's tau = 12.5 is c = sqrt(12.5))."""
    x, y = xy
    return [c * (y + x - x**3 / 3.0 + z), -(x - a + b * y) / c]


def fitzhugh_rest(a=FHN_A, b=FHN_B):
    """FitzHugh's resting point for z = 0 in the zoo's (v, w): the real root of
    y + x - x^3/3 = 0, x - a + b y = 0."""
    x = brentq(lambda x: (a - x) / b + x - x**3 / 3.0, 1.0, 1.5, xtol=1e-15)
    return np.array([-x, (a - x) / b])


def simulate_fitzhugh_nagumo(times, y0=(-1.1994, -0.6243)):
    """The zoo's (v, w) at zoo times ``times`` (FitzHugh's time T = t / c)."""
    v0, w0 = y0
    xy, _ = integrate(fitzhugh_rhs, [-v0, w0], np.asarray(times) / FHN_C)
    return np.column_stack([-xy[:, 0], xy[:, 1]])


# ----- Hodgkin-Huxley ----------------------------------------------------------------------
HH_REST = -65.0  # mV: the zoo's absolute resting potential (the paper gives displacements)
HH_STIM = (20.0, 5.0, 1.0, 50.0)  # the zoo's pulses: uA/cm^2, start, duration, period (ms)


def hh_rates(vp):
    """Hodgkin & Huxley (1952) rate constants (1/ms) at the paper's V (mV, displacement
    from rest, depolarisation negative), 6.3 degC:
    eq. 12 alpha_n = 0.01 (V+10)/(exp((V+10)/10) - 1), eq. 13 beta_n = 0.125 exp(V/80),
    eq. 20 alpha_m = 0.1 (V+25)/(exp((V+25)/10) - 1), eq. 21 beta_m = 4 exp(V/18),
    eq. 23 alpha_h = 0.07 exp(V/20), eq. 24 beta_h = 1/(exp((V+30)/10) + 1)."""
    alpha_n = 0.1 * x_over_expm1((vp + 10.0) / 10.0)
    beta_n = 0.125 * math.exp(vp / 80.0)
    alpha_m = x_over_expm1((vp + 25.0) / 10.0)
    beta_m = 4.0 * math.exp(vp / 18.0)
    alpha_h = 0.07 * math.exp(vp / 20.0)
    beta_h = 1.0 / (math.exp((vp + 30.0) / 10.0) + 1.0)
    return alpha_n, beta_n, alpha_m, beta_m, alpha_h, beta_h


# Hodgkin & Huxley (1952) eq. 26 constants (the paper's potentials, mV; mmho/cm^2; uF/cm^2)
HH_C, HH_GNA, HH_GK, HH_GL = 1.0, 120.0, 36.0, 0.3
HH_VNA, HH_VK, HH_VL = -115.0, 12.0, -10.613


def hh_ionic(vp, n, m, h):
    """The ionic current of eq. 26 in the paper's sign convention (inward positive)."""
    return (HH_GK * n**4 * (vp - HH_VK) + HH_GNA * m**3 * h * (vp - HH_VNA)
            + HH_GL * (vp - HH_VL))


def hh_rhs(t, y, tm):
    """Eq. 26, C dV/dt = I - I_ionic, with the gates of eqs. 7, 15, 16
    (dn/dt = alpha_n (1 - n) - beta_n n, ...). The zoo's stimulus I_stim (depolarising,
    modern convention) enters the paper's equation with the opposite sign, I = -I_stim,
    because the paper's V = -(V_zoo + 65)."""
    vp, n, m, h = y
    an, bn, am, bm, ah, bh = hh_rates(vp)
    amp, start, dur, period = HH_STIM
    i_app = -pulse_value(tm, amp, start, dur, period)
    return [(i_app - hh_ionic(vp, n, m, h)) / HH_C, an * (1 - n) - bn * n,
            am * (1 - m) - bm * m, ah * (1 - h) - bh * h]


def hh_steady_gates(vp):
    an, bn, am, bm, ah, bh = hh_rates(vp)
    return an / (an + bn), am / (am + bm), ah / (ah + bh)


def simulate_hodgkin_huxley(times):
    """The zoo's (V, m, h, n) with V = -V_paper + HH_REST, from rest (V_paper = 0, gates at
    their steady state)."""
    y0 = [0.0, *hh_steady_gates(0.0)]
    amp, start, dur, period = HH_STIM
    y, _ = integrate(hh_rhs, y0, times, pulse_edges(start, dur, period, times[-1]))
    return np.column_stack([-y[:, 0] + HH_REST, y[:, 2], y[:, 3], y[:, 1]])


# ----- Aliev-Panfilov ----------------------------------------------------------------------
AP_STIM = (1.0, 1.0, 0.5, 100.0)  # the zoo's pulses: amplitude, start, duration, period


def aliev_panfilov_rhs(t, y, tm, k=8.0, a=0.15, eps0=0.002, mu1=0.2, mu2=0.3):
    """Aliev & Panfilov (1996) Chaos Solitons Fractals 7:293-301, eqs. 1-2 without diffusion:
    du/dt = -k u (u - a)(u - 1) - u v, dv/dt = eps(u, v) (-v - k u (u - a - 1)),
    eps = eps0 + mu1 v / (u + mu2), with the paper's k = 8, a = 0.15, eps0 = 0.002,
    mu1 = 0.2, mu2 = 0.3. The zoo adds a stimulus current to du/dt (not in the paper)."""
    u, v = y
    eps = eps0 + mu1 * v / (u + mu2)
    amp, start, dur, period = AP_STIM
    return [-k * u * (u - a) * (u - 1.0) - u * v + pulse_value(tm, amp, start, dur, period),
            eps * (-v - k * u * (u - a - 1.0))]


def simulate_aliev_panfilov(times):
    amp, start, dur, period = AP_STIM
    # rtol 1e-13: at 1e-12 DOP853's own error here is ~4e-9 of the range of u
    return integrate(aliev_panfilov_rhs, [0.0, 0.0], times,
                     pulse_edges(start, dur, period, times[-1]), rtol=1e-13, atol=1e-15)[0]


# ----- Beeler-Reuter -----------------------------------------------------------------------
# Beeler & Reuter (1977) Table 1: every rate is
# (C1 exp(C2 (V + C3)) + C4 (V + C5)) / (exp(C6 (V + C3)) + C7), in 1/ms, V in mV.
#              C1       C2      C3     C4    C5    C6      C7
BR_TABLE_1 = {
    "a_x1": (0.0005, 0.083, 50.0, 0.0, 0.0, 0.057, 1.0),
    "b_x1": (0.0013, -0.06, 20.0, 0.0, 0.0, -0.04, 1.0),
    "a_m": (0.0, 0.0, 47.0, -1.0, 47.0, -0.1, -1.0),
    "b_m": (40.0, -0.056, 72.0, 0.0, 0.0, 0.0, 0.0),
    "a_h": (0.126, -0.25, 77.0, 0.0, 0.0, 0.0, 0.0),
    "b_h": (1.7, 0.0, 22.5, 0.0, 0.0, -0.082, 1.0),
    "a_j": (0.055, -0.25, 78.0, 0.0, 0.0, -0.2, 1.0),
    "b_j": (0.3, 0.0, 32.0, 0.0, 0.0, -0.1, 1.0),
    "a_d": (0.095, -0.01, -5.0, 0.0, 0.0, -0.072, 1.0),
    "b_d": (0.07, -0.017, 44.0, 0.0, 0.0, 0.05, 1.0),
    "a_f": (0.012, -0.008, 28.0, 0.0, 0.0, 0.15, 1.0),
    "b_f": (0.0065, -0.02, 30.0, 0.0, 0.0, -0.2, 1.0),
}
BR_GATES = ("x1", "m", "h", "j", "d", "f")
BR_STIM = (40.0, 10.0, 1.0, 1000.0)  # the zoo's pulses: uA/cm^2, start, duration, period


def br_rate(name, v):
    """A rate of Table 1 by the general formula. alpha_m (C1 = 0, C7 = -1, C3 = C5) is
    0/0 at V = -47 mV; it is evaluated there as C4/C6 x/(exp(x) - 1), x = C6 (V + C3)."""
    c1, c2, c3, c4, c5, c6, c7 = BR_TABLE_1[name]
    if c1 == 0.0 and c7 == -1.0 and c3 == c5:
        return c4 / c6 * x_over_expm1(c6 * (v + c3))
    return (c1 * math.exp(c2 * (v + c3)) + c4 * (v + c5)) / (math.exp(c6 * (v + c3)) + c7)


def br_currents(v, ca, x1, m, h, j, d, f):
    """Beeler & Reuter (1977) eqs. 2-6 (uA/cm^2; [Ca]_i in mol/L as in the paper):
    eq. 2 i_K1 = 0.35 [4 (exp(0.04 (V+85)) - 1)/(exp(0.08 (V+53)) + exp(0.04 (V+53)))
    + 0.2 (V+23)/(1 - exp(-0.04 (V+23)))], eq. 3 i_x1 = x1 0.8 (exp(0.04 (V+77)) - 1) /
    exp(0.04 (V+35)), eq. 4 i_Na = (4 m^3 h j + 0.003)(V - 50), eq. 5 i_s = 0.09 d f
    (V - E_s), eq. 6 E_s = -82.3 - 13.0287 ln [Ca]_i."""
    e = math.exp
    # 0.2 (V+23) / (1 - exp(-0.04 (V+23))) = 5 x/(exp(x) - 1) with x = -0.04 (V+23)
    i_k1 = 0.35 * (4.0 * (e(0.04 * (v + 85.0)) - 1.0)
                   / (e(0.08 * (v + 53.0)) + e(0.04 * (v + 53.0)))
                   + 5.0 * x_over_expm1(-0.04 * (v + 23.0)))
    i_x1 = x1 * 0.8 * (e(0.04 * (v + 77.0)) - 1.0) / e(0.04 * (v + 35.0))
    i_na = (4.0 * m**3 * h * j + 0.003) * (v - 50.0)
    e_s = -82.3 - 13.0287 * math.log(ca)
    i_s = 0.09 * d * f * (v - e_s)
    return i_k1, i_x1, i_na, i_s


def br_rhs(t, y, tm, stim=True):
    """Eq. 1, C dV/dt = -(i_K1 + i_x1 + i_Na + i_s - I_stim) with C = 1 uF/cm^2; eq. 7,
    d[Ca]_i/dt = -1e-7 i_s + 0.07 (1e-7 - [Ca]_i) (mol/L per ms); every gate y obeys
    dy/dt = alpha_y (1 - y) - beta_y y."""
    v, ca = y[0], y[1]
    i_k1, i_x1, i_na, i_s = br_currents(*y)
    amp, start, dur, period = BR_STIM
    i_stim = pulse_value(tm, amp, start, dur, period) if stim else 0.0
    out = [-(i_k1 + i_x1 + i_na + i_s - i_stim), -1e-7 * i_s + 0.07 * (1e-7 - ca)]
    for g, gate in zip(BR_GATES, y[2:], strict=True):
        out.append(br_rate("a_" + g, v) * (1.0 - gate) - br_rate("b_" + g, v) * gate)
    return out


def br_rest():
    """The unstimulated steady state in the zoo's units (Ca_i in mmol/L): gates at
    alpha/(alpha + beta), V and [Ca]_i solving eqs. 1 and 7 (fsolve from -84.6 mV and
    2e-7 mol/L)."""
    def gates(v):
        return [br_rate("a_" + g, v) / (br_rate("a_" + g, v) + br_rate("b_" + g, v))
                for g in BR_GATES]

    def residual(z):
        v, log_ca = z
        d = br_rhs(0.0, [v, math.exp(log_ca), *gates(v)], 0.0, stim=False)
        return [d[0], d[1] / math.exp(log_ca)]

    v, log_ca = fsolve(residual, [-84.6, math.log(2e-7)], xtol=1e-14)
    return np.array([v, 1e3 * math.exp(log_ca), *gates(v)])


def simulate_beeler_reuter(times, y0):
    """The zoo's (V, Ca_i [mmol/L], x1, m, h, j, d, f) from ``y0`` in the zoo's units;
    integrated in the paper's mol/L (Ca_i = 1e-3 Ca_i[zoo])."""
    y0 = np.array(y0, float)
    y0[1] *= 1e-3
    amp, start, dur, period = BR_STIM

    def jac(t, y, tm, eps=1e-7):  # forward differences for Radau's Newton iteration
        f0 = np.asarray(br_rhs(t, y, tm))
        out = np.empty((y.size, y.size))
        for i in range(y.size):
            step = eps * max(abs(y[i]), 1e-6)
            yy = y.copy()
            yy[i] += step
            out[:, i] = (np.asarray(br_rhs(t, yy, tm)) - f0) / step
        return out

    y, _ = integrate(br_rhs, y0, times, pulse_edges(start, dur, period, times[-1]),
                     method="Radau", rtol=1e-11, atol=np.array([1e-10, 1e-17] + [1e-13] * 6),
                     jac=jac)
    y[:, 1] *= 1e3
    return y


# ----- yeast glycolysis --------------------------------------------------------------------
# Ruoff et al. (2003) Table 1 (also Daniels & Nemenman (2015) PLoS One 10:e0119821, Table 1)
YEAST = dict(J0=2.5, k1=100.0, k2=6.0, k3=16.0, k4=100.0, k5=1.28, k6=12.0, k=1.8,
             kappa=13.0, q=4.0, K1=0.52, psi=0.1, N=1.0, A=4.0)
# the zoo's initial state (Yazdani et al. (2020) PLoS Comput Biol 16:e1007575, the start of
# their data set; not a number from a scalebridge run)
YEAST_Y0 = [0.50144272, 1.95478666, 0.19788759, 0.14769148, 0.16059078, 0.16127341,
            0.06404702]


def yeast_rhs(t, s, tm, J0=2.5, k1=100.0, k2=6.0, k3=16.0, k4=100.0, k5=1.28, k6=12.0,
              k=1.8, kappa=13.0, q=4.0, K1=0.52, psi=0.1, N=1.0, A=4.0):  # noqa: N803
    """Ruoff, Christensen, Wolf & Heinrich (2003) Biophys Chem 106:179-192 (the Wolf-Heinrich
    model): S1 glucose, S2 triose phosphates, S3 1,3-BPG, S4 pyruvate/acetaldehyde, S5 NADH,
    S6 ATP, S7 extracellular acetaldehyde (mM, min).
    v1 = k1 S1 S6 / (1 + (S6/K1)^q), v2 = k2 S2 (N - S5), v3 = k3 S3 (A - S6),
    v4 = k4 S4 S5, v5 = k5 S6, v6 = k6 S2 S5, v7 = k S7, J = kappa (S4 - S7);
    dS1 = J0 - v1, dS2 = 2 v1 - v2 - v6, dS3 = v2 - v3, dS4 = v3 - v4 - J,
    dS5 = v2 - v4 - v6, dS6 = -2 v1 + 2 v3 - v5, dS7 = psi J - v7."""
    s1, s2, s3, s4, s5, s6, s7 = s
    v1 = k1 * s1 * s6 / (1.0 + (s6 / K1) ** q)
    v2 = k2 * s2 * (N - s5)
    v3 = k3 * s3 * (A - s6)
    v4 = k4 * s4 * s5
    v5 = k5 * s6
    v6 = k6 * s2 * s5
    v7 = k * s7
    j = kappa * (s4 - s7)
    return [J0 - v1, 2 * v1 - v2 - v6, v2 - v3, v3 - v4 - j, v2 - v4 - v6,
            -2 * v1 + 2 * v3 - v5, psi * j - v7]


def simulate_yeast_glycolysis(times):
    return integrate(yeast_rhs, YEAST_Y0, times)[0]


# ----- SIR, SEIR ---------------------------------------------------------------------------
POPULATION = 1e6  # the references count individuals; the zoo uses fractions


def kermack_mckendrick_rhs(t, xyz, tm, kappa=0.3 / POPULATION, ell=0.1):
    """Kermack & McKendrick (1927) Proc R Soc A 115:700-721, the case of constant
    infectivity kappa and removal rate l: dx/dt = -kappa x y, dy/dt = kappa x y - l y,
    dz/dt = l y (x susceptible, y infected, z removed; numbers of individuals).
    In the zoo's fractions beta = kappa N (0.3/day) and gamma = l (0.1/day)."""
    x, y, _ = xyz
    return [-kappa * x * y, kappa * x * y - ell * y, ell * y]


def simulate_sir(times):
    y0 = POPULATION * np.array([0.99, 0.01, 0.0])
    return integrate(kermack_mckendrick_rhs, y0, times, atol=1e-8)[0] / POPULATION


def seir_rhs(t, y, tm, beta=0.5 / POPULATION, sigma=0.2, gamma=0.2):
    """Anderson & May (1991) Infectious Diseases of Humans (Oxford), the SEIR model with
    mass-action transmission in numbers: dS/dt = -beta S I, dE/dt = beta S I - sigma E,
    dI/dt = sigma E - gamma I, dR/dt = gamma I (no births or deaths). The zoo's fractions:
    beta_zoo = beta N = 0.5/day, sigma = 0.2/day, gamma = 0.2/day."""
    s, e, i, _ = y
    infection = beta * s * i
    return [-infection, infection - sigma * e, sigma * e - gamma * i, gamma * i]


def simulate_seir(times):
    y0 = POPULATION * np.array([0.999, 0.0, 0.001, 0.0])
    return integrate(seir_rhs, y0, times, atol=1e-8)[0] / POPULATION


# ----- glucose-insulin ---------------------------------------------------------------------
# Tolic, Mosekilde & Sturis (2000) J Theor Biol 207:361-375, Table 1 (the values of Sturis et
# al. 1991): l, l/min, min, mU/min, mg/l, mg/min, mU/l, l/mU
STURIS = dict(Vp=3.0, Vi=11.0, Vg=10.0, E=0.2, tp=6.0, ti=100.0, td=36.0, Rm=210.0,
              a1=300.0, C1=2000.0, Ub=72.0, C2=144.0, C3=1000.0, U0=40.0, Um=940.0,
              beta=1.77, C4=80.0, Rg=180.0, alpha=0.29, C5=26.0)
STURIS_GIN = 216.0  # mg/min, the zoo's constant glucose infusion (Li, Kuang & Mason 2006)
# the zoo's initial state: 12 mU/l in Vp, 4 mU/l in Vi, 110 mg/dl in Vg, empty delay chain
STURIS_Y0 = [12.0 * 3.0, 4.0 * 11.0, 1100.0 * 10.0, 0.0, 0.0, 0.0]


def sturis_rhs(t, y, tm, Vp=3.0, Vi=11.0, Vg=10.0, E=0.2, tp=6.0, ti=100.0, td=36.0,  # noqa: N803
               Rm=210.0, a1=300.0, C1=2000.0, Ub=72.0, C2=144.0, C3=1000.0, U0=40.0,  # noqa: N803
               Um=940.0, beta=1.77, C4=80.0, Rg=180.0, alpha=0.29, C5=26.0,  # noqa: N803
               Gin=STURIS_GIN):  # noqa: N803
    """Sturis et al. (1991) Am J Physiol 260:E801-E809, in the notation of Tolic et al.
    (2000) eqs. 1-6: dIp/dt = f1(G) - E (Ip/Vp - Ii/Vi) - Ip/tp,
    dIi/dt = E (Ip/Vp - Ii/Vi) - Ii/ti, dG/dt = Gin - f2(G) - f3(G) f4(Ii) + f5(x3),
    dx1/dt = 3/td (Ip - x1), dx2/dt = 3/td (x1 - x2), dx3/dt = 3/td (x2 - x3), with
    f1 = Rm / (1 + exp((C1 - G/Vg)/a1)), f2 = Ub (1 - exp(-G/(C2 Vg))), f3 = G/(C3 Vg),
    f4 = U0 + (Um - U0) / (1 + (kappa Ii)^-beta), kappa = (1/Vi + 1/(E ti))/C4,
    f5 = Rg / (1 + exp(alpha (x3/Vp - C5)))."""
    ip, ii, g, x1, x2, x3 = y
    f1 = Rm / (1.0 + math.exp((C1 - g / Vg) / a1))
    f2 = Ub * (1.0 - math.exp(-g / (C2 * Vg)))
    f3 = g / (C3 * Vg)
    kappa = (1.0 / Vi + 1.0 / (E * ti)) / C4
    f4 = U0 + (Um - U0) / (1.0 + (kappa * ii) ** (-beta))
    f5 = Rg / (1.0 + math.exp(alpha * (x3 / Vp - C5)))
    flux = E * (ip / Vp - ii / Vi)
    return [f1 - flux - ip / tp, flux - ii / ti, Gin - f2 - f3 * f4 + f5,
            3.0 / td * (ip - x1), 3.0 / td * (x1 - x2), 3.0 / td * (x2 - x3)]


def simulate_glucose_insulin(times):
    return integrate(sturis_rhs, STURIS_Y0, times, atol=1e-10)[0]


# ----- two-compartment pharmacokinetics ----------------------------------------------------
PK = dict(ka=1.0, CL=5.0, V1=20.0, Q=10.0, V2=50.0)  # the zoo's illustrative values
PK_DOSES = (100.0, (0.0, 12.0, 24.0, 36.0))  # mg into the gut depot at these hours


def pk_matrix(ka=1.0, CL=5.0, V1=20.0, Q=10.0, V2=50.0):  # noqa: N803
    """Gibaldi & Perrier (1982) Pharmacokinetics, 2nd ed., ch. 2 (two-compartment model with
    first-order absorption) in micro-constants k10 = CL/V1, k12 = Q/V1, k21 = Q/V2, as the
    linear system d/dt (depot, central, peripheral, eliminated) = K (...)."""
    k10, k12, k21 = CL / V1, Q / V1, Q / V2
    return np.array([[-ka, 0.0, 0.0, 0.0],
                     [ka, -(k10 + k12), k21, 0.0],
                     [0.0, k12, -k21, 0.0],
                     [0.0, k10, 0.0, 0.0]])


def simulate_pk_two_compartment(times):
    """Exact amounts (mg) by superposition of the doses: A(t) = sum over the doses given at
    t_d <= t of expm(K (t - t_d)) (D, 0, 0, 0) (a dose at t is in the state at t); the
    matrix exponential from K's eigendecomposition (its eigenvalues -ka, -alpha, -beta, 0
    are distinct)."""
    lam, vec = np.linalg.eig(pk_matrix(**PK))
    coef = np.linalg.solve(vec, np.array([1.0, 0.0, 0.0, 0.0]))
    dose, dose_times = PK_DOSES
    times = np.asarray(times, float)
    out = np.zeros((times.size, 4))
    for td in dose_times:
        dt = np.where(times >= td, times - td, 0.0)
        out += dose * (times >= td)[:, None] * ((vec * coef) @ np.exp(np.outer(lam, dt))).T
    return out.real


# ----- Lorenz ------------------------------------------------------------------------------
def lorenz_rhs(t, xyz, tm, sigma=10.0, r=28.0, b=8.0 / 3.0):
    """Lorenz (1963) J Atmos Sci 20:130-141, eqs. 25-27: dX/dt = -sigma X + sigma Y,
    dY/dt = -X Z + r X - Y, dZ/dt = X Y - b Z, with the paper's sigma = 10, b = 8/3, r = 28.
    The start (1, 1, 1) is the zoo's (Lorenz started from (0, 1, 0))."""
    x, y, z = xyz
    return [-sigma * x + sigma * y, -x * z + r * x - y, x * y - b * z]


def lorenz_fixed_point_eigenvalues(sigma=10.0, r=28.0, b=8.0 / 3.0):
    """Lorenz (1963): at C, C' = (+-sqrt(b(r-1)), +-sqrt(b(r-1)), r-1) the linearisation has
    the characteristic equation l^3 + (sigma + b + 1) l^2 + (r + sigma) b l
    + 2 sigma b (r - 1) = 0."""
    return np.sort_complex(np.roots([1.0, sigma + b + 1.0, (r + sigma) * b,
                                     2.0 * sigma * b * (r - 1.0)]))


def simulate_lorenz(times):
    return integrate(lorenz_rhs, [1.0, 1.0, 1.0], times, rtol=1e-13, atol=1e-13)[0]


SIMULATE = {
    "lotka_volterra": simulate_lotka_volterra,
    "fitzhugh_nagumo": simulate_fitzhugh_nagumo,
    "hodgkin_huxley": simulate_hodgkin_huxley,
    "aliev_panfilov": simulate_aliev_panfilov,
    "yeast_glycolysis": simulate_yeast_glycolysis,
    "sir": simulate_sir,
    "seir": simulate_seir,
    "glucose_insulin": simulate_glucose_insulin,
    "pk_two_compartment": simulate_pk_two_compartment,
    "lorenz": simulate_lorenz,
}  # beeler_reuter takes its initial state: simulate_beeler_reuter(times, y0)


def upward_crossings(rhs, y0, index, level, t_end, rtol=1e-12, atol=1e-14):
    """(times, states) where state ``index`` crosses ``level`` upwards in [0, t_end],
    located by solve_ivp's event detection (DOP853)."""
    def event(t, y):
        return y[index] - level

    event.direction = 1.0
    return integrate(rhs, y0, np.array([0.0, t_end]), rtol=rtol, atol=atol,
                     events=event)[1]
