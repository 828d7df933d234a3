"""Numerical helpers shared by the zoo models."""

from __future__ import annotations

import jax.numpy as jnp

_SMALL = 1e-4


def x_over_expm1(x):
    """``x / (exp(x) - 1)``, equal to 1 at ``x = 0``.

    The removable singularity of Hodgkin-Huxley-type rate constants, e.g.
    ``(V + 40) / (1 - exp(-(V + 40) / 10)) = 10 * x_over_expm1(-(V + 40) / 10)``. Near 0 a
    Taylor series replaces the quotient, and the quotient only ever sees a safe argument,
    so neither the value nor its gradient is NaN (``jnp.where`` differentiates both branches).
    """
    small = jnp.abs(x) < _SMALL
    xs = jnp.where(small, 1.0, x)
    return jnp.where(small, 1.0 - x / 2.0 + x * x / 12.0, xs / jnp.expm1(xs))
