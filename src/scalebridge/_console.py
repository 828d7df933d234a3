"""Progress messages of long library runs (``verbose=True``), on standard error via rich."""

from __future__ import annotations

from rich.console import Console

_CONSOLE = Console(stderr=True, highlight=False)


def progress(message: str) -> None:
    """Print one progress line (no markup interpretation)."""
    _CONSOLE.print(message, markup=False, soft_wrap=True)
