"""Learned cell surrogates: a low-dimensional gated model of an excitable cell, learned from
simulations of the full cell model, that runs wherever the cell model runs (in particular at
every node of a tissue, :func:`scalebridge.pde.monodomain`).

The surrogate is a hybrid model: the mechanistic structure of a Hodgkin-Huxley-type
membrane with a few gates, and learned functions of the membrane potential ``V``::

    dV/dt = -F0(V) - sum_k F_k(V) z_k - sum_(k,l) F_kl(V) z_k z_l + g I_stim
    dz_k/dt = A_k(V) - B_k(V) z_k                     (k = 1 .. K, K = 1 .. 4)

Each latent ``z_k`` is a product of the full model's gates. Beeler-Reuter's default keeps
``h j`` (sodium availability), ``d``, ``f`` (the calcium current, whose ``d f`` is the one
pair) and ``x1``, and drops ``m`` and ``[Ca]_i``: 5 states for 8. The functions ``F``,
``A``, ``B`` are tables on a fine ``V`` grid with linear interpolation (the look-up tables
of production cardiac solvers), learned by penalised least squares on the full model's own
derivatives at states sampled from cell and tissue simulations: a regression without
trajectory fitting, so training takes seconds once the states are simulated. ``g`` is the
full model's d(dV/dt)/d(I_stim). Where a latent is a true gate of the full model (``d``,
``f``, ``x1``) the regression recovers its rates; where it is not (``h j``, and the current
with ``m`` at quasi-steady state) it finds the best gated approximation over the data.

Why it is cheaper: fewer states, one table look-up per node and step instead of some twenty
exponentials, and no fast ``m`` gate, whose effect the regression folds into ``F_h(V)``.
Its gates are linear in themselves, so Rush-Larsen integrates them exactly for frozen
``V``.

The construction follows the reduction of detailed ionic models to few-variable models
(Fenton & Karma 1998, Chaos 8:20; Bueno-Orovio, Cherry & Fenton 2008, J Theor Biol
253:544), with the functions learned from data instead of chosen by hand; running a
learned cell model inside the tissue solver follows Regazzoni, Dede & Quarteroni (2020,
Biomech Model Mechanobiol 19:1305).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..errors import InputError
from ..model.model import Model
from .surrogate_base import SurrogateBase, stimulus_gain

__all__ = ["CellSurrogate", "train_cell_surrogate", "DEFAULT_LATENTS", "DEFAULT_PAIRS"]

#: The latents (products of the full model's gates) used by default for zoo cell models.
DEFAULT_LATENTS: dict[str, dict[str, tuple[str, ...]]] = {
    "beeler_reuter": {"h": ("h", "j"), "d": ("d",), "f": ("f",), "x1": ("x1",)},
}
#: Latent pairs whose product carries current, by default (the calcium current's ``d f``).
DEFAULT_PAIRS: dict[str, tuple[tuple[str, str], ...]] = {"beeler_reuter": (("d", "f"),)}


@dataclass(frozen=True, eq=False)
class CellSurrogate(SurrogateBase):
    """A learned gated cell model (see the module docstring).

    ``v``: the ``V`` grid of the tables; ``tables``: ``(len(v), 1 + 3K + P)`` values of
    ``F0, F1..FK, A1..AK, B1..BK`` and the ``F_kl`` of the ``P`` latent pairs in ``pairs``
    (indices into the latents; a current carried by two gates, ``d f`` of a calcium
    current, say); ``latents``: ``{name: (full-model states multiplied)}``;
    ``gain``: ``g``; ``rest``: the resting state ``(V, z1..zK)``; ``ranges``:
    ``{name: (low, high)}`` of each state (and of the local current ``I_local``, stimulus
    plus diffusion, in ``V`` per time units) over the training data; ``trained_for``: the
    full model's name; ``recommended_dt``: the largest step (model time units) at which the
    surrogate was checked to keep its conduction velocity within 1%; ``meta``: free JSON
    metadata (training protocol, fit errors).
    """

    v: np.ndarray
    tables: np.ndarray
    latents: Mapping[str, tuple[str, ...]]
    gain: float
    rest: np.ndarray
    ranges: Mapping[str, tuple[float, float]]
    trained_for: str
    pairs: tuple[tuple[int, int], ...] = ()
    voltage: str = "V"
    stimulus_input: str = "I_stim"
    recommended_dt: float = 0.01
    meta: Mapping = field(default_factory=dict)
    family = "gated"

    @property
    def state_names(self) -> tuple[str, ...]:
        return (self.voltage, *self.latents)

    @property
    def n_latents(self) -> int:
        return len(self.latents)

    # ----- the model ------------------------------------------------------------------
    def functions(self, v):
        """``(F (K+1,), A (K,), B (K,), F_pairs (P,))`` at potential ``v`` (a scalar;
        JAX-traceable)."""
        grid = self.v
        v0, dv, n = float(grid[0]), float(grid[1] - grid[0]), len(grid)
        # one gather of [value, slope] rows: half the cost of gathering two rows on CPU
        table = jnp.asarray(np.concatenate([self.tables[:-1], np.diff(self.tables, axis=0)], 1))
        s = jnp.clip((v - v0) / dv, 0.0, n - 1.000001)
        i = s.astype(jnp.int32)  # s >= 0: truncation is the floor
        both = table[i]
        m = self.tables.shape[1]
        row = both[:m] + (s - i) * both[m:]
        k = self.n_latents
        return row[:k + 1], row[k + 1:2 * k + 1], row[2 * k + 1:3 * k + 1], row[3 * k + 1:]

    def rhs(self, t, y, p, u):
        """The surrogate's right-hand side ``(t, y, p, u) -> dy/dt``."""
        F, A, B, Fp = self.functions(y[0])
        z = y[1:]
        current = F[0] + jnp.dot(F[1:], z)
        for n, (a, b) in enumerate(self.pairs):
            current = current + Fp[n] * z[a] * z[b]
        dv = -current + self.gain * u[0]
        return jnp.concatenate([dv[None], A - B * z])

    def _initial(self):
        return self.rest

    def _gates(self):
        return tuple(self.latents)

    def _arrays(self) -> dict:
        return {"v": self.v, "tables": self.tables, "rest": self.rest}

    def _fields(self) -> dict:
        return {"latents": {k: list(v) for k, v in self.latents.items()}, "gain": self.gain,
                "pairs": [list(q) for q in self.pairs]}

    @classmethod
    def _from_file(cls, arrays, meta, common):
        latents = {k: tuple(v) for k, v in meta["latents"].items()}
        sur = cls(v=np.asarray(arrays["v"], float), tables=np.asarray(arrays["tables"], float),
                  latents=latents, gain=float(meta["gain"]),
                  rest=np.asarray(arrays["rest"], float),
                  pairs=tuple((int(a), int(b)) for a, b in meta.get("pairs", [])), **common)
        k = len(latents)
        if (sur.tables.shape != (len(sur.v), 1 + 3 * k + len(sur.pairs))
                or sur.rest.shape != (1 + k,)):
            raise ValueError(f"table shapes {sur.tables.shape}, {sur.rest.shape} do not match "
                             f"{k} latents")
        return sur


