"""Outputs of spatial models: fields, measurements against analytic cases, figures, and
the spatial zoo."""

import math

import numpy as np
import pytest

import scalebridge as sb
from scalebridge.errors import InputError, SerializationError
from scalebridge.pde import (
    Fields,
    activation_times,
    apd,
    conduction_velocity,
    fisher_kpp,
    front_position,
    front_speed,
    grid1d,
    grid2d,
    initial_from_fields,
    load_spatial,
    to_fields,
)
from scalebridge.pde.zoo import SPATIAL, parse_grid, spatial_setup
from scalebridge.report import (
    animate_field,
    plot_fields,
    plot_kymograph,
    plot_snapshot,
    plot_traces,
)

PNG = b"\x89PNG\r\n\x1a\n"


def _front(s, w=2.0):
    """A smooth front rising from 0 to 1 as s = c t - x passes 0."""
    return 0.5 * (1 + np.tanh(s / w))


# ----- measurements: travelling waves ---------------------------------------------------------
def test_activation_and_velocity_of_a_synthetic_wave():
    c, x0 = 1.7, 5.0
    grid = grid1d(201, 100.0)
    x = grid.coords[0]
    t = np.linspace(0, 60, 601)
    u = _front(c * t[:, None] - (x[None, :] - x0))
    act = activation_times(u, t, threshold=0.5)
    exact = (x - x0) / c
    inside = (exact > t[0]) & (exact < t[-1])
    np.testing.assert_allclose(act[inside], exact[inside], atol=2e-3)
    assert np.all(np.isnan(act[exact >= t[-1]]))  # never reached
    assert conduction_velocity(act, grid) == pytest.approx(c, rel=1e-3)
    assert conduction_velocity(act, grid, points=((20.0,), (60.0,))) == pytest.approx(c, rel=1e-3)
    local = conduction_velocity(act, grid, method="gradient")
    assert np.nanmedian(local[inside]) == pytest.approx(c, rel=1e-3)
    # a few wild activation times do not move the robust fit
    bad = act.copy()
    bad[[40, 70, 120]] += 15.0
    assert conduction_velocity(bad, grid) == pytest.approx(c, rel=2e-3)


def test_activation_of_jax_arrays_is_differentiable():
    """On JAX arrays the same numbers, and the derivative of a crossing time in the wave's
    delay: for a front that is linear between two output times, exactly -1 per unit of
    advance (the fit of the two-variable surrogate relies on it)."""
    import jax
    import jax.numpy as jnp

    t = np.linspace(0.0, 10.0, 41)
    x = np.array([1.0, 4.0, 30.0])  # the last node is never reached

    def field(shift):
        return jnp.clip(t[:, None] + shift - x[None, :], -1.0, 1.0)

    act = activation_times(field(0.3), jnp.asarray(t), threshold=0.5)
    ref = activation_times(np.asarray(field(0.3)), t, threshold=0.5)
    np.testing.assert_allclose(np.asarray(act), ref, rtol=1e-14)
    np.testing.assert_allclose(ref[:2], x[:2] + 0.5 - 0.3, rtol=1e-12)
    assert np.isnan(ref[2])
    d = jax.jacfwd(lambda s: activation_times(field(s), jnp.asarray(t), 0.5)[:2])(0.3)
    np.testing.assert_allclose(np.asarray(d), [-1.0, -1.0], rtol=1e-12)


def test_velocity_of_an_oblique_planar_wave_in_2d():
    c, theta = 0.8, math.radians(30)
    grid = grid2d(41, 31, 40.0, 30.0)
    X, Y = grid.mesh()
    t = np.linspace(0, 80, 321)
    s = X * math.cos(theta) + Y * math.sin(theta)
    u = _front(c * t[:, None, None] - s[None], w=1.0)
    act = activation_times(u, t, threshold=0.5)
    assert act.shape == grid.shape
    assert conduction_velocity(act, grid) == pytest.approx(c, rel=2e-3)


