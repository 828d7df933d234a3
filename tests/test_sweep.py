"""Resumable sweeps (scalebridge.runtime.sweep): grid, resume, axes checks, executors,
the cable conduction point and the outcome map."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

import scalebridge as sb
from scalebridge.errors import InputError
from scalebridge.multiscale.sweep import CableProtocol, cable_outcome, cable_point
from scalebridge.report import save_plot
from scalebridge.runtime.executor import TaskError, ThreadExecutor
from scalebridge.runtime.sweep import SweepResult, read_sweep, run_sweep, sweep_grid

AXES = {"a": [1.0, 2.0, 3.0], "b": [10.0, 20.0]}


class Counter:
    """A cheap point function that counts its calls (thread-safe)."""

    def __init__(self):
        self.calls = []
        self._lock = threading.Lock()

    def __call__(self, shared, *, a, b):
        with self._lock:
            self.calls.append((a, b))
        return {"sum": a + b + shared, "ratio": np.float64(a / b), "bad": float("nan")}


def test_grid_order_is_deterministic():
    pts = sweep_grid(AXES)
    assert pts == [{"a": a, "b": b} for a in AXES["a"] for b in AXES["b"]]


def test_run_sweep_results_and_file(tmp_path):
    fn = Counter()
    out = tmp_path / "s"
    res = run_sweep(fn, AXES, out=out, shared=100.0, progress=False)
    df = res.to_pandas()
    assert len(fn.calls) == 6
    assert list(df.columns[:2]) == ["a", "b"]
    assert df[["a", "b"]].to_numpy().tolist() == [[a, b] for a in AXES["a"] for b in AXES["b"]]
    np.testing.assert_allclose(df["sum"], df["a"] + df["b"] + 100.0)
    assert df["bad"].isna().all()  # NaN is stored as null
    lines = (out / "points.jsonl").read_text().splitlines()
    assert len(lines) == 7 and json.loads(lines[0])["axes"] == AXES
    assert json.loads((out / "run.json").read_text())["kind"] == "sweep"
    assert len(read_sweep(out, AXES)) == 6
    # a second run computes nothing and returns the same table
    df2 = run_sweep(fn, AXES, out=out, shared=100.0, progress=True).to_pandas()
    assert len(fn.calls) == 6
    assert df2.equals(df)
    # the result protocol: save/load and to_dict/from_dict give the same table
    for back in (sb.load(sb.save(res, tmp_path / "sweep.npz")),
                 SweepResult.from_dict(res.to_dict())):
        assert isinstance(back, SweepResult) and back.axes == res.axes
        assert back.to_pandas().equals(df)


def test_resume_after_interruption(tmp_path):
    run_dir = tmp_path / "s"
    out = run_dir / "points.jsonl"
    run_sweep(Counter(), AXES, out=run_dir, shared=0.0, progress=False)
    text = out.read_bytes()
    lines = text.split(b"\n")
    # keep the header and 3 points, then half of the 4th line (a kill during a write)
    cut = len(b"\n".join(lines[:4])) + 1 + len(lines[4]) // 2
    out.write_bytes(text[:cut])
    assert len(read_sweep(out)) == 3
    fn = Counter()
    df = run_sweep(fn, AXES, out=run_dir, shared=0.0, progress=False).to_pandas()
    assert sorted(fn.calls) == [(2.0, 20.0), (3.0, 10.0), (3.0, 20.0)]
    assert len(df) == 6 and df["sum"].notna().all()
    rows = [json.loads(x) for x in out.read_text().splitlines()[1:]]  # no corrupt line
    assert len(rows) == 6


def test_mismatched_axes_raise(tmp_path):
    out = tmp_path / "s"
    run_sweep(Counter(), AXES, out=out, shared=0.0, progress=False)
    with pytest.raises(InputError, match=r"setting axes .*'b': \[10\.0, 20\.0\]\} -> "):
        run_sweep(Counter(), {"a": [1.0, 2.0, 3.0], "b": [10.0, 30.0]}, out=out, shared=0.0,
                  progress=False)
    with pytest.raises(InputError, match=r"s: the setting axes"):
        run_sweep(Counter(), {"a": [1.0], "c": [1.0]}, out=out, shared=0.0, progress=False)
    assert len(read_sweep(out, AXES)) == 6
    with pytest.raises(InputError, match=r"other axes: b = \[10\.0, 20\.0\] in the file"):
        read_sweep(out, {"a": [1.0, 2.0, 3.0], "b": [10.0, 30.0]})
    # a points file that is not a sweep's (its run record intact) is refused, not mixed
    (out / "points.jsonl").write_text('{"something": "else"}\n')
    with pytest.raises(InputError, match="not a scalebridge sweep"):
        run_sweep(Counter(), AXES, out=out, shared=0.0, progress=False)


def test_thread_executor_and_task_errors(tmp_path):
    fn = Counter()
    df = run_sweep(fn, AXES, out=tmp_path / "t", shared=1.0,
                   executor="threads:2", progress=False).to_pandas()
    assert len(fn.calls) == 6 and len(df) == 6
    np.testing.assert_allclose(df["sum"], df["a"] + df["b"] + 1.0)

    def boom(shared, *, a, b):
        if a == 2.0:
            raise RuntimeError("unexpected")
        return {"v": a}

    with pytest.raises(TaskError, match="unexpected"):
        run_sweep(boom, AXES, out=tmp_path / "e", executor=ThreadExecutor(1),
                  progress=False)
    done = read_sweep(tmp_path / "e")
    assert {r["a"] for r in done} == {1.0}  # the points before the failure were kept


# ----- the cable point -----------------------------------------------------------------------
def _aliev_panfilov():
    from scalebridge.model.zoo import load_zoo

    cell = load_zoo("aliev_panfilov")  # dimensionless: u in [0, 1], AP about 20 t.u.
    protocol = CableProtocol(length=20.0, nodes=41, D=1.0, beats=3, amplitude=1.0,
                             duration=1.0, start=1.0, dt=0.05, output_dt=0.25, tail=60.0,
                             threshold=0.5)
    return cell, protocol


def nagumo_speed(D, k=8.0, a=0.15):
    """Travelling-front speed of u_t = D u_xx + k u (1 - u)(u - a)."""
    return (D * k / 2) ** 0.5 * (1 - 2 * a)


def test_cable_outcome_classifies_beats():
    cell, p = _aliev_panfilov()
    ok = cable_outcome(cell, conductivity=1.0, period=60.0, protocol=p)
    assert ok["outcome"] == "conduction" and ok["ok"]
    assert (ok["beats"], ok["excited"], ok["conducted"]) == (3, 3, 3)
    assert ok["diffusion"] == "explicit"
    # the upstroke is close to the Nagumo front of k u (1 - u)(u - a) (k = 8, a = 0.15), whose
    # speed is sqrt(k D / 2)(1 - 2a) = 1.4 (McKean 1970; Keener & Sneyd, Mathematical
    # Physiology, sec. 6.2); dx = 0.5 and dt = 0.05 make the discrete front ~1.4% slower
    assert ok["cv"] == pytest.approx(nagumo_speed(1.0), rel=0.03)
    assert 5 < ok["apd90"] < 40  # a sanity band: an action potential of about 20 t.u.
    fast = cable_outcome(cell, conductivity=1.0, period=15.0, protocol=p)  # faster than APD
    assert fast["outcome"] == "block" and 0 < fast["conducted"] < 3
    weak = cable_outcome(cell, conductivity=1e-3, period=60.0, protocol=p)
    assert weak["outcome"] == "failure" and weak["conducted"] == 0 and weak["excited"] == 3
    assert weak["cv"] is None and not weak["first_run"]  # same period: no recompilation
    # above the explicit limit (dx^2 / 2D = 0.125 / 3 < dt) diffusion turns implicit
    strong = cable_point((cell, p), conductivity=3.0, period=60.0)
    assert strong["diffusion"] == "implicit" and strong["outcome"] == "conduction"
    # conductivity scales D: the speed grows like sqrt(3) (implicit diffusion at dt = 0.05
    # lags by a few per cent more)
    assert strong["cv"] == pytest.approx(nagumo_speed(3.0), rel=0.05)


def test_cable_sweep_and_map(tmp_path):
    cell, p = _aliev_panfilov()
    axes = {"conductivity": [1e-3, 1.0], "period": [15.0, 60.0]}
    res = run_sweep(cable_point, axes, out=tmp_path / "c", shared=(cell, p),
                    progress=False)
    df = res.to_pandas()
    got = dict(zip(zip(df.conductivity, df.period, strict=True), df.outcome, strict=True))
    assert got[(1.0, 60.0)] == "conduction" and got[(1.0, 15.0)] == "block"
    assert got[(1e-3, 60.0)] == "failure"
    ax = res.plot()  # x and y default to the two axes
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("conductivity", "period")
    assert save_plot(ax, tmp_path / "map.png").stat().st_size > 1000
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["conduction", "block", "failure"]


def test_plot_sweep_dense_grid(tmp_path):
    import pandas as pd

    xs, ys = np.linspace(0.1, 1.5, 20), np.linspace(150, 500, 10)
    X, Y = np.meshgrid(xs, ys, indexing="ij")
    outcome = np.where(X < 0.3, "failure", np.where(Y < 250, "block", "conduction"))
    df = pd.DataFrame({"c": X.ravel(), "T": Y.ravel(), "outcome": outcome.ravel()})
    res = SweepResult({"c": tuple(xs), "T": tuple(ys)}, df)
    ax = res.plot(x="c", y="T")
    assert save_plot(ax, tmp_path / "dense.png").stat().st_size > 1000
    assert len(ax.get_legend().get_texts()) == 3
    with pytest.raises(InputError, match="no column"):
        res.plot(x="c", y="missing")
