"""Training of a PINN: Adam with exponential decay, then L-BFGS; every step one compiled
function.

Options are small strategy objects: :class:`Adam`, :class:`LBFGS`, :class:`GradNormBalance`
(loss weights from gradient norms, Wang, Teng & Perdikaris 2021, "Understanding and
mitigating gradient flow pathologies in physics-informed neural networks", SIAM J. Sci.
Comput. 43:A3055), :class:`Causal` (causal weights, Wang, Sankaran & Perdikaris 2022,
arXiv:2203.07404), :class:`RAR` (residual-based adaptive refinement, Lu et al. 2021,
"DeepXDE", SIAM Rev. 63:208) and :class:`Checkpoint`.

L-BFGS is ``optax.lbfgs`` (zoom line search, strong Wolfe conditions, so the curvature
pairs stay valid). Measured on one CPU core for the decay ODE (2 x 16 tanh, 64 points),
compile times were: ``optax.lbfgs`` step 4.4-4.8 s (with a backtracking line search 3.2 s),
``optimistix.LBFGS`` 4.0 s and ``optimistix.BFGS`` 4.8 s for a whole ``minimise``, an Adam
step 1.5 s; all reached a loss below 1e-7 in 300 iterations. The compile times are alike,
and optax's update is one step function like Adam's, so every step is one compiled call,
checkpoints, progress, the per-term history and the NaN check work step by step, and the
optimiser state serialises with the rest; optimistix runs its loop inside one call (and
``BFGS`` keeps a dense Hessian estimate). Loss weights, causal weights and collocation
points are held fixed during L-BFGS, whose line search needs one fixed objective.

Compiled steps are kept on the problem object, so training the same problem again with the
same settings and network layout does not recompile.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._console import progress
from ..errors import InputError, SerializationError, SimulationError
from ..io import write_atomic
from .losses import ODEProblem, PDEProblem, _Spec, causal_mse
from .networks import Network, network_from_dict, network_to_dict

__all__ = ["Adam", "LBFGS", "GradNormBalance", "Causal", "RAR", "Checkpoint", "PINNResult",
           "train_pinn"]

_FORMAT = "scalebridge.pinn-checkpoint"
_SYNC_EVERY = 100  # steps between host checks of the loss terms (JAX dispatches ahead)
_VERSION = 1


@dataclass(frozen=True)
class Adam:
    """Adam with learning rate ``learning_rate * decay_rate ** (step / decay_steps)``.
    ``residual_warmup``: the residual's weight ramps linearly from 0 over that many steps,
    so the network first follows the data and conditions (a curriculum; for stiff
    reactions a random network's residual is large and pulls the parameters away)."""

    steps: int = 2000
    learning_rate: float = 1e-3
    decay_rate: float = 0.9
    decay_steps: int = 1000
    residual_warmup: int = 0


@dataclass(frozen=True)
class LBFGS:
    """``optax.lbfgs`` with ``memory`` stored pairs, after Adam. With ``restart_every``,
    the curvature memory is reset every that many steps, and with ``resample`` the random
    collocation points are drawn afresh at each restart (a fixed set lets the network fit
    the points rather than the equation: on Burgers this halved the error at equal cost)."""

    steps: int = 500
    memory: int = 10
    restart_every: int | None = None
    resample: bool = False


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


@dataclass(frozen=True)
class Checkpoint:
    """Save the training state to ``path`` every ``every`` steps (atomically), and resume
    from it when it exists and was made with the same settings."""

    path: str | Path
    every: int = 500


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


def _positive_int(name, v, minimum=1):
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {v!r}")


def train_pinn(problem: ODEProblem | PDEProblem, *, network: Network | None = None,
               n_collocation: int = 256, points=None, adam: Adam = Adam(), lbfgs: LBFGS = LBFGS(),
               weights: dict[str, float] | None = None, balance: GradNormBalance | None = None,
               causal: Causal | None = None, rar: RAR | None = None,
               checkpoint: Checkpoint | None = None, seed: int = 0, verbose: bool = False,
               callback: Callable | None = None, callback_every: int = 1,
               compiler_options: dict | None = None) -> PINNResult:
    """Train a PINN for ``problem`` (Raissi, Perdikaris & Karniadakis 2019).

    ``network``: a :class:`Network` on the problem's domain (default: 3 x 32 tanh);
    ``n_collocation`` random collocation points (from ``seed``), or the given ``points``
    (shape ``(n, in_size)``, inside the domain); ``weights``: initial loss weights by term
    name (default 1). ``callback(step, losses, network, parameters)`` is called after the
    first and the last step of each phase and every ``callback_every`` steps (the losses
    are those of the step's starting point; the network and parameters are after it).
    ``compiler_options`` go to ``jax.jit`` (``{"xla_backend_optimization_level": 0}`` about
    halves the compile time of small networks and slows each step by about 1.6x).
    The same ``seed`` gives the same result, also across a checkpoint resume. A NaN or
    infinite loss term raises :class:`~scalebridge.errors.SimulationError` naming it.
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
    if causal is not None and spec.time_index is None:
        raise InputError("causal: the problem has no time coordinate; drop causal=")
    _positive_int("adam.steps", adam.steps, 0)
    _positive_int("lbfgs.steps", lbfgs.steps, 0)
    _positive_int("callback_every", callback_every)
    if lbfgs.restart_every is not None:
        _positive_int("lbfgs.restart_every", lbfgs.restart_every)
    if lbfgs.resample and (lbfgs.restart_every is None or points is not None):
        raise InputError("lbfgs.resample needs lbfgs.restart_every and random collocation "
                         "points (no points=)")
    for opt, name in ((balance, "balance.every"), (rar, "rar.every"),
                      (checkpoint, "checkpoint.every")):
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

    adam_opt = _adam_opt(adam)
    lbfgs_opt = optax.lbfgs(memory_size=lbfgs.memory)
    fixed = (spec, static)
    steps = _step_functions(fixed, adam, lbfgs, balance, causal, rar, compiler_options)

    state = {"params": params, "adam": _strong(adam_opt.init(params)),
             "lbfgs": _strong(lbfgs_opt.init(params)), "w": jnp.asarray(w0), "pts": pts,
             "mask": mask, "n_filled": jnp.asarray(n_collocation), "step": jnp.asarray(0)}
    settings = {"problem": spec.settings, "n_collocation": n_collocation, "adam": asdict(adam),
                "lbfgs": asdict(lbfgs), "weights": w0.tolist(), "seed": int(seed),
                "balance": balance and asdict(balance), "causal": causal and asdict(causal),
                "rar": rar and asdict(rar),
                "points": None if points is None else hashlib.sha1(points.tobytes()).hexdigest(),
                "n_params": int(sum(x.size for x in jax.tree_util.tree_leaves(params)))}
    history: list[list[float]] = []
    ckpt_step = None
    if checkpoint is not None and Path(checkpoint.path).is_file():
        state, history = _load(checkpoint.path, state, settings)
        ckpt_step = int(state["step"])

    compile_s = 0.0

    def timed(fn, *args):  # the first call of each step function compiles it
        nonlocal compile_s
        first = fn not in seen
        t = time.perf_counter()
        out = fn(*args)
        if first:
            jax.block_until_ready(out)
            seen.add(fn)
            compile_s += time.perf_counter() - t
        return out
    seen: set = set()

    pending: list = []  # loss terms of steps not yet checked on the host

    def flush(upto):
        """Check the pending steps' loss terms (up to step ``upto``) for NaN and append
        them to the history; the first bad step raises, before any later checkpoint."""
        if not pending:
            return
        vals = np.asarray(jnp.stack(pending))
        first = upto - len(pending)
        pending.clear()
        bad = np.flatnonzero(~np.all(np.isfinite(vals), axis=1))
        if bad.size:
            t = vals[bad[0]]
            terms = [f"{n} = {v}" for n, v in zip(names, t, strict=True) if not np.isfinite(v)]
            where = (f"the last good checkpoint (step {ckpt_step}) is kept at "
                     f"{checkpoint.path}" if ckpt_step is not None
                     else "no checkpoint was written")
            raise SimulationError(
                f"PINN training stopped at step {first + bad[0]}: loss term "
                f"{', '.join(terms)}; {where}. Lower the learning rate, rescale the problem or "
                f"check the model for values that overflow")
        history.extend(vals.tolist())

    t_r = time.perf_counter()
    total = adam.steps + lbfgs.steps
    step = int(state["step"])
    every = max(1, total // 10)
    while step < total:
        p = state["params"]
        if step < adam.steps:
            if balance is not None and step % balance.every == 0:
                state["w"] = timed(steps["balance"], p, state["w"],
                                   state["pts"], state["mask"])
            if rar is not None and step > 0 and step % rar.every == 0 and \
                    int(state["n_filled"]) + rar.add <= cap:
                state["pts"], state["mask"] = timed(
                    steps["rar"], p, state["pts"], state["mask"], state["n_filled"],
                    jax.random.fold_in(k_rar, step))
                state["n_filled"] = state["n_filled"] + rar.add
            w = state["w"]
            if step < adam.residual_warmup:
                w = w.at[0].multiply(step / adam.residual_warmup)
            new_p, state["adam"], t = timed(steps["adam"], p, state["adam"],
                                            w, state["pts"], state["mask"])
        else:
            k = step - adam.steps
            if k == 0 or (lbfgs.restart_every and k % lbfgs.restart_every == 0):
                if k > 0 and lbfgs.resample:
                    state["pts"] = state["pts"].at[:n_collocation].set(lo + (hi - lo) * (
                        jax.random.uniform(jax.random.fold_in(k_pts, step),
                                           (n_collocation, spec.in_size))))
                state["lbfgs"] = _strong(lbfgs_opt.init(p))
            new_p, state["lbfgs"], t = timed(steps["lbfgs"], p, state["lbfgs"],
                                             state["w"], state["pts"], state["mask"])
        pending.append(t)
        state["params"] = new_p
        step += 1
        save = checkpoint is not None and (step % checkpoint.every == 0 or step == total)
        show = verbose and (step == 1 or step % every == 0 or step == total)
        call = callback is not None and (step % callback_every == 0 or step in (
            1, adam.steps, adam.steps + 1, total))
        if save or show or call or len(pending) >= _SYNC_EVERY:
            flush(step)  # the loss values come to the host only here: steps run ahead
        if save:
            state["step"] = jnp.asarray(step)
            _save(checkpoint.path, state, settings, history)
            ckpt_step = step
        if show:
            phase = "adam" if step <= adam.steps else "lbfgs"
            progress(f"  {phase:5s} {step:6d}/{total}  " + "  ".join(
                f"{n} {v:.3e}" for n, v in zip(names, history[-1], strict=True)))
        if call:
            th = eqx.combine(state["params"], static)
            callback(step, dict(zip(names, history[-1], strict=True)), th["net"],
                     spec.linear(th["p"]))
    flush(step)
    state["step"] = jnp.asarray(step)
    run_s = time.perf_counter() - t_r - compile_s

    final = np.asarray(steps["terms"](state["params"], state["pts"], state["mask"]))
    th = eqx.combine(state["params"], static)
    hist = np.asarray(history, dtype=float).reshape(-1, len(names))
    return PINNResult(
        network=th["net"], parameters=spec.linear(th["p"]),
        losses=dict(zip(names, final.tolist(), strict=True)),
        history={n: hist[:, i] for i, n in enumerate(names)},
        weights=dict(zip(names, np.asarray(state["w"]).tolist(), strict=True)), steps=step,
        compile_seconds=compile_s, run_seconds=run_s,
        points=np.asarray(state["pts"])[np.asarray(state["mask"]) > 0])


def _strong(tree):
    """The same arrays without weak types, as the step functions return them (a weakly typed
    optimiser state would make the second call compile again)."""
    return jax.tree.map(lambda x: jnp.array(x, dtype=x.dtype), tree)


def _adam_opt(adam: Adam):
    schedule = optax.exponential_decay(adam.learning_rate, max(adam.decay_steps, 1),
                                       adam.decay_rate)
    return optax.adam(schedule)


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


def _step_functions(fixed, adam, lbfgs, balance, causal, rar, options) -> dict:
    """The jit-compiled step functions, kept on the problem's spec for these settings: a
    second training of the same problem with the same network layout does not recompile."""
    spec, static = fixed
    opts = tuple(sorted((options or {}).items()))
    key = (jax.tree_util.tree_structure(static), adam, lbfgs, balance, causal, rar, opts)
    if key not in spec.compiled:
        jit = partial(jax.jit, compiler_options=dict(opts) or None)
        spec.compiled[key] = {
            "adam": jit(partial(_adam_step, fixed, adam, causal)),
            "lbfgs": jit(partial(_lbfgs_step, fixed, lbfgs)),
            "balance": jit(partial(_balance_step, fixed, balance, causal)),
            "rar": jit(partial(_rar_step, fixed, rar)),
            "terms": jit(partial(_terms, fixed, None)),
        }
    return spec.compiled[key]


def _adam_step(fixed, adam, causal, params, state, w, pts, mask):
    def total(p):
        t = _terms(fixed, causal, p, pts, mask)
        return jnp.sum(w * t), t
    (_, t), g = jax.value_and_grad(total, has_aux=True)(params)
    upd, state = _adam_opt(adam).update(g, state, params)
    return optax.apply_updates(params, upd), state, t


def _lbfgs_step(fixed, lbfgs, params, state, w, pts, mask):
    def total(p):
        return jnp.sum(w * _terms(fixed, None, p, pts, mask))
    t = _terms(fixed, None, params, pts, mask)
    value, g = optax.value_and_grad_from_state(total)(params, state=state)
    upd, state = optax.lbfgs(memory_size=lbfgs.memory).update(
        g, state, params, value=value, grad=g, value_fn=total)
    return optax.apply_updates(params, upd), state, t


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


def _save(path, state, settings, history):
    header = json.dumps({"format": _FORMAT, "version": _VERSION, "key": settings,
                         "history": history}).encode()

    def write(fh):
        fh.write(len(header).to_bytes(8, "little"))
        fh.write(header)
        eqx.tree_serialise_leaves(fh, state)
    write_atomic(path, write)


def _load(path, like, settings):
    try:
        with open(path, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(n))
            if header.get("format") != _FORMAT or header.get("version") != _VERSION:
                raise SerializationError(f"checkpoint {path} is not a scalebridge PINN "
                                         f"checkpoint of version {_VERSION}; delete it")
            if header["key"] != json.loads(json.dumps(settings)):
                raise InputError(f"checkpoint {path} was made with other settings; delete it "
                                 f"or pass another checkpoint path to start afresh")
            state = eqx.tree_deserialise_leaves(fh, like)
    except (OSError, ValueError, KeyError) as exc:
        if isinstance(exc, (InputError, SerializationError)):
            raise
        raise SerializationError(f"checkpoint {path} cannot be read ({exc}); delete it") from exc
    return state, header["history"]
