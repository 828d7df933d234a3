"""PEtab v1 import: ``load_petab(yaml_path) -> Problem``.

Reads the YAML problem file and its tables (tab-separated, read with pandas) and the SBML
model (:func:`scalebridge.load_sbml`), checks them, and builds a
:class:`~scalebridge.infer.problem.Problem`. Formulas are parsed with PEtab's grammar and
compiled to JAX (:mod:`scalebridge.infer.formula`). One problem (one SBML model) per YAML
file; several measurement, condition or observable files are concatenated.

Not supported (raised as :class:`~scalebridge.errors.InputError`): steady-state
measurements (time ``inf``), mapping tables, several models, PEtab v2.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

from .errors import InputError, ModelError, quoted
from .infer.formula import parse_formula
from .infer.problem import ObservableSpec, Problem
from .infer.space import ParameterSpace
from .model.parameter import Parameter, Prior
from .runtime.files import read_text, read_yaml

__all__ = ["load_petab"]

_REQUIRED = {
    "parameter": ("parameterId", "parameterScale", "lowerBound", "upperBound",
                  "nominalValue", "estimate"),
    "condition": ("conditionId",),
    "observable": ("observableId", "observableFormula", "noiseFormula"),
    "measurement": ("observableId", "simulationConditionId", "time", "measurement"),
}


def _read_table(path: Path, kind: str):
    import pandas as pd

    if not path.is_file():
        raise InputError(f"{kind} file {str(path)!r} does not exist")
    text = read_text(path, f"{kind} table")
    try:  # pandas' messages can quote the file: they are not passed on
        df = pd.read_csv(io.StringIO(text), sep="\t", dtype=object, keep_default_na=False,
                         na_values=["", "NaN", "nan"])
    except Exception:  # noqa: BLE001 - any parser failure is the same user error
        raise InputError(f"{path.name}: not a tab-separated {kind} table") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in _REQUIRED[kind] if c not in df.columns]
    if missing:
        raise InputError(f"{path.name}: the {kind} table lacks the required column "
                         f"{missing[0]!r} (it needs {', '.join(_REQUIRED[kind])})")
    key = _REQUIRED[kind][0]
    if kind != "measurement":
        ids = [_cell(v) for v in df[key]]
        seen: dict = {}
        for r, v in enumerate(ids):
            if v is not None and v in seen:
                raise InputError(f"{path.name}, rows {seen[v] + 2} and {r + 2}: {key} "
                                 f"{quoted(v)} appears twice; ids must be unique")
            seen.setdefault(v, r)
    return df


def _cell(v):
    """None for empty/NaN cells, else the stripped text."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    s = str(v).strip()
    return s if s else None


def _float(v, where: str, default=None):
    c = _cell(v)
    if c is None:
        if default is not None:
            return default
        raise InputError(f"{where}: a number is required")
    try:
        return float(c)
    except ValueError:
        raise InputError(f"{where}: {c!r} is not a number") from None


def _rows(df, name: str, id_column: str):
    """Yield ``(where, id, row)`` for each table row; ``where`` names file and line for
    messages (line 1 is the header), and an empty id is an error."""
    for r, row in df.iterrows():
        where = f"{name}, row {r + 2}"
        rid = _cell(row[id_column])
        if rid is None:
            raise InputError(f"{where}: {id_column} is empty")
        yield where, rid, row


def _parameters(df, name: str) -> list[Parameter]:
    out = []
    for where, pid, row in _rows(df, name, "parameterId"):
        scale = _cell(row["parameterScale"]) or "lin"
        est = _cell(row["estimate"])
        if est not in ("0", "1"):
            raise InputError(f"{where}, column 'estimate': {est!r} must be 0 or 1")
        estimate = est == "1"
        lower = _float(row["lowerBound"], f"{where}, column 'lowerBound'",
                       None if estimate else -math.inf)
        upper = _float(row["upperBound"], f"{where}, column 'upperBound'",
                       None if estimate else math.inf)
        nominal = _float(row["nominalValue"], f"{where}, column 'nominalValue'",
                         None if not estimate else math.nan)
        if math.isnan(nominal):  # estimated without nominal: midpoint on scale
            nominal = (lower + upper) / 2 if scale == "lin" else math.sqrt(lower * upper)
        if scale in ("log", "log10") and lower < 0:
            raise InputError(f"{where}: parameter {pid!r} is on {scale} scale but its "
                             f"lowerBound is negative ({lower}); log-scaled parameters need "
                             "lowerBound >= 0")
        prior = _prior(row, "objectivePrior", where)
        try:
            out.append(Parameter(pid, nominal, lower, upper, scale, prior, estimate))
        except ModelError as exc:
            raise InputError(f"{where}: {exc}") from None
    return out


def _prior(row, kind: str, where: str):
    """The Prior of a parameter-table row's ``<kind>Type`` / ``<kind>Parameters`` columns
    (``kind``: objectivePrior or initializationPrior), or None."""
    ptype = _cell(row.get(f"{kind}Type"))
    if ptype is None:
        return None
    pars = _cell(row.get(f"{kind}Parameters"))
    if pars is None and ptype in ("uniform", "parameterScaleUniform"):
        # PEtab v1: the parameters default to the bounds (on the parameter scale for
        # parameterScaleUniform)
        scale = _cell(row.get("parameterScale")) or "lin"
        lo, hi = (_float(row.get(c), f"{where}, column {c!r}") for c in ("lowerBound",
                                                                          "upperBound"))
        if ptype == "parameterScaleUniform" and scale in ("log", "log10"):
            if not (lo > 0 and hi > 0):
                raise InputError(f"{where}: {kind}Type {ptype} without {kind}Parameters "
                                 "needs positive lowerBound and upperBound on a log scale")
            log = math.log if scale == "log" else math.log10
            lo, hi = log(lo), log(hi)
        pars = f"{lo};{hi}"
    try:
        args = tuple(float(s) for s in (pars or "").split(";"))
    except ValueError:
        raise InputError(f"{where}, column '{kind}Parameters': {pars!r} must be two numbers "
                         "separated by ';'") from None
    try:
        return Prior(ptype, args)
    except ModelError as exc:
        raise InputError(f"{where}, column '{kind}Type': {exc}") from None


