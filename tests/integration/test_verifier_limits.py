"""Verifier containers on the real engine: what a hidden-test run may write, and two grades of one
trial at once.

The candidate's code runs in the verifier (the tests import it): it must not fill the host's disk
(every file capped by `ulimit -f`, /tmp a capped tmpfs, the root layer's world-writable folders
closed), and a reviewer's re-grade must not remove the container of a cohort grade running now.
"""

from __future__ import annotations

import io
import tarfile
import threading
import time
import uuid

import pytest

from graders import verifier as verifier_module
from graders.verifier import Verifier
from orchestrator.config import load_settings
from orchestrator.sandbox import instance_id
from orchestrator.sandbox.base import SandboxSpec
from orchestrator.sandbox.docker import DockerBackend
from tests.conftest import BASE_IMAGE

pytestmark = pytest.mark.docker


@pytest.fixture
def backend(docker_engine: None, tmp_path: object) -> DockerBackend:
    settings = load_settings(env={"TRIAL_HOME": str(tmp_path), "TRIAL_SANDBOX_BASE_IMAGE": BASE_IMAGE})
    return DockerBackend(settings.sandbox, instance=instance_id(settings))


def _trial() -> str:
    return f"t-limits-{uuid.uuid4().hex[:6]}"


def _containers(backend: DockerBackend, trial_id: str) -> list[str]:
    return sorted(r.name for r in backend.list_managed() if r.kind == "container" and r.trial_id == trial_id)


def _empty_workspace() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        info = tarfile.TarInfo("workspace")
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        archive.addfile(info)
    return out.getvalue()


def test_two_verifiers_of_one_trial_at_once_both_complete(backend: DockerBackend) -> None:
    trial_id = _trial()
    results: dict[str, tuple[int, str]] = {}
    errors: list[BaseException] = []
    both_up = threading.Barrier(2, timeout=120)

    def grade(label: str) -> None:
        try:
            with Verifier(backend, BASE_IMAGE, trial_id) as verifier:
                both_up.wait()  # each one's container exists while the other starts and runs
                verifier.load(_empty_workspace())
                outcome = verifier.run(f"echo {label} > {{junit}}; sleep 1", 60)
                results[label] = (outcome.exit_code, outcome.xml or "")
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=grade, args=(label,)) for label in ("cohort", "regrade")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == []
    assert results == {"cohort": (0, "cohort\n"), "regrade": (0, "regrade\n")}
    assert _containers(backend, trial_id) == []


def test_a_stale_verifier_of_the_trial_is_removed_and_a_fresh_one_is_not(backend: DockerBackend) -> None:
    trial_id = _trial()
    old = f"{int(time.time()) - verifier_module.STALE_AFTER_S - 60:x}-aaaaaa"
    young = f"{int(time.time()):x}-bbbbbb"
    for suffix in (old, young):
        backend.create(SandboxSpec(trial_id=trial_id, image=BASE_IMAGE, role="verifier", command=("true",),
                                   network_disabled=True, extra_hosts={}, name_suffix=suffix))
    try:
        with Verifier(backend, BASE_IMAGE, trial_id) as verifier:
            assert verifier.ref is not None
            names = _containers(backend, trial_id)
            assert f"trial-{trial_id}-verifier-{old}" not in names
            assert f"trial-{trial_id}-verifier-{young}" in names and verifier.ref.name in names
    finally:
        for resource in backend.list_managed():
            if resource.kind == "container" and resource.trial_id == trial_id:
                backend.remove_resource(resource)
