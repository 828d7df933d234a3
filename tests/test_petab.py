"""PEtab import and the likelihood of a Problem: benchmark problems, the PEtab test suite,
gradients and bad input."""

import math
import shutil
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import yaml

import scalebridge as sb
from scalebridge.errors import InputError, ScalebridgeError
from scalebridge.infer import Problem, parse_formula
from scalebridge.petab import load_petab

DATA = Path(__file__).parent / "data" / "petab"
BENCHMARKS = {
    "Boehm_JProteomeRes2014": ("Boehm_JProteomeRes2014.yaml", 138.2220),
    "Crauste_CellSystems2017": ("Crauste_CellSystems2017.yaml", 190.9652),
    "Bertozzi_PNAS2020": ("problem.yaml", 158.8643),
}


@pytest.fixture(scope="module")
def boehm():
    return load_petab(DATA / "Boehm_JProteomeRes2014" / "Boehm_JProteomeRes2014.yaml")


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_benchmark_nll_at_nominal(name, boehm):
    yaml_name, ref = BENCHMARKS[name]
    problem = boehm if name.startswith("Boehm") else load_petab(DATA / name / yaml_name)
    assert problem.nll() == pytest.approx(ref, rel=1e-4)
    # the explicit nominal vector gives the same value
    assert problem.nll(problem.x_nominal) == pytest.approx(problem.nll(), rel=1e-12)


@pytest.fixture(scope="module")
def boehm_tight():
    return load_petab(DATA / "Boehm_JProteomeRes2014" / "Boehm_JProteomeRes2014.yaml",
                      rtol=1e-12, atol=1e-14)


def test_boehm_gradient_matches_finite_differences(boehm_tight):
    # at the optimum the gradient is small (1e-5 to 1e-2): compare with tolerances tight
    # enough that the solver's error (about 5e-6 at rtol 1e-8) does not dominate
    boehm = boehm_tight
    x = boehm.x_nominal
    value, grad = boehm.nll_and_grad(x)
    assert value == pytest.approx(boehm.nll(x), rel=1e-10)
    # fourth-order central differences: the gradient is small at the optimum, so second-order
    # differences are dominated by their truncation error
    h = 1e-3
    fd = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        fd[i] = (-boehm.nll(x + 2 * e) + 8 * boehm.nll(x + e) - 8 * boehm.nll(x - e)
                 + boehm.nll(x - 2 * e)) / (12 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-4, atol=1e-6 * np.abs(fd).max())


def test_boehm_parameters_and_bounds(boehm):
    assert boehm.parameter_ids[0] == "Epo_degradation_BaF3"
    assert len(boehm.parameter_ids) == 9
    assert set(boehm.parameter_scales) == {"log10"}
    np.testing.assert_allclose(boehm.lower, -5.0)
    np.testing.assert_allclose(boehm.upper, 5.0)
    sims = boehm.simulations()
    assert {"simulation", "sigma"} <= set(sims.columns)
    assert np.all(np.isfinite(sims["simulation"]))
    sols = boehm.simulate_conditions()
    assert list(sols) == [("", "model1_data1")]


# ----- the PEtab test suite ------------------------------------------------------------------
def _petabtests_cases():
    try:
        import petabtests
    except ImportError:
        return Path(), []
    base = Path(petabtests.__file__).parent / "cases" / "v1.0.0" / "sbml"
    return base, sorted(p.name for p in base.iterdir() if p.is_dir() and p.name.isdigit())


CASES_DIR, CASES = _petabtests_cases()
XFAIL: dict[str, str] = {}


@pytest.mark.parametrize(
    "case", [pytest.param(c, marks=pytest.mark.xfail(reason=XFAIL[c], strict=True))
             if c in XFAIL else c for c in CASES])
def test_petab_test_suite(case):
    d = CASES_DIR / case
    solution = yaml.safe_load((d / f"_{case}_solution.yaml").read_text())
    problem = load_petab(d / f"_{case}.yaml")
    assert -problem.nll() == pytest.approx(solution["llh"], abs=solution["tol_llh"])
    assert problem.chi2() == pytest.approx(solution["chi2"], abs=solution["tol_chi2"])
    ours = problem.simulations()
    for f in solution["simulation_files"]:
        ref = pd.read_csv(d / f, sep="\t")
        np.testing.assert_allclose(ours["simulation"].to_numpy(), ref["simulation"].to_numpy(),
                                   atol=solution["tol_simulations"])


# ----- formulas ------------------------------------------------------------------------------
def test_formula_compiles_petab_functions():
    f = parse_formula("piecewise(1, x > 2, 0) + log10(x)^2 + pow(-2, 2) + log(x, 2) + abs(-x)")
    assert f.symbols == {"x"}
    out = np.asarray(f({"x": jnp.asarray([1.0, 3.0])}))
    expected = [0 + 0 + 4 + 0 + 1, 1 + math.log10(3) ** 2 + 4 + math.log2(3) + 3]
    np.testing.assert_allclose(out, expected, rtol=1e-12)


