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

__all__ = ["write_atomic", "write_json", "read_json", "jsonable", "code_text"]


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


def code_text(fn) -> str:
    """The source code of a Python function (of the function a ``jax.jit``,
    ``functools.partial`` or equinox wrapper holds), or its qualified name where the source
    is not available: what a run directory hashes for a function it cannot read as data."""
    seen = 0
    while seen < 8:
        seen += 1
        inner = getattr(fn, "__wrapped__", None) or getattr(fn, "func", None)
        if inner is None or inner is fn:
            break
        fn = inner
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}"
