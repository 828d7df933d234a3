"""Training of a PINN: Adam with exponential decay, then L-BFGS, by the one trainer
(:func:`scalebridge.trainer.train`; every step one compiled function).

PINN options are small strategy objects beside the trainer's :class:`Adam`, :class:`LBFGS`
and :class:`Checkpoint`: :class:`GradNormBalance` (loss weights from gradient norms, Wang,
Teng & Perdikaris 2021, "Understanding and mitigating gradient flow pathologies in
physics-informed neural networks", SIAM J. Sci. Comput. 43:A3055), :class:`Causal` (causal
weights, Wang, Sankaran & Perdikaris 2022, arXiv:2203.07404) and :class:`RAR`
(residual-based adaptive refinement, Lu et al. 2021, "DeepXDE", SIAM Rev. 63:208).

L-BFGS is ``optax.lbfgs`` (decision 0014: measured against optimistix, its compile time is
alike and its update is one step function like Adam's). Loss weights, causal weights and
collocation points are held fixed during L-BFGS, whose line search needs one fixed
objective. The compiled steps are cached by the objective (which holds the problem by
identity), so training the same problem again with the same settings does not recompile.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._console import Progress
from ..errors import InputError
from ..trainer import LBFGS, Adam, Checkpoint, Static, _positive_int, evaluate, train
from .losses import ODEProblem, PDEProblem, _Spec, causal_mse
from .networks import Network, network_from_dict, network_to_dict

__all__ = ["Adam", "LBFGS", "GradNormBalance", "Causal", "RAR", "Checkpoint", "PINNResult",
           "train_pinn"]


@dataclass(frozen=True)
class GradNormBalance:
    """Every ``every`` Adam steps, set weights ``l_i = sum_j |grad L_j| / |grad L_i|``
    (a moving average with factor ``alpha``)."""

    every: int = 100
    alpha: float = 0.9


@dataclass(frozen=True)
class Causal:
    """Causal weights ``exp(-eps * sum of earlier time-slice losses)`` over ``chunks``."""

    eps: float = 1.0
    chunks: int = 16


@dataclass(frozen=True)
class RAR:
    """Every ``every`` Adam steps, add the ``add`` points of largest residual out of
    ``candidates`` random ones to the collocation points."""

    every: int = 200
    candidates: int = 1000
    add: int = 10


@dataclass
class PINNResult:
    """A trained PINN: ``network`` (call it on one point, or :meth:`predict` on many),
    ``parameters`` (the estimated ones, linear scale), ``losses`` (final terms), ``history``
    (terms per step), ``weights`` (final loss weights), timings in seconds."""

    network: Network
    parameters: dict[str, float]
    losses: dict[str, float]
    history: dict[str, np.ndarray]
    weights: dict[str, float]
    steps: int
    compile_seconds: float
    run_seconds: float
    points: np.ndarray = field(repr=False)

    def predict(self, z) -> np.ndarray:
        """The network at points ``z`` of shape ``(n, in_size)`` (or ``(n,)`` for ODEs)."""
        z = jnp.asarray(z, dtype=jnp.float64)
        if z.ndim == 1:
            z = z[:, None]
        return np.asarray(_predict(self.network, z))

    # ----- the result protocol -----
    def to_dict(self) -> dict:
        """The network (architecture and weights), estimates, losses, history (arrays per
        term), weights, step count, timings and collocation points."""
        return {"network": network_to_dict(self.network), "parameters": dict(self.parameters),
                "losses": dict(self.losses),
                "history": {k: np.asarray(v) for k, v in self.history.items()},
                "weights": dict(self.weights), "steps": int(self.steps),
                "compile_seconds": float(self.compile_seconds),
                "run_seconds": float(self.run_seconds), "points": np.asarray(self.points)}

    @classmethod
    def from_dict(cls, d) -> PINNResult:
        return cls(network_from_dict(d["network"]), dict(d["parameters"]), dict(d["losses"]),
                   {k: np.asarray(v, float) for k, v in d["history"].items()},
                   dict(d["weights"]), int(d["steps"]), float(d["compile_seconds"]),
                   float(d["run_seconds"]), np.asarray(d["points"], float))

    def to_pandas(self):
        """The loss history: one row per step, one column per loss term."""
        import pandas as pd

        frame = pd.DataFrame({k: np.asarray(v) for k, v in self.history.items()})
        frame.index = pd.RangeIndex(1, len(frame) + 1, name="step")
        return frame

    def plot(self, ax=None):
        """The loss terms against the step (log scale) into ``ax`` (a new figure if None);
        returns the axes."""
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(5.5, 3.5))
        for k, v in self.history.items():
            ax.plot(np.arange(1, len(v) + 1), v, lw=1, label=k)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("loss term")
        ax.legend(fontsize=8)
        return ax


@eqx.filter_jit
def _predict(network, z):
    return jax.vmap(network)(z)


def train_pinn(problem: ODEProblem | PDEProblem, *, network: Network | None = None,
               n_collocation: int = 256, points=None, adam: Adam = Adam(), lbfgs: LBFGS = LBFGS(),
               weights: dict[str, float] | None = None, balance: GradNormBalance | None = None,
               causal: Causal | None = None, rar: RAR | None = None,
               residual_warmup: int = 0, resample: bool = False,
               checkpoint: Checkpoint | None = None, seed: int = 0, verbose: bool = False,
               callback: Callable | None = None, callback_every: int = 1,
               compiler_options: dict | None = None) -> PINNResult:
    """Train a PINN for ``problem`` (Raissi, Perdikaris & Karniadakis 2019).

    ``network``: a :class:`Network` on the problem's domain (default: 3 x 32 tanh);
    ``n_collocation`` random collocation points (from ``seed``), or the given ``points``
    (shape ``(n, in_size)``, inside the domain); ``weights``: initial loss weights by term
    name (default 1). ``residual_warmup``: the residual's weight ramps linearly from 0 over
    that many Adam steps, so the network first follows the data and conditions (a
    curriculum; for stiff reactions a random network's residual is large and pulls the
    parameters away). ``resample``: draw the random collocation points afresh at each
    L-BFGS restart (``lbfgs.restart_every``; a fixed set lets the network fit the points
    rather than the equation: on Burgers this halved the error at equal cost).
    ``callback(step, losses, network, parameters)`` is called after the first and the last
    step of each phase and every ``callback_every`` steps (the losses are those of the
    step's starting point; the network and parameters are after it). ``compiler_options``
    go to ``jax.jit`` (``{"xla_backend_optimization_level": 0}`` about halves the compile
    time of small networks and slows each step by about 1.6x). The same ``seed`` gives the
    same result, also across a checkpoint resume. A NaN or infinite loss term raises
    :class:`~scalebridge.errors.SimulationError` naming it.
    """
    if not isinstance(problem, (ODEProblem, PDEProblem)):
        raise InputError(f"train_pinn: problem must be an ODEProblem or PDEProblem, got "
                         f"{type(problem).__name__}")
    spec: _Spec = problem._spec()
    if points is not None:
        points = np.asarray(points, dtype=float).reshape(len(points), -1)
        if points.shape[1] != spec.in_size or not np.all(np.isfinite(points)) or \
                np.any(points < np.array(spec.lower) - 1e-12) or \
                np.any(points > np.array(spec.upper) + 1e-12):
            raise InputError(f"points: give collocation points of shape (n, {spec.in_size}) "
                             f"inside the domain {spec.lower} - {spec.upper}")
        n_collocation = len(points)
    _positive_int("n_collocation", n_collocation)
    _positive_int("residual_warmup", residual_warmup, 0)
    if causal is not None and spec.time_index is None:
        raise InputError("causal: the problem has no time coordinate; drop causal=")
    if resample and (lbfgs.restart_every is None or points is not None):
        raise InputError("resample needs lbfgs.restart_every and random collocation points "
                         "(no points=)")
    for opt, name in ((balance, "balance.every"), (rar, "rar.every")):
        if opt is not None:
            _positive_int(name, opt.every)
    names = spec.term_names
    w0 = np.ones(len(names))
    for k, v in (weights or {}).items():
        if k not in names:
            raise InputError(f"weights: {k!r} is not a loss term of this problem (terms: "
                             f"{', '.join(names)}); fix the name")
        w0[names.index(k)] = float(v)
    key = jax.random.PRNGKey(seed)
    k_net, k_pts, k_rar = jax.random.split(key, 3)
    if network is None:
        network = Network(spec.in_size, spec.out_size, lower=spec.lower, upper=spec.upper,
                          key=k_net)
    try:
        out = jax.eval_shape(network, jax.ShapeDtypeStruct((spec.in_size,), jnp.float64))
    except Exception as exc:  # the user's network or output transform failed
        raise InputError(f"network: calling it on a point of shape ({spec.in_size},) failed "
                         f"with {type(exc).__name__}: {exc}") from exc
    if out.shape != (spec.out_size,):
        raise InputError(f"network: returns shape {out.shape} for one point, the problem needs "
                         f"({spec.out_size},); build it as Network({spec.in_size}, "
                         f"{spec.out_size}, ...)")
    lo, hi = jnp.asarray(spec.lower), jnp.asarray(spec.upper)
    theta0 = {"net": network, "p": jnp.asarray(spec.est_init, dtype=jnp.float64)}
    params, static = eqx.partition(theta0, eqx.is_inexact_array)

    n_rar = len(range(rar.every, adam.steps, rar.every)) if rar is not None else 0
    cap = n_collocation + (rar.add * n_rar if rar is not None else 0)
    first = (lo + (hi - lo) * jax.random.uniform(k_pts, (n_collocation, spec.in_size))
             if points is None else jnp.asarray(points))
    pts = jnp.zeros((cap, spec.in_size)).at[:n_collocation].set(first)
    mask = (jnp.arange(cap) < n_collocation).astype(jnp.float64)
    aux = {"w": jnp.asarray(w0), "pts": pts, "mask": mask,
           "n_filled": jnp.asarray(n_collocation),
           "ramp": jnp.asarray(0.0 if residual_warmup else 1.0, dtype=jnp.float64)}
    objective = _cached(spec, ("objective", Static.of(static), causal),
                        lambda: _Objective(spec, static, causal))
    helpers = _cached(spec, ("helpers", Static.of(static), balance, causal, rar,
                             tuple(sorted((compiler_options or {}).items()))),
                      lambda: _helpers(spec, static, balance, causal, rar, compiler_options))

    def prepare(step, phase, p, aux, clock):
        aux = dict(aux)
        if phase == "first":
            if balance is not None and step % balance.every == 0:
                aux["w"] = clock.call(helpers["balance"], p, aux["w"], aux["pts"], aux["mask"])
            if rar is not None and step > 0 and step % rar.every == 0 and \
                    int(aux["n_filled"]) + rar.add <= cap:
                aux["pts"], aux["mask"] = clock.call(
                    helpers["rar"], p, aux["pts"], aux["mask"], aux["n_filled"],
                    jax.random.fold_in(k_rar, step))
                aux["n_filled"] = aux["n_filled"] + rar.add
            if residual_warmup:
                aux["ramp"] = jnp.asarray(min(step / residual_warmup, 1.0), dtype=jnp.float64)
        else:
            k = step - adam.steps
            if resample and k > 0 and k % lbfgs.restart_every == 0:
                aux["pts"] = aux["pts"].at[:n_collocation].set(lo + (hi - lo) * (
                    jax.random.uniform(jax.random.fold_in(k_pts, step),
                                       (n_collocation, spec.in_size))))
        return aux

    settings = {"problem": spec.settings, "n_collocation": n_collocation, "weights": w0.tolist(),
                "seed": int(seed), "balance": balance and asdict(balance),
                "causal": causal and asdict(causal), "rar": rar and asdict(rar),
                "residual_warmup": int(residual_warmup), "resample": bool(resample),
                "points": None if points is None else hashlib.sha1(points.tobytes()).hexdigest(),
                "n_params": int(sum(x.size for x in jax.tree_util.tree_leaves(params)))}

    def report(step, terms, p):
        th = eqx.combine(p, static)
        callback(step, terms, th["net"], spec.linear(th["p"]))

    done = train(objective, params, aux, first=adam, lbfgs=lbfgs, names=names,
                 prepare=prepare, checkpoint=checkpoint, settings=settings,
                 progress=Progress(enabled=verbose),
                 callback=None if callback is None else report, callback_every=callback_every,
                 what="PINN training",
                 hint="lower the learning rate, rescale the problem or check the model for "
                      "values that overflow", compiler_options=compiler_options)
    final = evaluate(objective, done.params, done.aux, compiler_options=compiler_options)
    th = eqx.combine(done.params, static)
    return PINNResult(
        network=th["net"], parameters=spec.linear(th["p"]),
        losses=dict(zip(names, final.tolist(), strict=True)),
        history={n: done.history[:, i] for i, n in enumerate(names)},
        weights=dict(zip(names, np.asarray(done.aux["w"]).tolist(), strict=True)),
        steps=done.steps, compile_seconds=done.compile_seconds, run_seconds=done.run_seconds,
        points=np.asarray(done.aux["pts"])[np.asarray(done.aux["mask"]) > 0])


def _terms(fixed, causal, params, pts, mask):
    """The loss terms (residual first) at ``params``; causal weights when ``causal``."""
    spec, static = fixed
    th = eqx.combine(params, static)
    net, q = th["net"], spec.resolve(th["p"])
    r = jax.vmap(lambda z: spec.residual(net, q, z))(pts)
    r2 = jnp.sum(r**2, axis=1)
    ti = spec.time_index
    if causal is not None:
        res, _ = causal_mse(r2, pts[:, ti], mask, spec.lower[ti], spec.upper[ti],
                            causal.eps, causal.chunks)
    else:
        res, _ = causal_mse(r2, None, mask, 0.0, 1.0, None, 1)
    return jnp.stack([res] + [fn(net, q) for _, fn in spec.terms])


@dataclass(frozen=True, eq=False)  # hashed by identity: one per problem, network and causal
class _Objective:
    """The PINN loss for the trainer: the weighted sum of the loss terms. Adam sees the
    causal residual and the warm-up ramp on the residual's weight; L-BFGS the plain terms."""

    spec: _Spec
    static: object
    causal: Causal | None

    def __call__(self, params, aux, phase):
        fixed = (self.spec, self.static)
        if phase == "first":
            t = _terms(fixed, self.causal, params, aux["pts"], aux["mask"])
            w = aux["w"].at[0].multiply(aux["ramp"])
        else:
            t = _terms(fixed, None, params, aux["pts"], aux["mask"])
            w = aux["w"]
        return jnp.sum(w * t), t


def _cached(spec: _Spec, key, build):
    """Kept on the problem's spec: a second training of the same problem and network layout
    reuses the objective (so the trainer's compiled steps) and the compiled helpers."""
    if key not in spec.compiled:
        spec.compiled[key] = build()
    return spec.compiled[key]


def _helpers(spec, static, balance, causal, rar, options) -> dict:
    """The compiled loss balancing and refinement steps."""
    fixed = (spec, static)
    jit = partial(jax.jit, compiler_options=options or None)
    return {"balance": jit(partial(_balance_step, fixed, balance, causal)),
            "rar": jit(partial(_rar_step, fixed, rar))}


def _balance_step(fixed, balance, causal, params, w, pts, mask):
    jac = jax.jacrev(lambda p: _terms(fixed, causal, p, pts, mask))(params)
    sq = sum(jnp.sum(leaf.reshape(w.size, -1) ** 2, axis=1)
             for leaf in jax.tree_util.tree_leaves(jac))
    g = jnp.sqrt(sq)
    new = jnp.where(g > 0, jnp.sum(g) / jnp.maximum(g, 1e-30), w)
    return balance.alpha * w + (1 - balance.alpha) * new


def _rar_step(fixed, rar, params, pts, mask, n_filled, key):
    spec, static = fixed
    th = eqx.combine(params, static)
    net, q = th["net"], spec.resolve(th["p"])
    lo, hi = jnp.asarray(spec.lower), jnp.asarray(spec.upper)
    cand = lo + (hi - lo) * jax.random.uniform(key, (rar.candidates, spec.in_size))
    r = jax.vmap(lambda z: spec.residual(net, q, z))(cand)
    _, idx = jax.lax.top_k(jnp.sum(r**2, axis=1), rar.add)
    pts = jax.lax.dynamic_update_slice(pts, cand[idx], (n_filled, 0))
    mask = jax.lax.dynamic_update_slice(mask, jnp.ones(rar.add), (n_filled,))
    return pts, mask
