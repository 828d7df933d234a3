"""Feature libraries for sparse regression: the candidate terms of a right-hand side.

A library, bound to input names (states, then control inputs), gives a tuple of
:class:`Term` objects. Each term has a readable name (``1``, ``x``, ``x*y``, ``x^2``,
``sin(2*x)``), an SBML infix formula where one exists, and a JAX function of the input
matrix, so evaluation compiles and runs on whole trajectories at once.

Libraries combine: ``a + b`` concatenates (duplicate terms are kept once), ``a * b`` takes
all products of a term of ``a`` with a term of ``b`` (a tensor product), and every library
takes ``inputs=`` to use only some of the inputs (by name or index). This follows the
library design of PySINDy (de Silva et al. 2020, JOSS 5:2104; Kaptanoglu et al. 2022,
JOSS 7:3994).
"""

from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputError


@dataclass(frozen=True, eq=False)
class Term:
    """One candidate term: ``fn(Z) -> column`` for an input matrix ``Z`` of shape
    ``(..., n_inputs)``.

    ``powers`` is the exponent of each input for a monomial (``None`` otherwise), used to
    simplify products and to write SBML; ``formula`` is an SBML level-3 infix formula in
    the input names, or ``None`` when the term has none (a custom function without one).
    """

    name: str
    fn: Callable
    formula: str | None
    powers: tuple[int, ...] | None = None

    def __call__(self, Z):
        return self.fn(Z)


def monomial_name(names: Sequence[str], powers: Sequence[int]) -> str:
    """``x*y^2`` for the exponents ``powers`` of ``names`` (``1`` when all are 0)."""
    parts = [n if k == 1 else f"{n}^{k}" for n, k in zip(names, powers, strict=True) if k]
    return "*".join(parts) if parts else "1"


def monomial(names: Sequence[str], powers: Sequence[int]) -> Term:
    """The term ``prod_i names[i]^powers[i]`` (``1`` when all powers are 0)."""
    powers = tuple(int(k) for k in powers)
    idx = [(i, k) for i, k in enumerate(powers) if k]

    def fn(Z):
        out = jnp.ones(Z.shape[:-1], dtype=Z.dtype)
        for i, k in idx:
            out = out * Z[..., i] ** k
        return out

    name = monomial_name(names, powers)
    return Term(name, fn, name, powers)


def term_to_dict(term: Term) -> dict:
    """A term as data: its name and its formula (or monomial powers); a term that has
    neither (a custom function without an SBML template) cannot be saved."""
    from ..errors import SerializationError

    if term.powers is None and term.formula is None:
        raise SerializationError(f"term {term.name!r} is a custom function without a formula, "
                                 "which cannot be saved as data; give CustomLibrary "
                                 "templates in SBML infix")
    return {"name": term.name, "formula": term.formula,
            "powers": None if term.powers is None else list(term.powers)}


def term_from_dict(d: Mapping, names: Sequence[str]) -> Term:
    """The term of :func:`term_to_dict` over inputs ``names``: a monomial from its powers,
    otherwise its formula parsed by the restricted formula parser (never ``eval``)."""
    from ..infer.formula import parse_formula

    if d.get("powers") is not None:
        return Term(d["name"], monomial(names, d["powers"]).fn, d.get("formula"),
                    tuple(int(k) for k in d["powers"]))
    formula = parse_formula(d["formula"], f"saved term {d['name']!r}")
    unknown = sorted(formula.symbols - set(names))
    if unknown:
        raise InputError(f"saved term {d['name']!r} reads {unknown}, which are not among the "
                         f"inputs {list(names)}")
    cols = {n: i for i, n in enumerate(names)}

    def fn(Z):
        return jnp.broadcast_to(formula({n: Z[..., cols[n]] for n in formula.symbols}),
                                Z.shape[:-1])

    return Term(d["name"], fn, d["formula"], None)


def _resolve_inputs(spec, names: Sequence[str], what: str) -> list[int]:
    if spec is None:
        return list(range(len(names)))
    out = []
    for s in spec:
        if isinstance(s, str):
            if s not in names:
                raise InputError(f"{what}: input {s!r} is not one of {', '.join(names)}")
            out.append(list(names).index(s))
        elif isinstance(s, int | np.integer) and 0 <= int(s) < len(names):
            out.append(int(s))
        else:
            raise InputError(f"{what}: input {s!r} is not a name or an index below "
                             f"{len(names)}")
    if not out:
        raise InputError(f"{what}: inputs= selects no input")
    return out


