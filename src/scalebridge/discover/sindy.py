"""SINDy: sparse identification of nonlinear dynamics (Brunton, Proctor & Kutz 2016, PNAS
113:3932-3937), as a scikit-learn-style estimator whose result is a scalebridge Model.

``SINDy(library, optimizer).fit(x, t)`` regresses time derivatives on a library of
candidate terms and keeps few of them. With ``weak=WeakForm()`` the regression uses
integrals against test functions instead of derivatives (:mod:`.weak`), with
``ensemble=Ensemble()`` it bags rows and/or drops library terms and reports how often each
term is chosen (Fasel et al. 2022, Proc R Soc A 478:20210904). Several trajectories are
given as lists; control inputs ``u`` enter the library as extra inputs.
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputError, ModelError
from ..model.model import Model
from ..model.parameter import Parameter
from .derivatives import bias_floor, check_times, differentiate
from .library import Library, PolynomialLibrary, Term, evaluate_data, term_from_dict, term_to_dict
from .optimizers import STLSQ, Optimizer, aicc, threshold_path
from .weak import WeakForm, effective_rows


@dataclass(frozen=True)
class Ensemble:
    """Ensemble-SINDy settings: ``n_models`` fits on bootstrap resamples of the rows
    (``bagging``) and/or with ``library_drop`` library terms left out at random. The
    coefficients are the median over the models (so a term enters when more than half of
    them choose it); ``inclusion_`` holds each term's frequency."""

    n_models: int = 20
    bagging: bool = True
    library_drop: int = 0
    seed: int = 0

    def check(self, n_terms: int):
        if not isinstance(self.n_models, int) or self.n_models < 2:
            raise InputError(f"Ensemble n_models must be an integer >= 2, got {self.n_models!r}")
        if not (0 <= self.library_drop < n_terms):
            raise InputError(f"Ensemble library_drop must be in [0, {n_terms - 1}] for "
                             f"{n_terms} library terms, got {self.library_drop!r}")
        if not self.bagging and self.library_drop == 0:
            raise InputError("Ensemble: choose bagging=True and/or library_drop > 0")


def _as_list(a, what: str) -> list[np.ndarray]:
    items = list(a) if isinstance(a, list | tuple) else [a]
    out = []
    for k, item in enumerate(items):
        arr = np.asarray(item, dtype=float)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2:
            raise InputError(f"{what}[{k}] must be a 2-D array (samples x variables), "
                             f"got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            bad = int(np.argmax(~np.all(np.isfinite(arr), axis=1)))
            raise InputError(f"{what}[{k}] contains NaN or infinity (first in row {bad}); "
                             "remove or interpolate those samples")
        out.append(arr)
    return out


def _coefficient(name: str, value: float) -> Parameter:
    """A discovered coefficient as a parameter, bounded to a factor of 10 around its value
    (its sign kept) for refitting."""
    lo, hi = sorted((value / 10, value * 10))
    return Parameter(name, value, lower=lo, upper=hi)


def _slug(text: str) -> str:
    s = text.replace("^", "").replace("*", "_")
    s = re.sub(r"[^0-9A-Za-z_]+", "_", s).strip("_")
    return "const" if s in ("1", "") else s


def set_regression(model, d, terms) -> None:
    """Set the fitted regression attributes of a SINDy or PDE-FIND ``model`` from its
    :meth:`to_dict` ``d`` and the rebuilt ``terms``."""
    model._terms = terms
    model.terms_ = tuple(t.name for t in terms)
    model.coefficients_ = np.asarray(d["coefficients"], float)
    model.threshold_ = np.asarray(d["threshold"], float)
    model.inclusion_ = np.asarray(d["inclusion"], float)
    model.path_ = None if d.get("path") is None else {
        k: np.asarray(v) for k, v in d["path"].items()}


def coefficient_map(ax, coefficients, rows, terms):
    """Coefficients (rows by terms) as a symmetric-log heat map, zeros blank; the axes."""
    from matplotlib.colors import SymLogNorm

    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(max(4.0, 0.35 * len(terms) + 2), 0.45 * len(rows) + 1.5))
    c = np.asarray(coefficients, float)
    big = float(np.max(np.abs(c), initial=0.0)) or 1.0
    nz = np.abs(c[c != 0])
    norm = SymLogNorm(linthresh=float(nz.min()) if nz.size else 1.0, vmin=-big, vmax=big)
    art = ax.imshow(np.where(c == 0, np.nan, c), cmap="RdBu_r", norm=norm, aspect="auto")
    ax.set_xticks(range(len(terms)))
    ax.set_xticklabels(terms, rotation=90, fontsize=7)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(rows, fontsize=8)
    ax.figure.colorbar(art, ax=ax, label="coefficient")
    return ax


