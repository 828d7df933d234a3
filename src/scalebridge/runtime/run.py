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

__all__ = ["RUN_FILE", "RunDirectory", "open_run", "read_run", "changed_input",
           "content_hash", "fingerprint", "records_checksum", "MAX_DEPTH"]

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


def fingerprint(obj) -> str:
    """SHA-256 of what an input of a run computes with, the same in every process:

    - an object's own ``fingerprint()`` (models, problems, model outputs);
    - a Python function: its source code, the fingerprints of the values it closes over,
      of the module globals it names (a script's ``model`` or ``data``), of its defaults
      and of a ``functools.partial``'s arguments;
    - a NumPy ufunc or builtin: its name; a callable object: its class's source and its
      fields, as a dataclass (equinox modules) or through ``to_dict()``;
    - a result or surrogate: its ``to_dict()``; a dataclass: its fields; arrays and tables
      by content; containers item by item (mappings by key, so order does not count).

    Anything else counts by its type name only, and so does whatever lies more than
    :data:`MAX_DEPTH` references deep."""
    return _Fingerprinter().of(obj, 0)


MAX_DEPTH = 8


class _Fingerprinter:
    """One :func:`fingerprint` call: objects already seen (by id) are hashed once, so a
    function that names other functions costs each once, and cycles end."""

    def __init__(self):
        self.memo: dict[int, str] = {}
        self.keep: list = []  # ids stay valid while the call runs

    def of(self, obj, depth: int) -> str:
        if obj is None or isinstance(obj, bool | int | float | str | bytes):
            return content_hash(repr(obj))
        if depth > MAX_DEPTH:
            return content_hash(type(obj).__qualname__)
        key = id(obj)
        if key in self.memo:
            return self.memo[key]
        self.keep.append(obj)
        self.memo[key] = content_hash(["cycle", type(obj).__qualname__])
        self.memo[key] = value = self._compute(obj, depth + 1)
        return value

    def _compute(self, obj, d: int) -> str:
        import dataclasses
        import functools
        import inspect
        import types

        import numpy as np

        from .files import code_text, unwrap

        own = getattr(obj, "fingerprint", None)
        if callable(own) and not isinstance(obj, type):
            v = own()
            return v if isinstance(v, str) else content_hash(v)
        if isinstance(obj, types.ModuleType):
            return content_hash(["module", obj.__name__])
        if isinstance(obj, np.ufunc | types.BuiltinFunctionType | type):
            return content_hash([type(obj).__qualname__, getattr(obj, "__module__", ""),
                                 getattr(obj, "__qualname__", getattr(obj, "__name__", ""))])
        to_dict = getattr(obj, "to_dict", None)
        if callable(to_dict) and not hasattr(obj, "to_csv"):
            try:  # results and surrogates of the result protocol: their data
                return content_hash([type(obj).__qualname__, self.of(to_dict(), d)])
            except Exception:  # noqa: BLE001 - not data after all: fall through
                pass
        if isinstance(obj, functools.partial):
            return content_hash([self.of(obj.func, d), self.of(list(obj.args), d),
                                 self.of(dict(obj.keywords), d)])
        fn = unwrap(obj)
        if inspect.isfunction(fn) or inspect.ismethod(fn):
            return self._function(fn, d)
        if dataclasses.is_dataclass(obj):
            fields = {f.name: getattr(obj, f.name, None) for f in dataclasses.fields(obj)}
            return content_hash([type(obj).__qualname__, code_text(type(obj))
                                 if callable(obj) else "", self.of(fields, d)])
        if isinstance(obj, Mapping):
            return content_hash({str(k): self.of(v, d) for k, v in obj.items()})
        if isinstance(obj, list | tuple):
            return content_hash([self.of(v, d) for v in obj])
        if isinstance(obj, set | frozenset):
            return content_hash(sorted(self.of(v, d) for v in obj))
        if hasattr(obj, "to_csv"):  # pandas tables
            return content_hash(obj.to_csv())
        if hasattr(obj, "__array__") and not callable(obj):
            a = np.asarray(obj)
            if a.dtype == object:
                return content_hash([str(a.shape), self.of(a.ravel().tolist(), d)])
            return content_hash(f"{a.dtype}{a.shape}".encode() + a.tobytes())
        if callable(obj):  # a callable object: its class
            return content_hash(code_text(type(obj)))
        return content_hash(type(obj).__qualname__)

    def _function(self, fn, d: int) -> str:
        import inspect

        from .files import code_text

        parts = [code_text(fn)]
        if inspect.ismethod(fn):  # a bound method: its object counts
            parts.append(self.of(fn.__self__, d))
            fn = fn.__func__
        for cell in fn.__closure__ or ():
            try:
                parts.append(self.of(cell.cell_contents, d))
            except ValueError:  # an empty cell
                parts.append("")
        parts.append(self.of(list(fn.__defaults__ or ()), d))
        names = _global_names(fn.__code__)
        glob = fn.__globals__
        parts.append({n: self.of(glob[n], d) for n in sorted(names) if n in glob})
        return content_hash(parts)


