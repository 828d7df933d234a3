"""The parameter space: which parameters are estimated, on which scale, within which bounds.

A :class:`ParameterSpace` is built from a model's :class:`~scalebridge.Parameter` specs
(:meth:`ParameterSpace.from_model`) or from a PEtab parameter table (through
:func:`scalebridge.load_petab`, as :attr:`Problem.space <scalebridge.Problem.space>`). It
is the one place that maps between three coordinates of the estimated parameters:

- **linear** values ``theta``: what the model uses;
- **scaled** values ``x`` (``lin``, ``log`` or ``log10`` of ``theta``, per parameter, as
  PEtab's ``parameterScale``): what optimisers, profiles and Fisher information work on,
  bounded by the scaled bounds :attr:`lower` and :attr:`upper`;
- **unconstrained** values ``u``: a smooth bijection of the scaled box onto R^d (logistic
  where both bounds are finite, ``exp`` where one is, identity where none is), for samplers
  and gradient training that must never leave the bounds.

It also holds the priors: objective priors (:meth:`log_prior`, PEtab's ``objectivePrior``,
a density of the linear value as PEtab evaluates it), the prior density of ``x`` that a
posterior sampler needs (:meth:`log_prior_density`, with the change-of-variables term), and
initialization priors that shape the start points of a multi-start fit
(:meth:`start_points`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputError
from ..model.parameter import Parameter, Prior, from_scale, to_scale

__all__ = ["ParameterSpace", "scaled_to_linear", "scaled_from_unconstrained", "LHS_BLOCK",
           "PRIOR_KINDS"]

LHS_BLOCK = 20  # start points are drawn as Latin hypercubes of this many points
PRIOR_KINDS = ("petab", "uniform")  # what log_prior_density takes as the prior
_EDGE = 1e-9  # points on a bound map this fraction of the width inside (unconstrained)


class ParameterSpace:
    """Parameters with their values, bounds, scales, priors and which are estimated.

    ``parameters``: :class:`~scalebridge.Parameter` specs (all of them, fixed ones
    included: they keep their values); ``init_priors``: ``{id: Prior}`` for the start
    points of a multi-start fit. The estimated parameters, in the order of ``parameters``,
    are the entries of the vectors ``x`` that every method takes.
    """

    def __init__(self, parameters: Sequence[Parameter] | Mapping,
                 init_priors: Mapping[str, Prior] | None = None):
        from ..model.parameter import as_parameters

        self.parameters = as_parameters(parameters)
        names = [p.name for p in self.parameters]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InputError(f"parameters list {', '.join(dupes)} more than once")
        self.init_priors = dict(init_priors or {})
        unknown = sorted(set(self.init_priors) - set(names))
        if unknown:
            raise InputError(f"initialization priors for {', '.join(unknown)}, which are not "
                             "parameters of this space")
        for k, v in self.init_priors.items():
            if not isinstance(v, Prior):
                raise InputError(f"initialization prior of {k!r} must be a Prior, got "
                                 f"{type(v).__name__}")
        self._index = {n: i for i, n in enumerate(names)}
        self._est = np.asarray([i for i, p in enumerate(self.parameters) if p.estimate],
                               dtype=np.int64)
        flat = [self.parameters[i].name for i in self._est
                if self.parameters[i].lower == self.parameters[i].upper]
        if flat:
            raise InputError(f"{', '.join(flat)} estimated with equal lower and upper bounds; "
                             "widen the bounds or fix them (estimate=False)")
        self._values = np.asarray([p.value for p in self.parameters], dtype=np.float64)
        with np.errstate(divide="ignore"):
            self._lo = np.asarray(self.to_scaled([self.parameters[i].lower for i in self._est]))
            self._hi = np.asarray(self.to_scaled([self.parameters[i].upper for i in self._est]))
        flo, fhi = np.isfinite(self._lo), np.isfinite(self._hi)
        self._both, self._lo_only, self._hi_only = flo & fhi, flo & ~fhi, ~flo & fhi
        self._w = np.where(self._both, self._hi - self._lo, 1.0)
        self._lo0 = np.where(flo, self._lo, 0.0)
        self._hi0 = np.where(fhi, self._hi, 0.0)

    # ----- construction ---------------------------------------------------------------------
    @classmethod
    def from_model(cls, model, estimate: Iterable[str] | None = None,
                   bounds: Mapping | None = None) -> ParameterSpace:
        """The space of ``model.parameters``. ``bounds``: ``{name: (low, high)}`` (``(low,
        high, "log")`` for a log scale) replaces those parameters' bounds and scales.
        ``estimate`` (names) says which are estimated; by default the named ones of
        ``bounds`` if given, else each parameter's own ``estimate`` flag."""
        space = cls(model.parameters)
        if bounds:
            box = cls.from_bounds(bounds)
            space._check_names(box.ids, "bounds")
            new = {p.name: p for p in box.parameters}
            space = space._replace([p.replace(lower=new[p.name].lower, upper=new[p.name].upper,
                                              scale=new[p.name].scale)
                                    if p.name in new else p for p in space.parameters])
            estimate = box.ids if estimate is None else estimate
        return space if estimate is None else space.with_estimated(estimate)

    @classmethod
    def from_bounds(cls, bounds, names: Sequence[str] | None = None) -> ParameterSpace:
        """A box of estimated parameters from ``[(low, high), ...]`` (named ``names``, by
        default ``x0, x1, ...``) or ``{name: (low, high)}``, or itself. ``(low, high,
        "log")`` (or ``True`` as third entry) puts a parameter on log scale (``low > 0``).
        Nominal values are the centres of the box on each scale."""
        if isinstance(bounds, ParameterSpace):
            return bounds
        try:
            if isinstance(bounds, Mapping):
                if names is not None:
                    raise InputError("bounds is a dict, which names the parameters already; "
                                     "leave names out")
                names, specs = list(bounds), [tuple(v) for v in bounds.values()]
            else:
                specs = [tuple(v) for v in bounds]
            if not specs or any(len(v) not in (2, 3) for v in specs):
                raise ValueError
        except (TypeError, ValueError):
            raise InputError(f"bounds must be a list of (low, high) pairs or a dict "
                             f"{{name: (low, high)}}, got {bounds!r}") from None
        names = [f"x{i}" for i in range(len(specs))] if names is None else list(names)
        if len(names) != len(specs):
            raise InputError(f"{len(specs)} bounds need as many names, got {names}")
        params = []
        for n, spec in zip(names, specs, strict=True):
            try:
                lo, hi = float(spec[0]), float(spec[1])
            except (TypeError, ValueError):
                raise InputError(f"bounds of {n!r} must be numbers, got {spec!r}") from None
            third = spec[2] if len(spec) == 3 else "lin"
            scale = "log" if third is True else "lin" if third in (False, None) else third
            if scale not in ("lin", "log", "log10"):
                raise InputError(f"bounds of {n!r}: scale {third!r} is unknown; use 'lin', "
                                 "'log' or 'log10' (or True for log)")
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise InputError(f"parameter {n!r} has bounds ({lo}, {hi}); need finite "
                                 "low < high")
            if scale != "lin" and lo <= 0:
                raise InputError(f"log-scale parameter {n!r} needs low > 0, got {lo}")
            if not str(n).isidentifier():
                raise InputError(f"parameter name {n!r} must be an identifier (letters, "
                                 "digits and _, not starting with a digit)")
            mid = math.sqrt(lo * hi) if scale != "lin" else 0.5 * (lo + hi)
            params.append(Parameter(str(n), mid, lo, hi, scale))
        return cls(params)

    def with_estimated(self, names: Iterable[str]) -> ParameterSpace:
        """A copy that estimates exactly ``names`` (the others fixed at their values)."""
        names = [names] if isinstance(names, str) else list(names)
        self._check_names(names, "with_estimated")
        keep = set(names)
        return self._replace([p.replace(estimate=p.name in keep) for p in self.parameters])

    def fix(self, **values: float) -> ParameterSpace:
        """A copy with the named parameters fixed at the given (linear) values."""
        self._check_names(values, "fix")
        return self._replace([p.replace(value=values[p.name], estimate=False)
                              if p.name in values else p for p in self.parameters])

    def _replace(self, parameters) -> ParameterSpace:
        return type(self)(parameters, self.init_priors)

    def _check_names(self, names, where: str) -> None:
        bad = [n for n in names if n not in self._index]
        if bad:
            raise InputError(f"{where}: {', '.join(map(repr, bad))} not among the parameters "
                             f"({', '.join(self.names)})")

    # ----- description ----------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        """All parameter names, fixed ones included."""
        return tuple(p.name for p in self.parameters)

    @property
    def ids(self) -> tuple[str, ...]:
        """Names of the estimated parameters: the order of every vector ``x``."""
        return tuple(self.parameters[i].name for i in self._est)

    @property
    def scales(self) -> tuple[str, ...]:
        """Scales of the estimated parameters."""
        return tuple(self.parameters[i].scale for i in self._est)

    @property
    def size(self) -> int:
        """Number of estimated parameters."""
        return int(self._est.size)

    @property
    def estimated_index(self) -> np.ndarray:
        """Positions of the estimated parameters in :attr:`parameters`."""
        return self._est.copy()

    @property
    def nominal(self) -> np.ndarray:
        """Nominal values of the estimated parameters, on their scales."""
        return np.asarray(self.to_scaled(self._values[self._est]))

    @property
    def lower(self) -> np.ndarray:
        """Lower bounds on the parameters' scales (``-inf`` for log of 0)."""
        return self._lo.copy()

    @property
    def upper(self) -> np.ndarray:
        """Upper bounds on the parameters' scales."""
        return self._hi.copy()

    @property
    def bounds(self) -> np.ndarray:
        """``(size, 2)``: lower and upper bounds on the parameters' scales."""
        return np.stack([self._lo, self._hi], axis=-1)

    def __repr__(self):
        return f"ParameterSpace(estimated={list(self.ids)}, fixed={len(self.names) - self.size})"

    # ----- linear <-> scaled ----------------------------------------------------------------
    def to_linear(self, x):
        """Linear values of scaled ``x`` (shape ``(..., size)``; NumPy or JAX, as given)."""
        return scaled_to_linear(x, self.scales)

    def to_scaled(self, theta):
        """Scaled values of linear ``theta`` (shape ``(..., size)``; NumPy or JAX)."""
        return scaled_from_linear(theta, self.scales)

    def full(self, x):
        """All parameters' linear values (fixed ones at their values) from scaled ``x``."""
        q = jnp.asarray(self._values)
        if self._est.size == 0:
            return q
        return q.at[jnp.asarray(self._est)].set(self.to_linear(x))

    def vector(self, x=None) -> jax.Array:
        """``x`` checked: ``None`` gives :attr:`nominal`, a mapping ``{id: scaled value}``
        changes some entries of it, an array must have shape ``(size,)``."""
        if x is None:
            return jnp.asarray(self.nominal)
        if isinstance(x, Mapping):
            base = self.nominal
            for k, v in x.items():
                if k not in self.ids:
                    raise InputError(f"{k!r} is not an estimated parameter; estimated: "
                                     f"{', '.join(self.ids)}")
                base[self.ids.index(k)] = float(v)
            return jnp.asarray(base)
        arr = jnp.asarray(x, dtype=jnp.float64)
        if arr.shape != (self.size,):
            raise InputError(f"parameter vector has shape {arr.shape}, expected "
                             f"({self.size},) for {', '.join(self.ids)}")
        return arr

    def as_dict(self, x) -> dict[str, float]:
        """``{id: linear value}`` of scaled ``x``."""
        lin = self.to_linear(np.asarray(x, float))
        return {k: float(v) for k, v in zip(self.ids, lin, strict=True)}

    # ----- linear <-> unit box --------------------------------------------------------------
    def require_finite_bounds(self, where: str) -> None:
        if not (np.all(np.isfinite(self._lo)) and np.all(np.isfinite(self._hi))):
            bad = [p for p, a, b in zip(self.ids, self._lo, self._hi, strict=True)
                   if not (math.isfinite(a) and math.isfinite(b))]
            raise InputError(f"{where} needs finite bounds on the parameter scales; "
                             f"{', '.join(bad)} have infinite bounds")

    def to_unit(self, theta):
        """Linear values ``theta`` (shape ``(..., size)``) as coordinates of the unit box,
        uniform on each parameter's scale (NumPy or JAX, as given)."""
        self.require_finite_bounds("the unit box")
        return (scaled_from_linear(theta, self.scales) - self._lo) / (self._hi - self._lo)

    def from_unit(self, u) -> np.ndarray:
        """Linear values of unit-box coordinates ``u`` (shape ``(..., size)``), within the
        bounds whatever the rounding of exp/log."""
        self.require_finite_bounds("the unit box")
        x = self._lo + np.asarray(u, float) * (self._hi - self._lo)
        lin = np.asarray(self.to_linear(x))
        lo = [self.parameters[i].lower for i in self._est]
        hi = [self.parameters[i].upper for i in self._est]
        return np.clip(lin, lo, hi)

    # ----- scaled <-> unconstrained ---------------------------------------------------------
    def from_unconstrained(self, u):
        """``(x, log|dx/du|)`` of unconstrained ``u`` (JAX-traceable, shape ``(size,)``)."""
        data = self.unconstrained_data()
        both, lo_only, hi_only = data["both"], data["lo_only"], data["hi_only"]
        lj = jnp.where(both, jnp.log(data["w"]) + jax.nn.log_sigmoid(u)
                       + jax.nn.log_sigmoid(-u), jnp.where(lo_only | hi_only, u, 0.0))
        return scaled_from_unconstrained(u, data), jnp.sum(lj)

    def unconstrained_data(self) -> dict:
        """The arrays of the map from unconstrained to scaled coordinates, for
        :func:`scaled_from_unconstrained` inside compiled code that must not hold the space
        itself (bounds as data: a new space of the same size does not recompile)."""
        return {"lo": jnp.asarray(self._lo0), "hi": jnp.asarray(self._hi0),
                "w": jnp.asarray(self._w), "both": jnp.asarray(self._both),
                "lo_only": jnp.asarray(self._lo_only), "hi_only": jnp.asarray(self._hi_only)}

    def unconstrained_to_scaled(self, u) -> np.ndarray:
        """NumPy map ``u -> x`` for any leading shape (no Jacobian)."""
        u = np.asarray(u, float)
        with np.errstate(over="ignore"):
            s = 1.0 / (1.0 + np.exp(-u))
            e = np.exp(np.where(self._both, 0.0, u))
        return np.where(self._both, self._lo0 + self._w * s,
                        np.where(self._lo_only, self._lo0 + e,
                                 np.where(self._hi_only, self._hi0 - e, u)))

    def unconstrained_derivatives(self, u) -> tuple[np.ndarray, np.ndarray]:
        """NumPy ``(dx/du, d log|dx/du| / du)`` per entry of ``u`` (the map is diagonal)."""
        u = np.asarray(u, float)
        with np.errstate(over="ignore"):
            s = 1.0 / (1.0 + np.exp(-u))
            e = np.exp(np.where(self._both, 0.0, u))
        dx = np.where(self._both, self._w * s * (1 - s),
                      np.where(self._lo_only, e, np.where(self._hi_only, -e, 1.0)))
        dlj = np.where(self._both, 1 - 2 * s,
                       np.where(self._lo_only | self._hi_only, 1.0, 0.0))
        return dx, dlj

    def outside(self, x, rtol: float = 1e-9) -> np.ndarray:
        """Boolean mask of the entries of scaled ``x`` (any leading shape) outside the
        bounds by more than ``rtol`` of the width."""
        x = np.asarray(x, float)
        tol = rtol * np.where(self._both, self._w, 1.0)
        return (x < self._lo - tol) | (x > self._hi + tol)

    def to_unconstrained(self, x) -> np.ndarray:
        """``u`` of scaled ``x``; points on a bound move :data:`_EDGE` of the width inside."""
        x = np.asarray(x, float)
        with np.errstate(divide="ignore", invalid="ignore"):
            f = np.clip((x - self._lo0) / self._w, _EDGE, 1 - _EDGE)
            span = np.where(self._both, self._w, 1.0)
            dl = np.maximum(x - self._lo0, _EDGE * span)
            dh = np.maximum(self._hi0 - x, _EDGE * span)
            return np.where(self._both, np.log(f) - np.log1p(-f),
                            np.where(self._lo_only, np.log(dl),
                                     np.where(self._hi_only, np.log(dh), x)))

    # ----- priors ---------------------------------------------------------------------------
    @property
    def has_priors(self) -> bool:
        """Whether any estimated parameter has an objective prior."""
        return any(self.parameters[i].prior is not None for i in self._est)

    def log_prior(self, x):
        """Sum of the objective priors' log densities (PEtab: each of the linear value,
        or of the scaled value for ``parameterScale*`` kinds) at scaled ``x``."""
        total = jnp.asarray(0.0)
        for k, i in enumerate(self._est):
            p = self.parameters[i]
            if p.prior is not None:
                total = total + p.prior.logpdf(from_scale(x[k], p.scale), p.scale)
        return total

    def log_prior_density(self, prior: str = "petab") -> Callable:
        """A JAX function of scaled ``x``: the log prior density of ``x`` itself.

        ``prior="petab"``: each parameter's objective prior where it has one, with the
        change-of-variables term ``log|d theta / d x|`` for priors on the linear value;
        uniform on the scaled bounds where it has none. ``prior="uniform"``: uniform on the
        scaled bounds for all. A parameter with a uniform prior needs finite bounds.
        """
        if prior not in PRIOR_KINDS:
            raise InputError(f"prior={prior!r} is unknown; use one of {', '.join(PRIOR_KINDS)}")
        pieces = []  # (position, function of x_k)
        const = 0.0
        for k, i in enumerate(self._est):
            p = self.parameters[i]
            spec = p.prior if prior == "petab" else None
            lo, hi = self._lo[k], self._hi[k]
            if spec is None:
                if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
                    hint = ("give a PEtab prior or finite bounds" if prior == "petab"
                            else "give finite bounds or use prior='petab' with a PEtab prior")
                    raise InputError(f"parameter {p.name!r} has bounds [{lo}, {hi}] on its "
                                     f"{p.scale} scale and no prior, so a uniform prior on it "
                                     f"is not proper; {hint}")
                const -= math.log(hi - lo)
                continue

            def f(xk, spec=spec, scale=p.scale):
                val = spec.logpdf(from_scale(xk, scale), scale)
                if not spec.kind.startswith("parameterScale"):
                    val = val + _log_jac_scale(xk, scale)
                return val

            pieces.append((k, f))

        def log_density(x):
            total = jnp.asarray(const)
            for k, f in pieces:
                total = total + f(x[k])
            return total

        return log_density

    # ----- start points ---------------------------------------------------------------------
    def start_points(self, n: int, seed: int = 0) -> np.ndarray:
        """``(n, size)`` scaled start points for a multi-start fit.

        Point ``i`` is row ``i % LHS_BLOCK`` of a Latin hypercube of :data:`LHS_BLOCK`
        points in the scaled bounds drawn with ``numpy.random.default_rng([seed, i //
        LHS_BLOCK])``, so the points of a seed do not depend on ``n`` (resuming with more
        starts stays consistent). A parameter with an initialization prior takes the
        prior's quantiles (truncated to its bounds) in place of the uniform ones.
        """
        self.require_finite_bounds("multi-start")
        lo, hi = self._lo, self._hi
        d = self.size
        n_blocks = -(-n // LHS_BLOCK)
        u = np.concatenate([_lhs(np.random.default_rng([seed, b]), LHS_BLOCK, d)
                            for b in range(n_blocks)])[:n] if n else np.zeros((0, d))
        x = lo + u * (hi - lo)
        for k, (pid, scale) in enumerate(zip(self.ids, self.scales, strict=True)):
            prior = self.init_priors.get(pid)
            if prior is not None:
                x[:, k] = _prior_quantile(prior, scale, u[:, k], lo[k], hi[k], pid)
        return x

    # ----- saving ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """A JSON-ready description (see :meth:`from_dict`)."""
        return {"parameters": [parameter_to_dict(p) for p in self.parameters],
                "init_priors": {k: _prior_to_dict(v) for k, v in self.init_priors.items()}}

    @classmethod
    def from_dict(cls, data: Mapping) -> ParameterSpace:
        try:
            params = [parameter_from_dict(d) for d in data["parameters"]]
            priors = {k: Prior(v["kind"], tuple(v["args"]))
                      for k, v in dict(data.get("init_priors") or {}).items()}
        except (KeyError, TypeError) as exc:
            raise InputError(f"not a parameter space description (missing {exc})") from None
        return cls(params, priors)

    def to_pandas(self):
        """One row per parameter: value, bounds, scale, prior and whether estimated."""
        import pandas as pd

        return pd.DataFrame([{"name": p.name, "value": p.value, "lower": p.lower,
                              "upper": p.upper, "scale": p.scale, "estimate": p.estimate,
                              "prior": None if p.prior is None else
                              f"{p.prior.kind}{p.prior.args}", "unit": p.unit}
                             for p in self.parameters]).set_index("name")


def scaled_from_unconstrained(u, data: dict):
    """Scaled coordinates of unconstrained ``u`` (JAX): a logistic map into two finite
    bounds, ``lo + exp(u)`` / ``hi - exp(u)`` for one, the identity for none; ``data`` from
    :meth:`ParameterSpace.unconstrained_data`."""
    both, lo_only, hi_only = data["both"], data["lo_only"], data["hi_only"]
    s = jax.nn.sigmoid(u)
    e = jnp.exp(jnp.where(both, 0.0, u))
    return jnp.where(both, data["lo"] + data["w"] * s,
                     jnp.where(lo_only, data["lo"] + e, jnp.where(hi_only, data["hi"] - e, u)))


def scaled_to_linear(x, scales: Sequence[str]):
    """Linear values of ``x`` whose last axis holds values on ``scales`` (overflow gives
    inf). NumPy in, NumPy out; JAX arrays (traced ones included) go through ``jax.numpy``."""
    return _per_scale(x, scales, "exp", "exp10")


def scaled_from_linear(theta, scales: Sequence[str]):
    """The inverse of :func:`scaled_to_linear`."""
    return _per_scale(theta, scales, "log", "log10")


_OPS = {"exp": (np.exp, jnp.exp), "exp10": (lambda v: 10.0**v, lambda v: 10.0**v),
        "log": (np.log, jnp.log), "log10": (np.log10, jnp.log10)}


def _per_scale(x, scales, on_log: str, on_log10: str):
    # eager jax.numpy on NumPy data would compile one small program per new shape
    s = np.asarray(scales, dtype=object)
    log, log10 = np.flatnonzero(s == "log"), np.flatnonzero(s == "log10")
    if isinstance(x, jax.Array):
        x = jnp.asarray(x, dtype=jnp.float64)
        for idx, op in ((log, on_log), (log10, on_log10)):
            if idx.size:
                x = x.at[..., idx].set(_OPS[op][1](x[..., idx]))
        return x
    x = np.array(x, dtype=np.float64)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        for idx, op in ((log, on_log), (log10, on_log10)):
            if idx.size:
                x[..., idx] = _OPS[op][0](x[..., idx])
    return x


def parameter_to_dict(p: Parameter) -> dict:
    """A JSON-ready dict of one Parameter (infinite bounds as None)."""
    return {"name": p.name, "value": p.value, "lower": _bound(p.lower),
            "upper": _bound(p.upper), "scale": p.scale, "estimate": p.estimate,
            "unit": p.unit, "prior": None if p.prior is None else _prior_to_dict(p.prior)}


def parameter_from_dict(d: Mapping) -> Parameter:
    prior = d.get("prior")
    lo, hi = d.get("lower"), d.get("upper")
    return Parameter(d["name"], d["value"], -math.inf if lo is None else lo,
                     math.inf if hi is None else hi, d.get("scale", "lin"),
                     None if prior is None else Prior(prior["kind"], tuple(prior["args"])),
                     bool(d.get("estimate", True)), d.get("unit", ""))


def _bound(v: float):
    return v if math.isfinite(v) else None


def _prior_to_dict(p: Prior) -> dict:
    return {"kind": p.kind, "args": list(p.args)}


def _log_jac_scale(x, scale: str):
    """``log|d theta / d x|`` for the linear value ``theta`` of scaled ``x``."""
    if scale == "log10":
        return math.log(math.log(10.0)) + x * math.log(10.0)
    if scale == "log":
        return x
    return jnp.zeros_like(x)


def _lhs(rng, n: int, d: int) -> np.ndarray:
    """A Latin hypercube of ``n`` points in [0, 1]^d."""
    return (np.argsort(rng.random((d, n)), axis=1).T + rng.random((n, d))) / n


def _prior_quantile(prior: Prior, scale: str, u, lo: float, hi: float, name: str):
    """Scaled values at the quantiles ``u`` of a PEtab initialization prior truncated to the
    scaled bounds ``[lo, hi]`` (so a Latin hypercube stays stratified)."""
    from scipy import stats

    a, b = prior.args
    kind = prior.kind
    on_scale = kind.startswith("parameterScale")
    log = kind.startswith("log")
    base = kind.removeprefix("parameterScale").removeprefix("log").lower()
    dist = {"uniform": stats.uniform(a, b - a), "normal": stats.norm(a, b),
            "laplace": stats.laplace(a, b)}[base]
    with np.errstate(divide="ignore"):
        lin = np.asarray(from_scale(np.array([lo, hi]), scale), float)
        w_bounds = (np.array([lo, hi]) if on_scale else
                    np.log(np.maximum(lin, 0.0)) if log else lin)  # log(<= 0) = -inf
    f_lo, f_hi = dist.cdf(w_bounds)
    if not f_hi > f_lo:
        raise InputError(f"initialization prior {kind}{prior.args} of {name!r} has no mass "
                         f"within its bounds; move the prior or widen the bounds")
    w = dist.ppf(f_lo + np.asarray(u) * (f_hi - f_lo))
    x = w if on_scale else np.asarray(to_scale(np.exp(w) if log else w, scale), float)
    return np.clip(x, lo, hi)