def equation_table(names, terms, coefficients, precision: int | None = None) -> dict:
    """``{name: {term: coefficient}}`` of the nonzero entries of ``coefficients``
    (rows: ``names``, columns: ``terms``), rounded to ``precision`` significant digits."""
    return {name: {term: float(f"{c:.{precision}g}") if precision else float(c)
                   for term, c in zip(terms, row, strict=True) if c != 0}
            for name, row in zip(names, coefficients, strict=True)}


def format_equations(equations: dict, precision: int = 4, lhs: str = "d{}/dt") -> str:
    """``dx/dt = 1.3 x - 0.9 x*y`` lines for ``{state: {term: coef}}`` (``lhs``: how a
    key is written on the left, e.g. ``"{}"`` for keys that already are ``u_t``)."""
    lines = []
    for state, terms in equations.items():
        parts = []
        for term, c in terms.items():
            mag = f"{abs(c):.{precision}g}"
            body = mag if term == "1" else f"{mag} {term}"
            parts.append(("- " if c < 0 else "+ ") + body)
        rhs = " ".join(parts).removeprefix("+ ") if parts else "0"
        if rhs.startswith("- "):
            rhs = "-" + rhs[2:]
        lines.append(f"{lhs.format(state)} = {rhs}")
    return "\n".join(lines)


