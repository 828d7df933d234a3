"""The model zoo: published models ready to simulate, one module per model.

``load_zoo(name)`` builds a model by name; ``zoo_names()`` lists them. Every model carries
its reference in ``model.citation`` and ``model.source == ("zoo", name)``.
"""

from __future__ import annotations

from collections.abc import Callable

from ...errors import InputError
from ..model import Model
from . import (
    aliev_panfilov,
    beeler_reuter,
    fitzhugh_nagumo,
    glucose_insulin,
    hodgkin_huxley,
    lorenz,
    lotka_volterra,
    pk_two_compartment,
    seir,
    sir,
    yeast_glycolysis,
)

# name -> factory; each factory lives in the module of the same name (whose keyword
# arguments, e.g. the stimulus or the dosing schedule, can change the defaults)
ZOO: dict[str, Callable[[], Model]] = {
    "lotka_volterra": lotka_volterra.lotka_volterra,
    "fitzhugh_nagumo": fitzhugh_nagumo.fitzhugh_nagumo,
    "hodgkin_huxley": hodgkin_huxley.hodgkin_huxley,
    "aliev_panfilov": aliev_panfilov.aliev_panfilov,
    "beeler_reuter": beeler_reuter.beeler_reuter,
    "yeast_glycolysis": yeast_glycolysis.yeast_glycolysis,
    "sir": sir.sir,
    "seir": seir.seir,
    "glucose_insulin": glucose_insulin.glucose_insulin,
    "pk_two_compartment": pk_two_compartment.pk_two_compartment,
    "lorenz": lorenz.lorenz,
}


def zoo_names() -> list[str]:
    """The names of the zoo's models, sorted."""
    return sorted(ZOO)


def load_zoo(name: str) -> Model:
    """A fresh model of the zoo by name, e.g. ``load_zoo("hodgkin_huxley")``.

    Raises :class:`~scalebridge.errors.InputError` for an unknown name.
    """
    try:
        factory = ZOO[name]
    except (KeyError, TypeError):
        raise InputError(
            f"no zoo model named {name!r}; known models: {', '.join(zoo_names())}"
        ) from None
    return factory()


__all__ = ["ZOO", "zoo_names", "load_zoo"]
