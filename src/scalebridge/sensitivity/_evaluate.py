"""Evaluating the user's function on a design: JAX (jit, fixed-size batches) or a NumPy
black box (called on NumPy chunks, here or through an executor)."""

from __future__ import annotations

import hashlib
import warnings
import zipfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputError, SerializationError
from ..runtime.files import write_atomic

# rows per call when the caller gives no batch size (pure functions are cheap per row)
_DEFAULT_BATCH = 65536


def is_jax_function(f, d: int) -> bool:
    """Whether ``f`` traces under JAX to a ``(m,)`` output for an ``(m, d)`` input.

    A NumPy function fails when it turns a tracer into an array; any failure to trace means
    "call it as a black box". An object may answer for itself with ``is_jax``."""
    own = getattr(f, "is_jax", None)
    if isinstance(own, bool):
        return own
    try:
        out = jax.eval_shape(f, jax.ShapeDtypeStruct((2, d), jnp.float64))
    except Exception:
        return False
    return getattr(out, "shape", None) == (2,)


def _as_output(y, m: int, name: str = "f") -> np.ndarray:
    try:
        arr = np.asarray(y, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{name} must return numbers, got {type(y).__name__}") from None
    if arr.shape == (m, 1):
        arr = arr[:, 0]
    if arr.shape != (m,):
        raise InputError(f"{name} returned shape {arr.shape} for {m} input rows; it must map "
                         f"an (m, d) array to an (m,) array of outputs (one scalar per row)")
    return arr


def _call_numpy(f, chunk):
    return np.asarray(f(chunk), dtype=float)


def _call_jax(f, chunk):
    if getattr(f, "compiled", False):  # compiles itself (ModelOutput)
        return np.asarray(f(chunk), dtype=float)
    return np.asarray(jax.jit(f)(jnp.asarray(chunk)), dtype=float)


class _Checkpoint:
    """Outputs evaluated so far, in an ``.npz`` file (no pickle) written atomically after
    every chunk; valid only for the same design and function (the SHA-256 of the design
    and the function's :func:`~scalebridge.runtime.run.fingerprint`, which for a model
    output covers the model's content, are stored with it)."""

    def __init__(self, path, x: np.ndarray, f):
        self.path = Path(path)
        if self.path.suffix != ".npz":
            raise InputError(f"checkpoint {self.path}: give a .npz file name")
        from ..runtime.run import fingerprint

        design = hashlib.sha256(np.ascontiguousarray(x).tobytes()).digest()
        self.digest = np.frombuffer(design, dtype=np.uint8)
        self.function = np.frombuffer(bytes.fromhex(fingerprint(f)), dtype=np.uint8)
        m = x.shape[0]
        self.y, self.done = np.full(m, np.nan), np.zeros(m, dtype=bool)
        if self.path.exists():
            try:
                with np.load(self.path, allow_pickle=False) as data:
                    digest, y, done = data["design_sha256"], data["y"], data["done"]
                    function = data["function_sha256"]
            except (OSError, ValueError, KeyError, zipfile.BadZipFile):
                raise SerializationError(f"checkpoint {self.path} is damaged or from another "
                                         "version; delete it to start afresh") from None
            if not np.array_equal(digest, self.digest) or y.shape != (m,):
                raise InputError(f"checkpoint {self.path} belongs to another design (other "
                                 "bounds, n, seed or method); delete it or use another path")
            if not np.array_equal(function, self.function):
                raise InputError(f"checkpoint {self.path} holds the values of another function "
                                 "(the model, its output or the function's code changed); "
                                 "delete it or use another path")
            if done.shape != (m,):
                raise SerializationError(f"checkpoint {self.path} is damaged; delete it to "
                                         "start afresh")
            self.y, self.done = y.astype(float), done.astype(bool)

    def save(self):
        write_atomic(self.path, lambda fh: np.savez(fh, design_sha256=self.digest, y=self.y,
                                                    done=self.done,
                                                    function_sha256=self.function))


EVALUATIONS = "evaluations.npz"


def evaluations_file(out, kind: str, f, settings: dict, restart: bool):
    """The checkpoint file of a ``kind`` run (``"sobol"``, ``"morris"``) in the run
    directory ``out`` (:mod:`scalebridge.runtime.run`: the function's fingerprint and the
    design settings are recorded; a resume after a change is refused unless ``restart``),
    or None without ``out``."""
    if out is None:
        return None
    from ..runtime.run import fingerprint, open_run

    run = open_run(out, kind, inputs={"function": (None, fingerprint(f))}, settings=settings,
                   restart=restart,
                   results=(EVALUATIONS, "indices.json", "indices.csv", "indices.png"))
    return run.file(EVALUATIONS)


def evaluate(f, x: np.ndarray, *, jax_mode: bool | None = None, executor=None,
             batch_size: int | None = None, progress=None, checkpoint=None) -> np.ndarray:
    """``f`` on every row of ``x`` (shape ``(m, d)``) -> ``(m,)`` NumPy outputs.

    ``jax_mode``: True (jit ``f``), False (NumPy black box) or None (detect). Rows go in
    chunks of ``batch_size`` (``f.batch_size`` if it has one, else up to 65536); a JAX
    ``f`` sees every chunk padded to the same size, so it compiles once. ``executor``: a
    spec for :func:`scalebridge.runtime.executor.get_executor`; the chunks are its tasks.
    ``progress(done, total)`` (e.g. a :class:`~scalebridge.Progress`) is called after each
    chunk. ``checkpoint``: an ``.npz`` path
    where the outputs are saved after every chunk; rows already there are not evaluated
    again (an interrupted run resumes).
    """
    if not callable(f):
        raise InputError(f"f must be a function of an (m, d) array, got {type(f).__name__}")
    m, d = x.shape
    if batch_size is None:
        batch_size = getattr(f, "batch_size", None) or _DEFAULT_BATCH
    bs = int(batch_size)
    if bs < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}")
    ckpt = None if checkpoint is None else _Checkpoint(checkpoint, x, f)
    out = np.full(m, np.nan) if ckpt is None else ckpt.y
    todo = np.arange(m) if ckpt is None else np.flatnonzero(~ckpt.done)
    done = m - todo.size
    if progress is not None and done:
        progress(done, m)
    if todo.size == 0:
        return out
    if jax_mode is None:
        jax_mode = is_jax_function(f, d)
    bs = min(bs, todo.size)
    rows = [todo[i:i + bs] for i in range(0, todo.size, bs)]
    chunks = [x[r] for r in rows]
    if jax_mode and chunks[-1].shape[0] < bs:  # pad: one compiled shape serves every chunk
        last = chunks[-1]
        chunks[-1] = np.concatenate([last, np.repeat(last[:1], bs - last.shape[0], axis=0)])

    def record(i, y):
        nonlocal done
        y = _as_output(y, chunks[i].shape[0])
        out[rows[i]] = y[:rows[i].size]
        done += rows[i].size
        if ckpt is not None:
            ckpt.done[rows[i]] = True
            ckpt.save()
        if progress is not None:
            progress(done, m)

    if executor is None:
        if jax_mode and getattr(f, "compiled", False):
            jf = f  # it compiles itself, and keeps its compilation between calls
        elif jax_mode:
            jf = jax.jit(f)
        else:
            jf = None
        for i, chunk in enumerate(chunks):
            if jf is None or jf is f:
                record(i, f(chunk))
            else:
                record(i, np.asarray(jf(jnp.asarray(chunk)), dtype=float))
        return out
    from ..runtime.executor import get_executor

    ex = get_executor(executor)
    fn = _call_jax if jax_mode else _call_numpy
    try:
        for i, y in ex.map(fn, [(f, c) for c in chunks]):
            record(i, y)
    finally:
        if ex is not executor:
            ex.close()
    return out


def warn_nonfinite(n_bad: int, total: int, what: str) -> None:
    if n_bad:
        warnings.warn(f"{n_bad} of {total} evaluations of f were NaN or infinite; {what}",
                      RuntimeWarning, stacklevel=3)
