"""``scalebridge simulate --grid``: spatial models written as fields, plots, animations."""

import numpy as np
import pytest

import scalebridge as sb
from conftest import assert_one_line_error
from scalebridge.cli.app import main

PNG = b"\x89PNG\r\n\x1a\n"


def test_simulate_1d_grid_writes_npz_png_gif(tmp_path, capsys):
    out, png, gif = tmp_path / "f.npz", tmp_path / "f.png", tmp_path / "f.gif"
    code = main(["simulate", "fisher_kpp", "--grid", "40", "--t-end", "10", "--points", "6",
                 "--param", "r=0.2", "--out", str(out), "--plot", str(png),
                 "--animate", str(gif), "--fps", "4"])
    assert code == 0, capsys.readouterr().err
    ds = sb.load(out).to_xarray()
    assert ds["u"].shape == (6, 40) and ds["u"].dims == ("time", "x")
    np.testing.assert_allclose(ds["time"], np.linspace(0, 10, 6))
    assert ds["x"][-1] == pytest.approx(1000.0)  # um
    assert np.all(np.isfinite(ds["u"])) and float(ds["u"].max()) <= 1.0 + 1e-6
    assert ds.attrs["units_space"] == "um"
    assert png.read_bytes()[:8] == PNG
    assert gif.read_bytes()[:6] == b"GIF89a"


def test_simulate_2d_grid_writes_npz_png_gif(tmp_path, capsys):
    out, png, gif = tmp_path / "ap.npz", tmp_path / "ap.png", tmp_path / "ap.gif"
    code = main(["simulate", "aliev_panfilov", "--grid", "16x12", "--t-end", "4",
                 "--points", "5", "--out", str(out), "--plot", str(png),
                 "--animate", str(gif)])
    assert code == 0, capsys.readouterr().err
    ds = sb.load(out).to_xarray()
    assert set(ds.data_vars) == {"u", "v"}
    assert ds["u"].shape == (5, 16, 12) and ds["u"].dims == ("time", "x", "y")
    assert float(ds["u"].isel(time=-1, x=0).min()) > 0.5  # the S1 stimulus excited the edge
    assert png.read_bytes()[:8] == PNG
    assert gif.read_bytes()[:6] == b"GIF89a"


def test_simulate_without_grid_is_unchanged(tmp_path):
    out = tmp_path / "ap.csv"
    assert main(["simulate", "aliev_panfilov", "--t-end", "5", "--points", "6",
                 "--out", str(out)]) == 0
    assert out.read_text().startswith("time,u,v")


@pytest.mark.parametrize(
    "argv, match",
    [
        (["simulate", "fisher_kpp", "--grid", "abc", "--t-end", "1", "--out", "x.npz"],
         "--grid 200"),
        (["simulate", "fisher_kpp", "--grid", "2", "--t-end", "1", "--out", "x.npz"],
         "at least 3 nodes"),
        (["simulate", "fisher_kpp", "--grid", "10x10x10", "--t-end", "1", "--out", "x.npz"],
         "NXxNY"),
        (["simulate", "no_such_model", "--grid", "20", "--t-end", "1", "--out", "x.npz"],
         "no spatial model named 'no_such_model'"),
        (["simulate", "lotka_volterra", "--grid", "20", "--t-end", "1", "--out", "x.npz"],
         "spatial models: fisher_kpp"),
        (["simulate", "gray_scott", "--grid", "50", "--t-end", "1", "--out", "x.npz"],
         "square 2D grid"),
        (["simulate", "fisher_kpp", "--grid", "20", "--t-end", "1", "--out", "x.csv"], ".npz"),
        (["simulate", "fisher_kpp", "--grid", "20", "--t-end", "1", "--out", "x.npz",
          "--animate", "x.png"], ".gif"),
        (["simulate", "fisher_kpp", "--grid", "20", "--t-end", "1", "--out", "x.npz",
          "--init", "u=1"], "--init"),
        (["simulate", "fisher_kpp", "--t-end", "1", "--out", "x.csv"], "--grid"),
        (["simulate", "lotka_volterra", "--t-end", "1", "--out", "x.csv",
          "--animate", "x.gif"], "--grid"),
    ],
)
def test_bad_spatial_arguments_print_one_line(argv, match, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(main, argv, capsys, match)


def test_coarse_grid_warns_with_points_per_front(tmp_path, capsys):
    out = tmp_path / "coarse.npz"
    code = main(["simulate", "aliev_panfilov", "--grid", "12", "--t-end", "60", "--points",
                 "31", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0 and out.is_file()
    assert "warning: the wavefront spans only" in err and "finer --grid" in err
