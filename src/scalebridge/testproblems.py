"""Analytic test problems with known answers, for sensitivity analysis, surrogates and
optimisation.

Every function maps an ``(m, d)`` array to ``(m,)`` outputs and is written in
``jax.numpy``, so it can be jit-compiled, vmapped and differentiated, and also called on a
NumPy array. Each problem comes with its domain (``*_BOUNDS``, a list of ``(low, high)``
pairs) and, where one exists, its reference value:

- sensitivity: :func:`ishigami` and :func:`sobol_g`, with their analytic Sobol' indices
  (:func:`ishigami_indices`, :func:`sobol_g_indices`);
- multi-fidelity regression: the 1D nonlinear pair of Perdikaris et al. (2017)
  (:func:`nonlinear_sin_low`, :func:`nonlinear_sin_high`), the 3-level Branin of the same
  paper (:data:`BRANIN_LEVELS`), and the 2-level Borehole and Currin functions
  (Xiong, Qian and Wu 2013);
- optimisation: :func:`branin` (minimum :data:`BRANIN_MIN`) and :func:`hartmann6`
  (minimum :data:`HARTMANN6_MIN`).

References: Ishigami and Homma (1990); Saltelli et al., *Global Sensitivity Analysis: The
Primer* (2008); Perdikaris et al., Proc. R. Soc. A 473 (2017) 20160751; Xiong, Qian and Wu,
Technometrics 55 (2013) 37-46; Surjanovic and Bingham, Virtual Library of Simulation
Experiments (sfu.ca/~ssurjano).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

__all__ = [
    "ishigami", "ishigami_indices", "ISHIGAMI_BOUNDS",
    "sobol_g", "sobol_g_indices", "SOBOL_G_A",
    "nonlinear_sin_low", "nonlinear_sin_high", "NONLINEAR_SIN_BOUNDS",
    "branin", "branin_medium", "branin_low", "BRANIN_BOUNDS", "BRANIN_MIN", "BRANIN_LEVELS",
    "borehole", "borehole_low", "BOREHOLE_BOUNDS", "BOREHOLE_LEVELS",
    "currin", "currin_low", "CURRIN_BOUNDS", "CURRIN_LEVELS",
    "hartmann6", "HARTMANN6_BOUNDS", "HARTMANN6_MIN",
]


def _columns(x):
    x = jnp.asarray(x)
    if x.ndim == 1:
        x = x[None, :]
    return [x[:, i] for i in range(x.shape[1])]


# -- sensitivity ---------------------------------------------------------------------------

ISHIGAMI_BOUNDS = [(-math.pi, math.pi)] * 3


def ishigami(x, a: float = 7.0, b: float = 0.1):
    """Ishigami function sin(x1) + a sin(x2)^2 + b x3^4 sin(x1) on [-pi, pi]^3."""
    x1, x2, x3 = _columns(x)
    return jnp.sin(x1) + a * jnp.sin(x2) ** 2 + b * x3**4 * jnp.sin(x1)


def ishigami_indices(a: float = 7.0, b: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Analytic first-order and total Sobol' indices ``(S1, ST)`` of :func:`ishigami`
    for independent uniform inputs."""
    pi4 = math.pi**4
    v1 = 0.5 * (1 + b * pi4 / 5) ** 2
    v2 = a**2 / 8
    v13 = 8 * b**2 * math.pi**8 / 225
    var = v1 + v2 + v13
    return np.array([v1, v2, 0.0]) / var, np.array([v1 + v13, v2, v13]) / var


SOBOL_G_A = (0.0, 1.0, 4.5, 9.0, 99.0, 99.0, 99.0, 99.0)


def sobol_g(x, a=SOBOL_G_A):
    """Sobol' G function prod_i (|4 x_i - 2| + a_i) / (1 + a_i) on [0, 1]^d."""
    x = jnp.atleast_2d(jnp.asarray(x))
    a = jnp.asarray(a, dtype=x.dtype)
    return jnp.prod((jnp.abs(4 * x - 2) + a) / (1 + a), axis=1)


def sobol_g_indices(a=SOBOL_G_A) -> tuple[np.ndarray, np.ndarray]:
    """Analytic first-order and total Sobol' indices ``(S1, ST)`` of :func:`sobol_g`."""
    vi = 1.0 / (3.0 * (1.0 + np.asarray(a, dtype=float)) ** 2)
    var = np.prod(1 + vi) - 1
    st = np.array([vi[i] * np.prod(np.delete(1 + vi, i)) for i in range(vi.size)]) / var
    return vi / var, st


# -- multi-fidelity regression ---------------------------------------------------------------

NONLINEAR_SIN_BOUNDS = [(0.0, 1.0)]


