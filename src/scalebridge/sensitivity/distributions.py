"""Input distributions of a sensitivity analysis.

Every method draws points in the unit hypercube and maps each column through the inverse
CDF (``ppf``) of its input's distribution. An input is given as a ``(low, high)`` pair
(uniform) or as one of the specs below; :func:`as_distributions` turns a list (or a
``{name: spec}`` dict) of them into checked specs and names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

from ..errors import InputError

__all__ = ["Uniform", "LogUniform", "Normal", "TruncNormal", "as_distributions"]

# Normal quantiles are taken at u clipped to [_EPS, 1 - _EPS]: a unit-sample value of
# exactly 0 (possible in a scrambled Sobol' sequence) would otherwise map to -inf.
_EPS = 1e-12


def _number(value, what: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise InputError(f"{what} must be finite, got {x}")
    return x


@dataclass(frozen=True)
class Uniform:
    """Uniform on ``[low, high]``."""

    low: float
    high: float

    def __post_init__(self):
        lo, hi = _number(self.low, "Uniform low"), _number(self.high, "Uniform high")
        if not lo < hi:
            raise InputError(f"Uniform needs low < high, got ({lo}, {hi})")
        object.__setattr__(self, "low", lo)
        object.__setattr__(self, "high", hi)

    bounded = True

    def ppf(self, u):
        return self.low + np.asarray(u) * (self.high - self.low)

    def describe(self) -> str:
        return f"uniform({self.low:g}, {self.high:g})"


@dataclass(frozen=True)
class LogUniform:
    """Log-uniform on ``[low, high]`` (``0 < low < high``): uniform in ``log x``."""

    low: float
    high: float

    def __post_init__(self):
        lo, hi = _number(self.low, "LogUniform low"), _number(self.high, "LogUniform high")
        if not 0 < lo < hi:
            raise InputError(f"LogUniform needs 0 < low < high, got ({lo}, {hi})")
        object.__setattr__(self, "low", lo)
        object.__setattr__(self, "high", hi)

    bounded = True

    def ppf(self, u):
        return np.exp(math.log(self.low) + np.asarray(u) * math.log(self.high / self.low))

    def describe(self) -> str:
        return f"loguniform({self.low:g}, {self.high:g})"


@dataclass(frozen=True)
class Normal:
    """Normal with ``mean`` and standard deviation ``sd`` (unbounded: Sobol' only)."""

    mean: float
    sd: float

    def __post_init__(self):
        mu, sd = _number(self.mean, "Normal mean"), _number(self.sd, "Normal sd")
        if not sd > 0:
            raise InputError(f"Normal needs sd > 0, got {sd}")
        object.__setattr__(self, "mean", mu)
        object.__setattr__(self, "sd", sd)

    bounded = False

    def ppf(self, u):
        return self.mean + self.sd * special.ndtri(np.clip(u, _EPS, 1 - _EPS))

    def describe(self) -> str:
        return f"normal({self.mean:g}, {self.sd:g})"


@dataclass(frozen=True)
class TruncNormal:
    """Normal(``mean``, ``sd``) truncated to ``[low, high]`` (inverse CDF of the
    truncated law)."""

    mean: float
    sd: float
    low: float
    high: float

    def __post_init__(self):
        vals = [_number(getattr(self, k), f"TruncNormal {k}")
                for k in ("mean", "sd", "low", "high")]
        mu, sd, lo, hi = vals
        if not sd > 0:
            raise InputError(f"TruncNormal needs sd > 0, got {sd}")
        if not lo < hi:
            raise InputError(f"TruncNormal needs low < high, got ({lo}, {hi})")
        if special.ndtr((hi - mu) / sd) - special.ndtr((lo - mu) / sd) < 1e-12:
            raise InputError(f"TruncNormal({mu}, {sd}) has no mass in [{lo}, {hi}]; move the "
                             "bounds towards the mean")
        for k, v in zip(("mean", "sd", "low", "high"), vals, strict=True):
            object.__setattr__(self, k, v)

    bounded = True

    def ppf(self, u):
        a = special.ndtr((self.low - self.mean) / self.sd)
        b = special.ndtr((self.high - self.mean) / self.sd)
        q = special.ndtri(np.clip(a + np.asarray(u) * (b - a), _EPS, 1 - _EPS))
        return np.clip(self.mean + self.sd * q, self.low, self.high)

    def describe(self) -> str:
        return f"truncnormal({self.mean:g}, {self.sd:g}, {self.low:g}, {self.high:g})"


Distribution = Uniform | LogUniform | Normal | TruncNormal


def _one(spec, name: str) -> Distribution:
    if isinstance(spec, Uniform | LogUniform | Normal | TruncNormal):
        return spec
    if isinstance(spec, str) or not isinstance(spec, Sequence | np.ndarray) or len(spec) != 2:
        raise InputError(f"bounds of parameter {name!r}: expected a (low, high) pair or a "
                         f"distribution (Uniform, LogUniform, Normal, TruncNormal), got "
                         f"{spec!r}")
    lo = _number(spec[0], f"low bound of parameter {name!r}")
    hi = _number(spec[1], f"high bound of parameter {name!r}")
    if not lo < hi:
        raise InputError(f"bounds of parameter {name!r}: low={lo} is not below high={hi}; "
                         "give (low, high) with low < high")
    return Uniform(lo, hi)


def as_distributions(bounds, names=None) -> tuple[tuple[Distribution, ...], tuple[str, ...]]:
    """Checked ``(distributions, names)`` from ``bounds``: a list of ``(low, high)`` pairs
    or distributions, a ``{name: spec}`` dict, or a :class:`~scalebridge.ParameterSpace`
    (each estimated parameter uniform on its scale within its bounds: :class:`Uniform`
    for ``lin``, :class:`LogUniform` for ``log``/``log10``). ``names`` default to ``x1 ..
    xd``."""
    from ..infer.space import ParameterSpace

    if isinstance(bounds, ParameterSpace):
        if names is not None:
            raise InputError("bounds is a ParameterSpace, which names the parameters "
                             "already; leave names out")
        bounds.require_finite_bounds("sensitivity analysis")
        names = bounds.ids
        lin = [bounds.parameters[i] for i in bounds.estimated_index]
        bounds = [Uniform(p.lower, p.upper) if p.scale == "lin" else LogUniform(p.lower, p.upper)
                  for p in lin]
    if isinstance(bounds, Mapping):
        if names is not None:
            raise InputError("bounds is a dict, which names the parameters already; "
                             "leave names out")
        names = list(bounds)
        specs = list(bounds.values())
    else:
        try:
            specs = list(bounds)
        except TypeError:
            raise InputError(f"bounds must be a list of (low, high) pairs or distributions, "
                             f"got {type(bounds).__name__}") from None
    if not specs:
        raise InputError("bounds is empty; give one (low, high) pair per parameter")
    if names is None:
        names = [f"x{i + 1}" for i in range(len(specs))]
    names = tuple(str(n) for n in names)
    if len(names) != len(specs):
        raise InputError(f"names has {len(names)} entries but bounds has {len(specs)}; give "
                         "one name per parameter")
    if len(set(names)) != len(names):
        raise InputError(f"names must be unique, got {list(names)}")
    return tuple(_one(s, n) for s, n in zip(specs, names, strict=True)), names


def transform(dists: Sequence[Distribution], u: np.ndarray) -> np.ndarray:
    """Map unit-hypercube points ``u`` (shape ``(m, d)``) to the input space."""
    return np.stack([dist.ppf(u[:, i]) for i, dist in enumerate(dists)], axis=1)
