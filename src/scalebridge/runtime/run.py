"""Run directories: what made a result, and resumes that never reuse stale work.

``out=DIR`` means the same thing for every long run (fit, profile, sample, explore, PINN
training): a directory that holds the run's results and ``DIR/run.json``, written before
the first unit of work:

- ``kind``: which run made the directory (a fit, a profile, ...); another kind refuses it;
- ``versions`` (scalebridge, jax, numpy, Python) and ``platform``;
- ``call``: the command line (or the Python call) and ``seed``;
- ``inputs``: per input (the model, the measurement table, ...) its source (a file name
  where it came from a file) and the SHA-256 of its content; ``settings``: every setting
  that changes the results; ``content_sha256``: one hash of all of them.

A later run into the same directory resumes only when all of that matches; otherwise it
stops with one line naming what changed (the measurement file, the settings ...).
``restart=True`` (``--restart``) removes the run's results and starts over in the same
directory. Result files are written atomically (:mod:`scalebridge.runtime.files`), so a
run killed at any moment leaves every file valid and loses at most the unit in progress;
each result file carries the run's ``content_sha256`` and a checksum of its own records,
so a file edited by hand or left by another run is refused rather than believed.
"""

from __future__ import annotations

import contextvars
import datetime
import hashlib
import json
import platform
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..errors import InputError
from .files import jsonable, write_json

__all__ = ["RUN_FILE", "RunDirectory", "open_run", "content_hash", "fingerprint",
           "records_checksum"]

RUN_FILE = "run.json"
COMMAND = contextvars.ContextVar("scalebridge_command", default=None)
"""The command line being run (set by the ``scalebridge`` command); a run records it as its
``call``, else the Python process's ``sys.argv``."""
FORMAT = "scalebridge-run"
FORMAT_VERSION = 1


def content_hash(data) -> str:
    """SHA-256 of ``data``: bytes as they are, text as UTF-8, anything else as canonical
    JSON (sorted keys)."""
    if isinstance(data, str):
        data = data.encode()
    elif not isinstance(data, bytes | bytearray):
        data = json.dumps(data, sort_keys=True, allow_nan=True, default=str).encode()
    return hashlib.sha256(data).hexdigest()


def fingerprint(obj, _depth: int = 0) -> str:
    """SHA-256 of what an input of a run computes with: an object's own ``fingerprint()``
    (models, problems, model outputs); for a Python function, its source code with the
    fingerprints of the values it closes over, its defaults and a ``functools.partial``'s
    arguments (so a closure over a changed model changes); a callable object, the source of
    its class; a result or surrogate, its ``to_dict()``; a dataclass, its fields; arrays
    and tables by content; containers item by item. Anything else counts by its type name
    only."""
    import functools

    import numpy as np

    if _depth > 6:
        return content_hash(type(obj).__qualname__)
    deeper = functools.partial(fingerprint, _depth=_depth + 1)
    own = getattr(obj, "fingerprint", None)
    if callable(own) and not isinstance(obj, type):
        v = own()
        return v if isinstance(v, str) else content_hash(v)
    if obj is None or isinstance(obj, bool | int | float | str | bytes):
        return content_hash(repr(obj))
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict) and not isinstance(obj, type) and not hasattr(obj, "to_csv"):
        try:  # results and surrogates of the result protocol: their data
            return content_hash([type(obj).__qualname__, deeper(to_dict())])
        except Exception:  # noqa: BLE001 - not data after all: fall through
            pass
    import dataclasses

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return content_hash([type(obj).__qualname__,
                             deeper({f.name: getattr(obj, f.name)
                                     for f in dataclasses.fields(obj)})])
    if isinstance(obj, Mapping):
        return content_hash({str(k): deeper(v) for k, v in obj.items()})
    if isinstance(obj, list | tuple):
        return content_hash([deeper(v) for v in obj])
    if hasattr(obj, "to_csv"):  # pandas tables
        return content_hash(obj.to_csv())
    if hasattr(obj, "__array__") and not callable(obj):
        a = np.asarray(obj)
        return content_hash(f"{a.dtype}{a.shape}".encode() + a.tobytes())
    if isinstance(obj, functools.partial):
        return content_hash([deeper(obj.func), deeper(list(obj.args)),
                             deeper(dict(obj.keywords))])
    if callable(obj):
        import inspect

        from .files import code_text

        fn = obj
        for _ in range(8):  # jit / wraps wrappers
            inner = getattr(fn, "__wrapped__", None)
            if inner is None or inner is fn:
                break
            fn = inner
        if not (inspect.isfunction(fn) or inspect.ismethod(fn)):
            return content_hash(code_text(type(fn)))  # a callable object: its class
        parts = [code_text(fn)]
        if inspect.ismethod(fn):  # a bound method: its object counts
            parts.append(deeper(fn.__self__))
            fn = fn.__func__
        for cell in fn.__closure__ or ():
            try:
                parts.append(deeper(cell.cell_contents))
            except ValueError:  # an empty cell
                parts.append("")
        parts.append(deeper(list(fn.__defaults__ or ())))
        return content_hash(parts)
    return content_hash(type(obj).__qualname__)


def records_checksum(records) -> str:
    """The checksum a result file stores over its records (see the module docstring)."""
    return content_hash(records)


