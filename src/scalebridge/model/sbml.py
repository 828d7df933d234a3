"""SBML import: ``load_sbml(path_or_text) -> Model``.

The SBML model is translated into a :class:`~scalebridge.model.model.Model` whose math is
compiled from libsbml's ASTs into JAX functions (:mod:`._sbml_math`); nothing from the file
is evaluated as Python source.

Mapping (matching what libroadrunner reports with ``[id]`` selections for concentrations):

- **States** are species (their concentration, or their amount where
  ``hasOnlySubstanceUnits`` is true), and parameters and compartments with a rate rule or
  changed by events. One declared ``constant="false"`` that nothing changes is a parameter
  (PEtab problems often declare their condition parameters so): a state with a zero
  derivative would only make the system larger. Species change by
  ``sum(stoichiometry * rate) * conversionFactor / volume`` (kinetic laws are amount/time);
  boundary species are not changed by reactions; species with rate rules follow the rule.
  When a compartment grows by a rate rule, the dilution ``-c * dV/dt / V`` is included; an
  event that changes a compartment's size keeps the amounts of its species. The rates are
  computed in a few vectorised operations (kinetic laws of one shape evaluated together,
  :mod:`._sbml_rates`) and summed into the species by one segment sum, so the compiled
  program does not grow with the number of reactions.
- **Parameters** of the Model, in this order: constant compartment sizes, constant global
  parameters, and reaction-local parameters named ``<reactionId>_<parameterId>`` (extra
  underscores are inserted in the rare case that name is taken). Values are the SBML values.
- **Observables**: variables of assignment rules (species included, so a species defined by
  a rule is an observable, not a state), constant species, and constant parameters or
  compartments set by initial assignments.
- **Initial state**: SBML time starts at 0; initial assignments and assignment rules are
  evaluated at ``t = 0``. The Model's ``initial`` is a function of the parameter vector when
  any initial value depends on a parameter, a tuple of numbers otherwise.
- **Events**: when no event of the model has a delay, a priority or a non-persistent
  trigger, a trigger ``time >= T`` (or ``time > T``, ``T <= time``, ``T < time``) with a
  number ``T`` fires exactly at ``T`` (:class:`~scalebridge.model.events.Event` with
  ``times``). Every other trigger becomes a state-triggered Event whose trigger function
  ``g`` is positive where the trigger holds: ``a > b`` and ``a >= b`` give ``a - b``,
  ``a < b`` and ``a <= b`` give ``b - a`` (chained relations: the minimum over adjacent
  pairs), ``and`` / ``or`` the minimum / maximum of their arguments, ``not x`` gives
  ``-g_x``, ``xor`` and ``implies`` are composed from these, ``true`` / ``false`` give +1 /
  -1, and function definitions are inlined. The event triggers where ``g`` crosses zero
  upwards, at the root-found time, and again only after the trigger has been false
  (``time >= k`` with a parameter ``k`` is such an event, so ``k`` can be estimated).
  Delays, priorities, persistence, ``useValuesFromTriggerTime`` and ``initialValue`` follow
  SBML (:mod:`scalebridge.event_queue`): executions wait in a queue, those due at one
  instant go in order of priority, and each may trigger others. Since ``g = 0`` counts as
  false, ``>=`` behaves like ``>``: the two differ only at the instant of equality, except
  that a trigger sitting exactly on its threshold at t=0 (e.g. ``time >= k`` with ``k = 0``)
  is taken as false there and fires as soon as it is strictly true (just after t=0)
  whatever its ``initialValue``. The root finder needs ``g`` to be continuous in time: a
  relation whose operands jump while the model runs (``piecewise``, ``floor`` of time or
  states) makes the simulation fail. Equal priorities execute in random order, from a
  fixed seed (a run repeats exactly); events without priority in the order they triggered.

- **Algebraic rules** (``0 = f``): each determines one variable that nothing else does
  (a non-constant symbol without rules, a species no reaction changes; a matching of rules
  to the symbols they read), an observable whose value solves all algebraic rules together
  by Newton's method from the value in the file, at every evaluation (an index-1
  differential-algebraic system reduced to an ODE).
- **Fast reactions** (Level 2, Level 3 Version 1) are in equilibrium at every instant: the
  species they change are solved, with the algebraic rules, from ``rate = 0`` for each
  fast reaction and the amounts they conserve (a basis ``L`` of the left null space of
  their stoichiometry matrix); those amounts are new states, ``fast_pool_1``, ...,
  changed by the slow reactions only, and start from the file's initial values (which the
  species then leave at t=0 for the equilibrium).

Raised as :class:`~scalebridge.errors.SBMLError`, naming the element: unreadable files,
overdetermined algebraic rules, ``delay()``, ``rateOf()`` of a symbol set by a rule or a
reaction (of a state it is its derivative, of a constant zero), linearly dependent fast
reactions or ones with a variable stoichiometry, event
triggers with ``==``, ``!=`` or other non-relational forms (piecewise, numbers), and other
required packages. Variable stoichiometries (species references set by rules,
initial assignments or events, and Level 2 stoichiometryMath) are symbols of the model.
Hierarchical models (``comp``) are flattened by libsbml's converter first.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import libsbml
import numpy as np

from ..errors import InputError, SBMLError
from ._sbml_math import Expr, MathCompiler, formula, names_in
from ._sbml_rates import MIN_GROUP, RateTable
from .events import Assignments, Event
from .model import Model
from .parameter import Parameter

__all__ = ["load_sbml"]

# packages that do not change the ODEs (l3v2extendedmath is libsbml's own marker)
_HARMLESS_PACKAGES = {"layout", "render", "l3v2extendedmath"}


def load_sbml(source: str | os.PathLike) -> Model:
    """Build a :class:`Model` from an SBML file path or from SBML text.

    The Model is stiff (Kvaerno5 by default) and keeps the text as ``source=("sbml", text)``
    so it can be rebuilt. See the module docstring for how SBML maps onto the Model.
    Raises :class:`~scalebridge.errors.SBMLError` for unreadable or unsupported SBML.
    """
    text, where, stem = _read_source(source)
    doc = _parse(text, where)
    builder = _Builder(doc.getModel(), where)
    return builder.build(text, stem)


# ----- reading --------------------------------------------------------------------------
def _read_source(source) -> tuple[str, str, str]:
    """(SBML text, description for messages, fallback model name)."""
    if isinstance(source, bytes):
        source = source.decode("utf-8")
    if isinstance(source, str) and source.lstrip().startswith("<"):
        return source, "SBML text", "sbml_model"
    if not isinstance(source, str | os.PathLike):
        raise InputError(f"load_sbml takes a file path or SBML text, got {type(source).__name__}")
    path = Path(source)
    try:
        found = path.is_file()
    except OSError:
        found = False
    if not found:
        raise SBMLError(f"SBML file {str(path)!r} does not exist; give the path of an SBML "
                        "file or the SBML text itself")
    from ..runtime.files import read_text

    return read_text(path, "SBML file"), str(path), path.stem


def _clip(message: str, limit: int = 300) -> str:
    """A libsbml message on one line, cut to ``limit`` characters."""
    text = " ".join(message.split())
    return text if len(text) <= limit else text[:limit] + "..."


# an undefined unit identifier (rule 10313) says nothing about the numbers: a warning
_UNIT_REFERENCES = {10313}


def _check_consistency(doc, where: str) -> None:
    """libsbml's consistency checks (identifiers, MathML, general and overdetermined-model
    rules; units, modelling practice and SBO terms are left out, as most published models
    fail them harmlessly): an error refuses the model, a warning is passed on."""
    import warnings

    for cat in (libsbml.LIBSBML_CAT_UNITS_CONSISTENCY, libsbml.LIBSBML_CAT_MODELING_PRACTICE,
                libsbml.LIBSBML_CAT_SBO_CONSISTENCY):
        doc.setConsistencyChecks(cat, False)
    doc.checkConsistency()
    found = [doc.getError(i) for i in range(doc.getNumErrors())]
    errors = [e for e in found if e.getSeverity() >= libsbml.LIBSBML_SEV_ERROR
              and e.getErrorId() not in _UNIT_REFERENCES]
    if errors:
        e = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise SBMLError(f"{where}: fails libsbml's consistency check (line {e.getLine()}, "
                        f"rule {e.getErrorId()}): {_clip(e.getMessage())}{more}")
    for e in found:
        if e.getSeverity() == libsbml.LIBSBML_SEV_WARNING or e.getErrorId() in _UNIT_REFERENCES:
            warnings.warn(f"{where}: libsbml consistency warning (line {e.getLine()}, rule "
                          f"{e.getErrorId()}): {_clip(e.getMessage())}",
                          stacklevel=3)


def _parse(text: str, where: str):
    doc = libsbml.SBMLReader().readSBMLFromString(text)
    for i in range(doc.getNumErrors()):
        err = doc.getError(i)
        if err.getSeverity() >= libsbml.LIBSBML_SEV_ERROR:
            raise SBMLError(f"{where}: not valid SBML (line {err.getLine()}): "
                            f"{err.getMessage().strip()}")
    if doc.getModel() is None:
        raise SBMLError(f"{where}: the document contains no <model>")
    comp = doc.getLevel() >= 3 and doc.isPackageEnabled("comp")
    if comp and doc.getPlugin("comp").getNumExternalModelDefinitions():
        raise SBMLError(f"{where}: uses external model definitions (comp package), which "
                        "refer to other files; flatten the model first, e.g. with libsbml's "
                        "CompFlatteningConverter where those files are")
    _check_consistency(doc, where)
    if comp:
        doc = _flatten(doc, where)
    for i in range(doc.getNumPlugins() if doc.getLevel() >= 3 else 0):
        pkg = doc.getPlugin(i).getPackageName()
        if not doc.isPackageEnabled(pkg) or pkg in _HARMLESS_PACKAGES:
            continue
        if doc.getPackageRequired(pkg):
            raise SBMLError(f"{where}: requires the SBML package {pkg!r}, which is not "
                            "supported; only SBML core models can be loaded")
    return doc


def _flatten(doc, where: str):
    """A hierarchical model (the ``comp`` package) as one flat model, by libsbml's
    CompFlatteningConverter. Only model definitions inside the document are used (external
    model definitions, which name other files, are refused before libsbml would open
    them)."""
    props = libsbml.ConversionProperties()
    props.addOption("flatten comp", True)
    props.addOption("leave_ports", False)
    props.addOption("performValidation", False)
    if doc.convert(props) != libsbml.LIBSBML_OPERATION_SUCCESS:
        errors = [doc.getError(i) for i in range(doc.getNumErrors())
                  if doc.getError(i).getSeverity() >= libsbml.LIBSBML_SEV_ERROR]
        why = _clip(errors[0].getMessage()) if errors else "no reason given"
        raise SBMLError(f"{where}: the hierarchical model (comp package) could not be "
                        f"flattened: {why}")
    return doc


# ----- evaluation environment ------------------------------------------------------------
@dataclass(frozen=True)
class _Sym:
    """How one SBML symbol gets its value: ``kind`` is param, state, const, derived (a
    constant fixed at t=0), rule (assignment rule) or reaction (its rate)."""

    kind: str
    index: int = -1
    value: float = 0.0


class _Env:
    """Values of SBML symbols at ``(t, y, p)``, computed on demand and cached.

    With ``initial=True`` it is the environment at t=0: states take their initial values.
    """

    def __init__(self, prog: _Program, t, y, p, initial: bool = False):
        self.prog, self.y, self.p, self.initial = prog, y, p, initial
        self._t = t
        self.read_params = False
        self._cache: dict[str, object] = {}
        self._vectors: dict[str, object] = {}  # the rate and flow vectors, once computed
        self._active: list[str] = []
        self._at_start: _Env | None = None
        self._pieces: dict[str, list] = {}

    @property
    def t(self):
        if not isinstance(self._t, float):  # converted once, not at every use
            self._t = jnp.asarray(self._t, jnp.float64)
        return self._t

    def element(self, vector: str, i: int):
        """Element ``i`` of ``y`` or ``p``: the vector is split once (one operation) and
        each element used is one reshape, where indexing costs a slice and a squeeze per
        element in every copy of the right-hand side in a compiled program. (Computing on
        the pieces of shape ``(1,)`` without the reshape makes f smaller but its
        derivatives larger: Isensee's second derivative 2921 operations against 2288.)"""
        if vector not in self._pieces:
            v = jnp.asarray(getattr(self, vector))
            self._pieces[vector] = jnp.split(v, v.shape[0]) if v.ndim == 1 else None
        pieces = self._pieces[vector]
        return getattr(self, vector)[i] if pieces is None else jnp.reshape(pieces[i], ())

    def __getitem__(self, name: str):
        if name in self._cache:
            return self._cache[name]
        if name in self._active:
            loop = " -> ".join(self._active[self._active.index(name):] + [name])
            raise SBMLError(f"circular dependency among rules or initial assignments: {loop}")
        self._active.append(name)
        try:
            value = self.prog.evaluate(name, self)
        finally:
            self._active.pop()
        self._cache[name] = value
        return value

    def vector(self, which: str):
        """The reactions' ``rates`` or the species' amount ``flows`` (per state), computed
        once per environment."""
        if which not in self._vectors:
            prog = self.prog
            if which == "table":
                y = self.y if not self.initial else _stack([self[s] for s in prog.states])
                value = prog.table.rates(self, y, self.p)
            elif which == "rates":  # the table's, then laws that read rates, one by one
                rest = [self[rid] for rid in prog.rate_order[len(prog.table.order):]]
                value = jnp.concatenate([self.vector("table"), _stack(rest)]) if rest \
                    else self.vector("table")
            else:
                pos, rows, n = prog.flows
                value = jax.ops.segment_sum(n * self.vector("rates")[pos], rows,
                                            num_segments=len(prog.states))
            self._vectors[which] = value
        return self._vectors[which]

    def with_values(self, values: dict) -> _Env:
        """The same point with some symbols given (nothing else cached)."""
        child = _Env(self.prog, self._t, self.y, self.p, self.initial)
        child._cache.update(values)
        return child

    def at_start(self) -> _Env:
        """The environment at t=0 with the same parameters (for constants set at t=0)."""
        if self.initial:
            return self
        if self._at_start is None:
            self._at_start = _Env(self.prog, 0.0, None, self.p, initial=True)
        return self._at_start


class _Program:
    """Compiled symbols of one SBML model."""

    def __init__(self):
        self.syms: dict[str, _Sym] = {}
        self.exprs: dict[str, Expr] = {}  # rule, derived and reaction math
        self.init_exprs: dict[str, Expr] = {}  # initial value of each state
        self.states: list[str] = []
        self.table: RateTable | None = None  # rates of the reactions, vectorised
        self.rate_order: list[str] = []  # the table's reactions, then the others
        self.flows: tuple = ()  # (rate positions, state rows, stoichiometries)
        self.state_flows: list[list[tuple[str, float]]] = []  # per state: (reaction, n)
        self.scale: tuple = ([], None, None)  # (symbols, numerator, denominator) per state
        self.derivs: dict[int, Expr] = {}  # states whose derivative is not flows * scale
        self._last: tuple | None = None  # (t, y, p, env) of the last observable evaluated

    def evaluate(self, name: str, env: _Env):
        sym = self.syms[name]
        if sym.kind == "param":
            env.read_params = True
            return env.element("p", sym.index)
        if sym.kind == "const":
            return sym.value
        if sym.kind == "state":
            return self.init_exprs[name](env) if env.initial else env.element("y", sym.index)
        if sym.kind == "derived":
            start = env.at_start()
            value = start[name] if start is not env else self.exprs[name](env)
            env.read_params |= start.read_params
            return value
        if sym.kind == "reaction" and name in self.table.position:
            return env.vector("table")[self.table.position[name]]
        return self.exprs[name](env)  # rule, reaction

    def flow(self, env, i: int):
        """The amount flow into state ``i``: ``sum(stoichiometry * rate)``."""
        if self.table.order:
            return env.vector("flows")[i] if self.flows else 0.0
        return _flow_sum(env, self.state_flows[i])

    def derivative(self, env, i: int):
        """dy_i/dt alone (rateOf, and the scalar right-hand side)."""
        if i in self.derivs:
            return self.derivs[i](env)
        symbols, numer, denom = self.scale
        d = self.flow(env, i)
        if numer[i]:
            d = d * env[symbols[numer[i] - 1]]
        return d / env[symbols[denom[i] - 1]] if denom[i] else d

    def rhs(self, t, y, p, u=None):
        """dy/dt: flows times scales, as vectors where the rate table has vectorised laws,
        else one scalar sum per state (which XLA fuses into one loop)."""
        env = _Env(self, t, y, p)
        symbols, numer, denom = self.scale
        if not self.table.order:
            return _stack([self.derivative(env, i) for i in range(len(self.states))])
        out = env.vector("flows") if self.flows else jnp.zeros(len(self.states))
        if symbols:
            values = _stack([1.0] + [env[n] for n in symbols])
            out = out * (values[numer] / values[denom])
        if self.derivs:
            rows = np.array(list(self.derivs), dtype=np.int32)
            out = out.at[rows].set(_stack([d(env) for d in self.derivs.values()]))
        return out

    def initial(self, p):
        env = _Env(self, 0.0, None, p, initial=True)
        return _stack([env[s] for s in self.states])

    def observable(self, name: str) -> Callable:
        return lambda t, y, p: self._env_at(t, y, p)[name]

    def _env_at(self, t, y, p) -> _Env:
        """One environment for the observables evaluated at the same ``(t, y, p)`` (the
        same objects: one call of a model's ``observe``), so that what they share (the
        rates, an algebraic solve) is computed once."""
        last = self._last
        if last is not None and last[0] is t and last[1] is y and last[2] is p:
            return last[3]
        env = _Env(self, t, y, p)
        self._last = (t, y, p, env)
        return env


def _stack(values):
    if not values:
        return jnp.zeros(0)
    return jnp.stack([jnp.asarray(v, dtype=jnp.float64) for v in values])


# ----- building ---------------------------------------------------------------------------
def _label(kind: str, el) -> str:
    ident = el.getId() if el.isSetId() else ""
    return f"{kind} {ident!r}" if ident else kind


class _Builder:
    """Translates one libsbml Model into a scalebridge Model."""

    def __init__(self, m, where: str):
        self.m, self.where = m, where
        self.prog = _Program()
        self.params: list[Parameter] = []
        self.observables: list[str] = []
        self.assign: dict[str, object] = {}
        self.rate: dict[str, object] = {}
        self.algebraic_rules: list[tuple[str, object]] = []  # (label, math)
        self.algebraic: dict[str, int] = {}  # variable -> the algebraic rule setting it
        self._guesses: dict[str, float] = {}  # algebraic variable -> Newton's first guess
        # (Level 3 Version 2 allows assignments without math: they say nothing)
        self.ia = {a.getSymbol(): a.getMath() for a in m.getListOfInitialAssignments()
                   if a.getMath() is not None}
        self.assigned_by_events = {ea.getVariable() for e in m.getListOfEvents()
                                   for ea in _assignments(e)}
        self._rates: list[tuple[object, dict[str, Expr]]] = []
        # (reaction id, position among reactants and products) -> symbol of a variable
        # stoichiometry; the stoichiometryMath expressions by symbol
        self._stoichiometry: dict[tuple[str, int], str] = {}
        self._stoichiometry_math: dict[str, tuple[object, str]] = {}
        self._traced: list[Callable] = []  # event functions (t, y, p), traced once at load
        every = m.getListOfAllElements()
        self._ids = {el.getId() for el in (every.get(i) for i in range(every.getSize()))
                     if el.isSetId()}
        self.math = MathCompiler(self._functions(), self._resolve, self._rate_of)

    def build(self, text: str, stem: str) -> Model:
        self._rules()
        self._compartments()
        self._species()
        self._parameters()
        self._pools()
        self._reactions()
        # each reaction's rate is reported (not a fast one's: its law is 0 at equilibrium)
        self.observables += [r.getId() for r, _ in self._rates
                             if not (self.fast and r.getId() in self.fast.reactions)]
        self._compile_rules()
        self._derivatives()
        events = self._events()
        breakpoints = self._breakpoints()
        initial = self._initial()
        self._check_traces()
        prog = self.prog
        name = self.m.getId() or self.m.getName() or stem
        return Model(
            states=prog.states, parameters=self.params, rhs=prog.rhs, initial=initial,
            observables={n: prog.observable(n) for n in self.observables}, events=events,
            breakpoints=breakpoints, stiff=True, name=name, source=("sbml", text),
        )

    # ----- symbols ------------------------------------------------------------------------
    def _functions(self):
        out = {}
        for fd in self.m.getListOfFunctionDefinitions():
            lam = fd.getMath()
            if lam is None and self.m.getLevel() >= 3:
                continue  # (Level 3 Version 2 allows it: a call to it is an error)
            if lam is None or not lam.isLambda() or fd.getBody() is None:
                raise SBMLError(f"function definition {fd.getId()!r}: has no lambda; give "
                                "it <lambda> math with arguments and a body")
            args = tuple(fd.getArgument(i).getName() for i in range(fd.getNumArguments()))
            out[fd.getId()] = (args, fd.getBody())
        return out

    def _resolve(self, name: str, where: str) -> Expr:
        if name not in self.prog.syms:
            raise SBMLError(f"{where}: refers to {name!r}, which the model does not define")
        return lambda env: env[name]

    def _rate_of(self, name: str, where: str) -> Expr:
        """``rateOf(name)``: a state's derivative, zero for a symbol that does not change
        in time (a parameter, a constant, a value fixed at t=0)."""
        if name not in self.prog.syms:
            raise SBMLError(f"{where}: rateOf refers to {name!r}, which the model does not "
                            "define")
        kind = self.prog.syms[name].kind
        if kind in ("param", "const", "derived"):
            return lambda env: 0.0
        if kind != "state":
            raise SBMLError(f"{where}: rateOf({name}) of a symbol set by an assignment rule "
                            "or a reaction is not supported; write its rate out instead")
        i, prog = self.prog.syms[name].index, self.prog
        return lambda env: prog.derivative(env, i)

    def _rules(self):
        for i, rule in enumerate(self.m.getListOfRules()):
            if rule.getMath() is None:  # allowed from Level 3 Version 2: the rule says nothing
                continue
            if rule.isAlgebraic():
                self.algebraic_rules.append((f"algebraic rule #{i + 1} "
                                             f"(0 = {formula(rule.getMath())})", rule.getMath()))
                continue
            target = self.assign if rule.isAssignment() else self.rate
            target[rule.getVariable()] = rule.getMath()
        self.algebraic = self._algebraic_variables()
        self.fast = self._fast_reactions()

    def _fast_reactions(self) -> _Fast | None:
        """Fast reactions (SBML Level 2 and Level 3 Version 1) in instantaneous equilibrium:
        the species they change are set by ``rate = 0`` for each, and by the amounts they
        conserve (``L @ amounts``, ``L`` a basis of the left null space of their
        stoichiometry matrix), which only the slow reactions change (pools, new states)."""
        fast = [r for r in self.m.getListOfReactions() if r.isSetFast() and r.getFast()]
        if not fast:
            return None
        species, refs = [], []
        for r in fast:
            where = _label("reaction", r)
            for _, sign, sr in _references(r):
                sp = self.m.getSpecies(sr.getSpecies())
                if sr.isSetStoichiometryMath() or self._varies(sr):
                    raise SBMLError(f"{where}: a fast reaction with a variable stoichiometry "
                                    "is not supported; give it a number")
                sid = sp.getId()
                if sp.getConstant() or sp.getBoundaryCondition() or sid in self.assign \
                        or sid in self.rate or sid in self.algebraic:
                    continue
                if sp.getConversionFactor() or self.m.getConversionFactor():
                    raise SBMLError(f"{where}: a fast reaction changing a species with a "
                                    f"conversion factor ({sid!r}) is not supported")
                if sid not in species:
                    species.append(sid)
                refs.append((r.getId(), sid, sign * _stoichiometry(sr)))
        ids = [r.getId() for r in fast]
        n = np.zeros((len(species), len(fast)))
        for rid, sid, v in refs:
            n[species.index(sid), ids.index(rid)] += v
        u, sv, _ = np.linalg.svd(n) if n.size else (np.eye(len(species)), np.zeros(0), None)
        rank = int(np.sum(sv > 1e-10 * max(1.0, sv.max(initial=0.0))))
        if rank < len(fast):
            raise SBMLError(f"fast reactions {', '.join(map(repr, ids))}: their "
                            "stoichiometries are linearly dependent, so their equilibrium "
                            "does not determine the species; make one of them slow")
        pools = []
        for j in range(len(species) - rank):
            name = f"fast_pool_{j + 1}"
            while name in self._ids:
                name = f"_{name}"
            pools.append(name)
        return _Fast(ids, species, u[:, rank:].T, np.linalg.pinv(n), pools)

    def _algebraic_variables(self) -> dict[str, int]:
        """The variable each algebraic rule determines (by its index in the rules): a
        non-constant symbol that nothing else determines (no rule; a species no reaction
        changes) and that the rule reads, one per rule (a bipartite matching, trying first
        symbols the file gives no value and last those that events change)."""
        if not self.algebraic_rules:
            return {}
        changed = {sr.getSpecies() for r in self.m.getListOfReactions()
                   for sr in (*r.getListOfReactants(), *r.getListOfProducts())}
        free = set()
        for s in self.m.getListOfSpecies():
            if not s.getConstant() and (s.getBoundaryCondition() or s.getId() not in changed):
                free.add(s.getId())
        for el in (*self.m.getListOfParameters(), *self.m.getListOfCompartments()):
            if not el.getConstant():
                free.add(el.getId())
        free -= set(self.assign) | set(self.rate)

        def preference(v):  # first a symbol without a value, last one that events change
            el = self.m.getElementBySId(v)
            valued = el.isSetInitialAmount() or el.isSetInitialConcentration() \
                if isinstance(el, libsbml.Species) else \
                el.isSetSize() if isinstance(el, libsbml.Compartment) else el.isSetValue()
            return v in self.assigned_by_events, valued or v in self.ia, v

        reads = [sorted(set(names_in(ast)) & free, key=preference)
                 for _, ast in self.algebraic_rules]
        owner: dict[str, int] = {}

        def place(i, seen):  # an augmenting path for rule i (Kuhn's algorithm)
            for v in reads[i]:
                if v not in seen:
                    seen.add(v)
                    if v not in owner or place(owner[v], seen):
                        owner[v] = i
                        return True
            return False

        for i, (label, _) in enumerate(self.algebraic_rules):
            if not place(i, set()):
                raise SBMLError(f"{label}: determines no variable (every non-constant symbol "
                                "it reads is set by a rule, a reaction or another algebraic "
                                "rule); the model is overdetermined")
        return owner

    def _add_state(self, name: str, init: Expr):
        self.prog.syms[name] = _Sym("state", len(self.prog.states))
        self.prog.states.append(name)
        self.prog.init_exprs[name] = init

    def _add_algebraic(self, sid: str, guess: float | None):
        """A variable set by an algebraic rule: an observable, the solution of the
        algebraic rules (``_ALGEBRAIC``) starting from its value in the file."""
        k = len(self._guesses)
        self._guesses[sid] = 0.0 if guess is None or not np.isfinite(guess) else float(guess)
        self.prog.syms[sid] = _Sym("rule")
        self.prog.exprs[sid] = lambda env: env[_ALGEBRAIC][k]
        self.observables.append(sid)

    def _add_param(self, name: str, value: float):
        self.prog.syms[name] = _Sym("param", len(self.params))
        self.params.append(Parameter(name, value))

    def _variable(self, kind: str, el, value: float | None, constant: bool):
        """Register a compartment or parameter by its rules and constancy."""
        sid, where = el.getId(), _label(kind, el)
        if sid in self.algebraic:
            self._add_algebraic(sid, value)
        elif sid in self.assign:
            self.prog.syms[sid] = _Sym("rule")
            self.observables.append(sid)
        elif sid in self.rate or (not constant and sid in self.assigned_by_events):
            self._add_state(sid, self._start_value(sid, where, value))
        elif sid in self.ia:
            self.prog.syms[sid] = _Sym("derived")
            self.observables.append(sid)
        elif value is None:
            raise SBMLError(f"{where}: has no value; set its value or give it an initial "
                            "assignment")
        elif not np.isfinite(value):  # INF or NaN: a constant, reported, never estimated
            self.prog.syms[sid] = _Sym("const", value=float(value))
            self.observables.append(sid)
        else:
            self._add_param(sid, value)

    def _start_value(self, sid: str, where: str, value: float | None) -> Expr:
        if sid in self.ia:
            return self._later(sid, "initial")
        if value is None:
            raise SBMLError(f"{where}: has no initial value; set it or give it an initial "
                            "assignment")
        return lambda env: value

    def _later(self, sid: str, what: str) -> Expr:
        """A placeholder compiled in :meth:`_compile_rules`, once every symbol is known."""
        exprs, key = self.prog.exprs, f"{what}:{sid}"
        return lambda env: exprs[key](env)

    def _compartments(self):
        for c in self.m.getListOfCompartments():
            size = c.getSize() if c.isSetSize() else 1.0
            self._variable("compartment", c, size, c.getConstant())

    def _parameters(self):
        for p in self.m.getListOfParameters():
            value = p.getValue() if p.isSetValue() else None
            self._variable("parameter", p, value, p.getConstant())

    def _species(self):
        for s in self.m.getListOfSpecies():
            sid = s.getId()
            if sid in self.algebraic or (self.fast and sid in self.fast.species):
                self._add_algebraic(sid, _initial_number(s))
                continue
            if sid in self.assign:
                self.prog.syms[sid] = _Sym("rule")
                self.observables.append(sid)
                continue
            comp = s.getCompartment()
            sized = self.prog.syms.get(comp)
            varies = sized is not None and sized.kind in ("state", "rule")
            if s.getConstant() and sid not in self.rate and varies and sid not in self.ia \
                    and not s.getHasOnlySubstanceUnits():
                # a constant amount in a compartment whose size changes: its concentration
                # is the amount at t=0 over the size now
                self.prog.syms[sid] = _Sym("rule")
                self.prog.exprs[sid] = _constant_amount(self._species_init(s), comp)
                self.observables.append(sid)
            elif s.getConstant() and sid not in self.rate:
                self.prog.syms[sid] = _Sym("derived")
                if sid not in self.ia:  # else compiled with the initial assignments
                    self.prog.exprs[sid] = self._species_init(s)
                self.observables.append(sid)
            else:
                init = self._later(sid, "initial") if sid in self.ia else self._species_init(s)
                self._add_state(sid, init)

    def _pools(self):
        """The amounts fast reactions conserve, as states: from the species' initial values
        in the file (an initial assignment's where given)."""
        if not self.fast:
            return
        amounts = [self._amount(sid, initial=True) for sid in self.fast.species]
        for j, name in enumerate(self.fast.pools):
            row = self.fast.conserved[j]
            self._add_state(name, lambda env, row=row: sum(
                c * a(env) for c, a in zip(row, amounts, strict=True) if c != 0.0))

    def _amount(self, sid: str, initial: bool = False) -> Expr:
        """A species' amount (its symbol times its compartment's size where it is a
        concentration); with ``initial``, from its initial value in the file."""
        s = self.m.getSpecies(sid)
        if initial:
            value = self._later(sid, "initial") if sid in self.ia else self._species_init(s)
        else:
            value = lambda env: env[sid]  # noqa: E731
        if s.getHasOnlySubstanceUnits():
            return value
        comp = s.getCompartment()
        return lambda env: value(env) * env[comp]

    def _species_init(self, s) -> Expr:
        """Initial concentration (amount where hasOnlySubstanceUnits) from the attributes."""
        where, comp = _label("species", s), s.getCompartment()
        volume = lambda env: env[comp]  # noqa: E731
        amounts = s.getHasOnlySubstanceUnits()
        if s.isSetInitialConcentration():
            c = s.getInitialConcentration()
            return (lambda env: c * volume(env)) if amounts else (lambda env: c)
        if s.isSetInitialAmount():
            a = s.getInitialAmount()
            return (lambda env: a) if amounts else (lambda env: a / volume(env))
        raise SBMLError(f"{where}: has no initial amount or concentration; set one or give it "
                        "an initial assignment")

    def _reactions(self):
        for r in self.m.getListOfReactions():
            where = _label("reaction", r)
            kl = r.getKineticLaw()
            if kl is None or kl.getMath() is None:
                raise SBMLError(f"{where}: has no kinetic law; give it a rate expression")
            names = {}
            locals_ = kl.getListOfLocalParameters() if self.m.getLevel() >= 3 \
                else kl.getListOfParameters()
            for lp in locals_:
                names[lp.getId()] = self._local_name(r.getId(), lp.getId())
                self._add_param(names[lp.getId()], lp.getValue())
            self.prog.syms[r.getId()] = _Sym("reaction")
            self._rates.append((r, names))
            for k, _, sr in _references(r):
                self._species_reference(r.getId(), k, sr, where)

    def _local_name(self, rid: str, pid: str) -> str:
        name = f"{rid}_{pid}"
        while name in self._ids or name in self.prog.syms:
            name = name.replace("_", "__", 1) if "_" in name else f"{name}_"
        return name

    def _varies(self, sr) -> bool:
        """Whether a species reference is a symbol that a rule, an initial assignment or
        events set (its stoichiometry varies or is fixed only at t=0)."""
        sid = sr.getId() if sr.isSetId() else ""
        return bool(sid) and (sid in self.assign or sid in self.rate or sid in self.ia or (
            sid in self.assigned_by_events and not sr.getConstant()))

    def _species_reference(self, rid: str, k: int, sr, where: str):
        """A reactant's or product's stoichiometry: a number, or a symbol where it varies
        (a species reference set by a rule, an initial assignment or events, or Level 2's
        stoichiometryMath, an expression named ``_stoichiometry_<reaction>_<k>``)."""
        sid = sr.getId() if sr.isSetId() else ""
        if sr.isSetStoichiometryMath():
            name = f"_stoichiometry_{rid}_{k}"
            self.prog.syms[name] = _Sym("rule")
            self._stoichiometry_math[name] = (sr.getStoichiometryMath().getMath(),
                                              f"{where}: stoichiometryMath of "
                                              f"{sr.getSpecies()!r}")
            self._stoichiometry[(rid, k)] = name
        elif self._varies(sr):
            label = f"species reference {sid!r} in {where}"
            if sid in self.rate or (sid in self.assigned_by_events and sid not in self.assign):
                self._add_state(sid, self._start_value(sid, label, _stoichiometry(sr)))
            else:
                self.prog.syms[sid] = _Sym("rule" if sid in self.assign else "derived")
                self.observables.append(sid)
            self._stoichiometry[(rid, k)] = sid
        elif sid:
            self.prog.syms[sid] = _Sym("const", value=_stoichiometry(sr))

    # ----- math ---------------------------------------------------------------------------
    def _compile_rules(self):
        prog, math = self.prog, self.math
        for sid, ast in self.assign.items():
            self._require(sid, f"assignment rule for {sid!r}")
            prog.exprs[sid] = math.compile(ast, f"assignment rule for {sid!r}")
        for sid, ast in self.ia.items():
            self._require(sid, f"initial assignment to {sid!r}")
            if prog.syms[sid].kind not in ("derived", "state"):
                raise SBMLError(f"initial assignment to {sid!r}: the symbol is set by an "
                                "assignment rule or is not a variable; remove one of them")
            key = sid if prog.syms[sid].kind == "derived" else f"initial:{sid}"
            prog.exprs[key] = math.compile(ast, f"initial assignment to {sid!r}")
        for name, (ast, where) in self._stoichiometry_math.items():
            prog.exprs[name] = math.compile(ast, where)
        for sid in self.rate:
            self._require(sid, f"rate rule for {sid!r}")
        if self.algebraic_rules or self.fast:
            rules = [math.compile(ast, label) for label, ast in self.algebraic_rules]
            if self.fast:
                rules += self._fast_equations()
            prog.syms[_ALGEBRAIC] = _Sym("rule")
            prog.exprs[_ALGEBRAIC] = _algebraic_solution(
                list(self._guesses), list(self._guesses.values()), rules,
                self._fast_extents() if self.fast else None)
        laws = []
        for r, names in self._rates:
            where = f"kinetic law of reaction {r.getId()!r}"
            ast = r.getKineticLaw().getMath()
            prog.exprs[r.getId()] = math.compile(ast, where, _bound(names))
            if not self._reads_rates(ast, names):
                laws.append((r.getId(), ast, names))
        kinds = {n: (sym.kind, sym.index) for n, sym in prog.syms.items()}
        prog.table = RateTable(laws, math.compile, kinds, len(prog.states), len(self.params),
                               min_group=MIN_GROUP if not self._stoichiometry else len(laws) + 1)
        prog.rate_order = prog.table.order + [r.getId() for r, _ in self._rates
                                              if r.getId() not in prog.table.position]

    def _fast_equations(self) -> list[Expr]:
        """Zero where the fast reactions are in equilibrium: each pool's amount over its
        state, and each fast reaction's rate."""
        fast = self.fast
        amounts = [self._amount(sid) for sid in fast.species]
        out = [lambda env, row=row, pool=pool: sum(
            c * a(env) for c, a in zip(row, amounts, strict=True) if c != 0.0) - env[pool]
            for row, pool in zip(fast.conserved, fast.pools, strict=True)]
        return out + [lambda env, rid=rid: env[rid] for rid in fast.reactions]

    def _fast_extents(self) -> Expr:
        """The fast reactions' extents (their stoichiometry's pseudo-inverse times the
        amounts of their species): the direction of their flow, for the solve."""
        amounts = [self._amount(sid) for sid in self.fast.species]
        extent = self.fast.extent
        return lambda env: jnp.asarray(extent) @ _stack([a(env) for a in amounts])

    def _pool_derivatives(self):
        """A pool's derivative: the slow reactions' flows into its species, combined."""
        fast, prog = self.fast, self.prog
        flows: dict[str, np.ndarray] = {}  # slow reaction -> its flow into each species
        for r in self.m.getListOfReactions():
            if r.getId() in fast.reactions:
                continue
            for k, sign, sr in _references(r):
                if sr.getSpecies() in fast.species:
                    if (r.getId(), k) in self._stoichiometry:
                        raise SBMLError(f"{_label('reaction', r)}: a variable stoichiometry "
                                        "on a species of a fast reaction is not supported")
                    v = flows.setdefault(r.getId(), np.zeros(len(fast.species)))
                    v[fast.species.index(sr.getSpecies())] += sign * _stoichiometry(sr)
        for row, pool in zip(fast.conserved, fast.pools, strict=True):
            terms = [(rid, float(row @ v)) for rid, v in flows.items() if row @ v != 0.0]
            prog.derivs[prog.syms[pool].index] = lambda env, terms=terms: sum(
                c * env[rid] for rid, c in terms) if terms else 0.0

    def _reached(self, names, through_reactions: bool = False) -> set[str]:
        """The symbols ``names`` read, following assignment rules (and, with
        ``through_reactions``, kinetic laws, their local ids mapped to the model's
        parameters) to what those read in turn."""
        local = {r.getId(): ids for r, ids in self._rates}
        out, todo = set(), list(names)
        while todo:
            n = todo.pop()
            if n in out:
                continue
            out.add(n)
            sym = self.prog.syms.get(n)
            if n in self.assign:
                todo.extend(names_in(self.assign[n]))
            elif n in self.algebraic or (self.fast and n in self.fast.species):
                todo.extend(m for _, ast in self.algebraic_rules for m in names_in(ast))
                if self.fast:
                    todo.extend([*self.fast.reactions, *self.fast.pools])
            elif through_reactions and sym is not None and sym.kind == "reaction":
                ids = local[n]
                todo.extend(ids.get(m, m) for m in
                            names_in(self.m.getReaction(n).getKineticLaw().getMath()))
        return out

    def _reads_rates(self, ast, names) -> bool:
        """Whether a law reads a reaction's rate, directly or through assignment rules
        (such a law is evaluated on its own, after the vectorised rates)."""
        syms = self.prog.syms
        return any(n in syms and syms[n].kind == "reaction"
                   for n in self._reached(names.get(m, m) for m in names_in(ast)))

    def _breakpoints(self) -> Callable | None:
        """Times where the right-hand side jumps: each two-sided relation (``<``, ``>``,
        ``<=``, ``>=``) in a kinetic law or rule whose sides are affine in time and free of
        states (``piecewise(0, time - t_on < 0, 1)``) switches where ``lhs - rhs`` is zero.
        A relation that is not affine in time (checked at t = 0, 1, 2) gives no time."""
        A, prog = libsbml, self.prog
        relations = (A.AST_RELATIONAL_LT, A.AST_RELATIONAL_GT, A.AST_RELATIONAL_LEQ,
                     A.AST_RELATIONAL_GEQ)
        found: list[tuple[Expr, Expr]] = []

        def state_free(names):
            for n in self._reached(names):
                sym = prog.syms.get(n)  # (a reaction-local parameter is not in syms)
                if sym is not None and sym.kind not in ("param", "const", "derived") and \
                        not (sym.kind == "rule" and n in self.assign):
                    return False
            return True

        def walk(ast, where, local):
            if ast is None:
                return
            if ast.getType() in relations and ast.getNumChildren() == 2 and _has_time(ast) \
                    and state_free(names_in(ast)):
                found.append(tuple(self.math.compile(ast.getChild(i), where, local)
                                   for i in range(2)))
            for i in range(ast.getNumChildren()):
                walk(ast.getChild(i), where, local)

        for r, names in self._rates:
            walk(r.getKineticLaw().getMath(), f"kinetic law of reaction {r.getId()!r}",
                 _bound(names))
        for kind, rules in (("assignment", self.assign), ("rate", self.rate)):
            for sid, ast in rules.items():
                walk(ast, f"{kind} rule for {sid!r}", None)
        if not found:
            return None
        zeros = jnp.zeros(len(prog.states))

        def breakpoints(p):
            def g(t):
                env = _Env(prog, jnp.asarray(t, jnp.float64), zeros, p)
                return jnp.stack([jnp.asarray(a(env) - b(env), jnp.float64)
                                  for a, b in found])
            g0, g1, g2 = g(0.0), g(1.0), g(2.0)
            slope = g1 - g0
            affine = jnp.abs(g2 - 2.0 * g1 + g0) <= 1e-12 * (jnp.abs(g0) + jnp.abs(g1)
                                                             + jnp.abs(g2))
            ok = affine & (slope != 0)
            return jnp.where(ok, -g0 / jnp.where(ok, slope, 1.0), jnp.inf)

        return breakpoints

    def _require(self, sid: str, where: str):
        if sid not in self.prog.syms:
            raise SBMLError(f"{where}: {sid!r} is no species, compartment or parameter of the "
                            "model")

    def _derivatives(self):
        """Each state's derivative: a species' amount flow (the reactions' rates summed
        with their stoichiometries, in one segment sum) times its conversion factor and
        divided by its compartment's size where it is a concentration; a rate rule's
        expression; zero for anything else. Species in compartments that grow by a rate
        rule also get the dilution term and are evaluated one by one."""
        prog, syms = self.prog, self.prog.syms
        position = {rid: i for i, rid in enumerate(prog.rate_order)}
        prog.state_flows = [[] for _ in prog.states]
        pos, rows, stoich = [], [], []
        for r in self.m.getListOfReactions():
            rid = r.getId()
            for k, sign, sr in _references(r):
                sym = syms.get(sr.getSpecies())
                variable = self._stoichiometry.get((rid, k))
                n = (sign, variable) if variable else sign * _stoichiometry(sr)
                sp = self.m.getSpecies(sr.getSpecies())
                if sym is None or sym.kind != "state" or n == 0.0 or sp is None \
                        or sp.getBoundaryCondition() or sr.getSpecies() in self.rate:
                    continue
                pos.append(position[rid])
                rows.append(sym.index)
                stoich.append(n)
                prog.state_flows[sym.index].append((rid, n))
        flowing = set(rows)
        if pos and prog.table.order:  # (vectorised laws: constant stoichiometries only)
            prog.flows = (np.array(pos, np.int32), np.array(rows, np.int32),
                          np.array(stoich, np.float64))
        symbols: list[str] = []
        numer = np.zeros(len(prog.states), np.int32)
        denom = np.zeros(len(prog.states), np.int32)

        def slot(name):
            if name not in symbols:
                symbols.append(name)
            return symbols.index(name) + 1  # 0 is the number 1

        for i, name in enumerate(prog.states):
            if name in self.rate:
                prog.derivs[i] = self.math.compile(self.rate[name], f"rate rule for {name!r}")
                continue
            s = self.m.getSpecies(name)
            if s is None:
                continue  # a parameter or compartment changed by events only
            comp = s.getCompartment()
            grows = not s.getHasOnlySubstanceUnits() and (
                comp in self.rate or syms[comp].kind == "rule")
            if i not in flowing and not grows:
                continue  # nothing changes it (a concentration in a growing compartment
                # is diluted even where no reaction changes its amount)
            factor_id = s.getConversionFactor() or self.m.getConversionFactor()
            if factor_id:
                self._resolve(factor_id, _label("species", s))
                numer[i] = slot(factor_id)
            if s.getHasOnlySubstanceUnits():
                continue
            if syms[comp].kind == "rule":
                growth = self._rule_rate(comp, f"species {name!r}")
                prog.derivs[i] = self._diluted(i, name, comp, factor_id, growth)
            elif comp in self.rate:
                growth = self.math.compile(self.rate[comp], f"rate rule for {comp!r}")
                prog.derivs[i] = self._diluted(i, name, comp, factor_id, growth)
            else:
                denom[i] = slot(comp)
        prog.scale = (symbols, numer, denom)
        if self.fast:
            self._pool_derivatives()

    def _rule_rate(self, name: str, where: str) -> Expr:
        """d/dt of a symbol set by an assignment rule: the rule's derivative along time and
        along the derivatives of the states it reads (``jax.jvp``). Those states' own
        derivatives must not need this one: a rule that reads a concentration in a
        compartment sized by a rule is refused."""
        prog, deps = self.prog, []
        for n in self._reached([name], through_reactions=True):
            sym = prog.syms.get(n)
            if sym is None or sym.kind != "state":
                continue
            deps.append(sym.index)
            sp = self.m.getSpecies(n)
            if sp is not None and not sp.getHasOnlySubstanceUnits() and \
                    prog.syms[sp.getCompartment()].kind == "rule":
                raise SBMLError(f"{where}: the size of its compartment depends on the "
                                f"concentration {n!r} in a compartment sized by a rule; "
                                "such models are not supported")
        rows = np.array(sorted(deps), dtype=np.int32)

        def rate(env):
            def value(t, y):
                return jnp.asarray(_Env(prog, t, y, env.p)[name], jnp.float64)

            y = jnp.asarray(env.y, jnp.float64)
            ydot = jnp.zeros_like(y)
            if rows.size:
                ydot = ydot.at[rows].set(_stack([prog.derivative(env, j) for j in rows]))
            return jax.jvp(value, (env.t, y), (jnp.ones_like(env.t), ydot))[1]

        return rate

    def _diluted(self, i: int, sid: str, comp: str, factor_id: str | None,
                 growth: Expr) -> Expr:
        """d[S]/dt = (flow * factor - [S] dV/dt) / V for a species in a compartment of
        volume V that changes (by a rate rule, or an assignment rule: ``growth`` is dV/dt)."""

        def rate(env):
            flow = self.prog.flow(env, i)
            if factor_id:
                flow = flow * env[factor_id]
            return (flow - env[sid] * growth(env)) / env[comp]

        return rate

    # ----- events -------------------------------------------------------------------------
    def _events(self) -> list[Event]:
        # (Level 3 Version 2 allows events without trigger math: they never trigger)
        listed = [(i, e) for i, e in enumerate(self.m.getListOfEvents()) if _assignments(e)
                  and e.getTrigger() is not None and e.getTrigger().getMath() is not None]
        # a delay, a priority or a non-persistent trigger anywhere puts every event in the
        # queue of executions (their order at one instant matters); otherwise a trigger
        # ``time >= T`` with a number T is a time event
        queued = any(e.isSetDelay() or e.isSetPriority() or not self._persistent(e)
                     for _, e in listed)
        out = []
        for i, e in listed:
            label = _label("event", e) if e.isSetId() else f"event #{i + 1}"
            name = e.getId() or f"event{i + 1}"
            ast, initial_value = self._trigger_math(e)
            affect = self._affect(e, label)
            if not queued:
                fixed, time = self._fixed_time(ast, initial_value, label)
                if fixed:
                    if time is not None:
                        out.append(Event(affect, times=(time,), name=name))
                    continue
            trigger, holds, relations = self._trigger(ast, label)
            out.append(Event(
                affect, trigger=trigger, holds=holds, relations=relations, name=name,
                delay=self._event_math(e.getDelay() if e.isSetDelay() else None,
                                       f"delay of {label}"),
                priority=self._event_math(e.getPriority() if e.isSetPriority() else None,
                                          f"priority of {label}"),
                persistent=self._persistent(e), fires_at_start=not initial_value,
                at_trigger=e.getUseValuesFromTriggerTime() if self.m.getLevel() >= 3
                or e.isSetUseValuesFromTriggerTime() else True))
        return out

    def _persistent(self, e) -> bool:
        trig = e.getTrigger()
        return trig is None or self.m.getLevel() < 3 or trig.getPersistent()

    def _event_math(self, element, where: str) -> Callable | None:
        """A delay's or priority's math as a function ``(t, y, p)`` (None if absent)."""
        if element is None or element.getMath() is None:
            return None
        expr, prog = self.math.compile(element.getMath(), where), self.prog

        def value(t, y, p):
            return jnp.asarray(expr(_Env(prog, t, y, p)), jnp.float64)

        self._traced.append(value)
        return value

    def _trigger_math(self, e):
        """The trigger's AST and initialValue (Level 2: true)."""
        trig = e.getTrigger()
        return trig.getMath(), trig.getInitialValue() if self.m.getLevel() >= 3 else True

    def _fixed_time(self, ast, initial_value: bool, label: str) -> tuple[bool, float | None]:
        """For a ``time >= T`` trigger with a number ``T``: (True, its firing time or None if
        it never fires); (False, None) for any other trigger."""
        bound, strict = _time_bound(ast)
        if bound is None or names_in(bound):
            return False, None
        t = float(self.math.compile(bound, f"trigger of {label}")(None))
        if t < 0 or (t == 0 and not strict):  # already true at t=0
            return True, (None if initial_value else 0.0)
        return True, t

    def _trigger(self, ast, label: str) -> tuple[Callable, Callable, Callable | None]:
        """The trigger function ``g(t, y, p)``, positive where the trigger holds,
        ``holds(t, y, p)``, its truth (at equality, ``>=`` holds and ``>`` does not), and
        where it combines several relations, their values (None otherwise)."""
        where = f"trigger of {label}"
        try:
            g, parts = self.math.trigger_parts(ast, where)
        except SBMLError as err:  # an error inside a function definition: name the event
            if label in str(err):
                raise
            raise SBMLError(f"{where}: {err}") from None
        prog, h = self.prog, self.math.compile(ast, where)

        def trigger(t, y, p):
            return jnp.asarray(g(_Env(prog, t, y, p)), dtype=jnp.float64)

        def holds(t, y, p):
            return jnp.asarray(h(_Env(prog, t, y, p))) != 0

        def relations(t, y, p):
            env = _Env(prog, t, y, p)
            return _stack([f(env) for f in parts])

        self._traced += [trigger, holds]
        if len(parts) < 2:
            return trigger, holds, None
        self._traced.append(relations)
        return trigger, holds, relations

    def _affect(self, e, label: str) -> _EventAssignments:
        prog, targets = self.prog, []
        for ea in _assignments(e):
            var = ea.getVariable()
            if var not in prog.syms or prog.syms[var].kind != "state":
                raise SBMLError(f"{label}: assigns to {var!r}, which is not a variable species, "
                                "parameter or compartment (constant=false, no assignment rule)")
            expr = self.math.compile(ea.getMath(), f"{label}, assignment to {var!r}")
            targets.append((prog.syms[var].index, expr))
        rescale = self._rescaled(e)
        return _EventAssignments(prog, tuple(targets), tuple(rescale))

    def _rescaled(self, e) -> list[tuple[int, int]]:
        """(compartment, species) for each concentration in a compartment the event
        resizes: its amount is kept, or, if the event assigns the concentration too, set
        from the size before the event (SBML: all assignments read the state before any
        is made; case 01779)."""
        out = []
        syms = self.prog.syms
        for ea in _assignments(e):
            comp = self.m.getCompartment(ea.getVariable())
            if comp is None:
                continue
            for s in self.m.getListOfSpecies():
                sym = syms.get(s.getId())
                if (s.getCompartment() == comp.getId() and sym and sym.kind == "state"
                        and not s.getHasOnlySubstanceUnits()):
                    out.append((syms[comp.getId()].index, sym.index))
        return out

    # ----- initial state and checks -------------------------------------------------------
    def _initial(self):
        prog = self.prog
        p0 = jnp.asarray([p.value for p in self.params], dtype=jnp.float64)
        env = _Env(prog, 0.0, None, p0, initial=True)
        y0 = _stack([env[s] for s in prog.states])
        if env.read_params:
            return prog.initial
        return tuple(float(v) for v in np.asarray(y0))

    def _check_traces(self):
        """Trace rhs and observables once so SBML errors surface here, unwrapped."""
        prog = self.prog
        p = jax.ShapeDtypeStruct((len(self.params),), jnp.float64)
        y = jax.ShapeDtypeStruct((len(prog.states),), jnp.float64)
        t = jax.ShapeDtypeStruct((), jnp.float64)
        jax.eval_shape(prog.rhs, t, y, p)
        # together: at one (t, y, p) they share one environment (one algebraic solve)
        observables = [prog.observable(name) for name in self.observables]
        jax.eval_shape(lambda t, y, p: [f(t, y, p) for f in observables], t, y, p)
        for trigger in self._traced:
            jax.eval_shape(trigger, t, y, p)


def _bound(names: dict[str, str]) -> dict[str, Expr]:
    """Reaction-local parameter ids bound to the model parameters that hold them."""
    return {lid: (lambda n: lambda env: env[n])(name) for lid, name in names.items()}


class _EventAssignments(Assignments):
    """An SBML event's assignments: all values computed first (at the trigger or at the
    execution), then set; the concentrations in a compartment whose size is assigned are
    rescaled (an amount is kept, or set by the assigned concentration and the old size)."""

    prog: object = eqx.field(static=True)
    targets: tuple = eqx.field(static=True)  # (state index, math) per assignment
    rescale: tuple = eqx.field(static=True)  # (compartment index, species index)

    def values(self, t, y, p):
        env = _Env(self.prog, t, y, p)
        return _stack([f(env) for _, f in self.targets])

    def assign(self, t, y, p, values):
        new = y
        for k, (i, _) in enumerate(self.targets):
            new = new.at[i].set(values[k])
        for ci, si in self.rescale:
            new = new.at[si].set(new[si] * y[ci] / new[ci])
        return new, p


@dataclass(frozen=True)
class _Fast:
    """Fast reactions: their ids, the species they change, the rows of ``L`` (amounts
    conserved by them), the pseudo-inverse of their stoichiometry matrix (amounts to
    extents of reaction) and the names of the pool states holding the conserved amounts."""

    reactions: list
    species: list
    conserved: np.ndarray
    extent: np.ndarray
    pools: list


_ALGEBRAIC = "algebraic:"  # the symbol of the algebraic rules' solution (no SBML id has ':')
NEWTON_STEPS = 12
FAST_STEPS = 40  # pseudo-time steps where fast reactions equilibrate


def _algebraic_solution(names: list[str], guesses: list[float], rules: list[Expr],
                        extents: Expr | None = None) -> Expr:
    """The values of the algebraic variables ``names`` that make every rule zero, by
    Newton's method with the Jacobian from automatic differentiation (a fixed number of
    steps, so the solve differentiates; a rule linear in its variables is solved by the
    first). Each step evaluates the rules where the variables take the step's values.

    With fast reactions (their rates the last rules, ``extents`` their extents of
    reaction), the rates' rows follow the reactions' own flow from the first guess,
    ``d extent / d tau = rate``, by linearly implicit Euler steps in a pseudo-time whose
    step grows as the rates fall (pseudo-transient continuation with switched evolution
    relaxation; Kelley & Keyes 1998, SIAM J Numer Anal 35:508). So the equilibrium found
    is the one the reactions run to (``k S1 S2`` with ``k < 0`` empties ``S2``, where
    Newton alone may find ``S1 = 0``), and the last steps are Newton's."""

    def solve(env):
        children = []

        def residual(v):
            child = env.with_values(dict(zip(names, v, strict=True)))
            children.append(child)
            x = extents(child) if extents is not None else jnp.zeros(0)
            return _stack([f(child) for f in rules]), x

        def newton(jac, r, v):
            d = jnp.linalg.solve(jac, r)
            # a singular Jacobian (a fast rate k * S at k = 0): a regularised least-squares
            # step instead (Levenberg 1944), which moves the equations it can
            normal = jac.T @ jac
            mu = 1e-12 * (jnp.trace(normal) + 1e-300)
            reg = jnp.linalg.solve(normal + mu * jnp.eye(v.shape[0]), jac.T @ r)
            return v - jnp.where(jnp.all(jnp.isfinite(d)), d, reg)

        v0 = jnp.asarray(guesses, jnp.float64)
        if extents is None:
            def step(_, v):
                (jac, _), (r, _) = jax.jacfwd(residual)(v), residual(v)
                return newton(jac, r, v)

            v = jax.lax.fori_loop(0, NEWTON_STEPS, step, v0)
        else:
            # (the pseudo-time steps are a means, not differentiated: at the solution, the
            # last steps are Newton's, whose derivative is the implicit one)
            (_, jx0), (r0, _) = jax.lax.stop_gradient((jax.jacfwd(residual)(v0),
                                                       residual(v0)))
            k = jx0.shape[0]
            # the first pseudo-time step moves the extents by a twentieth of their size
            size = jnp.max(jnp.abs(jx0 @ v0)) + jnp.max(jnp.abs(jx0)) * jnp.max(jnp.abs(v0))
            speed = jnp.max(jnp.abs(r0[-k:]))
            tau0 = jnp.clip(0.05 * size / (speed + 1e-300), 1e-12, 1e20)

            def step(_, carry):
                v, tau, last = carry
                (jac, jx), (r, _) = jax.jacfwd(residual)(v), residual(v)
                now = jnp.sqrt(jnp.sum(jax.lax.stop_gradient(r) ** 2))
                tau = jnp.clip(tau * jnp.clip(2.0 * (last + 1e-300) / (now + 1e-300),
                                              0.2, 100.0), 1e-12, 1e20)
                jac = jac.at[-k:].add(-jx / tau)
                return newton(jac, r, v), tau, now

            first = jnp.sqrt(jnp.sum(r0 ** 2))
            v, _, _ = jax.lax.fori_loop(0, FAST_STEPS, step, (v0, tau0 / 2.0, first))
        env.read_params |= any(c.read_params for c in children)
        return v

    return solve


def _initial_number(s) -> float | None:
    """A species' initial concentration or amount as written (a first guess only)."""
    if s.isSetInitialConcentration():
        return s.getInitialConcentration()
    return s.getInitialAmount() if s.isSetInitialAmount() else None


def _assignments(event) -> list:
    """An event's assignments that have math (Level 3 Version 2 allows ones without, which
    say nothing)."""
    return [ea for ea in event.getListOfEventAssignments() if ea.getMath() is not None]


def _constant_amount(init: Expr, comp: str) -> Expr:
    """The concentration of a constant amount in compartment ``comp``: its value at t=0
    times the size at t=0, over the size now."""
    return lambda env: init(env.at_start()) * env.at_start()[comp] / env[comp]


def _flow_sum(env, flows):
    """``sum(n * rate)`` over a species' flows, without multiplications by 1 or -1 and
    without a leading zero (each is an operation in every copy of the right-hand side)."""
    total = None
    for rid, n in flows:
        r = env[rid]
        if isinstance(n, tuple):  # (sign, symbol) of a variable stoichiometry
            sign, name = n
            r, n = env[name] * r, sign
        if total is None:
            total = r if n == 1.0 else -r if n == -1.0 else n * r
        else:
            total = total + r if n == 1.0 else total - r if n == -1.0 else total + n * r
    return 0.0 if total is None else total


def _references(r) -> list[tuple[int, float, object]]:
    """A reaction's reactants, then products: (position, sign, species reference)."""
    nr = r.getNumReactants()
    return [(k, -1.0 if k < nr else 1.0, sr)
            for k, sr in enumerate([*r.getListOfReactants(), *r.getListOfProducts()])]


def _stoichiometry(sr) -> float:
    value = sr.getStoichiometry()
    return 1.0 if value is None or np.isnan(value) else float(value)


def _time_bound(ast):
    """For ``time >= T`` / ``time > T`` / ``T <= time`` / ``T < time``: (T's AST, strict)."""
    A = libsbml
    t = ast.getType()
    if ast.getNumChildren() != 2:
        return None, False
    left, right = ast.getChild(0), ast.getChild(1)
    is_time = lambda node: node.getType() == A.AST_NAME_TIME  # noqa: E731
    if t in (A.AST_RELATIONAL_GEQ, A.AST_RELATIONAL_GT) and is_time(left):
        bound = right
    elif t in (A.AST_RELATIONAL_LEQ, A.AST_RELATIONAL_LT) and is_time(right):
        bound = left
    else:
        return None, False
    if _has_time(bound):
        return None, False
    return bound, t in (A.AST_RELATIONAL_GT, A.AST_RELATIONAL_LT)


def _has_time(ast) -> bool:
    if ast.getType() == libsbml.AST_NAME_TIME:
        return True
    return any(_has_time(ast.getChild(i)) for i in range(ast.getNumChildren()))
