"""benchmarks/calibration.py: its scoring against the best value any tool found, and one
small run end to end (the benchmark's peers, pyPESTO with AMICI and RoadRunner, run in the
benchmark itself)."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import calibration  # noqa: E402


def _row(tool, nlls, wall):
    return dict(tool=tool, wall_s=wall, starts=[dict(nll=v, time_s=1.0) for v in nlls])


def test_converged_means_within_1_92_of_the_best_any_tool_found():
    entry = dict(reference_nll=100.0, known_best_nll=None, tools={
        "scalebridge": _row("scalebridge", [97.0, 98.5, 99.5, None], 8.0),
        "pypesto-amici-fides": _row("pypesto-amici-fides", [97.5, 120.0, 130.0, 140.0], 2.0)})
    calibration.score(entry)
    sb, amici = entry["tools"]["scalebridge"], entry["tools"]["pypesto-amici-fides"]
    assert entry["best_found_nll"] == 97.0  # below the reference
    assert (sb["n_converged"], amici["n_converged"]) == (2, 1)  # 97, 98.5 | 97.5
    assert sb["time_per_converged_s"] == 4.0 and amici["time_per_converged_s"] == 2.0
    assert amici["vs_scalebridge"]["time_per_converged_s"] == 0.5
    assert entry["targets"] == dict(time_per_converged_at_or_below_amici=False,
                                    best_at_or_below_reference=True,
                                    fails_where_a_peer_succeeds=False)


def test_a_problem_where_only_a_peer_converges_is_a_failure():
    entry = dict(reference_nll=None, known_best_nll=None, tools={
        "scalebridge": _row("scalebridge", [150.0], 1.0),
        "pypesto-amici-fides": _row("pypesto-amici-fides", [140.0], 1.0)})
    calibration.score(entry)
    assert entry["targets"]["fails_where_a_peer_succeeds"]
    assert entry["targets"]["best_at_or_below_reference"] is None  # no reference


def test_a_small_run_writes_its_table(tmp_path):
    out = tmp_path / "calibration.json"
    calibration.main(["--starts", "2", "--problems", "Bertozzi_PNAS2020",
                      "--tools", "scalebridge", "--out", str(out)])
    entry = json.loads(out.read_text())["problems"]["Bertozzi_PNAS2020"]
    row = entry["tools"]["scalebridge"]
    assert row["status"] == "ok" and row["n_starts"] == 2 and row["start_points_match"]
    # Bertozzi's optimum (the reference, a converged scipy Radau fit) is found
    assert abs(row["best_nll"] - entry["reference_nll"]) < 1e-3


def test_no_time_target_where_neither_converges():
    entry = dict(reference_nll=-80.0, known_best_nll=None, tools={
        "scalebridge": _row("scalebridge", [-50.0], 1.0),
        "pypesto-amici-fides": _row("pypesto-amici-fides", [-52.0], 1.0)})
    calibration.score(entry)
    assert entry["targets"]["time_per_converged_at_or_below_amici"] is None
    assert entry["targets"]["best_at_or_below_reference"] is False
