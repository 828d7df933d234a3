"""Residuals of the physics, with derivatives of the network by forward mode.

A PINN (Raissi, Perdikaris & Karniadakis 2019, "Physics-informed neural networks", J.
Comput. Phys. 378:686-707) penalises the residual of the governing equations at collocation
points. Derivatives in the inputs (time and one or two space coordinates) are taken by
forward mode (``jax.jvp``, nested for second derivatives): with a few input directions this
costs a small multiple of one network evaluation, where nested reverse mode would build and
differentiate a backward pass per point.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp

from ..errors import InputError
from ..model.model import Model

__all__ = ["time_derivative", "derivatives", "ode_residual", "pde_residual",
           "reaction_diffusion_residual"]


def time_derivative(net: Callable, t):
    """``(u(t), du/dt)`` of a network of one input ``t`` (a scalar), by ``jax.jvp``."""
    t = jnp.asarray(t, dtype=jnp.float64)
    return jax.jvp(lambda s: net(jnp.reshape(s, (1,))), (t,), (jnp.ones_like(t),))


def derivatives(net: Callable, z, coords: Sequence[str]) -> dict:
    """The network and its derivatives at one point ``z`` whose components are named
    ``coords`` (e.g. ``("x", "t")`` or ``("x", "y")``): ``u``, ``u_<c>`` for every
    coordinate, ``u_<c><c>`` for the space coordinates (all but ``"t"``), each of shape
    ``(out_size,)``, and the coordinates themselves by name. First derivatives are one
    ``jax.jvp`` each; second derivatives a ``jvp`` of a ``jvp``.
    """
    z = jnp.asarray(z, dtype=jnp.float64)
    out = {c: z[i] for i, c in enumerate(coords)}

    def along(i):
        e = jnp.zeros_like(z).at[i].set(1.0)
        return lambda s: net(z + s * e)

    zero = jnp.zeros((), dtype=z.dtype)
    one = jnp.ones((), dtype=z.dtype)
    for i, c in enumerate(coords):
        f = along(i)
        if c == "t":
            out["u"], out["u_t"] = jax.jvp(f, (zero,), (one,))
            continue

        def first(s, f=f):
            return jax.jvp(f, (s,), (one,))[1]
        out[f"u_{c}"], out[f"u_{c}{c}"] = jax.jvp(first, (zero,), (one,))
    if "u" not in out:
        out["u"] = net(z)
    return out


def ode_residual(model: Model, net: Callable, t, p):
    """``du/dt - f(t, u, p)`` at one time ``t``, ``u`` the network, ``f`` the model's
    right-hand side (:meth:`Model.vector_field`)."""
    u, du = time_derivative(net, t)
    return du - model.vector_field(t, u, p)


def pde_residual(residual: Callable, net: Callable, z, coords: Sequence[str], params):
    """The user's ``residual(d, params)`` at one point ``z``, with ``d`` from
    :func:`derivatives`; returned as a 1-D array."""
    return jnp.atleast_1d(residual(derivatives(net, z, coords), params))


def reaction_diffusion_residual(cell: Model, diffusion: Mapping[str, str]) -> Callable:
    """The residual ``u_t - D lap(u) - f(u, p)`` of a reaction-diffusion PDE whose reaction
    is the right-hand side ``f`` of ``cell`` (the same model the PDE layer puts at every
    node, :func:`scalebridge.pde.reaction_diffusion`), for a :class:`PDEProblem` whose
    outputs are the cell's states in order.

    ``diffusion``: ``{state: name of its diffusivity parameter}``. The returned
    ``residual(d, params)`` reads the cell's parameters and the diffusivities by name from
    ``params``. The cell's inputs (stimuli) are held at zero: excitation comes from the
    initial condition or the data.
    """
    if not isinstance(cell, Model):
        raise InputError(f"reaction_diffusion_residual: cell must be a scalebridge Model, got "
                         f"{type(cell).__name__}")
    unknown = [s for s in diffusion if s not in cell.state_names]
    if unknown or not diffusion:
        raise InputError(f"diffusion: {unknown or 'nothing'} given; name states of model "
                         f"{cell.name!r} ({', '.join(cell.state_names)}) with their "
                         f"diffusivity parameters, e.g. {{'{cell.state_names[0]}': 'D'}}")
    idx = [cell.state_index(s) for s in diffusion]
    d_names = list(diffusion.values())
    names = cell.parameter_names
    n_in = len(cell.inputs)

    def residual(d, params):
        p = jnp.stack([jnp.asarray(params[n], dtype=jnp.float64) for n in names])
        lap = sum(d[k] for k in ("u_xx", "u_yy") if k in d)
        diff = jnp.zeros_like(d["u"]).at[jnp.asarray(idx)].set(
            jnp.stack([params[n] for n in d_names]) * lap[jnp.asarray(idx)])
        t = d.get("t", jnp.float64(0.0))
        return d["u_t"] - diff - jnp.asarray(cell.rhs(t, d["u"], p, jnp.zeros(n_in)))
    return residual
