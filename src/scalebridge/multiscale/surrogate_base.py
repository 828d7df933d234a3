"""What every cell surrogate shares: the checks against the model and the ranges it was
trained for, the safe file format, and reading a file back whatever its family."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import InputError, SerializationError
from ..io import read_archive, write_archive
from ..model.inputs import PulseTrain
from ..model.model import Model

SURROGATE_KIND = "cell_surrogate"
_FAMILIES: dict[str, type] = {}


class SurrogateBase:
    """Mix-in of the surrogate dataclasses: each has ``trained_for``, ``ranges``,
    ``recommended_dt``, ``voltage``, ``stimulus_input``, ``meta`` and ``state_names``,
    and defines ``rhs``, ``_initial()``, ``_gates()``, ``_arrays()``, ``_fields()`` and
    ``_from_file(arrays, meta)``."""

    family: str = ""

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        _FAMILIES[cls.family] = cls

    @property
    def model(self) -> Model:
        """The surrogate as a cell :class:`~scalebridge.Model` (input ``I_stim``, silent by
        default): pass it to :func:`scalebridge.pde.monodomain` in place of the full cell.
        Its parameters are the surrogate's learned physical parameters where the family has
        them (the two-variable family: with the fit's bounds and log scale, so ``fit``,
        ``sobol`` and :attr:`parameter_space` reach them); a gated surrogate has none."""
        quiet = PulseTrain(self.stimulus_input, 0.0, 1.0, 1.0, start=math.inf)
        return Model(
            name=f"{self.trained_for}_surrogate",
            states=list(self.state_names),
            parameters=self._parameters(),
            rhs=self.rhs,
            initial=[float(x) for x in self._initial()],
            inputs=[quiet],
            stiff=False,
            gates=self._gates(),
            citation=f"learned {self.family} surrogate of {self.trained_for} "
                     "(scalebridge.multiscale)",
        )

    @property
    def parameter_space(self):
        """The :class:`~scalebridge.ParameterSpace` of :attr:`model`'s parameters."""
        from ..infer.space import ParameterSpace

        return ParameterSpace.from_model(self.model)

    def _parameters(self) -> list:
        return []

    def check_trained_for(self, name: str) -> None:
        """Raise :class:`InputError` unless the surrogate was trained for model ``name``."""
        if name != self.trained_for:
            raise InputError(f"the surrogate was trained for {self.trained_for!r}, not "
                             f"{name!r}; train one with `scalebridge surrogate train-cell "
                             f"{name} --out PATH` or pick the model it was trained for")

    def range_warnings(self, states: Mapping[str, np.ndarray], *,
                       tolerance: float = 0.05) -> list[str]:
        """One message per state (or ``I_local``) in ``states`` whose values leave the
        training range by more than ``tolerance`` of that range's width, with numbers."""
        out = []
        for name, values in states.items():
            if name not in self.ranges:
                continue
            arr = np.asarray(values, dtype=float)
            arr = arr[np.isfinite(arr)]
            if arr.size == 0:
                continue
            lo, hi = self.ranges[name]
            slack = tolerance * (hi - lo)
            vmin, vmax = float(arr.min()), float(arr.max())
            if vmin < lo - slack or vmax > hi + slack:
                out.append(f"{name} spans [{vmin:.4g}, {vmax:.4g}] but the surrogate was "
                           f"trained on [{lo:.4g}, {hi:.4g}]; its results there are "
                           "extrapolated: retrain it on a wider protocol")
        return out

    def replace(self, **changes):
        return replace(self, **changes)

    def save(self, path) -> Path:
        """Write the surrogate to ``path`` (``.npz``: arrays and JSON, no pickle)."""
        meta = {"family": self.family, "trained_for": self.trained_for,
                "voltage": self.voltage, "stimulus_input": self.stimulus_input,
                "ranges": {k: list(v) for k, v in self.ranges.items()},
                "recommended_dt": self.recommended_dt, "meta": dict(self.meta),
                **self._fields()}
        return write_archive(path, SURROGATE_KIND, self._arrays(), meta)


def stimulus_gain(cell: Model, y, *, voltage: int = 0, stimulus_input: str = "I_stim"
                  ) -> float:
    """``d(dV/dt)/d(I_stim)`` of ``cell`` at state ``y`` (``1 / C_m`` for a membrane), by
    forward-mode differentiation; the surrogates multiply their stimulus by it."""
    import jax
    import jax.numpy as jnp

    p = cell.param_array(None)
    u0 = jnp.zeros(len(cell.inputs))
    e = u0.at[cell.input_names.index(stimulus_input)].set(1.0)
    tangent = jax.jvp(lambda u: cell.rhs(0.0, jnp.asarray(y), p, u), (u0,), (e,))[1]
    return float(tangent[voltage])


def load_surrogate(path):
    """Read a surrogate written by ``save`` (any family)."""
    try:
        arrays, meta, _ = read_archive(path, SURROGATE_KIND)
    except SerializationError as exc:
        raise InputError(f"--surrogate: {exc}") from None
    family = meta.get("family", "gated")
    if family not in _FAMILIES:
        raise InputError(f"{path}: unknown surrogate family {family!r}; this scalebridge "
                         f"reads {', '.join(sorted(_FAMILIES))}")
    common = {}
    try:
        common = dict(
            trained_for=str(meta["trained_for"]), voltage=str(meta["voltage"]),
            stimulus_input=str(meta["stimulus_input"]),
            ranges={k: (float(a), float(b)) for k, (a, b) in meta["ranges"].items()},
            recommended_dt=float(meta["recommended_dt"]), meta=meta.get("meta", {}))
        return _FAMILIES[family]._from_file(arrays, meta, common)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: the surrogate file is incomplete or inconsistent ({exc});"
                         " save it again with the surrogate's save()") from None
