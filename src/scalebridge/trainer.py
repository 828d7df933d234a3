"""The one trainer for everything that learns by gradient: PINNs, neural ODEs and hybrid
models (decision 0019).

A run is a first-order phase (any optax transformation; :class:`Adam` by default) followed
by an optional L-BFGS phase (``optax.lbfgs``: zoom line search under the strong Wolfe
conditions, so the curvature pairs stay valid; Liu & Nocedal 1989, "On the limited memory
BFGS method for large scale optimization", Math. Program. 45:503). Every step is one compiled
call, so checkpoints, progress, the per-term loss history and the NaN guard work step by
step and the optimiser state is saved with the rest.

The caller gives an **objective** ``objective(params, aux, phase) -> (total, terms)``:
``params`` the trained pytree of arrays, ``aux`` a pytree of arrays the objective reads
(collocation points, loss weights, mini-batch indices), ``phase`` ``"first"`` or
``"lbfgs"`` (static), ``total`` the scalar minimised and ``terms`` the vector of named loss
terms recorded in the history. The objective must be hashable with value equality (a
module-level function, or a frozen dataclass of static settings): it is a static argument
of the compiled steps, so training the same objective again does not recompile. An optional
``prepare(step, phase, params, aux, clock) -> aux`` runs on the host before each step (loss
balancing, new collocation points, a mini-batch); ``clock.call(fn, *args)`` times the first
call of a compiled helper as compile time.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ._console import Progress
from .errors import InputError, SerializationError, SimulationError
from .runtime.files import write_atomic

__all__ = ["Adam", "Optax", "LBFGS", "Checkpoint", "Static", "Trained", "evaluate", "train"]

_FORMAT = "scalebridge.checkpoint"
_VERSION = 1
_SYNC_EVERY = 100  # steps between host checks of the loss terms (JAX dispatches ahead)


@dataclass(frozen=True)
class Adam:
    """Adam (Kingma & Ba 2015) for ``steps`` steps with learning rate
    ``learning_rate * decay_rate ** (step / decay_steps)`` (``decay_rate=1``: constant)."""

    steps: int = 2000
    learning_rate: float = 1e-3
    decay_rate: float = 0.9
    decay_steps: int = 1000

    def transform(self) -> optax.GradientTransformation:
        return optax.adam(optax.exponential_decay(self.learning_rate, max(self.decay_steps, 1),
                                                  self.decay_rate))


@dataclass(frozen=True)
class Optax:
    """Any optax gradient transformation (``optax.adamw(1e-3)``, a ``chain``) for ``steps``
    steps. Reuse one object to reuse its compiled step. A checkpoint knows the optimiser
    only by ``name``: give each configuration its own name to keep checkpoints apart."""

    optimizer: optax.GradientTransformation
    steps: int
    name: str = "optax"

    def transform(self) -> optax.GradientTransformation:
        return self.optimizer


@dataclass(frozen=True)
class LBFGS:
    """``optax.lbfgs`` with ``memory`` stored pairs for up to ``steps`` steps. With
    ``restart_every``, the curvature memory is reset every that many steps. The phase stops
    early once the largest gradient component is at most ``gtol`` (0: never)."""

    steps: int = 500
    memory: int = 10
    restart_every: int | None = None
    gtol: float = 0.0


@dataclass(frozen=True)
class Checkpoint:
    """Save the training state to ``path`` every ``every`` steps (atomically), and resume
    from it when it exists and was made with the same settings."""

    path: str | Path
    every: int = 500


@dataclass
class Trained:
    """What :func:`train` returns: the trained ``params``, the final ``aux``, the loss terms
    of every step (``history``, shape ``(steps, n_terms)``, each row at the step's starting
    point), the number of steps taken and the compile and run seconds."""

    params: object
    aux: object
    history: np.ndarray
    steps: int
    compile_seconds: float
    run_seconds: float


@dataclass(frozen=True)
class Static:
    """A pytree of static values (functions, names, structure), hashed and compared by its
    structure and leaves, so an objective holding one is equal across calls with the same
    settings. ``Static.of(tree)``; ``.tree`` gives it back."""

    treedef: object
    leaves: tuple

    @classmethod
    def of(cls, tree) -> Static:
        leaves, treedef = jax.tree_util.tree_flatten(tree)
        return cls(treedef, tuple(leaves))

    @property
    def tree(self):
        return jax.tree_util.tree_unflatten(self.treedef, self.leaves)


class _Clock:
    """Compile time: the first call of each compiled function, run to completion."""

    def __init__(self):
        self.seconds = 0.0
        self._seen: set = set()

    def call(self, fn, *args):
        first = fn not in self._seen
        t = time.perf_counter()
        out = fn(*args)
        if first:
            jax.block_until_ready(out)
            self._seen.add(fn)
            self.seconds += time.perf_counter() - t
        return out


def _positive_int(name, v, minimum=1):
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {v!r}")


def _check_options(first, lbfgs, checkpoint):
    if first is not None:
        if not isinstance(first, (Adam, Optax)):
            raise InputError(f"the first-order phase must be Adam(...) or Optax(optimizer, "
                             f"steps), got {type(first).__name__}")
        _positive_int(f"{type(first).__name__.lower()}.steps", first.steps, 0)
        if isinstance(first, Adam) and not (np.isfinite(first.learning_rate)
                                            and first.learning_rate > 0):
            raise InputError(f"adam.learning_rate must be a positive number, got "
                             f"{first.learning_rate!r}")
    if lbfgs is not None:
        _positive_int("lbfgs.steps", lbfgs.steps, 0)
        _positive_int("lbfgs.memory", lbfgs.memory)
        if lbfgs.restart_every is not None:
            _positive_int("lbfgs.restart_every", lbfgs.restart_every)
        if not (np.isfinite(lbfgs.gtol) and lbfgs.gtol >= 0):
            raise InputError(f"lbfgs.gtol must be a number >= 0, got {lbfgs.gtol!r}")
    if checkpoint is not None:
        _positive_int("checkpoint.every", checkpoint.every)


def _strong(tree):
    """The same arrays without weak types, as the step functions return them (a weakly typed
    optimiser state would make the second call compile again)."""
    return jax.tree.map(lambda x: jnp.array(x, dtype=x.dtype), tree)


def _first_step(objective, first, params, opt_state, aux):
    (_, terms), g = jax.value_and_grad(lambda p: objective(p, aux, "first"),
                                       has_aux=True)(params)
    upd, opt_state = first.transform().update(g, opt_state, params)
    return optax.apply_updates(params, upd), opt_state, terms


def _lbfgs_step(objective, lbfgs, params, opt_state, aux):
    def total(p):
        return objective(p, aux, "lbfgs")[0]
    terms = objective(params, aux, "lbfgs")[1]
    value, g = optax.value_and_grad_from_state(total)(params, state=opt_state)
    upd, opt_state = optax.lbfgs(memory_size=lbfgs.memory).update(
        g, opt_state, params, value=value, grad=g, value_fn=total)
    gmax = jnp.max(jnp.asarray([0.0] + [jnp.max(jnp.abs(x), initial=0.0)
                                        for x in jax.tree_util.tree_leaves(g)]))
    return optax.apply_updates(params, upd), opt_state, terms, gmax


def _terms(objective, phase, params, aux):
    return objective(params, aux, phase)[1]


@functools.lru_cache(maxsize=8)
def _steps(options: tuple) -> dict:
    """The compiled steps for these XLA compiler options; the objective and the phase
    settings are static arguments, so jax keeps one program per objective and settings."""
    jit = functools.partial(jax.jit, static_argnums=(0, 1),
                            compiler_options=dict(options) or None)
    return {"first": jit(_first_step), "lbfgs": jit(_lbfgs_step), "terms": jit(_terms)}


def evaluate(objective, params, aux, *, phase: str = "lbfgs",
             compiler_options: dict | None = None) -> np.ndarray:
    """The objective's loss terms at ``params`` (compiled like the steps)."""
    steps = _steps(tuple(sorted((compiler_options or {}).items())))
    return np.asarray(steps["terms"](objective, phase, params, aux))