def nonlinear_sin_low(x):
    """Low fidelity of the 1D pair of Perdikaris et al. (2017): sin(8 pi x)."""
    (x1,) = _columns(x)
    return jnp.sin(8 * jnp.pi * x1)


def nonlinear_sin_high(x):
    """High fidelity of the 1D pair: (x - sqrt(2)) sin(8 pi x)^2."""
    (x1,) = _columns(x)
    return (x1 - jnp.sqrt(2.0)) * jnp.sin(8 * jnp.pi * x1) ** 2


BRANIN_BOUNDS = [(-5.0, 10.0), (0.0, 15.0)]
BRANIN_MIN = 0.397887


def branin(x):
    """Branin function on [-5, 10] x [0, 15]; global minimum 0.397887 at three points."""
    x1, x2 = _columns(x)
    b, c, r, s, t = 5.1 / (4 * jnp.pi**2), 5 / jnp.pi, 6.0, 10.0, 1 / (8 * jnp.pi)
    return (x2 - b * x1**2 + c * x1 - r) ** 2 + s * (1 - t) * jnp.cos(x1) + s


def branin_medium(x):
    """Middle level of the 3-level Branin of Perdikaris et al. (2017):
    10 sqrt(f(x - 2)) + 2 (x1 - 0.5) - 3 (3 x2 - 1) - 1."""
    x = jnp.atleast_2d(jnp.asarray(x))
    x1, x2 = x[:, 0], x[:, 1]
    return 10 * jnp.sqrt(branin(x - 2)) + 2 * (x1 - 0.5) - 3 * (3 * x2 - 1) - 1


def branin_low(x):
    """Lowest level of the 3-level Branin: f_medium(1.2 (x + 2)) - 3 x2 + 1."""
    x = jnp.atleast_2d(jnp.asarray(x))
    return branin_medium(1.2 * (x + 2)) - 3 * x[:, 1] + 1


BRANIN_LEVELS = (branin_low, branin_medium, branin)
"""The three Branin fidelities, lowest first."""

BOREHOLE_BOUNDS = [(0.05, 0.15), (100.0, 50000.0), (63070.0, 115600.0), (990.0, 1110.0),
                   (63.1, 116.0), (700.0, 820.0), (1120.0, 1680.0), (9855.0, 12045.0)]


def _borehole(x, numerator: float, shift: float):
    rw, r, tu, hu, tl, hl, ell, kw = _columns(x)
    log_ratio = jnp.log(r / rw)
    return numerator * tu * (hu - hl) / (
        log_ratio * (shift + 2 * ell * tu / (log_ratio * rw**2 * kw) + tu / tl))


def borehole(x):
    """Borehole water flow (m^3/yr) through 8 inputs (Morris et al. 1993)."""
    return _borehole(x, 2 * math.pi, 1.0)


def borehole_low(x):
    """Low-fidelity borehole of Xiong, Qian and Wu (2013)."""
    return _borehole(x, 5.0, 1.5)


BOREHOLE_LEVELS = (borehole_low, borehole)

CURRIN_BOUNDS = [(0.0, 1.0), (0.0, 1.0)]


def currin(x):
    """Currin et al. (1988) exponential function on [0, 1]^2."""
    x1, x2 = _columns(x)
    # x2 = 0 is the limit 1 - exp(-inf) = 1; keep the division finite there
    safe = jnp.where(x2 > 0, x2, 1.0)
    factor = jnp.where(x2 > 0, 1 - jnp.exp(-0.5 / safe), 1.0)
    return factor * (2300 * x1**3 + 1900 * x1**2 + 2092 * x1 + 60) / (
        100 * x1**3 + 500 * x1**2 + 4 * x1 + 20)


def currin_low(x):
    """Low-fidelity Currin of Xiong, Qian and Wu (2013): the mean of four shifted copies."""
    x = jnp.atleast_2d(jnp.asarray(x))
    x1, x2 = x[:, 0], x[:, 1]
    up, down = x2 + 0.05, jnp.maximum(0.0, x2 - 0.05)
    return 0.25 * sum(currin(jnp.stack([x1 + dx, y], axis=1))
                      for dx in (0.05, -0.05) for y in (up, down))


CURRIN_LEVELS = (currin_low, currin)

# -- optimisation --------------------------------------------------------------------------

HARTMANN6_BOUNDS = [(0.0, 1.0)] * 6
HARTMANN6_MIN = -3.32237

_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H6_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                  [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_H6_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                         [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])


def hartmann6(x):
    """Hartmann 6-dimensional function on [0, 1]^6; global minimum -3.32237."""
    x = jnp.atleast_2d(jnp.asarray(x))
    inner = jnp.sum(_H6_A[None] * (x[:, None, :] - _H6_P[None]) ** 2, axis=2)
    return -jnp.sum(_H6_ALPHA[None] * jnp.exp(-inner), axis=1)
