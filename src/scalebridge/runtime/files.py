"""Atomic files: every result file is written to a temporary file next to its target and
renamed over it, so readers never see a half-written file and a run killed at any moment
leaves the previous version."""

from __future__ import annotations

import inspect
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

__all__ = ["write_atomic", "write_json", "write_text", "read_json", "read_text", "read_csv",
           "read_yaml", "jsonable",
           "code_text", "MAX_YAML_NODES"]

MAX_YAML_NODES = 100_000  # a YAML document larger than this once its aliases are expanded


def write_atomic(path, write: Callable) -> Path:
    """Call ``write(binary file handle)`` on a temporary file next to ``path`` and rename it
    over ``path``: readers never see a half-written file, and a run killed midway leaves the
    previous version."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes owner-only files; results are for sharing
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_text(path, text: str) -> Path:
    """Write ``text`` (UTF-8) atomically to ``path``."""
    data = text.encode()
    return write_atomic(path, lambda fh: fh.write(data))


def jsonable(x):
    """NumPy arrays and scalars as JSON values; NaN and inf become null."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def write_json(path, data) -> Path:
    """Write ``data`` as JSON (strict: no NaN or infinity) atomically to ``path``."""
    text = json.dumps(data, indent=1, allow_nan=False).encode()
    return write_atomic(path, lambda fh: fh.write(text))


def read_json(path, fmt: str, what: str) -> dict | None:
    """The JSON document of format ``fmt`` at ``path`` (None if there is none); ``what``
    names it in the one-line :class:`~scalebridge.errors.InputError` raised when the file
    is not valid JSON, not UTF-8 or not of that format (its content is never quoted)."""
    from ..errors import InputError

    path = Path(path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read the {what}: {exc.strerror}") from None
    except ValueError:
        raise InputError(f"{path}: the {what} file is damaged (not valid UTF-8 JSON); use "
                         "restart (--restart) to start over, or another out directory") \
            from None
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise InputError(f"{path} is not a scalebridge {what} file")
    return data


def read_text(path, what: str = "file") -> str:
    """The UTF-8 text of ``path``; a file that is missing, unreadable or not UTF-8 gives a
    one-line :class:`~scalebridge.errors.InputError` naming it (never quoting it)."""
    from ..errors import InputError

    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such {what}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the {what}: {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: the {what} is not UTF-8 text (byte {exc.start}); save it "
                         "as UTF-8") from None


def read_csv(path, what: str = "CSV table", sep: str = ","):
    """A pandas table of the UTF-8 CSV file at ``path``; a file that cannot be parsed gives
    a one-line :class:`~scalebridge.errors.InputError` naming it (pandas' own messages,
    which can quote the file, are not passed on)."""
    import io

    import pandas as pd

    from ..errors import InputError

    text = read_text(path, what)
    try:
        return pd.read_csv(io.StringIO(text), sep=sep)
    except Exception:  # noqa: BLE001 - any parser failure is the same user error
        raise InputError(f"{path}: not a readable {what} (comma-separated, a header line "
                         "of column names)") from None


def read_yaml(path, what: str = "YAML file"):
    """The YAML document at ``path``, read safely: ``yaml.safe_load`` (no tags that build
    objects), UTF-8 checked, and aliases bounded: a document that expands to more than
    :data:`MAX_YAML_NODES` nodes (an "alias bomb") is refused before anything walks it.
    Errors name the file and the line, without quoting its content."""
    import yaml

    from ..errors import InputError

    path = Path(path)
    text = read_text(path, what)
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise InputError(f"{path.name}{where}: not valid YAML ({problem})") from None
    if _expanded_size(doc) > MAX_YAML_NODES:
        raise InputError(f"{path.name}: the YAML document expands (through its aliases) to "
                         f"more than {MAX_YAML_NODES:,} values; write it without aliases")
    return doc


def _expanded_size(doc) -> int:
    """How many values ``doc`` holds with every shared (aliased) part counted each time it
    is used, computed once per distinct object (so it is cheap even for an alias bomb)."""
    memo: dict[int, int] = {}

    def size(x) -> int:
        if not isinstance(x, dict | list):
            return 1
        key = id(x)
        if key not in memo:
            memo[key] = MAX_YAML_NODES + 1  # a cycle counts as too large
            items = list(x.keys()) + list(x.values()) if isinstance(x, dict) else x
            total = 1
            for v in items:
                total += size(v)
                if total > MAX_YAML_NODES:
                    break
            memo[key] = total
        return memo[key]

    return size(doc)


def unwrap(fn, partial: bool = False):
    """The function inside ``jax.jit`` / ``functools.wraps`` wrappers (and, with
    ``partial``, inside a ``functools.partial``)."""
    for _ in range(8):
        inner = getattr(fn, "__wrapped__", None) or (getattr(fn, "func", None) if partial
                                                     else None)
        if inner is None or inner is fn:
            break
        fn = inner
    return fn


def code_text(fn) -> str:
    """The source code of a Python function (of the function a ``jax.jit``,
    ``functools.partial`` or equinox wrapper holds), or its qualified name where the source
    is not available: what a run directory hashes for a function it cannot read as data."""
    fn = unwrap(fn, partial=True)
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}"
