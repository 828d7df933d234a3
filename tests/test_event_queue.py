"""SBML event semantics in the engine (scalebridge.event_queue): delays, values from the
trigger or the execution time, persistence, priorities and cascades, each against the
closed form of a model whose solution is known between events."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import scalebridge as sb
from scalebridge.errors import ModelError
from scalebridge.model.events import Assignments

K = 0.5
T_HALF = np.log(2.0) / K  # where y = exp(-K t) falls through 0.5
TOL = dict(rtol=1e-10, atol=1e-12)


class Set(Assignments):
    """state ``target`` := f(t, y, p) (an Assignments affect: values, then assign)."""

    target: int = eqx.field(static=True)
    f: object = eqx.field(static=True)

    def values(self, t, y, p):
        return jnp.reshape(self.f(t, y, p), (1,))

    def assign(self, t, y, p, v):
        return y.at[self.target].set(v[0]), p


def _rhs(t, y, p, u):
    return jnp.stack([-p[0] * y[0], 0.0 * y[1]])


def _model(*events, k=K, **more):
    """y' = -k y, x' = 0, from y = 1, x = 0; parameter k and d (a delay), and ``more``.
    Models of the same events are equal, and share their compiled simulation."""
    return sb.Model(states=["y", "x"], parameters={"k": k, "d": 0.3, **more},
                    initial=[1.0, 0.0], rhs=_rhs, events=events, stiff=False)


def _below_half(t, y, p):
    return 0.5 - y[0]


def test_delayed_reset_is_a_longer_sawtooth():
    # y falls through 0.5 at T_HALF and is reset to 1 a delay d later: period T_HALF + d
    reset = sb.Event(Set(0, lambda t, y, p: 1.0), trigger=_below_half,
                     delay=lambda t, y, p: p[1])
    ts = np.array([0.5, 1.5, 1.6, 1.7, 2.0, 3.0, 4.0, 5.0])
    sol = sb.simulate(_model(reset), ts, **TOL)
    period = T_HALF + 0.3
    np.testing.assert_allclose(sol["y"], np.exp(-K * np.mod(ts, period)), rtol=1e-8)


def test_values_from_the_trigger_or_the_execution_time():
    # x := y, executed 0.3 after y = 0.5: the value at the trigger is 0.5, at the
    # execution 0.5 exp(-0.3 K)
    ts = np.array([1.0, T_HALF + 0.2, T_HALF + 0.3, 3.0])
    for at_trigger, value in ((True, 0.5), (False, 0.5 * np.exp(-0.3 * K))):
        copy = sb.Event(Set(1, lambda t, y, p: y[0]), trigger=_below_half,
                        delay=lambda t, y, p: p[1], at_trigger=at_trigger)
        sol = sb.simulate(_model(copy), ts, **TOL)
        np.testing.assert_allclose(sol["x"], [0.0, 0.0, value, value], rtol=1e-9, atol=1e-14)


def test_non_persistent_execution_is_dropped_when_the_trigger_turns_false():
    # the trigger holds on (1, 1.5) only; a delay of 1 puts the execution at t = 2
    def window(t, y, p):
        return jnp.minimum(t - 1.0, 1.5 - t)

    ts = np.array([1.9, 2.0, 2.5])
    for persistent, after in ((True, 1.0), (False, 0.0)):
        add = sb.Event(Set(1, lambda t, y, p: y[1] + 1.0), trigger=window,
                       delay=lambda t, y, p: 1.0, persistent=persistent)
        sol = sb.simulate(_model(add), ts, **TOL)
        np.testing.assert_allclose(sol["x"], [0.0, after, after], atol=1e-14)


def _at_one(t, y, p):
    return t - 1.0


# the events of the priority test, made once: the priorities are the parameters p_double
# and p_add, so both cases below simulate equal models (one compilation per listing)
_START = sb.Event(Set(1, lambda t, y, p: 1.0), times=(0.5,))
_DOUBLE = sb.Event(Set(1, lambda t, y, p: 2.0 * y[1]), trigger=_at_one, at_trigger=False,
                   priority=lambda t, y, p: p[2])
_ADD = sb.Event(Set(1, lambda t, y, p: y[1] + 1.0), trigger=_at_one, at_trigger=False,
                priority=lambda t, y, p: p[3])


@pytest.mark.parametrize("double_first, expected", [(True, 3.0), (False, 4.0)])
def test_priorities_order_simultaneous_executions(double_first, expected):
    # at t = 1 both trigger; values at execution: x = 1 -> 2 -> 3, or 1 -> 2 -> 4
    high, low = 10.0, -1.0
    priorities = {"p_double": high if double_first else low,
                  "p_add": low if double_first else high}
    # the listing does not matter
    for events in ((_START, _DOUBLE, _ADD), (_START, _ADD, _DOUBLE)):
        model = _model(*events, p_double=0.0, p_add=0.0)
        assert model.parameter_names[2:] == ("p_double", "p_add")
        sol = sb.simulate(model, np.array([0.9, 1.0, 2.0]), params=priorities, **TOL)
        np.testing.assert_allclose(sol["x"], [1.0, expected, expected])


def test_an_execution_triggers_another_at_the_same_instant():
    # x := 1 at t = 1 turns the trigger x > 0.5 true: y := 7 at the same instant
    first = sb.Event(Set(1, lambda t, y, p: 1.0), trigger=lambda t, y, p: t - 1.0)
    second = sb.Event(Set(0, lambda t, y, p: 7.0), trigger=lambda t, y, p: y[1] - 0.5)
    sol = sb.simulate(_model(first, second), np.array([0.5, 1.0, 2.0]), **TOL)
    np.testing.assert_allclose(sol["y"], [np.exp(-0.5 * K), 7.0, 7.0 * np.exp(-K)],
                               rtol=1e-9)


def test_overlapping_executions_of_one_event():
    # a trigger true on (k, k + 0.5) for k = 0, 1, 2, ... (time's fractional part below
    # 0.5), each execution 1.75 later adds 1: several executions are pending at once
    def first_half(t, y, p):
        return jnp.sin(2 * jnp.pi * t)

    count = sb.Event(Set(1, lambda t, y, p: y[1] + 1.0), trigger=first_half,
                     delay=lambda t, y, p: 1.75, at_trigger=False)
    ts = np.array([1.7, 1.8, 2.7, 2.8, 3.7, 3.8, 4.4])
    sol = sb.simulate(_model(count), ts, **TOL)
    # triggered just after 0 (zero at the start counts as false), at 1, 2 and 3: executed
    # at 1.75, 2.75, 3.75 and 4.75, two pending at once from t = 1 on
    np.testing.assert_allclose(sol["x"], [0, 1, 1, 2, 2, 3, 3])


def test_fires_at_start():
    ts = np.array([0.0, 0.1])
    for fires, x0 in ((True, 1.0), (False, 0.0)):
        on = sb.Event(Set(1, lambda t, y, p: 1.0), trigger=lambda t, y, p: y[0] - 0.9,
                      fires_at_start=fires)
        np.testing.assert_allclose(sb.simulate(_model(on), ts, **TOL)["x"], [x0, x0])


@pytest.mark.slow  # a minute: reverse mode through the event loops
def test_delay_gradient_against_finite_differences():
    reset = sb.Event(Set(0, lambda t, y, p: 1.0), trigger=_below_half,
                     delay=lambda t, y, p: p[1])
    m = _model(reset)
    ts = np.array([1.0, 3.5])

    def last(d):
        return sb.simulate(m, ts, params=jnp.stack([K, d]), **TOL)["y"][-1]

    d0, h = 0.3, 1e-5
    fd = (last(d0 + h) - last(d0 - h)) / (2 * h)
    # exact: two resets by t = 3.5, y(3.5) = exp(-K (3.5 - 2 (T_HALF + d))): dy/dd = 2 K y
    np.testing.assert_allclose(fd, 2 * K * last(d0), rtol=1e-6)
    np.testing.assert_allclose(jax.grad(last)(d0), fd, rtol=1e-5)


def test_event_options_are_checked():
    with pytest.raises(ModelError, match="apply to state-triggered events"):
        sb.Event(Set(0, lambda t, y, p: 1.0), times=(1.0,), delay=lambda t, y, p: 1.0)
    with pytest.raises(ModelError, match="needs an Assignments affect"):
        sb.Event(lambda t, y, p: (y, p), trigger=_below_half, delay=lambda t, y, p: 1.0)
    sb.Event(lambda t, y, p: (y, p), trigger=_below_half, delay=lambda t, y, p: 1.0,
             at_trigger=False)


def test_a_window_open_inside_one_step_is_not_missed():
    # y = exp(-K t) is in the window 0.5 < y < 0.505 for 0.02 time units, less than the
    # solver's step on this smooth solution (without ``relations`` the event is missed);
    # the event (x := t) fires where y falls through 0.505. Watching the window's two
    # relations finds it.
    def window(t, y, p):
        return jnp.minimum(y[0] - 0.5, 0.505 - y[0])

    def relations(t, y, p):
        return jnp.stack([y[0] - 0.5, 0.505 - y[0]])

    mark = sb.Event(Set(1, lambda t, y, p: t), trigger=window, relations=relations)
    sol = sb.simulate(_model(mark), np.array([0.5, 5.0]), **TOL)
    assert float(sol["x"][0]) == 0.0
    np.testing.assert_allclose(float(sol["x"][1]), np.log(1 / 0.505) / K, rtol=1e-9)