def _init_priors(df, name: str) -> dict:
    """``{parameter id: Prior}`` from the initializationPrior columns."""
    out = {}
    for where, pid, row in _rows(df, name, "parameterId"):
        prior = _prior(row, "initializationPrior", where)
        if prior is not None:
            out[pid] = prior
    return out


def _conditions(df, name: str) -> dict:
    out = {}
    cols = [c for c in df.columns if c not in ("conditionId", "conditionName")]
    for _, cid, row in _rows(df, name, "conditionId"):
        cond = {}
        for c in cols:
            v = _cell(row[c])
            if v is None:
                cond[c] = math.nan
            else:
                try:
                    cond[c] = float(v)
                except ValueError:
                    cond[c] = v
        out[cid] = cond
    return out


def _observables(df, name: str) -> list[ObservableSpec]:
    out = []
    for where, oid, row in _rows(df, name, "observableId"):
        formula = parse_formula(_cell(row["observableFormula"]) or "",
                                f"{where}, column 'observableFormula'")
        noise = parse_formula(_cell(row["noiseFormula"]) or "",
                              f"{where}, column 'noiseFormula'")
        tr = _cell(row.get("observableTransformation")) or "lin"
        dist = _cell(row.get("noiseDistribution")) or "normal"
        try:
            out.append(ObservableSpec(oid, formula, noise, tr, dist))
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None
    return out


def _file_list(value, key: str, where: str) -> list[str]:
    """A PEtab YAML entry naming files: one name or a list of names."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or \
            not all(isinstance(v, str) and v.strip() for v in items):
        raise InputError(f"{where}: '{key}' must be a file name or a list of file names")
    return [v.strip() for v in items]


def load_petab(yaml_path: str | os.PathLike, **kw) -> Problem:
    """Build a :class:`~scalebridge.infer.problem.Problem` from a PEtab v1 YAML file.

    Keyword arguments go to :class:`Problem` (``rtol``, ``atol``, ``max_steps``).
    Raises :class:`~scalebridge.errors.InputError` naming the file, row and column of bad
    input, and :class:`~scalebridge.errors.SBMLError` for unsupported models.
    """
    import pandas as pd

    from .model.sbml import load_sbml

    path = Path(yaml_path)
    if not path.is_file():
        raise InputError(f"PEtab file {str(path)!r} does not exist")
    spec = read_yaml(path, "PEtab problem file")
    if not isinstance(spec, dict):
        raise InputError(f"{path.name}: expected a PEtab problem description (a mapping)")
    version = str(spec.get("format_version", ""))
    if version not in ("1", "1.0.0", "1.0"):
        raise InputError(f"{path.name}: format_version {version[:20]!r} is not supported; "
                         "only PEtab v1 is")
    problems = spec.get("problems") or []
    if not isinstance(problems, list) or len(problems) != 1 or \
            not isinstance(problems[0], dict):
        raise InputError(f"{path.name}: 'problems' must be a list of exactly one mapping "
                         "(one problem is supported)")
    sub = problems[0]
    base = path.parent
    if "parameter_file" not in spec:
        raise InputError(f"{path.name}: 'parameter_file' is missing")
    for key in ("sbml_files", "condition_files", "measurement_files", "observable_files"):
        if not sub.get(key):
            raise InputError(f"{path.name}: '{key}' is missing")
        sub[key] = _file_list(sub[key], key, path.name)
    spec["parameter_file"] = _file_list(spec["parameter_file"], "parameter_file", path.name)
    if len(sub["sbml_files"]) != 1:
        raise InputError(f"{path.name}: exactly one SBML file is supported")
    if sub.get("mapping_files"):
        raise InputError(f"{path.name}: mapping tables are not supported")

    def tables(key, kind):
        dfs = [_read_table(base / f, kind) for f in sub[key]]
        return pd.concat(dfs, ignore_index=True), ", ".join(sub[key])

    pfiles = spec["parameter_file"]
    pdf = pd.concat([_read_table(base / f, "parameter") for f in pfiles], ignore_index=True)
    cdf, cname = tables("condition_files", "condition")
    odf, oname = tables("observable_files", "observable")
    mdf, mname = tables("measurement_files", "measurement")
    model = load_sbml(base / sub["sbml_files"][0])
    space = ParameterSpace(_parameters(pdf, ", ".join(pfiles)),
                           _init_priors(pdf, ", ".join(pfiles)))
    conditions = _conditions(cdf, cname)
    observables = _observables(odf, oname)
    meas = mdf.copy()
    for col in ("time", "measurement"):
        for r, v in enumerate(meas[col]):
            _float(v, f"{mname}, row {r + 2}, column {col!r}", math.nan)
        meas[col] = meas[col].astype(float)
    sources = {"model": sub["sbml_files"][0], "parameters": ", ".join(pfiles),
               "conditions": cname, "observables": oname, "measurements": mname}
    return Problem(model, space, conditions, observables, meas, name=path.stem,
                   sources=sources, **kw)
