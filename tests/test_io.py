"""Saving and loading: round trips, versions, wrong kinds, no pickle."""

import json
import zipfile

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import scalebridge as sb
from scalebridge.errors import SerializationError
from scalebridge.io import read_archive, write_archive
from scalebridge.model.zoo import load_zoo

T = np.linspace(0, 5, 6)


def test_zoo_model_round_trip_keeps_parameter_specs(tmp_path):
    m = load_zoo("lotka_volterra")
    spec = m.parameters[0].replace(value=1.7, lower=0.1, upper=10.0, scale="log10",
                                   prior=sb.Prior("normal", (1.0, 0.5)))
    m = m.replace(parameters=(spec, *m.parameters[1:]))
    path = sb.save(m, tmp_path / "lv.npz")
    back = sb.load(path, kind="model")
    assert back.parameters == m.parameters
    np.testing.assert_allclose(sb.simulate(back, T).states, sb.simulate(m, T).states)


def test_solution_round_trip(tmp_path, oscillator):
    sol = sb.simulate(oscillator, T)
    back = sb.load(sb.save(sol, tmp_path / "s.npz"))
    np.testing.assert_array_equal(np.asarray(back.states), np.asarray(sol.states))
    assert back.state_names == sol.state_names
    again = sb.Solution.from_dict(sol.to_dict())
    pd.testing.assert_frame_equal(again.to_pandas(), sol.to_pandas())
    fig, ax = plt.subplots()
    assert sol.plot(ax=ax) is ax and len(ax.lines) == len(sol.names)
    plt.close(fig)


def test_ensemble_round_trip_table_and_plot(tmp_path, oscillator):
    ens = sb.simulate_ensemble(oscillator, {"w": [0.5, 1.0, 2.0]}, T)
    back = sb.load(sb.save(ens, tmp_path / "e.npz"))
    assert isinstance(back, sb.EnsembleSolution) and back.parameter_names == ("w",)
    np.testing.assert_array_equal(np.asarray(back.states), np.asarray(ens.states))
    np.testing.assert_array_equal(np.asarray(back.success), np.asarray(ens.success))
    table = ens.to_pandas()
    assert len(table) == 3 * len(T) and table["param_w"].iloc[-1] == 2.0
    fig, ax = plt.subplots()
    assert ens.plot(ax=ax, name="v") is ax and ax.get_ylabel() == "v"
    plt.close(fig)


def test_python_model_cannot_be_saved(tmp_path, decay):
    with pytest.raises(SerializationError, match="defined by Python functions"):
        sb.save(decay, tmp_path / "d.npz")


def test_wrong_kind_version_and_garbage(tmp_path, oscillator):
    sol_path = sb.save(sb.simulate(oscillator, T), tmp_path / "s.npz")
    with pytest.raises(SerializationError, match="holds a 'solution', expected a 'model'"):
        sb.load(sol_path, kind="model")
    future = write_archive(tmp_path / "f.npz", "model", {}, {})
    with zipfile.ZipFile(future) as z:
        header = json.loads(np.load(z.open("__meta__.npy")).tobytes())
    header["format_version"] = 99
    np.savez(tmp_path / "g.npz",
             __meta__=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))
    with pytest.raises(SerializationError, match="version 99 is not supported"):
        sb.load(tmp_path / "g.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(SerializationError, match="not a scalebridge file"):
        sb.load(tmp_path / "junk.npz")
    with pytest.raises(SerializationError, match="no such file"):
        sb.load(tmp_path / "missing.npz")


def test_object_arrays_are_refused(tmp_path):
    with pytest.raises(SerializationError, match="dtype object"):
        write_archive(tmp_path / "o.npz", "model", {"x": np.array([{}], dtype=object)}, {})
    arrays, meta, kind = read_archive(write_archive(tmp_path / "ok.npz", "thing",
                                                    {"x": np.arange(3)}, {"a": 1}))
    assert kind == "thing" and meta == {"a": 1}
    np.testing.assert_array_equal(arrays["x"], np.arange(3))
