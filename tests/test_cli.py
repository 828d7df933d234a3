"""The command line: main job, zoo listing, one-line errors with non-zero exit."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import assert_one_line_error
from scalebridge.cli.app import main


def test_simulate_writes_csv_and_png(tmp_path, capsys):
    out, png = tmp_path / "lv.csv", tmp_path / "lv.png"
    code = main(["simulate", "lotka_volterra", "--t-end", "10", "--points", "51",
                 "--param", "alpha=1.2", "--out", str(out), "--plot", str(png)])
    assert code == 0
    df = pd.read_csv(out, index_col="time")
    assert len(df) == 51
    np.testing.assert_allclose(df.index.values, np.linspace(0, 10, 51))
    assert np.all(np.isfinite(df.values)) and np.all(df.values > 0)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_param_override_changes_result(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert main(["simulate", "lotka_volterra", "--t-end", "5", "--out", str(a)]) == 0
    assert main(["simulate", "lotka_volterra", "--t-end", "5", "--param", "alpha=2.0",
                 "--out", str(b)]) == 0
    assert not np.allclose(pd.read_csv(a).values, pd.read_csv(b).values)


def test_models_lists_the_zoo(capsys):
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    for name in ("lotka_volterra", "beeler_reuter", "yeast_glycolysis", "lorenz"):
        assert name in text


def test_ensemble_command(tmp_path):
    out = tmp_path / "ens.csv"
    code = main(["ensemble", "lotka_volterra", "--t-end", "5", "--points", "6",
                 "--vary", "alpha=0.5:1.5", "--vary", "beta=0.1:1:log", "--samples", "5",
                 "--batch-size", "2", "--out", str(out)])
    assert code == 0
    df = pd.read_csv(out)
    assert len(df) == 5 * 6
    assert df["success"].all()
    assert df["param_alpha"].between(0.5, 1.5).all()


@pytest.mark.parametrize(
    "argv, match",
    [
        (["simulate", "no_such_model", "--t-end", "1", "--out", "x.csv"], "no_such_model"),
        (["simulate", "lotka_volterra", "--t-end", "1", "--out", "x.txt"], "CSV"),
        (["simulate", "lotka_volterra", "--t-end", "1", "--param", "zz=1", "--out", "x.csv"],
         "no parameter 'zz'"),
        (["simulate", "lotka_volterra", "--t-end", "1", "--param", "alpha", "--out", "x.csv"],
         "name=value"),
        (["simulate", "lotka_volterra", "--t-end", "-1", "--out", "x.csv"], "after"),
        (["simulate", "missing.xml", "--t-end", "1", "--out", "x.csv"], "missing.xml"),
        (["simulate", "lotka_volterra", "--t-end", "abc", "--out", "x.csv"], "--t-end"),
        (["ensemble", "lotka_volterra", "--t-end", "1", "--vary", "alpha=2:1",
          "--out", "x.csv"], "low < high"),
    ],
)
def test_bad_arguments_print_one_line(argv, match, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(main, argv, capsys, match)


def test_console_script_exit_code(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text("<sbml><model>")
    proc = subprocess.run([sys.executable, "-m", "scalebridge.cli.app", "simulate", str(bad),
                           "--t-end", "1", "--out", str(tmp_path / "x.csv")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "bad.xml" in proc.stderr
    assert "Traceback" not in proc.stderr
