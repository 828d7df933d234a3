"""PINNs: scalebridge against DeepXDE (Lu, Meng, Mao & Karniadakis 2021, "DeepXDE: a deep
learning library for solving differential equations", SIAM Rev. 63:208-228) on three of
DeepXDE's own examples (1.15, ``examples/``), at the examples' settings, on one CPU core.

- ``ode_system`` (pinn_forward/ode_system.py): y1' = y2, y2' = -y1 on [0, 10], y(0) = (0, 1),
  exact (sin t, cos t); network 1-50-50-50-2, 35 + 2 points.
- ``lorenz_inverse`` (pinn_inverse/Lorenz_inverse.py): C1, C2, C3 (true 10, 15, 8/3, guesses
  1) of dx/dt = C1 (y - x), dy/dt = x (C2 - z) - y, dz/dt = x y - C3 z on [0, 3] from
  (-8, 7, 27), all states observed; network 1-40-40-40-3, 400 + 2 points plus the observation
  times. The example's Lorenz.npz is not available: the data are ``solve_ivp`` (rtol = atol
  = 1e-10) at ``N_OBS`` equispaced times (the example does not state its times).
- ``burgers`` (pinn_forward/Burgers.py): u_t + u u_x = (0.01/pi) u_xx on [-1, 1] x [0, 0.99],
  u(x, 0) = -sin(pi x), u(+-1, t) = 0; network 2-20-20-20-1, 2540 + 80 + 160 points;
  reference ``scalebridge.pinn.burgers_cole_hopf`` on the example's 256 x 100 grid.

Equal on both sides: layers, tanh, the example's Glorot initialiser (scalebridge's weights
are redrawn to match), DeepXDE's own training points (``train_pinn(points=...)``), the same
loss terms and weights, Adam lr 1e-3 (constant), float64 (DeepXDE's JAX parameters are cast),
L-BFGS with 100 pairs and a strong-Wolfe line search (torch.optim.LBFGS / optax.lbfgs),
stopped at the same iteration. DeepXDE's JAX backend has no L-BFGS. Differences left:
scalebridge scales inputs to [-1, 1] and trains positive parameters on a log scale; the
iteration counts are cut below the examples' (``ITERATIONS``; ``--example-iterations``).

Measured: compile (JIT) time of the first Adam and first L-BFGS step, time per iteration of
each, the error every ``every`` iterations (relative L2 on the test grid; Lorenz: largest
relative error of C1-C3), and the training time, compile included, until the error first
falls below a threshold that every tool reaches. Times are CPU seconds of the process (all
single-threaded: stable on a shared machine), checkpoint evaluations subtracted. DeepXDE is
probed by a callback, scalebridge by ``train_pinn``'s callback (``callback_every``, given
the network and parameters). Each DeepXDE backend runs in a subprocess.

    taskset -c 0 python benchmarks/pinn.py            # full run (about 15 CPU minutes)
    taskset -c 0 python benchmarks/pinn.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
RESULTS = HERE / "results"
THREAD_ENV = {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false", "OMP_NUM_THREADS": "1",
              "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
TOOLS = ("deepxde-jax", "deepxde-pytorch", "scalebridge")
N_OBS = 40           # Lorenz observation times (Lorenz.npz is not available)
LORENZ_TRUE = (10.0, 15.0, 8.0 / 3.0)
NU = 0.01 / np.pi
LBFGS_MEMORY = 100   # DeepXDE's maxcor
N_POINTS = {"ode_system": 37, "lorenz_inverse": 402 + N_OBS, "burgers": 2780}  # DeepXDE's

# Iterations (Adam, L-BFGS, checkpoint spacing): the examples', the ones run by default
# (cut to fit about 15 minutes on one core) and --quick.
ITERATIONS = {
    "ode_system": {"example": (20000, 0, 1000), "full": (10000, 2000, 1000),
                   "quick": (300, 100, 100)},
    "lorenz_inverse": {"example": (20000, 15000, 1000), "full": (20000, 2000, 1000),
                       "quick": (300, 100, 100)},
    "burgers": {"example": (15000, 15000, 1000), "full": (4000, 1000, 500),
                "quick": (60, 30, 30)},
}
SPEC = {
    "ode_system": {"layers": [1, 50, 50, 50, 2], "init": "Glorot uniform", "lr": 1e-3,
                   "example": "examples/pinn_forward/ode_system.py"},
    "lorenz_inverse": {"layers": [1, 40, 40, 40, 3], "init": "Glorot uniform", "lr": 1e-3,
                       "example": "examples/pinn_inverse/Lorenz_inverse.py"},
    "burgers": {"layers": [2, 20, 20, 20, 1], "init": "Glorot normal", "lr": 1e-3,
                "example": "examples/pinn_forward/Burgers.py"},
}


# ----- shared data and references -----------------------------------------------------------
def lorenz_data():
    """Observation times ``(n, 1)`` and states ``(n, 3)`` of the Lorenz system."""
    from scipy.integrate import solve_ivp

    c1, c2, c3 = LORENZ_TRUE

    def rhs(t, y):
        return [c1 * (y[1] - y[0]), y[0] * (c2 - y[2]) - y[1], y[0] * y[1] - c3 * y[2]]
    t = np.linspace(0.0, 3.0, N_OBS)
    sol = solve_ivp(rhs, (0.0, 3.0), [-8.0, 7.0, 27.0], t_eval=t, rtol=1e-10, atol=1e-10,
                    method="DOP853")
    return t[:, None], sol.y.T


def test_set(case):
    """Test inputs ``(n, in)`` and exact outputs ``(n, out)`` (None for Lorenz)."""
    if case == "ode_system":
        t = np.linspace(0.0, 10.0, 1001)[:, None]
        return t, np.hstack([np.sin(t), np.cos(t)])
    if case == "burgers":
        from scalebridge.pinn import burgers_cole_hopf
        x, t = np.linspace(-1.0, 1.0, 256), np.linspace(0.0, 0.99, 100)
        xx, tt = np.meshgrid(x, t)
        z = np.stack([xx.ravel(), tt.ravel()], axis=1)
        return z, burgers_cole_hopf(z[:, 0], z[:, 1], NU)[:, None]
    return None, None


def rel_l2(pred, exact):
    return float(np.linalg.norm(pred - exact) / np.linalg.norm(exact))


def c_errors(c):
    return [abs(v - w) / w for v, w in zip(c, LORENZ_TRUE, strict=True)]


class Clock:
    """Training time net of the checkpoint evaluations, with checkpoints and stamps. Times
    are CPU seconds of this process (every library runs single-threaded, so on an idle core
    they equal wall seconds; on a shared machine they are the stable measure); the wall
    time is kept beside them."""

    def __init__(self):
        self.t0, self.w0 = time.process_time(), time.perf_counter()
        self.excluded = self.excluded_wall = 0.0
        self.stamps: dict[str, float] = {}
        self.curve: list[dict] = []

    def now(self):
        return time.process_time() - self.t0 - self.excluded

    def wall(self):
        return time.perf_counter() - self.w0 - self.excluded_wall

    def checkpoint(self, step, phase, evaluate):
        t, w = self.now(), self.wall()
        if self.curve and self.curve[-1]["step"] == step:
            return
        e0, w0 = time.process_time(), time.perf_counter()
        ev = evaluate()
        self.excluded += time.process_time() - e0
        self.excluded_wall += time.perf_counter() - w0
        self.curve.append({"step": int(step), "phase": phase, "time_s": t, "wall_s": w, **ev})


def timings(clock, n_adam, n_lbfgs, lbfgs_done):
    """Compile and per-iteration times from the stamps (see the module docstring)."""
    s = clock.stamps
    out = {}
    if n_adam > 1:
        per = (s["adam_end"] - s["adam_first"]) / (n_adam - 1)
        out["adam_ms_per_it"] = per * 1e3
        out["compile_adam_s"] = max(s["adam_first"] - s["adam_start"] - per, 0.0)
    if lbfgs_done and "lbfgs_end" in s:
        if "lbfgs_first" in s and lbfgs_done > 1:  # step-by-step stamps (scalebridge)
            per = (s["lbfgs_end"] - s["lbfgs_first"]) / (lbfgs_done - 1)
            out["compile_lbfgs_s"] = max(s["lbfgs_first"] - s["lbfgs_start"] - per, 0.0)
        else:  # whole chunks (torch): no compile, the warm-up is in the per-iteration time
            per = (s["lbfgs_end"] - s["lbfgs_start"]) / lbfgs_done
            out["compile_lbfgs_s"] = 0.0
        out["lbfgs_ms_per_it"] = per * 1e3
    out["adam_train_s"] = s.get("adam_end")  # compile included
    out["train_s"] = s.get("lbfgs_end", s.get("adam_end"))
    out["train_wall_s"] = clock.curve[-1]["wall_s"] if clock.curve else None
    return out


# ----- DeepXDE (in a subprocess per backend) ------------------------------------------------
def deepxde_worker(backend, case, mode, out_path):
    import deepxde as dde

    dde.config.set_default_float("float64")
    dde.config.set_random_seed(0)
    if backend == "jax":
        import jax
        import jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)
    else:
        import torch
        torch.set_num_threads(1)
        torch.set_num_interop_threads(1)
    n_adam, n_lbfgs, every = ITERATIONS[case][mode]
    if backend == "jax":
        n_lbfgs = 0
    spec = SPEC[case]
    jaxb = backend == "jax"

    def jac(y, x, i, j=None):
        d = dde.grad.jacobian(y, x, i=i, j=j)
        return d[0] if jaxb else d

    def val(y):
        return y[0] if jaxb else y
    variables = []
    x_test, y_test = test_set(case)
    if case == "ode_system":
        def pde(x, y):
            yv = val(y)
            return [jac(y, x, 0) - yv[:, 1:], jac(y, x, 1) + yv[:, 0:1]]
        geom = dde.geometry.TimeDomain(0, 10)
        ics = [dde.icbc.IC(geom, lambda x: 0, lambda _, on: on, component=0),
               dde.icbc.IC(geom, lambda x: 1, lambda _, on: on, component=1)]
        data = dde.data.PDE(geom, pde, ics, 35, 2, num_test=100)
    elif case == "lorenz_inverse":
        variables = [dde.Variable(1.0) for _ in range(3)]

        def lorenz(x, y, unknowns=variables):
            c1, c2, c3 = unknowns
            yv = val(y)
            y1, y2, y3 = yv[:, 0:1], yv[:, 1:2], yv[:, 2:3]
            return [jac(y, x, 0) - c1 * (y2 - y1), jac(y, x, 1) - y1 * (c2 - y3) + y2,
                    jac(y, x, 2) - y1 * y2 + c3 * y3]
        pde = lorenz if jaxb else (lambda x, y: lorenz(x, y))
        geom = dde.geometry.TimeDomain(0, 3)
        t_obs, y_obs = lorenz_data()
        bcs = [dde.icbc.IC(geom, constant(v), lambda _, on: on, component=i)
               for i, v in enumerate((-8.0, 7.0, 27.0))]
        bcs += [dde.icbc.PointSetBC(t_obs, y_obs[:, i:i + 1], component=i) for i in range(3)]
        data = dde.data.PDE(geom, pde, bcs, num_domain=400, num_boundary=2, anchors=t_obs)
    else:
        def pde(x, y):
            dy_xx = dde.grad.hessian(y, x, i=0, j=0)
            dy_xx = dy_xx[0] if jaxb else dy_xx
            return jac(y, x, 0, 1) + val(y) * jac(y, x, 0, 0) - NU * dy_xx
        geomtime = dde.geometry.GeometryXTime(dde.geometry.Interval(-1, 1),
                                              dde.geometry.TimeDomain(0, 0.99))
        bc = dde.icbc.DirichletBC(geomtime, lambda x: 0, lambda _, on: on)
        ic = dde.icbc.IC(geomtime, lambda x: -np.sin(np.pi * x[:, 0:1]), lambda _, on: on)
        data = dde.data.TimePDE(geomtime, pde, [bc, ic], num_domain=2540, num_boundary=80,
                                num_initial=160)
    net = dde.nn.FNN(spec["layers"], "tanh", spec["init"])
    model = dde.Model(data, net)

    def cvals():
        return [float(v.value) if jaxb else float(v.item()) for v in variables]

    def evaluate():
        if case == "lorenz_inverse":
            c = cvals()
            return {"error": max(c_errors(c)), "C": c}
        return {"error": rel_l2(model.predict(x_test), y_test)}

    clock = Clock()
    phase = {"name": "adam", "start": 0}

    class Probe(dde.callbacks.Callback):
        def on_batch_end(self):
            step = self.model.train_state.step
            if step == phase["start"] + 1 and phase["name"] == "adam":
                clock.stamps["adam_first"] = clock.now()
            if step % every == 0:
                clock.checkpoint(step, phase["name"], evaluate)
            if phase["name"] == "lbfgs":  # stop at n_lbfgs exactly, checkpoints on multiples
                done = step - phase["start"]  # (DeepXDE runs whole chunks past maxiter)
                left = n_lbfgs - done
                chunk = min(left, every - done % every)
                if chunk == 1 and left > 1:  # DeepXDE takes a one-iteration chunk as converged
                    chunk = min(left, every + 1)
                group = self.model.opt.param_groups[0]
                group["max_iter"], group["max_eval"] = chunk, chunk * 5 // 4 + 1
                self.model.stop_training = left <= 0

        def on_train_end(self):
            clock.stamps[phase["name"] + "_end"] = clock.now()
            clock.checkpoint(self.model.train_state.step, phase["name"], evaluate)

    ext = {"external_trainable_variables": variables} if variables else {}
    clock.stamps["adam_start"] = clock.now()
    model.compile("adam", lr=spec["lr"], **ext)
    if jaxb:  # flax creates float32 parameters: cast them (and the Adam state) to float64
        model.params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), model.params)
        model.net.params = model.params[0]
        model.opt_state = model.opt.init(model.params)
    probe = Probe()
    model.train(iterations=n_adam, callbacks=[probe], display_every=every, verbose=0)
    lbfgs_done = 0
    if n_lbfgs:
        opts = dde.optimizers.config.LBFGS_options
        dde.optimizers.set_LBFGS_options(maxcor=LBFGS_MEMORY, maxiter=n_lbfgs)
        opts["iter_per_step"] = min(every, n_lbfgs)  # DeepXDE fixes it at import time
        opts["fun_per_step"] = opts["maxfun"] * opts["iter_per_step"] // opts["maxiter"]
        phase.update(name="lbfgs", start=model.train_state.step)
        clock.stamps["lbfgs_start"] = clock.now()
        model.compile("L-BFGS", **ext)
        model.train(callbacks=[probe], display_every=every, verbose=0)
        lbfgs_done = model.train_state.step - phase["start"]
    out = {"tool": f"deepxde-{backend}", "adam_iterations": n_adam,
           "lbfgs_iterations": lbfgs_done, **timings(clock, n_adam, n_lbfgs, lbfgs_done),
           "curve": clock.curve, "final": clock.curve[-1],
           "after_adam": next(c for c in clock.curve if c["step"] == n_adam),
           "losses": [float(v) for v in np.ravel(model.train_state.loss_train)],
           "train_points": np.asarray(data.train_x_all).tolist()}
    Path(out_path).write_text(json.dumps(out))


def constant(v):
    """``x -> v`` (DeepXDE counts the arguments of a condition's function)."""
    return lambda x: v


def run_worker(backend, case, mode, log):
    """One DeepXDE backend in a subprocess; its result dict (or ``{"failed": reason}``)."""
    env = {**os.environ, "DDE_BACKEND": backend}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", backend, "--case",
               case, "--mode", mode, "--json-out", str(out)]
        t = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t
        log.write(f"===== deepxde-{backend} {case}\n{proc.stdout}\n{proc.stderr}\n")
        if proc.returncode != 0 or not out.is_file():
            lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
            errs = [ln for ln in lines if "Error" in ln or "error" in ln] or lines or ["?"]
            return {"tool": f"deepxde-{backend}", "failed": errs[-1][:400]}
        res = json.loads(out.read_text())
    res["process_wall_s"] = wall
    return res