def train(objective: Callable, params, aux=None, *, first: Adam | Optax | None = Adam(),
          lbfgs: LBFGS | None = LBFGS(), names: Sequence[str] = ("loss",),
          prepare: Callable | None = None, checkpoint: Checkpoint | None = None,
          settings: dict | None = None, progress: Callable | None = None,
          callback: Callable | None = None, callback_every: int = 1,
          what: str = "training", hint: str = "lower the learning rate",
          compiler_options: dict | None = None) -> Trained:
    """Minimise ``objective`` from ``params``: ``first`` (an optax phase), then ``lbfgs``.

    ``names`` label the loss terms. ``checkpoint``: save and resume (``settings``, a JSON
    dict, must match the checkpoint's; the training state is the params, both optimiser
    states, ``aux`` and the step). ``progress``: a :class:`~scalebridge.Progress` (labelled
    with the phase) or any ``progress(done, total, **loss_terms)``. ``callback(step, terms,
    params)`` runs after the first and last step of each phase and every ``callback_every``
    steps.
    A NaN or infinite loss term raises :class:`~scalebridge.errors.SimulationError` naming
    it (``what`` and ``hint`` phrase the message), before any later checkpoint is written.
    ``compiler_options`` go to ``jax.jit``.
    """
    _check_options(first, lbfgs, checkpoint)
    _positive_int("callback_every", callback_every)
    names = tuple(names)
    aux = {} if aux is None else aux
    steps = _steps(tuple(sorted((compiler_options or {}).items())))
    n_first = first.steps if first is not None else 0
    total = n_first + (lbfgs.steps if lbfgs is not None else 0)
    lbfgs_opt = optax.lbfgs(memory_size=lbfgs.memory) if lbfgs is not None else None
    state = {"params": params,
             "first": _strong(first.transform().init(params)) if first is not None else (),
             "lbfgs": _strong(lbfgs_opt.init(params)) if lbfgs is not None else (),
             "aux": aux, "step": jnp.asarray(0)}
    key = dict(settings or {}, names=list(names),
               first=None if first is None else _describe(first),
               lbfgs=None if lbfgs is None else _describe(lbfgs))
    history: list[list[float]] = []
    ckpt_step = None
    if checkpoint is not None and Path(checkpoint.path).is_file():
        state, history = _load(checkpoint.path, state, key)
        ckpt_step = int(state["step"])

    clock = _Clock()
    pending: list = []  # loss terms of steps not yet checked on the host

    def flush(upto):
        """Check the pending steps' loss terms (up to step ``upto``) for NaN and append
        them to the history; the first bad step raises, before any later checkpoint."""
        if not pending:
            return
        vals = np.asarray(jnp.stack(pending))
        if vals.size != len(pending) * len(names):
            raise InputError(f"the objective returns {vals.size // len(pending)} loss terms "
                             f"but names= gives {len(names)} ({', '.join(names)}); name every "
                             f"term")
        vals = vals.reshape(len(pending), len(names))
        start = upto - len(pending)
        pending.clear()
        bad = np.flatnonzero(~np.all(np.isfinite(vals), axis=1))
        if bad.size:
            t = vals[bad[0]]
            terms = [f"{n} = {v}" for n, v in zip(names, t, strict=True) if not np.isfinite(v)]
            where = (f"the last good checkpoint (step {ckpt_step}) is kept at "
                     f"{checkpoint.path}" if ckpt_step is not None
                     else "no checkpoint was written")
            raise SimulationError(f"{what} stopped at step {start + bad[0]}: loss term "
                                  f"{', '.join(terms)}; {where}. {hint[:1].upper()}{hint[1:]}")
        history.extend(vals.tolist())

    t_r = time.perf_counter()
    step = int(state["step"])
    while step < total:
        p = state["params"]
        phase = "first" if step < n_first else "lbfgs"
        if prepare is not None:
            state["aux"] = prepare(step, phase, p, state["aux"], clock)
        if phase == "first":
            new_p, state["first"], t = clock.call(steps["first"], objective, first, p,
                                                  state["first"], state["aux"])
            gmax = None
        else:
            k = step - n_first
            if k == 0 or (lbfgs.restart_every and k % lbfgs.restart_every == 0):
                state["lbfgs"] = _strong(lbfgs_opt.init(p))
            new_p, state["lbfgs"], t, gmax = clock.call(steps["lbfgs"], objective, lbfgs, p,
                                                        state["lbfgs"], state["aux"])
        pending.append(t)
        state["params"] = new_p
        step += 1
        save = checkpoint is not None and (step % checkpoint.every == 0 or step == total)
        show = progress is not None and (progress.due(step, total) if isinstance(
            progress, Progress) else True)
        call = callback is not None and (step % callback_every == 0 or step in (
            1, n_first, n_first + 1, total))
        stop = gmax is not None and lbfgs.gtol > 0 and float(gmax) <= lbfgs.gtol
        if save or show or call or stop or len(pending) >= _SYNC_EVERY:
            flush(step)  # the loss values come to the host only here: steps run ahead
        if stop and not save and checkpoint is not None:
            save = True
        if save:
            state["step"] = jnp.asarray(step)
            _save(checkpoint.path, state, key, history)
            ckpt_step = step
        if show:
            if isinstance(progress, Progress):
                progress.label = ("adam" if isinstance(first, Adam) else "optax") \
                    if phase == "first" else "lbfgs"
            progress(step, total, **dict(zip(names, history[-1], strict=True)))
        if call:
            callback(step, dict(zip(names, history[-1], strict=True)), state["params"])
        if stop:
            if isinstance(progress, Progress):
                progress.note(f"  lbfgs stopped at step {step}: largest gradient component "
                           f"{float(gmax):.2e} <= gtol {lbfgs.gtol:g}")
            break
    flush(step)
    state["step"] = jnp.asarray(step)
    run_s = time.perf_counter() - t_r - clock.seconds
    hist = np.asarray(history, dtype=float).reshape(-1, len(names))
    return Trained(state["params"], state["aux"], hist, step, clock.seconds, run_s)


