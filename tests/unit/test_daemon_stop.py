"""`daemon.stop` on a service this very process started (a launch in-process: tests, scripts)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.config import load_settings
from orchestrator.service import daemon

pytestmark = pytest.mark.unit


def test_stop_returns_as_soon_as_its_own_child_service_has_exited(trial_home: Path) -> None:
    settings = load_settings()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    daemon.pid_path(settings).parent.mkdir(parents=True, exist_ok=True)
    daemon.pid_path(settings).write_text(f"{child.pid}\n")
    started = time.monotonic()
    # The exited child stays a zombie until reaped, and a zombie answers kill(pid, 0): stop used to
    # wait out its whole timeout (10 s by default) before giving up on it.
    assert daemon.stop(settings, timeout_s=8) is True
    assert time.monotonic() - started < 4
    assert child.poll() is not None
    assert not daemon.pid_path(settings).exists()
