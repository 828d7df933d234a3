"""A PINN case described in a TOML file, as run by ``scalebridge pinn CASE.toml --out DIR``.

A case names the physics, the data, the unknowns and the training budget. Nothing in the
file is executed: formulas (residuals, initial conditions, hard constraints) are parsed by
PEtab's grammar into JAX functions (:func:`scalebridge.infer.parse_formula`). Paths are
relative to the TOML file. Sections::

    [case]      name, description
    [domain]    t = [t0, t1]; x = [x0, x1]; y = [y0, y1]     (ODE: t only; PDE: x, y?, t?)
    [model]     zoo = "name" | sbml = "file.xml" | pde = ["residual formula", ...]
                outputs = ["u", ...]           (pde: the fields' names)
                diffusion = {u = "D"}          (zoo/sbml with x: a reaction-diffusion PDE
                                                 whose reaction is the model)
                params = {name = value}        (known values; override the model's)
                initial = ["formula in x, y"]  (PDE, one per output; ODE: the model's own,
                                                 penalised unless initial_condition = false)
                residual_weights = {S1 = 1e-3}  (ODE: weights of single equations)
                boundary = [{kind = "dirichlet" | "neumann" | "periodic", value, side}]
                n_initial, n_boundary          (PDE: points of those loss terms)
    [data]      file = "data.csv"              (columns: the coordinates and the observed
                                                 states, observables or fields)
    [estimate]  name = initial guess           (unknown parameters)
    [truth]     name = value                   (to report errors of the estimates)
    [reference] file = "reference.csv"         (the known solution, same columns)
    [network]   width, depth, activation, fourier = [m, sigma], factorised, positive,
                out_scale, transform = ["formula per output"], or stack = [{...}, ...]
    [training]  collocation, seed, adam = {...}, lbfgs = {...}, balance = {...},
                causal = {...}, rar = {...}, weights = {term = w}, residual_warmup,
                resample, checkpoint_every
    [compare]   baselines = ["linear", "gp"], output = "T", speed = "c"
                (stationary 2D cases: interpolate the data of ``output`` alone; ``speed``
                compares ``1 / |grad output|`` of each baseline with that reference column)
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputError
from ..model.model import Model
from ..runtime.files import read_csv, read_text
from .losses import Dirichlet, Neumann, ODEProblem, PDEProblem, Periodic
from .networks import Network, Stacked
from .residuals import reaction_diffusion_residual
from .train import LBFGS, RAR, Adam, Causal, GradNormBalance

__all__ = ["Case", "load_case"]

_SECTIONS = {
    "case": {"name", "description"},
    "domain": {"t", "x", "y"},
    "model": {"zoo", "sbml", "pde", "outputs", "diffusion", "params", "initial", "boundary",
              "initial_condition", "residual_weights", "n_initial", "n_boundary"},
    "data": {"file"},
    "estimate": None, "truth": None,
    "reference": {"file"},
    "network": {"width", "depth", "activation", "fourier", "factorised", "positive",
                "out_scale", "transform", "stack", "outputs"},
    "training": {"collocation", "seed", "adam", "lbfgs", "balance", "causal", "rar",
                 "weights", "residual_warmup", "resample", "checkpoint_every"},
    "compare": {"baselines", "output", "speed"},
}
_OPTIONS = {"adam": Adam, "lbfgs": LBFGS, "balance": GradNormBalance, "causal": Causal,
            "rar": RAR}
_DERIVS = ("t", "x", "xx", "y", "yy")


@dataclass
class Case:
    """A loaded case: the ``problem``, its ``network``, the keyword arguments of
    :func:`~scalebridge.pinn.train_pinn` (``training``), the output names, the known
    ``truth`` of estimated parameters, the ``reference`` and ``data`` tables
    (``(z, values, columns)``) and the comparison settings."""

    name: str
    path: Path
    problem: ODEProblem | PDEProblem
    network: Network | Stacked
    training: dict
    outputs: list[str]
    coords: list[str]
    truth: dict[str, float] = field(default_factory=dict)
    reference: tuple | None = None
    data: tuple | None = None
    compare: dict = field(default_factory=dict)
    checkpoint_every: int = 500


def _fail(path, msg):
    raise InputError(f"{path}: {msg}")


def _table(path: Path, base: Path, coords, where: str):
    """``(z, values, value columns)`` of a CSV table with the coordinate columns."""
    import pandas as pd

    file = base / path
    if not file.is_file():
        _fail(file, f"no such file (named in {where}); give a CSV path relative to the TOML")
    df = read_csv(file, f"{where} table")
    missing = [c for c in coords if c not in df.columns]
    if missing:  # the columns it has are not listed: the file is named in the case file
        _fail(file, f"no column {missing[0]!r}; a {where} table needs the coordinate columns "
                    f"{', '.join(coords)}")
    cols = [c for c in df.columns if c not in coords]
    bad = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    if bad or not cols:
        _fail(file, f"columns {bad} are not numeric" if bad else
              f"no value columns besides {', '.join(coords)}")
    z = df[list(coords)].to_numpy(float)
    if not np.all(np.isfinite(z)):
        _fail(file, f"the coordinate columns {', '.join(coords)} hold missing values")
    return z, df[cols].to_numpy(float), cols


def _span(value, name, path):
    if not (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, int | float) for v in value) and value[1] > value[0]):
        _fail(path, f"[domain] {name} = {value!r}; give [lo, hi] with lo < hi")
    return (float(value[0]), float(value[1]))


def _numbers(table, section, path) -> dict[str, float]:
    out = {}
    for k, v in (table or {}).items():
        if not isinstance(v, int | float) or isinstance(v, bool) or not np.isfinite(v):
            _fail(path, f"[{section}] {k} = {v!r}; give a finite number")
        out[k] = float(v)
    return out


def _formulas(texts, count, what, path) -> list:
    from ..infer.formula import parse_formula

    if isinstance(texts, str | int | float):
        texts = [texts]
    if not isinstance(texts, list) or len(texts) != count:
        _fail(path, f"{what}: give a list of {count} formula(s), one per output")
    return [parse_formula(t, f"{path}: {what}") for t in texts]


def _check_symbols(formulas, allowed, what, path):
    for f in formulas:
        extra = sorted(set(f.symbols) - set(allowed) - {"pi"})
        if extra:
            _fail(path, f"{what} {f.text!r} uses {extra[0]!r}, which is not an output, a "
                        f"derivative, a coordinate or a parameter; add it to [model] params "
                        f"or [estimate], or fix the name")


def load_case(path) -> Case:
    """Read and check a case file (see the module); raises
    :class:`~scalebridge.errors.InputError` naming the section and key at fault."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file; give a case TOML (see examples/*/*.toml)")
    try:
        doc = tomllib.loads(read_text(path, "case file"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML ({exc})") from None
    for sec, value in doc.items():
        if sec not in _SECTIONS:
            _fail(path, f"unknown section [{sec}]; sections: {', '.join(_SECTIONS)}")
        keys = _SECTIONS[sec]
        if not isinstance(value, dict):
            _fail(path, f"[{sec}] must be a table")
        if keys is not None:
            for k in value:
                if k not in keys:
                    _fail(path, f"unknown key {k!r} in [{sec}]; known: {', '.join(sorted(keys))}")
    base = path.parent
    model_sec = doc.get("model", {})
    dom = doc.get("domain", {})
    if "t" not in dom and "x" not in dom:
        _fail(path, "[domain] needs t = [t0, t1] (ODE) or x = [x0, x1] (PDE)")
    spans = {c: _span(dom[c], c, path) for c in ("x", "y", "t") if c in dom}
    coords = [c for c in ("x", "y", "t") if c in spans]
    estimate = _numbers(doc.get("estimate"), "estimate", path)
    truth = _numbers(doc.get("truth"), "truth", path)
    for k in truth:
        if k not in estimate:
            _fail(path, f"[truth] {k!r} is not in [estimate]; give truths of estimated "
                        f"parameters only")
    params = _numbers(model_sec.get("params"), "model.params", path)
    data = doc.get("data") and _table(Path(doc["data"]["file"]), base, coords, "[data]")
    reference = doc.get("reference") and _table(Path(doc["reference"]["file"]), base,
                                                coords, "[reference]")
    sources = [k for k in ("zoo", "sbml", "pde") if k in model_sec]
    if len(sources) != 1:
        _fail(path, "[model] needs exactly one of zoo = \"name\", sbml = \"file.xml\" or "
                    "pde = [\"residual formula\", ...]")
    model = _model(model_sec, base, path) if sources[0] != "pde" else None

    if "x" not in spans:
        extra = [k for k in ("outputs", "diffusion", "initial", "boundary") if k in model_sec]
        if extra or "y" in spans:
            _fail(path, f"[model] {extra[0] if extra else '[domain] y'} needs a space "
                        f"coordinate: add [domain] x, or drop it for an ODE case")
        problem, outputs = _ode(model, spans["t"], params, estimate, data, model_sec, path)
    else:
        problem, outputs = _pde(model_sec, model, spans, params, estimate, data, path)
    for k in estimate:
        if k in params:
            _fail(path, f"{k!r} is in both [model] params and [estimate]; keep it in one")
    training, every = _training(doc.get("training", {}), path)
    network = _network(doc.get("network", {}), problem, outputs, coords,
                       training.get("seed", 0), path)
    compare = dict(doc.get("compare", {}))
    if compare:
        _check_compare(compare, coords, outputs, data, reference, path)
    if reference is not None:
        unknown = [c for c in reference[2] if c not in outputs]
        if unknown:
            _fail(path, f"[reference] column {unknown[0]!r} is not an output "
                        f"({', '.join(outputs)})")
    name = str(doc.get("case", {}).get("name", path.stem))
    return Case(name, path, problem, network, training, outputs, coords, truth, reference,
                data, compare, every)


def _model(sec, base, path) -> Model:
    if "zoo" in sec:
        from ..model.zoo import load_zoo

        return load_zoo(str(sec["zoo"]))
    from ..model.sbml import load_sbml

    file = base / str(sec["sbml"])
    if not file.is_file():
        _fail(path, f"[model] sbml = {sec['sbml']!r}: no such file {file}")
    return load_sbml(file)


def _ode(model, t_span, params, estimate, data, sec, path):
    obs = {}
    if data is not None:
        z, values, cols = data
        for j, c in enumerate(cols):
            keep = np.isfinite(values[:, j])
            obs[c] = (z[keep, 0], values[keep, j])
    ic = sec.get("initial_condition", True)
    if not isinstance(ic, bool):
        _fail(path, f"[model] initial_condition = {ic!r}; give true (penalise the model's "
                    f"initial state) or false (a network transform imposes it)")
    return (ODEProblem(model, t_span, data=obs or None, estimate=estimate or None,
                       params=params or None, initial_condition=ic,
                       residual_weights=_numbers(sec.get("residual_weights"),
                                                 "model.residual_weights", path) or None),
            list(model.state_names))


def _pde(sec, model, spans, params, estimate, data, path):
    coords = [c for c in ("x", "y", "t") if c in spans]
    for key in ("initial_condition", "residual_weights"):
        if key in sec:
            _fail(path, f"[model] {key} is for ODE cases (no [domain] x); drop it")
    if model is not None:
        diffusion = sec.get("diffusion")
        if not isinstance(diffusion, dict) or not diffusion:
            _fail(path, "[model] a zoo or SBML model on a domain with x needs diffusion = "
                        "{state = \"D name\"}: it becomes a reaction-diffusion PDE")
        outputs = list(model.state_names)
        residual = reaction_diffusion_residual(model, {k: str(v) for k, v in diffusion.items()})
        defaults = dict(zip(model.parameter_names, np.asarray(model.parameter_values()).tolist(),
                            strict=True))
        for k in params:
            if k not in defaults and k not in diffusion.values():
                _fail(path, f"[model] params: {k!r} is not a parameter of model {model.name!r} "
                            f"nor a diffusivity ({', '.join([*defaults, *diffusion.values()])})")
        for k in estimate:
            if k not in defaults and k not in diffusion.values():
                _fail(path, f"[estimate] {k!r} is not a parameter of model {model.name!r} nor "
                            f"a diffusivity ({', '.join([*defaults, *diffusion.values()])})")
        known = {k: v for k, v in {**defaults, **params}.items() if k not in estimate}
        missing = [d for d in diffusion.values() if d not in known and d not in estimate]
        if missing:
            _fail(path, f"diffusivity {missing[0]!r} has no value; give it in [model] params or "
                        f"[estimate]")
    else:
        outputs = sec.get("outputs")
        if not (isinstance(outputs, list) and outputs and all(isinstance(o, str)
                                                               for o in outputs)):
            _fail(path, "[model] pde needs outputs = [\"u\", ...], the names of the fields")
        formulas = _formulas(sec["pde"], len(outputs), "[model] pde", path)
        allowed = [*coords, *params, *estimate]
        for o in outputs:
            allowed += [o] + [f"{o}_{k}" for k in _DERIVS]
        _check_symbols(formulas, allowed, "[model] pde formula", path)
        residual = _formula_residual(formulas, outputs, coords)
        known = params
    initial = None
    if "initial" in sec:
        if "t" not in spans:
            _fail(path, "[model] initial needs a time span [domain] t")
        inits = _formulas(sec["initial"], len(outputs), "[model] initial", path)
        space = [c for c in coords if c != "t"]
        _check_symbols(inits, [*space, *known], "[model] initial formula", path)
        initial = _formula_initial(inits, space, known)
    boundary = [_boundary(b, path) for b in sec.get("boundary", [])]
    observed, pde_data = None, None
    if data is not None:
        z, values, cols = data
        for c in cols:
            if c not in outputs:
                _fail(path, f"[data] column {c!r} is not a field of the model (fields: "
                            f"{', '.join(outputs)}); rename it")
        if not np.all(np.isfinite(values)):
            _fail(path, "[data] the value columns hold missing values; drop those rows")
        observed = [outputs.index(c) for c in cols]
        pde_data = (z, values)
    counts = {}
    for key in ("n_initial", "n_boundary"):
        if key in sec:
            if not isinstance(sec[key], int) or sec[key] < 1:
                _fail(path, f"[model] {key} = {sec[key]!r}; give a positive integer")
            counts[key] = sec[key]
    problem = PDEProblem(residual, spans["x"], spans.get("t"), n_outputs=len(outputs),
                         y_span=spans.get("y"), params=known or None,
                         estimate=estimate or None, initial=initial, boundary=boundary,
                         data=pde_data, observed=observed, **counts)
    return problem, outputs


def _formula_residual(formulas, outputs, coords) -> Callable:
    def residual(d, params):
        env = {"pi": np.pi, **params, **{c: d[c] for c in coords}}
        for i, o in enumerate(outputs):
            env[o] = d["u"][i]
            for k in _DERIVS:
                if f"u_{k}" in d:
                    env[f"{o}_{k}"] = d[f"u_{k}"][i]
        return jnp.stack([jnp.asarray(f(env), dtype=jnp.float64) for f in formulas])
    return residual


def _formula_initial(formulas, space, known) -> Callable:
    consts = {"pi": np.pi, **known}

    def initial(*z):
        env = {**consts, **dict(zip(space, z, strict=True))}
        return jnp.stack([jnp.asarray(f(env), dtype=jnp.float64) for f in formulas])
    return initial


def _boundary(b, path):
    if not isinstance(b, dict) or b.get("kind") not in ("dirichlet", "neumann", "periodic"):
        _fail(path, f"[model] boundary entry {b!r}: give {{kind = \"dirichlet\" | \"neumann\" | "
                    f"\"periodic\", value = number, side = \"both\" | \"left\" | \"right\"}}")
    extra = set(b) - {"kind", "value", "side"}
    if extra:
        _fail(path, f"[model] boundary: unknown key {sorted(extra)[0]!r}")
    if b["kind"] == "periodic":
        return Periodic()
    cls = Dirichlet if b["kind"] == "dirichlet" else Neumann
    return cls(float(b.get("value", 0.0)), str(b.get("side", "both")))


def _network(sec, problem, outputs, coords, seed, path):
    spec = problem._spec()
    lower, upper = spec.lower, spec.upper
    key = jax.random.split(jax.random.PRNGKey(seed), 3)[0]  # as train_pinn's default
    known = ("width", "depth", "activation", "fourier", "factorised", "positive", "out_scale",
             "outputs")

    def one(opts, n_out, k, where, transform=None):
        for kk in opts:
            if kk not in known:
                _fail(path, f"unknown key {kk!r} in {where}; known: {', '.join(known[:-1])}")
        kw = {kk: v for kk, v in opts.items() if kk != "outputs"}
        if "fourier" in kw:
            f = kw["fourier"]
            if not (isinstance(f, list) and len(f) == 2):
                _fail(path, f"{where} fourier = {f!r}; give [number of features, scale]")
            kw["fourier"] = (int(f[0]), float(f[1]))
        try:
            return Network(len(coords), n_out, lower=lower, upper=upper, key=k,
                           output_transform=transform, **kw)
        except TypeError as exc:
            _fail(path, f"{where}: {exc}")

    stack = sec.get("stack")
    if stack is not None:
        if set(sec) - {"stack"}:
            _fail(path, "[network] with stack = [...] takes its options per stacked network")
        sizes = [int(s.get("outputs", 1)) for s in stack]
        if sum(sizes) != len(outputs):
            _fail(path, f"[network] stack: the networks give {sum(sizes)} outputs, the case has "
                        f"{len(outputs)} ({', '.join(outputs)}); set outputs = n per network")
        keys = jax.random.split(key, len(stack))
        return Stacked(*(one(s, n, k, f"[network] stack[{i}]")
                         for i, (s, n, k) in enumerate(zip(stack, sizes, keys, strict=True))))
    opts = {k: v for k, v in sec.items() if k != "transform"}
    transform = None
    if "transform" in sec:
        forms = _formulas(sec["transform"], len(outputs), "[network] transform", path)
        _check_symbols(forms, [*coords, *outputs], "[network] transform formula", path)

        def transform(z, u):
            env = {"pi": np.pi, **{c: z[i] for i, c in enumerate(coords)},
                   **{o: u[i] for i, o in enumerate(outputs)}}
            return jnp.stack([jnp.asarray(f(env), dtype=jnp.float64) for f in forms])
    return one(opts, len(outputs), key, "[network]", transform)


def _training(sec, path) -> tuple[dict, int]:
    out: dict = {}
    for name, cls in _OPTIONS.items():
        if name in sec:
            try:
                out[name] = cls(**sec[name])
            except TypeError as exc:
                _fail(path, f"[training] {name} = {sec[name]!r}: {exc}")
    for key, arg in (("collocation", "n_collocation"), ("seed", "seed"),
                     ("residual_warmup", "residual_warmup"), ("resample", "resample")):
        if key in sec:
            out[arg] = sec[key]
    if not isinstance(out.get("resample", False), bool):
        _fail(path, f"[training] resample = {out['resample']!r}; give true or false")
    if "weights" in sec:
        out["weights"] = _numbers(sec["weights"], "training.weights", path)
    every = sec.get("checkpoint_every", 500)
    if not isinstance(every, int) or every < 1:
        _fail(path, f"[training] checkpoint_every = {every!r}; give a positive integer")
    return out, every


def _check_compare(sec, coords, outputs, data, reference, path):
    if coords not in (["x", "y"], ["x"]):
        _fail(path, "[compare] baselines interpolate data in space; they need a stationary "
                    "case ([domain] x and y, no t)")
    for b in sec.get("baselines", []):
        if b not in ("linear", "gp"):
            _fail(path, f"[compare] baseline {b!r} is unknown; use \"linear\" or \"gp\"")
    if data is None or reference is None:
        _fail(path, "[compare] needs [data] and [reference]")
    out = sec.get("output", data[2][0])
    if out not in data[2] or out not in reference[2]:
        _fail(path, f"[compare] output {out!r} must be a column of the data and the reference")
    sec["output"] = out
    if "speed" in sec and sec["speed"] not in reference[2]:
        _fail(path, f"[compare] speed {sec['speed']!r} is not a column of the reference")


def parameter_report(estimated: Mapping[str, float], truth: Mapping[str, float]) -> dict:
    """``{name: {"value", "truth", "relative_error"}}`` (truth and error where known)."""
    out = {}
    for k, v in estimated.items():
        row = {"value": float(v)}
        if k in truth:
            row["truth"] = float(truth[k])
            row["relative_error"] = abs(float(v) - truth[k]) / abs(truth[k]) if truth[k] \
                else abs(float(v))
        out[k] = row
    return out
