"""PDE-FIND: sparse regression of partial differential equations from gridded
spatio-temporal data, in strong and weak form.

``PDEFIND().fit(u, t, x)`` regresses ``u_t`` of one or several fields ``u(t, x)`` sampled on
a (time x space) grid on a library of candidate terms and keeps few of them.

- Strong form (Rudy, Brunton, Proctor & Kutz 2017, Sci Adv 3:e1602614): derivatives
  ``u_t, u_x, u_xx, ...`` by central finite differences (fourth order) or Savitzky-Golay
  smoothing; the library is every monomial of the fields up to ``degree`` times at most one
  derivative factor (PySINDy ``PDELibrary`` style): ``u, u^2, u_x, u_xx, u*u_x, u^2*u_xx``.
- Weak form (Messenger & Bortz 2021, J Comput Phys 443:110525; Reinbold, Gurevich &
  Grigoriev 2020, Phys Rev E 101:010203): the equation is integrated against space-time test
  functions ``phi(t) psi(x)`` (products of the bumps of :mod:`.weak`) and every derivative is
  moved onto them by parts, so no derivative of the (noisy) data is taken. The library holds
  ``d^a/dx^a (monomial)``: ``u, u^2, u_x, u_xx, (u^2)_x, (u^2)_xx``, which also spans
  nonlinear diffusion such as the porous ``(u u_x)_x = (u^2)_xx / 2``.

The sparse regression is :func:`~scalebridge.discover.sindy.sparse_regression` (threshold
chosen per equation by AICc by default; ensembles pass through). :meth:`PDEFIND.to_model`
turns a discovered reaction-diffusion equation back into a scalebridge
:class:`~scalebridge.Model` (method of lines, :func:`scalebridge.pde.reaction_diffusion`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
from scipy.signal import savgol_filter

from .. import _x64  # noqa: F401  (float64)
from ..errors import InputError
from .derivatives import check_times
from .library import PolynomialLibrary, monomial_name
from .optimizers import STLSQ, Optimizer
from .sindy import (
    Ensemble,
    coefficient_map,
    equation_table,
    format_equations,
    set_regression,
    sparse_regression,
)
from .weak import WeakForm, bump, effective_rows, trapezoid_weights

DIFFERENTIATION = ("finite", "savgol")
# default test functions per axis for ``weak=True``
DEFAULT_WEAK = WeakForm(n_test=24, width=0.1, order=6)


@dataclass(frozen=True)
class PDETerm:
    """One library term. ``powers``: exponent of each field in the monomial. Strong form:
    the monomial times ``d^order field / dx^order`` (``field`` is ``None`` when there is no
    derivative factor). Weak form (``weak=True``): ``d^order/dx^order`` of the monomial."""

    name: str
    powers: tuple[int, ...]
    order: int = 0
    field: int | None = None
    weak: bool = False

    def monomial(self, U: np.ndarray) -> np.ndarray:
        """The monomial on data ``U`` of shape ``(..., n_fields)``."""
        out = np.ones(U.shape[:-1])
        for i, k in enumerate(self.powers):
            if k:
                out = out * U[..., i] ** k
        return out


def _monomials(nf: int, degree: int, constant: bool) -> list[tuple[int, ...]]:
    """Exponent tuples ordered by total degree (PolynomialLibrary order)."""
    names = [f"f{i}" for i in range(nf)]
    return [t.powers for t in PolynomialLibrary(degree, include_constant=constant).terms(names)]


def strong_library(names: Sequence[str], degree: int, derivative_order: int,
                   constant: bool = False) -> list[PDETerm]:
    """Monomials up to ``degree``, then each derivative ``u_x, u_xx, ...`` of each field
    alone and times each monomial (``u*u_x``, ``u^2*u_xx``)."""
    nf = len(names)
    monos = _monomials(nf, degree, False)
    terms = [PDETerm(monomial_name(names, p), p) for p in _monomials(nf, degree, constant)]
    for a in range(1, derivative_order + 1):
        for f, fname in enumerate(names):
            d = f"{fname}_{'x' * a}"
            terms.append(PDETerm(d, (0,) * nf, a, f))
            terms.extend(PDETerm(f"{monomial_name(names, p)}*{d}", p, a, f) for p in monos)
    return terms


def weak_library(names: Sequence[str], degree: int, derivative_order: int,
                 constant: bool = False) -> list[PDETerm]:
    """Monomials up to ``degree``, then their ``x``-derivatives up to ``derivative_order``:
    ``u_x``, ``(u^2)_x``, ``u_xx``, ``(u^2)_xx``, ..."""
    nf = len(names)
    terms = [PDETerm(monomial_name(names, p), p, weak=True)
             for p in _monomials(nf, degree, constant)]
    for a in range(1, derivative_order + 1):
        for p in _monomials(nf, degree, False):
            m = monomial_name(names, p)
            label = m if sum(p) == 1 else f"({m})"
            terms.append(PDETerm(f"{label}_{'x' * a}", p, a, weak=True))
    return terms


# ----- derivatives --------------------------------------------------------------------
def _central_weights(k: int, accuracy: int = 4) -> np.ndarray:
    """Central-difference weights of derivative ``k`` of order ``accuracy`` (4 or 6;
    Fornberg 1988, Math Comput 51:699)."""
    m = (k + 1) // 2 + accuracy // 2 - 1
    j = np.arange(-m, m + 1, dtype=float)
    A = np.vander(j, increasing=True).T  # A[q, i] = j_i^q
    b = np.zeros(2 * m + 1)
    b[k] = math.factorial(k)
    return np.linalg.solve(A, b)


def _half_stencil(k: int, method: str, window: int) -> int:
    return (k + 1) // 2 + 1 if method == "finite" else window // 2


def _derivative(U, h: float, k: int, axis: int, method: str, window: int, polyorder: int,
                accuracy: int = 4):
    """``d^k U / d axis^k`` on the whole axis (edges are cropped by the caller)."""
    if method == "finite":
        c = _central_weights(k, accuracy)
        m = len(c) // 2
        n = U.shape[axis]
        out = np.zeros_like(U)
        body = sum(ck * np.take(U, np.arange(i, n - 2 * m + i), axis=axis)
                   for i, ck in enumerate(c))
        idx = [slice(None)] * U.ndim
        idx[axis] = slice(m, n - m)
        out[tuple(idx)] = body / h ** k
        return out
    return savgol_filter(U, window, polyorder, deriv=k, delta=h, axis=axis, mode="interp")


# ----- weak form ----------------------------------------------------------------------
def _test_matrices(z: np.ndarray, wf: WeakForm, k_max: int, axis: str) -> list[np.ndarray]:
    """``M[a][j, i] = w_i d^a psi_j(z_i)`` for ``a = 0..k_max`` (rows scaled so that each
    ``psi_j`` integrates to 1), for test functions centred evenly inside the data."""
    if not (isinstance(wf.n_test, int | np.integer) and wf.n_test >= 1):
        raise InputError(f"weak form along {axis}: n_test must be a positive integer, got "
                         f"{wf.n_test!r}")
    if not (isinstance(wf.order, int | np.integer) and wf.order > k_max):
        raise InputError(f"weak form along {axis}: test-function order {wf.order!r} must be an "
                         f"integer above the highest derivative moved onto it ({k_max}); give "
                         f"WeakForm(order={max(k_max + 1, 2)}) or more")
    try:
        h = wf.half_width(z)
    except InputError as err:
        raise InputError(f"weak form along {axis}: {err}") from None
    centres = np.linspace(z[0] + h, z[-1] - h, int(wf.n_test))
    s = (z[None, :] - centres[:, None]) / h
    w = trapezoid_weights(z)
    mats = [w * bump(s, int(wf.order), a) / h ** a for a in range(k_max + 1)]
    norm = mats[0].sum(axis=1, keepdims=True)
    return [m / norm for m in mats]


def _uniform_step(z: np.ndarray, what: str, method: str) -> float:
    d = np.diff(z)
    if not np.allclose(d, d[0], rtol=1e-6, atol=0):
        raise InputError(f"{what} is not uniformly spaced, which {method!r} derivatives need; "
                         "resample the data onto a uniform grid or use weak=True")
    return float(d[0])


def format_pde(equations: dict, precision: int = 4) -> str:
    """``u_t = 0.5 u_xx + u - 0.5 u^2`` lines for ``{"u_t": {term: coef}}``."""
    return format_equations(equations, precision, lhs="{}")


class PDEFIND:
    """PDE-FIND for 1D gridded data, strong or weak form.

    Parameters (stored only; checked by :meth:`fit`):

    - ``degree``: highest total degree of the monomials of the fields (default 2);
    - ``derivative_order``: highest ``x``-derivative in the library (default 2);
    - ``include_constant``: add the constant term ``1``;
    - ``optimizer``: :class:`STLSQ` or :class:`SR3` (default ``STLSQ()``, threshold chosen
      per equation by AICc over a path);
    - ``weak``: ``False`` (strong form), ``True`` (default test functions), a
      :class:`~scalebridge.discover.weak.WeakForm` used along both axes (``width`` a fraction
      of each axis' span) or a pair ``(WeakForm for t, WeakForm for x)``. Overlapping
      test functions correlate the rows, so AICc counts their effective number (the
      participation ratio of the noise covariance, ``n_effective_``);
    - ``differentiation`` (strong form): ``"finite"`` (fourth-order central differences) or
      ``"savgol"`` (Savitzky-Golay, smooths noise) with ``window`` samples (odd; default
      about 5% of each axis, at least 7) and polynomial order ``polyorder``;
    - ``resolution``: the relative size (in RMS of ``u_t``) below which the threshold
      selection does not reward a better fit: smooth errors that are not noise (finite
      differences, the discretisation error of simulated data) would otherwise be fitted by
      spurious small terms. The strong form with finite differences also floors at twice
      their estimated truncation error. 0 turns the floor off;
    - ``ensemble``: an :class:`~scalebridge.discover.sindy.Ensemble` (bagging of the rows
      and/or library drop; ``inclusion_`` gives each term's frequency).

    Learned attributes: ``feature_names_``, ``terms_`` (term names), ``coefficients_``
    ``(n_fields, n_terms)``, ``threshold_``, ``path_``, ``inclusion_``, ``n_rows_`` (regression
    rows: interior grid points or test functions), ``n_effective_`` (the number AICc counts)
    and ``weak_`` (whether the weak form was used).
    """

    def __init__(self, *, degree: int = 2, derivative_order: int = 2,
                 include_constant: bool = False, optimizer: Optimizer | None = None,
                 weak: bool | WeakForm | tuple[WeakForm, WeakForm] = False,
                 differentiation: str = "finite", window: int | None = None,
                 polyorder: int = 4, resolution: float = 1e-3,
                 ensemble: Ensemble | None = None):
        self.degree = degree
        self.derivative_order = derivative_order
        self.include_constant = include_constant
        self.optimizer = optimizer
        self.weak = weak
        self.differentiation = differentiation
        self.window = window
        self.polyorder = polyorder
        self.resolution = resolution
        self.ensemble = ensemble

    # ----- validation --------------------------------------------------------------------
    def _check_params(self) -> tuple[Optimizer, tuple[WeakForm, WeakForm] | None]:
        for name in ("degree", "derivative_order"):
            v = getattr(self, name)
            if not isinstance(v, int | np.integer) or isinstance(v, bool) or v < 1:
                raise InputError(f"PDEFIND {name} must be a positive integer, got {v!r}")
        r = self.resolution
        if not (isinstance(r, int | float | np.floating) and np.isfinite(r) and 0 <= r < 1):
            raise InputError(f"PDEFIND resolution must be a number in [0, 1), got {r!r}")
        optimizer = self.optimizer if self.optimizer is not None else STLSQ()
        if not isinstance(optimizer, Optimizer):
            raise InputError(f"PDEFIND optimizer must be STLSQ or SR3, got {optimizer!r}")
        optimizer._validate()
        if self.ensemble is not None and not isinstance(self.ensemble, Ensemble):
            raise InputError(f"PDEFIND ensemble must be an Ensemble or None, got "
                             f"{self.ensemble!r}")
        weak = self.weak
        if weak is False or weak is None:
            forms = None
        elif weak is True:
            forms = (DEFAULT_WEAK, DEFAULT_WEAK)
        elif isinstance(weak, WeakForm):
            if weak.absolute:
                raise InputError("PDEFIND weak: an absolute width cannot serve both t and x; "
                                 "give a pair (WeakForm for t, WeakForm for x)")
            forms = (weak, weak)
        elif (isinstance(weak, tuple | list) and len(weak) == 2
              and all(isinstance(w, WeakForm) for w in weak)):
            forms = (weak[0], weak[1])
        else:
            raise InputError(f"PDEFIND weak must be False, True, a WeakForm or a pair "
                             f"(WeakForm for t, WeakForm for x), got {weak!r}")
        if forms is None:
            if self.differentiation not in DIFFERENTIATION:
                raise InputError(f"PDEFIND differentiation must be one of "
                                 f"{', '.join(DIFFERENTIATION)}, got {self.differentiation!r}")
            if self.differentiation == "savgol":
                po = self.polyorder
                if (not isinstance(po, int | np.integer) or isinstance(po, bool)
                        or po <= self.derivative_order):
                    raise InputError(f"PDEFIND polyorder must be an integer above "
                                     f"derivative_order={self.derivative_order}, got {po!r}")
                if self.window is not None and (not isinstance(self.window, int | np.integer)
                                                or self.window <= po):
                    raise InputError(f"PDEFIND window must be an integer above polyorder={po} "
                                     f"(or None), got {self.window!r}")
        return optimizer, forms

    @staticmethod
    def _check_data(u) -> np.ndarray:
        try:
            U = np.asarray(u, dtype=float)
        except (TypeError, ValueError):
            raise InputError("u must be a numeric array of shape (n_t, n_x) or "
                             "(n_t, n_x, n_fields)") from None
        if U.ndim == 2:
            U = U[:, :, None]
        if U.ndim != 3:
            raise InputError(f"u must have shape (n_t, n_x) or (n_t, n_x, n_fields), got "
                             f"{U.shape}; 2D space is not supported")
        bad = ~np.isfinite(U)
        if bad.any():
            i, j, k = (int(v) for v in np.argwhere(bad)[0])
            raise InputError(f"u contains {int(bad.sum())} NaN or infinite values (first at "
                             f"t index {i}, x index {j}, field {k}); remove or interpolate "
                             "them, or crop the data to a window without them")
        return U

    # ----- fitting -----------------------------------------------------------------------
    def fit(self, u, t, x, *, feature_names: Sequence[str] | None = None) -> PDEFIND:
        """Fit ``u_t = sum_k xi_k term_k`` to fields ``u`` of shape ``(n_t, n_x)`` or
        ``(n_t, n_x, n_fields)`` on times ``t`` and positions ``x`` (arrays, or a grid step).
        ``feature_names``: one name per field (default ``u``, or ``u0, u1, ...``)."""
        optimizer, forms = self._check_params()
        U = self._check_data(u)
        nt, nx, nf = U.shape
        ts = check_times(t, nt, "t")
        xs = check_times(x, nx, "x")
        names = self._names(feature_names, nf)
        if forms is None:
            terms = strong_library(names, self.degree, self.derivative_order,
                                   self.include_constant)
            Theta, Y, b2 = self._strong(U, ts, xs, terms)
            n_eff = Theta.shape[0]
        else:
            terms = weak_library(names, self.degree, self.derivative_order,
                                 self.include_constant)
            Theta, Y, n_eff = self._weak(U, ts, xs, terms, forms)
            b2 = np.zeros(nf)
        n, p = Theta.shape
        if n < p:
            raise InputError(
                f"the library has {p} terms but the data give only {n} regression rows; use a "
                "larger grid (or more weak test functions, n_test) or a smaller library "
                "(lower degree or derivative_order)")
        self._check_columns(Theta, terms)
        # errors that are not noise (derivative truncation, a discretised simulation's own
        # error) are smooth and partly fitted by spurious terms; the AICc residual variance
        # is not allowed below them (see optimizers.aicc)
        floor = np.maximum(2 * b2, (self.resolution ** 2) * np.mean(Y ** 2, axis=0))
        # overlapping test functions correlate the rows: AICc counts the effective number
        n_eff = float(min(max(n_eff, p + 2.0), n))
        coef, threshold, path, inclusion = sparse_regression(
            Theta, Y, optimizer, ensemble=self.ensemble, floor=floor, n_effective=n_eff)
        self.feature_names_ = tuple(names)
        self.terms_ = tuple(tm.name for tm in terms)
        self._terms = tuple(terms)
        self.coefficients_ = np.asarray(coef)
        self.threshold_ = np.asarray(threshold)
        self.path_ = path
        self.inclusion_ = np.asarray(inclusion)
        self.n_rows_ = n
        self.n_effective_ = n_eff
        self.weak_ = forms is not None
        self._x = xs
        self._u0 = U[0]
        self._range = (U.min(axis=(0, 1)), U.max(axis=(0, 1)))
        return self

    @staticmethod
    def _names(given, nf: int) -> list[str]:
        if given is None:
            return ["u"] if nf == 1 else [f"u{i}" for i in range(nf)]
        names = [str(s) for s in given]
        if len(names) != nf or len(set(names)) != nf:
            raise InputError(f"feature_names: need {nf} distinct names (one per field), got "
                             f"{list(given)!r}")
        for s in names:
            if not s.isidentifier():
                raise InputError(f"feature_names: {s!r} is not an identifier; use names like "
                                 "'u' or 'rho'")
        return names

    def _strong(self, U, t, x, terms):
        method = self.differentiation
        ht = _uniform_step(t, "t", method)
        hx = _uniform_step(x, "x", method)
        nt, nx, nf = U.shape
        K = self.derivative_order
        po = int(self.polyorder)
        windows = []
        for n, what in ((nt, "t"), (nx, "x")):
            w = self.window if self.window is not None else max(7, po + 2, n // 20)
            w = int(w) + (int(w) % 2 == 0)
            windows.append(w)
            need = 2 * _half_stencil(K if what == "x" else 1, method, w) + 1
            if method == "savgol":
                need = w
            if n < need + 1:
                raise InputError(
                    f"u has {n} grid points along {what}, too few for {method!r} derivatives "
                    f"(stencil of {need} points plus an interior); sample {what} more densely"
                    + (" or lower derivative_order" if what == "x" else "")
                    + (" or a smaller window" if method == "savgol" else ""))
        wt, wx = windows
        et = _half_stencil(1, method, wt)
        ex = max(_half_stencil(a, method, wx) for a in range(1, K + 1))
        crop = (slice(et, nt - et), slice(ex, nx - ex))

        def system(acc, crop):
            Ut = _derivative(U, ht, 1, 0, method, wt, po, acc)
            derivs = {a: _derivative(U, hx, a, 1, method, wx, po, acc)[crop]
                      for a in range(1, K + 1)}
            Uc = U[crop]
            cols = []
            for tm in terms:
                col = tm.monomial(Uc)
                if tm.field is not None:
                    col = col * derivs[tm.order][..., tm.field]
                cols.append(col.ravel())
            return np.stack(cols, axis=1), Ut[crop].reshape(-1, nf)

        Theta, Y = system(4, crop)
        b2 = np.zeros(nf)
        if method == "finite" and nt > 2 * et + 4 and nx > 2 * ex + 4:
            # truncation error of the fourth-order differences: their difference from
            # sixth-order ones, through a least-squares fit of the whole library
            inner = (slice(et + 1, nt - et - 1), slice(ex + 1, nx - ex - 1))
            T4, Y4 = system(4, inner)
            T6, Y6 = system(6, inner)
            xi = np.linalg.lstsq(T4 / np.linalg.norm(T4, axis=0), Y4, rcond=None)[0]
            xi = xi / np.linalg.norm(T4, axis=0)[:, None]
            b2 = np.mean(((Y4 - Y6) - (T4 - T6) @ xi) ** 2, axis=0)
        return Theta, Y, b2

    def _weak(self, U, t, x, terms, forms):
        wt, wx = forms
        try:
            Vt, Vdt = wt.matrices(t)
        except InputError as err:
            raise InputError(f"weak form along t: {err}") from None
        Psi = _test_matrices(x, wx, self.derivative_order, "x")
        nf = U.shape[2]
        Y = np.stack([-(Vdt @ U[..., f] @ Psi[0].T).ravel() for f in range(nf)], axis=1)
        cols = []
        for tm in terms:
            G = Vt @ tm.monomial(U) @ Psi[tm.order].T
            cols.append(((-1) ** tm.order * G).ravel())
        # effective number of independent rows of white noise through the test functions:
        # the participation ratio tr(C)^2 / tr(C^2) of the row covariance C = A (x) B
        n_eff = effective_rows(Vdt) * effective_rows(Psi[0])
        return np.stack(cols, axis=1), Y, n_eff

    @staticmethod
    def _check_columns(Theta, terms):
        norms = np.linalg.norm(Theta, axis=0)
        dead = [terms[i].name for i in np.flatnonzero(norms <= 1e-300)]
        if dead:
            raise InputError(f"library terms {dead} are zero on all the data; use data in which "
                             "the fields vary in space and time, or a smaller library")
        s = np.linalg.svd(Theta / norms, compute_uv=False)
        if s[-1] < 1e-10 * s[0]:
            warnings.warn(
                f"the PDE-FIND library matrix is nearly rank deficient (condition number "
                f"{s[0] / max(s[-1], 1e-300):.2g}): the data cannot tell some terms apart (a "
                "pure travelling wave makes u_t and u_x collinear, for example); use data with "
                "richer dynamics (several fronts or initial conditions) or a smaller library",
                stacklevel=3)

    # ----- results -----------------------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "coefficients_"):
            raise InputError("this PDEFIND model is not fitted yet; call fit(u, t, x) first")

    # ----- the result protocol ----------------------------------------------------------
    def to_dict(self) -> dict:
        """The fitted equations as data (terms, coefficients, thresholds, path, the data's
        grid, first snapshot and range, the settings); :meth:`from_dict` gives a fitted
        model that prints, exports (:meth:`to_model`) and plots (the optimiser and ensemble
        are not kept: to refit, make a new estimator)."""
        self._check_fitted()
        return {"settings": {"degree": self.degree, "derivative_order": self.derivative_order,
                             "include_constant": self.include_constant,
                             "differentiation": self.differentiation, "window": self.window,
                             "polyorder": self.polyorder, "resolution": self.resolution},
                "feature_names": list(self.feature_names_),
                "terms": [{"name": t.name, "powers": list(t.powers), "order": t.order,
                           "field": t.field, "weak": t.weak} for t in self._terms],
                "coefficients": self.coefficients_, "threshold": self.threshold_,
                "inclusion": self.inclusion_, "path": self.path_, "n_rows": int(self.n_rows_),
                "n_effective": float(self.n_effective_), "weak": bool(self.weak_),
                "x": np.asarray(self._x), "u0": np.asarray(self._u0),
                "range": [np.asarray(a) for a in self._range]}

    @classmethod
    def from_dict(cls, d) -> PDEFIND:
        model = cls(**d["settings"], weak=bool(d["weak"]))
        model.feature_names_ = tuple(d["feature_names"])
        set_regression(model, d, tuple(PDETerm(t["name"], tuple(int(k) for k in t["powers"]),
                                               int(t["order"]), t["field"], bool(t["weak"]))
                                       for t in d["terms"]))
        model.n_rows_ = int(d["n_rows"])
        model.n_effective_ = float(d["n_effective"])
        model.weak_ = bool(d["weak"])
        model._x = np.asarray(d["x"], float)
        model._u0 = np.asarray(d["u0"], float)
        model._range = tuple(np.asarray(a, float) for a in d["range"])
        return model

    def to_pandas(self):
        """The coefficients: one row per field's equation (``u_t``), one column per term."""
        import pandas as pd

        self._check_fitted()
        return pd.DataFrame(self.coefficients_, columns=list(self.terms_),
                            index=pd.Index([f"{n}_t" for n in self.feature_names_],
                                           name="equation"))

    def plot(self, ax=None):
        """The coefficients as a heat map (equations by terms) into ``ax``; the axes."""
        self._check_fitted()
        return coefficient_map(ax, self.coefficients_, [f"{n}_t" for n in self.feature_names_],
                               self.terms_)

    def equations(self, precision: int | None = None) -> dict[str, dict[str, float]]:
        """``{"u_t": {term: coefficient}}`` of the nonzero terms (rounded to ``precision``
        significant digits when given)."""
        self._check_fitted()
        return equation_table([f"{n}_t" for n in self.feature_names_], self.terms_,
                              self.coefficients_, precision)

    def __str__(self):
        if not hasattr(self, "coefficients_"):
            return "PDEFIND (not fitted)"
        return format_pde(self.equations())

    def __repr__(self):
        form = "weak" if self.weak not in (False, None) else "strong"
        return (f"PDEFIND(degree={self.degree}, derivative_order={self.derivative_order}, "
                f"{form} form)")

    def to_model(self, grid=None, *, initial=None, boundary: str = "noflux",
                 name: str = "pdefind"):
        """The discovered equations as a reaction-diffusion :class:`~scalebridge.Model`
        (method of lines via :func:`scalebridge.pde.reaction_diffusion`), solved by
        :func:`scalebridge.simulate`.

        Expressible terms: monomials of the fields (reaction), ``u_xx`` of a field in its own
        equation (linear diffusion) and, for one field, ``(u^j)_xx`` (weak form; nonlinear
        diffusion ``(D(u) u_x)_x`` with ``D(u) = D0 + sum_j j c_j u^(j-1)``, e.g. porous
        Fisher-KPP). Anything else (advection ``u_x``, cross-diffusion, ``u*u_xx`` of the
        strong form) raises :class:`~scalebridge.errors.InputError`.

        ``grid``: a :class:`~scalebridge.pde.Grid` (1D; default: the data's ``x`` nodes with
        ``boundary`` conditions); ``initial``: the flat initial state (default: the first
        snapshot of the data, interpolated onto the grid). Parameters: one per reaction or
        nonlinear-diffusion coefficient (``c_<field>_<term>``), then the tissue's
        diffusivities (``D`` or ``D_<field>``).
        """
        from ..model.model import Model
        from ..model.parameter import Parameter
        from ..pde.grid import Grid, grid1d
        from ..pde.tissue import reaction_diffusion

        self._check_fitted()
        names, nf = self.feature_names_, len(self.feature_names_)
        reaction: list[tuple[int, tuple[int, ...], float, str]] = []  # (eq, powers, c, term)
        linear = np.zeros(nf)
        porous: dict[int, float] = {}  # power j -> coefficient of (u^j)_xx
        bad = []
        for f in range(nf):
            for tm, c in zip(self._terms, self.coefficients_[f], strict=True):
                if c == 0:
                    continue
                single = tm.powers == tuple(int(i == f) for i in range(nf))
                if tm.order == 0:
                    reaction.append((f, tm.powers, float(c), tm.name))
                elif tm.order == 2 and tm.weak and single:
                    linear[f] += c
                elif tm.order == 2 and tm.weak and nf == 1 and sum(tm.powers) >= 2:
                    porous[sum(tm.powers)] = porous.get(sum(tm.powers), 0.0) + float(c)
                elif tm.order == 2 and not tm.weak and sum(tm.powers) == 0 and tm.field == f:
                    linear[f] += c
                else:
                    bad.append(f"{names[f]}_t: {tm.name}")
        if bad:
            raise InputError(
                f"to_model: terms {bad} cannot be written as reaction-diffusion "
                "u_t = (D(u) u_x)_x + R(u) (advection, cross-diffusion, odd derivatives and "
                "strong-form products such as u*u_xx are not expressible); refit with a smaller "
                "library, e.g. derivative_order=2 and weak=True, or simulate them another way")
        if np.any(linear < 0):
            f = int(np.argmax(linear < 0))
            raise InputError(f"to_model: the u_xx coefficient of {names[f]} is {linear[f]:.4g} "
                             "< 0 (backward diffusion, an ill-posed model); refit with less "
                             "noise, weak=True or a larger threshold")
        lo, hi = (float(np.min(self._range[0])), float(np.max(self._range[1])))
        if porous:
            v = np.linspace(max(lo, 0.0), hi, 201)
            dv = linear[0] + sum(j * c * v ** (j - 1) for j, c in porous.items())
            if np.min(dv) < -1e-8 * max(np.max(np.abs(dv)), 1e-300):
                k = int(np.argmin(dv))
                raise InputError(f"to_model: the discovered diffusivity D(u) is {dv[k]:.4g} < 0 "
                                 f"at u = {v[k]:.4g}, inside the data range (backward diffusion, "
                                 "an ill-posed model); refit with weak=True or a larger "
                                 "threshold")
        # grid and initial state
        if grid is None:
            step = _uniform_step(self._x, "x", "to_model")
            grid = grid1d(len(self._x), step * (len(self._x) - 1), boundary)
        if not isinstance(grid, Grid) or grid.ndim != 1:
            raise InputError(f"to_model: grid must be a 1D scalebridge.pde Grid, got {grid!r}")
        if initial is None:
            nodes = grid.coords[0] + self._x[0]
            initial = np.concatenate([np.interp(nodes, self._x, self._u0[:, f])
                                      for f in range(nf)])
        # parameters: reaction coefficients, then porous-diffusion ones (plus D0 when both)
        params, taken = [], set(names) | {"D"} | {f"D_{s}" for s in names}

        def pname(f, term):
            s = term.replace("^", "").replace("*", "_").replace("(", "").replace(")", "")
            out = f"c_{names[f]}_{s}" if s != "1" else f"c_{names[f]}_const"
            while out in taken:
                out += "_"
            taken.add(out)
            return out

        for f, _, c, term in reaction:
            params.append(Parameter(pname(f, term), c))
        n_re = len(params)
        powers_re = np.array([p for _, p, _, _ in reaction], dtype=float).reshape(-1, nf)
        target = np.array([f for f, _, _, _ in reaction], dtype=int)
        pj = sorted(porous)
        if porous:
            if linear[0] > 0:
                params.append(Parameter(pname(0, f"{names[0]}_xx"), float(linear[0]), lower=0.0))
            params.extend(Parameter(pname(0, f"({names[0]}{j})_xx"), porous[j]) for j in pj)

        def cell_rhs(t, y, p, u):
            y = jnp.atleast_1d(y)
            out = jnp.zeros(nf, dtype=y.dtype)
            if n_re:
                cols = jnp.prod(y[None, :] ** powers_re, axis=1)
                out = out.at[target].add(p[:n_re] * cols)
            return out

        cell = Model(name=f"{name}_reaction", states=list(names), parameters=params,
                     rhs=cell_rhs, initial=np.zeros(nf), stiff=False)
        nonlinear = None
        if porous:
            has_d0 = linear[0] > 0

            def nonlinear(v, p):
                d0 = p[n_re] if has_d0 else 0.0
                first = n_re + int(has_d0)
                dv = d0 + sum(j * p[first + i] * jnp.maximum(v, 0.0) ** (j - 1)
                              for i, j in enumerate(pj))
                return jnp.maximum(dv, 0.0)

            diffusion = {names[0]: 1.0}
        else:
            diffusion = {s: float(d) for s, d in zip(names, linear, strict=True)}
        model = reaction_diffusion(cell, grid, diffusion=diffusion, nonlinear_diffusion=nonlinear,
                                   initial=np.asarray(initial, dtype=float), name=name,
                                   stiff=False)
        return model.replace(citation="discovered by PDE-FIND (Rudy et al. 2017, Sci Adv "
                                      "3:e1602614)" + ("; weak form (Messenger & Bortz 2021, "
                                                       "J Comput Phys 443:110525)"
                                                       if self.weak_ else ""))


__all__ = ["PDEFIND", "PDETerm", "strong_library", "weak_library", "format_pde"]
