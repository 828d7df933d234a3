"""Entry point of the ``scalebridge`` command.

Every failure prints one ``error:`` line on stderr and exits non-zero, with no traceback:
the failures the user can fix (a bad argument, a missing or malformed file, a solver
failure) name the input and the fix; anything else names the exception. ``--debug``
(anywhere on the command line) shows the traceback instead. Warnings go to stderr.
``scalebridge --version`` prints the versions that make results.
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
def _version(value: bool) -> None:
    if value:
        from ..runtime.run import versions

        typer.echo(" ".join(f"{k} {v}" for k, v in versions().items()))
        raise typer.Exit()


@app.callback()
def _options(version: bool = typer.Option(False, "--version", callback=_version,
                                          is_eager=True, help="Print the versions and exit."),
             debug: bool = typer.Option(False, "--debug", help="Show the traceback of an "
                                        "error instead of one line.")) -> None:
    """Machine learning joined with multiscale mechanistic models."""


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
    import warnings

    from .. import errors

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    show = warnings.showwarning

    def to_stderr(message, category, filename, lineno, file=None, line=None):
        print(f"warning: {' '.join(str(message).split())}", file=sys.stderr)

    from ..runtime.run import COMMAND

    warnings.showwarning = to_stderr
    token = COMMAND.set(" ".join(["scalebridge", *argv]))
    try:
        app(args=argv, prog_name="scalebridge", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        return _fail("aborted", 130)
    except typer.TyperException as exc:  # usage errors: bad option, missing argument
        return _fail(exc.format_message(), 2)
    except errors.ScalebridgeError as exc:
        if debug:
            raise
        return _fail(str(exc), 1)
    except OSError as exc:
        if debug:
            raise
        return _fail(f"{exc.filename or ''}: {exc.strerror or exc}", 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as exc:  # a bug or an unforeseen input: still one line, no traceback
        if debug:
            raise
        text = str(exc).strip().splitlines()
        return _fail(f"{type(exc).__name__}: {text[0] if text else ''} (run again with "
                     "--debug for the traceback)", 1)
    finally:
        warnings.showwarning = show
        COMMAND.reset(token)
    return 0


def _fail(message: str, code: int) -> int:
    print("error: " + " ".join(str(message).split()), file=sys.stderr)
    return code


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