# ----- scalebridge (in this process) --------------------------------------------------------
def glorot(network, kind, key):
    """Redraw the weight matrices of a scalebridge Network with DeepXDE's initialiser."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    keys = jax.random.split(key, len(network.layers))
    new = []
    for layer, k in zip(network.layers, keys, strict=True):
        n_out, n_in = layer.v.shape
        if kind == "Glorot uniform":
            a = math.sqrt(6.0 / (n_in + n_out))
            w = jax.random.uniform(k, (n_out, n_in), jnp.float64, -a, a)
        else:
            w = jax.random.normal(k, (n_out, n_in), jnp.float64) * math.sqrt(2.0 / (n_in + n_out))
        new.append(w)
    return eqx.tree_at(lambda n: [lay.v for lay in n.layers], network, new)


def run_scalebridge(case, mode, points):
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    import scalebridge as sb
    from scalebridge import pinn

    n_adam, n_lbfgs, every = ITERATIONS[case][mode]
    spec = SPEC[case]
    layers = spec["layers"]
    x_test, y_test = test_set(case)
    if case == "ode_system":
        model = sb.Model(name="ode_system", states=["y1", "y2"], parameters={},
                         rhs=lambda t, y, p, u: jnp.stack([y[1], -y[0]]), initial=[0.0, 1.0],
                         stiff=False)
        problem = pinn.ODEProblem(model, (0.0, 10.0))
        lower, upper, weights = [0.0], [10.0], {"initial": 2.0}
    elif case == "lorenz_inverse":
        def rhs(t, y, p, u):
            return jnp.stack([p[0] * (y[1] - y[0]), y[0] * (p[1] - y[2]) - y[1],
                              y[0] * y[1] - p[2] * y[2]])
        model = sb.Model(name="lorenz", states=["x", "y", "z"],
                         parameters=dict(zip(("C1", "C2", "C3"), LORENZ_TRUE, strict=True)),
                         rhs=rhs, initial=[-8.0, 7.0, 27.0], stiff=False)
        t_obs, y_obs = lorenz_data()
        problem = pinn.ODEProblem(
            model, (0.0, 3.0),
            data={s: (t_obs[:, 0], y_obs[:, i]) for i, s in enumerate(("x", "y", "z"))},
            estimate={"C1": 1.0, "C2": 1.0, "C3": 1.0})
        lower, upper, weights = [0.0], [3.0], {"initial": 3.0}
    else:
        def residual(d, params):
            return d["u_t"] + d["u"] * d["u_x"] - NU * d["u_xx"]
        problem = pinn.PDEProblem(residual, x_span=(-1.0, 1.0), t_span=(0.0, 0.99),
                                  initial=lambda x: -jnp.sin(jnp.pi * x),
                                  boundary=[pinn.Dirichlet(0.0)], n_initial=160, n_boundary=40)
        lower, upper, weights = [-1.0, 0.0], [1.0, 0.99], None
    key = jax.random.PRNGKey(0)
    network = pinn.Network(layers[0], layers[-1], lower=lower, upper=upper, width=layers[1],
                           depth=len(layers) - 2, activation="tanh", key=key)
    network = glorot(network, spec["init"], jax.random.fold_in(key, 1))
    predict = eqx.filter_jit(lambda net, z: jax.vmap(net)(z))

    def evaluate(net, c):
        if case == "lorenz_inverse":
            return {"error": max(c_errors(c)), "C": c}
        return {"error": rel_l2(np.asarray(predict(net, jnp.asarray(x_test))), y_test)}

    clock = Clock()

    def callback(step, losses, net, params):
        phase = "adam" if step <= n_adam else "lbfgs"
        if step == 1:
            clock.stamps["adam_first"] = clock.now()
        if step == n_adam:
            clock.stamps["adam_end"] = clock.stamps["lbfgs_start"] = clock.now()
        if step == n_adam + 1:
            clock.stamps["lbfgs_first"] = clock.now()
        if step == n_adam + n_lbfgs and n_lbfgs:
            clock.stamps["lbfgs_end"] = clock.now()
        if step % every == 0:
            clock.checkpoint(step, phase, lambda: evaluate(net, list(params.values())))

    kw = {} if points is None else {"points": np.asarray(points)}  # DeepXDE's points
    clock.stamps["adam_start"] = clock.now()
    res = pinn.train_pinn(problem, network=network, n_collocation=N_POINTS[case],
                          adam=pinn.Adam(n_adam, spec["lr"], decay_rate=1.0),
                          lbfgs=pinn.LBFGS(n_lbfgs, memory=LBFGS_MEMORY),
                          weights=weights, seed=0, callback=callback, callback_every=every,
                          **kw)
    if not clock.curve or clock.curve[-1]["step"] != res.steps:
        clock.checkpoint(res.steps, "lbfgs" if n_lbfgs else "adam",
                         lambda: evaluate(res.network, list(res.parameters.values())))
    after = [c for c in clock.curve if c["step"] == n_adam]
    return {"tool": "scalebridge", "adam_iterations": n_adam, "lbfgs_iterations": n_lbfgs,
            **timings(clock, n_adam, n_lbfgs, n_lbfgs), "curve": clock.curve,
            "final": clock.curve[-1], "after_adam": after[0] if after else None,
            "losses": list(res.losses.values()), "loss_names": list(res.losses),
            "own_compile_s": res.compile_seconds, "own_run_s": res.run_seconds,
            "n_points": len(res.points)}


# ----- summary ------------------------------------------------------------------------------
def nice_ceil(x):
    """The smallest of 1, 2, 5 x 10^k that is >= x."""
    k = math.floor(math.log10(x))
    for m in (1, 2, 5, 10):
        if m * 10**k >= x * (1 - 1e-12):
            return m * 10**k
    return 10 ** (k + 1)


def time_to(curve, thr, phases):
    for c in curve:
        if c["phase"] in phases and c["error"] <= thr:
            return c["time_s"], c["step"]
    return None, None


def summarise(tools):
    ok = {k: v for k, v in tools.items() if "failed" not in v}
    summary = {}
    adam_min = [min(c["error"] for c in v["curve"] if c["phase"] == "adam") for v in ok.values()]
    if adam_min:
        summary["threshold_adam"] = nice_ceil(max(adam_min))
    with_lbfgs = [v for v in ok.values() if v.get("lbfgs_iterations")]
    if with_lbfgs:
        summary["threshold_final"] = nice_ceil(max(min(c["error"] for c in v["curve"])
                                                   for v in with_lbfgs))
    for v in ok.values():
        for name, phases in (("adam", ("adam",)), ("final", ("adam", "lbfgs"))):
            thr = summary.get(f"threshold_{name}")
            if thr is None or (name == "final" and not v.get("lbfgs_iterations")):
                continue
            v[f"time_to_{name}_s"], v[f"step_to_{name}"] = time_to(v["curve"], thr, phases)
    sb_ = ok.get("scalebridge")
    ratios = {}
    for ref in ("deepxde-jax", "deepxde-pytorch"):
        if sb_ is None or ref not in ok:
            continue
        r = {}
        keys = ["compile_adam_s", "compile_lbfgs_s", "adam_ms_per_it", "lbfgs_ms_per_it",
                "time_to_adam_s", "time_to_final_s", "adam_train_s"]
        if ok[ref].get("lbfgs_iterations"):  # the whole training only where both ran L-BFGS
            keys.append("train_s")
        for k in keys:
            a, b = sb_.get(k), ok[ref].get(k)
            if a is not None and b:
                r[k] = a / b
        if sb_.get("after_adam") and ok[ref].get("after_adam"):
            r["error_after_adam"] = sb_["after_adam"]["error"] / ok[ref]["after_adam"]["error"]
        if ok[ref].get("lbfgs_iterations"):
            r["error_final"] = sb_["final"]["error"] / ok[ref]["final"]["error"]
        ratios[ref] = r
    summary["ratios_scalebridge_over"] = ratios
    return summary


def _f(v, fmt):
    return "" if v is None else format(v, fmt)


def markdown(cases, meta):
    lines = [
        "# PINNs: scalebridge vs DeepXDE",
        "",
        f"DeepXDE {meta['deepxde']} (JAX backend: flax {meta['flax']}; PyTorch {meta['torch']}), "
        f"scalebridge {meta['scalebridge']}, JAX {meta['jax']}, optax {meta['optax']}; "
        f"{meta['machine']}, one core (XLA and Torch single-threaded), float64. Settings of "
        "DeepXDE's examples (network, Glorot initialiser, points, Adam lr 1e-3), the same "
        "training points and loss weights on both sides, iteration counts cut to fit about "
        "15 minutes (see `benchmarks/pinn.py`). DeepXDE's JAX backend has no L-BFGS. "
        "Error: relative L2 on the test grid (Lorenz: largest relative error of C1-C3). "
        "Times are CPU seconds of the single-threaded process (the machine is shared; "
        "`train wall` is the elapsed time). Compile: JIT time of the first Adam / L-BFGS step "
        "less one steady step (PyTorch has no JIT: there it is the first step's warm-up, "
        "mostly DeepXDE's `compile`, i.e. creating the Torch optimiser). Time to error: "
        "training time "
        "(compile included, checkpoint evaluations excluded) until the error at a checkpoint "
        "first falls below the threshold (`adam`: during Adam; `final`: including L-BFGS). "
        "DeepXDE's PyTorch L-BFGS is stopped at the same iteration count as scalebridge's "
        "(it may end one short: DeepXDE treats a one-iteration chunk as converged).",
    ]
    for case, res in cases.items():
        s = res["summary"]
        lines += ["", f"## {case}", "",
                  f"Adam {res['iterations'][0]} + L-BFGS {res['iterations'][1]} iterations "
                  f"(example: {res['example_iterations'][0]} + "
                  f"{res['example_iterations'][1] or 'none'}), checkpoints every "
                  f"{res['iterations'][2]}; thresholds: adam "
                  f"{_f(s.get('threshold_adam'), '.0e')}, final "
                  f"{_f(s.get('threshold_final'), '.0e')}.", "",
                  "| tool | compile Adam (s) | compile L-BFGS (s) | Adam (ms/it) | "
                  "L-BFGS (ms/it) | L-BFGS its | error after Adam | final error | "
                  "time to adam thr. (s) | time to final thr. (s) | train (s) | "
                  "train wall (s) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for tool in TOOLS:
            v = res["tools"].get(tool)
            if v is None:
                continue
            if "failed" in v:
                lines.append(f"| {tool} | failed: {v['failed']} |" + " |" * 10)
                continue
            aa = v.get("after_adam") or {}
            lines.append(
                f"| {tool} | {_f(v.get('compile_adam_s'), '.2f')} | "
                f"{_f(v.get('compile_lbfgs_s'), '.2f')} | {_f(v.get('adam_ms_per_it'), '.3f')} "
                f"| {_f(v.get('lbfgs_ms_per_it'), '.3f')} | {v.get('lbfgs_iterations', 0)} | "
                f"{_f(aa.get('error'), '.2e')} | {_f(v['final']['error'], '.2e')} | "
                f"{_f(v.get('time_to_adam_s'), '.1f')} | {_f(v.get('time_to_final_s'), '.1f')} "
                f"| {_f(v.get('train_s'), '.1f')} | {_f(v.get('train_wall_s'), '.1f')} |")
        if case == "lorenz_inverse":
            lines += ["", "| tool | C1 | C2 | C3 | rel. errors |", "|---|---|---|---|---|",
                      f"| true | {LORENZ_TRUE[0]:.4f} | {LORENZ_TRUE[1]:.4f} | "
                      f"{LORENZ_TRUE[2]:.4f} | |"]
            for tool in TOOLS:
                v = res["tools"].get(tool)
                if v is None or "failed" in v:
                    continue
                c = v["final"]["C"]
                lines.append(f"| {tool} | {c[0]:.4f} | {c[1]:.4f} | {c[2]:.4f} | "
                             + ", ".join(f"{e:.1e}" for e in c_errors(c)) + " |")
        ran = [t for t in TOOLS if t in res["tools"] and "failed" not in res["tools"][t]]
        by_step = {}
        for t in ran:
            for c in res["tools"][t]["curve"]:
                by_step.setdefault(c["step"], {})[t] = c
        lines += ["", "Error at the checkpoints (training CPU seconds so far):", "",
                  "| iteration | " + " | ".join(ran) + " |", "|---" * (len(ran) + 1) + "|"]
        for step in sorted(by_step):
            row = by_step[step]
            lines.append(f"| {step} | " + " | ".join(
                f"{row[t]['error']:.2e} ({row[t]['time_s']:.1f})" if t in row else ""
                for t in ran) + " |")
        rat = s["ratios_scalebridge_over"]
        if rat:
            keys = ("compile_adam_s", "compile_lbfgs_s", "adam_ms_per_it", "lbfgs_ms_per_it",
                    "error_after_adam", "error_final", "time_to_adam_s", "time_to_final_s",
                    "adam_train_s", "train_s")
            lines += ["", "Ratios scalebridge / DeepXDE (below 1: scalebridge smaller):", "",
                      "| vs | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
            for ref, r in rat.items():
                lines.append(f"| {ref} | " + " | ".join(_f(r.get(k), '.3g') for k in keys)
                             + " |")
    lines += ["", f"Total wall time {meta.get('wall_s', 0):.0f} s."]
    return "\n".join(lines) + "\n"


def _version(name):
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _clean(x):
    """Replace NaN/inf (not allowed in strict JSON) by None."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny iteration counts (smoke run)")
    ap.add_argument("--example-iterations", action="store_true",
                    help="the examples' own iteration counts (about an hour)")
    ap.add_argument("--cases", nargs="+", default=list(SPEC), choices=list(SPEC))
    ap.add_argument("--out", type=Path, default=None,
                    help=f"results folder (default {RESULTS}; --quick writes only with --out)")
    ap.add_argument("--markdown-only", action="store_true",
                    help="recompute the summary and pinn.md from the results folder's pinn.json")
    ap.add_argument("--worker", choices=("jax", "pytorch"), help=argparse.SUPPRESS)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--mode", help=argparse.SUPPRESS)
    ap.add_argument("--json-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    os.environ.update(THREAD_ENV)  # before JAX starts, here and in the workers
    if args.worker:
        return deepxde_worker(args.worker, args.case, args.mode, args.json_out)
    if args.markdown_only:
        from scalebridge.runtime.files import write_atomic, write_json
        folder = args.out or RESULTS
        data = json.loads((folder / "pinn.json").read_text())
        for res in data["cases"].values():
            res["summary"] = summarise(res["tools"])
        write_json(folder / "pinn.json", data)
        text = markdown(data["cases"], data["meta"])
        write_atomic(folder / "pinn.md", lambda fh: fh.write(text.encode()))
        return data["cases"]
    mode = "quick" if args.quick else "example" if args.example_iterations else "full"
    t_start = time.perf_counter()
    import jax
    import optax  # noqa: F401

    import scalebridge  # noqa: F401  (float64 for JAX)
    from scalebridge.runtime.files import write_atomic, write_json
    meta = {"deepxde": _version("deepxde"), "flax": _version("flax"),
            "torch": _version("torch"), "scalebridge": _version("scalebridge"),
            "jax": jax.__version__, "optax": _version("optax"), "mode": mode,
            "machine": f"{platform.machine()} {platform.processor()}".strip(),
            "affinity": sorted(os.sched_getaffinity(0)), "n_obs_lorenz": N_OBS,
            "lbfgs_memory": LBFGS_MEMORY}
    out = args.out or (None if args.quick else RESULTS)
    cases = {}
    log_path = Path(tempfile.gettempdir()) / f"pinn_benchmark_workers_{os.getpid()}.log"
    with open(log_path, "w") as log:
        for case in args.cases:
            tools = {}
            for backend in ("jax", "pytorch"):
                t = time.perf_counter()
                tools[f"deepxde-{backend}"] = run_worker(backend, case, mode, log)
                print(f"{case}: deepxde-{backend} {time.perf_counter() - t:.0f} s", flush=True)
            pts = next((v["train_points"] for v in tools.values() if "train_points" in v), None)
            for v in tools.values():
                v.pop("train_points", None)
            t = time.perf_counter()
            try:
                tools["scalebridge"] = run_scalebridge(case, mode, pts)
            except Exception as exc:  # report it with the others' results
                tools["scalebridge"] = {"tool": "scalebridge",
                                        "failed": f"{type(exc).__name__}: {exc}"[:600]}
            print(f"{case}: scalebridge {time.perf_counter() - t:.0f} s", flush=True)
            cases[case] = {"iterations": ITERATIONS[case][mode],
                           "example_iterations": ITERATIONS[case]["example"],
                           "example": SPEC[case]["example"], "spec": SPEC[case],
                           "tools": tools, "summary": summarise(tools)}
            meta["wall_s"] = time.perf_counter() - t_start
            if out is not None:  # rewritten after each case
                write_json(out / "pinn.json", _clean({"meta": meta, "cases": cases}))
                text = markdown(cases, meta)
                write_atomic(out / "pinn.md", lambda fh, text=text: fh.write(text.encode()))
    print(markdown(cases, meta))
    print(f"worker logs: {log_path}")
    return cases


if __name__ == "__main__":
    main()