class SINDy:
    """Sparse identification of nonlinear dynamics.

    Parameters (stored only; checked by :meth:`fit`):

    - ``library``: a :class:`~scalebridge.discover.library.Library` (default: polynomials
      up to degree 3 with a constant);
    - ``optimizer``: :class:`STLSQ` or :class:`SR3` (default ``STLSQ()``); an optimiser
      with ``threshold=None`` picks each equation's threshold by AICc over a path;
    - ``differentiation``: ``"finite"``, ``"savgol"`` or ``"spectral"`` (ignored when
      derivatives are given or ``weak`` is set);
    - ``weak``: a :class:`WeakForm` for integral (weak) SINDy on noisy data;
    - ``ensemble``: an :class:`Ensemble` for bagging / library ensembles.

    Learned attributes: ``feature_names_``, ``control_names_``, ``terms_`` (term names),
    ``coefficients_`` (``(n_states, n_terms)``), ``threshold_`` (per equation),
    ``inclusion_`` (ensemble: ``(n_states, n_terms)`` frequencies, else 0/1),
    ``path_`` (thresholds, number of terms and AICc along the path, when selected).
    """

    def __init__(self, library: Library | None = None, optimizer: Optimizer | None = None, *,
                 differentiation: str = "finite", weak: WeakForm | None = None,
                 ensemble: Ensemble | None = None):
        self.library = library
        self.optimizer = optimizer
        self.differentiation = differentiation
        self.weak = weak
        self.ensemble = ensemble

    # ----- fitting ---------------------------------------------------------------------
    def fit(self, x, t=None, *, x_dot=None, u=None, feature_names: Sequence[str] | None = None,
            control_names: Sequence[str] | None = None) -> SINDy:
        """Fit to trajectories ``x`` (``(n, d)`` or a list of them) sampled at times ``t``
        (an array, a time step, or a list matching ``x``). ``x_dot``: known derivatives (or
        any regression targets, e.g. a network's outputs), skipping differentiation.
        ``u``: control inputs, ``(n, c)`` per trajectory."""
        library = self.library if self.library is not None else PolynomialLibrary(degree=3)
        optimizer = self.optimizer if self.optimizer is not None else STLSQ()
        if not isinstance(library, Library):
            raise InputError(f"library must be a scalebridge.discover Library, got {library!r}")
        if not isinstance(optimizer, Optimizer):
            raise InputError(f"optimizer must be STLSQ or SR3, got {optimizer!r}")
        optimizer._validate()
        xs = _as_list(x, "x")
        d = xs[0].shape[1]
        if any(a.shape[1] != d for a in xs):
            raise InputError("x: every trajectory needs the same number of columns")
        us = _as_list(u, "u") if u is not None else [np.zeros((a.shape[0], 0)) for a in xs]
        if len(us) != len(xs) or any(a.shape[0] != b.shape[0] for a, b in zip(us, xs, strict=True)):
            raise InputError("u: give one control array per trajectory, with one row per sample")
        names = self._names(feature_names, d, "x", "feature_names")
        cnames = self._names(control_names, us[0].shape[1], "u", "control_names")
        if set(names) & set(cnames):
            raise InputError("control_names must differ from feature_names")
        terms = library.terms(names + cnames)
        self._selects = optimizer.threshold is None
        Theta, Y, weights, floor, n_eff = self._system(xs, us, t, x_dot, terms)
        n, p = Theta.shape
        if n < p:
            raise InputError(
                f"the library has {p} terms but the data give only {n} regression rows; "
                "use more samples (or more weak test functions) or a smaller library, e.g. "
                "a lower polynomial degree")
        self._check_rank(Theta, terms)
        coef, threshold, path, inclusion = sparse_regression(
            Theta, Y, optimizer, ensemble=self.ensemble, weights=weights, floor=floor,
            n_effective=n_eff)
        self.feature_names_ = tuple(names)
        self.control_names_ = tuple(cnames)
        self.terms_ = tuple(t.name for t in terms)
        self._terms = terms
        self.coefficients_ = np.asarray(coef)
        self.threshold_ = np.asarray(threshold)
        self.path_ = path
        self.inclusion_ = np.asarray(inclusion)
        self.n_samples_ = n
        self._data_range = (np.min([a.min(0) for a in xs], 0), np.max([a.max(0) for a in xs], 0))
        return self

    @staticmethod
    def _names(given, k: int, prefix: str, what: str) -> list[str]:
        if given is None:
            return [f"{prefix}{i}" for i in range(k)] if k > 1 or prefix == "u" else [prefix]
        names = [str(s) for s in given]
        if len(names) != k or len(set(names)) != k:
            raise InputError(f"{what}: need {k} distinct names, got {list(given)!r}")
        return names

    def _system(self, xs, us, t, x_dot, terms: tuple[Term, ...]):
        """The regression rows ``Theta`` and targets ``Y`` (strong or weak form)."""
        ts = t if isinstance(t, list | tuple) else [t] * len(xs)
        if len(ts) != len(xs):
            raise InputError(f"t: {len(ts)} time arrays for {len(xs)} trajectories")
        if x_dot is not None:
            dxs = _as_list(x_dot, "x_dot")
            if len(dxs) != len(xs) or any(a.shape != b.shape[:1] + (a.shape[1],)
                                          for a, b in zip(dxs, xs, strict=True)):
                raise InputError("x_dot: give one array per trajectory with one row per sample")
        thetas, ys, floors, counts = [], [], [], []
        n_eff = 0.0
        for k, (a, c) in enumerate(zip(xs, us, strict=True)):
            Z = np.concatenate([a, c], axis=1)
            theta = np.asarray(evaluate_data(terms, Z))
            if x_dot is not None:
                thetas.append(theta)
                ys.append(dxs[k])
                continue
            if ts[k] is None:
                raise InputError("t is required unless x_dot is given")
            tk = check_times(ts[k], a.shape[0], "t")
            if self.weak is not None:
                V, Vd = self.weak.matrices(tk)
                thetas.append(V @ theta)
                ys.append(-Vd @ a)
                n_eff += effective_rows(Vd)
            else:
                dx = differentiate(a, tk, self.differentiation)
                edge = 2 if self.differentiation == "finite" and a.shape[0] > 8 else 0
                keep = slice(edge, a.shape[0] - edge)  # lower-order differences at the ends
                thetas.append(theta[keep])
                ys.append(dx[keep])
                floor = (bias_floor(a, tk) if self.differentiation == "finite"
                         and self._selects else None)
                if floor is not None:
                    floors.append(floor * 2 / a.shape[0])  # mean square bias b^2
                    counts.append(a.shape[0])
        Theta, Y = np.concatenate(thetas), np.concatenate(ys)
        if Y.shape[1] != xs[0].shape[1]:
            raise InputError("x_dot must have one column per state")
        floor = np.zeros(Y.shape[1])
        if floors:
            b2 = np.average(np.array(floors), axis=0, weights=counts)
            floor = Y.shape[0] * b2 / 2
        return Theta, Y, np.ones(Theta.shape[0]), floor, (n_eff or None)

    @staticmethod
    def _check_rank(Theta, terms):
        norms = np.linalg.norm(Theta, axis=0)
        dead = [terms[i].name for i in np.flatnonzero(norms == 0)]
        if dead:
            raise InputError(f"library terms {dead} are zero on all the data; remove them "
                             "(e.g. inputs that never vary) or give richer data")
        gram = (Theta.T @ Theta) / np.outer(norms, norms)
        ev = np.linalg.eigvalsh(gram)  # squared singular values of the scaled columns
        if ev[0] < 1e-13 * ev[-1]:
            warnings.warn(
                f"the library matrix is nearly rank deficient (condition number "
                f"{np.sqrt(ev[-1] / max(ev[0], 1e-300)):.2g}): the data cannot tell some terms "
                "apart, so the chosen terms may be one of several equivalent sets; use richer "
                "data (more initial conditions) or a smaller library", stacklevel=3)

    # ----- results ---------------------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "coefficients_"):
            raise InputError("this SINDy model is not fitted yet; call fit(x, t) first")

    def equations(self, precision: int | None = None) -> dict[str, dict[str, float]]:
        """``{state: {term: coefficient}}`` of the nonzero terms (rounded to ``precision``
        significant digits when given)."""
        self._check_fitted()
        return equation_table(self.feature_names_, self.terms_, self.coefficients_, precision)

    def __str__(self):
        if not hasattr(self, "coefficients_"):
            return "SINDy (not fitted)"
        return format_equations(self.equations())

    # ----- the result protocol ----------------------------------------------------------
    def to_dict(self) -> dict:
        """The fitted equations as data: names, the terms (formulas or monomial powers),
        coefficients, thresholds, inclusion frequencies, the selection path and the range
        of the training data. :meth:`from_dict` gives a fitted model that predicts,
        simulates and exports (its library and optimiser settings are not kept: to refit,
        make a new estimator)."""
        self._check_fitted()
        return {"feature_names": list(self.feature_names_),
                "control_names": list(self.control_names_),
                "terms": [term_to_dict(t) for t in self._terms],
                "coefficients": self.coefficients_, "threshold": self.threshold_,
                "inclusion": self.inclusion_, "path": self.path_,
                "n_samples": int(self.n_samples_),
                "data_range": [np.asarray(a) for a in self._data_range]}

    @classmethod
    def from_dict(cls, d) -> SINDy:
        model = cls()
        model.feature_names_ = tuple(d["feature_names"])
        model.control_names_ = tuple(d["control_names"])
        names = model.feature_names_ + model.control_names_
        set_regression(model, d, tuple(term_from_dict(t, names) for t in d["terms"]))
        model.n_samples_ = int(d["n_samples"])
        model._data_range = tuple(np.asarray(a, float) for a in d["data_range"])
        return model

    def to_pandas(self):
        """The coefficients: one row per state, one column per term."""
        import pandas as pd

        self._check_fitted()
        return pd.DataFrame(self.coefficients_, columns=list(self.terms_),
                            index=pd.Index(list(self.feature_names_), name="state"))

    def plot(self, ax=None):
        """The coefficients as a heat map (states by terms; zero left blank) into ``ax`` (a
        new figure if None); returns the axes."""
        self._check_fitted()
        return coefficient_map(ax, self.coefficients_, self.feature_names_, self.terms_)

    def predict(self, x, u=None) -> np.ndarray:
        """The model's derivatives at states ``x`` (``(n, d)``) and controls ``u``."""
        self._check_fitted()
        xs = _as_list(x, "x")[0]
        Z = xs if u is None else np.concatenate([xs, _as_list(u, "u")[0]], axis=1)
        if Z.shape[1] != len(self.feature_names_) + len(self.control_names_):
            raise InputError(f"predict: expected {len(self.feature_names_)} state and "
                             f"{len(self.control_names_)} control columns")
        return np.asarray(evaluate_data(self._terms, Z)) @ self.coefficients_.T

    def to_model(self, *, base: Model | None = None, initial=None, inputs=(),
                 name: str = "sindy") -> Model:
        """The discovered equations as a scalebridge :class:`Model`, one parameter per
        nonzero coefficient (named ``<state>_<term>``, e.g. ``x_x_y``).

        ``base``: a known model over the same states; the discovered terms are added to
        its right-hand side (a hybrid model made explicit) and its parameters come first.
        ``inputs``: scalebridge inputs named like the control columns. ``initial``: the
        initial state (default: zeros, or ``base``'s).
        """
        self._check_fitted()
        states = self.feature_names_
        if base is not None and tuple(base.state_names) != states:
            raise InputError(f"base model states {base.state_names} differ from the fitted "
                             f"features {states}")
        got = tuple(i.name for i in inputs)
        if got != self.control_names_:
            raise InputError(f"to_model needs inputs named {list(self.control_names_)} (the "
                             f"control columns), got {list(got)}")
        base_params = list(base.parameters) if base is not None else []
        named = self._coefficient_names({p.name for p in base_params})
        used = [(j, k) for _, j, k in named]
        params = [_coefficient(pname, float(self.coefficients_[j, k])) for pname, j, k in named]
        nb = len(base_params)
        target = np.array([j for j, _ in used], dtype=int)
        funcs = tuple(self._terms[k].fn for _, k in used)
        n = len(states)

        def rhs(t, y, p, u):
            Z = jnp.concatenate([jnp.atleast_1d(y), jnp.atleast_1d(u)])
            out = jnp.zeros(n, dtype=y.dtype)
            if funcs:
                cols = jnp.stack([f(Z) for f in funcs])
                out = out.at[target].add(p[nb:] * cols)
            if base is not None:
                out = out + base.rhs(t, y, p[:nb], u)
            return out

        if initial is None:
            initial = base.initial if base is not None else np.zeros(n)
        model = Model(states=states, parameters=base_params + params, rhs=rhs,
                      initial=initial, inputs=inputs, stiff=False, name=name,
                      citation="discovered by SINDy (Brunton, Proctor & Kutz 2016)")
        return model

    def _coefficient_names(self, taken=()) -> list[tuple[str, int, int]]:
        """``(parameter name, state index, term index)`` per nonzero coefficient."""
        taken = set(taken) | set(self.feature_names_)
        out = []
        for j, k in zip(*np.nonzero(self.coefficients_), strict=True):
            pname = f"{_slug(self.feature_names_[j])}_{_slug(self.terms_[k])}"
            while pname in taken:
                pname += "_"
            taken.add(pname)
            out.append((pname, int(j), int(k)))
        return out

    def sbml_rates(self) -> dict[str, str]:
        """``{state: SBML infix rate}`` with one parameter per coefficient, as named by
        :meth:`to_model`."""
        self._check_fitted()
        rates: dict[str, list[str]] = {s: [] for s in self.feature_names_}
        for pname, j, k in self._coefficient_names():
            state, formula = self.feature_names_[j], self._terms[k].formula
            if formula is None:
                raise ModelError(f"term of {pname!r} has no SBML formula (a custom function "
                                 "without one); give CustomLibrary templates in SBML infix")
            rates[state].append(pname if formula == "1" else f"{pname}*{formula}")
        return {s: " + ".join(v) if v else "0" for s, v in rates.items()}

    def to_sbml(self, path, *, initial=None, name: str = "sindy"):
        """Write the discovered model as SBML (readable by :func:`scalebridge.load_sbml`);
        models with control inputs cannot be exported."""
        from ..model.sbml_write import write_sbml

        if self.control_names_:
            raise ModelError("SBML export of models with control inputs is not supported; "
                             "fit without u= to export")
        model = self.to_model(initial=initial, name=name)
        return write_sbml(path, name=name, states=self.feature_names_,
                          initial=np.asarray(model.initial_state(model.parameter_values())),
                          parameters=model.parameters, rates=self.sbml_rates())

    def simulate(self, x0, t, u=None, *, blowup: float = 100.0):
        """Simulate the discovered model from ``x0`` at times ``t``; warns when the
        trajectory leaves ``blowup`` times the range of the training data or fails."""
        from ..model.inputs import Interpolated
        from ..simulate import simulate as run

        self._check_fitted()
        ts = np.asarray(t, dtype=float)
        inputs = ()
        if self.control_names_:
            ua = _as_list(u, "u")[0]
            inputs = tuple(Interpolated(nm, ts, ua[:, i])
                           for i, nm in enumerate(self.control_names_))
        model = self.to_model(initial=np.asarray(x0, dtype=float), inputs=inputs)
        sol = run(model, ts, t0=float(ts[0]), throw=False, max_steps=200_000)
        states = np.asarray(sol.states)
        lo, hi = self._data_range
        span = np.maximum(hi - lo, 1e-12)
        finite = np.all(np.isfinite(states), axis=1)
        outside = np.any((states < lo - blowup * span) | (states > hi + blowup * span), axis=1)
        bad = ~finite | outside
        if bad.any():
            k = int(np.argmax(bad))
            warnings.warn(
                f"the discovered model blows up: at t = {ts[k]:.4g} its state leaves {blowup:g}x "
                "the range of the training data (or the solver failed); the equations are not "
                "trustworthy there. Try a weak form, an ensemble, more data or a smaller "
                "library", stacklevel=2)
        return sol


