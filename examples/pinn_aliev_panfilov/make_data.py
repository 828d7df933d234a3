"""Data for the PINN inference of D, a and b of the 1D Aliev-Panfilov monodomain (the setting
of Herrero Martin et al. 2022, "EP-PINNs", Front. Cardiovasc. Med. 8:768419).

u_t = D u_xx + k u (1 - u)(u - a) - u v,  v_t = (eps0 + mu1 v / (u + mu2)) (-v - k u (u - b - 1))
on x in [0, 10], t in [0, 70], no-flux ends; a = 0.01, b = 0.15, D = 0.1, k = 8, mu1 = 0.2,
mu2 = 0.3, eps0 = 0.002 (EP-PINNs).

Chosen here:
- excitation by the initial condition (no stimulus current, so that the PINN's residual,
  which holds I_stim at 0, is the same PDE): u0(x) = 0.5 (1 - tanh((x - 1) / 0.2)), i.e. u = 1
  for x <~ 1 with a smooth edge of width ~0.4; v0 = 0;
- the scalebridge PDE layer (monodomain of the zoo cell, method of lines), dx = 0.1 (101
  nodes), Tsit5 rtol 1e-8 atol 1e-10; convergence checked against dx = 0.05;
- observations: u at every 10th node (x = 0, 1, ..., 10: 11 of 101 nodes), every 0.5 time
  units (141 times), Gaussian noise of sd 0.1 (numpy seed 0) -> data.csv; noise-free ->
  data_clean.csv;
- reference.csv: x, t, u, v on the full 101-node grid every 0.5 time units.
"""

from pathlib import Path

import numpy as np

import scalebridge as sb
from scalebridge.model.inputs import PulseTrain
from scalebridge.pde import activation_times, conduction_velocity, grid1d, monodomain

HERE = Path(__file__).resolve().parent
TRUTH = {"k": 8.0, "a": 0.01, "b": 0.15, "eps0": 0.002, "mu1": 0.2, "mu2": 0.3, "D": 0.1}
L, T1 = 10.0, 70.0
NOISE_SD = 0.1


def u_initial(x):
    return 0.5 * (1.0 - np.tanh((np.asarray(x) - 1.0) / 0.2))


def solve(n, times):
    cell = sb.load_zoo("aliev_panfilov")
    # silence the cell's own pulse train (without tissue stimuli it would reach every node)
    cell = cell.replace(inputs=(PulseTrain("I_stim", 0.0, 1.0, 1.0, start=np.inf),))
    grid = grid1d(n, L, "noflux")
    x = grid.coords[0]
    model = monodomain(cell, grid, D=TRUTH["D"])
    model = model.replace(initial=np.concatenate([u_initial(x), np.zeros(n)]))
    sol = sb.simulate(model, times, params={k: v for k, v in TRUTH.items()},
                      rtol=1e-8, atol=1e-10, max_steps=1_000_000)
    y = np.asarray(sol.states)
    return grid, x, y[:, :n], y[:, n:]


def main():
    times = np.arange(0.0, T1 + 1e-9, 0.5)
    grid, x, u, v = solve(101, times)
    g2, x2, u2, v2 = solve(201, times)
    diff = np.abs(u2[:, ::2] - u).max()
    act = activation_times(u, times, threshold=0.5)
    act2 = activation_times(u2, times, threshold=0.5)
    cv = conduction_velocity(act, grid)
    cv2 = conduction_velocity(act2, g2)
    print(f"dx 0.1: CV {cv:.4f}; dx 0.05: CV {cv2:.4f}; max |u(dx 0.1) - u(dx 0.05)| {diff:.3g}")
    print(f"activation at x = 10: {act[-1]:.2f}; u range [{u.min():.3f}, {u.max():.3f}], "
          f"v range [{v.min():.3f}, {v.max():.3f}]")
    print(f"u at t = 70: max {u[-1].max():.3f}; nodes above 0.5 at t = 40: "
          f"{int((u[times == 40.0] > 0.5).sum())}")
    assert np.all(np.isfinite(act[x > 1.5])), "the wave does not reach every node"
    rep = activation_times(-u, times, threshold=-0.5)     # repolarisation: downward crossing
    print(f"repolarisation (u < 0.5) at x = 0: {rep[0]:.2f}, at x = 10: {rep[-1]:.2f}")
    idx = np.arange(0, 101, 10)
    X, Tm = np.meshgrid(x[idx], times, indexing="ij")
    clean = u[:, idx].T                                   # (11, 141)
    noisy = clean + np.random.default_rng(0).normal(0.0, NOISE_SD, clean.shape)
    fmt = "%.8g"
    for name, vals in (("data.csv", noisy), ("data_clean.csv", clean)):
        np.savetxt(HERE / name, np.column_stack([X.ravel(), Tm.ravel(), vals.ravel()]),
                   delimiter=",", header="x,t,u", comments="", fmt=fmt)
    Xr, Tr = np.meshgrid(x, times, indexing="ij")
    np.savetxt(HERE / "reference.csv",
               np.column_stack([Xr.ravel(), Tr.ravel(), u.T.ravel(), v.T.ravel()]),
               delimiter=",", header="x,t,u,v", comments="", fmt="%.6g")
    print(f"{idx.size} observed nodes x {times.size} times = {clean.size} data points")


if __name__ == "__main__":
    main()
