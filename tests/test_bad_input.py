"""Every class of bad input found by trying the command line as a hostile user: each gets a
non-zero exit and one ``error:`` line naming the input (no traceback, no hang, no file
content quoted), or a ``warning:`` line on stderr where the result stands but needs care."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import assert_one_line_error, peer
from scalebridge.cli.app import main
from scalebridge.errors import SerializationError


@pytest.fixture
def case(tmp_path):
    """A copy of PEtab test case 0001 (a two-state conversion, two measurements)."""
    petabtests = peer("petabtests")
    src = Path(petabtests.__file__).parent / "cases" / "v1.0.0" / "sbml" / "0001"
    shutil.copytree(src, tmp_path / "case", ignore=shutil.ignore_patterns("*.py",
                                                                          "__pycache__"))
    return tmp_path / "case"


def _fit(case, tmp_path):
    return ["fit", str(case / "_0001.yaml"), "--starts", "1", "--max-iter", "3", "--out",
            str(tmp_path / "out")]


def _edit(path: Path, edit):
    df = pd.read_csv(path, sep="\t", dtype=object)
    edit(df)
    df.to_csv(path, sep="\t", index=False)


def test_non_utf8_yaml_and_sbml(case, tmp_path, capsys):
    yaml_file = case / "_0001.yaml"
    yaml_file.write_bytes(yaml_file.read_bytes() + "# caf\xe9\n".encode("latin-1"))
    assert_one_line_error(main, _fit(case, tmp_path), capsys, "is not UTF-8 text")
    bad = tmp_path / "m.xml"
    bad.write_bytes((case / "_model.xml").read_bytes().replace(
        b"<model ", "<!-- caf\xe9 --><model ".encode("latin-1"), 1))
    assert_one_line_error(main, ["simulate", str(bad), "--t-end", "1", "--out",
                                 str(tmp_path / "x.csv")], capsys, "not UTF-8 text")


@pytest.mark.parametrize("text, match", [
    ("- a\n- list\n", "a mapping"),
    ("format_version: 1\nparameter_file: [1, 2]\nproblems: 5\n", "'problems' must be a list"),
    ("format_version: 1\nparameter_file: _parameters.tsv\nproblems:\n- sbml_files: 3\n"
     "  condition_files: [_conditions.tsv]\n  measurement_files: [_measurements.tsv]\n"
     "  observable_files: [_observables.tsv]\n", "'sbml_files' must be a file name"),
    ("format_version: 1\nproblems: [{a: [1, 2}\n", "line 2: not valid YAML"),
])
def test_yaml_of_the_wrong_structure(case, tmp_path, capsys, text, match):
    (case / "_0001.yaml").write_text(text)
    assert_one_line_error(main, _fit(case, tmp_path), capsys, match)


def test_yaml_alias_bomb_is_refused_before_it_is_walked(case, tmp_path, capsys):
    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n' + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n"
        for i in range(8))
    yaml_file = case / "_0001.yaml"
    yaml_file.write_text(yaml_file.read_text() + bomb)
    assert_one_line_error(main, _fit(case, tmp_path), capsys, "expands (through its aliases)")


def test_invalid_sbml_is_refused(case, tmp_path, capsys):
    xml = case / "_model.xml"
    text = xml.read_text()
    assert "<listOfParameters>" in text
    # a parameter with the id of a species: libsbml's identifier rule 10301
    species = text.split('<species id="')[1].split('"')[0]
    xml.write_text(text.replace("<listOfParameters>", "<listOfParameters>\n"
                                f'<parameter id="{species}" value="1" constant="true"/>', 1))
    assert_one_line_error(main, _fit(case, tmp_path), capsys, "rule 10301")


@pytest.mark.parametrize("table, column", [
    ("_observables.tsv", "observableId"), ("_parameters.tsv", "parameterId"),
    ("_conditions.tsv", "conditionId")])
def test_duplicate_ids_are_refused(case, tmp_path, capsys, table, column):
    _edit(case / table, lambda df: df.loc.__setitem__(len(df), df.iloc[0].tolist()))
    assert main(_fit(case, tmp_path)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{table}, rows 2 and" in err
    assert f"{column} " in err and "appears twice" in err


@pytest.mark.parametrize("column, value, match", [
    ("noiseParameters", "-1", "sigma must be positive and finite"),
    ("noiseParameters", "0", "sigma must be positive and finite"),
    ("measurement", "1e308", "magnitude at most"),
    ("time", "1e300", "give times from 0 to"),
])
def test_measurements_that_would_give_a_nan_likelihood(case, tmp_path, capsys, column, value,
                                                        match):
    meas = case / "_measurements.tsv"
    df = pd.read_csv(meas, sep="\t", dtype=object)
    if column == "noiseParameters":  # a numeric sigma in the table, used by the formula
        _edit(case / "_observables.tsv",
              lambda o: o.__setitem__("noiseFormula", "noiseParameter1_" + o["observableId"]))
    df[column] = df[column].astype(object) if column in df.columns else "0.5"
    df.loc[0, column] = value
    if column == "noiseParameters":
        df.loc[1:, column] = "0.5"
    df.to_csv(meas, sep="\t", index=False)
    assert_one_line_error(main, _fit(case, tmp_path), capsys, match)


def test_a_fixed_negative_sigma_is_refused(case, tmp_path, capsys):
    params = case / "_parameters.tsv"
    params.write_text(params.read_text().rstrip("\n") + "\nsigma_fixed\tlin\t\t\t-1\t0\n")
    _edit(case / "_observables.tsv", lambda o: o.__setitem__("noiseFormula", "sigma_fixed"))
    assert_one_line_error(main, _fit(case, tmp_path), capsys,
                          "is -1 ('sigma_fixed'); sigma must be positive and finite")


def test_errors_never_quote_a_file_named_in_the_yaml(case, tmp_path, capsys):
    (case / "secret.txt").write_text("TOPSECRET password=hunter2\n")
    yaml_file = case / "_0001.yaml"
    yaml_file.write_text(yaml_file.read_text().replace("_measurements.tsv", "secret.txt"))
    assert main(_fit(case, tmp_path)) == 1
    err = capsys.readouterr().err
    assert "secret.txt" in err and "TOPSECRET" not in err and "hunter2" not in err


def test_a_huge_formula_gets_one_short_line(case, tmp_path, capsys):
    _edit(case / "_observables.tsv",
          lambda o: o.__setitem__("observableFormula", "+".join(["A"] * 50_000)))
    assert main(_fit(case, tmp_path)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and len(err) < 500


def test_damaged_checkpoints_and_archives(tmp_path, capsys):
    from scalebridge import trainer

    ckpt = tmp_path / "c.eqx"
    ckpt.write_bytes((2**60).to_bytes(8, "little") + b"{}")  # an absurd header length
    with pytest.raises(SerializationError, match="damaged or truncated"):
        trainer._load(ckpt, {}, {})
    ckpt.write_bytes((10).to_bytes(8, "little") + b'{"a": [1, ')  # truncated
    with pytest.raises(SerializationError, match="delete it"):
        trainer._load(ckpt, {}, {})
    bad = tmp_path / "model.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip file")
    assert_one_line_error(main, ["simulate", str(bad), "--t-end", "1", "--out",
                                 str(tmp_path / "x.csv")], capsys, "not a scalebridge file")
    from scalebridge.io import write_archive

    write_archive(tmp_path / "m2.npz", "model", {}, {"name": "x"})  # keys missing
    assert_one_line_error(main, ["simulate", str(tmp_path / "m2.npz"), "--t-end", "1",
                                 "--out", str(tmp_path / "x.csv")], capsys, "corrupt 'model'")


@pytest.mark.parametrize("argv, match", [
    (["tissue", "fitzhugh_nagumo", "--grid", "41", "--t-end", "5", "--dt", "1e-12"],
     "more than the limit"),
    (["sensitivity", "sir", "--output", "max:I", "--t-end", "10", "--points",
      "1000000000000"], "points must be between 3 and"),
    (["ensemble", "sir", "--t-end", "10", "--vary", "beta=0.1:0.5", "--samples",
      "1000000000", "--points", "1000"], "more than the limit"),
    (["simulate", "sir", "--t-end", "10", "--points", "1000000000000"], "more than the limit"),
])
def test_step_counts_and_allocations_are_checked_before_they_start(tmp_path, capsys, argv,
                                                                   match):
    out = tmp_path / ("x.csv" if argv[0] in ("ensemble", "simulate") else "out")
    assert_one_line_error(main, [*argv, "--out", str(out)], capsys, match)


def test_another_command_refuses_a_run_directory(case, tmp_path, capsys):
    assert main(_fit(case, tmp_path)) == 0
    before = (tmp_path / "out" / "result.json").read_bytes()
    toml = tmp_path / "case.toml"
    (tmp_path / "data.csv").write_text("x,t,u\n0.5,0.5,0.3\n")
    toml.write_text('[domain]\nx = [0.0, 1.0]\nt = [0.0, 1.0]\n[model]\noutputs = ["u"]\n'
                    'pde = ["u_t - 0.1*u_xx"]\n[data]\nfile = "data.csv"\n[training]\n'
                    'adam = { steps = 2 }\nlbfgs = { steps = 0 }\n')
    assert_one_line_error(main, ["pinn", str(toml), "--out", str(tmp_path / "out"),
                                 "--quiet"], capsys, "holds a fit run; a pinn run cannot use it")
    assert (tmp_path / "out" / "result.json").read_bytes() == before


def test_warnings_go_to_stderr(tmp_path, capsys):
    assert main(["sensitivity", "sir", "--output", "max:I", "--t-end", "20", "--samples",
                 "8", "--bootstrap", "0", "--out", str(tmp_path / "sa")]) == 0
    captured = capsys.readouterr()
    assert "warning: --bootstrap 0: no confidence intervals" in captured.err
    assert "warning:" not in captured.out
    assert np.isfinite(pd.read_csv(tmp_path / "sa" / "indices.csv")["S1"]).all()
