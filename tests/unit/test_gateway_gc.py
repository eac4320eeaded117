"""The serving process's collector settings (tune_gc), checked in a fresh interpreter: they are process-wide."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

_PROBE = """
import gc
from orchestrator.gateway.server import GC_YOUNG_THRESHOLD, tune_gc
before = gc.get_threshold()
tune_gc()
after = gc.get_threshold()
assert after == (GC_YOUNG_THRESHOLD, before[1], before[2]), (before, after)
assert gc.get_freeze_count() > 1000, gc.get_freeze_count()  # the loaded modules are out of collection
assert gc.isenabled()  # cycles are still collected, only less often
garbage = []
garbage.append(garbage)  # a cycle made after the freeze is still found
del garbage
assert gc.collect() >= 1
print("ok")
"""


def test_tune_gc_freezes_startup_objects_and_raises_the_young_threshold() -> None:
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
