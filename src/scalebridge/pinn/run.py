"""Run a PINN case (:func:`~scalebridge.pinn.case.load_case`) and write its report.

``run_case(case, out)`` trains with a checkpoint in ``out`` (an interrupted run resumes),
then writes ``result.json`` (losses, timings, ``relative_l2_error`` against the reference,
per-field errors, ``parameters`` with truth and relative errors, baselines), the trained
network (``network.eqx``, equinox's leaf serialisation: arrays only, no pickle), the
predicted fields (``prediction.csv``, at the reference points), ``losses.png`` and
``fields.png``.

Baselines for stationary 2D cases: piecewise-linear interpolation of the data on their
Delaunay triangulation (nearest value outside the hull) and Gaussian-process regression
(:class:`~scalebridge.surrogate.GaussianProcess`, Matern 5/2), as compared by Sahli
Costabal et al. 2020 ("Physics-informed neural networks for cardiac activation mapping",
Front. Phys. 8:42). A baseline's speed is ``1 / |grad|`` of its interpolant (central
differences); speeds are compared inside the convex hull of the data, where linear
interpolation is defined.
"""

from __future__ import annotations

import math
from pathlib import Path

import equinox as eqx
import numpy as np

from ..errors import InputError
from ..report.fields import _plt
from ..runtime.files import write_atomic, write_json
from ..runtime.run import fingerprint, open_run
from .case import Case, load_case, parameter_report
from .train import Checkpoint, PINNResult, train_pinn

__all__ = ["run_case", "field_errors", "baselines"]


def field_errors(pred: np.ndarray, values: np.ndarray, columns, outputs) -> tuple[float, dict]:
    """Overall relative L2 error over the reference ``columns`` and, per field, its
    relative L2 error and RMSE; ``pred`` has one column per output."""
    idx = [outputs.index(c) for c in columns]
    diff = pred[:, idx] - values
    ok = np.isfinite(values)
    overall = float(np.sqrt(np.sum(diff[ok] ** 2) / np.sum(values[ok] ** 2)))
    per = {}
    for j, c in enumerate(columns):
        m = ok[:, j]
        per[c] = {"relative_l2_error": float(np.linalg.norm(diff[m, j])
                                             / np.linalg.norm(values[m, j])),
                  "rmse": float(np.sqrt(np.mean(diff[m, j] ** 2)))}
    return overall, per


def baselines(kinds, z, v, seed: int = 0) -> dict:
    """Interpolants ``points -> values`` of data ``v`` at ``z`` (2D): ``"linear"`` and
    ``"gp"``."""
    from scipy.interpolate import LinearNDInterpolator, NearestNDInterpolator

    out = {}
    for kind in kinds:
        if kind == "linear":
            lin, near = LinearNDInterpolator(z, v), NearestNDInterpolator(z, v)

            def f(q, lin=lin, near=near):
                r = lin(q)
                return np.where(np.isfinite(r), r, near(q))
        else:
            from ..surrogate import GaussianProcess

            gp = GaussianProcess(seed=seed).fit(z, v)

            def f(q, gp=gp):
                return np.asarray(gp.predict(np.atleast_2d(q))[0]).ravel()
        out[kind] = f
    return out


def _speed(f, q, h=1e-4):
    """``1 / |grad f|`` by central differences (2D)."""
    gx = (f(q + [h, 0.0]) - f(q - [h, 0.0])) / (2 * h)
    gy = (f(q + [0.0, h]) - f(q - [0.0, h])) / (2 * h)
    return 1.0 / np.maximum(np.hypot(gx, gy), 1e-12)


def _compare(case: Case, result: PINNResult, pred) -> dict:
    sec = case.compare
    zr, vr, cols = case.reference
    zd, vd, dcols = case.data
    name = sec["output"]
    truth = vr[:, cols.index(name)]
    fits = baselines(sec.get("baselines", []), zd, vd[:, dcols.index(name)])
    fits = {"pinn": lambda q: result.predict(q)[:, case.outputs.index(name)], **fits}
    from scipy.spatial import Delaunay

    hull = Delaunay(zd).find_simplex(zr) >= 0  # speeds are compared inside the data's hull
    out = {}
    for kind, f in fits.items():
        row = {"rmse": float(np.sqrt(np.mean((f(zr) - truth) ** 2)))}
        if "speed" in sec:
            c = vr[hull, cols.index(sec["speed"])]
            s = pred[hull, case.outputs.index(sec["speed"])] if kind == "pinn" else \
                _speed(f, zr[hull])
            row["speed_relative_error"] = float(np.linalg.norm(s - c) / np.linalg.norm(c))
            row["speed_rmse"] = float(np.sqrt(np.mean((s - c) ** 2)))
        out[kind] = row
    return out


RESULT_FILES = ("result.json", "checkpoint.eqx", "network.eqx", "prediction.csv",
                "losses.png", "fields.png")


def case_inputs(case: Case) -> dict:
    """``{input: (source, sha256)}`` of a case for its run directory: the TOML file, the
    model it names (its content), the data and the reference tables."""
    inputs = {"case file": (case.path.name, fingerprint(case.path.read_bytes())
                            if case.path.is_file() else fingerprint(case.name))}
    model = getattr(case.problem, "model", None)
    if model is not None:
        inputs["model"] = (None, fingerprint(model))
    inputs["data"] = (None, fingerprint(case.data))
    inputs["reference"] = (None, fingerprint(case.reference))
    return inputs


