"""Parameter estimation problems: a Model, data, and the likelihood that joins them.

A :class:`Problem` follows the PEtab v1 concepts (and :func:`scalebridge.load_petab` builds
one from PEtab files), but is plain Python objects, so it can be made directly
(:meth:`Problem.from_table`):

- a **parameter space** (:class:`~scalebridge.infer.space.ParameterSpace`, or the
  :class:`~scalebridge.model.parameter.Parameter` specs it is made of: id, nominal value,
  bounds, scale, prior, estimate flag). The estimated ones, in table order
  (:attr:`Problem.parameter_ids`), form the vector ``x`` an optimiser sees, each on its own
  scale (lin, log or log10);
- **conditions**: ``{condition_id: {target: value}}`` where a target is a model parameter,
  a state (its initial value), or a name used in observable formulas, and a value is a
  number, the id of a parameter-table parameter, or NaN (keep the model's value; after
  preequilibration, keep the steady state);
- **observables**: :class:`ObservableSpec` (formula, noise formula, transformation and
  noise distribution), whose formulas may read states, model observables, model
  parameters, parameter-table parameters, condition targets, time ``t`` and the
  placeholders ``observableParameter{n}_<id>`` / ``noiseParameter{n}_<id>``;
- **measurements**: a DataFrame with PEtab's columns ``observableId``,
  ``simulationConditionId``, ``time``, ``measurement`` and optionally
  ``preequilibrationConditionId``, ``observableParameters``, ``noiseParameters``
  (``;``-separated numbers or parameter ids that fill the placeholders row by row).

The negative log-likelihood is, summed over measurements ``m`` with simulation ``y`` and
noise ``s``, with ``h`` the observable transformation (identity, ``log`` or ``log10``):
normal ``0.5 log(2 pi s^2) + 0.5 ((h(m) - h(y)) / s)^2``, Laplace
``log(2 s) + |h(m) - h(y)| / s``, plus the Jacobian ``log(m)`` (log) or
``log(m log(10))`` (log10) of the transformed measurement, as PEtab defines it.
Simulations use the model's SBML time origin 0; preequilibration runs the model to its
steady state first (:func:`scalebridge.simulate.steady_states`), and a measurement at
time ``inf`` is taken at the steady state of its simulation condition. All simulations,
pre-equilibrations included, are members of one batched solve
(:meth:`scalebridge.Simulator.solve_batch`), so the compiled program does not grow with the
number of conditions. Initialization priors of the space shape the start points of
:func:`scalebridge.fit`; objective priors
(``Parameter.prior``) make :meth:`Problem.objective_grad_hess` the negative log posterior.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputError, ModelError, SimulationError, quoted
from ..model.model import Model
from ..model.parameter import Parameter
from .formula import Formula, parse_formula, time_symbols
from .space import ParameterSpace

__all__ = ["Problem", "ObservableSpec"]

TRANSFORMATIONS = ("lin", "log", "log10")
DISTRIBUTIONS = ("normal", "laplace")
RTOL, ATOL = 1e-8, 1e-10


@dataclass(frozen=True)
class ObservableSpec:
    """One observable of a problem: ``formula`` and ``noise`` are :class:`Formula`s."""

    id: str
    formula: Formula
    noise: Formula
    transformation: str = "lin"
    distribution: str = "normal"

    def __post_init__(self):
        if self.transformation not in TRANSFORMATIONS:
            raise InputError(f"observable {self.id!r}: observableTransformation "
                             f"{self.transformation!r} is unknown; use lin, log or log10")
        if self.distribution not in DISTRIBUTIONS:
            raise InputError(f"observable {self.id!r}: noiseDistribution "
                             f"{self.distribution!r} is unknown; use normal or laplace")


def _is_nan(v) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _number(v):
    """A float if ``v`` is a number (or numeric text), else None."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float | np.integer | np.floating):
        return float(v)
    try:
        return float(str(v).strip())
    except ValueError:
        return None


def _split(cell) -> list:
    """The ``;``-separated entries of an observableParameters/noiseParameters cell."""
    if cell is None or _is_nan(cell):
        return []
    if isinstance(cell, int | float | np.integer | np.floating):
        return [float(cell)]
    text = str(cell).strip()
    return [s.strip() for s in text.split(";")] if text else []


MAX_MEASUREMENT = 1e150  # squares of larger residuals overflow float64
MAX_TIME = 1e15  # measurement times beyond this are refused (inf: steady state)


def _source_name(sources, key: str) -> str:
    """The file an input came from, for messages (``sources`` as given to Problem)."""
    return (sources or {}).get(key) or f"the {key[:-1]} table"


class _Refs:
    """Values that are either constants or entries of the parameter-table vector ``q``."""

    def __init__(self, shape=()):
        self.idx = np.full(shape, -1, dtype=np.int64)
        self.const = np.zeros(shape, dtype=float)

    def set(self, key, ref):
        kind, v = ref
        if kind == "q":
            self.idx[key] = v
        else:
            self.idx[key] = -1
            self.const[key] = v

    def values(self, q):
        idx = jnp.asarray(self.idx)
        return jnp.where(idx >= 0, q[jnp.clip(idx, 0)], jnp.asarray(self.const))


