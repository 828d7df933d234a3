"""Shared fixtures: small models with exact solutions, and the peer-tool import."""

import importlib

import jax.numpy as jnp
import pytest

import scalebridge as sb


@pytest.fixture
def decay():
    """dy/dt = -k y, y(0) = y0: exact solution y0 exp(-k t)."""
    return sb.Model(
        name="decay",
        states=["y"],
        parameters={"k": 0.5, "y0": 2.0},
        rhs=lambda t, y, p, u: -p[0] * y,
        initial=lambda p: jnp.stack([p[1]]),
        observables={"twice": lambda t, y, p: 2 * y[0]},
        stiff=False,
    )


@pytest.fixture
def oscillator():
    """Harmonic oscillator x'' = -w^2 x: x = cos(w t), v = -w sin(w t)."""
    return sb.Model(
        name="oscillator",
        states=["x", "v"],
        parameters={"w": 2.0},
        rhs=lambda t, y, p, u: jnp.stack([y[1], -p[0] ** 2 * y[0]]),
        initial=[1.0, 0.0],
        stiff=False,
    )


def peer(module: str, package: str | None = None):
    """Import a peer tool that a cross-check needs. Peer tools are dev dependencies: a
    missing one fails the test with the command that installs it, it never skips it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - only on an incomplete install
        pytest.fail(f"the cross-check needs {package or module}, a dev dependency: "
                    f"pip install -e '.[dev]' ({exc})", pytrace=False)


def assert_one_line_error(main, argv, capsys, match):
    """Run the CLI; it must fail with exactly one ``error: ...`` line containing ``match``."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert match in lines[0]


def pytest_configure(config):
    """One JAX persistent compilation cache per test run, shared by the xdist workers: the
    same program (the Boehm likelihood, the zoo's simulations ...) is built by many modules
    and by both workers, and is compiled once. Keyed by the run, so each run starts empty,
    as on a fresh machine."""
    import tempfile
    import uuid
    from pathlib import Path

    import jax

    run = getattr(config, "workerinput", {}).get("testrunuid") or uuid.uuid4().hex
    path = Path(tempfile.gettempdir()) / f"scalebridge-tests-jax-cache-{run}"
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_code():
    """Drop JAX's compiled executables after each test module: the whole suite in one
    process otherwise accumulates thousands of them, and their memory mappings reach the
    kernel's per-process limit (vm.max_map_count), which aborts the interpreter."""
    yield
    import jax

    jax.clear_caches()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A skipped test fails: every cross-check runs, or says why it cannot (``peer``).
    Expected failures (``xfail``, which pytest also reports as skipped) stay as they are."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"tests are never skipped here (tests/conftest.py): {report.longrepr}"
