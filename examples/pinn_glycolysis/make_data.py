"""Data for the PINN inference of the yeast glycolysis model (Yazdani et al. 2020 setting).

Taken from Yazdani, Lu, Raissi & Karniadakis (2020), PLoS Comput Biol 16:e1007575, and
their code (github.com/alirezayazdani1/SBINNs, glycolysis.py):
- time window t in [0, 10) min on the grid t = 0, 0.005, ..., 9.995 (2000 points),
- the initial state and parameters of the zoo model (theirs),
- observations of S5 and S6 only, at n // 4 = 500 randomly chosen interior grid points
  plus the first and the last grid point (502 times),
- noise: Gaussian with standard deviation 0.1 x the standard deviation of each signal
  over the grid, on every point except the first and the last.
Chosen here: the random draw (numpy seed 0 for the times, seed 1 for the noise), the
tolerances (rtol 1e-10, atol 1e-12) and a reference grid of step 0.01 min.

Writes data.csv (t,S5,S6, noise-free), data_noisy.csv (same times, noisy) and
reference.csv (t and all seven species) next to this script.
"""

from pathlib import Path

import numpy as np

import scalebridge as sb

HERE = Path(__file__).resolve().parent


def main():
    model = sb.load_zoo("yeast_glycolysis")
    t = np.arange(2000) * 0.005                       # Yazdani: np.arange(0, 10, 0.005)
    sol = sb.simulate(model, t, rtol=1e-10, atol=1e-12)
    y = np.asarray(sol.states)
    i5, i6 = model.state_index("S5"), model.state_index("S6")
    n = t.size
    rng = np.random.default_rng(0)
    idx = np.sort(np.append(rng.choice(np.arange(1, n - 1), size=n // 4, replace=False),
                            [0, n - 1]))
    obs = y[idx][:, [i5, i6]]
    std = 0.1 * y[:, [i5, i6]].std(axis=0)
    noise = np.random.default_rng(1).normal(0.0, std, obs.shape)
    noise[[0, -1]] = 0.0                               # ends kept exact, as in their code
    fmt = "%.10g"
    hdr = "t,S5,S6"
    np.savetxt(HERE / "data.csv", np.column_stack([t[idx], obs]), delimiter=",",
               header=hdr, comments="", fmt=fmt)
    np.savetxt(HERE / "data_noisy.csv", np.column_stack([t[idx], obs + noise]),
               delimiter=",", header=hdr, comments="", fmt=fmt)
    tr = np.linspace(0.0, 10.0, 1001)
    yr = np.asarray(sb.simulate(model, tr, rtol=1e-10, atol=1e-12).states)
    np.savetxt(HERE / "reference.csv", np.column_stack([tr, yr]), delimiter=",",
               header="t," + ",".join(model.state_names), comments="", fmt=fmt)
    print(f"{idx.size} observation times; noise std S5 {std[0]:.4g}, S6 {std[1]:.4g}")
    print("species ranges:", {s: (round(float(yr[:, k].min()), 4), round(float(yr[:, k].max()), 4))
                              for k, s in enumerate(model.state_names)})


if __name__ == "__main__":
    main()
