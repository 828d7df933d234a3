"""Learned cell surrogates: exact recovery of true gates, the saved format, range and model
checks, and the surrogate against the full Beeler-Reuter model in single cells and tissue."""

from pathlib import Path

import numpy as np
import pytest

from scalebridge.errors import InputError
from scalebridge.model.zoo import load_zoo
from scalebridge.model.zoo.beeler_reuter import rates
from scalebridge.multiscale import (
    CellProtocol,
    TwoVariableSurrogate,
    cell_training_states,
    load_surrogate,
    train_cell_surrogate,
    train_two_variable_surrogate,
)
from scalebridge.multiscale.compare import largest_dt, tissue_run, validate_cell
from scalebridge.multiscale.two_variable import cable_velocity, paced_traces
from scalebridge.pde import Stimulus, grid1d
from scalebridge.pde.zoo import _quiet

SHIPPED = (Path(__file__).parents[1] / "benchmarks" / "results" / "multiscale"
           / "beeler_reuter_gated.npz")
SMALL = CellProtocol(periods=(300.0,), conductivities=(0.0, 1.0), beats=2, nodes=21,
                     length=4.0, sample_every=0.5)


@pytest.fixture(scope="module")
def cell():
    return _quiet(load_zoo("beeler_reuter"))


@pytest.fixture(scope="module")
def data(cell):
    return cell_training_states(cell, SMALL)


@pytest.fixture(scope="module")
def sur(cell, data):
    return train_cell_surrogate(cell, data[0], local_current=data[1])


def test_training_states_cover_upstrokes_and_rest(cell, data):
    Y, current = data
    assert Y.shape[1] == 8 and len(current) == len(Y)
    V = Y[:, 0]
    assert V.min() < -80 and V.max() > 20  # rest and the plateau
    assert np.sum((V > -60) & (V < 0)) > 100  # upstroke samples kept
    # isolated cells feel the stimulus, cable nodes their neighbours
    assert current.max() == pytest.approx(max(SMALL.amplitudes))


def test_true_gates_are_recovered_exactly(sur):
    """d, f and x1 are gates of the full model: the regression must find their rates."""
    V = np.linspace(-80.0, 20.0, 11)
    names = list(sur.latents)
    for gate, k in (("x1", 0), ("d", 4), ("f", 5)):
        alpha, beta = rates(V)[k]
        A = np.array([np.asarray(sur.functions(v)[1]) for v in V])[:, names.index(gate)]
        B = np.array([np.asarray(sur.functions(v)[2]) for v in V])[:, names.index(gate)]
        np.testing.assert_allclose(B, alpha + beta, rtol=2e-3, err_msg=gate)
        np.testing.assert_allclose(A, alpha, rtol=1e-2, atol=1e-7, err_msg=gate)


def test_save_load_round_trip_and_bad_files(sur, tmp_path):
    path = sur.save(tmp_path / "s.npz")
    back = load_surrogate(path)
    assert back.latents == sur.latents and back.pairs == sur.pairs
    y = np.array([-20.0, 0.5, 0.3, 0.8, 0.1])
    np.testing.assert_array_equal(np.asarray(back.rhs(0.0, y, None, np.array([2.0]))),
                                  np.asarray(sur.rhs(0.0, y, None, np.array([2.0]))))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a scalebridge file"):
        load_surrogate(tmp_path / "junk.npz")
    with pytest.raises(InputError, match="trained for 'beeler_reuter', not 'luo_rudy'"):
        back.check_trained_for("luo_rudy")


def test_range_warnings_give_numbers(sur):
    lo, hi = sur.ranges["V"]
    assert sur.range_warnings({"V": np.array([lo, hi])}) == []
    (msg,) = sur.range_warnings({"V": np.array([lo, hi + 50.0]), "h": np.array([0.5])})
    assert msg.startswith(f"V spans [{lo:.4g}, {hi + 50:.4g}]") and "trained on" in msg


