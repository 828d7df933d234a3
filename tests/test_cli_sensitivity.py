"""``scalebridge sensitivity``: files written, indices sane, one-line errors."""

import json

import numpy as np
import pandas as pd
import pytest

from conftest import assert_one_line_error
from scalebridge.cli.app import main


def test_sobol_writes_json_csv_png(tmp_path, capsys):
    out = tmp_path / "sens"
    code = main(["sensitivity", "sir", "--output", "max:I", "--t-end", "30",
                 "--points", "31", "--samples", "32", "--vary", "beta=0.2:0.4",
                 "--vary", "gamma=0.05:0.2:log", "--bootstrap", "100", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "S1" in printed and "beta" in printed
    data = json.loads((out / "indices.json").read_text())
    assert data["kind"] == "sobol" and data["names"] == ["beta", "gamma"]
    assert data["n_samples"] == 32 and data["n_evaluations"] == 32 * 4 and data["n_nonfinite"] == 0
    assert data["distributions"] == ["uniform(0.2, 0.4)", "loguniform(0.05, 0.2)"]
    table = pd.read_csv(out / "indices.csv", index_col="parameter")
    assert list(table.index) == ["beta", "gamma"]
    np.testing.assert_allclose(table["ST"], data["ST"])
    assert np.all(table["ST"] > 0.05) and np.all(table["S1_conf"] > 0)
    assert (out / "indices.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = np.load(out / "evaluations.npz")
    assert saved["done"].all() and saved["y"].shape == (32 * 4,)
    # a rerun resumes from the saved simulations and reports the same indices
    assert main(["sensitivity", "sir", "--output", "max:I", "--t-end", "30", "--points", "31",
                 "--samples", "32", "--vary", "beta=0.2:0.4", "--vary", "gamma=0.05:0.2:log",
                 "--bootstrap", "100", "--out", str(out)]) == 0
    assert json.loads((out / "indices.json").read_text())["ST"] == data["ST"]


def test_morris_default_ranges_and_threads(tmp_path, capsys):
    out = tmp_path / "m"
    code = main(["sensitivity", "sir", "--output", "auc:I", "--t-end", "30", "--points", "31",
                 "--method", "morris",
                 "--samples", "6", "--workers", "2", "--out", str(out)])
    assert code == 0
    data = json.loads((out / "indices.json").read_text())
    assert data["kind"] == "morris" and data["trajectories"] == 6
    d = len(data["names"])
    assert data["n_evaluations"] == 6 * (d + 1)
    assert all(s.startswith("loguniform(") for s in data["distributions"])
    assert "mu_star" in capsys.readouterr().out


@pytest.mark.parametrize("extra, match", [
    (["--output", "peak(I)"], "is not understood"),
    (["--output", "max:Q", "--t-end", "10"], "no observable or state 'Q'"),
    (["--output", "max:I"], "needs t_end"),
    (["--output", "I@10", "--vary", "zeta=0:1"], "no parameter 'zeta'"),
    (["--output", "I@10", "--vary", "beta=2:1"], "need low < high"),
    (["--output", "I@10", "--method", "sobel"], "--method 'sobel'"),
    (["--output", "I@10", "--samples", "1"], "--samples 1"),
    (["--output", "I@10", "--samples", "8"], "too small for bootstrap"),
    (["--output", "I@10", "--workers", "2", "--scheduler", "h:1"], "exclude each other"),
    (["--output", "I@10", "--method", "morris", "--levels", "3"], "even"),
])
def test_bad_input_is_one_line_error(tmp_path, capsys, extra, match):
    argv = ["sensitivity", "sir", "--out", str(tmp_path / "x"), *extra]
    assert_one_line_error(main, argv, capsys, match)