def _global_names(code) -> set[str]:
    """The global names a code object (and the functions and comprehensions defined in it)
    may read."""
    names = set(code.co_names)
    for c in code.co_consts:
        if hasattr(c, "co_names"):
            names |= _global_names(c)
    return names


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
        if records_key is not None:  # over what a reader gets back from the JSON file
            out["records_sha256"] = _records_of(json.loads(json.dumps(data, allow_nan=False)),
                                                records_key)
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
    if key == "*":  # every entry of the file but the stamps
        key = tuple(sorted(k for k in data if k not in ("run_sha256", "records_sha256")))
    keys = (key,) if isinstance(key, str) else tuple(key)
    return records_checksum([data.get(k) for k in keys])


def read_run(path) -> dict:
    """The run record at ``path`` (a ``run.json``), checked to be one."""
    path = Path(path)
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError):
        data = None
    if not isinstance(data, dict) or data.get("format") != FORMAT or \
            not isinstance(data.get("inputs"), dict) or not isinstance(data.get("settings"), dict):
        raise InputError(f"{path} is not a valid scalebridge run record; use restart "
                         "(--restart) to start over, or another out directory")
    return data


def _brief(value, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for a one-line message."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _numbers_as_floats(x):
    """Settings with every int as a float, so ``beta=2`` and ``beta=2.0`` are the same."""
    if isinstance(x, dict):
        return {k: _numbers_as_floats(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_numbers_as_floats(v) for v in x]
    if isinstance(x, int) and not isinstance(x, bool):
        return float(x)
    return x


def changed_input(old: dict, inputs: dict) -> str | None:
    """A phrase naming the first input of ``inputs`` (as ``{name: {"source", "sha256"}}``)
    whose hash differs from the run record ``old``, or None."""
    for name, new in inputs.items():
        prev = old["inputs"].get(name)
        if not isinstance(prev, dict) or prev.get("sha256") != new["sha256"]:
            src = new.get("source")
            return f"the {name}{f' ({src})' if src else ''} changed"
    return None


def _changed(old: dict, inputs: dict, settings: dict) -> str | None:
    """A phrase naming what differs between a stored run record and this call, or None."""
    what = changed_input(old, inputs)
    if what is not None:
        return what
    for name in old["inputs"]:
        if name not in inputs:
            return f"the {name} is no longer an input"
    diff = sorted(k for k in set(settings) | set(old["settings"])
                  if content_hash(_numbers_as_floats(settings.get(k)))
                  != content_hash(_numbers_as_floats(old["settings"].get(k))))
    if diff:
        return ("the setting " if len(diff) == 1 else "the settings ") + ", ".join(
            f"{k} ({_brief(old['settings'].get(k))} -> {_brief(settings.get(k))})"
            for k in diff) + " changed"
    return None


def open_run(out, kind: str, *, inputs: Mapping[str, tuple[str | None, str]],
             settings: Mapping, seed: int | None = None, restart: bool = False,
             results: Iterable[str] = (), call: str | None = None) -> RunDirectory:
    """Open ``out`` as the run directory of a ``kind`` run and write its ``run.json``.

    ``inputs``: ``{name: (source, sha256)}`` (``source`` names the file an input came from,
    or None); ``settings``: JSON-able settings that change the results; ``results``: the
    file names (or glob patterns) this kind of run writes, by the API or by the command
    beside it (plots, tables): all removed on ``restart``; without a ``run.json``, their
    presence means the directory holds someone else's work, which is refused.
    ``call``: what started the run (default: the command line). Raises
    :class:`~scalebridge.errors.InputError` naming the input or setting that changed since
    the run in ``out`` started, or the kind of run that owns it."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise InputError(f"out {path} is a file; give a directory")
    inputs = {str(k): {"source": None if v[0] is None else str(v[0]), "sha256": str(v[1])}
              for k, v in inputs.items()}
    settings = json.loads(json.dumps(jsonable(dict(settings)), allow_nan=False, default=str))
    digest = content_hash({"kind": kind, "inputs": inputs,
                           "settings": _numbers_as_floats(settings)})
    results = tuple(results)
    record = path / RUN_FILE
    resumed = False
    if record.exists():
        old = read_run(record)
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
        data["created"] = old.get("created", now)
        data["resumed"] = [*old.get("resumed", []), now]
    else:
        data["created"] = now
    write_json(record, data)
    return RunDirectory(path, kind, digest, resumed)
