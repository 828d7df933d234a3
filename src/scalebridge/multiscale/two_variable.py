"""A two-variable cell surrogate: the Aliev-Panfilov form in the full model's units, with
its parameters learned from the full model's paced action potentials and its conduction
velocity in tissue.

With ``u = (V - V_rest) / A``::

    dV/dt = (A / T) [k u (1 - u)(u - a) - u r] + g I_stim
    dr/dt = (eps0 + mu1 r / (max(u, 0) + mu2)) (-r - k u (u - b - 1)) / T

(Aliev & Panfilov 1996, Chaos Solitons Fractals 7:293; the separate ``b`` of the recovery
equation as in Herrero Martin et al. 2022). Eight parameters ``k, a, b, eps0, mu1, mu2, T,
A`` are fitted by bounded least squares (scipy ``trf``, Jacobian by forward-mode
differentiation through the engine's :class:`~scalebridge.Simulator`) in two stages:

1. the shape of the full model's action potentials under pacing (the surrogate paced by
   the same :class:`~scalebridge.model.inputs.PulseTrain`, solved by Tsit5);
2. the same, plus the full model's converged conduction velocity on cables of the given
   spacings: the PDE layer's tissue model of the surrogate, Godunov
   :class:`~scalebridge.pde.OperatorSplitting` (forward Euler reaction, explicit
   diffusion, step ``dt_cable``), activation times by :func:`scalebridge.pde.measure.
   activation_times`.

A cubic upstroke is cheap and smooth: two states and a dozen operations per node, no
exponentials, and a front whose speed barely moves with the time step. The price is
fidelity: action-potential shape and duration come from a two-parameter recovery law, not
from the full model's currents (see benchmarks/results/multiscale.md for APD90 errors).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputError, SimulationError
from ..infer.fit import least_squares
from ..model.inputs import PulseTrain
from ..model.model import Model
from ..model.parameter import Parameter
from ..simulate import Simulator, simulate
from .surrogate_base import SurrogateBase, stimulus_gain

__all__ = ["TwoVariableSurrogate", "train_two_variable_surrogate", "paced_traces",
           "cable_velocity", "PARAMETERS"]

PARAMETERS = ("k", "a", "b", "eps0", "mu1", "mu2", "T", "A")
# Aliev & Panfilov (1996), with T = 12.9 ms per time unit; A is set from the data
_START = (8.0, 0.15, 0.15, 0.002, 0.2, 0.3, 12.9, 100.0)
_LOWER = (0.1, 0.03, 0.01, 1e-5, 1e-5, 1e-2, 0.5, 20.0)
_UPPER = (1000.0, 0.45, 0.6, 1.0, 10.0, 10.0, 200.0, 500.0)


def _reaction(theta, v_rest, V, r, current):
    """``(dV/dt, dr/dt)`` of the two-variable form; ``current`` is ``g I``."""
    k, a, b, eps0, mu1, mu2, T, A = theta
    u = (V - v_rest) / A
    dV = A / T * (k * u * (1 - u) * (u - a) - u * r) + current
    # u below rest (an undershoot) must not flip the sign of the recovery rate's pole
    dr = (eps0 + mu1 * r / (jnp.maximum(u, 0.0) + mu2)) * (-r - k * u * (u - b - 1)) / T
    return dV, dr


def _field(theta, v_rest, gain, y, u):
    """dy/dt of the surrogate with parameters ``theta`` (stimulus input ``u[0]``)."""
    return jnp.stack(_reaction(theta, v_rest, y[0], y[1], gain * u[0]))


@dataclass(frozen=True, eq=False)
class TwoVariableSurrogate(SurrogateBase):
    """A learned two-variable cell model (see the module docstring); ``params`` maps
    :data:`PARAMETERS` to values, ``v_rest`` is the resting potential and ``gain`` the
    full model's d(dV/dt)/d(I_stim)."""

    params: Mapping[str, float]
    v_rest: float
    gain: float
    ranges: Mapping[str, tuple[float, float]]
    trained_for: str
    voltage: str = "V"
    stimulus_input: str = "I_stim"
    recommended_dt: float = 0.01
    meta: Mapping = field(default_factory=dict)
    family = "two_variable"

    @property
    def state_names(self) -> tuple[str, ...]:
        return (self.voltage, "r")

    def rhs(self, t, y, p, u):
        """The surrogate's right-hand side ``(t, y, p, u) -> dy/dt``; ``p`` holds the
        :data:`PARAMETERS` (``model.param_array()`` gives the learned values)."""
        return _field(p, self.v_rest, self.gain, y, u)

    def _parameters(self) -> list:
        return [Parameter(n, float(self.params[n]), lo, hi, scale="log")
                for n, lo, hi in zip(PARAMETERS, _LOWER, _UPPER, strict=True)]

    def _initial(self):
        return (self.v_rest, 0.0)

    def _gates(self):
        return ()

    def _arrays(self) -> dict:
        return {"params": np.array([self.params[n] for n in PARAMETERS])}

    def _fields(self) -> dict:
        return {"parameter_names": list(PARAMETERS), "v_rest": self.v_rest,
                "gain": self.gain}

    @classmethod
    def _from_file(cls, arrays, meta, common):
        names = tuple(meta["parameter_names"])
        values = np.asarray(arrays["params"], float)
        if names != PARAMETERS or values.shape != (len(PARAMETERS),):
            raise ValueError(f"parameters {names} with {values.shape} values, expected "
                             f"{PARAMETERS}")
        return cls(params=dict(zip(names, map(float, values), strict=True)),
                   v_rest=float(meta["v_rest"]), gain=float(meta["gain"]), **common)