def test_bad_latents_are_named(cell, data):
    with pytest.raises(InputError, match="'k' is not a state"):
        train_cell_surrogate(cell, data[0], latents={"a": ("h", "k")})
    with pytest.raises(InputError, match="no default latents"):
        train_cell_surrogate(cell.replace(source=None, name="mine"), data[0])
    with pytest.raises(InputError, match="must name two latents"):
        train_cell_surrogate(cell, data[0], latents={"a": ("h",)}, pairs=[("a", "b")])


def test_single_cell_action_potential_matches(cell, sur):
    v = validate_cell(cell, sur.model, period=300.0, beats=2, amplitude=45.0)
    assert v["beats_full"] == v["beats_surrogate"] == 2
    assert v["apd90_error_percent"] < 3.0 and v["shape_rmse_mV"] < 3.0


def test_shipped_surrogate_tissue_conducts_like_the_full_model(cell):
    """The benchmark's surrogate (full training protocol) in an 8 mm cable."""
    sur = load_surrogate(SHIPPED)
    grid = grid1d(81, 8.0)
    stim = [Stimulus(lambda x: x <= 0.3, 60.0, 1.0, 2.0)]
    kw = dict(stimuli=stim, D=0.1, t_end=30.0, output_every=0.25)
    a = tissue_run(cell, grid, dt=0.005, **kw)
    b = tissue_run(sur.model, grid, dt=0.005, **kw)
    assert b["ok"] and abs(b["cv"] / a["cv"] - 1) < 0.01
    ok = np.isfinite(a["activation"])
    assert np.sqrt(np.mean((a["activation"][ok] - b["activation"][ok]) ** 2)) < 0.2
    found = largest_dt(sur.model, grid, candidates=(0.005, 0.01, 0.02, 0.05), **kw)
    assert found["dt"] in (0.01, 0.02)  # 0.05 breaks the 1% limit (or explodes)
    assert abs(found["cv"][found["dt"]] / found["reference_cv"] - 1) <= 0.01


# ----- the two-variable family -------------------------------------------------------------
@pytest.fixture(scope="module")
def two_variable(cell):
    traces = paced_traces(cell, (400.0,), beats=2, amplitude=60.0, duration=2.0)
    stimulus = (60.0, 2.0, 5.0)
    cable = dict(D=0.1, stimulus=stimulus, length=10.0, t_end=30.0)
    target = cable_velocity(cell, 0.2, **cable)
    sur = train_two_variable_surrogate(cell, traces, stimulus=stimulus,
                                       cv_targets=[(0.2, target)], D=0.1, cable_t_end=30.0)
    return sur, target, cable


def test_two_variable_fit_reaches_the_velocity_in_the_tissue_solver(two_variable):
    """The fit's own cable (JAX, inside least squares) and the PDE layer's operator
    splitting must agree on the surrogate's velocity, and both match the full model's."""
    sur, target, cable = two_variable
    (_, fitted, _), = sur.meta["fit"]["cv"]
    assert abs(fitted / target - 1) < 0.005
    measured = cable_velocity(sur.model, 0.2, **cable, dt=0.01)
    assert abs(measured / target - 1) < 0.01
    assert sur.meta["fit"]["shape_rmse"] < 15.0  # mV: an action potential, roughly


def test_two_variable_round_trip_and_checks(two_variable, tmp_path):
    sur = two_variable[0]
    back = load_surrogate(sur.save(tmp_path / "tv.npz"))
    assert isinstance(back, TwoVariableSurrogate) and back.params == sur.params
    assert back.model.state_names == ("V", "r") and back.ranges["V"] == sur.ranges["V"]
    y = np.array([-30.0, 0.2])
    np.testing.assert_array_equal(np.asarray(back.rhs(0.0, y, None, np.array([1.0]))),
                                  np.asarray(sur.rhs(0.0, y, None, np.array([1.0]))))
    with pytest.raises(InputError, match="trained for 'beeler_reuter'"):
        back.check_trained_for("aliev_panfilov")
