"""Neural ODEs: a network as the right-hand side, trained through the ODE solver.

``NeuralODE`` learns ``dy/dt = NN(y)`` from trajectories (Chen et al. 2018, "Neural
ordinary differential equations", NeurIPS, arXiv:1806.07366). Training differentiates through
the engine's solve (:class:`~scalebridge.Simulator`, Tsit5; discretise-then-optimise,
checkpointed reverse mode) and has two phases:

1. Adam over mini-batches of time windows by **multiple shooting** (Bock & Plitt 1984;
   Turan & Jaeschke 2021, "Multiple shooting for training neural differential equations on
   time series", IEEE Control Syst. Lett., arXiv:2109.06786): each window starts from its
   own trainable state (initialised at the data), and a continuity penalty ties the end of
   window ``k`` to the start of window ``k + 1``. Short windows keep the loss landscape
   smooth, so training does not get trapped by the long-horizon dynamics.
2. L-BFGS (``optax.lbfgs``, 20 stored pairs) on whole trajectories (single shooting), all
   in float64, stopping early once the largest gradient component is below ``1e-10``.

Both phases run in the one trainer (:func:`scalebridge.trainer.train`), which also trains
:class:`~scalebridge.discover.hybrid.HybridModel` (a mechanistic model plus a network term, a
universal differential equation) through the same shooting code. ``to_model()`` returns a
:class:`~scalebridge.Model` whose right-hand side closes over the trained network, so it can
be simulated, fitted and coupled like a hand-written model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._console import Progress
from ..errors import InputError, SimulationError
from ..model.model import Model
from ..simulate import Simulator
from ..trainer import LBFGS, Adam, Static, evaluate, train

__all__ = ["NeuralODE", "Network", "ACTIVATIONS", "rbf"]


def rbf(x):
    """Gaussian radial basis activation ``exp(-x^2)`` (as in Rackauckas et al. 2020)."""
    return jnp.exp(-(x**2))


ACTIVATIONS: dict[str, Callable] = {
    "rbf": rbf, "tanh": jnp.tanh, "softplus": jax.nn.softplus, "gelu": jax.nn.gelu,
    "swish": jax.nn.swish, "relu": jax.nn.relu,
}


class Network(eqx.Module):
    """An MLP with fixed input standardisation and output scale:
    ``out_scale * mlp((y - shift) / scale)``. ``mlp`` holds the trained weights."""

    mlp: eqx.nn.MLP
    shift: jax.Array
    scale: jax.Array
    out_scale: jax.Array

    def __call__(self, y):
        return self.out_scale * self.mlp((y - self.shift) / self.scale)


def _apply(mlp, norm, y):
    shift, scale, out_scale = norm
    return out_scale * mlp((y - shift) / scale)


def plus_network(rhs: Callable, idx, net: Callable) -> Callable:
    """``rhs(t, y, p, u)`` with ``net(y)`` added to the states ``idx``."""
    def out(t, y, p, u):
        return jnp.asarray(rhs(t, y, p, u)).at[idx].add(net(y))

    return out


def _network_only(net: Callable) -> Callable:
    """``net(y)`` as a whole right-hand side ``(t, y, p, u)``."""
    def out(t, y, p, u):
        return net(y)

    return out


def _neural_field(theta, norm, model: Model):
    """The trained network as the whole right-hand side (the model has no parameters)."""
    return _network_only(lambda y: _apply(theta["mlp"], norm, y)), jnp.zeros(0)


def _no_rhs(t, y, p, u):  # the neural template's placeholder; training supplies the network
    return jnp.zeros_like(y)


# ----- data ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Data:
    times: tuple[np.ndarray, ...]   # one 1-D array per trajectory
    values: tuple[np.ndarray, ...]  # one (n_times, n_states) array per trajectory


def _trajectories(times, data, n_states: int | None, state_names) -> _Data:
    """Validate ``times``/``data``: one shared time grid with data (n_times, n) or
    (n_traj, n_times, n), or sequences of per-trajectory time grids and data."""
    if isinstance(times, (list, tuple)) and len(times) and np.ndim(times[0]) == 1:
        if not isinstance(data, (list, tuple)) or len(data) != len(times):
            raise InputError("times is a list of per-trajectory time grids, so data must be a "
                             f"list of as many arrays; got {type(data).__name__}")
        ts, ys = list(times), list(data)
    else:
        t = np.asarray(times, dtype=float)
        y = np.asarray(data, dtype=float)
        if y.ndim == 2:
            ts, ys = [t], [y]
        elif y.ndim == 3:
            ts, ys = [t] * y.shape[0], list(y)
        else:
            raise InputError(f"data has shape {y.shape}; expected (n_times, n_states) or "
                             "(n_trajectories, n_times, n_states)")
    out_t, out_y = [], []
    for k, (t, y) in enumerate(zip(ts, ys, strict=True)):
        t = np.asarray(t, dtype=float)
        y = np.asarray(y, dtype=float)
        where = f"trajectory {k}" if len(ts) > 1 else "data"
        if t.ndim != 1 or t.size < 2:
            raise InputError(f"{where}: times must be a 1-D array of at least 2 time points, "
                             f"got shape {t.shape}")
        if not np.all(np.isfinite(t)):
            raise InputError(f"{where}: times contain NaN or inf; give finite times")
        if not np.all(np.diff(t) > 0):
            i = int(np.argmax(~(np.diff(t) > 0)))
            raise InputError(f"{where}: times must increase strictly; times[{i}] = {t[i]} is "
                             f"followed by {t[i + 1]}. Sort the data by time and drop repeats")
        n = n_states if n_states is not None else (y.shape[1] if y.ndim == 2 else None)
        if y.ndim != 2 or y.shape != (t.size, n):
            names = f" for states {tuple(state_names)}" if state_names else ""
            raise InputError(f"{where}: data has shape {y.shape}, expected ({t.size}, {n}) "
                             f"(one row per time point, one column per state{names})")
        if not np.all(np.isfinite(y)):
            rows, cols = np.nonzero(~np.isfinite(y))
            raise InputError(f"{where}: data contain {rows.size} NaN/inf values (first at row "
                             f"{rows[0]}, column {cols[0]}); drop or impute them before fitting")
        out_t.append(t)
        out_y.append(y)
    if n_states is None and len({y.shape[1] for y in out_y}) != 1:
        raise InputError("all trajectories must have the same number of states (columns)")
    return _Data(tuple(out_t), tuple(out_y))


def _segments(d: _Data, window: int | None):
    """Split trajectories into windows of ``window`` intervals (padded to one length by
    repeating the last point, with mask 0). Returns arrays and the index of each window's
    successor in the same trajectory (-1 for the last one) and each trajectory's first window.
    """
    segs, nxt, first = [], [], []
    for j, t in enumerate(d.times):
        m = t.size
        w = m - 1 if window is None else min(int(window), m - 1)
        starts = list(range(0, m - 1, w))
        first.append(len(segs))
        for k, a in enumerate(starts):
            segs.append((j, a, min(a + w, m - 1)))
            nxt.append(len(segs) if k + 1 < len(starts) else -1)
    length = max(b - a for _, a, b in segs) + 1
    n = d.values[0].shape[1]
    ts = np.zeros((len(segs), length))
    ys = np.zeros((len(segs), length, n))
    mask = np.zeros((len(segs), length))
    for i, (j, a, b) in enumerate(segs):
        idx = np.minimum(np.arange(a, a + length), b)
        ts[i], ys[i] = d.times[j][idx], d.values[j][idx]
        mask[i, : b - a + 1] = 1.0
    return (jnp.asarray(ts), jnp.asarray(ys), jnp.asarray(mask), jnp.asarray(nxt),
            np.asarray(first))


# ----- the shared training loop --------------------------------------------------------------
@dataclass(frozen=True)
class _Config:
    window: int | None
    batch_size: int | None
    learning_rate: float
    adam_steps: int
    lbfgs_steps: int
    continuity: float
    weight_decay: float
    rtol: float
    atol: float
    max_steps: int
    seed: int
    verbose: bool
    gtol: float = 1e-10


class _Unravel(eqx.Module):
    """Flat vector -> pytree; hashable and equal for equal structures, so compiled steps are
    reused by later fits of the same shapes (unlike the closure of ``ravel_pytree``)."""

    treedef: object
    spec: tuple  # per leaf: (shape, dtype) of an array, or ("const", value)

    def __call__(self, flat):
        leaves, k = [], 0
        for sp in self.spec:
            if sp[0] == "const":
                leaves.append(sp[1])
            else:
                size = int(np.prod(sp[0]))
                leaves.append(flat[k:k + size].reshape(sp[0]).astype(sp[1]))
                k += size
        return jax.tree_util.tree_unflatten(self.treedef, leaves)


def _ravel(tree):
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    arrays = [x for x in leaves if eqx.is_inexact_array(x)]
    spec = tuple((tuple(x.shape), x.dtype) if eqx.is_inexact_array(x) else ("const", x)
                 for x in leaves)
    flat = jnp.concatenate([jnp.ravel(x) for x in arrays]) if arrays else jnp.zeros(0)
    return flat, _Unravel(treedef, spec)


class _Problem(eqx.Module):
    """Everything one loss evaluation needs. Arrays are traced (the simulator's included);
    everything else (``field``, the unravel spec, the options) is static."""

    field: Callable
    unravel: _Unravel
    consts: object
    sim: Simulator  # the engine, over the whole data span at one window's count of times
    ts: jax.Array
    ys: jax.Array
    mask: jax.Array
    nxt: jax.Array
    first: jax.Array
    y0: jax.Array | None
    scale: jax.Array
    options: tuple  # continuity, weight_decay


def _solve(prob: _Problem, theta, ts, y0):
    """One window through the engine: its model's right-hand side is ``field``'s at
    ``theta``, its output times ``ts`` (traced)."""
    rhs, p = prob.field(theta, prob.consts, prob.sim.model)
    sim = eqx.tree_at(lambda s: s.model, prob.sim, prob.sim.model.with_rhs(rhs)).at(ts)
    ys, _, ok = sim.solve(p, y0)
    return jnp.where(ok, ys, jnp.nan)


def _starts(prob: _Problem, theta):
    s = theta["s"]
    return s if prob.y0 is None else s.at[prob.first].set(prob.y0)


def _loss(x, prob: _Problem, idx):
    """Multiple-shooting loss of the windows ``idx``: the mean squared standardised misfit
    plus ``continuity`` times the mean squared gap between each window's end and the start
    state of the next window (plus optional weight decay)."""
    continuity, weight_decay = prob.options
    theta = prob.unravel(x)
    s = _starts(prob, theta)
    pred = jax.vmap(lambda t, y0: _solve(prob, theta, t, y0))(prob.ts[idx], s[idx])
    r = (pred - prob.ys[idx]) / prob.scale
    m = prob.mask[idx]
    fit = jnp.sum(m[..., None] * r**2) / (jnp.sum(m) * r.shape[-1])
    nxt = prob.nxt[idx]
    has = nxt >= 0
    gap = (pred[:, -1] - s[jnp.maximum(nxt, 0)]) / prob.scale
    cont = jnp.sum(has[:, None] * gap**2) / (jnp.maximum(jnp.sum(has), 1) * r.shape[-1])
    out = fit + continuity * cont
    if weight_decay:
        w = jax.tree_util.tree_leaves(eqx.filter(theta["mlp"], eqx.is_inexact_array))
        out = out + weight_decay * sum(jnp.sum(v**2) for v in w)
    return out


@dataclass(frozen=True)
class _Shooting:
    """The multiple-shooting loss as the trainer's objective: ``aux`` holds the problem's
    arrays and the indices of the windows of this step. Equal for equal static parts, so a
    later fit of the same shapes and options reuses the compiled steps."""

    static: Static  # the problem without its arrays

    def __call__(self, x, aux, phase):
        loss = _loss(x, eqx.combine(aux["prob"], self.static.tree), aux["idx"])
        return loss, loss[None]


def _train(field, consts, model: Model, theta0, data: _Data, y0_fixed, cfg: _Config):
    """Adam over mini-batches of multiple-shooting windows, then L-BFGS on whole
    trajectories, both by the one trainer (:func:`scalebridge.trainer.train`), every window
    solved by the engine (:class:`~scalebridge.Simulator`, Tsit5, checkpointed reverse
    mode). ``model`` gives the states, parameters and inputs; ``field(theta, consts, model)
    -> (rhs, p)`` its right-hand side and parameter vector at the trained values ``theta``,
    a module-level function so that compiled steps are reused across fits; ``theta`` a dict
    of trained pytrees (``theta["s"]``, the window start states, is added here). Returns the
    trained ``theta``, the trajectory start states, the loss history, the final loss and the
    training time (s)."""
    allv = np.concatenate(data.values)
    scale = jnp.asarray(np.maximum(allv.std(axis=0), 1e-12 * (1 + np.abs(allv).max())))
    history: list[tuple[str, float]] = []
    t0 = time.perf_counter()
    options = (cfg.continuity, cfg.weight_decay)
    span = (min(float(t[0]) for t in data.times), max(float(t[-1]) for t in data.times))
    theta, final = dict(theta0), np.nan
    meter = Progress(enabled=cfg.verbose)
    phases = [("adam", cfg.window)] if cfg.adam_steps else []
    if cfg.lbfgs_steps:
        phases.append(("lbfgs", None))
    hint = (f"the ODE solve failed or blew up: lower learning_rate (now {cfg.learning_rate}), "
            "use shorter windows (window=...), raise max_steps, or standardise the data")
    for phase, window in phases:
        ts, ys, mask, nxt, first = _segments(data, window)
        if "s" not in theta or theta["s"].shape != ys[:, 0].shape:
            theta["s"] = ys[:, 0]  # window starts begin at the data
        flat, unravel = _ravel(theta)
        sim = Simulator(model, np.linspace(*span, ts.shape[1]), t0=span[0],
                        solver=diffrax.Tsit5(), rtol=cfg.rtol, atol=cfg.atol,
                        max_steps=cfg.max_steps, sensitivities="adjoint")
        prob = _Problem(field, unravel, consts, sim, ts, ys, mask, nxt, jnp.asarray(first),
                        y0_fixed, scale, options)
        arrays, static = eqx.partition(prob, eqx.is_array)
        objective = _Shooting(Static.of(static))
        n_seg = ts.shape[0]
        every = jnp.arange(n_seg)
        batch = n_seg if cfg.batch_size is None or phase == "lbfgs" else \
            min(int(cfg.batch_size), n_seg)
        rng = np.random.default_rng(cfg.seed)

        def prepare(step, _phase, x, aux, clock, batch=batch, n_seg=n_seg, rng=rng):
            if batch == n_seg:
                return aux
            return {**aux, "idx": jnp.asarray(rng.choice(n_seg, batch, replace=False))}

        aux = {"prob": arrays, "idx": every[:batch]}
        if phase == "adam":
            opts = dict(first=Adam(cfg.adam_steps, cfg.learning_rate, decay_rate=1.0),
                        lbfgs=None)
        else:
            opts = dict(first=None, lbfgs=LBFGS(cfg.lbfgs_steps, memory=20, gtol=cfg.gtol))
        done = train(objective, flat, aux, prepare=prepare, progress=meter,
                     what=f"{model.name} training", hint=hint, **opts)
        history.extend((phase, float(v)) for v in done.history[:, 0])
        flat = done.params
        if phase == "lbfgs" or batch < n_seg or cfg.lbfgs_steps == 0:
            # the loss after the last step, on all windows
            final = float(evaluate(objective, flat, {"prob": arrays, "idx": every})[0])
            if not np.isfinite(final):
                raise SimulationError(f"{model.name} training: the loss after the last "
                                      f"{phase} step is {final}; {hint}")
        else:
            final = float(done.history[-1, 0])
        theta = unravel(flat)
        # the trajectory start states carry over to the next phase
        theta["s"] = _starts(prob, theta)[first]
    if "s" not in theta:
        theta["s"] = jnp.asarray(np.stack([y[0] for y in data.values]))
    if y0_fixed is not None:
        theta["s"] = jnp.broadcast_to(y0_fixed, theta["s"].shape)
    return theta, np.asarray(theta["s"]), history, final, time.perf_counter() - t0


# ----- estimators ----------------------------------------------------------------------------
def _check_int(name, v, low, allow_none=False):
    if v is None and allow_none:
        return
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
        raise InputError(f"{name} must be an integer >= {low}{' or None' if allow_none else ''}, "
                         f"got {v!r}")


class _NeuralBase:
    """Shared by :class:`NeuralODE` and the hybrid model: arguments, validation, training."""

    def _config(self) -> _Config:
        _check_int("window", self.window, 1, allow_none=True)
        _check_int("batch_size", self.batch_size, 1, allow_none=True)
        _check_int("adam_steps", self.adam_steps, 0)
        _check_int("lbfgs_steps", self.lbfgs_steps, 0)
        _check_int("max_steps", self.max_steps, 1)
        _check_int("seed", self.seed, 0)
        for name in ("learning_rate", "rtol", "atol"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and v > 0):
                raise InputError(f"{name} must be a positive number, got {v!r}")
        for name in ("continuity", "weight_decay"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and v >= 0):
                raise InputError(f"{name} must be a number >= 0, got {v!r}")
        if self.activation not in ACTIVATIONS and not callable(self.activation):
            raise InputError(f"activation {self.activation!r} is unknown; use one of "
                             f"{', '.join(ACTIVATIONS)} or a function")
        hidden = tuple(self.hidden) if isinstance(self.hidden, (list, tuple)) else ()
        if not hidden or any(isinstance(h, bool) or not isinstance(h, (int, np.integer))
                             or h < 1 for h in hidden):
            raise InputError(f"hidden must be a non-empty sequence of layer widths >= 1, "
                             f"got {self.hidden!r}")
        if len(set(hidden)) != 1:
            raise InputError(f"hidden layers must all have the same width, got {hidden}")
        return _Config(self.window, self.batch_size, float(self.learning_rate),
                       int(self.adam_steps), int(self.lbfgs_steps), float(self.continuity),
                       float(self.weight_decay), float(self.rtol), float(self.atol),
                       int(self.max_steps), int(self.seed), bool(self.verbose))

    def _mlp(self, n_in, n_out, data: _Data):
        act = ACTIVATIONS.get(self.activation, self.activation) if isinstance(
            self.activation, str) else self.activation
        key = jax.random.PRNGKey(int(self.seed))
        hidden = tuple(self.hidden)
        mlp = eqx.nn.MLP(n_in, n_out, hidden[0], len(hidden), activation=act,
                         key=key, dtype=jnp.float64)
        # the last layer starts small, so the untrained term barely perturbs the dynamics
        mlp = eqx.tree_at(lambda m: m.layers[-1].weight, mlp, mlp.layers[-1].weight * 0.1)
        allv = np.concatenate(data.values)
        shift = allv.mean(axis=0)
        scale = np.maximum(allv.std(axis=0), 1e-12 * (1 + np.abs(allv).max()))
        slopes = np.concatenate([np.gradient(y, t, axis=0)
                                 for t, y in zip(data.times, data.values, strict=True)])
        out = np.maximum(slopes.std(axis=0), 1e-12 * (1 + np.abs(slopes).max()))
        return mlp, (jnp.asarray(shift), jnp.asarray(scale), jnp.asarray(out))

    def _y0(self, y0, data: _Data, n):
        if y0 is None:
            return None
        arr = np.asarray(y0, dtype=float)
        if arr.ndim == 1:
            arr = np.broadcast_to(arr, (len(data.times), arr.size))
        if arr.shape != (len(data.times), n) or not np.all(np.isfinite(arr)):
            raise InputError(f"y0 has shape {arr.shape}, expected ({n},) or "
                             f"({len(data.times)}, {n}) finite values (one initial state per "
                             "trajectory); or None to fit the initial states")
        return jnp.asarray(arr)

    def _check_fitted(self):
        if not hasattr(self, "network_"):
            raise InputError(f"this {type(self).__name__} is not fitted yet; call fit first")

    # ----- the result protocol (shared part) -----
    _SETTINGS = ("states", "hidden", "activation", "window", "batch_size", "learning_rate",
                 "adam_steps", "lbfgs_steps", "continuity", "weight_decay", "rtol", "atol",
                 "max_steps", "seed", "name")

    def _fitted_dict(self) -> dict:
        """Settings, network weights and training record: the part of ``to_dict`` shared
        by neural and hybrid models."""
        from ..errors import SerializationError

        self._check_fitted()
        if not isinstance(self.activation, str):
            raise SerializationError("the activation is a Python function, which cannot be "
                                     "saved as data; train with a named activation ("
                                     f"{', '.join(ACTIVATIONS)})")
        settings = {k: getattr(self, k) for k in self._SETTINGS}
        settings["hidden"] = [int(h) for h in self.hidden]
        if settings["states"] is not None and not isinstance(settings["states"], str):
            settings["states"] = list(settings["states"])
        net = self.network_
        mlp = net.mlp
        return {"settings": settings,
                "network": {"in_size": int(mlp.in_size), "out_size": int(mlp.out_size),
                            "leaves": [np.asarray(x) for x in
                                       jax.tree_util.tree_leaves(eqx.filter(mlp, eqx.is_array))],
                            "shift": np.asarray(net.shift), "scale": np.asarray(net.scale),
                            "out_scale": np.asarray(net.out_scale)},
                "initial_states": np.asarray(self.initial_states_),
                "loss_phases": [p for p, _ in self.loss_history_],
                "loss_history": np.asarray([v for _, v in self.loss_history_], float),
                "loss": float(self.loss_), "train_time": float(self.train_time_)}

    def _set_fitted(self, d) -> None:
        """The inverse of :meth:`_fitted_dict` on an estimator made with its settings."""
        n = d["network"]
        hidden = tuple(self.hidden)
        mlp = eqx.nn.MLP(int(n["in_size"]), int(n["out_size"]), hidden[0], len(hidden),
                         activation=ACTIVATIONS[self.activation],
                         key=jax.random.PRNGKey(0), dtype=jnp.float64)
        arrays, rest = eqx.partition(mlp, eqx.is_array)
        leaves, treedef = jax.tree_util.tree_flatten(arrays)
        saved = [jnp.asarray(x) for x in n["leaves"]]
        if [x.shape for x in saved] != [x.shape for x in leaves]:
            raise InputError(f"saved network weights of shapes {[x.shape for x in saved]} do "
                             f"not match its architecture ({[x.shape for x in leaves]})")
        mlp = eqx.combine(jax.tree_util.tree_unflatten(treedef, saved), rest)
        self.network_ = Network(mlp,
                                jnp.asarray(n["shift"]), jnp.asarray(n["scale"]),
                                jnp.asarray(n["out_scale"]))
        self.initial_states_ = np.asarray(d["initial_states"], float)
        self.loss_history_ = list(zip(d["loss_phases"],
                                      np.asarray(d["loss_history"], float).tolist(),
                                      strict=True))
        self.loss_ = float(d["loss"])
        self.train_time_ = float(d["train_time"])

    def to_pandas(self):
        """The training record: one row per step, its ``phase`` and ``loss``."""
        import pandas as pd

        self._check_fitted()
        frame = pd.DataFrame(self.loss_history_, columns=["phase", "loss"])
        frame.index = pd.RangeIndex(1, len(frame) + 1, name="step")
        return frame

    def plot(self, ax=None):
        """The training loss against the step (log scale), each phase in its colour, into
        ``ax`` (a new figure if None); returns the axes."""
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(5.5, 3.5))
        frame = self.to_pandas()
        for phase, rows in frame.groupby("phase", sort=False):
            ax.plot(rows.index, rows["loss"], lw=1, label=phase)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.legend(fontsize=8)
        return ax

    def _states_matrix(self, X, n):
        X = np.asarray(X, dtype=float)
        if X.ndim == 1:
            X = X[None]
        if X.ndim != 2 or X.shape[1] != n:
            raise InputError(f"X has shape {X.shape}, expected (n_points, {n})")
        if not np.all(np.isfinite(X)):
            raise InputError("X contains NaN or inf; give finite states")
        return X


class NeuralODE(_NeuralBase):
    """A neural ODE ``dy/dt = NN(y)`` (Chen et al. 2018) trained by multiple shooting.

    ``hidden``: widths of the hidden layers (all equal); ``activation``: a name in
    :data:`ACTIVATIONS` or a function. Inputs are standardised by the data's mean and
    standard deviation and outputs scaled by the spread of the data's finite-difference
    slopes (fixed, not trained). Training: ``adam_steps`` Adam steps at ``learning_rate`` on
    mini-batches of ``batch_size`` windows of ``window`` time intervals (``None``: whole
    trajectories; all windows by default), with the ``continuity`` penalty weight, then up to
    ``lbfgs_steps`` L-BFGS steps on whole trajectories. ``weight_decay``: an L2 penalty on the
    network weights. The loss is the mean squared error of the data standardised per state.
    ``seed`` fixes the initial weights and the mini-batches; ``verbose`` prints progress.

    Learned attributes: ``network_`` (:class:`Network`, ``y -> dy/dt``), ``initial_states_``
    (one per trajectory: fitted, or the given ``y0``), ``loss_`` (final whole-trajectory
    loss), ``loss_history_`` (``(phase, loss)`` per step), ``train_time_`` (s).
    """

    def __init__(self, *, states: Sequence[str] | None = None, hidden: Sequence[int] = (32, 32),
                 activation: str | Callable = "tanh", window: int | None = 10,
                 batch_size: int | None = None, learning_rate: float = 1e-2,
                 adam_steps: int = 1000, lbfgs_steps: int = 200, continuity: float = 10.0,
                 weight_decay: float = 0.0, rtol: float = 1e-6, atol: float = 1e-8,
                 max_steps: int = 10_000, seed: int = 0, verbose: bool = False,
                 name: str = "neural_ode"):
        self.states = states
        self.hidden = hidden
        self.activation = activation
        self.window = window
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.adam_steps = adam_steps
        self.lbfgs_steps = lbfgs_steps
        self.continuity = continuity
        self.weight_decay = weight_decay
        self.rtol = rtol
        self.atol = atol
        self.max_steps = max_steps
        self.seed = seed
        self.verbose = verbose
        self.name = name

    def fit(self, times, data, *, y0=None) -> NeuralODE:
        """Train on trajectories. ``times``: a 1-D grid shared by ``data`` of shape
        ``(n_times, n_states)`` or ``(n_trajectories, n_times, n_states)``, or lists of
        per-trajectory grids and data. ``y0``: known initial states (``(n_states,)`` or one
        per trajectory); ``None`` fits them, starting from the first data point."""
        cfg = self._config()
        names = None if self.states is None else tuple(self.states)
        d = _trajectories(times, data, None if names is None else len(names), names)
        n = d.values[0].shape[1]
        self.state_names_ = names or tuple(f"x{i + 1}" for i in range(n))
        y0f = self._y0(y0, d, n)
        mlp, norm = self._mlp(n, n, d)

        template = Model(states=self.state_names_, parameters=[], rhs=_no_rhs,
                         initial=np.zeros(n), stiff=False, name=self.name)
        theta, s, hist, final, secs = _train(_neural_field, norm, template, {"mlp": mlp}, d,
                                             y0f, cfg)
        self.network_ = Network(theta["mlp"], *norm)
        self.initial_states_ = s
        self.loss_history_ = hist
        self.loss_ = final
        self.train_time_ = secs
        return self

    def to_dict(self) -> dict:
        """Settings, state names, network weights and training record."""
        return {**self._fitted_dict(), "state_names": list(self.state_names_)}

    @classmethod
    def from_dict(cls, d) -> NeuralODE:
        model = cls(**d["settings"])
        model._set_fitted(d)
        model.state_names_ = tuple(d["state_names"])
        return model

    def network_outputs(self, X) -> np.ndarray:
        """The learned ``dy/dt`` at the rows of ``X`` (n_points, n_states)."""
        self._check_fitted()
        X = self._states_matrix(X, len(self.state_names_))
        return np.asarray(jax.vmap(self.network_)(jnp.asarray(X)))

    def to_model(self, *, initial=None, name: str | None = None) -> Model:
        """A scalebridge :class:`~scalebridge.Model` with ``rhs = NN(y)`` and no parameters;
        initial state ``initial`` (default: the first trajectory's fitted initial state)."""
        self._check_fitted()
        net = self.network_
        y0 = self.initial_states_[0] if initial is None else initial
        return Model(states=self.state_names_, parameters=[],
                     rhs=_network_only(net), initial=[float(v) for v in np.ravel(y0)],
                     stiff=False, name=name or self.name,
                     citation="neural ODE (Chen et al. 2018) trained by scalebridge")

    def __repr__(self):
        return (f"NeuralODE(hidden={tuple(self.hidden)}, activation={self.activation!r}, "
                f"window={self.window}){' [fitted]' if hasattr(self, 'network_') else ''}")
