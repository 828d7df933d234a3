"""The one trainer (scalebridge.trainer) on problems with known minima."""

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from scalebridge.errors import InputError, SimulationError
from scalebridge.trainer import LBFGS, Adam, Checkpoint, Optax, train


@dataclass(frozen=True)
class Rosenbrock:
    """``(a - x)^2 + b (y - x^2)^2``: minimum 0 at ``(a, a^2)`` (here ``a`` comes in aux)."""

    b: float = 100.0

    def __call__(self, params, aux, phase):
        x, y = params["xy"]
        terms = jnp.stack([(aux["a"] - x) ** 2, self.b * (y - x**2) ** 2])
        return jnp.sum(terms), terms


START = {"xy": jnp.asarray([-1.2, 1.0])}
NAMES = ("a_term", "b_term")


def test_adam_then_lbfgs_reach_the_known_minimum():
    out = train(Rosenbrock(), START, {"a": jnp.asarray(1.0)}, first=Adam(200, 1e-2),
                lbfgs=LBFGS(100), names=NAMES)
    np.testing.assert_allclose(out.params["xy"], [1.0, 1.0], atol=1e-8)  # analytic minimum
    assert out.history.shape == (300, 2) and out.steps == 300
    # each row is the loss at the step's start: the first is the start point's
    assert out.history[0].tolist() == pytest.approx([2.2**2, 100 * (1.0 - 1.44) ** 2])
    # aux reaches the objective: a = 2 moves the minimum to (2, 4)
    out = train(Rosenbrock(), START, {"a": jnp.asarray(2.0)}, first=None, lbfgs=LBFGS(200),
                names=NAMES)
    np.testing.assert_allclose(out.params["xy"], [2.0, 4.0], atol=1e-7)


def test_any_optax_transformation_and_gtol_stop():
    sgd = Optax(optax.sgd(1e-4), 50)
    out = train(Rosenbrock(), START, {"a": jnp.asarray(1.0)}, first=sgd, lbfgs=None, names=NAMES)
    assert out.steps == 50 and out.history[-1].sum() < out.history[0].sum()
    stop = train(Rosenbrock(), START, {"a": jnp.asarray(1.0)}, first=None,
                 lbfgs=LBFGS(500, gtol=1e-6), names=NAMES)
    assert stop.steps < 500  # converged well before the budget
    np.testing.assert_allclose(stop.params["xy"], [1.0, 1.0], atol=1e-5)


def test_checkpoint_resume_continues_exactly(tmp_path):
    aux = {"a": jnp.asarray(1.0)}
    full = train(Rosenbrock(), START, aux, first=Adam(60, 1e-2), lbfgs=LBFGS(20),
                 names=NAMES)
    path = tmp_path / "ck.eqx"
    # an interrupted run: stopped after the step-30 checkpoint by raising in the callback
    with pytest.raises(_Interrupt):
        train(Rosenbrock(), START, aux, first=Adam(60, 1e-2), lbfgs=LBFGS(20),
              checkpoint=Checkpoint(path, every=30), callback=_stop_at(45), names=NAMES)
    resumed = train(Rosenbrock(), START, aux, first=Adam(60, 1e-2), lbfgs=LBFGS(20),
                    checkpoint=Checkpoint(path, every=30), names=NAMES)
    np.testing.assert_array_equal(resumed.params["xy"], full.params["xy"])
    np.testing.assert_array_equal(resumed.history, full.history)
    with pytest.raises(InputError, match="other settings"):
        train(Rosenbrock(), START, aux, first=Adam(61, 1e-2), lbfgs=LBFGS(20),
              checkpoint=Checkpoint(path, every=30), names=NAMES)
    with pytest.raises(InputError, match="returns 2 loss terms"):
        train(Rosenbrock(), START, aux, first=Adam(3), lbfgs=None)


class _Interrupt(Exception):
    pass


def _stop_at(n):
    def callback(step, terms, params):
        if step >= n:
            raise _Interrupt
    return callback


def test_nan_guard_names_the_term_and_step():
    @dataclass(frozen=True)
    class Blows:
        def __call__(self, params, aux, phase):
            x = params["x"]
            t = jnp.stack([x**2, jnp.log(x)])  # log of a negative number: NaN
            return jnp.sum(t), t

    with pytest.raises(SimulationError, match=r"toy stopped at step 0: loss term log = nan.*"
                                              r"no checkpoint was written\. Try less"):
        train(Blows(), {"x": jnp.asarray(-1.0)}, first=Adam(5), lbfgs=None,
              names=("sq", "log"), what="toy", hint="try less")
    with pytest.raises(InputError, match="adam.steps"):
        train(Blows(), {"x": jnp.asarray(1.0)}, first=Adam(-1), lbfgs=None)
