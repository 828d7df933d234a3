"""What every cell surrogate shares: the checks against the model and the ranges it was
trained for, the result protocol (saved by ``sb.save`` in the safe archive format, read
back by ``sb.load`` whatever its family)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from ..errors import InputError, SerializationError
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

    def to_model(self) -> Model:
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
        """The :class:`~scalebridge.ParameterSpace` of :meth:`to_model`'s parameters."""
        from ..infer.space import ParameterSpace

        return ParameterSpace.from_model(self.to_model())

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

    # ----- the result protocol (decision 0018); sb.save / sb.load keep the file layout --
    def _meta(self) -> dict:
        return {"family": self.family, "trained_for": self.trained_for,
                "voltage": self.voltage, "stimulus_input": self.stimulus_input,
                "ranges": {k: list(v) for k, v in self.ranges.items()},
                "recommended_dt": self.recommended_dt, "meta": dict(self.meta),
                **self._fields()}

    def to_dict(self) -> dict:
        """Family, model trained for, ranges, recommended step, training record, the
        family's fields and its arrays (``"arrays"``)."""
        return {**self._meta(), "arrays": self._arrays()}

    @classmethod
    def from_dict(cls, d):
        """The surrogate of :meth:`to_dict`, whatever its family."""
        d = dict(d)
        arrays = {k: np.asarray(v) for k, v in d.pop("arrays").items()}
        family = d.get("family", "gated")
        if family not in _FAMILIES:
            raise InputError(f"unknown surrogate family {family!r}; this scalebridge reads "
                             f"{', '.join(sorted(_FAMILIES))}")
        try:
            common = dict(
                trained_for=str(d["trained_for"]), voltage=str(d["voltage"]),
                stimulus_input=str(d["stimulus_input"]),
                ranges={k: (float(a), float(b)) for k, (a, b) in d["ranges"].items()},
                recommended_dt=float(d["recommended_dt"]), meta=d.get("meta", {}))
            return _FAMILIES[family]._from_file(arrays, d, common)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"the surrogate data are incomplete or inconsistent ({exc}); "
                             "save it again with sb.save") from None

    def to_pandas(self):
        """The ranges it was trained on: one row per state (and ``I_local``), ``low`` and
        ``high``."""
        import pandas as pd

        return pd.DataFrame([{"name": k, "low": lo, "high": hi}
                             for k, (lo, hi) in self.ranges.items()]).set_index("name")

    def plot(self, ax=None, *, t_end: float | None = None):
        """The surrogate cell's voltage after one stimulus of its training protocol (the
        middle amplitude for the protocol's duration), to ``t_end`` (default: the shortest
        training period), into ``ax`` (a new figure if None); returns the axes."""
        from ..simulate import simulate

        proto = dict(self.meta).get("protocol", {}) if isinstance(self.meta, Mapping) else {}
        amps = sorted(proto.get("amplitudes", [60.0]))
        t_end = float(t_end or min(proto.get("periods", [300.0])))
        pulse = PulseTrain(self.stimulus_input, amps[len(amps) // 2],
                           float(proto.get("duration", 2.0)), 2 * t_end, start=1.0)
        t = np.linspace(0.0, t_end, 1001)
        sol = simulate(self.to_model().replace(inputs=(pulse,)), t, max_steps=1_000_000)
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(5.5, 3.5))
        ax.plot(t, np.asarray(sol.states)[:, self.state_names.index(self.voltage)], lw=1.2)
        ax.set_xlabel("time")
        ax.set_ylabel(self.voltage)
        ax.set_title(f"{self.family} surrogate of {self.trained_for}: one paced beat",
                     fontsize=9)
        return ax


def encode_surrogate(sur) -> tuple[dict, dict]:
    """The archive layout of a cell surrogate: its arrays, and the rest as JSON."""
    return sur._arrays(), sur._meta()


def decode_surrogate(arrays, meta):
    return SurrogateBase.from_dict({**meta, "arrays": arrays})


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
    """A surrogate saved by ``sb.save`` (any family), with errors phrased for the command
    line's ``--surrogate``."""
    from ..io import load

    try:
        return load(path, SURROGATE_KIND)
    except SerializationError as exc:
        raise InputError(f"--surrogate: {exc}") from None