class Problem:
    """A parameter estimation problem; see the module docstring.

    ``nll(x)`` / ``nll_and_grad(x)`` / ``chi2(x)`` take ``x``, the estimated parameters on
    their scales in the order of :attr:`parameter_ids` (``None``: the nominal values).
    """

    def __init__(self, model: Model, parameters: ParameterSpace | Sequence[Parameter],
                 conditions: Mapping[str, Mapping[str, object]],
                 observables: Sequence[ObservableSpec], measurements, *, name: str = "problem",
                 rtol: float = RTOL, atol: float = ATOL, max_steps: int = 100_000,
                 sources: Mapping[str, str] | None = None):
        import pandas as pd

        if not isinstance(model, Model):
            raise InputError(f"model must be a scalebridge Model, got {type(model).__name__}")
        self.model = model
        self.name = str(name)
        self.space = (parameters if isinstance(parameters, ParameterSpace)
                      else ParameterSpace(parameters))
        self.parameters = self.space.parameters
        self.conditions = {str(k): dict(v) for k, v in conditions.items()}
        observables = list(observables)
        ids = [o.id for o in observables]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            where = _source_name(sources, "observables")
            raise InputError(f"{where}: observableId {quoted(twice[0])} is defined more than "
                             "once; each observable needs its own id")
        self.observables = {o.id: o for o in observables}
        # the likelihood evaluates only the model observables the formulas read (an SBML
        # model reports every reaction's rate)
        read = {s for o in observables for f in (o.formula, o.noise) for s in f.symbols}
        kept = {n: f for n, f in model.observables if n in read}
        self._sim_model = model if len(kept) == len(model.observables) else \
            model.replace(observables=kept)
        self.measurements = pd.DataFrame(measurements).reset_index(drop=True)
        self.rtol, self.atol, self.max_steps = float(rtol), float(atol), int(max_steps)
        self.sources = {"measurements": "measurement table", **dict(sources or {})}
        self._source = self.sources["measurements"]
        self._q_index = {n: i for i, n in enumerate(self.space.names)}
        self._est = self.space.estimated_index
        self._build()
        self._compile()

    def _compile(self):
        # one compiled function gives NLL, chi2 and the simulations (one compilation)
        self._eval_jit = jax.jit(self._terms)
        self._vgf_jit = jax.jit(self._nll_grad_fim)
        self._vg_jit = jax.jit(self._value_and_grad)
        log_prior = self.space.log_prior  # with its gradient and Hessian, compiled once
        self._prior_jit = jax.jit(lambda x: (log_prior(x), jax.grad(log_prior)(x),
                                             jax.hessian(log_prior)(x)))

        @jax.custom_vjp
        def nll_jax(x):
            return self._terms(x)[0]

        def fwd(x):
            return self._value_and_grad(x)

        nll_jax.defvjp(fwd, lambda g, ct: (ct * g,))
        self.nll_jax = nll_jax

    def __getstate__(self):
        state = dict(self.__dict__)
        for k in ("_eval_jit", "_vgf_jit", "_prior_jit", "nll_jax"):
            state.pop(k, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._compile()

    def fingerprint(self) -> dict[str, tuple[str | None, str]]:
        """``{input: (source, sha256)}`` of what defines this problem's likelihood: the
        model, the parameter table, the conditions, the observables, the measurements
        and the solver settings; ``source`` is the file an input was read from (PEtab),
        else None. Run directories compare it to refuse resuming after a change."""
        from ..runtime.files import jsonable
        from ..runtime.run import content_hash

        obs = [[o.id, o.formula.text, o.noise.text, o.transformation, o.distribution]
               for o in self.observables.values()]
        parts = {
            "model": self.model.fingerprint(),
            "parameters": content_hash(self.space.to_dict()),
            "conditions": content_hash(jsonable(self.conditions)),
            "observables": content_hash(obs),
            "measurements": content_hash(self.measurements.to_csv(index=False)),
            "solver settings": content_hash([self.rtol, self.atol, self.max_steps]),
        }
        return {k: (self.sources.get(k), h) for k, h in parts.items()}

    # ----- parameters ---------------------------------------------------------------------
    @property
    def parameter_ids(self) -> tuple[str, ...]:
        """Ids of the estimated parameters: the order of the vector ``x``."""
        return self.space.ids

    @property
    def x_nominal(self) -> np.ndarray:
        """Nominal values of the estimated parameters, on their scales."""
        return self.space.nominal

    @property
    def lower(self) -> np.ndarray:
        """Lower bounds of ``x`` on the parameters' scales (``-inf`` for log of 0)."""
        return self.space.lower

    @property
    def upper(self) -> np.ndarray:
        """Upper bounds of ``x`` on the parameters' scales."""
        return self.space.upper

    def _x(self, x) -> jax.Array:
        return self.space.vector(x)

    def _q(self, x):
        """All parameter-table values (linear) from the scaled estimated vector ``x``."""
        return self.space.full(x)

    def _ref(self, value, where: str):
        """('q', index) or ('c', number) for a table cell."""
        num = _number(value)
        if num is not None:
            return ("c", num)
        name = str(value).strip()
        if name in self._q_index:
            return ("q", self._q_index[name])
        if name in self.model.parameter_names:
            return ("c", self.model.parameters[self.model.parameter_index(name)].value)
        raise InputError(f"{where}: {name!r} is neither a number nor a parameter of the "
                         "parameter table")

    # ----- static layout ------------------------------------------------------------------
    def _build(self):
        m, meas, src = self.model, self.measurements, self._source
        for col in ("observableId", "simulationConditionId", "time", "measurement"):
            if col not in meas.columns:
                raise InputError(f"{src}: required column {col!r} is missing")
        if len(meas) == 0:
            raise InputError(f"{src}: no measurements")
        if "preequilibrationConditionId" not in meas.columns:
            meas["preequilibrationConditionId"] = ""
        meas["preequilibrationConditionId"] = [
            "" if (v is None or _is_nan(v)) else str(v)
            for v in meas["preequilibrationConditionId"]]
        meas["simulationConditionId"] = meas["simulationConditionId"].astype(str)
        meas["observableId"] = meas["observableId"].astype(str)
        for col in ("time", "measurement"):
            try:
                meas[col] = meas[col].astype(float)
            except (TypeError, ValueError):
                raise InputError(f"{src}: column {col!r} must hold numbers") from None
        for r, (obs, t, y) in enumerate(zip(meas["observableId"], meas["time"],
                                            meas["measurement"], strict=True)):
            row = f"{src}, row {r + 2}"
            if obs not in self.observables:
                raise InputError(f"{row}: observableId {obs!r} is not in the observable "
                                 f"table; known: {', '.join(self.observables)}")
            if not (math.isfinite(y) and abs(y) <= MAX_MEASUREMENT):
                raise InputError(f"{row}: measurement is {y}; give a finite number of "
                                 f"magnitude at most {MAX_MEASUREMENT:g} (squared residuals "
                                 "of larger ones overflow) or drop the row")
            if math.isnan(t) or t < 0 or (math.isfinite(t) and t > MAX_TIME):
                raise InputError(f"{row}: time {t} is not supported; give times from 0 to "
                                 f"{MAX_TIME:g}, or inf for a measurement at steady state")
        used = set(meas["simulationConditionId"]) | (set(meas["preequilibrationConditionId"])
                                                      - {""})
        missing = sorted(used - set(self.conditions))
        if missing:
            raise InputError(f"{src}: conditions {', '.join(missing)} are not in the "
                             "condition table")
        in_formulas = {s for o in self.observables.values()
                       for f in (o.formula, o.noise) for s in f.symbols}
        for cid, cond in self.conditions.items():
            for target in cond:
                if not (target in m.parameter_names or target in m.state_names
                        or target in in_formulas or target in self._q_index
                        or target in m.observable_names):
                    raise InputError(f"condition {cid!r} sets {target!r}, which is not a "
                                     "parameter or state of the model, nor used in an "
                                     "observable or noise formula")
                if target in m.observable_names:
                    raise InputError(f"condition {cid!r} sets {target!r}, which the model "
                                     "computes by an assignment rule; it cannot be overridden")

        # simulations: unique (preequilibration, simulation) pairs
        pairs = list(dict.fromkeys(zip(meas["preequilibrationConditionId"],
                                       meas["simulationConditionId"], strict=True)))
        self._pairs = pairs
        self._sims = []
        row_sim = np.empty(len(meas), dtype=np.int64)
        row_pos = np.empty(len(meas), dtype=np.int64)
        offset = 0
        for k, (pre, sim) in enumerate(pairs):
            mask = ((meas["preequilibrationConditionId"] == pre)
                    & (meas["simulationConditionId"] == sim)).to_numpy()
            times = np.unique(meas["time"].to_numpy()[mask])
            rows = np.nonzero(mask)[0]
            row_sim[rows] = k
            row_pos[rows] = offset + np.searchsorted(times, meas["time"].to_numpy()[rows])
            offset += times.size
            self._sims.append(dict(
                times=times, params=self._param_refs(sim),
                states=self._state_refs(sim, table=not pre),
                pre_params=self._param_refs(pre) if pre else None,
                pre_states=self._state_refs(pre, table=True) if pre else None))
        self._row_sim, self._row_pos = row_sim, row_pos
        self._layout = self._batch_layout()
        self._seed_columns = self._derivative_columns()

        # observables: per observable the rows and how each symbol gets its value
        self._groups = []
        for oid, spec in self.observables.items():
            rows = np.nonzero((meas["observableId"] == oid).to_numpy())[0]
            if rows.size == 0:
                continue
            obs_p = self._placeholders(rows, "observableParameters",
                                       f"observableParameter{{}}_{oid}", spec)
            noise_p = self._placeholders(rows, "noiseParameters",
                                         f"noiseParameter{{}}_{oid}", spec)
            holders = {**obs_p, **noise_p}
            srcs = {}
            for f in (spec.formula, spec.noise):
                for s in f.symbols:
                    if s not in srcs:
                        srcs[s] = self._source_of(s, rows, holders, oid)
            self._groups.append(dict(id=oid, rows=rows, spec=spec, sources=srcs,
                                     m=meas["measurement"].to_numpy()[rows],
                                     t=meas["time"].to_numpy()[rows]))
        self._check_noise()
        self._reads = self._read_layout()
        self._static_terms()

    def _check_noise(self):
        """Refuse a noise sigma that is not positive and finite at the nominal parameters,
        where it does not depend on the simulation (a numeric or fixed noise parameter, a
        constant noise formula): it would give a NaN likelihood, not an error."""
        q0 = np.asarray(self.space.full(self.space.nominal))
        for g in self._groups:
            spec, srcs = g["spec"], g["sources"]
            kinds = {srcs[s][0] for s in spec.noise.symbols}
            if not kinds <= {"rows", "q"}:
                continue
            env = {s: (srcs[s][1].values(q0) if srcs[s][0] == "rows" else q0[srcs[s][1]])
                   for s in spec.noise.symbols}
            sd = np.broadcast_to(np.asarray(spec.noise(env), float), g["rows"].shape)
            bad = np.flatnonzero(~(np.isfinite(sd) & (sd > 0)))
            if bad.size:
                r = int(g["rows"][bad[0]])
                raise InputError(f"{self._source}, row {r + 2}: the noise sigma of observable "
                                 f"{quoted(spec.id)} is {sd[bad[0]]:g} "
                                 f"({quoted(spec.noise.text)}); sigma must be positive and "
                                 "finite")

    def _read_layout(self) -> dict:
        """Flat indices of every state, model observable and simulation parameter that the
        observable groups read, per table, so that each table is read by one gather (a
        gather per group and symbol put ~65 operations per group into the compiled
        likelihood: 4,300 for Lucarelli's 65 observables); each group's symbol is then a
        static slice of it."""
        m = self.model
        width = {"state": len(m.state_names), "mobs": len(m.observable_names),
                 "param": len(m.parameter_names)}
        flat = {k: [] for k in width}
        spans = []
        for g in self._groups:
            rows = g["rows"]
            at = {"state": self._row_pos[rows], "mobs": self._row_pos[rows],
                  "param": self._row_sim[rows]}
            span = {}
            for s, (kind, v) in g["sources"].items():
                if kind in width:
                    start = sum(a.size for a in flat[kind])
                    flat[kind].append(at[kind] * width[kind] + int(v))
                    span[s] = (start, start + rows.size)
            spans.append(span)
        return {"index": {k: np.concatenate(v).astype(np.int64) if v else None
                          for k, v in flat.items()}, "spans": spans}

    def _static_terms(self):
        """Transformed measurements, Laplace flags and the parameter-free part of the NLL
        (normalisation and the Jacobian of the observable transformation)."""
        hm, lap, const = [], [], 0.0
        for g in self._groups:
            spec, m = g["spec"], np.asarray(g["m"], dtype=float)
            tr = spec.transformation
            if tr != "lin" and np.any(m <= 0):
                r = int(g["rows"][np.argmax(m <= 0)])
                raise InputError(f"{self._source}, row {r + 2}: measurement {m[m <= 0][0]} of "
                                 f"observable {spec.id!r} is not positive, but its "
                                 f"observableTransformation is {tr}")
            hm.append(m if tr == "lin" else np.log(m) if tr == "log" else np.log10(m))
            laplace = spec.distribution == "laplace"
            lap.append(np.full(m.size, laplace))
            if tr == "log":
                const += float(np.sum(np.log(m)))
            elif tr == "log10":
                const += float(np.sum(np.log(m * math.log(10))))
            const += m.size * (math.log(2.0) if laplace else 0.5 * math.log(2 * math.pi))
        self._hm, self._laplace = np.concatenate(hm), np.concatenate(lap)
        self._nll_const = const

    def _param_refs(self, cid: str) -> _Refs:
        m = self.model
        refs = _Refs((len(m.parameters),))
        cond = self.conditions[cid]
        for i, p in enumerate(m.parameters):
            v = cond.get(p.name, math.nan)
            if not _is_nan(v) and v is not None:
                refs.set(i, self._ref(v, f"condition {cid!r}, column {p.name!r}"))
            elif p.name in self._q_index:
                refs.set(i, ("q", self._q_index[p.name]))
            else:
                refs.set(i, ("c", p.value))
        return refs

    def _state_refs(self, cid: str, table: bool):
        """[(state index, ref)] of the initial values a condition sets (NaN: not set),
        after those of parameter-table parameters that the model holds as states
        (non-constant SBML parameters) when ``table``."""
        out = []
        if table:
            for i, name in enumerate(self.model.state_names):
                if name in self._q_index:
                    out.append((i, ("q", self._q_index[name])))
        for target, v in self.conditions[cid].items():
            if target in self.model.state_names and not _is_nan(v) and v is not None:
                out.append((self.model.state_index(target),
                            self._ref(v, f"condition {cid!r}, column {target!r}")))
        return out

    def _placeholders(self, rows, column: str, pattern: str, spec: ObservableSpec):
        """{placeholder name: _Refs over rows} for observable/noise parameters."""
        names = sorted((s for f in (spec.formula, spec.noise) for s in f.symbols
                        if s.startswith(pattern.split("{}")[0]) and s.endswith(
                            pattern.split("{}")[1])),
                       key=lambda s: s)
        if not names:
            return {}
        meas = self.measurements
        cells = meas[column].to_numpy()[rows] if column in meas.columns else [None] * len(rows)
        out = {}
        for name in names:
            n_text = name[len(pattern.split("{}")[0]):len(name) - len(pattern.split("{}")[1])]
            if not n_text.isdigit() or int(n_text) < 1:
                continue
            n = int(n_text)
            refs = _Refs((len(rows),))
            for j, (r, cell) in enumerate(zip(rows, cells, strict=True)):
                entries = _split(cell)
                where = f"{self._source}, row {r + 2}, column {column!r}"
                if len(entries) < n:
                    raise InputError(f"{where}: observable {spec.id!r} needs {name}, but the "
                                     f"row gives {len(entries)} value(s)")
                refs.set(j, self._ref(entries[n - 1], where))
            out[name] = refs
        return out

    def _source_of(self, s: str, rows, holders, oid: str):
        m = self._sim_model
        if s in holders:
            return ("rows", holders[s])
        if s in m.state_names:
            return ("state", m.state_index(s))
        if s in m.observable_names:
            return ("mobs", m.observable_names.index(s))
        if s in time_symbols():
            return ("time", None)
        if s in m.parameter_names:
            return ("param", m.parameter_index(s))
        conds = [self._pairs[k][1] for k in self._row_sim[rows]]
        if any(s in self.conditions[c] for c in conds):
            refs = _Refs((len(rows),))
            for j, c in enumerate(conds):
                v = self.conditions[c].get(s, math.nan)
                if (v is None or _is_nan(v)) and s in self._q_index:
                    v = s
                refs.set(j, self._ref(v, f"condition {c!r}, column {s!r}"))
            return ("rows", refs)
        if s in self._q_index:
            return ("q", self._q_index[s])
        if s == oid:
            return ("self", None)
        raise InputError(f"observable {oid!r}: formula symbol {s!r} is not a state, model "
                         "observable, model parameter, condition column, parameter-table "
                         "parameter or placeholder of this observable")

    # ----- simulation ---------------------------------------------------------------------
    def _batch_layout(self):
        """Arrays that make all simulations (pre-equilibration included) members of one
        batched solve on the union of their output times, built once: per member its
        parameter and initial-state references, and per row of the concatenated output
        (each simulation's times in turn, steady state last) where its value comes from."""
        sims, n_p = self._sims, len(self.model.parameter_names)
        n_y = len(self.model.state_names)

        def stack(refs, shape):
            out = _Refs(shape)
            for k, r in enumerate(refs):
                out.idx[k], out.const[k] = r.idx, r.const
            return out

        def state_table(lists):
            mask, refs = np.zeros((len(lists), n_y), bool), _Refs((len(lists), n_y))
            for k, entries in enumerate(lists):
                for i, ref in entries:  # later entries override earlier ones
                    mask[k, i] = True
                    refs.set((k, i), ref)
            return mask, refs

        pre = [k for k, sm in enumerate(sims) if sm["pre_params"] is not None]
        t_all = np.unique(np.concatenate([sm["times"][np.isfinite(sm["times"])]
                                          for sm in sims]))
        g_sim, g_t, g_inf, ss, ss_from, ss_time = [], [], [], [], [], []
        for k, sm in enumerate(sims):
            finite = sm["times"][np.isfinite(sm["times"])]
            idx = np.searchsorted(t_all, finite)
            g_sim += [k] * sm["times"].size
            g_t += list(idx) + [idx[-1] if idx.size else 0] * (sm["times"].size - finite.size)
            g_inf += [False] * finite.size + [True] * (sm["times"].size - finite.size)
            if finite.size < sm["times"].size:  # steady-state measurements (time inf)
                ss.append(k)
                ss_from.append(int(idx[-1]) if idx.size else -1)  # -1: from y0
                ss_time.append(float(finite[-1]) if finite.size else 0.0)
        g_inf = np.asarray(g_inf, bool)
        g_ss = np.zeros(g_inf.size, np.int64)
        g_ss[g_inf] = [ss.index(k) for k in np.asarray(g_sim)[g_inf]]
        return dict(
            params=stack([sm["params"] for sm in sims], (len(sims), n_p)),
            states=state_table([sm["states"] for sm in sims]),
            pre=np.asarray(pre, np.int64),
            pre_params=stack([sims[k]["pre_params"] for k in pre], (len(pre), n_p)),
            pre_states=state_table([sims[k]["pre_states"] for k in pre]),
            t_all=t_all, g_sim=np.asarray(g_sim, np.int64), g_t=np.asarray(g_t, np.int64),
            g_inf=g_inf, g_ss=g_ss, ss=np.asarray(ss, np.int64),
            ss_from=np.asarray(ss_from, np.int64), ss_time=np.asarray(ss_time, float))

    def _derivative_columns(self):
        """The model parameters and initial states through which the estimated parameters
        reach the simulations, as ``(parameter columns, state columns)``, when they are fewer
        than the estimated parameters (then the solve's sensitivities are taken per member
        along them: :func:`scalebridge.simulate.per_member_derivatives`); else ``None``.
        Initial states count when a condition table or pre-equilibration sets them from
        estimated parameters, or when the model's initial-state function depends on an
        estimated model parameter (its Jacobian is nonzero at the nominal values or at a
        random nearby point: a structural zero is zero at both)."""
        lay, est = self._layout, self._est
        m = self.model
        p_cols = np.nonzero(np.any(np.isin(lay["params"].idx, est), axis=0))[0]
        n_y = len(m.state_names)
        if lay["pre"].size:
            y_cols = np.arange(n_y)
        else:
            mask, refs = lay["states"]
            y_set = np.any(mask & np.isin(refs.idx, est), axis=0)
            if m.initial_fn is not None and p_cols.size:
                P = np.asarray(lay["params"].values(jnp.asarray(
                    [p.value for p in self.parameters], dtype=jnp.float64)))
                rng = np.random.default_rng(0)
                jac = jax.vmap(jax.jacfwd(m.initial_state))
                for Pk in (P, P * (1.0 + 0.1 * rng.uniform(size=P.shape))):
                    d = np.asarray(jac(jnp.asarray(Pk)))[:, :, p_cols]  # (sims, y, p)
                    free = ~mask[:, :, None]  # states the table does not overwrite
                    y_set |= np.any((d != 0) & free, axis=(0, 2))
            y_cols = np.nonzero(y_set)[0]
        if p_cols.size + y_cols.size >= len(est):
            return None
        return p_cols, y_cols

    def _simulate_all(self, q, model: Model | None = None, sensitivities: str = "forward"):
        """(parameters per simulation, states and observables at all simulation times): all
        simulations are members of one batched solve (:meth:`Simulator.solve_batch`), the
        pre-equilibrations of one batched steady-state solve, so the compiled program does
        not grow with the number of conditions. The observables are those the formulas
        read, or ``model``'s (the problem's model with other observables)."""
        from ..simulate import Simulator, per_member_derivatives, steady_states

        m, lay = model or self._sim_model, self._layout
        def steady(ps, ys):
            return steady_states(m, ps, ys, self.rtol, self.atol, self.max_steps)

        P = lay["params"].values(q)
        y0 = jax.vmap(m.initial_state)(P)
        if lay["pre"].size:
            pp = lay["pre_params"].values(q)
            mask, refs = lay["pre_states"]
            y_pre = jnp.where(mask, refs.values(q), jax.vmap(m.initial_state)(pp))
            y0 = y0.at[jnp.asarray(lay["pre"])].set(steady(pp, y_pre))
        mask, refs = lay["states"]
        y0 = jnp.where(mask, refs.values(q), y0)
        t_all = lay["t_all"]
        if t_all.size and t_all[-1] > 0:
            sim = Simulator(m, t_all, rtol=self.rtol, atol=self.atol,
                            max_steps=self.max_steps, solver=self._solver(),
                            sensitivities=sensitivities)
            def solve(P, y0):
                if P.shape[0] == 1:  # one simulation: no batch axis in the solver's loop
                    ys, obs, ok = sim.solve(P[0], y0[0])
                    return tuple(jnp.where(ok, a, jnp.nan)[None] for a in (ys, obs))
                return sim.solve_batch(P, y0)[:2]

            if self._seed_columns is not None and sensitivities == "forward":
                solve = per_member_derivatives(solve, *self._seed_columns)
            ys, obs = solve(P, y0)
        else:  # only t = 0
            ys = jnp.broadcast_to(y0[:, None], (P.shape[0], max(t_all.size, 1), y0.shape[1]))
            obs = jax.vmap(jax.vmap(lambda y, p: m.observe(0.0, y, p), (0, None)))(ys, P)
        g_sim, g_t = jnp.asarray(lay["g_sim"]), jnp.asarray(lay["g_t"])
        y_rows, o_rows = ys[g_sim, g_t], obs[g_sim, g_t]
        if lay["ss"].size:
            k = jnp.asarray(lay["ss"])
            start = jnp.where(jnp.asarray(lay["ss_from"])[:, None] >= 0,
                              ys[k, jnp.clip(jnp.asarray(lay["ss_from"]), 0)], y0[k])
            y_ss = steady(P[k], start)
            o_ss = jax.vmap(m.observe)(jnp.asarray(lay["ss_time"]), y_ss, P[k])
            inf, g_ss = jnp.asarray(lay["g_inf"])[:, None], jnp.asarray(lay["g_ss"])
            y_rows = jnp.where(inf, y_ss[g_ss], y_rows)
            o_rows = jnp.where(inf, o_ss[g_ss], o_rows)
        return P, y_rows, o_rows

    def _solver(self):
        """Rodas5 for every model that :func:`scalebridge.simulate.rosenbrock_fits`, stiff
        or not (with forward sensitivities it is the fastest here: Boehm 4.4 ms per
        gradient against 7.0 with Kvaerno5; a non-stiff line model 0.7 ms against 1.4 with
        Tsit5), with its driver by :func:`scalebridge.simulate.rosenbrock_for`. Otherwise
        the engine's default (:func:`scalebridge.simulate.default_solver`)."""
        from ..simulate import rosenbrock_fits, rosenbrock_for

        return rosenbrock_for(len(self._sims)) if rosenbrock_fits(self.model) else None

    def _predictions(self, x, sensitivities: str = "forward"):
        """Per observable group: (simulation y, noise sigma) over its rows."""
        q = self._q(x)
        P, ys, obs = self._simulate_all(q, sensitivities=sensitivities)
        out = []
        tables = {"state": ys, "mobs": obs, "param": P}
        read = {k: jnp.take(tables[k].reshape(-1), jnp.asarray(i), mode="clip")
                for k, i in self._reads["index"].items() if i is not None}
        for g, span in zip(self._groups, self._reads["spans"], strict=True):
            rows = g["rows"]
            env = {}
            for s, (kind, v) in g["sources"].items():
                if kind == "rows":
                    env[s] = v.values(q)
                elif kind in read:
                    env[s] = read[kind][span[s][0]:span[s][1]]
                elif kind == "time":
                    env[s] = jnp.asarray(g["t"])
                elif kind == "q":
                    env[s] = q[v]
            y = jnp.broadcast_to(jnp.asarray(g["spec"].formula(env), float), rows.shape)
            env[g["id"]] = y
            sd = jnp.broadcast_to(jnp.asarray(g["spec"].noise(env), float), rows.shape)
            out.append((y, sd))
        return out

    def _terms(self, x, sensitivities: str = "forward"):
        """(NLL, chi2, [(simulation, sigma)] per observable group)."""
        nll = jnp.asarray(0.0)
        chi2 = jnp.asarray(0.0)
        preds = self._predictions(x, sensitivities)
        for g, (y, sd) in zip(self._groups, preds, strict=True):
            spec, m = g["spec"], jnp.asarray(g["m"])
            tr = spec.transformation
            if tr == "lin":
                r, jacobian = m - y, 0.0
            elif tr == "log":
                r, jacobian = jnp.log(m) - jnp.log(y), jnp.log(m)
            else:
                r, jacobian = jnp.log10(m) - jnp.log10(y), jnp.log(m * math.log(10))
            z = r / sd
            if spec.distribution == "normal":
                terms = 0.5 * jnp.log(2 * math.pi * sd**2) + 0.5 * z**2
            else:
                terms = jnp.log(2 * sd) + jnp.abs(z)
            nll = nll + jnp.sum(terms + jacobian)
            chi2 = chi2 + jnp.sum(z**2)
        return nll, chi2, preds

    def _mu_log_sigma(self, x):
        """Transformed simulations ``h(y)`` and ``log(sigma)`` of all measurements, in
        the order of :attr:`_rows` (observable groups one after another)."""
        mus, lss = [], []
        for g, (y, sd) in zip(self._groups, self._predictions(x), strict=True):
            tr = g["spec"].transformation
            mus.append(y if tr == "lin" else jnp.log(y) if tr == "log" else jnp.log10(y))
            lss.append(jnp.log(sd))
        return jnp.concatenate(mus), jnp.concatenate(lss)

    def _nll_grad_fim(self, x):
        """NLL, its gradient and the Fisher information matrix at ``x`` from one forward
        sensitivity pass. For a measurement with transformed simulation ``mu`` and noise
        ``s``, the Fisher information is ``dmu dmu^T / s^2 + k dlog(s) dlog(s)^T`` with
        ``k = 2`` (normal) or ``1`` (Laplace); this is the Gauss-Newton-type Hessian
        approximation used by Fides/AMICI (Fröhlich & Sorger 2022, PLoS Comput Biol)."""
        def parts(x):
            out = self._mu_log_sigma(x)
            return out, out

        (jm, jl), (mu, ls) = jax.jacfwd(parts, has_aux=True)(x)
        hm, lap = jnp.asarray(self._hm), jnp.asarray(self._laplace)
        s = jnp.exp(ls)
        z = (hm - mu) / s
        nll = jnp.sum(ls + jnp.where(lap, jnp.abs(z), 0.5 * z**2)) + self._nll_const
        dz = jnp.where(lap, jnp.sign(z), z)  # d(term)/d(-mu*s) direction
        w_l = jnp.where(lap, 1.0 - jnp.abs(z), 1.0 - z**2)
        grad = jl.T @ w_l - jm.T @ (dz / s)
        js = jm / s[:, None]
        fim = js.T @ js + jl.T @ (jnp.where(lap, 1.0, 2.0)[:, None] * jl)
        return nll, grad, fim

    # ----- public evaluation --------------------------------------------------------------
    def nll(self, params=None) -> float:
        """Negative log-likelihood at ``params`` (scaled estimated vector; None: nominal)."""
        return float(self._checked(params)[0])

    def chi2(self, params=None) -> float:
        """Sum of squared weighted residuals ``((h(m) - h(y)) / s)^2``."""
        return float(self._checked(params)[1])

    @property
    def gradient_sensitivities(self) -> str:
        """How :meth:`nll_and_grad` differentiates the simulations, ``"forward"`` or
        ``"adjoint"``, by :func:`scalebridge.simulate.gradient_sensitivities`."""
        from ..simulate import gradient_sensitivities

        return gradient_sensitivities(self.model, len(self._est))

    def _value_and_grad(self, x):
        if self.gradient_sensitivities == "adjoint":
            return jax.value_and_grad(lambda x: self._terms(x, "adjoint")[0])(x)
        return self._nll_grad_fim(x)[:2]

    def nll_and_grad(self, params=None) -> tuple[float, np.ndarray]:
        """The NLL and its gradient with respect to the scaled estimated parameters
        (jit-compiled), through the ODE solver by :attr:`gradient_sensitivities`: forward
        sensitivities (the pass of :meth:`nll_grad_fim`, compiled once for both) or the
        discrete adjoint of a large model."""
        if self.gradient_sensitivities == "forward":
            v, g, _ = self.nll_grad_fim(params)
            return v, g
        v, g = self._vg_jit(self._x(params))
        if not math.isfinite(float(v)):
            raise SimulationError(self._failure())
        return float(v), np.asarray(g)

    def nll_grad_fim(self, params=None) -> tuple[float, np.ndarray, np.ndarray]:
        """The NLL, its gradient and the Fisher information matrix (the expected Hessian
        of the NLL) with respect to the scaled estimated parameters."""
        v, g, f = self._vgf_jit(self._x(params))
        if not math.isfinite(float(v)):
            raise SimulationError(self._failure())
        return float(v), np.asarray(g), np.asarray(f)

    def _failure(self) -> str:
        return (f"problem {self.name!r}: the NLL is not finite at these parameters: the "
                "simulation failed (the solver hit max_steps, its step size collapsed, the "
                "states became NaN/inf, or preequilibration reached no steady state) or gave "
                "values that the observable transformation or noise model cannot take")

    def log_prior(self, params=None) -> float:
        """Sum of the log prior densities of the estimated parameters that have one."""
        return float(self.space.log_prior(self._x(params)))

    def objective_grad_hess(self, params=None) -> tuple[float, np.ndarray, np.ndarray]:
        """The PEtab objective: the NLL minus the log prior density of parameters with
        objective priors (the negative log posterior), its gradient, and the Fisher
        information plus the Hessian of the negative log prior. Without priors this is
        :meth:`nll_grad_fim`."""
        v, g, f = self.nll_grad_fim(params)
        if not self.space.has_priors:
            return v, g, f
        lp, gp, hp = self._prior_jit(self._x(params))
        lp = float(lp)
        if not math.isfinite(lp):
            raise SimulationError(f"problem {self.name!r}: the prior density is zero at "
                                  "these parameters")
        return v - lp, g - np.asarray(gp), f - np.asarray(hp)

    def _checked(self, params):
        out = self._eval_jit(self._x(params))
        if not math.isfinite(float(out[0])):
            raise SimulationError(self._failure())
        return out

    def simulate_conditions(self, params=None) -> dict:
        """``{(preequilibration id or '', simulation condition id): Solution}`` at the
        measurement times of each condition."""
        from ..solution import Solution

        q = self._q(self._x(params))
        ps, ys, obs = self._simulate_all(q, self.model)
        out, start = {}, 0
        for pair, sim in zip(self._pairs, self._sims, strict=True):
            n = sim["times"].size
            out[pair] = Solution(jnp.asarray(sim["times"]), ys[start:start + n],
                                 obs[start:start + n], self.model.state_names,
                                 self.model.observable_names)
            start += n
        return out

    def simulations(self, params=None):
        """The measurement table with a ``simulation`` column (untransformed observable
        values) and a ``sigma`` column: a PEtab simulation table."""
        out = self.measurements.copy()
        sim = np.full(len(out), np.nan)
        sd = np.full(len(out), np.nan)
        for g, (y, s) in zip(self._groups, self._checked(params)[2], strict=True):
            sim[g["rows"]] = np.asarray(y)
            sd[g["rows"]] = np.asarray(s)
        out["simulation"] = sim
        out["sigma"] = sd
        return out

    # ----- building without PEtab ---------------------------------------------------------
    @classmethod
    def from_table(cls, model: Model, data, *, conditions: Mapping | None = None,
                   noise: str = "normal", name: str | None = None, **kw) -> Problem:
        """A problem from a DataFrame with columns ``time``, ``observable`` (a state or
        model observable), ``value``, optional ``sigma`` and ``condition``.

        Model parameters with ``estimate=True`` are estimated on their scales within their
        bounds. Without a ``sigma`` column one noise level ``sigma_<observable>`` per
        observable is estimated (log10 scale, bounds 1e-6..1e6, nominal 1).
        ``conditions``: ``{condition: {parameter or state: value}}`` for the ``condition``
        column (default: one condition, ``"default"``).
        """
        import pandas as pd

        df = pd.DataFrame(data)
        for col in ("time", "observable", "value"):
            if col not in df.columns:
                raise InputError(f"data: required column {col!r} is missing; columns: "
                                 f"{', '.join(map(str, df.columns))}")
        names = set(model.state_names) | set(model.observable_names)
        obs_ids = list(dict.fromkeys(df["observable"].astype(str)))
        for o in obs_ids:
            if o not in names:
                raise InputError(f"data: observable {o!r} is not a state or observable of "
                                 f"model {model.name!r}")
        params = [p for p in model.parameters]
        specs = []
        for o in obs_ids:
            if "sigma" in df.columns:
                noise_f = parse_formula(f"noiseParameter1_{o}", "noise")
            else:
                sid = f"sigma_{o}"
                if sid in model.parameter_names:
                    raise ModelError(f"model parameter {sid!r} clashes with the noise "
                                     f"parameter of observable {o!r}")
                params.append(Parameter(sid, 1.0, 1e-6, 1e6, "log10"))
                noise_f = parse_formula(sid, "noise")
            specs.append(ObservableSpec(o, parse_formula(o, "observable"), noise_f,
                                        "lin", noise))
        cond = df["condition"].astype(str) if "condition" in df.columns else "default"
        meas = pd.DataFrame({
            "observableId": df["observable"].astype(str), "simulationConditionId": cond,
            "time": df["time"], "measurement": df["value"]})
        if "sigma" in df.columns:
            meas["noiseParameters"] = df["sigma"].astype(float)
        conds = {str(k): dict(v) for k, v in (conditions or {}).items()}
        for c in set(meas["simulationConditionId"]):
            conds.setdefault(c, {})
        return cls(model, params, conds, specs, meas, name=name or model.name,
                   sources={"measurements": "data"}, **kw)

    def __repr__(self):
        return (f"Problem({self.name!r}, model={self.model.name!r}, "
                f"estimated={list(self.parameter_ids)}, measurements={len(self.measurements)})")
