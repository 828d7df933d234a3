"""Executors (scalebridge.runtime.executor): in-process and on a real local Dask cluster give
the same results; executor specs; unreachable schedulers; a Problem shipped to workers."""

import os
import socket

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import scalebridge as sb
from conftest import peer
from scalebridge.errors import InputError, ScalebridgeError
from scalebridge.infer import Problem
from scalebridge.runtime.executor import (
    DaskExecutor,
    Executor,
    InProcessExecutor,
    TaskError,
    ThreadExecutor,
    get_executor,
)

# a missing peer fails collection of this module (an error), it never skips it
distributed = peer("distributed", "dask distributed")

# no dashboard; the scheduler's HTTP server (always on) takes a free port, not 8787
CLUSTER = dict(threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
               scheduler_kwargs={"dashboard_address": ":0"})


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, **CLUSTER) as c:
        yield c


@pytest.fixture(scope="module")
def client(cluster):
    with distributed.Client(cluster, set_as_default=False) as c:
        yield c


def _weighted(a, v, power):
    """A pure task: numbers from a shared array and per-task arguments."""
    return float(np.sum(np.sin(a @ v) ** power)), np.linalg.norm(a * v)


def _fails(v):
    if v == 2:
        raise ValueError("bad start\nsecond line")
    return v


def _dies(v):
    if v == 1:
        os._exit(1)  # the worker process dies
    return v


def _nll(problem, x):
    return problem.nll(x)


def _tasks():
    rng = np.random.default_rng(0)
    return [(rng.normal(size=30), p) for p in (1, 2, 3, 1, 2, 3, 1)]


def _shared():
    return np.random.default_rng(1).normal(size=(40, 30))


def test_dask_map_matches_in_process(client):
    a, tasks = _shared(), _tasks()
    with InProcessExecutor() as ex:
        local = list(ex.map(_weighted, tasks, shared=a))
    assert [i for i, _ in local] == list(range(len(tasks)))  # in order
    with DaskExecutor(client) as ex:
        assert ex.workers == 2
        remote = dict(ex.map(_weighted, tasks, shared=a))
        assert sorted(remote) == list(range(len(tasks)))
        for i, (s, n) in local:
            assert remote[i][0] == s and remote[i][1] == n
        # without a shared object: fn(*task); a non-tuple task is one argument
        assert dict(ex.map(np.sum, [np.arange(3), np.ones(4)])) == {0: 3, 1: 4}
        assert list(ex.map(np.sum, [])) == []
    assert client.status == "running"  # a client the executor did not create stays open


def test_task_error_names_the_task(client):
    for ex in (InProcessExecutor(), DaskExecutor(client)):
        with pytest.raises(TaskError, match=r"^task 2 failed: ValueError: bad start second line$"
                           ) as info:
            dict(ex.map(_fails, [0, 1, 2, 3]))
        assert info.value.index == 2 and isinstance(info.value, ScalebridgeError)


def test_get_executor_specs(cluster, client):
    for spec in (None, "local", "inprocess", " Local "):
        assert isinstance(get_executor(spec), InProcessExecutor)
    ex = InProcessExecutor()
    assert get_executor(ex) is ex
    with get_executor(client) as ex:
        assert isinstance(ex, DaskExecutor) and ex.client is client
    assert client.status == "running"
    port = cluster.scheduler_address.rsplit(":", 1)[1]
    # a generous timeout: on a loaded CI machine a first connection can take over 10 s
    with get_executor(f"dask://127.0.0.1:{port}", timeout=120) as ex:
        assert isinstance(ex, DaskExecutor) and ex.client is not client
        assert dict(ex.map(_weighted, _tasks()[:2], shared=_shared())).keys() == {0, 1}
        own = ex.client
    assert own.status == "closed"  # the executor closes the client it created
    with get_executor(f"tcp://127.0.0.1:{port}", timeout=120) as ex:
        assert ex.workers == 2


@pytest.mark.parametrize("spec", ["dask", "dask://localhost", "http://127.0.0.1:8786",
                                  "dask://127.0.0.1:99999", "", 8786, ["local"]])