# ----- training ---------------------------------------------------------------------------
def _latent_values(cell: Model, latents, Y):
    """Latent values and their exact time derivatives from full states ``Y`` (n, k) and
    derivatives; returns a function of ``(Y, dY)``."""
    idx = {name: [cell.state_index(s) for s in states] for name, states in latents.items()}

    def values(Y, dY):
        Z, dZ = [], []
        for cols in idx.values():
            z = np.prod(Y[:, cols], axis=1)
            dz = np.zeros(len(Y))
            for a in cols:
                others = [c for c in cols if c != a]
                dz += dY[:, a] * (np.prod(Y[:, others], axis=1) if others else 1.0)
            Z.append(z)
            dZ.append(dz)
        return np.stack(Z, 1), np.stack(dZ, 1)

    return values


def _hat(v_grid, V):
    """Sparse linear-interpolation weights ``(len(V), len(v_grid))``."""
    n, dv = len(v_grid), v_grid[1] - v_grid[0]
    s = np.clip((V - v_grid[0]) / dv, 0.0, n - 1.000001)
    i = np.floor(s).astype(int)
    w = s - i
    rows = np.repeat(np.arange(len(V)), 2)
    cols = np.stack([i, i + 1], 1).ravel()
    vals = np.stack([1 - w, w], 1).ravel()
    return sp.csr_matrix((vals, (rows, cols)), shape=(len(V), n))


