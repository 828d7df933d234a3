"""Reference solution for the PINN on viscous Burgers (Raissi, Perdikaris & Karniadakis 2019):
u_t + u u_x = (0.01/pi) u_xx, x in [-1, 1], t in [0, 1], u(0, x) = -sin(pi x), u(t, +-1) = 0.

Writes reference.csv (columns x,t,u) on the 256 x 101 grid x = linspace(-1, 1, 256),
t = linspace(0, 1, 101), from the Cole-Hopf solution ``scalebridge.pinn.burgers_cole_hopf``
(quadrature accurate to about 1e-15).
"""

from pathlib import Path

import numpy as np

from scalebridge.pinn import burgers_cole_hopf

HERE = Path(__file__).resolve().parent
NU = 0.01 / np.pi


def grid():
    x = np.linspace(-1.0, 1.0, 256)
    t = np.linspace(0.0, 1.0, 101)
    X, T = np.meshgrid(x, t, indexing="ij")
    return X.ravel(), T.ravel()


def main():
    x, t = grid()
    u = burgers_cole_hopf(x, t, NU)
    np.savetxt(HERE / "reference.csv", np.column_stack([x, t, u]), delimiter=",",
               header="x,t,u", comments="", fmt="%.17g")
    print(f"wrote {HERE / 'reference.csv'}: {x.size} points, max |u| = {np.abs(u).max():.6f}")


if __name__ == "__main__":
    main()
