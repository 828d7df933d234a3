"""Parameter specifications: value, bounds, scale, prior, estimated or fixed."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import jax.numpy as jnp

from ..errors import ModelError

SCALES = ("lin", "log", "log10")
PRIOR_KINDS = (
    "uniform",
    "normal",
    "laplace",
    "logNormal",
    "logLaplace",
    "parameterScaleUniform",
    "parameterScaleNormal",
    "parameterScaleLaplace",
)


@dataclass(frozen=True)
class Prior:
    """A prior distribution of one parameter, with the PEtab v1 names and parameters.

    ``uniform(lower, upper)``, ``normal(mean, sd)``, ``laplace(location, scale)``,
    ``logNormal(mu, sigma)`` and ``logLaplace(mu, b)`` are on the linear value; the
    ``parameterScale*`` kinds are on the parameter's own scale (log, log10 or lin).
    """

    kind: str
    args: tuple[float, float]

    def __post_init__(self):
        if self.kind not in PRIOR_KINDS:
            raise ModelError(
                f"prior kind {self.kind!r} is unknown; use one of {', '.join(PRIOR_KINDS)}"
            )
        if len(self.args) != 2:
            raise ModelError(f"prior {self.kind!r} takes 2 numbers, got {len(self.args)}")
        a, b = (float(x) for x in self.args)
        object.__setattr__(self, "args", (a, b))
        if self.kind.endswith(("niform",)) and not a < b:
            raise ModelError(f"uniform prior needs lower < upper, got ({a}, {b})")
        if not self.kind.endswith("niform") and not b > 0:
            raise ModelError(f"prior {self.kind!r} needs a positive spread, got {b}")

    def logpdf(self, x, scale: str = "lin"):
        """Log density at the linear value ``x`` (for parameterScale* kinds, at the scaled
        value; the density is that of the scaled variable)."""
        a, b = self.args
        kind = self.kind
        if kind.startswith("parameterScale"):
            x = to_scale(x, scale)
            kind = kind.removeprefix("parameterScale").lower()
        if kind == "uniform":
            inside = (x >= a) & (x <= b)
            return jnp.where(inside, -math.log(b - a), -jnp.inf)
        if kind == "normal":
            return -0.5 * ((x - a) / b) ** 2 - math.log(b * math.sqrt(2 * math.pi))
        if kind == "laplace":
            return -jnp.abs(x - a) / b - math.log(2 * b)
        lx = jnp.log(x)
        if kind == "logNormal":
            return -0.5 * ((lx - a) / b) ** 2 - math.log(b * math.sqrt(2 * math.pi)) - lx
        # logLaplace
        return -jnp.abs(lx - a) / b - math.log(2 * b) - lx


def to_scale(x, scale: str):
    """Map a linear value to its parameter scale."""
    if scale == "log":
        return jnp.log(x)
    if scale == "log10":
        return jnp.log10(x)
    return x


def from_scale(x, scale: str):
    """Map a value on its parameter scale back to the linear value."""
    if scale == "log":
        return jnp.exp(x)
    if scale == "log10":
        return 10.0**x
    return x


@dataclass(frozen=True)
class Parameter:
    """One named model parameter.

    ``value`` is the nominal (linear) value; ``lower``/``upper`` bound it for estimation;
    ``scale`` is the scale an optimiser works on (``"lin"``, ``"log"``, ``"log10"``);
    ``estimate=False`` keeps it fixed at ``value``.
    """

    name: str
    value: float
    lower: float = -math.inf
    upper: float = math.inf
    scale: str = "lin"
    prior: Prior | None = field(default=None)
    estimate: bool = True
    unit: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ModelError(f"parameter name {self.name!r} must be an identifier")
        try:
            value = float(self.value)
        except (TypeError, ValueError):
            raise ModelError(
                f"parameter {self.name!r}: value {self.value!r} is not a number"
            ) from None
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "lower", float(self.lower))
        object.__setattr__(self, "upper", float(self.upper))
        if self.scale not in SCALES:
            raise ModelError(
                f"parameter {self.name!r}: scale {self.scale!r} is unknown; use lin, log or log10"
            )
        if not self.lower <= self.upper:
            raise ModelError(
                f"parameter {self.name!r}: lower bound {self.lower} exceeds upper {self.upper}"
            )
        if self.scale != "lin" and self.lower < 0:
            raise ModelError(
                f"parameter {self.name!r} on {self.scale} scale needs lower >= 0, "
                f"got {self.lower}"
            )
        if math.isnan(value):
            raise ModelError(f"parameter {self.name!r}: value is NaN")

    def replace(self, **changes) -> Parameter:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)


def as_parameters(specs) -> tuple[Parameter, ...]:
    """Accept Parameters, ``{name: value}`` or ``{name: Parameter}`` and give a tuple."""
    if isinstance(specs, dict):
        out = []
        for name, spec in specs.items():
            if isinstance(spec, Parameter):
                if spec.name != name:
                    raise ModelError(f"parameter key {name!r} differs from its name {spec.name!r}")
                out.append(spec)
            else:
                out.append(Parameter(name, spec))
        return tuple(out)
    out = tuple(specs)
    for spec in out:
        if not isinstance(spec, Parameter):
            raise ModelError(f"expected Parameter objects, got {type(spec).__name__}")
    return out
