"""``scalebridge discover sindy`` from the command line: the weak form, ensembles and library
specs, each checked against the true coefficients of the system that generated the data
(simulated by SciPy, not by scalebridge), and a one-line error for each bad option."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import solve_ivp

from conftest import assert_one_line_error
from scalebridge.cli.app import main

# Lotka-Volterra: prey' = a prey - b prey*predator, predator' = c prey*predator - d predator
A, B, C, D = 1.0, 0.5, 0.2, 0.6
LV_TRUE = {"prey": {"prey": A, "prey*predator": -B},
           "predator": {"predator": -D, "prey*predator": C}}
# damped pendulum: theta' = omega, omega' = -G sin(theta) - F omega
G, F = 2.0, 0.1
PENDULUM_TRUE = {"theta": {"omega": 1.0}, "omega": {"omega": -F, "sin(theta)": -G}}


def _csv(path, t, x, names, noise=0.0, seed=0):
    if noise:
        x = x + noise * x.std(axis=0) * np.random.default_rng(seed).standard_normal(x.shape)
    pd.DataFrame({"t": t, **{n: x[:, i] for i, n in enumerate(names)}}).to_csv(path,
                                                                                index=False)
    return path


@pytest.fixture(scope="module")
def lotka(tmp_path_factory):
    def f(_, y):
        return [A * y[0] - B * y[0] * y[1], C * y[0] * y[1] - D * y[1]]

    t = np.linspace(0.0, 30.0, 1201)
    sol = solve_ivp(f, (0, 30), [4.0, 2.0], t_eval=t, method="DOP853", rtol=1e-12, atol=1e-12)
    return t, sol.y.T, tmp_path_factory.mktemp("lv")


def _run(csv, out, *options):
    assert main(["discover", "sindy", str(csv), "--time-col", "t", "--out", str(out),
                 *options]) == 0
    return (json.loads((out / "equations.json").read_text()),
            json.loads((out / "discovery.json").read_text()))


def _assert_coefficients(eq, truth, rel):
    assert {k: set(v) for k, v in eq.items()} == {k: set(v) for k, v in truth.items()}, eq
    worst = max(abs(eq[s][k] / c - 1) for s, terms in truth.items() for k, c in terms.items())
    print(f"worst relative coefficient error {worst:.2e}")
    for state, terms in truth.items():
        for term, c in terms.items():
            assert eq[state][term] == pytest.approx(c, rel=rel), (state, term, eq[state][term])


def test_library_poly2_and_ensemble_recover_lotka_volterra(lotka):
    t, x, tmp = lotka
    csv = _csv(tmp / "clean.csv", t, x, ["prey", "predator"])
    eq, info = _run(csv, tmp / "poly2", "--library", "poly:2", "--ensemble", "6")
    # reference: the generating coefficients; clean data, measured worst relative error 8e-9
    _assert_coefficients(eq, LV_TRUE, rel=1e-7)
    assert info["library"] == "poly:2" and info["form"] == "strong"
    assert info["terms"] == ["1", "prey", "predator", "prey^2", "prey*predator", "predator^2"]
    inc = np.asarray(info["inclusion"])
    assert inc.shape == (2, 6)
    for i, state in enumerate(["prey", "predator"]):
        for j, term in enumerate(info["terms"]):
            # every bagged model keeps the true terms and drops the others
            assert inc[i, j] == (1.0 if term in LV_TRUE[state] else 0.0), (state, term)


def test_weak_form_recovers_lotka_volterra_from_noisy_data(lotka):
    t, x, tmp = lotka
    csv = _csv(tmp / "noisy.csv", t, x, ["prey", "predator"], noise=0.02, seed=1)
    eq, info = _run(csv, tmp / "weak", "--weak")  # the default library, poly:3
    # reference: the generating coefficients; 2% noise, measured worst relative error 2e-3
    _assert_coefficients(eq, LV_TRUE, rel=5e-3)
    assert info["form"] == "weak" and info["differentiation"] is None
    assert info["inclusion"] is None and len(info["terms"]) == 10


def test_library_sum_with_fourier_recovers_the_pendulum(tmp_path):
    def f(_, y):
        return [y[1], -G * np.sin(y[0]) - F * y[1]]

    t = np.linspace(0.0, 20.0, 2001)
    sol = solve_ivp(f, (0, 20), [2.5, 0.0], t_eval=t, method="DOP853", rtol=1e-12, atol=1e-12)
    csv = _csv(tmp_path / "pendulum.csv", t, sol.y.T, ["theta", "omega"])
    eq, info = _run(csv, tmp_path / "out", "--library", "poly:1+fourier:1")
    assert info["terms"] == ["1", "theta", "omega", "sin(theta)", "cos(theta)", "sin(omega)",
                             "cos(omega)"]
    # reference: the generating coefficients; measured worst relative error 2e-9
    _assert_coefficients(eq, PENDULUM_TRUE, rel=1e-7)


@pytest.mark.parametrize("options, match", [
    (["--library", "cubic"], "cannot read 'cubic'; use poly:D or fourier:K"),
    (["--library", "poly:2+fourier:0"], "cannot read 'fourier:0'"),
    (["--library", "poly:x"], "cannot read 'poly:x'"),
    (["--ensemble", "1"], "--ensemble 1: use 0 (none) or at least 2 models"),
    (["--ensemble", "-3"], "--ensemble -3: use 0 (none) or at least 2 models"),
])
def test_bad_options_get_one_line(lotka, capsys, options, match):
    t, x, tmp = lotka
    csv = _csv(tmp / "clean.csv", t, x, ["prey", "predator"])
    assert_one_line_error(main, ["discover", "sindy", str(csv), "--time-col", "t",
                                 "--out", str(tmp / "bad"), *options], capsys, match)


def test_weak_form_on_too_few_samples_gets_one_line(tmp_path, capsys):
    t = np.linspace(0.0, 1.0, 12)
    csv = _csv(tmp_path / "short.csv", t, np.c_[np.exp(-t), np.exp(-2 * t)], ["a", "b"])
    assert_one_line_error(main, ["discover", "sindy", str(csv), "--time-col", "t", "--weak",
                                 "--library", "poly:1", "--out", str(tmp_path / "o")],
                          capsys, "WeakForm")