def test_activation_of_xarray_field_and_trace():
    grid = grid1d(11, 10.0)
    t = np.linspace(0, 12, 121)
    u = _front(t[:, None] - 1.0 - grid.coords[0][None, :], w=0.5)
    from scalebridge.solution import Solution

    model = sb.pde.reaction_diffusion(_cell(), grid, diffusion={"u": 1.0})
    states = np.concatenate([u, np.zeros_like(u)], axis=1)  # fields u, then w
    sol = Solution(t, states, np.zeros((t.size, 0)), model.state_names, ())
    ds = to_fields(sol, model)
    act = activation_times(ds["u"], threshold=0.5)
    np.testing.assert_allclose(act, grid.coords[0] + 1.0, atol=1e-3)
    assert isinstance(activation_times(u[:, 3], t, 0.5), float)
    with pytest.raises(InputError, match="times"):
        activation_times(u, None, 0.5)
    with pytest.raises(InputError, match="does not match"):
        activation_times(u, t[:-1], 0.5)


def _ap(t, t_up, plateau=200.0, ramp=100.0, rest=-85.0, peak=35.0):
    """A trapezoidal action potential: 1 ms upstroke, plateau, linear repolarisation."""
    s = np.clip((t - t_up) / 1.0, 0, 1) * np.clip(1 - (t - t_up - 1 - plateau) / ramp, 0, 1)
    return rest + (peak - rest) * s


def test_apd90_of_a_synthetic_action_potential():
    t = np.linspace(0, 1000, 20001)
    trace = _ap(t, 10.0) + _ap(t, 510.0, plateau=150.0) + 85.0
    expected90 = [1 + 200 + 0.9 * 100 - 0.1, 1 + 150 + 0.9 * 100 - 0.1]
    np.testing.assert_allclose(apd(trace, t), expected90, atol=1e-3)
    expected50 = [1 + 200 + 0.5 * 100 - 0.5, 1 + 150 + 0.5 * 100 - 0.5]
    np.testing.assert_allclose(apd(trace, t, level=0.5), expected50, atol=1e-3)
    # per node: shifted beats, one node with a single (complete) beat, one flat node
    field = np.stack([trace, np.roll(trace, 400), _ap(t, 700.0), np.full_like(t, -85.0)], axis=1)
    out = apd(field, t)
    assert out.shape == (4, 2)
    np.testing.assert_allclose(out[:2], [expected90, expected90], atol=1e-3)
    assert out[2, 0] == pytest.approx(expected90[0], abs=1e-3) and np.isnan(out[2, 1])
    assert np.all(np.isnan(out[3]))
    # a beat cut off at the end is left out
    assert apd(trace[t < 600], t[t < 600]).shape == (1,)
    with pytest.raises(InputError, match="level"):
        apd(trace, t, level=90)


def test_apd_of_undershooting_trace_uses_initial_rest():
    t = np.linspace(0, 500, 5001)
    trace = _ap(t, 10.0) - 5.0 * np.exp(-((t - 400.0) / 20.0) ** 2)  # hyperpolarised dip
    assert apd(trace, t)[0] == pytest.approx(1 + 200 + 90 - 0.1, abs=1e-3)
    assert apd(trace, t, rest="min")[0] > apd(trace, t)[0]


def test_front_position_and_speed_of_a_synthetic_front():
    grid = grid1d(301, 150.0)
    x = grid.coords[0]
    c = 2.5
    t = np.linspace(0, 40, 81)
    u = _front(10.0 + c * t[:, None] - x[None, :])  # level 0.5 at x = 10 + c t
    pos = front_position(u, grid, 0.5)
    np.testing.assert_allclose(pos, 10.0 + c * t, atol=1e-2)
    assert front_position(u[5], grid, 0.5) == pytest.approx(10 + c * t[5], abs=1e-2)
    assert front_speed(u, grid, t) == pytest.approx(c, rel=1e-3)
    assert front_speed(u, grid, t, window=(0, 10)) == pytest.approx(c, rel=1e-3)
    assert np.isnan(front_position(np.zeros(301), grid, 0.5))
    # 2D: one position per row
    g2 = grid2d(31, 5, 30.0, 4.0)
    X, _ = g2.mesh()
    u2 = _front(12.0 - X, w=1.0)
    np.testing.assert_allclose(front_position(u2, g2, 0.5), 12.0, atol=1e-2)