class Library(ABC):
    """Base class: ``terms(names)`` lists the candidate terms over inputs ``names``."""

    inputs: Sequence | None = None

    @abstractmethod
    def _terms(self, names: list[str], idx: list[int]) -> list[Term]:
        """The terms over the inputs ``names``, using only those at positions ``idx``."""

    def terms(self, names: Sequence[str]) -> tuple[Term, ...]:
        """The terms of this library over the inputs ``names`` (in this order)."""
        idx = _resolve_inputs(self.inputs, names, type(self).__name__)
        return _unique(self._terms(list(names), idx))

    def __add__(self, other: Library) -> Library:
        return ConcatLibrary([self, other])

    def __mul__(self, other: Library) -> Library:
        return TensorLibrary([self, other])


def _unique(terms) -> tuple[Term, ...]:
    seen, out = set(), []
    for t in terms:
        if t.name not in seen:
            seen.add(t.name)
            out.append(t)
    return tuple(out)


class PolynomialLibrary(Library):
    """All monomials of the inputs up to total ``degree`` (graded order: ``1``, degree 1,
    degree 2, ...; within a degree, lexicographic in the inputs). ``include_interaction=
    False`` keeps only powers of single inputs."""

    def __init__(self, degree: int = 2, *, include_constant: bool = True,
                 include_interaction: bool = True, inputs: Sequence | None = None):
        self.degree = degree
        self.include_constant = include_constant
        self.include_interaction = include_interaction
        self.inputs = inputs

    def _terms(self, names, idx):
        if not isinstance(self.degree, int | np.integer) or self.degree < 0:
            raise InputError(f"PolynomialLibrary: degree must be an integer >= 0, got "
                             f"{self.degree!r}")
        out = []
        for d in range(0 if self.include_constant else 1, self.degree + 1):
            for combo in itertools.combinations_with_replacement(idx, d):
                if not self.include_interaction and len(set(combo)) > 1:
                    continue
                powers = [0] * len(names)
                for i in combo:
                    powers[i] += 1
                out.append(monomial(names, powers))
        return out


class FourierLibrary(Library):
    """``sin(k x)`` and ``cos(k x)`` for ``k = 1 .. n_frequencies`` of every input."""

    def __init__(self, n_frequencies: int = 1, *, include_sin: bool = True,
                 include_cos: bool = True, inputs: Sequence | None = None):
        self.n_frequencies = n_frequencies
        self.include_sin = include_sin
        self.include_cos = include_cos
        self.inputs = inputs

    def _terms(self, names, idx):
        if not isinstance(self.n_frequencies, int | np.integer) or self.n_frequencies < 1:
            raise InputError("FourierLibrary: n_frequencies must be an integer >= 1, got "
                             f"{self.n_frequencies!r}")
        out = []
        for i in idx:
            for k in range(1, self.n_frequencies + 1):
                arg = names[i] if k == 1 else f"{k}*{names[i]}"
                for use, name, f in ((self.include_sin, "sin", jnp.sin),
                                     (self.include_cos, "cos", jnp.cos)):
                    if use:
                        out.append(Term(f"{name}({arg})",
                                        lambda Z, i=i, k=k, f=f: f(k * Z[..., i]),
                                        f"{name}({arg})"))
        return out


class CustomLibrary(Library):
    """Terms from named functions: ``{template: fn}`` where ``template`` has one ``{}``
    per argument, e.g. ``{"exp({})": jnp.exp, "{}/(1+{})": lambda a, b: a / (1 + b)}``.

    A function of ``m`` arguments is applied to every ``m``-combination of the inputs
    (with repetition when ``repeat=True``). The filled-in template is the term's name and,
    when ``formulas=True`` (the default), also its SBML formula, so write templates in
    SBML infix (``exp``, ``ln``, ``^``) or pass ``formulas=False``.
    """

    def __init__(self, functions: Mapping[str, Callable], *, repeat: bool = False,
                 formulas: bool = True, inputs: Sequence | None = None):
        self.functions = functions
        self.repeat = repeat
        self.formulas = formulas
        self.inputs = inputs

    def _terms(self, names, idx):
        if not isinstance(self.functions, Mapping) or not self.functions:
            raise InputError("CustomLibrary: functions must be a non-empty mapping "
                             "{'name template with {}': function}")
        out = []
        for template, f in self.functions.items():
            arity = template.count("{}")
            if arity < 1 or not callable(f):
                raise InputError(f"CustomLibrary: {template!r} needs at least one '{{}}' "
                                 "placeholder and a callable")
            combos = (itertools.combinations_with_replacement(idx, arity) if self.repeat
                      else itertools.combinations(idx, arity))
            for combo in combos:
                name = template.format(*(names[i] for i in combo))
                out.append(Term(name, lambda Z, c=combo, f=f: f(*(Z[..., i] for i in c)),
                                name if self.formulas else None))
        return out


