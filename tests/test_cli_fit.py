"""``scalebridge fit`` on the README's example problem: result.json, plots, resume, errors."""

import json
from pathlib import Path

import pytest

from conftest import assert_one_line_error, peer
from scalebridge.cli.app import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "boehm" / "Boehm_JProteomeRes2014.yaml"


def test_readme_main_job_names_the_example():
    text = (ROOT / "README.md").read_text()
    assert "scalebridge fit examples/boehm/Boehm_JProteomeRes2014.yaml" in text
    assert EXAMPLE.is_file()


def test_fit_writes_results_and_resumes(tmp_path, capsys):
    out = tmp_path / "fit"
    argv = ["fit", str(EXAMPLE), "--starts", "2", "--seed", "0", "--out", str(out),
            "--max-iter", "5"]
    assert main(argv) == 0
    data = json.loads((out / "result.json").read_text())
    for key in ("best_nll", "best_params", "n_starts", "n_converged", "starts"):
        assert key in data
    assert data["n_starts"] == 2 and len(data["starts"]) == 2
    assert set(data["best_params"]) >= {"k_phos", "sd_pSTAT5A_rel"}
    assert all(v > 0 for v in data["best_params"].values())  # linear scale
    assert data["best_nll"] == min(s["nll"] for s in data["starts"])
    assert (out / "waterfall.png").stat().st_size > 0 and (out / "fit.png").stat().st_size > 0
    assert "best NLL" in capsys.readouterr().out
    # resume: one more start runs, the first two are kept as they were
    argv[3] = "3"
    assert main(argv) == 0
    again = json.loads((out / "result.json").read_text())
    assert again["n_starts"] == 3
    assert again["starts"][:2] == data["starts"][:2]


def test_fit_errors_are_one_line(tmp_path, capsys, monkeypatch):
    import functools

    from scalebridge.runtime import executor

    # an unreachable scheduler fails the same way after 1 s as after the default 30 s
    # (test_executor.py checks get_executor's own timeout); the CLI's one-line error is
    # what this test is about
    monkeypatch.setattr(executor, "get_executor",
                        functools.partial(executor.get_executor, timeout=1.0))
    assert_one_line_error(main, ["fit", str(tmp_path / "missing.yaml"), "--out",
                                 str(tmp_path / "o")], capsys, "missing.yaml")
    bad = tmp_path / "model.xml"
    bad.write_text("<sbml/>")
    assert_one_line_error(main, ["fit", str(bad), "--out", str(tmp_path / "o")], capsys,
                          "YAML")
    assert_one_line_error(main, ["fit", str(EXAMPLE), "--out", str(tmp_path / "o"),
                                 "--optimizer", "simplex"], capsys, "optimizer")
    assert_one_line_error(main, ["fit", str(EXAMPLE), "--out", str(tmp_path / "o"),
                                 "--scheduler", "127.0.0.1:1"], capsys, "Dask scheduler")
    assert_one_line_error(main, ["fit", str(EXAMPLE), "--out", str(tmp_path / "o"),
                                 "--workers", "0"], capsys, "--workers")
    assert_one_line_error(main, ["fit", str(EXAMPLE), "--out", str(tmp_path / "o"),
                                 "--workers", "2", "--scheduler", "127.0.0.1:1"], capsys,
                          "exclude each other")


@pytest.mark.parametrize("starts", ["0", "-3"])
def test_fit_rejects_bad_start_counts(tmp_path, capsys, starts):
    assert_one_line_error(main, ["fit", str(EXAMPLE), "--starts", starts, "--out",
                                 str(tmp_path / "o")], capsys, "n_starts")


@pytest.mark.slow  # kept out of the default run for time; run with -m slow
def test_profile_command_around_a_fit(tmp_path, capsys):
    fit_dir = tmp_path / "fit"
    assert main(["fit", str(EXAMPLE), "--starts", "1", "--out", str(fit_dir),
                 "--max-iter", "3"]) == 0
    # around the published optimum instead: write it as a finished fit
    import numpy as np

    from scalebridge.petab import load_petab

    pb = load_petab(EXAMPLE)
    data = json.loads((fit_dir / "result.json").read_text())
    data["starts"][0]["x"] = [float(v) for v in pb.x_nominal]
    data["starts"][0]["nll"] = pb.nll()
    (fit_dir / "result.json").write_text(json.dumps(data))
    out = tmp_path / "prof"
    assert main(["profile", str(EXAMPLE), "--fit", str(fit_dir), "--parameters", "k_phos",
                 "--out", str(out)]) == 0
    prof = json.loads((out / "profiles.json").read_text())
    assert "k_phos" in json.dumps(prof)
    assert (out / "profiles.png").stat().st_size > 0
    assert (out / "fisher_intervals.tsv").is_file()
    assert "k_phos" in capsys.readouterr().out
    assert np.isfinite(pb.nll())
    assert_one_line_error(main, ["profile", str(EXAMPLE), "--out", str(out), "--parameters",
                                 "nope"], capsys, "nope")


