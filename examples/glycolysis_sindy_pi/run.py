"""SINDy-PI on the yeast glycolytic oscillator (zoo ``yeast_glycolysis``, Ruoff et al. 2003).

The glucose equation ``dS1/dt = J0 - k1 S1 S6 / (1 + (S6/K1)^4)`` is rational; multiplied by
its denominator it is a sparse implicit equation, which SINDy-PI finds (Mangan et al. 2016
recovered it with implicit-SINDy; Kaheman et al. 2020 with SINDy-PI).

Data: 4 clean trajectories of 4 min sampled every 0.001 min (the zoo's initial state and
three states scaled by U(0.5, 1.5) factors, seed 1), derivatives by fourth-order finite
differences (``SINDyPI``'s default). Libraries, one per equation:

- S1: all monomials of (S1, S6) up to degree 4 (15 terms; 30 in the extended library);
- S2 and S6 (they also contain v1): degree-2 monomials of the species in the equation times
  {1, S6^4}, i.e. the Hill exponent 4 is given as prior knowledge;
- S3, S4, S5, S7 (polynomial): all monomials of the 7 species up to degree 2 (36 terms).

Writes results.json (equations, chosen left-hand sides, errors, whether exactly the true
terms were found, coefficient errors, and a simulation of the identified model against the
truth). About a minute on one core:

    python examples/glycolysis_sindy_pi/run.py [--quick]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

import scalebridge as sb
from scalebridge.discover import CustomLibrary, PolynomialLibrary
from scalebridge.discover.implicit import SINDyPI
from scalebridge.runtime.files import write_json

HERE = Path(__file__).parent
NAMES = [f"S{i}" for i in range(1, 8)]


def data(dt: float, t_end: float, n_traj: int = 4):
    model = sb.load_zoo("yeast_glycolysis")
    t = np.arange(int(round(t_end / dt)) + 1) * dt
    x0 = np.asarray(model.initial, dtype=float)
    rng = np.random.default_rng(1)
    xs = []
    for k in range(n_traj):
        y0 = x0 if k == 0 else x0 * rng.uniform(0.5, 1.5, x0.size)
        xs.append(np.asarray(sb.simulate(model, t, y0=y0, rtol=1e-10, atol=1e-10).states))
    return model, t, xs


def hill(inputs):
    """Degree-2 monomials of ``inputs`` times {1, S6^4}."""
    s6_4 = CustomLibrary({"{}^4": lambda a: a ** 4}, inputs=["S6"])
    return PolynomialLibrary(degree=2, inputs=inputs) * (PolynomialLibrary(degree=0) + s6_4)


def libraries():
    libs = {"S1": PolynomialLibrary(degree=4, inputs=["S1", "S6"]),
            "S2": hill(["S1", "S2", "S5", "S6"]),
            "S6": hill(["S1", "S3", "S6"])}
    for s in ("S3", "S4", "S5", "S7"):
        libs[s] = PolynomialLibrary(degree=2)
    return libs


def truth(model):
    """``{state: (numerator, denominator)}`` of the true equations, denominators with
    constant 1, in the term names of :func:`libraries`."""
    p = {q.name: q.value for q in model.parameters}
    c = 1.0 / p["K1"] ** 4  # 1 + (S6/K1)^4 = 1 + c S6^4
    k2n, k3a = p["k2"] * p["N"], p["k3"] * p["A"]
    den = {"1": 1.0, "S6^4": c}
    one = {"1": 1.0}

    def times_den(poly):
        out = dict(poly)
        for term, v in poly.items():
            out[f"{term}*S6^4" if term != "1" else "S6^4"] = v * c
        return out

    s2_poly = {"S2": -k2n, "S2*S5": p["k2"] - p["k6"]}  # -v2 - v6
    s6_poly = {"S3": 2 * k3a, "S3*S6": -2 * p["k3"], "S6": -p["k5"]}
    s2_num = times_den(s2_poly) | {"S1*S6": 2 * p["k1"]}
    s6_num = times_den(s6_poly) | {"S1*S6": -2 * p["k1"]}
    return {
        "S1": ({"1": p["J0"], "S6^4": p["J0"] * c, "S1*S6": -p["k1"]}, den),
        "S2": (s2_num, den),
        "S3": ({"S2": k2n, "S2*S5": -p["k2"], "S3": -k3a, "S3*S6": p["k3"]}, one),
        "S4": ({"S3": k3a, "S3*S6": -p["k3"], "S4*S5": -p["k4"], "S4": -p["kappa"],
                "S7": p["kappa"]}, one),
        "S5": ({"S2": k2n, "S2*S5": -p["k2"] - p["k6"], "S4*S5": -p["k4"]}, one),
        "S6": (s6_num, den),
        "S7": ({"S4": p["psi"] * p["kappa"], "S7": -p["psi"] * p["kappa"] - p["k"]}, one),
    }


def compare(found: dict, true: dict) -> dict:
    """Support match and relative coefficient error of numerator and denominator
    together."""
    f = {f"num:{k}": v for k, v in found["numerator"].items()}
    f |= {f"den:{k}": v for k, v in found["denominator"].items()}
    g = {f"num:{k}": v for k, v in true[0].items()} | {f"den:{k}": v for k, v in true[1].items()}
    keys = sorted(set(f) | set(g))
    a = np.array([g.get(k, 0.0) for k in keys])
    b = np.array([f.get(k, 0.0) for k in keys])
    return {"exact_terms": set(f) == set(g),
            "missing": sorted(set(g) - set(f)), "extra": sorted(set(f) - set(g)),
            "coefficient_error": float(np.linalg.norm(a - b) / np.linalg.norm(a))}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer samples (smoke run)")
    args = ap.parse_args(argv)
    dt = 0.002 if args.quick else 0.001
    model, t, xs = data(dt, 2.0 if args.quick else 4.0)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pi = SINDyPI(libraries()).fit(xs, t, feature_names=NAMES)
    fit_s = time.perf_counter() - t0
    print(pi)
    eqs = pi.equations()
    true = truth(model)
    per_state = {}
    for s in NAMES:
        row = {"identified": pi.identified_[s], "lhs": pi.lhs_[s],
               "threshold": pi.threshold_[s], "derivative_error": pi.error_[s],
               "n_candidates": len(pi.candidates_[s]),
               "library_size": len(pi.terms_[s]),
               "numerator": eqs[s]["numerator"], "denominator": eqs[s]["denominator"]}
        if pi.identified_[s]:
            row.update(compare(eqs[s], true[s]))
        per_state[s] = row
        print(s, {k: row.get(k) for k in ("lhs", "exact_terms", "coefficient_error",
                                          "missing", "extra")})
    out = {"settings": {"dt": dt, "t_end": float(t[-1]), "n_trajectories": len(xs),
                        "thresholds": list(pi.thresholds), "tolerance": pi.tolerance,
                        "differentiation": pi.differentiation},
           "fit_seconds": fit_s, "equations_text": str(pi).splitlines(),
           "states": per_state, "warnings": [str(w.message) for w in caught]}
    if all(pi.identified_.values()):  # simulate the identified model from a held-out state
        t_sim = np.arange(0, 5.0 + 1e-9, 0.01)
        y0 = np.asarray(model.initial) * 1.1
        ref = np.asarray(sb.simulate(model, t_sim, y0=y0, rtol=1e-10, atol=1e-10).states)
        sol = sb.simulate(pi.to_model(initial=y0), t_sim, y0=y0, rtol=1e-8, atol=1e-10,
                          throw=False)
        got = np.asarray(sol.states)
        err = float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))
        out["simulation"] = {"t_end": 5.0, "y0": "1.1 x zoo initial state",
                             "max_abs_error_relative_to_max_state": err}
        print("simulation: max |x_id - x_true| / max |x_true| =", f"{err:.2e}")
    out["equations_text"] = str(pi).splitlines()
    if not args.quick:
        write_json(HERE / "results.json", out)
    return out


if __name__ == "__main__":
    main()
