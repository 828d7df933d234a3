"""Run directories: provenance in run.json, resumes that refuse changed inputs, restarts,
and runs killed with SIGKILL that resume with their finished units."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

import scalebridge as sb
from scalebridge.errors import InputError
from scalebridge.infer.fit import fit
from scalebridge.infer.problem import Problem
from scalebridge.infer.profile import profile
from scalebridge.infer.sample import sample
from scalebridge.runtime.run import RUN_FILE, fingerprint
from scalebridge.runtime.sweep import run_sweep
from scalebridge.sensitivity import sobol
from scalebridge.surrogate.explore import explore
from test_pinn_cases import _BASE


def _model(k_nominal=0.5):
    specs = {"a": sb.Parameter("a", 2.0, 0.01, 100.0, "log10"),
             "k": sb.Parameter("k", k_nominal, 0.01, 100.0, "log10")}
    return sb.Model(name="production", states=["y"], parameters=specs,
                    rhs=lambda t, y, p, u: p[0] - p[1] * y, initial=[0.0], stiff=False)


def _data(scale=1.0):
    t = np.linspace(0.5, 4.0, 6)
    return pd.DataFrame({"time": t, "observable": "y", "sigma": 0.1,
                         "value": scale * 2.0 / 0.5 * (1 - np.exp(-0.5 * t))})


def _problem(scale=1.0, k_nominal=0.5):
    return Problem.from_table(_model(k_nominal), _data(scale))


def test_fit_run_json_records_provenance_and_refuses_changed_inputs(tmp_path):
    out = tmp_path / "run"
    first = fit(_problem(), n_starts=2, seed=3, optimizer="lbfgs", max_iter=50, out=out)
    run = json.loads((out / RUN_FILE).read_text())
    assert run["kind"] == "fit" and run["seed"] == 3
    assert set(run["versions"]) == {"scalebridge", "jax", "numpy", "python"}
    assert run["platform"] and run["call"] and len(run["content_sha256"]) == 64
    assert set(run["inputs"]) >= {"model", "measurements", "parameters", "conditions"}
    # the same content resumes (only the third start runs)
    seen = []
    again = fit(_problem(), n_starts=3, seed=3, optimizer="lbfgs", max_iter=50, out=out,
                progress=lambda done, total, **info: seen.append(info["start"]))
    assert seen == [2]
    assert [list(r["x"]) for r in again.records[:2]] == [list(r["x"]) for r in first.records]
    # changed measurements, model or settings: refused, nothing reused or overwritten
    before = (out / "result.json").read_bytes()
    with pytest.raises(InputError, match=r"the measurements \(data\) changed"):
        fit(_problem(scale=3.0), n_starts=3, seed=3, optimizer="lbfgs", max_iter=50, out=out)
    with pytest.raises(InputError, match="the model changed"):
        fit(_problem(k_nominal=0.7), n_starts=3, seed=3, optimizer="lbfgs", max_iter=50,
            out=out)
    with pytest.raises(InputError, match=r"setting max_iter \(50 -> 60\)"):
        fit(_problem(), n_starts=3, seed=3, optimizer="lbfgs", max_iter=60, out=out)
    assert (out / "result.json").read_bytes() == before
    # restart starts over with the new data: no old start survives
    fresh = fit(_problem(scale=3.0), n_starts=2, seed=3, optimizer="lbfgs", max_iter=50,
                out=out, restart=True)
    stored = json.loads((out / "result.json").read_text())
    assert len(stored["starts"]) == 2 and stored["best_nll"] == pytest.approx(fresh.best_nll)
    assert list(fresh.records[0]["x"]) != list(first.records[0]["x"])


def test_edited_or_foreign_results_are_refused(tmp_path):
    out = tmp_path / "run"
    fit(_problem(), n_starts=2, optimizer="lbfgs", max_iter=20, out=out)
    data = json.loads((out / "result.json").read_text())
    data["starts"][0]["nll"] = -1e9
    (out / "result.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match="changed after scalebridge wrote it"):
        fit(_problem(), n_starts=2, optimizer="lbfgs", max_iter=20, out=out)
    (out / "result.json").write_bytes(b"\xff\xfe not json")
    with pytest.raises(InputError, match="damaged"):
        fit(_problem(), n_starts=2, optimizer="lbfgs", max_iter=20, out=out)
    # another kind of run refuses the directory instead of replacing its results
    with pytest.raises(InputError, match="holds a fit run; a profile run cannot use it"):
        profile(_problem(), out=out)
    # results without a run record (another tool, an older version) are not overwritten
    other = tmp_path / "other"
    other.mkdir()
    (other / "result.json").write_text("{}")
    with pytest.raises(InputError, match="already holds result.json"):
        fit(_problem(), n_starts=1, optimizer="lbfgs", max_iter=5, out=other)
    (out / RUN_FILE).write_text("[1, 2")
    with pytest.raises(InputError, match="not a valid scalebridge run record"):
        fit(_problem(), n_starts=1, optimizer="lbfgs", max_iter=5, out=out)


def test_profile_and_sample_refuse_changed_data(tmp_path):
    pb = _problem()
    best = fit(pb, n_starts=2, optimizer="lbfgs", max_iter=100)
    profile(pb, best, parameters="k", max_steps=3, out=tmp_path / "prof")
    profile(_problem(), best, parameters="k", max_steps=3, out=tmp_path / "prof")  # resumes
    with pytest.raises(InputError, match=r"the measurements \(data\) changed"):
        profile(_problem(scale=2.0), best, parameters="k", max_steps=3,
                out=tmp_path / "prof")
    kw = dict(n_chains=2, n_warmup=20, n_samples=20, init=best, out=tmp_path / "post")
    first = sample(pb, **kw)
    assert np.array_equal(sample(_problem(), **kw).samples, first.samples)  # loaded
    with pytest.raises(InputError, match=r"the measurements \(data\) changed"):
        sample(_problem(scale=2.0), **kw)
    kw["out"] = tmp_path / "post"
    redo = sample(_problem(scale=2.0), **kw, restart=True)
    assert not np.array_equal(redo.samples, first.samples)


def _shifted(c):
    def f(x):
        return np.sum((np.asarray(x) - c) ** 2, axis=1)
    return f


def test_explore_sobol_and_sweep_refuse_a_changed_function(tmp_path):
    bounds = [(0.0, 1.0), (0.0, 1.0)]
    explore(_shifted(0.3), bounds, budget=7, out=tmp_path / "bo")
    explore(_shifted(0.3), bounds, budget=8, out=tmp_path / "bo")  # resumes, budget grows
    with pytest.raises(InputError, match="the objective changed"):
        explore(_shifted(0.4), bounds, budget=8, out=tmp_path / "bo")
    sa = tmp_path / "sa"
    sobol(_shifted(0.3), bounds, n_samples=64, n_bootstrap=0, out=sa, jax=False)
    sobol(_shifted(0.3), bounds, n_samples=64, n_bootstrap=0, out=sa, jax=False)
    with pytest.raises(InputError, match="the function changed"):
        sobol(_shifted(0.4), bounds, n_samples=64, n_bootstrap=0, out=sa, jax=False)
    path = tmp_path / "sweep"

    def point(shared, *, a):
        return {"y": shared * a}

    run_sweep(point, {"a": [1.0, 2.0]}, out=path, shared=2.0, progress=False)
    assert run_sweep(point, {"a": [1.0, 2.0]}, out=path, shared=2.0,
                     progress=False).to_pandas()["y"].tolist() == [2.0, 4.0]
    with pytest.raises(InputError, match="the function and shared inputs changed"):
        run_sweep(point, {"a": [1.0, 2.0]}, out=path, shared=3.0, progress=False)
    res = run_sweep(point, {"a": [1.0, 2.0]}, out=path, shared=3.0, progress=False,
                    restart=True)
    assert res.to_pandas()["y"].tolist() == [3.0, 6.0]


def test_fingerprint_sees_content_not_identity():
    assert fingerprint(_model()) == fingerprint(_model())
    assert fingerprint(_model()) != fingerprint(_model(k_nominal=0.6))
    assert fingerprint(_shifted(0.3)) == fingerprint(_shifted(0.3))
    assert fingerprint(_shifted(0.3)) != fingerprint(_shifted(0.31))
    assert fingerprint(np.arange(3.0)) != fingerprint(np.arange(3))  # dtype counts
    assert _problem().fingerprint() == _problem().fingerprint()
    assert _problem().fingerprint()["measurements"] != \
        _problem(scale=1.1).fingerprint()["measurements"]


_KILLED_FIT = """
import sys, numpy as np, pandas as pd
sys.path.insert(0, {tests!r})
from test_runs import _problem
from scalebridge.infer.fit import fit
fit(_problem(), n_starts=100000, optimizer="lbfgs", max_iter=50, out={out!r})
"""


def _kill_when(proc, ready, timeout=240.0):
    """SIGKILL ``proc`` as soon as ``ready()`` holds (fails if it ends or times out)."""
    t0 = time.monotonic()
    while not ready():
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() - t0 < timeout, "the run never got there"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def test_fit_killed_with_sigkill_resumes_its_finished_starts(tmp_path):
    out = tmp_path / "run"
    script = _KILLED_FIT.format(tests=os.path.dirname(__file__), out=str(out))
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE)

    def finished():
        try:
            return len(json.loads((out / "result.json").read_text())["starts"]) >= 3
        except (OSError, ValueError, KeyError):
            return False

    _kill_when(proc, finished)
    assert proc.returncode == -signal.SIGKILL
    for f in out.iterdir():  # every file parses; no temporary file is left as a result
        if f.suffix == ".json":
            json.loads(f.read_text())
    kept = json.loads((out / "result.json").read_text())["starts"]
    n = len(kept)
    seen = []
    res = fit(_problem(), n_starts=n + 1, optimizer="lbfgs", max_iter=50, out=out,
              progress=lambda done, total, **info: seen.append(info["start"]))
    assert seen == [n]  # only the missing start ran
    assert [list(r["x"]) for r in res.records[:n]] == [r["x"] for r in kept]


def test_pinn_killed_with_sigkill_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    case = tmp_path / "case.toml"
    data = "x,t,u\n0.5,0.5,0.3\n0.25,0.2,0.5\n"
    (tmp_path / "data.csv").write_text(data)
    # the small heat-equation case of the PINN case tests, trained longer
    case.write_text(_BASE.replace("adam = { steps = 3 }", "adam = { steps = 1500 }")
                    + "collocation = 64\ncheckpoint_every = 50\n[network]\nwidth = 8\n"
                    "depth = 2\n")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "scalebridge.cli.app", "pinn", str(case),
                             "--out", str(out), "--quiet"], stderr=subprocess.PIPE)
    _kill_when(proc, lambda: (out / "checkpoint.eqx").is_file())
    assert json.loads((out / RUN_FILE).read_text())["kind"] == "pinn"
    assert not (out / "result.json").exists()
    from scalebridge import trainer
    from scalebridge.pinn import load_case, run_case

    # a changed data file is refused, naming it
    (tmp_path / "data.csv").write_text(data.replace("0.5\n", "0.6\n"))
    with pytest.raises(InputError, match="the data changed"):
        run_case(load_case(case), out, verbose=False)
    (tmp_path / "data.csv").write_text(data)
    # the same case resumes from the checkpoint the killed run left, not from step 0
    resumed_at = []
    load = trainer._load

    def spy(*args):
        state, history = load(*args)
        resumed_at.append(int(state["step"]))
        return state, history

    monkeypatch.setattr(trainer, "_load", spy)
    report = run_case(load_case(case), out, verbose=False)
    assert resumed_at and resumed_at[0] >= 50 and resumed_at[0] % 50 == 0
    assert report["steps"] == 1500
    assert json.loads((out / "result.json").read_text())["steps"] == 1500


_EVENT_FIT = """
import sys
sys.path.insert(0, {tests!r})
import scalebridge as sb
from test_runs import _data
from scalebridge.infer.fit import fit
from scalebridge.infer.problem import Problem


