"""PINN cases from TOML files: ``scalebridge pinn CASE.toml --out DIR`` at small size, and
clear errors for bad cases."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from scalebridge.cli.app import main
from scalebridge.pinn import load_case

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _small(src: Path, dst: Path, replace: dict[str, str]) -> Path:
    """A copy of an example case with its data files and some lines replaced."""
    for f in src.parent.glob("*.csv"):
        shutil.copy(f, dst / f.name)
    text = src.read_text()
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    out = dst / src.name
    out.write_text(text)
    return out


def test_eikonal_case_beats_linear_interpolation(tmp_path, capsys):
    case = _small(EXAMPLES / "pinn_eikonal" / "eikonal.toml", tmp_path, {
        "steps = 5000": "steps = 600", "lbfgs = { steps = 3000 }": "lbfgs = { steps = 400 }",
        "collocation = 1000": "collocation = 300", 'baselines = ["linear", "gp"]':
        'baselines = ["linear"]', "width = 32, depth = 4": "width = 20, depth = 3"})
    code = main(["pinn", str(case), "--out", str(tmp_path / "out"), "--quiet"])
    assert code == 0, capsys.readouterr().err
    res = json.loads((tmp_path / "out" / "result.json").read_text())
    comp = res["comparison"]
    print("eikonal small:", {k: round(v["rmse"], 5) for k, v in comp.items()},
          "speed errors", {k: round(v["speed_relative_error"], 3) for k, v in comp.items()})
    assert comp["pinn"]["rmse"] < comp["linear"]["rmse"]
    assert res["fields"]["T"]["rmse"] == comp["pinn"]["rmse"]
    for f in ("network.eqx", "prediction.csv", "losses.png", "fields.png", "checkpoint.eqx"):
        assert (tmp_path / "out" / f).is_file()
    assert "pinn: RMSE" in capsys.readouterr().out


_BASE = """
[domain]
x = [0.0, 1.0]
t = [0.0, 1.0]
[model]
outputs = ["u"]
pde = ["u_t - D*u_xx"]
initial = ["sin(pi*x)"]
boundary = [{ kind = "dirichlet", value = 0.0 }]
[estimate]
D = 0.5
[data]
file = "data.csv"
[training]
adam = { steps = 3 }
lbfgs = { steps = 0 }
"""


def _write(tmp_path, text, data="x,t,u\n0.5,0.5,0.3\n"):
    (tmp_path / "data.csv").write_text(data)
    p = tmp_path / "case.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("edit, data, match", [
    (("[estimate]\nD = 0.5", "[estimate]\nDD = 0.5"), None, "uses 'D', which is not an output"),
    (("pde = [", "zoo = \"sir\"\npde = ["), None, "exactly one of zoo"),
    (("[training]", "[training]\nepochs = 3"), None, "unknown key 'epochs' in \\[training\\]"),
    (("[data]", "[dta]"), None, "unknown section \\[dta\\]"),
    (None, "x,t,v\n0.5,0.5,0.3\n", "column 'v' is not a field of the model"),
    (None, "x,t,u\n2.0,0.5,0.3\n", "x \\[2.0\\] lie outside the domain"),
    (("x = [0.0, 1.0]", "x = [1.0, 0.0]"), None, "x = \\[1.0, 0.0\\]; give \\[lo, hi\\]"),
    (("initial = [\"sin(pi*x)\"]", "initial = [\"sin(pi*x\"]"), None, "cannot parse formula"),
])
def test_bad_case_files_get_one_clear_line(tmp_path, capsys, edit, data, match):
    text = _BASE if edit is None else _BASE.replace(*edit)
    case = _write(tmp_path, text, data or "x,t,u\n0.5,0.5,0.3\n")
    code = main(["pinn", str(case), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    print(err)
    assert code == 1 and err.count("\n") == 1 and err.startswith("error: ")
    import re
    assert re.search(match, err), err


def test_zoo_cases_check_parameter_and_observable_names(tmp_path):
    ode = """[domain]\nt = [0.0, 10.0]\n[model]\nzoo = "yeast_glycolysis"\n"""
    with pytest.raises(Exception, match="'kk' is not a parameter"):
        load_case(_write(tmp_path, ode + "[estimate]\nkk = 1.0\n"))
    with pytest.raises(Exception, match="'S9' is neither a state nor an observable"):
        load_case(_write(tmp_path, ode + "[data]\nfile = \"data.csv\"\n", "t,S9\n1.0,0.2\n"))
    tissue = """[domain]\nx = [0.0, 10.0]\nt = [0.0, 70.0]\n[model]\nzoo = "aliev_panfilov"
