"""Saving and loading: one safe, versioned file format for everything scalebridge keeps.

A file is a NumPy ``.npz`` archive (read with ``allow_pickle=False``) holding named arrays
plus one JSON document under ``__meta__`` with the format name, its version, the kind of
object and the scalebridge version. Each kind (model, solution, and later fitted results,
networks, surrogates) registers how it turns into arrays + JSON and back. Writes are
atomic: a temporary file renamed over the target. Nothing is pickled or executed on load.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .errors import ScalebridgeError, SerializationError
from .runtime.files import write_atomic

FORMAT = "scalebridge"
FORMAT_VERSION = 1

_CODECS: dict[str, tuple[type, Callable, Callable]] = {}


def register(kind: str, cls: type, encode: Callable, decode: Callable) -> None:
    """Register how objects of ``cls`` are saved: ``encode(obj) -> (arrays, meta)`` and
    ``decode(arrays, meta) -> obj``."""
    _CODECS[kind] = (cls, encode, decode)


def _kind_of(obj) -> str:
    for kind, (cls, _, _) in _CODECS.items():
        if isinstance(obj, cls):
            return kind
    raise SerializationError(
        f"cannot save a {type(obj).__name__}; savable kinds: {', '.join(sorted(_CODECS))}")


def write_archive(path, kind: str, arrays: dict, meta: dict) -> Path:
    """Write arrays and JSON metadata atomically to ``path`` (``.npz``)."""
    from . import __version__

    path = Path(path)
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind,
              "scalebridge_version": __version__, "meta": meta}
    payload = {k: np.asarray(v) for k, v in arrays.items()}
    for k, v in payload.items():
        if v.dtype == object:
            raise SerializationError(f"array {k!r} has dtype object, which cannot be saved")
    payload["__meta__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    return write_atomic(path, lambda fh: np.savez_compressed(fh, **payload))


def read_archive(path, kind: str | None = None) -> tuple[dict, dict, str]:
    """Read a file written by :func:`write_archive`; check format, version and kind."""
    path = Path(path)
    if not path.is_file():
        raise SerializationError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, MemoryError,
            OverflowError) as exc:
        raise SerializationError(f"{path}: not a scalebridge file ({type(exc).__name__}); "
                                 "it is damaged or another kind of file") from None
    raw = arrays.pop("__meta__", None)
    try:
        header = json.loads(bytes(raw).decode()) if raw is not None else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        header = {}
    if header.get("format") != FORMAT:
        raise SerializationError(f"{path}: not a scalebridge file (no scalebridge header)")
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        raise SerializationError(
            f"{path}: file format version {version} is not supported by this scalebridge "
            f"(reads version {FORMAT_VERSION}); re-save it with scalebridge "
            f"{header.get('scalebridge_version', '?')} in a supported format")
    if kind is not None and header.get("kind") != kind:
        raise SerializationError(f"{path}: holds a {header.get('kind')!r}, expected a {kind!r}")
    return arrays, header.get("meta", {}), header["kind"]


def save(obj, path) -> Path:
    """Save a Model, Solution or any other registered scalebridge object to ``path``."""
    _ensure_registered()
    kind = _kind_of(obj)
    arrays, meta = _CODECS[kind][1](obj)
    return write_archive(path, kind, arrays, meta)


def load(path, kind: str | None = None):
    """Load an object saved by :func:`save`; ``kind`` (e.g. ``"model"``) checks what it is."""
    _ensure_registered()
    arrays, meta, found = read_archive(path, kind)
    if found not in _CODECS:
        raise SerializationError(f"{path}: unknown kind {found!r}")
    try:
        return _CODECS[found][2](arrays, meta)
    except ScalebridgeError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        what = f"missing {exc}" if isinstance(exc, KeyError) else type(exc).__name__
        raise SerializationError(f"{path}: corrupt {found!r} file ({what}); save it "
                                 "again") from None


# ----- models and solutions ------------------------------------------------------------------
def model_to_dict(model) -> dict:
    """A model from the zoo or an SBML file as data: its source and parameter specs (a
    model defined by Python functions cannot be saved)."""
    if model.source is None:
        raise SerializationError(
            f"model {model.name!r} is defined by Python functions, which cannot be saved as "
            "data; save its parameters, or build it from the zoo or an SBML file")
    from .infer.space import parameter_to_dict

    meta = {"name": model.name, "source": list(model.source),
            "parameters": [parameter_to_dict(p) for p in model.parameters]}
    if model.initial_values is not None:
        meta["initial"] = [float(v) for v in np.asarray(model.initial_values)]
    return meta


def model_from_dict(meta):
    """The model of :func:`model_to_dict` (loaded again from its source)."""
    from .infer.space import parameter_from_dict

    kind, ref = meta["source"]
    if kind == "zoo":
        from .model.zoo import load_zoo

        model = load_zoo(ref)
    elif kind == "sbml":
        from .model.sbml import load_sbml

        model = load_sbml(ref)
    else:
        raise SerializationError(f"unknown model source {kind!r}")
    specs = [parameter_from_dict(d) for d in meta["parameters"]]
    if tuple(p.name for p in specs) != model.parameter_names:
        raise SerializationError(
            f"saved parameters of model {model.name!r} do not match its definition")
    fields = {"parameters": tuple(specs)}
    if "initial" in meta:
        fields["initial"] = tuple(meta["initial"])
    return model.replace(**fields)


def _encode_solution(sol):
    d = sol.to_dict()
    return ({k: d.pop(k) for k in ("times", "states", "observables")}, d)


def _decode_solution(arrays, meta):
    from .solution import Solution

    return Solution.from_dict({**meta, **arrays})


# ----- results: anything with to_dict() / from_dict() ------------------------------------------
def register_result(kind: str, cls: type) -> None:
    """Register a result class that follows the result protocol: ``obj.to_dict()`` gives
    JSON-ready values and NumPy arrays (stored as arrays of the archive), and
    ``cls.from_dict(d)`` builds the object back."""
    register(kind, cls, lambda obj: _split(obj.to_dict()),
             lambda arrays, meta: cls.from_dict(_join(meta, arrays)))


def _split(data) -> tuple[dict, dict]:
    """``(arrays, JSON document)``: every array of ``data`` replaced by a reference."""
    arrays: dict = {}

    def walk(v):
        if isinstance(v, dict):
            return {str(k): walk(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [walk(x) for x in v]
        if hasattr(v, "__array__") and not isinstance(v, str):  # NumPy and JAX arrays
            a = np.asarray(v)
            if a.ndim == 0:
                return a.item()
            key = f"a{len(arrays)}"
            arrays[key] = a
            return {"__array__": key}
        return v

    return arrays, {"result": walk(data)}


def _join(meta: dict, arrays: dict):
    def walk(v):
        if isinstance(v, dict):
            if set(v) == {"__array__"}:
                return arrays[v["__array__"]]
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return walk(meta["result"])


def _ensure_registered():
    if "model" in _CODECS:
        return
    from .discover.hybrid import HybridModel
    from .discover.implicit import SINDyPI
    from .discover.neural import NeuralODE
    from .discover.pdefind import PDEFIND
    from .discover.sindy import SINDy
    from .infer.fit import FitResult
    from .infer.profile import ProfileResult
    from .infer.sample import PosteriorResult, PredictiveResult
    from .infer.space import ParameterSpace
    from .model.model import Model
    from .multiscale.surrogate_base import (
        SURROGATE_KIND,
        SurrogateBase,
        decode_surrogate,
        encode_surrogate,
    )
    from .pde.fields import Fields, decode_fields, encode_fields
    from .pinn.train import PINNResult
    from .runtime.sweep import SweepResult
    from .sensitivity.local import LocalResult
    from .sensitivity.morris import MorrisResult
    from .sensitivity.sobol import SobolResult
    from .solution import EnsembleSolution, Solution
    from .surrogate.explore import ExploreResult
    from .surrogate.gp import GaussianProcess
    from .surrogate.multifidelity import LinearMultiFidelityGP, NonlinearMultiFidelityGP

    register("model", Model, lambda m: ({}, model_to_dict(m)),
             lambda arrays, meta: model_from_dict(meta))
    register("solution", Solution, _encode_solution, _decode_solution)
    register_result("ensemble_solution", EnsembleSolution)
    register_result("fit_result", FitResult)
    register_result("posterior_result", PosteriorResult)
    register_result("posterior_predictive", PredictiveResult)
    register_result("profile_result", ProfileResult)
    register_result("sobol_result", SobolResult)
    register_result("morris_result", MorrisResult)
    register_result("local_sensitivity_result", LocalResult)
    register_result("explore_result", ExploreResult)
    register_result("sindy_model", SINDy)
    register_result("pdefind_model", PDEFIND)
    register_result("sindy_pi_model", SINDyPI)
    register_result("pinn_result", PINNResult)
    register_result("neural_ode", NeuralODE)
    register_result("hybrid_model", HybridModel)
    register_result("gaussian_process", GaussianProcess)
    register_result("linear_multifidelity_gp", LinearMultiFidelityGP)
    register_result("nonlinear_multifidelity_gp", NonlinearMultiFidelityGP)
    register_result("parameter_space", ParameterSpace)
    register("fields", Fields, encode_fields, decode_fields)
    register_result("sweep_result", SweepResult)
    register(SURROGATE_KIND, SurrogateBase, encode_surrogate, decode_surrogate)