def dose(t, y, p):
    return y + 1.0, p


specs = {{"a": sb.Parameter("a", 2.0, 0.01, 100.0, "log10"),
         "k": sb.Parameter("k", 0.5, 0.01, 100.0, "log10")}}
model = sb.Model(name="dosed", states=["y"], parameters=specs, stiff=False, initial=[0.0],
                 rhs=lambda t, y, p, u: p[0] - p[1] * y,
                 events=[sb.Event(affect=dose, times=[1.0])])
res = fit(Problem.from_table(model, _data()), n_starts={n}, optimizer="lbfgs", max_iter=20,
          out={out!r})
print(len(res.records))
"""


def test_a_resume_in_a_new_process_is_not_refused(tmp_path):
    """Fingerprints are the same in every process: a model with an event function (whose
    repr holds a memory address) resumes in a second process."""
    out = tmp_path / "run"
    # the two processes share a JAX compilation cache, so the second loads the programs
    # that the first compiled (the fingerprints, not the compiling, are what is tested)
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(tmp_path / "jax-cache"),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0.2")
    for n in (1, 2):
        script = _EVENT_FIT.format(tests=os.path.dirname(__file__), out=str(out), n=n)
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              timeout=300, env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.strip().splitlines()[-1] == str(n)


def test_fingerprint_follows_closures_globals_and_replaced_functions():
    def make(c):
        return sb.Model(states=["y"], parameters={"k": 1.0}, initial=[1.0], stiff=False,
                        rhs=lambda t, y, p, u: c - p[0] * y)

    assert make(1.0).fingerprint() != make(2.0).fingerprint()
    zoo = sb.load_zoo("lotka_volterra")
    assert zoo.replace(rhs=lambda t, y, p, u: 0 * y).fingerprint() != zoo.fingerprint()
    global _SCALE
    _SCALE = 1.0

    def scaled(x):
        return _SCALE * np.asarray(x)

    before = fingerprint(scaled)
    _SCALE = 2.0
    assert fingerprint(scaled) != before
    assert fingerprint(np.sin) != fingerprint(np.cos)


_SCALE = 1.0
