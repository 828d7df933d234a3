"""The tissue point of conduction studies, for :func:`~scalebridge.runtime.sweep.run_sweep`.

:func:`cable_outcome` simulates a paced 1D monodomain cable of an excitable cell and
classifies what happens to the beats: ``"conduction"`` (every beat reaches the far end),
``"block"`` (some do, e.g. 2:1) or ``"failure"`` (none does); :func:`cable_point` is the
sweep function (``shared = (cell, CableProtocol())``). :meth:`SweepResult.plot
<scalebridge.runtime.sweep.SweepResult.plot>` draws the outcome classes over two axes.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

__all__ = ["CableProtocol", "cable_outcome", "cable_point"]


# ----- the tissue point ------------------------------------------------------------------
@dataclass(frozen=True)
class CableProtocol:
    """A paced 1D monodomain cable (defaults: Beeler-Reuter tissue of the spatial zoo, in
    mm, ms and mV).

    ``length`` and ``nodes``: the cable (no-flux ends); ``D``: the diffusivity at relative
    conductivity 1. Pacing: ``beats`` pulses of ``amplitude`` lasting ``duration``, the
    first at ``start``, on the nodes within ``stim_width`` (a fraction of the length, at
    least 1.5 node spacings) of the left end. The run lasts until ``tail`` after the last
    pulse, with output every ``output_dt``. Solver: operator splitting with step ``dt``,
    ``scheme``, and ``diffusion`` ``"auto"`` (explicit while ``dt`` is within the explicit
    limit of the point's diffusivity, implicit above it), ``"explicit"`` or ``"implicit"``.
    Classification: a node is activated by an upward crossing of ``threshold`` (in the
    cell's first state); a beat conducts when it activates the node at ``far`` (a fraction
    of the length); conduction velocity from the first activation at ``cv_from`` and
    ``cv_to``; APD90 of the last beat at ``apd_at``.
    """

    length: float = 20.0
    nodes: int = 201
    D: float = 0.1
    beats: int = 6
    amplitude: float = 60.0
    duration: float = 2.0
    start: float = 5.0
    stim_width: float = 0.03
    dt: float = 0.01
    output_dt: float = 0.5
    tail: float = 400.0
    threshold: float = -40.0
    far: float = 0.8
    cv_from: float = 0.3
    cv_to: float = 0.7
    apd_at: float = 0.5
    scheme: str = "godunov"
    diffusion: str = "auto"

    def __post_init__(self):
        if int(self.beats) < 1 or int(self.nodes) < 3:
            raise InputError(f"CableProtocol needs beats >= 1 and nodes >= 3, got "
                             f"beats={self.beats}, nodes={self.nodes}")
        for name in ("length", "D", "duration", "dt", "output_dt"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise InputError(f"CableProtocol.{name} must be positive and finite, got {v}")
        for name in ("far", "cv_from", "cv_to", "apd_at", "stim_width"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise InputError(f"CableProtocol.{name} is a fraction of the length in "
                                 f"[0, 1], got {v}")
        if self.diffusion not in ("auto", "explicit", "implicit"):
            raise InputError(f"CableProtocol.diffusion {self.diffusion!r} is unknown; use "
                             "'auto', 'explicit' or 'implicit'")

    def t_end(self, period: float) -> float:
        return self.start + (self.beats - 1) * period + self.duration + self.tail


_CACHE: dict = {}
_CACHE_LOCK = threading.Lock()
_CACHE_MAX = 64


def _tissue(cell, period: float, protocol: CableProtocol):
    """The cable model of ``cell`` paced every ``period`` (built once per process and
    cell/period/protocol, so that simulate's compiled solver is reused), with its grid,
    output times and a flag for "not yet simulated" (its first run compiles)."""
    key = (id(cell), float(period), protocol)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None and hit["cell"] is cell:
            return hit
        from ..pde.grid import grid1d
        from ..pde.models import monodomain
        from ..pde.tissue import Stimulus
        from ..pde.zoo import _quiet

        if "I_stim" not in cell.input_names:
            raise InputError(f"cell {cell.name!r} has no input 'I_stim' for the pacing "
                             f"stimulus; its inputs: {list(cell.input_names) or 'none'}")
        grid = grid1d(int(protocol.nodes), protocol.length)
        width = max(protocol.stim_width * protocol.length, 1.5 * grid.spacing[0])
        stop = protocol.start + (protocol.beats - 1) * period + protocol.duration
        stim = Stimulus(lambda x: x <= width, protocol.amplitude, protocol.start,
                        protocol.duration, period=period, stop=stop)
        model = monodomain(_quiet(cell), grid, D=protocol.D, stimuli=[stim],
                           name=f"{cell.name}_cable").replace(stiff=False)
        n_out = int(math.floor(protocol.t_end(period) / protocol.output_dt + 1e-9))
        times = np.arange(n_out + 1) * protocol.output_dt
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.pop(next(iter(_CACHE)))
        hit = {"cell": cell, "model": model, "grid": grid, "times": times,
               "compiled": set(), "stim_node": int(np.sum(grid.coords[0] <= width)) // 2}
        _CACHE[key] = hit
        return hit


def _node(grid, fraction: float) -> int:
    x = grid.coords[0]
    return int(np.argmin(np.abs(x - fraction * grid.axes[0].length)))


def _upward(v, level: float) -> int:
    return int(np.count_nonzero((v[:-1] < level) & (v[1:] >= level)))


def cable_outcome(cell, *, conductivity: float, period: float,
                  protocol: CableProtocol | None = None) -> dict:
    """Pace a 1D monodomain cable of ``cell`` at its left end every ``period`` and classify
    the conduction of the beats.

    ``cell``: an excitable cell :class:`~scalebridge.Model` whose first state is the
    membrane potential and which has an ``I_stim`` input (its own pacing is silenced; the
    cable's stimulus drives it). ``conductivity``: relative to the protocol's ``D`` (the
    tissue parameter ``D`` is ``protocol.D * conductivity``, passed to ``simulate`` as a
    parameter, so every conductivity shares one compiled solver per period).

    Returns a dict: ``outcome`` (``"conduction"``: every beat reaches the node at
    ``protocol.far``; ``"block"``: some but not all do; ``"failure"``: none does, or the
    stimulated end is not excited), ``beats`` (delivered), ``excited`` (activations of the
    stimulated end), ``conducted`` (activations of the far node, at most ``beats``),
    ``cv`` (conduction velocity of the first beat between ``cv_from`` and ``cv_to``, length
    per time unit; None if it did not get there), ``apd90`` (APD90 of the last beat at
    ``apd_at``; None if that beat did not reach it or repolarise), ``diffusion`` (the
    scheme used), ``ok`` (the solver finished with finite states), ``first_run`` (this
    call compiled the solver) and ``seconds`` (wall time).

    Diffusion is explicit while ``protocol.dt`` is within the explicit stability limit
    ``dx^2 / (2 D conductivity)`` (0.05 / conductivity ms for the default cable, so up to a
    relative conductivity of 5 at dt = 0.01 ms) and implicit (conjugate gradients) above
    it, with ``protocol.diffusion="auto"``; each scheme compiles once.
    """
    import scalebridge as sb

    from ..pde.measure import activation_times, apd
    from ..pde.splitting import OperatorSplitting

    p = protocol or CableProtocol()
    conductivity, period = float(conductivity), float(period)
    if not (math.isfinite(conductivity) and conductivity > 0):
        raise InputError(f"conductivity must be positive, got {conductivity}")
    if not (math.isfinite(period) and period >= p.duration):
        raise InputError(f"period must be at least the pulse duration {p.duration}, got "
                         f"{period}")
    t0 = time.perf_counter()
    tissue = _tissue(cell, period, p)
    grid, times = tissue["grid"], tissue["times"]
    D = p.D * conductivity
    diffusion = p.diffusion
    if diffusion == "auto":
        limit = grid.spacing[0] ** 2 / (2 * D)
        diffusion = "explicit" if p.dt <= limit * (1 - 1e-9) else "implicit"
    solver = OperatorSplitting(p.dt, scheme=p.scheme, diffusion=diffusion)
    first_run = diffusion not in tissue["compiled"]
    sol = sb.simulate(tissue["model"], times, params={"D": D}, solver=solver, throw=False)
    tissue["compiled"].add(diffusion)
    n = grid.size
    V = np.asarray(sol.states)[:, :n]  # the cell's first state at every node
    ok = bool(np.all(np.isfinite(V)))
    stim, far = tissue["stim_node"], _node(grid, p.far)
    excited = _upward(V[:, stim], p.threshold) if ok else 0
    conducted = min(_upward(V[:, far], p.threshold), p.beats) if ok else 0
    if not ok or excited == 0 or conducted == 0:
        outcome = "failure"
    elif conducted == p.beats:
        outcome = "conduction"
    else:
        outcome = "block"
    cv = apd90 = None
    if ok:
        i, j = _node(grid, p.cv_from), _node(grid, p.cv_to)
        act = activation_times(V[:, [i, j]], times, threshold=p.threshold)
        if np.all(np.isfinite(act)) and act[1] > act[0]:
            x = grid.coords[0]
            cv = float((x[j] - x[i]) / (act[1] - act[0]))
        m = _node(grid, p.apd_at)
        ups = _upward(V[:, m], p.threshold)
        durations = apd(V[:, m], times, 0.9) if ups else np.zeros(0)
        # the last beat's APD only when every activation there repolarised
        if ups and durations.size == ups and np.isfinite(durations[-1]):
            apd90 = float(durations[-1])
    return {"outcome": outcome, "beats": int(p.beats), "excited": int(excited),
            "conducted": int(conducted), "cv": cv, "apd90": apd90, "diffusion": diffusion,
            "ok": ok, "first_run": first_run, "seconds": time.perf_counter() - t0}


def cable_point(shared, *, conductivity: float, period: float) -> dict:
    """:func:`cable_outcome` as a :func:`run_sweep` point: ``shared`` is ``(cell,
    protocol)`` (or a cell alone, with the default protocol)."""
    cell, protocol = shared if isinstance(shared, tuple) else (shared, None)
    return cable_outcome(cell, conductivity=conductivity, period=period, protocol=protocol)


