"""SINDy-PI: parallel implicit sparse identification of rational dynamics (Kaheman, Kutz &
Brunton 2020, Proc R Soc A 476:20200279; implicit-SINDy of Mangan et al. 2016, IEEE Trans Mol
Biol Multi-Scale Commun 2:52-63).

Rational right-hand sides ``dx_k/dt = N(x) / D(x)`` (Michaelis-Menten and Hill kinetics) are
not sparse in a polynomial library, but the implicit equation ``N(x) - dx_k/dt D(x) = 0`` is
sparse in the extended library

    Theta_k(x, dx_k/dt) = [Theta(x), dx_k/dt * Theta(x)].

An implicit equation has no left-hand side to regress on, so SINDy-PI tries each term of the
extended library in turn as the left-hand side, regresses it (scaled to unit norm) on all the
other terms with :func:`~scalebridge.discover.sindy.sparse_regression` (STLSQ on unit-norm
columns, for each threshold of a short list), and turns every candidate with a nonzero
derivative part into ``dx_k/dt = N(x) / D(x)``.

Selection criterion: for each candidate, the relative root-mean-square error with which
``N/D`` reproduces the derivatives on the data, ``||N/D - dx_k/dt|| / ||dx_k/dt||`` (a
candidate whose denominator changes sign on the data gets an infinite error). Among the
candidates whose error is at most ``tolerance`` times the smallest error (or below 1e-8,
round-off on exact data), the one with the
fewest terms is chosen (ties: one whose numerator and denominator share no monomial
factor, then the smaller error). Equivalent implicit equations (the same rational function
found from different left-hand sides) agree on both counts. A library closed under
products also holds ``m N - dx/dt m D = 0`` for monomials ``m``; a monomial factor common
to all terms of the chosen equation is divided out where the library holds the reduced
terms.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import jax.numpy as jnp
import numpy as np

from ..errors import InputError
from ..model.model import Model
from ..model.parameter import Parameter
from .derivatives import check_times, differentiate
from .library import Library, PolynomialLibrary, Term, evaluate_data, term_from_dict, term_to_dict
from .optimizers import STLSQ
from .sindy import _as_list, _slug, coefficient_map, sparse_regression

DEFAULT_THRESHOLDS = (1e-4, 1e-3, 1e-2)
ROUNDOFF = 1e-8  # relative derivative errors below this count as equal (exact data)


def _poly(coefs: Mapping[str, float], precision: int) -> str:
    parts = []
    for term, c in coefs.items():
        mag = f"{abs(c):.{precision}g}"
        body = mag if term == "1" else (term if mag == "1" else f"{mag} {term}")
        parts.append(("- " if c < 0 else "+ ") + body)
    text = " ".join(parts).removeprefix("+ ") if parts else "0"
    return "-" + text[2:] if text.startswith("- ") else text


def _common_factor(terms, P, Q) -> bool:
    """Whether all terms of ``P`` and ``Q`` share a monomial factor (``x*N / x*D``: the
    same rational function as ``N / D``, written with more complex terms)."""
    used = [terms[i % len(terms)] for i in np.flatnonzero(np.concatenate([P, Q]))]
    if not used or any(t.powers is None for t in used):
        return False
    return bool(np.any(np.min([t.powers for t in used], axis=0) > 0))


def _reduce(terms, P, Q):
    """Divide out a monomial factor shared by every term of ``P`` and ``Q`` where the
    reduced monomials are in the library (``x N / x D -> N / D``)."""
    used = np.flatnonzero(np.concatenate([P, Q])) % len(terms)
    if not used.size or any(terms[i].powers is None for i in used):
        return P, Q
    g = np.min([terms[i].powers for i in used], axis=0)
    if not np.any(g > 0):
        return P, Q
    index = {t.powers: k for k, t in enumerate(terms) if t.powers is not None}
    moved = {i: index.get(tuple(int(v) for v in np.subtract(terms[i].powers, g)))
             for i in set(used.tolist())}
    if any(k is None for k in moved.values()):
        return P, Q
    P2, Q2 = np.zeros_like(P), np.zeros_like(Q)
    for i, k in moved.items():
        P2[k], Q2[k] = P[i], Q[i]
    return P2, Q2


class SINDyPI:
    """Implicit / rational sparse identification of dynamics (SINDy-PI).

    Parameters (stored only; checked by :meth:`fit`):

    - ``library``: a :class:`~scalebridge.discover.library.Library` ``Theta(x)`` used for
      every state, or ``{state: Library}`` with one library per equation (states not named
      use ``PolynomialLibrary(degree=2)``, the default). Keep it small: the extended library
      has twice as many terms and each of them is tried as the left-hand side;
      ``PolynomialLibrary(inputs=[...])`` and products (``a * b``) help.
    - ``thresholds``: STLSQ thresholds on the coefficients of unit-norm columns for a
      unit-norm left-hand side (scale-free), each tried for every left-hand side;
    - ``alpha``: STLSQ ridge weight (small: the extended library mixes scales);
    - ``tolerance``: the selection factor (see the module docstring);
    - ``differentiation``: ``"finite"``, ``"savgol"`` or ``"spectral"`` (unused with
      ``x_dot``).

    Learned attributes: ``feature_names_``, ``terms_`` (``{state: term names}``),
    ``numerators_`` and ``denominators_`` (``{state: coefficient array}`` over
    ``terms_[state]``; ``dx/dt = (numerator . Theta) / (denominator . Theta)``, the
    denominator scaled so its constant term, or else its first term, is 1), ``lhs_``
    (``{state: chosen left-hand side}``), ``threshold_``, ``error_`` (relative derivative
    error of the chosen model), ``identified_`` (``{state: bool}``: False when every
    candidate had a pole on the data) and ``candidates_`` (``{state: [records]}`` of every
    candidate: left-hand side, threshold, error, number of terms).
    """

    def __init__(self, library: Library | Mapping[str, Library] | None = None, *,
                 thresholds: Sequence[float] = DEFAULT_THRESHOLDS, alpha: float = 1e-10,
                 tolerance: float = 1.1, max_iter: int = 20, differentiation: str = "finite"):
        self.library = library
        self.thresholds = thresholds
        self.alpha = alpha
        self.tolerance = tolerance
        self.max_iter = max_iter
        self.differentiation = differentiation

    # ----- validation ------------------------------------------------------------------
    def _libraries(self, names) -> dict[str, Library]:
        lib = self.library
        if lib is None or isinstance(lib, Library):
            return {s: lib if lib is not None else PolynomialLibrary(degree=2) for s in names}
        if not isinstance(lib, Mapping):
            raise InputError(f"SINDyPI library must be a Library or {{state: Library}}, got "
                             f"{lib!r}")
        unknown = set(lib) - set(names)
        if unknown:
            raise InputError(f"SINDyPI library names states {sorted(unknown)} that are not "
                             f"among the features {list(names)}")
        out = {}
        for s in names:
            one = lib.get(s, PolynomialLibrary(degree=2))
            if not isinstance(one, Library):
                raise InputError(f"SINDyPI library[{s!r}] must be a Library, got {one!r}")
            out[s] = one
        return out

    def _check_settings(self):
        ths = self.thresholds
        if (isinstance(ths, str) or not isinstance(ths, Sequence) or not ths
                or not all(isinstance(v, int | float) and np.isfinite(v) and v > 0
                           for v in ths)):
            raise InputError("SINDyPI thresholds must be a non-empty sequence of positive "
                             f"numbers, e.g. (1e-4, 1e-3, 1e-2), got {ths!r}")
        if not (isinstance(self.tolerance, int | float) and self.tolerance >= 1):
            raise InputError(f"SINDyPI tolerance must be a number >= 1, got {self.tolerance!r}")
        STLSQ(threshold=float(ths[0]), alpha=self.alpha, max_iter=self.max_iter)._validate()

    # ----- fitting ---------------------------------------------------------------------
    def fit(self, x, t=None, *, x_dot=None, feature_names: Sequence[str] | None = None
            ) -> SINDyPI:
        """Fit to trajectories ``x`` (``(n, d)`` or a list) sampled at times ``t`` (an array,
        a time step or a list matching ``x``), or with known derivatives ``x_dot``."""
        self._check_settings()
        xs = _as_list(x, "x")
        d = xs[0].shape[1]
        if any(a.shape[1] != d for a in xs):
            raise InputError("x: every trajectory needs the same number of columns")
        names = self._names(feature_names, d)
        X, DX = self._data(xs, t, x_dot)
        libs = self._libraries(names)
        self.feature_names_ = tuple(names)
        self.terms_, self.numerators_, self.denominators_ = {}, {}, {}
        self.lhs_, self.threshold_, self.error_, self.candidates_ = {}, {}, {}, {}
        self.identified_ = {}
        self._terms = {}
        for k, state in enumerate(names):
            terms = libs[state].terms(names)
            self._fit_state(state, terms, X, DX[:, k])
        self.n_samples_ = X.shape[0]
        return self

    @staticmethod
    def _names(given, d: int) -> list[str]:
        if given is None:
            return [f"x{i}" for i in range(d)] if d > 1 else ["x"]
        names = [str(s) for s in given]
        if len(names) != d or len(set(names)) != d:
            raise InputError(f"feature_names: need {d} distinct names, got {list(given)!r}")
        return names

    def _data(self, xs, t, x_dot):
        if x_dot is not None:
            dxs = _as_list(x_dot, "x_dot")
            if len(dxs) != len(xs) or any(a.shape != b.shape for a, b in zip(dxs, xs,
                                                                             strict=True)):
                raise InputError("x_dot: give one array per trajectory, shaped like x")
            return np.concatenate(xs), np.concatenate(dxs)
        if t is None:
            raise InputError("t is required unless x_dot is given")
        ts = t if isinstance(t, list | tuple) else [t] * len(xs)
        if len(ts) != len(xs):
            raise InputError(f"t: {len(ts)} time arrays for {len(xs)} trajectories")
        Xs, Ds = [], []
        for a, tk in zip(xs, ts, strict=True):
            tk = check_times(tk, a.shape[0], "t")
            dx = differentiate(a, tk, self.differentiation)
            edge = 2 if self.differentiation == "finite" and a.shape[0] > 8 else 0
            Xs.append(a[edge:a.shape[0] - edge])  # lower-order differences at the ends
            Ds.append(dx[edge:a.shape[0] - edge])
        return np.concatenate(Xs), np.concatenate(Ds)

    def _fit_state(self, state: str, terms: tuple[Term, ...], X, dx):
        theta = evaluate_data(terms, X)
        q = theta.shape[1]
        full = np.concatenate([theta, dx[:, None] * theta], axis=1)
        norms = np.linalg.norm(full, axis=0)
        lib_names = [t.name for t in terms]
        if np.any(norms[:q] == 0):
            dead = [lib_names[i] for i in np.flatnonzero(norms[:q] == 0)]
            raise InputError(f"library terms {dead} of the {state} equation are zero on all "
                             "the data; remove them or give richer data")
        if norms[q:].min() == 0:
            raise InputError(f"d{state}/dt is zero on all the data: nothing to identify")
        p = 2 * q
        if full.shape[0] <= p:
            raise InputError(f"the extended library of the {state} equation has {p} terms "
                             f"but the data give only {full.shape[0]} rows; use more samples "
                             "or a smaller library")
        dnorm = np.sqrt(np.mean(dx ** 2))
        records = []
        for j in range(p):
            keep = np.flatnonzero(np.arange(p) != j)
            y = full[:, [j]] / norms[j]
            for th in self.thresholds:
                opt = STLSQ(threshold=float(th), alpha=self.alpha, max_iter=self.max_iter,
                            normalize_columns=True)
                coef = sparse_regression(full[:, keep], y, opt)[0][0]
                c = np.zeros(p)
                c[j] = 1.0
                c[keep] = -coef * norms[j]
                P, Q = c[:q], c[q:]  # P(x) + dx * Q(x) = 0
                if not np.any(Q):
                    continue  # a relation among the states only: no equation for dx
                den = theta @ Q
                if not (np.all(den > 0) or np.all(den < 0)):
                    err = np.inf  # a pole on the data
                else:
                    pred = -(theta @ P) / den
                    err = float(np.sqrt(np.mean((pred - dx) ** 2)) / dnorm)
                n_terms = int(np.count_nonzero(c))
                rec = {"lhs": self._name(lib_names, j, state), "threshold": float(th),
                       "error": err, "n_terms": n_terms,
                       "common_factor": _common_factor(terms, P, Q)}
                records.append(rec)
                if np.isfinite(err):
                    rec["_coef"] = (-P, Q)
        finite = [r for r in records if np.isfinite(r["error"])]
        self.terms_[state] = tuple(lib_names)
        self._terms[state] = terms
        self.candidates_[state] = records
        if not finite:
            warnings.warn(f"SINDyPI: every candidate equation for d{state}/dt has a pole on "
                          "the data, so it is left unidentified (identified_[state] is False); "
                          "try a richer library for it or other thresholds", stacklevel=3)
            self.identified_[state] = False
            self.numerators_[state] = np.zeros(q)
            self.denominators_[state] = np.zeros(q)
            self.lhs_[state], self.threshold_[state], self.error_[state] = None, None, np.inf
            for r in records:
                r.pop("_coef", None)
            return
        floor = min(r["error"] for r in finite)
        pool = [r for r in finite if r["error"] <= max(self.tolerance * floor, ROUNDOFF)]
        best = min(pool, key=lambda r: (r["n_terms"], r["common_factor"], r["error"]))
        num, den = _reduce(terms, *best["_coef"])
        one = lib_names.index("1") if "1" in lib_names else None
        pivot = one if one is not None and den[one] != 0 else np.flatnonzero(den)[0]
        scale = den[pivot]
        self.identified_[state] = True
        self.numerators_[state] = num / scale
        self.denominators_[state] = den / scale
        self.lhs_[state] = best["lhs"]
        self.threshold_[state] = best["threshold"]
        self.error_[state] = best["error"]
        for r in records:
            r.pop("_coef", None)

    @staticmethod
    def _name(lib_names, j, state):
        q = len(lib_names)
        if j < q:
            return lib_names[j]
        base = lib_names[j - q]
        return f"{state}'" if base == "1" else f"{state}'*{base}"

    # ----- results ---------------------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "numerators_"):
            raise InputError("this SINDyPI model is not fitted yet; call fit(x, t) first")

    def equations(self, precision: int | None = None) -> dict[str, dict[str, dict]]:
        """``{state: {"numerator": {term: c}, "denominator": {term: c}}}`` (nonzero terms;
        rounded to ``precision`` significant digits when given)."""
        self._check_fitted()
        out = {}
        for s in self.feature_names_:
            parts = {}
            for key, arr in (("numerator", self.numerators_[s]),
                             ("denominator", self.denominators_[s])):
                parts[key] = {name: (float(f"{c:.{precision}g}") if precision else float(c))
                              for name, c in zip(self.terms_[s], arr, strict=True) if c != 0}
            out[s] = parts
        return out

    def format(self, precision: int = 4) -> str:
        """``dS1/dt = (2.5 - 100 S1*S6 + 34.19 S6^4) / (1 + 13.68 S6^4)`` lines."""
        lines = []
        for s, eq in self.equations().items():
            if not self.identified_[s]:
                lines.append(f"d{s}/dt: not identified")
                continue
            num = _poly(eq["numerator"], precision)
            if set(eq["denominator"]) == {"1"}:
                lines.append(f"d{s}/dt = {num}")
                continue
            den = _poly(eq["denominator"], precision)
            lines.append(f"d{s}/dt = ({num}) / ({den})")
        return "\n".join(lines)

    def __str__(self):
        return self.format() if hasattr(self, "numerators_") else "SINDyPI (not fitted)"

    # ----- the result protocol ---------------------------------------------------------
    _SETTINGS = ("thresholds", "alpha", "tolerance", "max_iter", "differentiation")

    def to_dict(self) -> dict:
        """The fitted rational equations as data: per state its library terms (formulas
        or monomial powers), numerator and denominator coefficients, the chosen left-hand
        side, threshold and error, and every candidate tried; and the settings (the library
        itself is not kept: to refit, make a new estimator)."""
        self._check_fitted()
        names = self.feature_names_
        return {"settings": {"thresholds": [float(v) for v in self.thresholds],
                             "alpha": float(self.alpha), "tolerance": float(self.tolerance),
                             "max_iter": int(self.max_iter),
                             "differentiation": self.differentiation},
                "feature_names": list(names), "n_samples": int(self.n_samples_),
                "states": {s: {"terms": [term_to_dict(t) for t in self._terms[s]],
                               "numerator": np.asarray(self.numerators_[s], float),
                               "denominator": np.asarray(self.denominators_[s], float),
                               "lhs": self.lhs_[s], "threshold": self.threshold_[s],
                               "error": _finite_or_none(self.error_[s]),
                               "identified": bool(self.identified_[s]),
                               "candidates": [{k: _finite_or_none(v) for k, v in r.items()}
                                              for r in self.candidates_[s]]}
                           for s in names}}

    @classmethod
    def from_dict(cls, d) -> SINDyPI:
        model = cls(**d["settings"])
        names = tuple(d["feature_names"])
        model.feature_names_ = names
        model.n_samples_ = int(d["n_samples"])
        model.terms_, model.numerators_, model.denominators_, model._terms = {}, {}, {}, {}
        model.lhs_, model.threshold_, model.error_, model.candidates_ = {}, {}, {}, {}
        model.identified_ = {}
        for s in names:
            e = d["states"][s]
            terms = tuple(term_from_dict(t, names) for t in e["terms"])
            model._terms[s] = terms
            model.terms_[s] = tuple(t.name for t in terms)
            model.numerators_[s] = np.asarray(e["numerator"], float)
            model.denominators_[s] = np.asarray(e["denominator"], float)
            model.lhs_[s], model.threshold_[s] = e["lhs"], e["threshold"]
            model.error_[s] = np.inf if e["error"] is None else float(e["error"])
            model.identified_[s] = bool(e["identified"])
            model.candidates_[s] = [{k: (np.inf if k == "error" and v is None else v)
                                     for k, v in r.items()} for r in e["candidates"]]
        return model

    def to_pandas(self):
        """One row per state and library term: the numerator and denominator coefficient."""
        import pandas as pd

        self._check_fitted()
        rows = [{"state": s, "term": t, "numerator": float(n), "denominator": float(q)}
                for s in self.feature_names_
                for t, n, q in zip(self.terms_[s], self.numerators_[s], self.denominators_[s],
                                   strict=True)]
        return pd.DataFrame(rows).set_index(["state", "term"])

    def plot(self, ax=None):
        """The numerator and denominator coefficients as a heat map (one row per state and
        part, zeros blank) into ``ax`` (a new figure if None); returns the axes."""
        self._check_fitted()
        terms = list(dict.fromkeys(t for s in self.feature_names_ for t in self.terms_[s]))
        rows, coefs = [], []
        for s in self.feature_names_:
            for part, arr in (("num", self.numerators_[s]), ("den", self.denominators_[s])):
                row = np.zeros(len(terms))
                for t, v in zip(self.terms_[s], arr, strict=True):
                    row[terms.index(t)] = v
                rows.append(f"{s} {part}")
                coefs.append(row)
        return coefficient_map(ax, np.asarray(coefs), rows, terms)

    def predict(self, x) -> np.ndarray:
        """The model's derivatives ``N(x)/D(x)`` at states ``x`` (``(n, d)``)."""
        self._check_fitted()
        X = _as_list(x, "x")[0]
        if X.shape[1] != len(self.feature_names_):
            raise InputError(f"predict: expected {len(self.feature_names_)} state columns, "
                             f"got {X.shape[1]}")
        cols = []
        for s in self.feature_names_:
            theta = evaluate_data(self._terms[s], X)
            cols.append(theta @ self.numerators_[s] / (theta @ self.denominators_[s]))
        return np.stack(cols, axis=1)

    def to_model(self, *, initial=None, name: str = "sindy_pi") -> Model:
        """The rational equations as a scalebridge :class:`Model`: one parameter per nonzero
        coefficient, named ``<state>_num_<term>`` and ``<state>_den_<term>``."""
        self._check_fitted()
        missing = [s for s, ok in self.identified_.items() if not ok]
        if missing:
            raise InputError(f"to_model: the equations of {missing} were not identified (every "
                             "candidate had a pole on the data); refit with other libraries")
        states = self.feature_names_
        params, plan = [], []
        taken = set(states)
        for s in states:
            entry = {}
            for key, arr in (("num", self.numerators_[s]), ("den", self.denominators_[s])):
                idx = np.flatnonzero(arr)
                fns, first = [], len(params)
                for i in idx:
                    pname = f"{_slug(s)}_{key}_{_slug(self.terms_[s][i])}"
                    while pname in taken:
                        pname += "_"
                    taken.add(pname)
                    params.append(Parameter(pname, float(arr[i])))
                    fns.append(self._terms[s][i].fn)
                entry[key] = (first, tuple(fns))
            plan.append(entry)

        def rhs(t, y, p, u):
            Z = jnp.atleast_1d(y)
            out = []
            for entry in plan:
                parts = []
                for key in ("num", "den"):
                    first, fns = entry[key]
                    if fns:
                        cols = jnp.stack([f(Z) for f in fns])
                        parts.append(jnp.dot(p[first:first + len(fns)], cols))
                    else:
                        parts.append(jnp.zeros((), dtype=Z.dtype))
                out.append(parts[0] / parts[1])
            return jnp.stack(out)

        n = len(states)
        return Model(states=states, parameters=params, rhs=rhs,
                     initial=np.zeros(n) if initial is None else initial, stiff=False,
                     name=name, citation="discovered by SINDy-PI (Kaheman, Kutz & Brunton "
                     "2020, Proc R Soc A 476:20200279)")


def _finite_or_none(v):
    """A float, or None for inf/NaN (strict JSON); other values unchanged."""
    if isinstance(v, float | np.floating):
        return float(v) if np.isfinite(v) else None
    return v


__all__ = ["SINDyPI"]
