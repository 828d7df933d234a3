"""Helpers shared by the result objects: JSON, atomic writes and bar charts."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..errors import SerializationError
from ..io import write_atomic

FORMAT_VERSION = 1


def jsonable(x):
    """NumPy arrays and scalars as JSON values; NaN and inf become null."""
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def array(x) -> np.ndarray | None:
    """The inverse of :func:`jsonable` for arrays (null back to NaN)."""
    if x is None:
        return None
    return np.asarray(np.array(x, dtype=object).astype(float))


def write_text(path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (a temporary file, then a rename)."""
    return write_atomic(path, lambda fh: fh.write(text.encode()))


def dumps(payload: dict) -> str:
    return json.dumps(jsonable(payload), indent=2, allow_nan=False)


def read_json(text_or_path, kind: str, what: str) -> dict:
    """The fields of a result written by ``to_json`` (a JSON string or a file path),
    checked to be of ``kind`` and of this format version; ``what`` names it in messages."""
    text = str(text_or_path)
    if not text.lstrip().startswith("{"):
        text = Path(text_or_path).read_text()
    try:
        d = json.loads(text)
    except ValueError as exc:
        raise SerializationError(f"not a {what} result JSON: {exc}") from None
    if d.get("kind") != kind or d.get("format_version") != FORMAT_VERSION:
        raise SerializationError(f"not a {what} result of format version {FORMAT_VERSION}; "
                                 "write it with to_json()")
    return d


class JSONResult:
    """``to_json`` for result classes that define ``to_dict``."""

    def to_json(self, path=None) -> str:
        """The result as JSON (NaN as null); written atomically to ``path`` if given."""
        text = dumps(self.to_dict())
        if path is not None:
            write_text(path, text)
        return text


def bar_chart(path, names, series, title: str, ylabel: str):
    """Grouped bars; ``series`` is a list of ``(label, values, errors)`` where ``errors``
    is None, a ``(d,)`` half-width or a ``(2, d)`` array of lower and upper distances."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    d = len(names)
    k = len(series)
    width = 0.8 / k
    fig, ax = plt.subplots(figsize=(min(12.0, max(4.0, 0.35 * d * k + 2)), 4.0))
    x = np.arange(d)
    for j, (label, values, errors) in enumerate(series):
        err = None
        if errors is not None:
            err = np.nan_to_num(np.asarray(errors, dtype=float))
            err = np.clip(err, 0.0, None)
        ax.bar(x + (j - (k - 1) / 2) * width, np.asarray(values, dtype=float), width,
               yerr=err, capsize=3, label=label)
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=45 if d > 6 else 0, ha="right" if d > 6 else "center")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.axhline(0.0, color="k", lw=0.6)
    if k > 1:
        ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
