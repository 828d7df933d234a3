"""The ``scalebridge`` command line (Typer); one module per sub-command."""
