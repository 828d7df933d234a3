"""Data of the activation-mapping benchmark of Sahli Costabal et al. 2020 ("Physics-informed
neural networks for cardiac activation mapping", Front. Phys. 8:42): the activation time

    T(x, y) = min(sqrt(x^2 + y^2), 0.7 sqrt((x - 1)^2 + (y - 1)^2))

on the unit square (two waves from opposite corners, conduction velocity 1 and 1/0.7),
measured at 50 Latin-hypercube points. Writes data.csv (x, y, T) and reference.csv (x, y,
T, c on a 101 x 101 grid, c the conduction velocity).

    python examples/pinn_eikonal/make_data.py
"""

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import qmc

HERE = Path(__file__).parent


def activation(x, y):
    return np.minimum(np.hypot(x, y), 0.7 * np.hypot(x - 1, y - 1))


def velocity(x, y):
    return np.where(np.hypot(x, y) <= 0.7 * np.hypot(x - 1, y - 1), 1.0, 1 / 0.7)


def main():
    z = qmc.LatinHypercube(d=2, seed=0).random(50)
    pd.DataFrame({"x": z[:, 0], "y": z[:, 1], "T": activation(*z.T)}).to_csv(
        HERE / "data.csv", index=False, float_format="%.12g")
    g = np.linspace(0, 1, 101)
    x, y = (a.ravel() for a in np.meshgrid(g, g))
    pd.DataFrame({"x": x, "y": y, "T": activation(x, y), "c": velocity(x, y)}).to_csv(
        HERE / "reference.csv", index=False, float_format="%.12g")


if __name__ == "__main__":
    main()