def sparse_regression(Theta, Y, optimizer: Optimizer, *, ensemble: Ensemble | None = None,
                      weights=None, floor=None, n_effective: float | None = None):
    """Sparse coefficients ``Xi`` ``(m, p)`` with ``Y ~ Theta Xi^T`` for regression rows
    ``Theta`` ``(n, p)`` and targets ``Y`` ``(n, m)``; the shared core of SINDy and PDE-FIND.

    Returns ``(Xi, thresholds, path, inclusion)``: the threshold used per target, the
    model-selection path (``None`` for a fixed threshold) and each term's frequency over the
    ensemble (0/1 without one). ``weights``: per-row weights; ``floor`` (per target) and
    ``n_effective`` (the number of independent rows): see
    :func:`~scalebridge.discover.optimizers.aicc`.
    """
    Theta, Y = np.asarray(Theta, dtype=float), np.asarray(Y, dtype=float)
    n, p = Theta.shape
    m = Y.shape[1]
    weights = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    floor = np.zeros(m) if floor is None else np.asarray(floor, dtype=float)
    optimizer._validate()
    if ensemble is None:
        W = weights[None]
        masks = np.ones((1, m, p), dtype=bool)
    else:
        ensemble.check(p)
        rng = np.random.default_rng(ensemble.seed)
        W = np.ones((ensemble.n_models, n))
        if ensemble.bagging:
            W = np.stack([np.bincount(rng.integers(0, n, n), minlength=n)
                          for _ in range(ensemble.n_models)]).astype(float)
        masks = np.ones((ensemble.n_models, m, p), dtype=bool)
        for k in range(ensemble.n_models):
            drop = rng.choice(p, ensemble.library_drop, replace=False)
            masks[k][:, drop] = False
        W = W * weights
    n_eff = float(np.sum(weights) if n_effective is None else n_effective)
    coefs, thresholds, path = _solve(optimizer, Theta, Y, W, masks, floor, n_eff)  # (k, m, p)
    inclusion = np.mean(coefs != 0, axis=0)
    coef, threshold = coefs[0], np.asarray(thresholds).mean(0)
    if coefs.shape[0] > 1:
        # the median model's support, refitted by least squares on all rows, keeping only
        # coefficients above the threshold (as every member does)
        support = np.median(coefs, axis=0) != 0
        units = np.asarray(optimizer.units(np.sqrt(weights @ Theta ** 2),
                                           float(np.sum(weights))))
        for _ in range(p):
            coef = _refit_support(Theta, Y, support)
            keep = support & (np.abs(coef) * units >= threshold[:, None])
            if np.array_equal(keep, support):
                break
            support = keep
    return coef, threshold, path, inclusion


