"""Residuals of the physics, with derivatives of the network by forward mode.

A PINN (Raissi, Perdikaris & Karniadakis 2019, "Physics-informed neural networks", J.
Comput. Phys. 378:686-707) penalises the residual of the governing equations at collocation
points. Derivatives in the inputs (one time, one space coordinate) are taken by forward mode
(``jax.jvp``, nested for second derivatives): with one or two input directions this costs
a small multiple of one network evaluation, where nested reverse mode would build and
differentiate a backward pass per point.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from ..model.model import Model

__all__ = ["time_derivative", "space_time_derivatives", "ode_residual", "pde_residual"]


def time_derivative(net: Callable, t):
    """``(u(t), du/dt)`` of a network of one input ``t`` (a scalar), by ``jax.jvp``."""
    t = jnp.asarray(t, dtype=jnp.float64)
    return jax.jvp(lambda s: net(jnp.reshape(s, (1,))), (t,), (jnp.ones_like(t),))


def space_time_derivatives(net: Callable, x, t) -> dict:
    """``{"u", "u_t", "u_x", "u_xx"}`` of a network of inputs ``z = (x, t)`` at one point,
    by forward mode (``u_xx`` is a ``jvp`` of a ``jvp``)."""
    x = jnp.asarray(x, dtype=jnp.float64)
    t = jnp.asarray(t, dtype=jnp.float64)
    one = jnp.ones_like(x)

    def in_x(s):
        return net(jnp.stack([s, t]))

    def first_x(s):
        return jax.jvp(in_x, (s,), (one,))[1]

    u_x, u_xx = jax.jvp(first_x, (x,), (one,))
    u, u_t = jax.jvp(lambda s: net(jnp.stack([x, s])), (t,), (jnp.ones_like(t),))
    return {"u": u, "u_t": u_t, "u_x": u_x, "u_xx": u_xx}


def ode_residual(model: Model, net: Callable, t, p):
    """``du/dt - f(t, u, p)`` at one time ``t``, ``u`` the network, ``f`` the model's
    right-hand side (:meth:`Model.vector_field`)."""
    u, du = time_derivative(net, t)
    return du - model.vector_field(t, u, p)


def pde_residual(residual: Callable, net: Callable, x, t, params):
    """The user's ``residual(derivs, x, t, params)`` at one point ``(x, t)``, with
    ``derivs`` from :func:`space_time_derivatives`; returned as a 1-D array."""
    return jnp.atleast_1d(residual(space_time_derivatives(net, x, t), x, t, params))
