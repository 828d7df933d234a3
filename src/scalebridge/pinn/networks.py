"""Networks for physics-informed training: an MLP ``z -> u`` over a domain box.

- Inputs are scaled to ``[-1, 1]`` from the domain box ``[lower, upper]``.
- Optional Fourier-feature embedding ``[cos(2 pi B z), sin(2 pi B z)]`` with a fixed random
  ``B ~ N(0, sigma^2)`` (Tancik et al. 2020, "Fourier features let networks learn high
  frequency functions in low dimensional domains", NeurIPS, arXiv:2006.10739).
- Optional random weight factorisation ``W = diag(exp(s)) V`` (Wang et al. 2023, "An
  expert's guide to training physics-informed neural networks", arXiv:2308.08468; jaxpi).
- Output transforms: positivity (``softplus`` or ``exp``) with per-output scales, then a
  user function ``(z, u) -> u`` for hard constraints (Lagaris et al. 1998).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputError

__all__ = ["Network", "Stacked", "ACTIVATIONS", "network_to_dict", "network_from_dict"]

ACTIVATIONS: dict[str, Callable] = {"tanh": jnp.tanh, "sin": jnp.sin, "swish": jax.nn.swish}
_POSITIVE = {"softplus": jax.nn.softplus, "exp": jnp.exp}


class _Dense(eqx.Module):
    """A dense layer ``W z + b``; factorised as ``W = exp(s)[:, None] * V`` when ``s`` is
    given (the trained variables are then ``s``, ``V`` and ``b``)."""

    v: jax.Array
    b: jax.Array
    s: jax.Array | None

    def __call__(self, z):
        w = self.v if self.s is None else jnp.exp(self.s)[:, None] * self.v
        return w @ z + self.b


def _dense(n_in, n_out, key, factorised, mu=1.0, sigma=0.1):
    kw, ks = jax.random.split(key)
    w = jax.random.normal(kw, (n_out, n_in)) * jnp.sqrt(2.0 / (n_in + n_out))  # Glorot normal
    b = jnp.zeros(n_out)
    if not factorised:
        return _Dense(w, b, None)
    s = mu + sigma * jax.random.normal(ks, (n_out,))
    return _Dense(w / jnp.exp(s)[:, None], b, s)


class Network(eqx.Module):
    """A fully connected network ``u(z)`` for a PINN, ``z`` in the box ``[lower, upper]``.

    ``Network(in_size, out_size, lower=..., upper=..., key=...)`` with keyword options:
    ``width`` and ``depth`` (hidden layers), ``activation`` (``"tanh"``, ``"sin"``,
    ``"swish"``), ``fourier=(m, sigma)`` for ``m`` Fourier features of scale ``sigma``,
    ``factorised`` for random weight factorisation, ``positive`` (``"softplus"``/``"exp"``)
    and ``out_scale`` (one number or one per output), and ``output_transform(z, u) -> u``
    applied last (hard initial/boundary conditions). Called on one point ``z`` of shape
    ``(in_size,)``; returns shape ``(out_size,)``.
    """

    layers: tuple[_Dense, ...]
    fourier_b: jax.Array | None
    lower: tuple[float, ...] = eqx.field(static=True)
    upper: tuple[float, ...] = eqx.field(static=True)
    activation: str = eqx.field(static=True)
    positive: str | None = eqx.field(static=True)
    out_scale: tuple[float, ...] = eqx.field(static=True)
    output_transform: Callable | None = eqx.field(static=True)

    def __init__(self, in_size: int, out_size: int, *, lower: Sequence[float],
                 upper: Sequence[float], key, width: int = 32, depth: int = 3,
                 activation: str = "tanh", fourier: tuple[int, float] | None = None,
                 factorised: bool = False, positive: str | None = None,
                 out_scale: float | Sequence[float] = 1.0,
                 output_transform: Callable | None = None):
        lo = np.atleast_1d(np.asarray(lower, dtype=float))
        hi = np.atleast_1d(np.asarray(upper, dtype=float))
        if lo.shape != (in_size,) or hi.shape != (in_size,) or not np.all(hi > lo):
            raise InputError(f"Network: lower={lo.tolist()} and upper={hi.tolist()} must hold "
                             f"{in_size} numbers each with lower < upper; pass the domain box")
        if activation not in ACTIVATIONS:
            raise InputError(f"Network: activation={activation!r} is unknown; use one of "
                             f"{', '.join(ACTIVATIONS)}")
        if positive is not None and positive not in _POSITIVE:
            raise InputError(f"Network: positive={positive!r} is unknown; use None, "
                             f"'softplus' or 'exp'")
        if int(width) < 1 or int(depth) < 1:
            raise InputError(f"Network: width={width} and depth={depth} must be positive")
        scale = np.broadcast_to(np.asarray(out_scale, dtype=float), (out_size,))
        if not np.all(scale > 0):
            raise InputError(f"Network: out_scale={out_scale} must be positive")
        self.lower, self.upper = tuple(lo.tolist()), tuple(hi.tolist())
        self.activation, self.positive = activation, positive
        self.out_scale = tuple(scale.tolist())
        self.output_transform = output_transform
        kf, kl = jax.random.split(key)
        n_in = in_size
        if fourier is not None:
            m, sigma = int(fourier[0]), float(fourier[1])
            self.fourier_b = sigma * jax.random.normal(kf, (m, in_size))
            n_in = 2 * m
        else:
            self.fourier_b = None
        sizes = [n_in] + [int(width)] * int(depth) + [out_size]
        keys = jax.random.split(kl, len(sizes) - 1)
        self.layers = tuple(_dense(a, b, k, factorised)
                            for a, b, k in zip(sizes[:-1], sizes[1:], keys, strict=True))

    def raw(self, z):
        """The network output before the output transforms."""
        lo, hi = jnp.asarray(self.lower), jnp.asarray(self.upper)
        h = 2.0 * (z - lo) / (hi - lo) - 1.0
        if self.fourier_b is not None:
            bz = 2 * jnp.pi * jax.lax.stop_gradient(self.fourier_b) @ h  # B stays fixed
            h = jnp.concatenate([jnp.cos(bz), jnp.sin(bz)])
        act = ACTIVATIONS[self.activation]
        for layer in self.layers[:-1]:
            h = act(layer(h))
        return self.layers[-1](h)

    def __call__(self, z):
        z = jnp.asarray(z, dtype=jnp.float64)
        u = self.raw(z)
        if self.positive is not None:
            u = _POSITIVE[self.positive](u)
        u = jnp.asarray(self.out_scale) * u
        if self.output_transform is not None:
            u = jnp.asarray(self.output_transform(z, u))
        return u


class Stacked(eqx.Module):
    """Separate networks side by side, their outputs concatenated: e.g. one network for an
    activation time and a second for the conduction velocity (Sahli Costabal et al. 2020,
    "Physics-informed neural networks for cardiac activation mapping", Front. Phys. 8:42)."""

    networks: tuple[Network, ...]

    def __init__(self, *networks: Network):
        if not networks or not all(isinstance(n, Network) for n in networks):
            raise InputError("Stacked: give one or more Network objects")
        if len({(n.lower, n.upper) for n in networks}) != 1:
            raise InputError("Stacked: the networks must share one domain box (lower, upper)")
        self.networks = tuple(networks)

    def __call__(self, z):
        return jnp.concatenate([n(z) for n in self.networks])


def network_to_dict(net) -> dict:
    """A :class:`Network` or :class:`Stacked` as data: its architecture and weights (arrays);
    a network with an ``output_transform`` (a Python function) cannot be saved."""
    from ..errors import SerializationError

    if isinstance(net, Stacked):
        return {"kind": "stacked", "networks": [network_to_dict(n) for n in net.networks]}
    if not isinstance(net, Network):
        raise SerializationError(f"cannot save a network of type {type(net).__name__}; "
                                 "only scalebridge.pinn Network and Stacked are saved as data")
    if net.output_transform is not None:
        raise SerializationError("the network has an output_transform (a Python function), "
                                 "which cannot be saved as data; save its weights with "
                                 "equinox.tree_serialise_leaves and rebuild it in code")
    layers = net.layers
    return {"kind": "network", "in_size": len(net.lower), "out_size": len(net.out_scale),
            "lower": list(net.lower), "upper": list(net.upper),
            "width": int(layers[0].b.shape[0]), "depth": len(layers) - 1,
            "activation": net.activation, "positive": net.positive,
            "out_scale": list(net.out_scale), "factorised": layers[0].s is not None,
            "fourier": None if net.fourier_b is None else int(net.fourier_b.shape[0]),
            "leaves": [np.asarray(x) for x in jax.tree_util.tree_leaves(net)]}


def network_from_dict(d):
    """The network of :func:`network_to_dict`."""
    if d["kind"] == "stacked":
        return Stacked(*(network_from_dict(n) for n in d["networks"]))
    net = Network(int(d["in_size"]), int(d["out_size"]), lower=d["lower"], upper=d["upper"],
                  key=jax.random.PRNGKey(0), width=int(d["width"]), depth=int(d["depth"]),
                  activation=d["activation"],
                  fourier=None if d["fourier"] is None else (int(d["fourier"]), 1.0),
                  factorised=bool(d["factorised"]), positive=d["positive"],
                  out_scale=d["out_scale"])
    leaves, treedef = jax.tree_util.tree_flatten(net)
    saved = [jnp.asarray(x) for x in d["leaves"]]
    if [x.shape for x in saved] != [x.shape for x in leaves]:
        raise InputError("saved network weights do not match its architecture")
    return jax.tree_util.tree_unflatten(treedef, saved)
