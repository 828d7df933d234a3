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


@pytest.mark.slow  # about 30 s; test_eikonal_readme_case_meets_its_claim is the full case
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
    # reference: the closed-form activation map of the case (Sahli Costabal et al. 2020),
    # T = min(|x|, 0.7 |x - (1, 1)|), conduction velocity 1 or 1/0.7, on the 101 x 101 grid
    x, y, T, c = np.loadtxt(tmp_path / "out" / "prediction.csv", delimiter=",",
                            skiprows=1).T
    near, far = np.hypot(x, y), 0.7 * np.hypot(x - 1, y - 1)
    rmse = np.sqrt(np.mean((T - np.minimum(near, far)) ** 2))
    c_exact = np.where(near <= far, 1.0, 1 / 0.7)
    c_err = np.linalg.norm(c - c_exact) / np.linalg.norm(c_exact)
    print(f"eikonal small: RMSE of T {rmse:.2e}, relative L2 of c {c_err:.2e}")
    assert rmse == pytest.approx(comp["pinn"]["rmse"], rel=1e-6)
    assert rmse < 0.02  # measured 0.0096 with this budget (README, full budget: 0.0044)
    assert c_err < 0.2  # measured 0.10
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
    # the truth the report scores against is the literature's parameter set (Ruoff et al.
    # 2003, table 1 of Yazdani et al. 2020), typed here, not read from the case
    assert {k: v["truth"] for k, v in params.items()} == {
        "J0": 2.5, "k1": 100.0, "k2": 6.0, "k3": 16.0, "k4": 100.0, "k5": 1.28, "k6": 12.0,
        "k": 1.8, "kappa": 13.0, "q": 4.0, "K1": 0.52, "psi": 0.1, "N": 1.0, "A": 4.0}
    assert set(res["fields"]) == {f"S{i}" for i in range(1, 8)}
    pred = np.loadtxt(tmp_path / "out" / "prediction.csv", delimiter=",", skiprows=1)
    y0 = [0.50144272, 1.95478666, 0.19788759, 0.14769148, 0.16059078, 0.16127341, 0.06404702]
    np.testing.assert_allclose(pred[0, 1:], y0, rtol=1e-12)  # the transform imposes y(0)
    # accuracy of the two observed species against the case's reference solution (the
    # zoo model at the literature parameters, rtol 1e-10): 150 Adam steps fit them to a
    # relative L2 of 0.29 (S5) and 0.36 (S6), where the constant S(0) is at 0.41 and 0.93.
    # The full budget is a documented miss (README: 1 of 14 within 5%).
    ref = np.loadtxt(EXAMPLES / "pinn_glycolysis" / "reference.csv", delimiter=",",
                     skiprows=1)
    np.testing.assert_allclose(pred[:, 0], ref[:, 0], atol=1e-12)
    rel = {i: np.linalg.norm(pred[:, i] - ref[:, i]) / np.linalg.norm(ref[:, i])
           for i in (5, 6)}
    print("glycolysis small: relative L2 of S5, S6", rel)
    assert rel[5] < 0.35 and rel[6] < 0.45
    assert rel[5] == pytest.approx(res["fields"]["S5"]["relative_l2_error"], rel=1e-6)


def test_burgers_case_meets_its_hard_constraints_and_learns(tmp_path, capsys):
    case = _small(EXAMPLES / "pinn_burgers" / "burgers.toml", tmp_path, {
        "collocation = 4096": "collocation = 1024", "steps = 500,": "steps = 300,",
        "steps = 9000, memory = 50, restart_every = 1000":
        "steps = 400, memory = 50, restart_every = 200"})
    code = main(["pinn", str(case), "--out", str(tmp_path / "out"), "--quiet"])
    assert code == 0, capsys.readouterr().err
    res = json.loads((tmp_path / "out" / "result.json").read_text())
    pred = np.loadtxt(tmp_path / "out" / "prediction.csv", delimiter=",", skiprows=1)
    x, t, u = pred.T
    # reference: the Cole-Hopf solution on the case's 256 x 101 grid (reference.csv, by
    # quadrature; test_pinn checks it against the PDE by finite differences). With 700
    # steps the shock at x = 0 is still smeared: measured 0.144 (README: 7.3e-4 after 9,500
    # steps, held by the slow test below)
    ref = np.loadtxt(EXAMPLES / "pinn_burgers" / "reference.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(pred[:, :2], ref[:, :2], atol=1e-12)
    err = np.linalg.norm(u - ref[:, 2]) / np.linalg.norm(ref[:, 2])
    print("burgers small: relative L2", err)
    assert err < 0.2
    assert err == pytest.approx(res["relative_l2_error"], rel=1e-6)
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


def _full(name: str, toml: str, tmp_path: Path) -> dict:
    """Run an example case exactly as documented; its result.json."""
    case = _small(EXAMPLES / name / toml, tmp_path, {})  # with data and reference files
    assert main(["pinn", str(case), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    return json.loads((tmp_path / "out" / "result.json").read_text())


@pytest.mark.slow  # the README's Burgers case: 9,500 steps, 8.5 minutes here
def test_burgers_readme_case_meets_its_claim(tmp_path):
    """README: relative L2 error 7.3e-4 against the Cole-Hopf solution (target <= 1e-3);
    re-measured 7.43e-4."""
    res = _full("pinn_burgers", "burgers.toml", tmp_path)
    print("burgers full: relative L2", res["relative_l2_error"])
    assert res["relative_l2_error"] <= 1e-3


@pytest.mark.slow  # the README's eikonal case: 8,000 steps, 4.3 minutes here
def test_eikonal_readme_case_meets_its_claim(tmp_path):
    """README: RMSE of T 0.0044 against the reference activation map, below linear
    interpolation (0.0306) and the GP (0.0106); conduction velocity error 5.9%. Re-measured:
    RMSE 0.0042 (linear 0.0306, GP 0.0106)."""
    res = _full("pinn_eikonal", "eikonal.toml", tmp_path)
    comp = res["comparison"]
    print("eikonal full:", {k: v["rmse"] for k, v in comp.items()})
    assert comp["pinn"]["rmse"] <= 0.005
    assert comp["pinn"]["rmse"] < min(comp["linear"]["rmse"], comp["gp"]["rmse"])
    assert comp["pinn"]["speed_relative_error"] <= 0.07


def test_glycolysis_reference_and_data_match_the_independent_model():
    """The case's reference.csv and data.csv (written by make_data.py with scalebridge) agree
    with the independent NumPy version of Ruoff et al. (2003) in tests/zoo_reference.py,
    integrated by scipy (measured: 5e-10 relative; the files carry 10 significant digits)."""
    import zoo_reference

    here = Path(__file__).resolve().parents[1] / "examples" / "pinn_glycolysis"
    ref = np.loadtxt(here / "reference.csv", delimiter=",", skiprows=1)
    y = np.asarray(zoo_reference.simulate_yeast_glycolysis(ref[:, 0]))
    np.testing.assert_allclose(ref[:, 1:], y, rtol=1e-7, atol=1e-9)
    data = np.loadtxt(here / "data.csv", delimiter=",", skiprows=1)
    y = np.asarray(zoo_reference.simulate_yeast_glycolysis(data[:, 0]))
    np.testing.assert_allclose(data[:, 1:], y[:, [4, 5]], rtol=1e-7, atol=1e-9)
