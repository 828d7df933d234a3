"""``scalebridge models``: list the model zoo."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def models() -> None:
    """List the models of the zoo with their sizes and sources."""
    from ..model.zoo import ZOO

    table = Table(title="scalebridge model zoo")
    for col in ("name", "states", "parameters", "reference"):
        table.add_column(col)
    for name, factory in ZOO.items():
        m = factory()
        ref = m.citation.split("\n")[0]
        table.add_row(name, str(len(m.state_names)), str(len(m.parameters)), ref)
    Console(width=160).print(table)