def test_sample_command_writes_posterior_and_plots(tmp_path, capsys):
    import shutil

    petabtests = peer("petabtests")
    case = Path(petabtests.__file__).parent / "cases" / "v1.0.0" / "sbml" / "0001"
    shutil.copytree(case, tmp_path / "case", ignore=shutil.ignore_patterns("*.py",
                                                                           "__pycache__"))
    yaml_file = tmp_path / "case" / "_0001.yaml"
    out = tmp_path / "post"
    assert main(["sample", str(yaml_file), "--chains", "2", "--warmup", "30", "--samples",
                 "30", "--out", str(out)]) == 0
    post = json.loads((out / "posterior.json").read_text())
    assert "rhat" in json.dumps(post) and (out / "samples.npz").is_file()
    for name in ("traces.png", "marginals.png", "predictive.png"):
        assert (out / name).stat().st_size > 0
    captured = capsys.readouterr()
    assert "R-hat" in captured.out
    # 30 draws per chain: too few for reliable intervals, and the command says so on stderr
    warn = [line for line in captured.err.splitlines() if line.startswith("warning: ")]
    assert any("bulk ESS below 400" in line for line in warn)
    assert "warning:" not in captured.out
    assert_one_line_error(main, ["sample", str(yaml_file), "--chains", "0", "--out",
                                 str(tmp_path / "x")], capsys, "chains")


def _petab_case(tmp_path):
    """A copy of PEtab test case 0001 (a two-state conversion, two measurements)."""
    import shutil

    petabtests = peer("petabtests")
    case = Path(petabtests.__file__).parent / "cases" / "v1.0.0" / "sbml" / "0001"
    shutil.copytree(case, tmp_path / "case", ignore=shutil.ignore_patterns("*.py",
                                                                           "__pycache__"))
    return tmp_path / "case" / "_0001.yaml"


def test_fit_into_a_run_whose_measurements_changed_is_refused(tmp_path, capsys):
    import pandas as pd

    yaml_file = _petab_case(tmp_path)
    out = tmp_path / "run1"
    argv = ["fit", str(yaml_file), "--starts", "2", "--seed", "0", "--out", str(out),
            "--max-iter", "20"]
    assert main(argv) == 0
    first = json.loads((out / "result.json").read_text())
    run = json.loads((out / "run.json").read_text())
    assert run["kind"] == "fit" and "fit" in run["call"] and run["seed"] == 0
    assert run["inputs"]["measurements"]["source"] == "_measurements.tsv"
    capsys.readouterr()
    table = yaml_file.parent / "_measurements.tsv"
    df = pd.read_csv(table, sep="\t")
    df["measurement"] *= 3
    df.to_csv(table, sep="\t", index=False)
    assert_one_line_error(main, argv, capsys, "_measurements.tsv")
    assert json.loads((out / "result.json").read_text()) == first  # nothing overwritten
    # a profile or posterior around that fit would start from a stale optimum
    assert_one_line_error(main, ["profile", str(yaml_file), "--fit", str(out), "--out",
                                 str(tmp_path / "prof")], capsys,
                          "the measurements (_measurements.tsv) changed since that fit")
    assert main([*argv, "--restart"]) == 0
    # the data are three times larger: so is the fitted amplitude
    again = json.loads((out / "result.json").read_text())
    assert again["best_params"] != first["best_params"]


def test_fit_exits_non_zero_when_every_start_failed(tmp_path, capsys, monkeypatch):
    from scalebridge.errors import SimulationError
    from scalebridge.infer.problem import Problem

    def fail(self, params=None):
        raise SimulationError("the solver hit max_steps")

    monkeypatch.setattr(Problem, "objective_grad_hess", fail)
    assert_one_line_error(main, ["fit", str(_petab_case(tmp_path)), "--starts", "2",
                                 "--out", str(tmp_path / "o")], capsys,
                          "no start of _0001 succeeded (2 failed")


def test_version_and_unexpected_errors(tmp_path, capsys, monkeypatch):
    assert main(["--version"]) == 0
    text = capsys.readouterr().out
    for name in ("scalebridge", "jax", "numpy", "python"):
        assert name in text
    from scalebridge.model import zoo

    class Broken(dict):
        def items(self):
            raise RuntimeError("a bug\nwith a second line")

    monkeypatch.setattr(zoo, "ZOO", Broken())
    assert_one_line_error(main, ["models"], capsys, "RuntimeError: a bug (run again with "
                                                    "--debug")
    with pytest.raises(RuntimeError, match="a bug"):
        main(["models", "--debug"])
