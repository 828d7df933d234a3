"""Scratch assay (Jin et al. 2016): discover a reaction-diffusion model of collective
migration, fit it per initial density, and compare with Fisher-KPP, porous Fisher-KPP and
the published numbers of Lagergren et al. 2020.

    python examples/scratch_assay/run.py            # about 15 minutes on one core

Writes results.json, results.md and fits.png next to this file (and a copy of the JSON
and table under benchmarks/results/scratch_assay.*).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

import scalebridge as sb
from scalebridge.discover.reaction_diffusion import (
    classical_fisher_kpp_terms,
    delay_terms,
    discover_reaction_diffusion,
    fit_reaction_diffusion,
    polynomial_library,
    porous_fisher_kpp_terms,
)

HERE = Path(__file__).resolve().parent
K = 1.7e-3  # carrying capacity, cells/um^2 (Jin et al. 2016)
TO_MM2 = 1e6  # cells/um^2 -> cells/mm^2
# Lagergren et al. 2020, PLoS Comput Biol 16:e1008462, RMSE (cells/mm^2) per initial density
PUBLISHED = {
    "classical Fisher-KPP": [786.8, 557.3, 616.8, 619.1, 685.2, 964.2],
    "porous Fisher-KPP": [681.2, 540.3, 418.6, 566.9, 744.4, 928.4],
    "BINN-guided (Lagergren 2020)": [557.0, 317.2, 410.8, 393.2, 307.7, 386.5],
}


def load():
    d = pd.read_csv(HERE / "jin2016_scratch_assay.csv")
    dens = sorted(d.initial_cells_per_well.unique())
    reps = sorted(d.replicate.unique())
    times = np.sort(d.time_h.unique())
    pos = np.sort(d.position_um.unique())
    arr = np.empty((len(dens), len(reps), len(times), len(pos)))
    for i, c in enumerate(dens):
        for j, r in enumerate(reps):
            s = d[(d.initial_cells_per_well == c) & (d.replicate == r)]
            table = s.pivot(index="time_h", columns="position_um",
                            values="density_cells_per_um2")
            arr[i, j] = table.loc[times, pos].to_numpy()
    return arr, pos, times, [int(c) for c in dens]


def _switch_time(p):
    """Time at which the delay factor T(t) = 1/(1 + a_T exp(-b_T t)) reaches 1/2."""
    if "a_T" not in p or p["a_T"] <= 1 or p["b_T"] <= 0:
        return {}
    return {"t_on (h)": float(np.log(p["a_T"]) / p["b_T"])}


def figure(data, pos, times, dens, fits, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(13, 7), sharex=True)
    colours = plt.cm.viridis(np.linspace(0, 0.9, len(times)))
    styles = {"selected": "-", "porous Fisher-KPP": "--"}
    for i, ax in enumerate(axes.flat):
        for k, t in enumerate(times):
            for r in range(data.shape[1]):
                ax.plot(pos, data[i, r, k] * TO_MM2, ".", color=colours[k], ms=3,
                        label=f"{t:g} h" if r == 0 else None)
            for name, f in fits.items():
                ax.plot(pos, f.predict(i)[k] * TO_MM2, styles[name], color=colours[k], lw=1.2)
        ax.set_title(f"{dens[i]} cells/well")
        ax.set_ylim(0, 2000)
        if i % 3 == 0:
            ax.set_ylabel("density (cells/mm$^2$)")
        if i >= 3:
            ax.set_xlabel("position (um)")
    axes.flat[0].legend(fontsize=7, loc="upper center", ncol=2)
    fig.suptitle(f"dots: data (3 replicates); solid: selected {fits['selected'].equation()}; "
                 "dashed: porous Fisher-KPP", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main():
    t0 = time.perf_counter()
    data, pos, times, dens = load()
    common = dict(K=K, conditions=dens)
    # library: D0, D1 u/K, D2 (u/K)^2; r0, r1 u/K, r2 (u/K)^2; a delayed start T(t)
    library = polynomial_library() + delay_terms()
    sel = discover_reaction_diffusion(data, pos, times, library=library, criterion="bic",
                                      max_terms=4, verbose=True, **common)
    no_delay = next(c for c in sel.candidates if "a_T" not in c["terms"])
    fkpp = fit_reaction_diffusion(data, pos, times, classical_fisher_kpp_terms(), **common)
    pfkpp = fit_reaction_diffusion(data, pos, times, porous_fisher_kpp_terms(), **common)

    # the selected model as a scalebridge Model, solved by scalebridge.simulate
    check = max(float(np.max(np.abs(np.asarray(sb.simulate(sel.model(i), times).states)[:, 1::2]
                                    - sel.predict(i)))) for i in range(len(dens)))

    ours = {
        f"selected: {sel.equation()}": sel.rmse * TO_MM2,
        "classical Fisher-KPP (ours)": fkpp.rmse * TO_MM2,
        "porous Fisher-KPP (ours)": pfkpp.rmse * TO_MM2,
        f"best without delay ({'+'.join(no_delay['terms'])})":
            np.asarray(no_delay["rmse"]) * TO_MM2,
    }
    beats_published = bool(np.all(sel.rmse * TO_MM2 < PUBLISHED["porous Fisher-KPP"]))
    beats_ours = bool(np.all(sel.rmse < pfkpp.rmse))
    seconds = time.perf_counter() - t0
    results = {
        "data": "Jin et al. 2016 J Theor Biol 390:136 (PC-3 scratch assay, 3 replicates)",
        "rmse_definition": "sqrt(mean over replicates, 38 positions and t = 12, 24, 36, 48 h "
                           "of (model - data)^2), cells/mm^2; t = 0 gives the initial "
                           "condition and is not scored",
        "K_cells_per_um2": K,
        "grid": {"length_um": sel.length, "nodes": int(sel.nodes.size)},
        "initial_densities": dens,
        "selected_terms": list(sel.term_names),
        "selected_equation": sel.equation(),
        "criterion": sel.criterion,
        "library": [s.name for s in library],
        "max_terms": 4,
        "selected_params": [{"initial_density": c, **p, **_switch_time(p)}
                            for c, p in zip(dens, sel.params, strict=True)],
        "classical_params": [dict(p) for p in fkpp.params],
        "porous_params": [dict(p) for p in pfkpp.params],
        "rmse_cells_per_mm2": {k: np.round(v, 1).tolist() for k, v in ours.items()},
        "published_rmse_cells_per_mm2": PUBLISHED,
        "aic": {"selected": sel.aic, "classical": fkpp.aic, "porous": pfkpp.aic},
        "bic": {"selected": sel.bic, "classical": fkpp.bic, "porous": pfkpp.bic},
        "candidates": sel.candidates,
        "beats_published_porous_at_every_density": beats_published,
        "beats_our_porous_at_every_density": beats_ours,
        "scalebridge_simulate_max_abs_diff_cells_per_mm2": check * TO_MM2,
        "seconds": seconds,
    }
    text = json.dumps(results, indent=1, default=float)
    (HERE / "results.json").write_text(text)

    head = "| model | " + " | ".join(f"{d // 1000}k" for d in dens) + " |"
    rule = "|---|" + "---|" * len(dens)
    rows = [head, rule]
    for k, v in ours.items():
        rows.append(f"| {k} | " + " | ".join(f"{x:.1f}" for x in v) + " |")
    for k, v in PUBLISHED.items():
        rows.append(f"| {k}, published | " + " | ".join(f"{x:.1f}" for x in v) + " |")
    names = list(sel.term_names) + (["t_on (h)"] if "a_T" in sel.term_names else [])
    params = ["| initial density | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for c, p in zip(dens, sel.params, strict=True):
        p = {**p, **_switch_time(p)}
        params.append(f"| {c} | " + " | ".join(f"{p[n]:.4g}" for n in names) + " |")
    md = "\n".join([
        "# Scratch assay: RMSE per initial density (cells/mm^2)", "",
        f"Selected by {sel.criterion.upper()} over all six densities: `{sel.equation()}` "
        f"(K = {K} cells/um^2; D terms in um^2/h, r terms and b_T in 1/h; t_on = "
        "ln(a_T)/b_T is when T(t) = 1/2).", "",
        *rows, "",
        "RMSE: " + results["rmse_definition"] + ".", "",
        f"Selected model beats the published porous Fisher-KPP at every density: "
        f"{beats_published}; beats our own porous Fisher-KPP fit at every density: "
        f"{beats_ours}.", "",
        "## Selected model parameters", "", *params, "",
        f"Runtime {seconds:.0f} s. scalebridge.simulate of `fit.model(c)` agrees with the "
        f"fitting solver to {check * TO_MM2:.2g} cells/mm^2.", "",
    ])
    (HERE / "results.md").write_text(md)
    bench = HERE.parents[1] / "benchmarks" / "results"
    if bench.is_dir():
        (bench / "scratch_assay.json").write_text(text)
        (bench / "scratch_assay.md").write_text(md)
    figure(data, pos, times, dens, {"selected": sel, "porous Fisher-KPP": pfkpp},
           HERE / "fits.png")
    print(md)


if __name__ == "__main__":
    main()
