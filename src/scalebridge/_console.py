"""Progress of long library runs (``verbose=True``), on standard error via rich."""

from __future__ import annotations

import time

from rich.console import Console

_CONSOLE = Console(stderr=True, highlight=False)


def progress(message: str) -> None:
    """Print one progress line (no markup interpretation)."""
    _CONSOLE.print(message, markup=False, soft_wrap=True)


class Progress:
    """The one progress meter of long runs: ``update(done, **values)`` prints a line at the
    first unit, at every tenth of ``total`` and at the last, with the values and the
    elapsed time; ``note(message)`` prints a line. Silent when ``enabled`` is false.

    ``label`` names the work (``"adam"``, ``"lbfgs"``, ``"sample"``); one meter can be
    relabelled between phases with :meth:`phase`, and its clock keeps running.
    """

    def __init__(self, total: int, label: str = "", *, enabled: bool = True):
        self.total, self.label, self.enabled = int(total), label, bool(enabled)
        self.start = time.perf_counter()

    def phase(self, label: str, total: int) -> Progress:
        """Relabel the meter for the next phase of ``total`` units; returns it."""
        self.label, self.total = label, int(total)
        return self

    def due(self, done: int) -> bool:
        """Whether :meth:`update` prints at ``done`` (callers skip computing values else)."""
        return self.enabled and (done == 1 or done == self.total
                                 or done % max(1, self.total // 10) == 0)

    def update(self, done: int, **values: float) -> None:
        if not self.due(done):
            return
        shown = "  ".join(f"{k} {v:.3e}" for k, v in values.items())
        progress(f"  {self.label:5s} {done:6d}/{self.total}  {shown}  "
                 f"({time.perf_counter() - self.start:.1f} s)")

    def note(self, message: str) -> None:
        if self.enabled:
            progress(message)
