"""Test configuration: hypothesis profiles, and no silently skipped parity tests in CI.

- ``HYPOTHESIS_PROFILE`` picks a profile; under ``CI`` the default is ``ci``: derandomized
  (the same examples every run), no deadline (no timing in tests), a fixed example count.
- Under ``CI`` (or with ``HANDPROP_REQUIRE_TORCH=1``) any skipped test fails the run: the torch
  parity suite must really run there, never be skipped because torch is missing.
- A test must leave process-wide settings as it found them (``_no_leaked_settings``): torch's
  thread count decides the order of its float32 sums, so one test (or an example it runs)
  that changes it changes the rounding every later parity test compares against.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=150,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=60)
settings.register_profile("thorough", deadline=None, max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

_REQUIRE_NO_SKIPS = bool(os.environ.get("CI") or os.environ.get("HANDPROP_REQUIRE_TORCH"))


def pytest_configure(config):
    """Under pytest-xdist (the README's command runs a worker per core): each worker's NumPy
    BLAS and torch on one thread, so that the workers do not fight over the cores with thread
    pools of a thread per core each. (Set once, before any test: the per-test check below
    sees no change. Results do not depend on it: every comparison with torch has per-dtype
    tolerances, and the pictures are compared by what they show.)"""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - the test environment has it (scikit-learn's)
        pass
    else:
        config._handprop_blas_limit = threadpool_limits(limits=1, user_api="blas")
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.set_num_threads(1)


def pytest_sessionfinish(session, exitstatus):
    if not _REQUIRE_NO_SKIPS:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        reporter.write_line(
            f"FAILED: {len(skipped)} test(s) were skipped, and CI (or HANDPROP_REQUIRE_TORCH) "
            "requires every test, the torch parity suite included, to run",
            red=True,
        )
        session.exitstatus = 1


def _settings() -> dict:
    """The process-wide settings a test could change and forget: NumPy's error handling, and
    torch's thread counts once torch is imported."""
    found = {"np.geterr()": np.geterr()}
    torch = sys.modules.get("torch")
    if torch is not None:
        found["torch.get_num_threads()"] = torch.get_num_threads()
        found["torch.get_num_interop_threads()"] = torch.get_num_interop_threads()
    return found


@pytest.fixture(autouse=True)
def _no_leaked_settings():
    before = _settings()
    yield
    after = _settings()
    changed = {k: (v, after[k]) for k, v in before.items() if after[k] != v}
    assert not changed, f"the test changed process-wide settings and left them so: {changed}"


def _have_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def pytest_collection_modifyitems(config, items):
    """Tests marked ``torch`` are skipped, one by one, where torch is not installed; every
    other test in the same file still runs."""
    if _have_torch():
        return
    skip = pytest.mark.skip(reason="needs torch, which is not installed")
    for item in items:
        if "torch" in item.keywords:
            item.add_marker(skip)


# Helper modules and the golden-data generator hold no tests or doctests; they import torch,
# so collecting them for doctests would fail where torch is absent.
collect_ignore = ["golden", "parity.py", "strategies.py", "closeness.py"]