def test_fisher_kpp_front_speed_is_close_to_two_sqrt_rD():
    r, D = 1.0, 1.0
    model = fisher_kpp(length=200.0, n=401, D=D, r=r, K=1.0)
    t = np.linspace(0, 60, 121)
    sol = sb.simulate(model, t, rtol=1e-6, atol=1e-9)
    ds = to_fields(sol, model)
    speed = front_speed(ds["u"], model.rhs.grid, level=0.5, window=(30, 60))
    # pulled fronts approach 2 sqrt(rD) from below, as 2 - 3 / (2 t) (Bramson)
    assert speed == pytest.approx(2 * math.sqrt(r * D), rel=0.04)
    assert speed < 2 * math.sqrt(r * D)


# ----- fields ------------------------------------------------------------------------------
def _cell():
    return sb.Model(name="cell", states=["u", "w"], parameters={"a": 1.0},
                    rhs=lambda t, y, p, u: -p[0] * y, initial=[1.0, 2.0], stiff=False)


def test_to_fields_shapes_and_coordinates_2d():
    grid = grid2d(4, 3, 3.0, 1.0)
    model = sb.pde.reaction_diffusion(_cell(), grid, diffusion={"u": 0.1})
    u = np.arange(12.0).reshape(4, 3)
    y0 = initial_from_fields(model, {"u": u})
    np.testing.assert_allclose(y0[12:], 2.0)  # w keeps the cell's initial value
    from scalebridge.solution import Solution

    t = np.array([0.0, 1.0])
    sol = Solution(t, np.stack([y0, 2 * y0]), np.zeros((2, 0)), model.state_names, ())
    ds = to_fields(sol, model)
    assert set(ds.data_vars) == {"u", "w"}
    assert ds["u"].dims == ("time", "x", "y") and ds["u"].shape == (2, 4, 3)
    np.testing.assert_allclose(ds["x"], [0, 1, 2, 3])
    np.testing.assert_allclose(ds["y"], [0, 0.5, 1.0])
    np.testing.assert_allclose(ds["u"][1], 2 * u)
    # the node named u[i,j] is field u at (i, j)
    assert model.state_names[model.state_index("u[2,1]")] == "u[2,1]"
    assert y0[model.state_index("u[2,1]")] == u[2, 1]
    with pytest.raises(InputError, match="no such state"):
        initial_from_fields(model, {"q": 1.0})
    with pytest.raises(InputError, match="shape"):
        initial_from_fields(model, {"u": np.zeros(5)})
    with pytest.raises(InputError, match="not a tissue model"):
        to_fields(sol, _cell())


def test_fields_result_round_trips_and_exports(tmp_path):
    model = load_spatial("fisher_kpp", "30")
    t = np.linspace(0, 2, 3)
    sol = sb.simulate(model, t, rtol=1e-5, atol=1e-8)
    fields = Fields.from_solution(sol, model, meta={"note": "x"})
    ds = fields.to_xarray()
    back = sb.load(sb.save(fields, tmp_path / "f.npz"))
    assert isinstance(back, Fields) and back.meta == {"note": "x"}
    assert back.to_xarray()["u"].dims == ("time", "x")
    np.testing.assert_array_equal(back.to_xarray()["u"], ds["u"])
    np.testing.assert_array_equal(back.to_xarray()["x"], ds["x"])
    assert back.to_xarray().attrs["model"] == "fisher_kpp"
    again = Fields.from_dict(fields.to_dict())
    np.testing.assert_array_equal(again.to_xarray()["u"], ds["u"])
    table = fields.to_pandas()
    assert table.shape == (3 * 30, 1) and list(table.index.names) == ["time", "x"]
    assert table["u"].to_numpy().reshape(3, 30).tolist() == ds["u"].values.tolist()
    ax = fields.plot()
    assert len(ax.lines) == 1  # 1D: the last snapshot as a line
    import xarray as xr

    nc = xr.open_dataset(fields.to_netcdf(tmp_path / "f.nc"), engine="h5netcdf")
    np.testing.assert_array_equal(nc["u"], ds["u"])
    nc.close()
    sb.save(sb.load_zoo("sir"), tmp_path / "m.npz")
    with pytest.raises(SerializationError, match="expected a 'fields'"):
        sb.load(tmp_path / "m.npz", "fields")


