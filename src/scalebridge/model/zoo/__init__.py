"""The model zoo: published models ready to simulate, one module per model.

``load_zoo(name)`` builds a model by name; ``zoo_names()`` lists them. Every model carries
its reference in ``model.citation`` and ``model.source == ("zoo", name)``.
"""

from __future__ import annotations

from collections.abc import Callable

from ...errors import InputError
from ..model import Model
from .aliev_panfilov import aliev_panfilov
from .beeler_reuter import beeler_reuter
from .fitzhugh_nagumo import fitzhugh_nagumo
from .glucose_insulin import glucose_insulin
from .hodgkin_huxley import hodgkin_huxley
from .lorenz import lorenz
from .lotka_volterra import lotka_volterra
from .pk_two_compartment import pk_two_compartment
from .seir import seir
from .sir import sir
from .yeast_glycolysis import yeast_glycolysis

ZOO: dict[str, Callable[[], Model]] = {
    "lotka_volterra": lotka_volterra,
    "fitzhugh_nagumo": fitzhugh_nagumo,
    "hodgkin_huxley": hodgkin_huxley,
    "aliev_panfilov": aliev_panfilov,
    "beeler_reuter": beeler_reuter,
    "yeast_glycolysis": yeast_glycolysis,
    "sir": sir,
    "seir": seir,
    "glucose_insulin": glucose_insulin,
    "pk_two_compartment": pk_two_compartment,
    "lorenz": lorenz,
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


__all__ = ["ZOO", "zoo_names", "load_zoo", *ZOO]