def run_case(case: Case | str | Path, out, *, verbose: bool = True,
             restart: bool = False) -> dict:
    """Train ``case`` (a :class:`Case` or a TOML path), write the report into the run
    directory ``out`` (:mod:`scalebridge.runtime.run`: an interrupted run resumes from its
    checkpoint; a changed case, model or data is refused unless ``restart``) and return
    the contents of ``result.json``."""
    if not isinstance(case, Case):
        case = load_case(case)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a directory; give a directory")
    open_run(out, "pinn", inputs=case_inputs(case), restart=restart, results=RESULT_FILES,
             settings={"training": {k: repr(v) for k, v in case.training.items()},
                       "checkpoint_every": case.checkpoint_every})
    res = train_pinn(case.problem, network=case.network, verbose=verbose,
                     checkpoint=Checkpoint(out / "checkpoint.eqx", case.checkpoint_every),
                     **case.training)
    write_atomic(out / "network.eqx", lambda fh: eqx.tree_serialise_leaves(fh, res.network))
    report = {"case": case.name, "file": str(case.path), "outputs": case.outputs,
              "coordinates": case.coords, "steps": res.steps,
              "losses": res.losses, "loss_weights": res.weights,
              "compile_seconds": res.compile_seconds, "run_seconds": res.run_seconds}
    if res.parameters:
        report["parameters"] = parameter_report(res.parameters, case.truth)
    pred = None
    if case.reference is not None:
        zr, vr, cols = case.reference
        pred = res.predict(zr)
        report["relative_l2_error"], report["fields"] = field_errors(pred, vr, cols,
                                                                     case.outputs)
        _write_prediction(out / "prediction.csv", zr, pred, case)
    if case.compare:
        report["comparison"] = _compare(case, res, pred)
    write_json(out / "result.json", report)
    _plot_losses(res, out / "losses.png", case.name)
    if case.reference is not None:
        _plot_fields(case, pred, out / "fields.png")
    return report


def _write_prediction(path, z, pred, case: Case):
    import pandas as pd

    df = pd.DataFrame(np.hstack([z, pred]), columns=[*case.coords, *case.outputs])
    text = df.to_csv(index=False, float_format="%.9g").encode()
    write_atomic(path, lambda fh: fh.write(text))


def _plot_losses(res: PINNResult, path, title):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.6), constrained_layout=True)
    for name, h in res.history.items():
        ax.semilogy(np.arange(1, len(h) + 1), np.maximum(h, 1e-300), lw=1.0, label=name)
    ax.set_xlabel("step (Adam, then L-BFGS)")
    ax.set_ylabel("loss term")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    write_atomic(path, lambda fh: fig.savefig(fh, dpi=110, format="png"))
    plt.close(fig)


def _plot_fields(case: Case, pred, path):
    """ODE: each state against time (prediction, reference, data). PDE: maps of the
    prediction and its error for each reference field."""
    plt = _plt()
    zr, vr, cols = case.reference
    if case.coords == ["t"]:
        n = len(case.outputs)
        ncol = min(n, 4)
        fig, axes = plt.subplots(math.ceil(n / ncol), ncol, figsize=(3.2 * ncol, 2.4 *
                                 math.ceil(n / ncol)), squeeze=False, constrained_layout=True)
        order = np.argsort(zr[:, 0])
        for ax, name in zip(axes.flat, case.outputs, strict=False):
            i = case.outputs.index(name)
            if name in cols:
                ax.plot(zr[order, 0], vr[order, cols.index(name)], "k-", lw=2.5, alpha=0.3,
                        label="reference")
            ax.plot(zr[order, 0], pred[order, i], "C0--", lw=1.2, label="PINN")
            if case.data is not None and name in case.data[2]:
                ax.plot(case.data[0][:, 0], case.data[1][:, case.data[2].index(name)], "C3.",
                        ms=2.5, label="data")
            ax.set_title(name, fontsize=9)
        for ax in axes.flat[n:]:
            ax.set_visible(False)
        axes.flat[0].legend(fontsize=7)
    else:
        fig, axes = plt.subplots(len(cols), 3, figsize=(11, 3.0 * len(cols)), squeeze=False,
                                 constrained_layout=True)
        a, b = zr[:, 0], zr[:, 1]
        for row, name in zip(axes, cols, strict=True):
            ref = vr[:, cols.index(name)]
            p = pred[:, case.outputs.index(name)]
            for ax, val, title in ((row[0], ref, f"{name}: reference"),
                                   (row[1], p, f"{name}: PINN"),
                                   (row[2], p - ref, f"{name}: error")):
                art = ax.tricontourf(a, b, val, levels=40,
                                     cmap="RdBu_r" if "error" in title else "viridis")
                fig.colorbar(art, ax=ax)
                ax.set_title(title, fontsize=9)
                ax.set_xlabel(case.coords[0])
                ax.set_ylabel(case.coords[1])
            if case.data is not None:
                row[0].plot(case.data[0][:, 0], case.data[0][:, 1], "k.", ms=1.5)
    write_atomic(path, lambda fh: fig.savefig(fh, dpi=110, format="png"))
    plt.close(fig)

