"""Entry point of the ``scalebridge`` command.

Every failure the user can fix (a bad argument, a missing or malformed file, a solver
failure) prints one line on stderr and exits non-zero; no traceback.
"""

from __future__ import annotations

import sys

import typer

from .calibrate import fit, profile, sample
from .discover import app as discover_app
from .discover import sindy as sindy_command
from .ensemble import ensemble
from .explore import explore
from .models import models
from .pinn import pinn
from .sensitivity import sensitivity
from .simulate import simulate
from .surrogate import app as surrogate_app
from .surrogate import train_cell
from .tissue import tissue

app = typer.Typer(
    name="scalebridge",
    help="Machine learning joined with multiscale mechanistic models.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("models")(models)
app.command("simulate")(simulate)
app.command("tissue")(tissue)
app.command("ensemble")(ensemble)
app.command("fit")(fit)
app.command("profile")(profile)
app.command("sample")(sample)
app.command("sensitivity")(sensitivity)
app.command("explore")(explore)
app.command("pinn")(pinn)
app.add_typer(discover_app, name="discover")
discover_app.command("sindy")(sindy_command)
app.add_typer(surrogate_app, name="surrogate")
surrogate_app.command("train-cell")(train_cell)


def main(argv: list[str] | None = None) -> int:
    """Run the command line on ``argv`` and return the exit code."""
    from .. import errors

    try:
        app(args=argv, prog_name="scalebridge", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        return _fail("aborted", 130)
    except typer.TyperException as exc:  # usage errors: bad option, missing argument
        return _fail(exc.format_message(), 2)
    except errors.ScalebridgeError as exc:
        return _fail(str(exc), 1)
    except OSError as exc:
        return _fail(f"{exc.filename or ''}: {exc.strerror or exc}", 1)
    return 0


def _fail(message: str, code: int) -> int:
    print("error: " + " ".join(str(message).split()), file=sys.stderr)
    return code


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