def _penalised_fit(blocks: Sequence[sp.spmatrix], target, smoothing: float, n: int,
                   weights=None):
    """Least squares ``sum_b blocks[b] @ f_b = target`` (rows weighted by ``weights``) with a
    second-difference penalty on every function ``f_b`` (``n`` table values each), scaled
    to the data."""
    A = sp.hstack(blocks).tocsr()
    if weights is not None:
        A = sp.diags(weights) @ A
        target = weights * target
    D2 = sp.diags([1.0, -2.0, 1.0], [0, 1, 2], shape=(n - 2, n))
    P = sp.block_diag([D2] * len(blocks))
    AtA = (A.T @ A).tocsc()
    scale = AtA.diagonal().mean()
    lhs = AtA + smoothing * scale * (P.T @ P) + 1e-12 * scale * sp.identity(A.shape[1])
    coef = spla.spsolve(lhs.tocsc(), A.T @ target)
    return coef.reshape(len(blocks), n)


def _derivatives(cell: Model, Y):
    """The cell's derivatives with every input off, at states ``Y`` ``(n, n_states)``."""
    p = cell.param_array(None)
    u0 = jnp.zeros(len(cell.inputs))
    return np.asarray(jax.jit(jax.vmap(lambda y: cell.rhs(0.0, y, p, u0)))(jnp.asarray(Y)))


