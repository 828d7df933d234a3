"""Hybrid (universal differential equation) models and the recover-then-refit workflow.

A :class:`HybridModel` adds a network term to chosen states of a known scalebridge
:class:`~scalebridge.Model`: ``dy/dt = f_known(t, y, p) + E NN(y)``, where ``E`` places the
network's outputs on the chosen states (Rackauckas et al. 2020, "Universal differential
equations for scientific machine learning", arXiv:2001.04385). It is trained by the same
multiple-shooting loop as :class:`~scalebridge.discover.neural.NeuralODE`; the known
model's parameters with ``estimate=True`` are trained with the network (on their scales),
the others stay fixed.

:func:`recover_terms` then turns the network into equations: SINDy (Brunton, Proctor & Kutz
2016) regresses the network's outputs on a library of candidate terms over the states the
trained model visits, the discovered terms are added to the known model
(:meth:`SINDy.to_model`), and their coefficients are refitted to the data
(:func:`scalebridge.fit`), giving an ordinary scalebridge model with no network left in it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputError
from ..infer.space import ParameterSpace, scaled_from_unconstrained, scaled_to_linear
from ..model.model import Model
from .neural import Network, _apply, _NeuralBase, _train, _trajectories, plus_network

__all__ = ["HybridModel", "Recovery", "recover_terms"]


def _params(consts, q):
    """The known model's parameter vector with the estimated entries from ``q`` (the
    unconstrained coordinates of their :class:`~scalebridge.ParameterSpace`)."""
    if not consts["scales"]:
        return consts["base"]
    x = scaled_from_unconstrained(q, consts["unconstrained"])
    return consts["base"].at[consts["est"]].set(scaled_to_linear(x, consts["scales"]))


def _hybrid_field(theta, consts, model: Model):
    """The known model's right-hand side plus the network term, and its parameters."""
    net = plus_network(model.rhs, consts["idx"], lambda y: _apply(theta["mlp"], consts["norm"], y))
    return net, _params(consts, theta["q"])


