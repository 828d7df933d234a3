"""Every user-facing failure of scalebridge is one of these exceptions.

Each message names the input that was wrong and says how to fix it. All derive from
:class:`ScalebridgeError`, so ``except ScalebridgeError`` catches anything the package
raises on purpose; the command line turns them into one line and a non-zero exit.
"""


class ScalebridgeError(Exception):
    """Base class of all errors raised on purpose by scalebridge."""


class InputError(ScalebridgeError, ValueError):
    """An argument has the wrong value, name, shape or type."""


class ModelError(ScalebridgeError, ValueError):
    """A model definition is inconsistent (names, sizes, initial state)."""


class SBMLError(ScalebridgeError, ValueError):
    """An SBML file cannot be read, or uses a feature scalebridge does not support."""


class SimulationError(ScalebridgeError, RuntimeError):
    """The ODE solver failed (step limit, step size collapse, non-finite values)."""


class SerializationError(ScalebridgeError, ValueError):
    """A saved file is of the wrong kind or version, or is corrupt."""


def quoted(text, limit: int = 80) -> str:
    """``repr(text)`` for an error message, cut to ``limit`` characters (a message is one
    line, and never repeats a long piece of a file)."""
    text = str(text)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"
