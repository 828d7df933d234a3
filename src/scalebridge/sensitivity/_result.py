"""Helpers shared by the sensitivity result objects: arrays from JSON and bar charts."""

from __future__ import annotations

import numpy as np

from ..errors import SerializationError

FORMAT_VERSION = 1


def array(x) -> np.ndarray | None:
    """An array from a list (JSON null back to NaN) or an array; None stays None."""
    if x is None:
        return None
    return np.asarray(np.array(x, dtype=object).astype(float))


def check_kind(d, kind: str, what: str) -> dict:
    """``d`` (a :meth:`to_dict` of a result), checked to be of ``kind`` and this format
    version; ``what`` names it in messages."""
    if not isinstance(d, dict) or d.get("kind") != kind \
            or d.get("format_version") != FORMAT_VERSION:
        found = (d.get("kind"), d.get("format_version")) if isinstance(d, dict) else type(d)
        raise SerializationError(f"not a {what} result of format version {FORMAT_VERSION} "
                                 f"(found kind and version {found})")
    return d


def bar_chart(ax, names, series, title: str, ylabel: str):
    """Grouped bars into ``ax`` (a new figure if None); ``series`` is a list of ``(label,
    values, errors)`` where ``errors`` is None, a ``(d,)`` half-width or a ``(2, d)`` array
    of lower and upper distances. Returns the axes."""
    d = len(names)
    k = len(series)
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(min(12.0, max(4.0, 0.35 * d * k + 2)), 4.0))
    width = 0.8 / k
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
    return ax
