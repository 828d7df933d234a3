"""Where independent tasks run: in this process or on a Dask cluster.

Multi-start fits and profile likelihoods are sets of independent tasks that share one large
object (a :class:`~scalebridge.infer.problem.Problem`). An :class:`Executor` runs
``fn(shared, *task)`` for every task and yields ``(index, result)`` as each one finishes::

    with get_executor("dask://127.0.0.1:8786") as ex:
        for i, nll in ex.map(nll_of_start, [(x,) for x in starts], shared=problem):
            ...

:class:`InProcessExecutor` (the default) runs the tasks one after the other, in order;
:class:`ThreadExecutor` runs them on threads of this process.
:class:`DaskExecutor` sends ``shared`` once to every worker and the tasks to the cluster;
``distributed`` is imported only then, so scalebridge works without Dask. ``fn`` should
catch the failures it expects (a start that does not converge) and return them as results;
an exception that escapes it stops the map with a :class:`TaskError` naming the task.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..errors import InputError, ScalebridgeError

__all__ = ["Executor", "InProcessExecutor", "ThreadExecutor", "DaskExecutor", "ExecutorError",
           "TaskError", "get_executor"]

_ADDRESS = re.compile(r"^(dask|tcp)://(\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(\d{1,5})$")
_FORMS = ("None, 'local' or 'inprocess' (run here), 'threads' or 'threads:N' (threads "
          "here), 'dask://HOST:PORT' or "
          "'tcp://HOST:PORT' (a Dask scheduler), a distributed.Client or an Executor")


class ExecutorError(ScalebridgeError, RuntimeError):
    """The cluster could not run the work (serialisation, lost scheduler)."""


class TaskError(ExecutorError):
    """A task raised, or its worker died; ``index`` is the task's position."""

    def __init__(self, index: int, error: BaseException | str):
        self.index = index
        self.error = error
        what = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        super().__init__(f"task {index} failed: {_one_line(what)}")


def _one_line(text) -> str:
    return " ".join(str(text).split())


def _args(task) -> tuple:
    """A tuple task gives positional arguments; anything else is one argument."""
    return task if isinstance(task, tuple) else (task,)


class Executor:
    """Runs independent tasks; a context manager that closes itself on exit."""

    def map(self, fn: Callable, tasks: Sequence, shared: Any = None
            ) -> Iterator[tuple[int, Any]]:
        """Run ``fn(shared, *task)`` (``fn(*task)`` when ``shared`` is None) for every task
        in ``tasks``; yield ``(i, result)`` for task ``i`` as each finishes (any order).

        A tuple task is unpacked into positional arguments; any other task (a NumPy start
        point, say) is passed as one argument. An exception escaping ``fn`` raises
        :class:`TaskError`. Each executor (in-process, threads, Dask) implements it.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement map")

    @property
    def workers(self) -> int:
        """How many tasks can run at the same time."""
        return 1

    def close(self) -> None:
        """Release the resources the executor created."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class InProcessExecutor(Executor):
    """Runs the tasks one after the other, in order, in this process."""

    def map(self, fn, tasks, shared=None):
        head = () if shared is None else (shared,)
        for i, task in enumerate(tasks):
            try:
                result = fn(*head, *_args(task))
            except Exception as exc:
                raise TaskError(i, exc) from exc
            yield i, result

    def __repr__(self):
        return "InProcessExecutor()"


class ThreadExecutor(Executor):
    """Runs the tasks on ``workers`` threads of this process (default: one per CPU core).

    Compiled JAX calls release the GIL, so starts whose time goes into the simulation run
    side by side on a multi-core machine, with the results of :class:`InProcessExecutor`.
    """

    def __init__(self, workers: int | None = None):
        import os

        n = (os.cpu_count() or 1) if workers is None else int(workers)
        if n < 1:
            raise InputError(f"threads executor needs at least 1 worker, got {n}")
        self._n = n

    @property
    def workers(self) -> int:
        return self._n

    def map(self, fn, tasks, shared=None):
        from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

        head = () if shared is None else (shared,)
        tasks = list(tasks)
        with ThreadPoolExecutor(self._n) as pool:
            index = {pool.submit(fn, *head, *_args(t)): i for i, t in enumerate(tasks)}
            try:
                while index:
                    done, _ = wait(list(index), return_when=FIRST_COMPLETED)
                    for fut in sorted(done, key=index.get):
                        i = index.pop(fut)
                        exc = fut.exception()
                        if exc is not None:
                            raise TaskError(i, exc) from exc
                        yield i, fut.result()
            finally:
                for fut in index:
                    fut.cancel()

    def __repr__(self):
        return f"ThreadExecutor({self._n})"


