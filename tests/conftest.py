"""Shared fixtures, and the Hypothesis profiles: deterministic by default (CI and the README's test
command), longer randomized fuzzing on demand.

- ``ci`` (default): derandomized, no example database, 30 examples per property:
  the same examples on every run, so a pass is a pass.
- ``fuzz``: random seeds, 1,000 examples per property, for a local hunt:
  ``HYPOTHESIS_PROFILE=fuzz .venv/bin/python -m pytest tests/test_properties.py`` (or
  ``--hypothesis-profile=fuzz``; tests/test_io_fuzz.py fuzzes graph files and feeds).
"""
import os

import pytest
from hypothesis import HealthCheck, settings

from graphcomp.op import OPS

_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.register_profile("ci", max_examples=30, derandomize=True, database=None, **_COMMON)
settings.register_profile("fuzz", max_examples=1000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def forget_user_ops():
    """Ops a test defines (gc.elementwise, a registered class) are removed afterwards: the registry is
    process-wide, and the op table's coverage guard counts graphcomp's own ops."""
    before = dict(OPS)
    yield
    OPS.clear()
    OPS.update(before)