class HybridModel(_NeuralBase):
    """A known model plus a network term on ``states`` (default: all states).

    The network sees all states (standardised) and returns one value per chosen state.
    Training arguments are those of :class:`~scalebridge.discover.neural.NeuralODE`
    (defaults here: 3 hidden layers of 16 units with ``rbf`` activations). The known
    model's parameters with ``estimate=True`` are trained with the network, in the
    unconstrained coordinates of their :class:`~scalebridge.ParameterSpace` (so on their
    scales and within their bounds; priors are not used); give the known ones
    ``Parameter(..., estimate=False)``.
    Models with events are not supported; time-dependent inputs are.

    Learned attributes: ``network_`` (:class:`~scalebridge.discover.neural.Network`),
    ``parameters_`` (``{name: value}`` of the known model after training),
    ``initial_states_``, ``loss_``, ``loss_history_``, ``train_time_``.
    """

    def __init__(self, model: Model, *, states: Sequence[str] | None = None,
                 hidden: Sequence[int] = (16, 16, 16), activation: str | Callable = "rbf",
                 window: int | None = 10, batch_size: int | None = None,
                 learning_rate: float = 1e-2, adam_steps: int = 1000, lbfgs_steps: int = 200,
                 continuity: float = 10.0, weight_decay: float = 0.0, rtol: float = 1e-6,
                 atol: float = 1e-8, max_steps: int = 10_000, seed: int = 0,
                 verbose: bool = False, name: str | None = None):
        self.model = model
        self.states = states
        self.hidden = hidden
        self.activation = activation
        self.window = window
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.adam_steps = adam_steps
        self.lbfgs_steps = lbfgs_steps
        self.continuity = continuity
        self.weight_decay = weight_decay
        self.rtol = rtol
        self.atol = atol
        self.max_steps = max_steps
        self.seed = seed
        self.verbose = verbose
        self.name = name

    def _term_index(self) -> np.ndarray:
        m = self.model
        if not isinstance(m, Model):
            raise InputError(f"model must be a scalebridge Model, got {type(m).__name__}")
        if m.events:
            raise InputError(f"model {m.name!r} has events; hybrid training does not support "
                             "events, remove them first (model.replace(events=()))")
        names = m.state_names if self.states is None else tuple(
            [self.states] if isinstance(self.states, str) else self.states)
        if not names:
            raise InputError("states must name at least one state for the network term")
        return np.asarray([m.state_index(s) for s in names], dtype=int)

    def fit(self, times, data, *, y0=None) -> HybridModel:
        """Train on trajectories of all the model's states (columns in the order of
        ``model.state_names``); ``times``, ``data`` and ``y0`` as in
        :meth:`NeuralODE.fit <scalebridge.discover.neural.NeuralODE.fit>`."""
        cfg = self._config()
        idx = self._term_index()
        m = self.model
        n = len(m.state_names)
        d = _trajectories(times, data, n, m.state_names)
        y0f = self._y0(y0, d, n)
        mlp, norm = self._mlp(n, idx.size, d)
        norm = (norm[0], norm[1], norm[2][idx])
        space = ParameterSpace.from_model(m)
        # arrays and a tuple, so that a later fit of the same layout reuses the compiled steps
        consts = {"norm": norm, "base": jnp.asarray(space.full(space.nominal)),
                  "est": jnp.asarray(space.estimated_index), "scales": space.scales,
                  "unconstrained": space.unconstrained_data(), "idx": jnp.asarray(idx)}
        q0 = jnp.asarray(space.to_unconstrained(space.nominal))
        theta, s, hist, final, secs = _train(_hybrid_field, consts, m, {"mlp": mlp, "q": q0},
                                             d, y0f, cfg)
        p = np.asarray(_params(consts, theta["q"]))
        self.network_ = Network(theta["mlp"], *norm)
        self.term_states_ = tuple(m.state_names[i] for i in idx)
        self.parameters_ = {k: float(v) for k, v in zip(m.parameter_names, p, strict=True)}
        self.initial_states_ = s
        self.loss_history_ = hist
        self.loss_ = final
        self.train_time_ = secs
        self._data = d
        return self

    def to_dict(self) -> dict:
        """Settings, the known model (as :func:`scalebridge.save` stores models: a zoo or
        SBML model; one defined by Python functions cannot be saved), network weights,
        trained parameters, training record and the training data."""
        from ..io import model_to_dict

        return {**self._fitted_dict(), "model": model_to_dict(self.model),
                "term_states": list(self.term_states_), "parameters": dict(self.parameters_),
                "data_times": [np.asarray(t) for t in self._data.times],
                "data_values": [np.asarray(v) for v in self._data.values]}

    @classmethod
    def from_dict(cls, d) -> HybridModel:
        from ..io import model_from_dict
        from .neural import _Data

        hybrid = cls(model_from_dict(d["model"]), **d["settings"])
        hybrid._set_fitted(d)
        hybrid.term_states_ = tuple(d["term_states"])
        hybrid.parameters_ = {k: float(v) for k, v in d["parameters"].items()}
        hybrid._data = _Data(tuple(np.asarray(t, float) for t in d["data_times"]),
                             tuple(np.asarray(v, float) for v in d["data_values"]))
        return hybrid

    def network_outputs(self, X) -> np.ndarray:
        """The network term at the rows of ``X`` (n_points, n_states): an array
        (n_points, len(term_states_)), the targets for SINDy."""
        self._check_fitted()
        X = self._states_matrix(X, len(self.model.state_names))
        return np.asarray(jax.vmap(self.network_)(jnp.asarray(X)))

    def known_model(self) -> Model:
        """The known model with its trained parameter values."""
        self._check_fitted()
        return self.model.with_parameters(**self.parameters_)

    def to_model(self, *, name: str | None = None) -> Model:
        """The trained hybrid as a scalebridge :class:`~scalebridge.Model`: the known
        model's rhs plus the network term (closed over), the known parameters at their
        trained values as parameters, and the known model's initial state."""
        self._check_fitted()
        known = self.known_model()
        rhs = plus_network(known.rhs, jnp.asarray(self._term_index()), self.network_)
        return known.replace(rhs=rhs, name=name or self.name or f"{known.name}_hybrid",
                             citation="universal differential equation (Rackauckas et al. 2020)"
                             " trained by scalebridge")

    def trajectories(self, n_points: int = 200) -> np.ndarray:
        """The trained model's states on a dense grid over each training trajectory's time
        span, stacked (n_trajectories * n_points, n_states): where to query the network."""
        self._check_fitted()
        from ..simulate import simulate

        model = self.to_model()
        out = []
        for t, y0 in zip(self._data.times, self.initial_states_, strict=True):
            ts = np.linspace(t[0], t[-1], int(n_points))
            sol = simulate(model, ts, y0=y0, t0=float(t[0]), rtol=1e-10, atol=1e-12)
            out.append(np.asarray(sol.states))
        return np.concatenate(out)

    def __repr__(self):
        fitted = " [fitted]" if hasattr(self, "network_") else ""
        return f"HybridModel({self.model.name!r}, states={self.states}){fitted}"