def _refit_support(Theta, Y, support):
    """Least squares on each equation's chosen terms."""
    out = np.zeros(support.shape)
    for j in range(Y.shape[1]):
        idx = np.flatnonzero(support[j])
        if idx.size:
            out[j, idx] = np.linalg.lstsq(Theta[:, idx], Y[:, j], rcond=None)[0]
    return out


def _solve(optimizer: Optimizer, Theta, Y, W, masks, floor, n_eff):
    """Coefficients per ensemble member ``(k, m, p)``, the thresholds used ``(k, m)`` and
    the model-selection path of the first member (``None`` for a fixed threshold)."""
    n = Theta.shape[0]
    if optimizer.threshold is not None:
        th = np.full((1, Y.shape[1]), float(optimizer.threshold))
        coefs = np.asarray(_fixed(optimizer, Theta, Y, W, masks, th))
        return coefs, np.broadcast_to(th, coefs.shape[:2]), None
    coefs, thresholds, ths, nterms, scores = _selected(optimizer, Theta, Y, W, masks, floor,
                                                       n_eff, n)
    path = {"thresholds": np.asarray(ths[0]), "n_terms": np.asarray(nterms[0]),
            "aicc": np.asarray(scores[0])}
    return np.asarray(coefs), np.asarray(thresholds), path


