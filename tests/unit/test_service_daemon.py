"""The detached host service: `stop` finds the service that serves, whatever else was started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.config import load_settings
from orchestrator.service import daemon


@pytest.mark.unit
def test_a_second_service_that_cannot_bind_leaves_the_first_one_stoppable(
        trial_home: Path, service_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAL_SERVICE_BIND", "127.0.0.1")
    settings = load_settings()
    first = daemon.ensure_running(settings)
    pid = int(daemon.pid_path(settings).read_text())
    try:
        # What a health check that timed out on a loaded host does: start another one. It
        # cannot bind the port and exits; it must not take the first one's pid file with it.
        second = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "serve"], capture_output=True,
                                text=True, timeout=60, env={**os.environ, "TRIAL_HOME": str(settings.home)})
        assert second.returncode != 0
        assert daemon.pid_path(settings).read_text() == str(pid)
        assert daemon.stop(settings) is True
        assert daemon.health(settings) is None
    finally:
        if daemon.health(settings) is not None:
            os.kill(pid, 9)
    assert first["home"] == str(settings.home)