# ----- training ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Trace:
    period: float
    times: np.ndarray  # uniform output times from 0
    V: np.ndarray


def paced_traces(cell: Model, periods: Sequence[float], *, beats: int, amplitude: float,
                 duration: float, start: float = 5.0, output_every: float = 0.5,
                 voltage: str | None = None) -> list[_Trace]:
    """The full cell's potential, paced from rest every ``period`` in ``periods``."""
    iv = cell.state_index(voltage or cell.state_names[0])
    out = []
    for period in periods:
        t_end = start + beats * float(period)
        times = np.arange(0.0, t_end, output_every)
        pulse = PulseTrain("I_stim", amplitude, duration, float(period), start=start,
                           stop=t_end)
        paced = cell.replace(inputs=(*(i for i in cell.inputs if i.name != "I_stim"), pulse))
        sol = simulate(paced, times, max_steps=2_000_000)
        out.append(_Trace(float(period), times, np.asarray(sol.states)[:, iv]))
    return out


def _fit_model(v_rest: float, gain: float) -> Model:
    """The two-variable form with its :data:`PARAMETERS` as parameters (what the fit
    varies) and a silent stimulus input ``I_stim``."""
    def rhs(t, y, p, u):
        return _field(p, v_rest, gain, y, u)

    return Model(name="two_variable", states=["V", "r"],
                 parameters=dict(zip(PARAMETERS, _START, strict=True)), rhs=rhs,
                 initial=[v_rest, 0.0], inputs=[PulseTrain("I_stim", 0.0, 1.0, 1.0)],
                 stiff=False)


def _trace_simulator(model: Model, trace: _Trace, stim) -> Simulator:
    """The surrogate paced as the full cell was in :func:`paced_traces`, at the trace's
    times (Tsit5; forward-mode sensitivities for the least-squares Jacobian)."""
    amplitude, duration, start = stim
    pulse = PulseTrain("I_stim", amplitude, duration, trace.period, start=start,
                       stop=float(trace.times[-1]))
    return Simulator(model.replace(inputs=[pulse]), trace.times, rtol=1e-7, atol=1e-7,
                     solver=diffrax.Tsit5(), sensitivities="forward", max_steps=1_000_000)


def _cable(dx, length, stimulus):
    """The no-flux cable of spacing ``dx``: its grid, the stimulus on ``x <= 2.5 dx`` and
    the indices of the nodes at 30% and 70% of ``length``, where velocities are measured."""
    from ..pde.grid import grid1d
    from ..pde.tissue import Stimulus

    amplitude, duration, start = stimulus
    grid = grid1d(int(round(length / dx)) + 1, length)
    n = grid.size - 1
    return (grid, [Stimulus(lambda x: x <= 2.5 * dx, amplitude, start, duration)],
            np.array([round(0.3 * n), round(0.7 * n)]))