def versions() -> dict:
    """The versions that made a result."""
    import jax
    import numpy as np

    from .. import __version__

    return {"scalebridge": __version__, "jax": jax.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


class RunDirectory:
    """An opened run directory (see :func:`open_run`): ``path``, ``kind``, ``resumed``
    (whether results of an earlier call with the same content are there) and
    ``content_sha256``."""

    def __init__(self, path: Path, kind: str, content_sha256: str, resumed: bool):
        self.path, self.kind = path, kind
        self.content_sha256, self.resumed = content_sha256, resumed

    def file(self, name: str) -> Path:
        return self.path / name

    def stamp(self, data: dict, records_key: str | tuple | None = None) -> dict:
        """``data`` (a result file's content) with the run's content hash and, where
        ``records_key`` names its records (a key or a tuple of keys), their checksum."""
        out = dict(data, run_sha256=self.content_sha256)
        if records_key is not None:
            out["records_sha256"] = _records_of(data, records_key)
        return out

    def check(self, data: dict, name: str, records_key: str | tuple | None = None) -> dict:
        """Refuse a result file read back for a resume that another run made or that was
        edited since it was written (its stored hashes do not match); return ``data``."""
        if data.get("run_sha256") != self.content_sha256:
            raise InputError(f"{self.path / name} was not written by the run recorded in "
                             f"{RUN_FILE}; use restart (--restart) to start over, or another "
                             "out directory")
        if records_key is not None and \
                data.get("records_sha256") != _records_of(data, records_key):
            raise InputError(f"{self.path / name} was changed after scalebridge wrote it; use "
                             "restart (--restart) to start over, or another out directory")
        return data

    def __repr__(self):
        return f"RunDirectory({str(self.path)!r}, kind={self.kind!r}, resumed={self.resumed})"


def _records_of(data: dict, key: str | tuple) -> str:
    keys = (key,) if isinstance(key, str) else tuple(key)
    return records_checksum([data.get(k) for k in keys])


def _read_run(path: Path) -> dict:
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError):
        data = None
    if not isinstance(data, dict) or data.get("format") != FORMAT or \
            not isinstance(data.get("inputs"), dict) or not isinstance(data.get("settings"), dict):
        raise InputError(f"{path} is not a valid scalebridge run record; use restart "
                         "(--restart) to start over, or another out directory")
    return data


def _changed(old: dict, inputs: dict, settings: dict) -> str | None:
    """A phrase naming what differs between a stored run record and this call, or None."""
    for name, new in inputs.items():
        prev = old["inputs"].get(name)
        if not isinstance(prev, dict) or prev.get("sha256") != new["sha256"]:
            src = new.get("source")
            return f"the {name}{f' ({src})' if src else ''} changed"
    for name in old["inputs"]:
        if name not in inputs:
            return f"the {name} is no longer an input"
    diff = sorted(k for k in set(settings) | set(old["settings"])
                  if content_hash(settings.get(k)) != content_hash(old["settings"].get(k)))
    if diff:
        return ("the setting " if len(diff) == 1 else "the settings ") + ", ".join(
            f"{k} ({old['settings'].get(k)!r} -> {settings.get(k)!r})" for k in diff) \
            + " changed"
    return None


def open_run(out, kind: str, *, inputs: Mapping[str, tuple[str | None, str]],
             settings: Mapping, seed: int | None = None, restart: bool = False,
             results: Iterable[str] = (), call: str | None = None) -> RunDirectory:
    """Open ``out`` as the run directory of a ``kind`` run and write its ``run.json``.

    ``inputs``: ``{name: (source, sha256)}`` (``source`` names the file an input came from,
    or None); ``settings``: JSON-able settings that change the results; ``results``: the
    file names (or glob patterns) this kind of run writes (removed on ``restart``; without
    a ``run.json``,
    their presence means the directory holds someone else's work, which is refused).
    ``call``: what started the run (default: the command line). Raises
    :class:`~scalebridge.errors.InputError` naming the input or setting that changed since
    the run in ``out`` started, or the kind of run that owns it."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise InputError(f"out {path} is a file; give a directory")
    inputs = {str(k): {"source": None if v[0] is None else str(v[0]), "sha256": str(v[1])}
              for k, v in inputs.items()}
    settings = json.loads(json.dumps(jsonable(dict(settings)), allow_nan=False, default=str))
    digest = content_hash({"kind": kind, "inputs": inputs, "settings": settings})
    results = tuple(results)
    record = path / RUN_FILE
    resumed = False
    if record.exists():
        old = _read_run(record)
        if old.get("kind") != kind:
            raise InputError(f"out {path} holds a {old.get('kind')} run; a {kind} run cannot "
                             "use it; give another out directory")
        what = None if restart else _changed(old, inputs, settings)
        if what is not None:
            raise InputError(f"out {path}: {what} since the {kind} run there started; use "
                             "restart (--restart) to start over, or another out directory")
        resumed = not restart
    else:
        found = [f.name for n in results for f in path.glob(n)] if path.is_dir() else []
        if found and not restart:
            raise InputError(f"out {path} already holds {found[0]}, not made by a recorded "
                             f"scalebridge {kind} run; give another out directory, or use "
                             "restart (--restart) to replace it")
    if restart and path.is_dir():
        for n in results:
            for target in path.glob(n):
                if target.is_file():
                    target.unlink()
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    data = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind,
            "versions": versions(), "platform": platform.platform(),
            "call": call if call is not None else (COMMAND.get() or " ".join(sys.argv)),
            "seed": seed, "inputs": inputs, "settings": settings,
            "content_sha256": digest}
    if resumed:
        old_data = _read_run(record)
        data["created"] = old_data.get("created", now)
        data["resumed"] = [*old_data.get("resumed", []), now]
    else:
        data["created"] = now
    write_json(record, data)
    return RunDirectory(path, kind, digest, resumed)
