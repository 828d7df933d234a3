"""Local (derivative-based) sensitivities by forward-mode automatic differentiation.

The normalised (logarithmic) sensitivity ``d log y / d log p = (p / y) dy/dp`` is the
relative change of an output per relative change of a parameter (Kacser and Burns 1973
control coefficients; Varma, Morbidelli and Wu (1999) *Parametric Sensitivity in Chemical
Systems*). Derivatives come from :func:`jax.jacfwd` through the solver (forward mode, one
tangent per parameter), not from finite differences.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputError
from . import _result

__all__ = ["local", "LocalResult"]


@dataclass(frozen=True, eq=False)
class LocalResult:
    """Local sensitivities at ``x0``: ``jacobian[k, i] = dy_k / dx_i`` and
    ``normalized[k, i] = x_i / y_k * dy_k / dx_i`` (NaN where ``y_k = 0``), for outputs
    ``outputs`` (values ``y``) and parameters ``names``."""

    names: tuple[str, ...]
    outputs: tuple[str, ...]
    x0: np.ndarray
    y: np.ndarray
    jacobian: np.ndarray
    normalized: np.ndarray

    def to_pandas(self, *, normalized: bool = True):
        """A pandas DataFrame: one row per parameter, one column per output."""
        import pandas as pd

        data = self.normalized if normalized else self.jacobian
        return pd.DataFrame(data.T, columns=list(self.outputs),
                            index=pd.Index(list(self.names), name="parameter"))

    def plot(self, ax=None, *, title: str | None = None):
        """Bar chart of the normalised sensitivities into ``ax`` (a new figure if None);
        returns the axes."""
        return _result.bar_chart(
            ax, self.names,
            [(o, self.normalized[k], None) for k, o in enumerate(self.outputs)],
            title or "local sensitivities", "d log y / d log p")

    def to_dict(self) -> dict:
        return {"kind": "local", "format_version": _result.FORMAT_VERSION,
                "names": list(self.names), "outputs": list(self.outputs), "x0": self.x0,
                "y": self.y, "jacobian": self.jacobian, "normalized": self.normalized}

    @classmethod
    def from_dict(cls, d) -> LocalResult:
        """The result of :meth:`to_dict` (arrays as arrays or JSON lists)."""
        d = _result.check_kind(d, "local", "local-sensitivity")
        arr = _result.array
        return cls(tuple(d["names"]), tuple(d["outputs"]), arr(d["x0"]), arr(d["y"]),
                   arr(d["jacobian"]).reshape(len(d["outputs"]), len(d["names"])),
                   arr(d["normalized"]).reshape(len(d["outputs"]), len(d["names"])))


def local(f, x0=None, *, names=None, outputs=None) -> LocalResult:
    """Local sensitivities of ``f`` at ``x0`` by ``jax.jacfwd``.

    ``f``: a JAX function of a parameter vector ``(d,)`` returning a scalar or ``(k,)``
    outputs; or a :class:`~scalebridge.sensitivity.ModelOutput` (batched; ``x0`` then
    defaults to its nominal values and ``names`` to its parameters), or a list of
    ModelOutputs over the same parameters (one output each). Returns a
    :class:`LocalResult` with the Jacobian and the normalised sensitivities
    ``(p / y) dy/dp``.
    """
    from .outputs import ModelOutput

    many = isinstance(f, list | tuple)
    if many or isinstance(f, ModelOutput):
        mos = list(f) if many else [f]
        if not mos or not all(isinstance(m, ModelOutput) for m in mos):
            raise InputError("a list given as f must hold ModelOutput objects")
        first = mos[0]
        if any(m.names != first.names for m in mos):
            raise InputError("the ModelOutputs given to local() must vary the same parameters")
        names = first.names if names is None else names
        x0 = first.nominal if x0 is None else x0
        outputs = tuple(m.spec for m in mos) if outputs is None else outputs

        def g(x):
            return jnp.stack([m(x[None])[0] for m in mos])
    else:
        if not callable(f):
            raise InputError(f"f must be a JAX function of a parameter vector, got "
                             f"{type(f).__name__}")
        if x0 is None:
            raise InputError("x0 is needed: the parameter values at which to differentiate")
        g = f
    try:
        x = np.asarray(x0, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"x0 must be a vector of numbers, got {x0!r}") from None
    if x.ndim != 1 or x.size == 0 or not np.all(np.isfinite(x)):
        raise InputError(f"x0 must be a non-empty 1-D vector of finite numbers, got shape "
                         f"{x.shape}")
    d = x.size
    names = tuple(f"x{i + 1}" for i in range(d)) if names is None else tuple(names)
    if len(names) != d:
        raise InputError(f"names has {len(names)} entries, x0 has {d}; give one per parameter")
    xj = jnp.asarray(x)
    try:
        y, jac = jax.jit(lambda z: (jnp.atleast_1d(g(z)),
                                    jax.jacfwd(lambda w: jnp.atleast_1d(g(w)))(z)))(xj)
    except jax.errors.TracerArrayConversionError:
        raise InputError("f must be written in jax.numpy to be differentiated; it turned a "
                         "JAX value into a NumPy array") from None
    y = np.asarray(y, dtype=float)
    jac = np.asarray(jac, dtype=float).reshape(y.size, d)
    if y.ndim != 1:
        raise InputError(f"f must return a scalar or a 1-D vector, got shape {y.shape}")
    k = y.size
    outputs = tuple(f"y{j + 1}" for j in range(k)) if outputs is None else tuple(outputs)
    if len(outputs) != k:
        raise InputError(f"outputs has {len(outputs)} names, f returns {k} values")
    with np.errstate(divide="ignore", invalid="ignore"):
        norm = np.where(y[:, None] != 0, jac * x[None, :] / y[:, None], np.nan)
    return LocalResult(names, outputs, x, y, jac, norm)
