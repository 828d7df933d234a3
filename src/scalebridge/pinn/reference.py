"""Reference solutions for checking PINNs.

:func:`burgers_cole_hopf`: the viscous Burgers equation ``u_t + u u_x = nu u_xx`` with
``u(x, 0) = -sin(pi x)`` on the whole line (so ``u(+-1, t) = 0`` by symmetry) through the
Cole-Hopf transformation (Cole 1951, Quart. Appl. Math. 9:225; Hopf 1950, Comm. Pure Appl.
Math. 3:201; Basdevant et al. 1986, "Spectral and finite difference solutions of the
Burgers equation", Comput. Fluids 14:23-41, eq. 5):

``u(x, t) = - int sin(pi (x - s)) f(x - s) G(s) ds / int f(x - s) G(s) ds``, with
``f(y) = exp(-cos(pi y) / (2 pi nu))`` and the heat kernel ``G(s) = exp(-s^2 / (4 nu t))``.

Both integrals are evaluated by the trapezoidal rule over ``s`` in ``+-width`` standard
deviations of the kernel, in log space. ``f`` spans a factor ``exp(1/(pi nu))`` (``e^100``
for ``nu = 0.01/pi``), so the kernel must be cut only where it is below ``exp(-1/(pi nu))``
times machine precision: ``width = sqrt(2 (1/(pi nu) + 40))`` by default. The integrand is
smooth and decays like a Gaussian, so the rule converges faster than any power of the step;
with the defaults, doubling ``n_quad`` or ``width`` changes ``u`` by less than 1e-15 for
``nu = 0.01/pi``.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

__all__ = ["burgers_cole_hopf"]


def burgers_cole_hopf(x, t, nu: float = 0.01 / np.pi, *, n_quad: int = 4001,
                      width: float | None = None) -> np.ndarray:
    """The exact solution of viscous Burgers with ``u(x, 0) = -sin(pi x)`` at points
    ``(x, t)`` (arrays broadcast together), by quadrature of the Cole-Hopf integrals with
    ``n_quad`` nodes over ``+-width`` kernel standard deviations (see the module)."""
    if not nu > 0:
        raise InputError(f"burgers_cole_hopf: nu={nu} must be positive")
    if n_quad < 11:
        raise InputError(f"burgers_cole_hopf: n_quad={n_quad} is too small; use >= 11")
    x, t = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(t, dtype=float))
    if np.any(t < 0) or not np.all(np.isfinite(t)) or not np.all(np.isfinite(x)):
        raise InputError("burgers_cole_hopf: t must be finite and >= 0, x finite")
    out = -np.sin(np.pi * x)                      # t = 0: the initial condition
    pos = t > 0
    if width is None:
        width = float(np.sqrt(2.0 * (1.0 / (np.pi * nu) + 40.0)))
    grid = np.linspace(-width, width, n_quad)[None, :]
    xp, tp = x[pos], t[pos]
    vals = np.empty(xp.size)
    chunk = max(1, 2_000_000 // n_quad)
    for i in range(0, xp.size, chunk):
        xs, ts = xp[i:i + chunk, None], tp[i:i + chunk, None]
        sd = np.sqrt(2.0 * nu * ts)               # standard deviation of the heat kernel
        s = sd * grid
        y = xs - s
        log_w = -np.cos(np.pi * y) / (2 * np.pi * nu) - s**2 / (4 * nu * ts)
        w = np.exp(log_w - log_w.max(axis=1, keepdims=True))
        w[:, [0, -1]] *= 0.5                      # trapezoid end weights
        vals[i:i + chunk] = -np.sum(np.sin(np.pi * y) * w, axis=1) / np.sum(w, axis=1)
    out[pos] = vals
    return out