def train_cell_surrogate(
    cell: Model,
    states: np.ndarray,
    *,
    latents: Mapping[str, Sequence[str]] | None = None,
    pairs: Sequence[tuple[str, str]] | None = None,
    local_current: np.ndarray | None = None,
    v_step: float = 0.25,
    smoothing: float = 1e-4,
    current_floor: float = 0.1,
    voltage: str | None = None,
    stimulus_input: str = "I_stim",
    trained_for: str | None = None,
    meta: Mapping | None = None,
) -> CellSurrogate:
    """Learn a :class:`CellSurrogate` of ``cell`` from sampled full states ``states``
    (``(n, n_states)``, e.g. from :func:`scalebridge.multiscale.cell_training_states`).

    ``latents``: ``{name: (state, ...)}``, each latent the product of those states (by
    default :data:`DEFAULT_LATENTS` for the cell's zoo name); ``pairs``: latent pairs
    whose product also carries current (default :data:`DEFAULT_PAIRS`). ``local_current``: the
    stimulus-plus-diffusion current at the samples, only recorded as a training range.
    ``v_step``: table spacing in ``V`` units; ``smoothing``: weight of the
    second-difference penalty relative to the data. The current is fitted for relative
    error, each sample weighted by ``1 / (|dV/dt| + current_floor)``.
    """
    name = trained_for or (cell.source[1] if cell.source and cell.source[0] == "zoo"
                           else cell.name)
    if latents is None:
        if name not in DEFAULT_LATENTS:
            raise InputError(f"no default latents for {name!r}; pass latents={{name: (gate, "
                             "...)}}, each latent a product of the cell's gates")
        latents = DEFAULT_LATENTS[name]
        pairs = DEFAULT_PAIRS.get(name, ()) if pairs is None else pairs
    latents = {k: tuple(v) for k, v in latents.items()}
    names = list(latents)
    for pair in pairs or ():
        if len(pair) != 2 or any(q not in latents for q in pair):
            raise InputError(f"pairs: {pair!r} must name two latents of {names}")
    pair_idx = tuple((names.index(a), names.index(b)) for a, b in (pairs or ()))
    if not 1 <= len(latents) <= 4:
        raise InputError(f"latents: give 1 to 4 latent states, got {len(latents)}")
    for lat, parts in latents.items():
        for s in parts:
            if s not in cell.state_names:
                raise InputError(f"latent {lat!r}: {s!r} is not a state of {cell.name!r}; "
                                 f"states: {', '.join(cell.state_names)}")
    if stimulus_input not in cell.input_names:
        raise InputError(f"cell {cell.name!r} has no input {stimulus_input!r}")
    Y = np.asarray(states, dtype=float)
    if Y.ndim != 2 or Y.shape[1] != len(cell.state_names) or not np.all(np.isfinite(Y)):
        raise InputError(f"states must be a finite (n, {len(cell.state_names)}) array, got "
                         f"shape {Y.shape}")
    voltage = voltage or cell.state_names[0]
    iv = cell.state_index(voltage)
    dY = _derivatives(cell, Y)
    gain = stimulus_gain(cell, Y[0], voltage=iv, stimulus_input=stimulus_input)
    Z, dZ = _latent_values(cell, latents, Y)(Y, dY)
    V = Y[:, iv]
    lo, hi = np.floor(V.min() - 5.0), np.ceil(V.max() + 5.0)
    v_grid = np.arange(lo, hi + v_step / 2, v_step)
    H = _hat(v_grid, V)
    n = len(v_grid)
    # current: -(dV/dt) = F0(V) + sum_k Fk(V) z_k
    terms = [Z[:, k] for k in range(Z.shape[1])] + [Z[:, a] * Z[:, b] for a, b in pair_idx]
    blocks = [H] + [H.multiply(c[:, None]).tocsr() for c in terms]
    # relative errors: the plateau's net current (~0.1) matters as much as the upstroke's
    # (~100) at the same V
    coefs = _penalised_fit(blocks, -dY[:, iv], smoothing, n,
                           weights=1.0 / (np.abs(dY[:, iv]) + current_floor))
    K = Z.shape[1]
    F, Fp = coefs[:K + 1], coefs[K + 1:]
    gates = []
    for k in range(Z.shape[1]):  # dz/dt = A(V) - B(V) z
        A, B = _penalised_fit([H, -H.multiply(Z[:, [k]]).tocsr()], dZ[:, k], smoothing, n)
        gates.append((A, np.maximum(B, 1e-6)))
    tables = np.column_stack([*F, *(a for a, _ in gates), *(b for _, b in gates), *Fp])
    rest_full = np.asarray(cell.initial_state(cell.param_array(None)))
    z_rest, _ = _latent_values(cell, latents, Y)(rest_full[None], np.zeros((1, Y.shape[1])))
    ranges = {voltage: (float(V.min()), float(V.max()))}
    for k, lat in enumerate(latents):
        ranges[lat] = (float(Z[:, k].min()), float(Z[:, k].max()))
    if local_current is not None:
        ic = np.asarray(local_current, float)
        ranges["I_local"] = (float(np.nanmin(ic)), float(np.nanmax(ic)))
    pred = sum(np.asarray(blk @ c) for blk, c in zip(blocks, coefs, strict=True))
    err = pred + dY[:, iv]
    fit = {"current_rmse": float(np.sqrt(np.mean(err**2))),
           "current_scale": float(np.sqrt(np.mean(dY[:, iv] ** 2))),
           "samples": int(len(Y))}
    return CellSurrogate(
        v=v_grid, tables=tables, latents=latents, gain=gain,
        rest=np.concatenate([[rest_full[iv]], z_rest[0]]), ranges=ranges, trained_for=name,
        pairs=pair_idx,
        voltage=voltage, stimulus_input=stimulus_input,
        meta={"fit": fit, **(dict(meta) if meta else {})})