diffusion = { u = "D" }\n"""
    with pytest.raises(Exception, match="diffusivity 'D' has no value"):
        load_case(_write(tmp_path, tissue))
    with pytest.raises(Exception, match="\\[estimate\\] 'aa' is not a parameter"):
        load_case(_write(tmp_path, tissue + "params = { D = 0.1 }\n[estimate]\naa = 0.1\n"))
    case = load_case(_write(tmp_path, tissue + "params = { D = 0.1 }\n[estimate]\na = 0.05\n"))
    assert case.outputs == ["u", "v"] and case.coords == ["x", "t"]


def test_nan_loss_stops_with_one_line_naming_the_term(tmp_path, capsys):
    text = _BASE.replace('pde = ["u_t - D*u_xx"]', 'pde = ["log(u - 10)"]')
    code = main(["pinn", str(_write(tmp_path, text)), "--out", str(tmp_path / "out"),
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and "loss term residual = nan" in err and err.count("\n") == 1


def test_glycolysis_case_reports_every_parameter_against_its_truth(tmp_path, capsys):
    case = _small(EXAMPLES / "pinn_glycolysis" / "glycolysis.toml", tmp_path, {
        "steps = 12000": "steps = 150", "steps = 6000, memory = 20": "steps = 0",
        "collocation = 600": "collocation = 100", "width = 64": "width = 16"})
    code = main(["pinn", str(case), "--out", str(tmp_path / "out"), "--quiet"])
    assert code == 0, capsys.readouterr().err
    res = json.loads((tmp_path / "out" / "result.json").read_text())
    params = res["parameters"]
    assert len(params) == 14
    for row in params.values():
        assert row["relative_error"] == pytest.approx(abs(row["value"] - row["truth"])
                                                      / row["truth"])
    assert set(res["fields"]) == {f"S{i}" for i in range(1, 8)}
    pred = np.loadtxt(tmp_path / "out" / "prediction.csv", delimiter=",", skiprows=1)
    y0 = [0.50144272, 1.95478666, 0.19788759, 0.14769148, 0.16059078, 0.16127341, 0.06404702]
    np.testing.assert_allclose(pred[0, 1:], y0, rtol=1e-12)  # the transform imposes y(0)


def test_burgers_case_meets_its_hard_constraints_and_learns(tmp_path, capsys):
    case = _small(EXAMPLES / "pinn_burgers" / "burgers.toml", tmp_path, {
        "collocation = 4096": "collocation = 1024", "steps = 500,": "steps = 300,",
        "steps = 9000, memory = 50, restart_every = 1000":
        "steps = 400, memory = 50, restart_every = 200"})
    code = main(["pinn", str(case), "--out", str(tmp_path / "out"), "--quiet"])
    assert code == 0, capsys.readouterr().err
    res = json.loads((tmp_path / "out" / "result.json").read_text())
    print("burgers small: relative L2", res["relative_l2_error"])
    assert res["relative_l2_error"] < 0.3
    pred = np.loadtxt(tmp_path / "out" / "prediction.csv", delimiter=",", skiprows=1)
    x, t, u = pred.T
    edge, start = np.isclose(np.abs(x), 1.0), t == 0.0
    np.testing.assert_allclose(u[edge], 0.0, atol=1e-12)
    np.testing.assert_allclose(u[start], -np.sin(np.pi * x[start]), atol=1e-12)


def test_aliev_panfilov_case_derives_its_residual_from_the_zoo_cell(tmp_path, capsys):
    case = _small(EXAMPLES / "pinn_aliev_panfilov" / "aliev_panfilov.toml", tmp_path, {
        "collocation = 4000": "collocation = 300", "steps = 3500,": "steps = 60,",
        "lbfgs = { steps = 2500 }": "lbfgs = { steps = 0 }", "depth = 5": "depth = 2"})
    code = main(["pinn", str(case), "--out", str(tmp_path / "out"), "--quiet"])
    assert code == 0, capsys.readouterr().err
    res = json.loads((tmp_path / "out" / "result.json").read_text())
    assert set(res["parameters"]) == {"D", "a", "b"}
    assert res["parameters"]["D"]["truth"] == 0.1
    assert set(res["fields"]) == {"u", "v"}
    assert set(res["losses"]) == {"residual", "initial", "boundary:neumann", "data"}
