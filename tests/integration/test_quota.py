"""Volume quotas on a real engine: Docker cannot cap a volume here, so the engine measures it and
a volume over the limit is alerted once, however the candidate hides what fills it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from structlog.testing import capture_logs

from orchestrator.config import SandboxSettings, load_settings
from orchestrator.sandbox import instance_id, quota
from orchestrator.sandbox.base import HOME, LABEL_TRIAL, WORKSPACE, SandboxSpec
from orchestrator.sandbox.docker import DockerBackend
from orchestrator.store import Store, Trial, utcnow
from tests.integration.sandbox_image import build_probe_image

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_probe_image(tmp_path_factory.mktemp("home"), tmp_path_factory.mktemp("templates"))[0]


@pytest.fixture
def store(trial_home: Path) -> Iterator[Store]:
    opened = Store.open(load_settings().home)
    yield opened
    opened.close()


@pytest.fixture
def trial_id(store: Store) -> Iterator[str]:
    tid = f"q{uuid.uuid4().hex[:10]}"
    store.create_trial(Trial(tid, "api-keys", "octocat", "none", "active", utcnow(), utcnow(), 1, 1))
    yield tid
    engine = docker.from_env()
    for container in engine.containers.list(all=True, filters={"label": f"{LABEL_TRIAL}={tid}"}):
        container.remove(force=True)
    for volume in engine.volumes.list(filters={"label": f"{LABEL_TRIAL}={tid}"}):
        volume.remove(force=True)
    engine.close()


def test_a_volume_over_its_quota_is_alerted_once_even_when_hidden_from_the_candidate(
        store: Store, trial_id: str, image: str) -> None:
    backend = DockerBackend(SandboxSettings(), instance=instance_id(load_settings()))
    ref = backend.start(backend.create(SandboxSpec(
        trial_id=trial_id, image=image, command=("sleep", "infinity"), memory="256m",
        volumes={"workspace": WORKSPACE, "home": HOME})))
    # 3 MiB in a directory nobody (the candidate included) can read any more, as an attacker
    # hiding a file from an in-sandbox `du` would leave it.
    fill = backend.exec(ref, ["sh", "-c", f"mkdir {WORKSPACE}/hide && head -c 3145728 /dev/urandom > "
                                          f"{WORKSPACE}/hide/blob && chmod 000 {WORKSPACE}/hide"])
    assert fill.ok, fill.stderr
    assert not backend.exec(ref, ["du", "-s", f"{WORKSPACE}/hide"]).ok  # in-sandbox du cannot see it

    sizes = {u.name: u.size_bytes for u in backend.volume_usage() if u.trial_id == trial_id}
    assert sizes[f"trial-{trial_id}-workspace"] >= 3 << 20
    with capture_logs() as logs:
        first = quota.check(store, backend, limit_mb=2)
    mine = [o for o in first if o.trial_id == trial_id]
    assert [(o.volume, o.new) for o in mine] == [(f"trial-{trial_id}-workspace", True)]
    assert [e["volume"] for e in logs if e["event"] == "sandbox.quota_exceeded"] == [f"trial-{trial_id}-workspace"]
    again = [o for o in quota.check(store, backend, limit_mb=2) if o.trial_id == trial_id]
    assert [(o.volume, o.new) for o in again] == [(f"trial-{trial_id}-workspace", False)]
    events: list[dict[str, Any]] = [e for e in store.events(trial_id) if e["kind"] == quota.EVENT]
    assert len(events) == 1
    assert events[0]["data"]["used_mb"] >= 3.0 and events[0]["data"]["limit_mb"] == 2.0
    # Under the limit, or no limit at all: nothing to say.
    assert [o for o in quota.check(store, backend, limit_mb=64) if o.trial_id == trial_id] == []
    assert quota.check(store, backend, limit_mb=0) == []