# ----- figures -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ds1d():
    grid = grid1d(40, 20.0)
    t = np.linspace(0, 10, 11)
    u = _front(t[:, None] - grid.coords[0][None, :] / 2)
    import xarray as xr

    return xr.Dataset({"u": (("time", "x"), u)}, coords={"time": t, "x": grid.coords[0]})


@pytest.fixture(scope="module")
def ds2d():
    import xarray as xr

    grid = grid2d(12, 10, 11.0, 9.0)
    X, Y = grid.mesh()
    t = np.linspace(0, 4, 5)
    u = np.sin(X[None] / 3 + t[:, None, None]) * np.cos(Y[None] / 3)
    return xr.Dataset({"V": (("time", "x", "y"), u)},
                      coords={"time": t, "x": grid.coords[0], "y": grid.coords[1]})


def test_plots_are_written(tmp_path, ds1d, ds2d):
    plot_snapshot(ds1d, "u", path=tmp_path / "s1.png")
    plot_snapshot(ds2d, "V", time=2.0, path=tmp_path / "s2.png")
    plot_kymograph(ds1d, path=tmp_path / "k.png")
    plot_traces(ds1d, "u", nodes=[(0,), (20,)], path=tmp_path / "t1.png")
    plot_traces(ds2d, "V", path=tmp_path / "t2.png")
    plot_fields(ds1d, "u", tmp_path / "f1.png", title="1D")
    plot_fields(ds2d, "V", tmp_path / "f2.png")
    files = ["s1", "s2", "k", "t1", "t2", "f1", "f2"]
    for name in files:
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == PNG
    with pytest.raises(InputError, match="1D"):
        plot_kymograph(ds2d)
    with pytest.raises(InputError, match="no field named"):
        plot_snapshot(ds1d, "zz")


def test_animation_gif(tmp_path, ds1d, ds2d):
    from PIL import Image

    for ds, name in ((ds1d, "a1.gif"), (ds2d, "a2.gif")):
        path = animate_field(ds, None, tmp_path / name, fps=5, max_frames=4)
        assert path.read_bytes()[:6] in (b"GIF89a", b"GIF87a")
        with Image.open(path) as im:
            assert im.n_frames == 4
    with pytest.raises(InputError, match=".gif"):
        animate_field(ds1d, "u", tmp_path / "a.avi")
    import matplotlib.animation as animation

    if not animation.writers.is_available("ffmpeg"):
        with pytest.raises(InputError, match="ffmpeg"):
            animate_field(ds1d, "u", tmp_path / "a.mp4")


# ----- the spatial zoo ---------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(SPATIAL))
def test_spatial_zoo_models_build(name):
    spec = "12x12" if name == "gray_scott" else "20"
    setup = spatial_setup(name, spec)
    rhs = setup.model.rhs
    assert setup.variable in rhs.cell.state_names
    assert len(setup.model.state_names) == len(rhs.cell.state_names) * rhs.grid.size
    assert np.all(np.isfinite(np.asarray(setup.model.initial_state(
        setup.model.param_array(None)))))
    if name != "gray_scott":
        two = load_spatial(name, "10x6")
        assert two.rhs.grid.shape == (10, 6)
        assert two.rhs.grid.spacing[0] == pytest.approx(two.rhs.grid.spacing[1])


def test_spatial_zoo_errors():
    with pytest.raises(InputError, match="no spatial model named 'nope'"):
        load_spatial("nope", "20")
    with pytest.raises(InputError, match="square 2D grid"):
        load_spatial("gray_scott", "50")
    for bad in ("abc", "10x", "10x10x10", "", "-5", "2", "1.5"):
        with pytest.raises(InputError, match="grid"):
            parse_grid(bad)
    assert parse_grid(" 100X80 ") == (100, 80)


def test_stimulus_amplitude_excites_beeler_reuter_tissue():
    model = load_spatial("beeler_reuter", "100")
    t = np.linspace(0, 60, 121)
    setup = spatial_setup("beeler_reuter", "100")
    sol = sb.simulate(model, t, solver=setup.solver, rtol=setup.rtol, atol=setup.atol)
    V = to_fields(sol, model)["V"]
    act = activation_times(V, threshold=-40.0)
    assert np.all(np.isfinite(act))  # the whole 20 mm cable fires
    cv = conduction_velocity(act, model.rhs.grid)
    assert 0.3 < cv < 0.7  # mm/ms, ventricular myocardium
