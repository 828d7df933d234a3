"""Progress of long runs, on standard error via rich: the one progress meter."""

from __future__ import annotations

import math
import time

from rich.console import Console

_CONSOLE = Console(stderr=True, highlight=False)


def progress(message: str) -> None:
    """Print one progress line (no markup interpretation)."""
    _CONSOLE.print(message, markup=False, soft_wrap=True)


class Progress:
    """The one progress meter. Every long-running function takes ``progress=`` and calls it
    as ``progress(done, total, **info)`` after each unit of work (a start of ``fit``, a
    profiled parameter, a chunk of NUTS iterations or of Sobol' evaluations, a sweep point,
    a training step); ``info`` holds what that work reports (``best_nll``, ``parameter``,
    ``phase``, loss terms, ...). Any function of that signature will do; this class shows it:

    - ``Progress("fit")`` prints a line at the first unit, every tenth of ``total`` and the
      last, with the numbers and strings of ``info`` and the elapsed time;
    - ``Progress("fit", bar=True)`` draws a rich progress bar (use it as a context manager,
      or call :meth:`close`), with ``info`` beside it.

    ``enabled=False`` shows nothing. ``label`` can change between phases.
    """

    def __init__(self, label: str = "", *, bar: bool = False, enabled: bool = True):
        self.label, self.bar, self.enabled = label, bool(bar), bool(enabled)
        self.start = time.perf_counter()
        self._rich = None
        self._task = None

    def due(self, done: int, total: int) -> bool:
        """Whether a line meter prints at ``done`` (callers skip gathering ``info`` else)."""
        if not self.enabled:
            return False
        return self.bar or done <= 1 or done >= total or done % max(1, total // 10) == 0

    def __call__(self, done: int, total: int, **info) -> None:
        if not self.due(done, total):
            return
        shown = "  ".join(f"{k} {_fmt(v)}" for k, v in info.items()
                          if isinstance(v, str | int | float) and not isinstance(v, bool))
        if self.bar:
            self._draw(done, total, shown)
        else:
            progress(f"  {self.label:5s} {_fmt(done):>6}/{_fmt(total)}  {shown}  "
                     f"({time.perf_counter() - self.start:.1f} s)")

    def _draw(self, done, total, shown):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as Bar

        if self._rich is None:
            self._rich = Bar(TextColumn("{task.description}"), BarColumn(),
                             MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                             TimeElapsedColumn(), TimeRemainingColumn(), console=_CONSOLE,
                             transient=True)
            self._rich.start()
            self._task = self._rich.add_task(self.label, total=total, info="")
        self._rich.update(self._task, completed=done, total=total, info=shown,
                          description=self.label)

    def note(self, message: str) -> None:
        """Print a line (above the bar, when one is drawn)."""
        if self.enabled:
            (self._rich.console.print(message, markup=False) if self._rich is not None
             else progress(message))

    def close(self) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) and 1e-3 <= abs(v) < 1e5 or v == 0 else f"{v:.3e}"
    return str(v)
