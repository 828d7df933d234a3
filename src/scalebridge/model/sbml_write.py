"""Write an ODE model given by formulas as SBML (level 3 version 2), so tools that read
SBML, :func:`scalebridge.load_sbml` included, can use it.

States become non-constant parameters with rate rules (``d state/dt = formula``),
parameters constant ones. The formulas are SBML level-3 infix text, parsed by libsbml
(never evaluated by Python).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import libsbml

from ..errors import ModelError
from ..runtime.files import write_atomic
from .parameter import Parameter

_SID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _check_id(name: str, what: str):
    if not _SID.fullmatch(name):
        raise ModelError(f"{what} {name!r} is not a valid SBML identifier (letters, digits and "
                         "_, not starting with a digit); rename it before exporting to SBML")


def _ok(code: int, what: str):
    if code != libsbml.LIBSBML_OPERATION_SUCCESS:
        raise ModelError(f"SBML export: setting {what} failed "
                         f"({libsbml.OperationReturnValue_toString(code)})")


def write_sbml(path: str | os.PathLike, *, name: str, states: Sequence[str],
               initial: Sequence[float], parameters: Sequence[Parameter],
               rates: Mapping[str, str]) -> Path:
    """Write ``d state/dt = rates[state]`` with the given initial values and parameters to
    ``path`` (atomically) and return the path."""
    doc = libsbml.SBMLDocument(3, 2)
    model = doc.createModel()
    _ok(model.setId(re.sub(r"\W", "_", name) or "model"), "the model id")
    if len(initial) != len(states):
        raise ModelError(f"SBML export: {len(initial)} initial values for {len(states)} states")
    for sid, value in zip(states, initial, strict=True):
        _check_id(sid, "state")
        p = model.createParameter()
        _ok(p.setId(sid), f"state {sid}")
        _ok(p.setValue(float(value)), f"the initial value of {sid}")
        _ok(p.setConstant(False), f"state {sid}")
    for prm in parameters:
        _check_id(prm.name, "parameter")
        p = model.createParameter()
        _ok(p.setId(prm.name), f"parameter {prm.name}")
        _ok(p.setValue(float(prm.value)), f"the value of {prm.name}")
        _ok(p.setConstant(True), f"parameter {prm.name}")
    for sid in states:
        if sid not in rates:
            raise ModelError(f"SBML export: no rate for state {sid!r}")
        ast = libsbml.parseL3Formula(rates[sid])
        if ast is None:
            raise ModelError(f"SBML export: cannot parse the rate of {sid!r}: {rates[sid]!r} "
                             f"({libsbml.getLastParseL3Error()})")
        rule = model.createRateRule()
        _ok(rule.setVariable(sid), f"the rate rule of {sid}")
        _ok(rule.setMath(ast), f"the rate of {sid}")
    text = libsbml.writeSBMLToString(doc)
    return write_atomic(path, lambda f: f.write(text.encode()))


__all__ = ["write_sbml"]