@functools.partial(jax.jit, static_argnums=0)
def _fixed(optimizer, Theta, Y, W, masks, th):
    return jax.vmap(lambda w, m0: optimizer._path(Theta, Y, w, th, m0)[0])(W, masks)


@functools.partial(jax.jit, static_argnums=(0, 7))
def _selected(optimizer, Theta, Y, W, masks, floor, n_eff, n):
    def member(w, m0):
        xi0 = optimizer.initial(Theta, Y, w, m0)
        s = jnp.sqrt(jnp.sum(w[:, None] * Theta ** 2, axis=0))
        ths = threshold_path(xi0 * optimizer.units(s, jnp.sum(w)))
        path = optimizer._path(Theta, Y, w, ths, m0)  # (L, m, p)
        resid = Y[None] - jnp.einsum("np,lmp->lnm", Theta, path)
        rss = jnp.einsum("n,lnm->lm", w, resid ** 2)
        k = jnp.sum(path != 0, axis=-1)
        total = jnp.sum(w)
        score = aicc(rss, k, total, floor, n_eff * total / n)
        best = jnp.argmin(score, axis=0)  # (m,)
        cols = jnp.arange(Y.shape[1])
        return path[best, cols], ths[best, cols], ths, k, score

    return jax.vmap(member)(W, masks)


def relative_error(coef_true, coef) -> float:
    """``||Xi_true - Xi|| / ||Xi_true||`` (Frobenius)."""
    a, b = np.asarray(coef_true, float), np.asarray(coef, float)
    return float(np.linalg.norm(a - b) / np.linalg.norm(a))


def support_matches(coef_true, coef) -> bool:
    """Whether exactly the true terms are nonzero."""
    return bool(np.array_equal(np.asarray(coef_true) != 0, np.asarray(coef) != 0))


__all__ = ["SINDy", "Ensemble", "sparse_regression", "format_equations", "relative_error",
           "support_matches"]
