"""Two-compartment pharmacokinetic model with first-order absorption and a dosing schedule.

Gabrielsson J, Weiner D (2016) Pharmacokinetic and Pharmacodynamic Data Analysis:
Concepts and Applications, 5th ed. Swedish Pharmaceutical Press (two-compartment models).

States (mg): ``depot`` (gut, oral doses), ``central`` (volume V1), ``peripheral`` (V2) and
``eliminated`` (cumulative amount cleared, so that the states always sum to the total
dose given). Time in hours. Doses are :func:`~scalebridge.model.events.bolus` events into
the depot (``route="oral"``) or the central compartment (``route="iv"``)::

    d depot/dt      = -ka depot
    d central/dt    =  ka depot - (CL + Q)/V1 central + Q/V2 peripheral
    d peripheral/dt =  Q/V1 central - Q/V2 peripheral
    d eliminated/dt =  CL/V1 central

Observables: ``C`` = central / V1 (plasma concentration, mg/l) and ``C_peripheral``.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ...errors import InputError
from ..events import bolus
from ..model import Model
from ..parameter import Parameter

CITATION = (
    "Gabrielsson J, Weiner D (2016) Pharmacokinetic and Pharmacodynamic Data Analysis: "
    "Concepts and Applications, 5th ed., Swedish Pharmaceutical Press"
)


def _rhs(t, y, p, u):
    depot, central, peripheral, _eliminated = y
    ka, cl, v1, q, v2 = p
    absorbed = ka * depot
    cleared = cl / v1 * central
    distributed = q / v1 * central - q / v2 * peripheral
    return jnp.stack([-absorbed, absorbed - cleared - distributed, distributed, cleared])


def _conc_central(t, y, p):
    return y[1] / p[2]  # mg/l


def _conc_peripheral(t, y, p):
    return y[2] / p[4]


def pk_two_compartment(
    dose: float = 100.0, interval: float = 12.0, n_doses: int = 4, route: str = "oral"
) -> Model:
    """``n_doses`` doses of ``dose`` mg every ``interval`` h from t = 0, by ``route``
    ("oral" into the depot or "iv" bolus into the central compartment)."""
    if route not in ("oral", "iv"):
        raise InputError(f"route must be 'oral' or 'iv', got {route!r}")
    if n_doses < 1:
        raise InputError(f"n_doses must be at least 1, got {n_doses}")
    # Typical values of a small-molecule drug (illustrative, of the kind used in
    # Gabrielsson & Weiner's two-compartment exercises): half-lives of 0.8 h and 12 h.
    params = [
        Parameter("ka", 1.0, lower=0.0, unit="1/h"),  # absorption rate constant
        Parameter("CL", 5.0, lower=0.0, unit="l/h"),  # clearance
        Parameter("V1", 20.0, lower=0.0, unit="l"),  # central volume
        Parameter("Q", 10.0, lower=0.0, unit="l/h"),  # inter-compartmental clearance
        Parameter("V2", 50.0, lower=0.0, unit="l"),  # peripheral volume
    ]
    times = interval * np.arange(n_doses)
    target = 0 if route == "oral" else 1
    return Model(
        name="pk_two_compartment",
        states=["depot", "central", "peripheral", "eliminated"],
        parameters=params,
        rhs=_rhs,
        initial=[0.0, 0.0, 0.0, 0.0],  # drug-free before the first dose
        observables={"C": _conc_central, "C_peripheral": _conc_peripheral},
        events=[bolus(target, float(dose), times, name=f"{route}_dose")],
        stiff=False,
        citation=CITATION,
        source=("zoo", "pk_two_compartment"),
    )