class DaskExecutor(Executor):
    """Runs the tasks on a Dask cluster.

    ``client_or_address``: a ``distributed.Client`` (left open by :meth:`close`) or a
    scheduler address ``"tcp://HOST:PORT"`` (``"dask://HOST:PORT"`` too), for which a
    client is created, and closed by :meth:`close`. ``timeout``: seconds to wait for the
    scheduler.
    """

    def __init__(self, client_or_address, *, timeout: float = 30.0):
        distributed = _distributed()
        if isinstance(client_or_address, distributed.Client):
            self.client = client_or_address
            self._owns_client = False
            return
        address = _address(client_or_address)
        if address is None:
            raise InputError(f"Dask scheduler address {client_or_address!r} is not of the "
                             "form 'tcp://HOST:PORT'")
        try:
            self.client = distributed.Client(address, timeout=timeout, set_as_default=False)
        except Exception as exc:
            why = _one_line(exc) or type(exc).__name__  # a timeout has no message
            raise InputError(f"cannot reach Dask scheduler at {address} within {timeout:g} s: "
                             f"{why}; "
                             "start one with `dask scheduler` or check the address") from None
        self._owns_client = True

    @property
    def workers(self) -> int:
        """Threads over all workers connected now (at least 1)."""
        try:
            return max(1, sum(self.client.nthreads().values()))
        except Exception:
            return 1

    def map(self, fn, tasks, shared=None):
        distributed = _distributed()
        client = self.client
        tasks = list(tasks)
        if not tasks:
            return
        head = ()
        if shared is not None:
            try:
                # a one-element list, so a list or dict `shared` is not split up
                head = (client.scatter([shared], broadcast=True, hash=False)[0],)
            except Exception as exc:
                raise ExecutorError(f"cannot send the shared {type(shared).__name__} to the "
                                    f"Dask cluster: {_one_line(exc)}") from exc
        index = {}
        try:
            for i, task in enumerate(tasks):
                try:
                    fut = client.submit(fn, *head, *_args(task), pure=False)
                except Exception as exc:
                    raise TaskError(i, f"cannot send it to the Dask cluster: "
                                       f"{type(exc).__name__}: {exc}") from exc
                index[fut] = i
            # loop=: without it as_completed looks for a default client, which may not exist
            for fut in distributed.as_completed(list(index), loop=client.loop):
                i = index[fut]
                if fut.status == "error":
                    exc = fut.exception()
                    raise TaskError(i, exc) from exc
                if fut.status != "finished":
                    raise TaskError(i, f"the Dask cluster {fut.status} it (scheduler lost?)")
                yield i, fut.result()
                del index[fut]
        finally:
            if index:
                try:
                    client.cancel(list(index))
                except Exception:
                    pass
            for h in head:
                try:
                    h.release()
                except Exception:
                    pass

    def close(self) -> None:
        """Close the client if this executor created it."""
        if self._owns_client:
            self.client.close()

    def __repr__(self):
        return f"DaskExecutor({self.client.scheduler.address!r})"


def _distributed():
    try:
        import distributed
    except ImportError:
        raise InputError("the Dask executor needs the 'distributed' package: "
                         "pip install distributed") from None
    return distributed


def _address(spec) -> str | None:
    """``tcp://HOST:PORT`` for a ``dask://`` or ``tcp://`` address, else None."""
    if not isinstance(spec, str):
        return None
    m = _ADDRESS.match(spec.strip())
    if m is None or not 0 < int(m.group(3)) < 65536:
        return None
    return f"tcp://{m.group(2)}:{m.group(3)}"


def get_executor(spec=None, *, timeout: float = 30.0) -> Executor:
    """The executor named by ``spec``.

    ``None``, ``"local"``, ``"inprocess"``: :class:`InProcessExecutor`; ``"threads"`` or
    ``"threads:N"``: a :class:`ThreadExecutor` (one thread per core, or ``N``);
    ``"dask://HOST:PORT"`` or ``"tcp://HOST:PORT"``: a :class:`DaskExecutor` connected to
    that scheduler (waiting at most ``timeout`` seconds); a ``distributed.Client``: a
    :class:`DaskExecutor` on it (the client stays open); an :class:`Executor`: itself.
    """
    if spec is None:
        return InProcessExecutor()
    if isinstance(spec, Executor):
        return spec
    if isinstance(spec, str):
        word = spec.strip().lower()
        if word in ("local", "inprocess"):
            return InProcessExecutor()
        if word == "threads" or re.fullmatch(r"threads:\d+", word):
            return ThreadExecutor(int(word[8:]) if ":" in word else None)
        address = _address(spec)
        if address is not None:
            return DaskExecutor(address, timeout=timeout)
    distributed = sys.modules.get("distributed")
    if distributed is not None and isinstance(spec, distributed.Client):
        return DaskExecutor(spec)
    raise InputError(f"executor {spec!r} is not understood; use {_FORMS}")