def _cable_simulator(model: Model, dx, D, stim, length, t_end, dt):
    """A no-flux cable of spacing ``dx`` stimulated on ``x <= 2.5 dx``: the PDE layer's
    tissue model solved by Godunov splitting (forward Euler reaction, explicit diffusion),
    every step an output; its parameters are the surrogate's, then ``D``."""
    from ..pde.splitting import OperatorSplitting
    from ..pde.tissue import reaction_diffusion

    grid, stimuli, nodes = _cable(dx, length, stim)
    tissue = reaction_diffusion(model, grid, diffusion={"V": D}, stimuli=stimuli)
    times = dt * np.arange(1, int(round(t_end / dt)) + 1)
    solver = OperatorSplitting(dt, scheme="godunov", reaction="euler")
    return Simulator(tissue, times, solver=solver, sensitivities="forward"), grid, nodes


def _cable_cv(sim: Simulator, grid, nodes, theta, D, threshold, t_end):
    """Conduction velocity between the cable's measuring ``nodes``, from their activation
    times (:func:`scalebridge.pde.measure.activation_times`)."""
    from ..pde.measure import activation_times

    p = jnp.concatenate([theta, jnp.stack([D])])
    ys, _, _ = sim.solve(p, sim.model.initial_state(p))
    act = activation_times(ys[:, nodes], sim.times, threshold)
    # no crossing: as if at twice the run's end, a finite (slow) velocity to fit from
    act = jnp.where(jnp.isnan(act), 2 * t_end, act)
    x = grid.coords[0]
    return (x[nodes[1]] - x[nodes[0]]) / (act[1] - act[0])


def cable_velocity(cell: Model, dx: float, *, D: float, stimulus, length: float,
                   t_end: float, threshold: float = -40.0, dt: float = 0.005) -> float:
    """The converged conduction velocity of ``cell`` (Strang splitting, Rush-Larsen, step
    ``dt``) on the no-flux cable of :func:`train_two_variable_surrogate`: spacing ``dx``,
    stimulus on ``x <= 2.5 dx``, measured between the nodes at 30% and 70% of ``length``."""
    from ..pde.measure import conduction_velocity
    from .compare import tissue_run

    grid, stim, nodes = _cable(dx, length, stimulus)
    run = tissue_run(cell, grid, stimuli=stim, D=D, dt=dt, t_end=t_end, output_every=0.1,
                     scheme="strang", threshold=threshold)
    x = grid.coords[0]
    return conduction_velocity(run["activation"], grid, points=[(x[i],) for i in nodes])


