"""Weak (integral) form of sparse regression for noisy data.

Multiplying ``dx/dt = Theta(x) xi`` by a smooth test function ``phi`` that vanishes at
both ends of its support and integrating by parts gives ``-int phi' x dt = int phi
Theta(x) dt xi``: no derivative of the data is needed and the integrals average the noise
out (Messenger & Bortz 2021, Multiscale Model Simul 19:1474-1497; Reinbold, Gurevich &
Grigoriev 2020, Phys Rev E 101:010203). Test functions are the bumps
``phi(t) = (1 - ((t - c) / h)^2)^order`` on ``[c - h, c + h]``, integrated by the
trapezoidal rule on the sample times.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.polynomial import polynomial as P

from ..errors import InputError


def trapezoid_weights(t: np.ndarray) -> np.ndarray:
    """Weights ``w`` with ``sum(w * f) ~ int f dt`` on the grid ``t``."""
    dt = np.diff(t)
    w = np.zeros_like(t)
    w[:-1] += dt / 2
    w[1:] += dt / 2
    return w


def bump(s: np.ndarray, order: int, derivative: int = 0) -> np.ndarray:
    """``(1 - s^2)^order`` on ``|s| < 1`` (0 outside), or its ``derivative``-th derivative
    in ``s``."""
    coef = P.polypow([1.0, 0.0, -1.0], order)
    if derivative:
        coef = P.polyder(coef, derivative)
    return np.where(np.abs(s) < 1, P.polyval(s, coef), 0.0)


def effective_rows(M: np.ndarray) -> float:
    """How many independent rows white noise gives after the linear map ``M``: the
    participation ratio ``tr(C)^2 / tr(C^2)`` of the row covariance ``C = M M^T``.
    Overlapping test functions give correlated rows, which a criterion such as AICc must
    not count as independent."""
    C = M @ M.T
    return float(np.trace(C) ** 2 / np.sum(C * C))


@dataclass(frozen=True)
class WeakForm:
    """Weak-form settings: ``n_test`` test functions of half-width ``width`` (a fraction
    of the time span, or an absolute time with ``absolute=True``) and polynomial
    ``order`` (smoothness), their centres evenly spread so every support lies inside the
    data."""

    n_test: int = 200
    width: float = 0.05
    order: int = 4
    absolute: bool = False

    def half_width(self, t: np.ndarray) -> float:
        span = float(t[-1] - t[0])
        h = self.width if self.absolute else self.width * span
        if not (isinstance(self.order, int) and self.order >= 2):
            raise InputError(f"WeakForm order must be an integer >= 2, got {self.order!r}")
        if not (0 < h < span / 2):
            raise InputError(f"WeakForm width gives a half-width of {h:.4g} for data spanning "
                             f"{span:.4g}; it must be positive and below half the span")
        if np.max(np.diff(t)) > h / 3:
            raise InputError(f"WeakForm: a test function of half-width {h:.4g} spans fewer than "
                             "7 samples; increase width or sample more densely")
        return h

    def matrices(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``V[k, i] = w_i phi_k(t_i)`` and ``Vd[k, i] = w_i phi_k'(t_i)`` for the samples
        ``t`` (rows scaled so each ``phi_k`` integrates to 1)."""
        if not (isinstance(self.n_test, int) and self.n_test >= 1):
            raise InputError(f"WeakForm n_test must be a positive integer, got {self.n_test!r}")
        h = self.half_width(t)
        centres = np.linspace(t[0] + h, t[-1] - h, self.n_test)
        s = (t[None, :] - centres[:, None]) / h
        w = trapezoid_weights(t)
        V = w * bump(s, self.order)
        Vd = w * bump(s, self.order, 1) / h
        norm = V.sum(axis=1, keepdims=True)
        return V / norm, Vd / norm


__all__ = ["WeakForm", "bump", "trapezoid_weights", "effective_rows"]
