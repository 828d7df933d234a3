"""The interface of scalebridge's own single-run integrators (fixed-step schemes such as
operator splitting), which :func:`scalebridge.simulate` calls once per event-free segment."""

from __future__ import annotations

import abc

import equinox as eqx


class AbstractSegmentSolver(eqx.Module):
    """A solver that integrates ``model`` over one segment without events.

    ``integrate(model, t0, t1, ts, y0, p)`` returns ``(ys, y1, ok)``: the states at the
    output times ``ts`` (all in ``[t0, t1]``; shape ``(len(ts), n_states)``), the state at
    ``t1``, and a boolean success flag. It must be a pure JAX function (it runs under jit).
    """

    @abc.abstractmethod
    def integrate(self, model, t0, t1, ts, y0, p):
        """Integrate from ``t0`` to ``t1``; see the class docstring."""

    def check(self, model):
        """Checks on the concrete model before anything is traced (raise
        :class:`~scalebridge.errors.InputError`); none by default."""