class ConcatLibrary(Library):
    """The terms of several libraries, in order, each term once."""

    def __init__(self, libraries: Sequence[Library]):
        self.libraries = libraries

    def _terms(self, names, idx):
        return [t for lib in self.libraries for t in lib.terms(names)]


def _product(a: Term, b: Term, names) -> Term | None:
    if a.name == "1":
        return b
    if b.name == "1":
        return a
    if a.powers is not None and b.powers is not None:
        return monomial(names, [i + j for i, j in zip(a.powers, b.powers, strict=True)])
    formula = (None if a.formula is None or b.formula is None
               else f"{_wrap(a.formula)}*{_wrap(b.formula)}")
    return Term(f"{_wrap(a.name)}*{_wrap(b.name)}", lambda Z: a.fn(Z) * b.fn(Z), formula)


def _wrap(text: str) -> str:
    """Parenthesise a term name that is a sum or quotient when it becomes a factor."""
    depth = 0
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and ch in "+-/":
            return f"({text})"
    return text


class TensorLibrary(Library):
    """Every product of one term from each library (constants drop out of products)."""

    def __init__(self, libraries: Sequence[Library]):
        self.libraries = libraries

    def _terms(self, names, idx):
        groups = [lib.terms(names) for lib in self.libraries]
        out = []
        for combo in itertools.product(*groups):
            term = combo[0]
            for other in combo[1:]:
                term = _product(term, other, names)
            out.append(term)
        return out


def evaluate(terms: Sequence[Term], Z) -> jax.Array:
    """The library matrix ``Theta`` of shape ``(..., n_terms)`` at inputs ``Z`` (JAX,
    traceable)."""
    Z = jnp.asarray(Z)
    return jnp.stack([jnp.broadcast_to(t(Z), Z.shape[:-1]) for t in terms], axis=-1)


def evaluate_data(terms: Sequence[Term], Z) -> np.ndarray:
    """``Theta`` for a concrete data matrix ``Z`` ``(n, n_inputs)``, as NumPy: monomials in
    one vectorised power-product, other terms through their JAX functions."""
    Z = np.asarray(Z, dtype=float)
    out = np.empty((Z.shape[0], len(terms)))
    mono = [i for i, t in enumerate(terms) if t.powers is not None]
    if mono:
        P = np.array([terms[i].powers for i in mono])  # (k, d)
        used = np.flatnonzero(P.any(axis=0))
        cols = np.ones((Z.shape[0], len(mono)))
        for j in used:
            for k in np.unique(P[:, j][P[:, j] > 0]):
                cols[:, P[:, j] == k] *= (Z[:, j] ** k)[:, None]
        out[:, mono] = cols
    for i, t in enumerate(terms):
        if t.powers is None:
            out[:, i] = np.broadcast_to(np.asarray(t(jnp.asarray(Z))), Z.shape[:1])
    return out


def n_polynomial_terms(n_inputs: int, degree: int, constant: bool = True) -> int:
    """The number of monomials of ``n_inputs`` variables up to ``degree``."""
    return math.comb(n_inputs + degree, degree) - (0 if constant else 1)


def parse_library(spec: str) -> Library:
    """A library from a command-line spec: ``poly:3``, ``poly:2+fourier:1``,
    ``poly:2*fourier:1`` (a product binds tighter than a sum)."""
    def atom(text: str) -> Library:
        kind, _, arg = text.strip().partition(":")
        try:
            n = int(arg) if arg else None
        except ValueError:
            n = -1
        if kind in ("poly", "polynomial") and (n is None or n >= 0):
            return PolynomialLibrary(degree=2 if n is None else n)
        if kind == "fourier" and (n is None or n >= 1):
            return FourierLibrary(n_frequencies=n or 1)
        raise InputError(f"library {spec!r}: cannot read {text.strip()!r}; use poly:D or "
                         "fourier:K joined by + (concatenate) or * (product), e.g. poly:3")

    lib = None
    for part in spec.split("+"):
        factors = [atom(f) for f in part.split("*")]
        prod = factors[0] if len(factors) == 1 else TensorLibrary(factors)
        lib = prod if lib is None else lib + prod
    return lib


__all__ = ["Term", "Library", "PolynomialLibrary", "FourierLibrary", "CustomLibrary",
           "ConcatLibrary", "TensorLibrary", "monomial", "monomial_name", "evaluate",
           "evaluate_data", "parse_library", "n_polynomial_terms"]