def test_bad_specs_name_the_value_and_the_forms(spec):
    with pytest.raises(InputError) as info:
        get_executor(spec)
    msg = str(info.value)
    assert repr(spec) in msg and "'dask://HOST:PORT'" in msg and "'local'" in msg


def test_dead_worker_raises_task_error():
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            distributed.LocalCluster(n_workers=1, **CLUSTER) as c, \
            distributed.Client(c, set_as_default=False) as cl:
        with pytest.raises(TaskError, match="^task 0 failed: KilledWorker"):
            dict(DaskExecutor(cl).map(_dies, [1]))


def test_unreachable_scheduler_fails_quickly():
    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(InputError, match=rf"cannot reach Dask scheduler at tcp://127.0.0.1:{port}"
                       r".*start one with `dask scheduler`"):
        get_executor(f"dask://127.0.0.1:{port}", timeout=1)


def test_problem_pickles_and_evaluates_on_workers(client):
    model = sb.Model(name="decay", states=["y"], parameters={"k": 0.5, "y0": 2.0},
                     rhs=lambda t, y, p, u: -p[0] * y,
                     initial=lambda p: jnp.stack([p[1]]), stiff=False)
    t = np.array([0.5, 1.0, 2.0, 4.0])
    data = pd.DataFrame({"time": t, "observable": "y", "value": 2.0 * np.exp(-0.5 * t) + 0.01})
    problem = Problem.from_table(model, data)
    xs = [problem.x_nominal, problem.x_nominal + 0.1, problem.x_nominal - 0.2]
    with DaskExecutor(client) as ex:
        remote = dict(ex.map(_nll, [(x,) for x in xs], shared=problem))
    for i, x in enumerate(xs):
        assert remote[i] == pytest.approx(problem.nll(x), rel=1e-12)


def test_base_executor_is_abstract():
    with pytest.raises(NotImplementedError):
        Executor().map(len, [])
    assert Executor().workers == 1


def test_fit_on_dask_equals_in_process(cluster, tmp_path):
    """Issue 4: multi-start starts on a real 2-worker cluster give the in-process results."""
    model = sb.Model(name="decay2", states=["y"],
                     parameters={"k": sb.Parameter("k", 0.5, 1e-2, 10.0, "log10"),
                                 "y0": sb.Parameter("y0", 2.0, 0.1, 10.0, "log10")},
                     rhs=lambda t, y, p, u: -p[0] * y,
                     initial=lambda p: jnp.stack([p[1]]), stiff=False)
    t = np.linspace(0.25, 4.0, 8)
    data = pd.DataFrame({"time": t, "observable": "y",
                         "value": 2.0 * np.exp(-0.5 * t) * (1 + 0.02 * np.sin(7 * t)),
                         "sigma": 0.05})
    problem = Problem.from_table(model, data)
    local = sb.fit(problem, n_starts=4, seed=3)
    remote = sb.fit(problem, n_starts=4, seed=3, executor=cluster.scheduler_address.replace(
        "tcp://", "dask://"), out=tmp_path)
    for a, b in zip(local.records, remote.records, strict=True):
        assert a["x0"] == b["x0"]
        np.testing.assert_allclose(a["x"], b["x"], rtol=1e-9, atol=1e-12)
        assert a["nll"] == pytest.approx(b["nll"], rel=1e-12)
    assert remote.n_converged == local.n_converged == 4
    assert (tmp_path / "result.json").is_file()


def test_threads_give_the_in_process_results():
    a = np.arange(12.0).reshape(3, 4)
    tasks = [(np.linspace(0, 1, 4) * k, 2) for k in range(6)]
    ref = dict(InProcessExecutor().map(_weighted, tasks, shared=a))
    ex = get_executor("threads:2")
    assert isinstance(ex, ThreadExecutor) and ex.workers == 2
    got = dict(ex.map(_weighted, tasks, shared=a))
    assert got == ref
    with pytest.raises(TaskError, match="task 2 failed"):
        list(get_executor("threads:2").map(_fails, [0, 1, 2]))
    assert get_executor("threads").workers == (os.cpu_count() or 1)
    with pytest.raises(InputError, match="at least 1"):
        get_executor("threads:0")
