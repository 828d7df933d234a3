"""Stiff ensemble solvers: Rodas5 / Rodas4 Rosenbrock methods for ``simulate_ensemble``.

``scalebridge.solvers.Rodas5()`` (the default of :func:`scalebridge.simulate_ensemble` for
stiff models) integrates every member with its own adaptive step size inside one compiled
loop; see :mod:`scalebridge.solvers.ensemble` and ``docs/decisions/0002-ensemble-solver.md``.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx

from ..errors import InputError
from .rosenbrock import RODAS4, RODAS5, Tableau, inverse, rosenbrock_step


class AbstractRosenbrock(eqx.Module):
    """A Rosenbrock ensemble solver for :func:`scalebridge.simulate_ensemble`.

    ``slots``: how many members are integrated side by side (``None``: 16, the best
    measured on CPU; larger values suit accelerators). ``driver``: ``"refill"`` (a finished
    member's slot takes the next member from the queue) or ``"lockstep"`` (``jax.vmap`` of
    one loop per member: all members iterate until the slowest is done).
    """

    slots: int | None = eqx.field(static=True, default=None)
    driver: str = eqx.field(static=True, default="refill")
    tableau: ClassVar[Tableau]

    def __check_init__(self):
        if self.driver not in ("refill", "lockstep"):
            raise InputError(f"driver must be 'refill' or 'lockstep', got {self.driver!r}")
        if self.slots is not None and int(self.slots) < 1:
            raise InputError(f"slots must be a positive integer, got {self.slots!r}")


class Rodas5(AbstractRosenbrock):
    """Rodas5, order 5(4), L-stable, stiffly accurate: Di Marzo (1993); Hairer & Wanner (1996),
    *Solving ODEs II*, Sect. IV.7 and VI.4."""

    tableau: ClassVar[Tableau] = RODAS5


class Rodas4(AbstractRosenbrock):
    """Rodas4, order 4(3), L-stable, stiffly accurate: Hairer & Wanner (1996), *Solving ODEs
    II*, Sect. VI.4, Table 4.3."""

    tableau: ClassVar[Tableau] = RODAS4


__all__ = ["AbstractRosenbrock", "Rodas5", "Rodas4", "Tableau", "RODAS5", "RODAS4",
           "rosenbrock_step", "inverse"]