@dataclass
class Recovery:
    """The result of :func:`recover_terms`.

    ``sindy``: the fitted SINDy estimator; ``equations``: the discovered terms
    ``{state: {term: coefficient}}`` (regression on the network outputs); ``model``: the
    known model plus the discovered terms at those coefficients; ``fitted_model``: the same
    model with the coefficients (and estimated known parameters) refitted to the data;
    ``fit_result``: the :class:`~scalebridge.FitResult` of that refit (``None`` without
    one); ``refitted``: ``{parameter: value}`` after the refit; ``X``, ``Y``: the states and
    network outputs SINDy saw.
    """

    sindy: object
    equations: dict
    model: Model
    fitted_model: Model | None = None
    fit_result: object = None
    refitted: dict = field(default_factory=dict)
    X: np.ndarray | None = None
    Y: np.ndarray | None = None


def _bounded(model: Model, names: set[str]) -> Model:
    """Give the parameters ``names`` finite bounds around their value (for multi-start)."""
    new = []
    for p in model.parameters:
        if p.name in names and p.estimate and not (np.isfinite(p.lower) and np.isfinite(p.upper)):
            w = max(abs(p.value), 0.1)
            p = p.replace(lower=p.value - w, upper=p.value + w, scale="lin")
        new.append(p)
    return model.replace(parameters=tuple(new))


def recover_terms(hybrid: HybridModel, *, sindy=None, X=None, n_points: int = 200,
                  refit: bool = True, n_starts: int = 5, seed: int = 0,
                  name: str | None = None) -> Recovery:
    """Recover the network term of a trained :class:`HybridModel` as equations, then refit.

    1. ``X``: states at which to query the network (default: the trained model's
       trajectories over the data, ``n_points`` per trajectory); ``Y = NN(X)``.
    2. ``sindy`` (default: degree-2 polynomials, ``STLSQ(threshold=0.1, alpha=0)``) is
       fitted to ``(X, Y)`` (``Y`` padded with zeros on the states without a network term).
       No ridge by default: the network's outputs carry no measurement noise to shrink
       against, and along one orbit the library columns are nearly collinear, where a ridge
       term can shrink a true coefficient under the threshold (it lost the interaction term
       in 1 of 10 Lotka-Volterra noise seeds; plain least squares in none).
    3. The known model (trained parameter values) plus the discovered terms becomes a
       scalebridge Model, whose new coefficients (and known parameters with
       ``estimate=True``) are refitted to the training data by :func:`scalebridge.fit`
       (``n_starts`` starts within +-100% of each coefficient, noise level estimated per
       state; initial states fixed at the hybrid's ``initial_states_``).
    """
    from .library import PolynomialLibrary
    from .optimizers import STLSQ
    from .sindy import SINDy

    if not isinstance(hybrid, HybridModel):
        raise InputError(f"hybrid must be a HybridModel, got {type(hybrid).__name__}")
    hybrid._check_fitted()
    known = hybrid.known_model()
    if known.inputs:
        raise InputError(f"model {known.name!r} has inputs; recover_terms supports models "
                         "without inputs")
    n = len(known.state_names)
    X = hybrid.trajectories(n_points) if X is None else hybrid._states_matrix(X, n)
    Y = np.zeros_like(X)
    Y[:, hybrid._term_index()] = hybrid.network_outputs(X)
    if sindy is None:
        sindy = SINDy(library=PolynomialLibrary(degree=2, include_constant=True),
                      optimizer=STLSQ(threshold=0.1, alpha=0.0))
    sindy.fit(X, x_dot=Y, feature_names=list(known.state_names))
    name = name or f"{known.name}_recovered"
    model = sindy.to_model(base=known, name=name)
    rec = Recovery(sindy=sindy, equations=sindy.equations(), model=model, X=X, Y=Y)
    if not refit:
        return rec
    import pandas as pd

    from ..infer.fit import fit
    from ..infer.problem import Problem

    new = set(model.parameter_names) - set(known.parameter_names)
    model = _bounded(model, new | {p.name for p in known.parameters if p.estimate})
    rows, conditions = [], {}
    d = hybrid._data
    for k, (t, y) in enumerate(zip(d.times, d.values, strict=True)):
        cid = f"trajectory{k}"
        conditions[cid] = {s: float(v) for s, v in
                           zip(known.state_names, hybrid.initial_states_[k], strict=True)}
        for j, s in enumerate(known.state_names):
            rows.append(pd.DataFrame({"time": t, "observable": s, "value": y[:, j],
                                      "condition": cid}))
    if not any(p.estimate for p in model.parameters):
        return rec
    if any(float(t[0]) != 0 for t in d.times):
        raise InputError("the refit needs every trajectory to start at t = 0 (its initial "
                         "state is set at t = 0); pass refit=False or shift the times")
    problem = Problem.from_table(model, pd.concat(rows, ignore_index=True),
                                 conditions=conditions, name=name)
    res = fit(problem, n_starts=int(n_starts), seed=int(seed))
    best = res.best_params
    values = {k: v for k, v in best.items() if k in model.parameter_names}
    rec.fit_result = res
    rec.refitted = values
    rec.fitted_model = model.with_parameters(**values)
    return rec
