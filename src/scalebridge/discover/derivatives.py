"""Time derivatives estimated from sampled trajectories.

- ``"finite"``: fourth-order central differences on uniform grids (second order near the
  ends and on non-uniform grids).
- ``"savgol"``: the derivative of a local least-squares polynomial (Savitzky & Golay 1964,
  Anal Chem 36:1627), which smooths noise; uniform time grids.
- ``"spectral"``: differentiation in Fourier space with the highest frequencies removed;
  uniform grids of periodic (or nearly periodic) signals.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import savgol_filter

from ..errors import InputError

METHODS = ("finite", "savgol", "spectral")


def check_times(t, n: int, what: str = "t") -> np.ndarray:
    """``t`` as ``n`` strictly increasing finite coordinates (a number is the step); used
    for times and, in PDE-FIND, for space."""
    if np.ndim(t) == 0:
        dt = float(t)
        if not np.isfinite(dt) or dt <= 0:
            raise InputError(f"{what}: a step must be a positive number, got {t!r}")
        return dt * np.arange(n)
    ts = np.asarray(t, dtype=float)
    if ts.shape != (n,):
        raise InputError(f"{what}: {ts.size} values for {n} samples along {what}; give one "
                         "per sample")
    if not np.all(np.isfinite(ts)):
        raise InputError(f"{what}: contains NaN or infinity; remove those samples")
    if np.any(np.diff(ts) <= 0):
        k = int(np.argmax(np.diff(ts) <= 0))
        raise InputError(f"{what} must increase strictly; {what}[{k}]={ts[k]:g} is followed by "
                         f"{what}[{k + 1}]={ts[k + 1]:g} (sort the samples or drop duplicates)")
    return ts


def _uniform(t: np.ndarray, method: str) -> float:
    dt = np.diff(t)
    if not np.allclose(dt, dt[0], rtol=1e-6, atol=0):
        raise InputError(f"derivative {method!r} needs uniformly spaced times; use "
                         "differentiation='finite' or resample the data")
    return float(dt[0])


def differentiate(x, t, method: str = "finite", *, window: int | None = None,
                  order: int = 3, cutoff: float = 0.5) -> np.ndarray:
    """dx/dt along axis 0 of ``x`` (shape ``(n,)`` or ``(n, d)``) sampled at times ``t``.

    ``window`` and ``order``: Savitzky-Golay window length (odd; default about 2% of the
    samples, at least ``order + 2``) and polynomial order. ``cutoff``: the fraction of the
    Nyquist band kept by ``"spectral"``.
    """
    x = np.asarray(x, dtype=float)
    t = check_times(t, x.shape[0])
    if x.shape[0] < 3:
        raise InputError(f"need at least 3 samples to estimate derivatives, got {x.shape[0]}")
    if method == "finite":
        out = np.gradient(x, t, axis=0, edge_order=2)
        dt = np.diff(t)
        if x.shape[0] >= 5 and np.allclose(dt, dt[0], rtol=1e-6, atol=0):
            out[2:-2] = _stencil(x, _C4) / dt[0]
        return out
    if method == "savgol":
        dt = _uniform(t, method)
        w = window if window is not None else max(order + 2 + (order % 2 == 0), x.shape[0] // 50)
        w = int(w) + (int(w) % 2 == 0)
        if w > x.shape[0] or w <= order:
            raise InputError(f"Savitzky-Golay window {w} must exceed order {order} and be at "
                             f"most the number of samples {x.shape[0]}")
        return savgol_filter(x, w, order, deriv=1, delta=dt, axis=0, mode="interp")
    if method == "spectral":
        dt = _uniform(t, method)
        n = x.shape[0]
        k = 2j * np.pi * np.fft.rfftfreq(n, d=dt)
        keep = np.abs(np.fft.rfftfreq(n)) <= cutoff * 0.5
        shape = (-1,) + (1,) * (x.ndim - 1)
        xf = np.fft.rfft(x, axis=0) * (k * keep).reshape(shape)
        return np.fft.irfft(xf, n=n, axis=0)
    raise InputError(f"differentiation {method!r} is not known; use one of "
                     f"{', '.join(METHODS)}")


# central-difference weights of orders 4 and 6 (Fornberg 1988, Math Comput 51:699)
_C4 = np.array([1, -8, 0, 8, -1]) / 12
_C6 = np.array([-1, 9, -45, 0, 45, -9, 1]) / 60


def _stencil(x, c):
    h = len(c) // 2
    n = x.shape[0]
    return sum(ck * x[k:n - 2 * h + k] for k, ck in enumerate(c))


def bias_floor(x, t) -> np.ndarray | None:
    """Per state, the error variance below which ``"finite"`` derivatives cannot separate
    terms: ``n b^2 / 2``, with ``b^2`` the mean square truncation error of the fourth-order
    differences (their difference from sixth-order ones, less the part that measurement
    noise explains; noise is estimated from sixth differences of ``x``).

    A truncation error is a smooth function of the state, which for polynomial dynamics
    lies in the library's span, so least squares fits it with spurious terms however many
    samples there are. Treating it as one effective sample, a term enters only if it
    explains more than it (see :func:`~scalebridge.discover.optimizers.aicc`). ``None`` on
    non-uniform or short grids."""
    x = np.asarray(x, dtype=float)
    n = x.shape[0]
    dt = np.diff(t)
    if n < 16 or not np.allclose(dt, dt[0], rtol=1e-6, atol=0):
        return None
    d4 = _stencil(x, _C4)[1:-1] / dt[0]
    d6 = _stencil(x, _C6) / dt[0]
    sq = (d4 - d6) ** 2
    sixth = np.diff(x, 6, axis=0)
    noise_var = np.mean(sixth ** 2, axis=0) / 924.0  # sum of squared binomial(6, k)
    gain = np.sum((np.pad(_C4, 1) - _C6) ** 2) / dt[0] ** 2
    # only a bias well above what noise alone gives: a squared Gaussian has standard
    # deviation sqrt(2) times its mean; neighbouring 7-point stencils overlap
    margin = 3 * np.sqrt(2) * gain * noise_var * np.sqrt(7 / sq.shape[0])
    b2 = np.maximum(np.mean(sq, axis=0) - gain * noise_var - margin, 0.0)
    return n * b2 / 2


__all__ = ["differentiate", "check_times", "bias_floor", "METHODS"]
