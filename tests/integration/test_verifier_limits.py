"""Verifier containers on the real engine: what a hidden-test run may write, and two grades of one
trial at once.

The candidate's code runs in the verifier (the tests import it): it must not fill the host's disk
(every file capped by `ulimit -f`, /tmp a capped tmpfs, the root layer's world-writable folders
closed), and a reviewer's re-grade must not remove the container of a cohort grade running now.
"""

from __future__ import annotations

import io
import shlex
import tarfile
import threading
import time
import uuid

import pytest

from graders import verifier as verifier_module
from graders.verifier import Verifier, run_command
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


# A run that writes past the cap, in every place the test uid could reach on the root layer and in /tmp.
FILL = ("for target in /tmp/fill /var/tmp/fill /run/lock/fill; do "
        "dd if=/dev/zero of=$target bs=1M count=8 2>/dev/null; echo \"$target $(stat -c %s $target 2>/dev/null "
        "|| echo absent)\"; done; echo done")


def test_a_run_that_writes_past_the_cap_is_cut_and_the_run_still_completes(
        backend: DockerBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verifier_module, "MAX_FILE_BYTES", 1 << 20)
    trial_id = _trial()
    run = run_command(backend, BASE_IMAGE, trial_id, _empty_workspace(), FILL, 60)
    sizes = dict(line.split(" ", 1) for line in run.output_tail.splitlines() if line.startswith("/"))
    assert "done" in run.output_tail, run.output_tail
    assert sizes["/tmp/fill"] != "absent", run.output_tail
    assert int(sizes["/tmp/fill"]) <= 1 << 20  # cut at the cap: the write failed there
    assert sizes["/var/tmp/fill"] == "absent"  # the root layer's world-writable folder is closed
    assert sizes["/run/lock/fill"] in ("absent", str(1 << 20)) or int(sizes["/run/lock/fill"]) <= 1 << 20
    assert _containers(backend, trial_id) == []


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


def test_the_service_program_cannot_write_to_the_root_layer_or_past_the_cap(
        backend: DockerBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    """The program's container as run_service makes it: /var/tmp closed before start, files capped."""
    monkeypatch.setattr(verifier_module, "MAX_FILE_BYTES", 1 << 20)
    trial_id = _trial()
    # As the program's own process (an exec would not inherit the limit): write, report, stay up.
    program = ("(touch /var/tmp/x 2>/dev/null && echo open || echo closed; dd if=/dev/zero of=/tmp/big bs=1M "
               "count=4 2>/dev/null; stat -c %s /tmp/big) > /tmp/report.tmp; mv /tmp/report.tmp /tmp/report; "
               "sleep 60")
    capped = f"ulimit -f {verifier_module.MAX_FILE_BYTES // 512}; exec sh -c {shlex.quote(program)}"
    ref = backend.create(SandboxSpec(trial_id=trial_id, image=BASE_IMAGE, role="service", command=("sh", "-c", capped),
                                     network_disabled=True, extra_hosts={}, user=verifier_module.AS_TESTS,
                                     workdir="/", read_only_root=False, name_suffix=f"{int(time.time()):x}-cccccc"))
    try:
        backend.copy_in(ref, "/", verifier_module._closed_var_tmp())
        ref = backend.start(ref)
        result = backend.exec(ref, ["sh", "-c", "for i in $(seq 100); do [ -f /tmp/report ] && break; sleep 0.1; "
                                    "done; cat /tmp/report"], user=verifier_module.AS_TESTS)
        assert result.stdout.split() == ["closed", str(1 << 20)], result.stdout + result.stderr
    finally:
        backend.remove(ref)