def train_two_variable_surrogate(
    cell: Model,
    traces: Sequence[_Trace],
    *,
    stimulus: tuple[float, float, float],
    cv_targets: Sequence[tuple[float, float]] = (),
    D: float = 0.1,
    cable_length: float = 10.0,
    cable_t_end: float = 40.0,
    threshold: float = -40.0,
    cv_weight: float = 400.0,
    dt_cable: float = 0.01,
    trained_for: str | None = None,
    ranges: Mapping[str, tuple[float, float]] | None = None,
    meta: Mapping | None = None,
    verbose: bool = False,
) -> TwoVariableSurrogate:
    """Fit a :class:`TwoVariableSurrogate` of ``cell`` to paced ``traces`` (from
    :func:`paced_traces`, stimulated by ``stimulus = (amplitude, duration, start)``) and
    to ``cv_targets``: ``(spacing, conduction velocity)`` pairs of the full model in tissue
    of diffusivity ``D``. ``cv_weight``: weight of a 1% velocity miss relative to the RMS
    shape error (in units of ``A``) over all samples; the default makes the fit match the
    velocities to about 0.1% and give up some shape for it."""
    name = trained_for or (cell.source[1] if cell.source and cell.source[0] == "zoo"
                           else cell.name)
    if not traces:
        raise InputError("traces is empty; simulate the full cell with paced_traces first")
    v_rest = float(traces[0].V[0])
    peak = max(float(tr.V.max()) for tr in traces)
    rest_full = np.asarray(cell.initial_state(cell.param_array(None)))
    gain = stimulus_gain(cell, rest_full)
    scale = peak - v_rest
    n_samples = sum(len(tr.times) for tr in traces)

    model = _fit_model(v_rest, gain)
    trace_sims = [_trace_simulator(model, tr, stimulus) for tr in traces]
    cables = [_cable_simulator(model, dx, D, stimulus, cable_length, cable_t_end, dt_cable)
              for dx, _ in cv_targets]

    def shape(theta):  # residuals, and the traces of V and r
        ys = [sim.solve(theta, sim.model.initial_state(theta))[0] for sim in trace_sims]
        return [(y[:, 0] - tr.V) / scale for y, tr in zip(ys, traces, strict=True)], ys

    def velocity(theta):  # residuals, and the velocities
        cvs = [_cable_cv(sim, grid, nodes, theta, D, threshold, cable_t_end)
               for sim, grid, nodes in cables]
        return [cv_weight * np.sqrt(n_samples) / 100.0 * (c / cv - 1.0)
                for c, (_, cv) in zip(cvs, cv_targets, strict=True)], cvs

    def value_and_jacobian(residual):
        """``z -> (dr/dz, (r, outputs))`` at ``theta = exp(z)``, one compiled forward-mode
        pass."""
        def r(z):
            parts, outputs = residual(jnp.exp(z))
            out = jnp.concatenate([jnp.atleast_1d(v) for v in parts])
            return out, (out, outputs)

        return jax.jit(jax.jacfwd(r, has_aux=True))

    parts = [value_and_jacobian(shape)]  # compiled once, shared by both stages
    lo, hi = np.log(_LOWER), np.log(_UPPER)
    x = np.log(np.array(_START))
    x[PARAMETERS.index("A")] = np.log(np.clip(scale, _LOWER[-1], _UPPER[-1]))
    start = time.perf_counter()
    stages = [1, 2] if cv_targets else [1]
    for stage in stages:
        if stage == 2:  # start from the cubic front's speed sqrt(D k / 2T) (1 - 2a)
            parts.append(value_and_jacobian(velocity))
            k_, a_, T_ = (np.exp(x[PARAMETERS.index(n)]) for n in ("k", "a", "T"))
            k_ = 2 * T_ * (cv_targets[0][1] / (1 - 2 * a_)) ** 2 / D
            x[0] = np.clip(np.log(k_), lo[0] + 1e-9, hi[0] - 1e-9)
        last: dict = {}

        def evaluate(z, parts=parts, last=last):
            # scipy asks for the residual, then (at accepted points) its Jacobian at the
            # same z: one pass gives both
            if last.get("z") is None or not np.array_equal(last["z"], z):
                out = [f(jnp.asarray(z)) for f in parts]
                last.update(z=np.array(z), r=np.concatenate([np.asarray(r) for _, (r, _) in out]),
                            J=np.concatenate([np.asarray(d) for d, _ in out]),
                            outputs=[o for _, (_, o) in out])
            return last

        if not np.all(np.isfinite(evaluate(x)["r"])):
            raise SimulationError(f"two-variable fit, stage {stage}: the surrogate blows "
                                  "up at the starting parameters; check the traces and the "
                                  "velocity targets (units, stimulus)")
        res = least_squares(lambda z, ev=evaluate: ev(z)["r"],
                            lambda z, ev=evaluate: ev(z)["J"], x, lo, hi,
                            max_evaluations=300, x_scale=1.0)
        x = res.x
        if verbose:
            from .._console import progress

            progress(f"  stage {stage}: cost {res.cost:.4g} after {res.nfev} evaluations"
                     f" ({time.perf_counter() - start:.1f} s)")
    theta = np.exp(x)
    final = evaluate(x)  # the last evaluation, already made
    shape_rmse = float(np.sqrt(np.mean(final["r"][:n_samples] ** 2)) * scale)
    ys = final["outputs"][0]
    cvs = [float(c) for c in final["outputs"][1]] if cv_targets else []
    r_all = np.concatenate([np.asarray(y[:, 1]) for y in ys])
    v_all = np.concatenate([tr.V for tr in traces])
    ranges = {"V": (float(v_all.min()), float(v_all.max())),
              "r": (float(r_all.min()), float(r_all.max())), **dict(ranges or {})}
    fit = {"shape_rmse": shape_rmse, "cv": [[dx, c, t] for (dx, t), c in
                                            zip(cv_targets, cvs, strict=True)],
           "samples": int(n_samples), "seconds": round(time.perf_counter() - start, 2)}
    return TwoVariableSurrogate(
        params=dict(zip(PARAMETERS, map(float, theta), strict=True)), v_rest=v_rest,
        gain=gain, ranges=ranges, trained_for=name,
        meta={"fit": fit, **(dict(meta) if meta else {})})