def _describe(option) -> dict:
    """A JSON description of a phase's settings, for checkpoint keys."""
    if isinstance(option, Optax):
        return {"kind": "Optax", "name": option.name, "steps": option.steps}
    return {"kind": type(option).__name__, **{k: getattr(option, k) for k in
                                              option.__dataclass_fields__}}


def _save(path, state, key, history):
    header = json.dumps({"format": _FORMAT, "version": _VERSION, "key": key,
                         "history": history}).encode()

    def write(fh):
        fh.write(len(header).to_bytes(8, "little"))
        fh.write(header)
        eqx.tree_serialise_leaves(fh, state)
    write_atomic(path, write)


def _load(path, like, key):
    try:
        with open(path, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            if n > os.fstat(fh.fileno()).st_size:
                raise ValueError("the header length exceeds the file")
            header = json.loads(fh.read(n))
            if not isinstance(header, dict) or not isinstance(header.get("history"), list) \
                    or header.get("format") != _FORMAT or header.get("version") != _VERSION:
                raise SerializationError(f"checkpoint {path} is not a scalebridge training "
                                         f"checkpoint of version {_VERSION}; delete it")
            if header["key"] != json.loads(json.dumps(key)):
                raise InputError(f"checkpoint {path} was made with other settings; delete it "
                                 f"or pass another checkpoint path to start afresh")
            state = eqx.tree_deserialise_leaves(fh, like)
    except (InputError, SerializationError):
        raise
    except Exception as exc:  # noqa: BLE001 - a truncated or foreign file, whatever breaks
        raise SerializationError(f"checkpoint {path} cannot be read ({type(exc).__name__}: "
                                 "damaged or truncated); delete it") from None
    return state, header["history"]