# ----- Problem without PEtab -----------------------------------------------------------------
def test_from_table_recovers_decay_likelihood(decay):
    t = np.array([0.5, 1.0, 2.0, 4.0])
    y = 2.0 * np.exp(-0.5 * t)
    data = pd.DataFrame({"time": t, "observable": "y", "value": y + 0.01, "sigma": 0.1})
    problem = Problem.from_table(decay, data)
    assert problem.parameter_ids == ("k", "y0")
    expected = 4 * (0.5 * np.log(2 * np.pi * 0.01) + 0.5 * (0.01 / 0.1) ** 2)
    assert problem.nll() == pytest.approx(expected, rel=1e-6)
    assert problem.chi2() == pytest.approx(4 * 0.01, rel=1e-6)
    _, grad = problem.nll_and_grad()
    assert grad.shape == (2,)
    # estimated noise level when no sigma column is given
    p2 = Problem.from_table(decay, data.drop(columns="sigma"))
    assert p2.parameter_ids == ("k", "y0", "sigma_y")
    np.testing.assert_allclose(p2.nll(), 4 * (0.5 * np.log(2 * np.pi) + 0.5 * 0.01**2))


def test_from_table_laplace_and_unknown_observable(decay):
    data = pd.DataFrame({"time": [1.0], "observable": ["twice"], "value": [1.0], "sigma": [0.5]})
    problem = Problem.from_table(decay, data, noise="laplace")
    sim = 4.0 * math.exp(-0.5)
    assert problem.nll() == pytest.approx(math.log(2 * 0.5) + abs(1.0 - sim) / 0.5, rel=1e-6)
    with pytest.raises(InputError, match="observable 'nope' is not a state or observable"):
        Problem.from_table(decay, data.assign(observable="nope"))


# ----- bad input -----------------------------------------------------------------------------
@pytest.fixture
def boehm_copy(tmp_path):
    dst = tmp_path / "boehm"
    shutil.copytree(DATA / "Boehm_JProteomeRes2014", dst)
    return dst


def _edit(path: Path, fn):
    df = pd.read_csv(path, sep="\t", dtype=object, keep_default_na=False)
    fn(df).to_csv(path, sep="\t", index=False)


MEAS = "measurementData_Boehm_JProteomeRes2014.tsv"
OBS = "observables_Boehm_JProteomeRes2014.tsv"
PARS = "parameters_Boehm_JProteomeRes2014.tsv"
YAML = "Boehm_JProteomeRes2014.yaml"


def test_missing_required_column(boehm_copy):
    _edit(boehm_copy / MEAS, lambda df: df.drop(columns="time"))
    with pytest.raises(InputError, match=rf"{MEAS}: required column 'time' is missing"):
        load_petab(boehm_copy / YAML)


def _set_cell(row: int, column: str, value: str):
    def edit(df):
        df.loc[row, column] = value
        return df
    return edit


@pytest.mark.parametrize(
    "table, row, column, value, match",
    [
        (MEAS, 3, "observableId", "pSTAT5C_rel",
         r"row 5: observableId 'pSTAT5C_rel' is not in the observable table"),
        (OBS, 1, "observableFormula", "(100 * pApB +* 2",
         rf"{OBS}, row 3, column 'observableFormula': cannot parse formula"),
        (PARS, 0, "lowerBound", "-1",
         r"'Epo_degradation_BaF3' is on log10 scale but its lowerBound is negative"),
        (MEAS, 2, "measurement", "NaN", rf"{MEAS}, row 4: measurement is nan"),
    ],
    ids=["unknown_observable", "unparseable_formula", "negative_log_bound", "nan_measurement"],
)
def test_bad_table_cell(boehm_copy, table, row, column, value, match):
    _edit(boehm_copy / table, _set_cell(row, column, value))
    with pytest.raises(InputError, match=match):
        load_petab(boehm_copy / YAML)


def test_unknown_condition_column(boehm_copy):
    cond = boehm_copy / "experimentalCondition_Boehm_JProteomeRes2014.tsv"
    _edit(cond, lambda df: df.assign(kk_unknown="1.0"))
    with pytest.raises(InputError, match="sets 'kk_unknown', which is not a parameter or state"):
        load_petab(boehm_copy / YAML)


def test_wrong_parameter_vector(boehm):
    with pytest.raises(InputError, match="expected \\(9,\\)"):
        boehm.nll(np.zeros(3))
    assert issubclass(InputError, ScalebridgeError)
    assert sb.errors.InputError is InputError
