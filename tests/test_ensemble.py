"""simulate_ensemble(): equals the loop of single runs and libroadrunner, flags failing
members."""

from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import scalebridge as sb
from conftest import peer
from scalebridge.errors import InputError

T = np.linspace(0.0, 3.0, 7)


def test_ensemble_equals_loop(decay):
    ks = np.array([0.2, 0.5, 1.0, 3.0])
    ens = sb.simulate_ensemble(decay, {"k": ks}, T, rtol=1e-10, atol=1e-12)
    assert ens.states.shape == (4, 7, 1)
    assert bool(np.all(ens.success))
    for i, k in enumerate(ks):
        single = sb.simulate(decay, T, params={"k": k}, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ens.states[i], single.states, rtol=1e-8)
        np.testing.assert_allclose(ens.member(i)["twice"], single["twice"], rtol=1e-8)


def test_batches_and_progress_match_one_batch(decay):
    ps = np.column_stack([np.linspace(0.1, 1.0, 5), np.full(5, 2.0)])
    calls = []
    a = sb.simulate_ensemble(decay, ps, T, batch_size=2,
                             progress=lambda done, total: calls.append((done, total)))
    b = sb.simulate_ensemble(decay, pd.DataFrame({"k": ps[:, 0]}), T)
    np.testing.assert_allclose(a.states, b.states, rtol=1e-9)
    assert calls == [(2, 5), (4, 5), (5, 5)]
    ds = a.to_xarray()
    np.testing.assert_allclose(ds["param_k"].values, ps[:, 0])


def test_failing_member_is_flagged_and_others_survive():
    m = sb.Model(states=["y"], parameters={"a": 1.0}, initial=[1.0], stiff=False,
                 rhs=lambda t, y, p, u: p[0] * y**2)  # blows up at t = 1/a
    ens = sb.simulate_ensemble(m, {"a": [-1.0, 1.0, -2.0]}, np.array([0.0, 2.0]),
                               max_steps=2000)
    np.testing.assert_array_equal(np.asarray(ens.success), [True, False, True])
    assert np.all(np.isnan(ens.states[1]))
    np.testing.assert_allclose(ens.states[0, -1, 0], 1.0 / 3.0, rtol=1e-7)
    np.testing.assert_allclose(ens.states[2, -1, 0], 1.0 / 5.0, rtol=1e-7)


def test_ensemble_y0_per_member(decay):
    y0 = jnp.array([[1.0], [2.0]])
    ens = sb.simulate_ensemble(decay, {"k": [0.5, 0.5]}, T, y0=y0, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ens.states[:, -1, 0], np.array([1.0, 2.0]) * np.exp(-1.5),
                               rtol=1e-8)


def test_ensemble_bad_shapes(decay):
    with pytest.raises(InputError, match=r"param_sets has shape \(3, 3\)"):
        sb.simulate_ensemble(decay, np.ones((3, 3)), T)
    with pytest.raises(InputError, match="no parameter 'q'"):
        sb.simulate_ensemble(decay, {"q": [1.0]}, T)
    with pytest.raises(InputError, match=r"y0 has shape \(1, 1\)"):
        sb.simulate_ensemble(decay, {"k": [1.0, 2.0]}, T, y0=np.ones((1, 1)))


# ----- against libroadrunner -------------------------------------------------------------------
DATA = Path(__file__).parent / "data"
KINETIC = ["Epo_degradation_BaF3", "k_exp_hetero", "k_exp_homo", "k_imp_hetero", "k_imp_homo",
           "k_phos"]


def test_boehm_ensemble_matches_libroadrunner():
    """30 parameter sets of the Boehm et al. (2014) JAK-STAT model (its six kinetic rates at
    their SBML values times 10^u, u ~ U[-1, 1]) at the 16 measurement times of the PEtab
    problem: simulate_ensemble's batched Rodas5 against a libroadrunner (CVODE) loop at rtol
    1e-12 / atol 1e-16, the reference of benchmarks/ensemble_simulation.py (there within
    1.6e-10 of scipy's Radau at rtol 1e-12)."""
    roadrunner = peer("roadrunner", "libroadrunner")
    from scalebridge.model.sbml import load_sbml

    sbml = DATA / "Boehm_JProteomeRes2014.xml"
    model = load_sbml(sbml)
    ts = np.sort(pd.read_csv(DATA / "petab" / "Boehm_JProteomeRes2014"
                             / "measurementData_Boehm_JProteomeRes2014.tsv",
                             sep="\t")["time"].unique()).astype(float)
    ps = np.tile(np.asarray(model.parameter_values()), (30, 1))
    idx = [model.parameter_index(k) for k in KINETIC]
    ps[:, idx] *= 10.0 ** np.random.default_rng(0).uniform(-1.0, 1.0, (30, len(idx)))
    ens = sb.simulate_ensemble(model, ps, ts, rtol=1e-10, atol=1e-12)
    assert bool(np.all(ens.success))

    rr = roadrunner.RoadRunner(str(sbml))
    rr.integrator.relative_tolerance = 1e-12
    rr.integrator.absolute_tolerance = 1e-16
    rr.integrator.maximum_num_steps = 100_000
    rr.timeCourseSelections = ["time"] + [f"[{s}]" for s in model.state_names]
    ref = np.empty((len(ps), ts.size, len(model.state_names)))
    for i, p in enumerate(ps):
        rr.reset()
        for k, j in zip(KINETIC, idx, strict=True):
            rr[k] = p[j]
        ref[i] = np.asarray(rr.simulate(times=list(ts)))[:, 1:]
    # deviation relative to each state's largest value over the trajectory (states that stay
    # near 0 would make a pointwise relative error meaningless); measured 1e-9 at rtol 1e-10
    # (the global error of an adaptive solver is some 10x its local tolerance): held to 1e-8
    scale = np.max(np.abs(ref), axis=1, keepdims=True)
    dev = np.abs(np.asarray(ens.states) - ref) / scale
    assert dev.max() < 1e-8, dev.max()
