"""`trial gc` finds what no live trial owns: containers, volumes and local repos of unknown
trials, and reports failed trials; `--dry-run` only lists."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import docker
import pytest

from orchestrator import lifecycle
from orchestrator.config import load_settings
from orchestrator.forge.local import LocalForge
from orchestrator.sandbox import instance_id
from orchestrator.sandbox.base import SandboxSpec
from orchestrator.sandbox.docker import DockerBackend
from orchestrator.services import Services
from orchestrator.store import Store, Trial, utcnow

pytestmark = pytest.mark.docker


def gc(*args: str) -> list[dict[str, Any]]:
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "gc", *args, "--json"],
                          capture_output=True, text=True, env=os.environ.copy(), timeout=120)
    assert done.returncode == 0, done.stderr
    found: list[dict[str, Any]] = json.loads(done.stdout)["data"]
    return found


def test_gc_lists_then_removes_leftovers_of_unknown_trials(trial_home: Path) -> None:
    settings = load_settings()
    store = Store.open(settings.home)
    ghost = f"tghost{os.getpid() % 10000:04d}"
    store.create_trial(Trial("tfailed01", "api-keys", "octocat", "none", "failed", utcnow(), utcnow(), 1, 1,
                             failed_step="launch:start_sandbox"))
    backend = DockerBackend(settings.sandbox, instance=instance_id(settings))
    # The same engine also holds a container of another data dir: gc must leave it alone.
    foreign = DockerBackend(settings.sandbox, instance="another-store").create(SandboxSpec(
        trial_id=f"{ghost}x", image="trial-base:bookworm", command=("sleep", "60"), user="root", workdir="/"))
    ref = backend.create(SandboxSpec(trial_id=ghost, image="trial-base:bookworm", command=("sleep", "60"),
                                     user="root", workdir="/", volumes={"home": "/root"}))
    LocalForge(settings, store).create_repo(ghost, f"trial-x-{ghost}", "left behind")
    engine = docker.from_env()
    try:
        listed = gc("--dry-run")
        mine = {(item["kind"], item["trial_id"]) for item in listed if item["trial_id"] in (ghost, "tfailed01")}
        assert mine == {("container", ghost), ("volume", ghost), ("repo", ghost), ("trial", "tfailed01")}
        assert not any(item["removed"] for item in listed)
        assert engine.containers.list(all=True, filters={"label": f"trial.id={ghost}"})

        removed = gc()
        assert {(i["kind"], i["removed"]) for i in removed if i["trial_id"] == ghost} == {
            ("container", True), ("volume", True), ("repo", True)}
        assert engine.containers.list(all=True, filters={"label": f"trial.id={ghost}"}) == []
        assert engine.volumes.list(filters={"label": f"trial.id={ghost}"}) == []
        assert not list(settings.forge_dir.glob(f"*{ghost}*.git"))
        assert engine.containers.list(all=True, filters={"label": f"trial.id={ghost}x"})
        # A failed trial is the operator's call: reported, never removed by gc.
        assert store.get_trial("tfailed01").state == "failed"
    finally:
        backend.remove(ref, volumes=True)
        backend.remove(foreign, volumes=True)
        store.close()


class ThisTestsOnly(DockerBackend):
    """The real engine, but gc sees only this test's trials: its remove=True pass must not take the
    containers of another run on the same engine (tests use instance-less backends)."""

    trials = ("tlive0001", "tclosed01", "tdown0001", "tgone0001")

    def list_managed(self, kinds: Any = None) -> list[Any]:
        return [r for r in super().list_managed(kinds) if r.trial_id in self.trials]


def test_gc_and_teardown_remove_the_github_proxy_files_of_gone_trials(trial_home: Path) -> None:
    settings = load_settings()
    services = Services.from_settings(settings, sandbox=ThisTestsOnly(settings.sandbox, instance=instance_id(settings)))
    store = services.store
    for tid, state in (("tlive0001", "active"), ("tclosed01", "closed"), ("tdown0001", "active")):
        store.create_trial(Trial(tid, "api-keys", "octocat", "none", state, utcnow(), utcnow(), 1, 1))
    state_dir = settings.forge_dir / "github"
    state_dir.mkdir(parents=True)
    for tid in ("tlive0001", "tclosed01", "tdown0001", "tgone0001"):
        (state_dir / f"{tid}.pushes.tsv").write_text("ts\tref\n")
        (state_dir / f"{tid}.pack-bytes").write_text("1024\n")
    (state_dir / "notes.txt").write_text("an operator's own file\n")
    try:
        # Teardown takes the trial's push log and quota with it.
        result = lifecycle.teardown(services, "tdown0001")
        assert {"file tdown0001.pushes.tsv", "file tdown0001.pack-bytes"} <= set(result.removed)
        assert not list(state_dir.glob("tdown0001.*"))

        listed = [i for i in lifecycle.gc(services, remove=False) if i.kind == "forge-file"]
        gone = "no such trial in the store"
        assert {(i.name, i.reason) for i in listed} == {
            ("tclosed01.pushes.tsv", "trial is closed"), ("tclosed01.pack-bytes", "trial is closed"),
            ("tgone0001.pushes.tsv", gone), ("tgone0001.pack-bytes", gone)}
        assert len(list(state_dir.iterdir())) == 7
        removed = [i for i in lifecycle.gc(services) if i.kind == "forge-file"]
        assert len(removed) == 4 and all(i.removed for i in removed)
        assert sorted(p.name for p in state_dir.iterdir()) == ["notes.txt", "tlive0001.pack-bytes",
                                                                 "tlive0001.pushes.tsv"]
    finally:
        services.close()


NOP_STEP = ["/bin/sh", "-c", "#(nop) ", 'CMD ["sleep" "infinity"]']
"""What the engine's classic builder leaves when a build is interrupted between creating a
metadata step's container and committing it (seen on this engine: `Created`, no labels)."""


@pytest.fixture
def foreign_image(tmp_path: Path) -> Any:
    """An image of another tool: built from scratch, so it shares no layer with ours."""
    engine = docker.from_env()
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "hello").write_text("not ours\n")
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM scratch\nCOPY hello /hello\n")
    image, _ = engine.images.build(path=str(tmp_path / "ctx"), tag=f"other-tool-{uuid.uuid4().hex[:8]}:1", rm=True)
    yield image
    engine.images.remove(image.id, force=True)
    engine.close()


def test_gc_finds_containers_left_by_interrupted_builds_and_no_other_tools(
        trial_home: Path, foreign_image: Any) -> None:
    settings = load_settings()
    backend = DockerBackend(settings.sandbox, instance=instance_id(settings))
    services = Services.from_settings(settings, sandbox=backend)
    engine = docker.from_env()
    base = engine.images.get("trial-base:bookworm")
    made = {
        "ours-nop": engine.containers.create(base.id, NOP_STEP),
        "ours-labelled": engine.containers.create(base.id, ["/bin/sh", "-c", "#(nop) ", "LABEL trial.managed-by=trial"],
                                                  labels={"trial.managed-by": "trial"}),
        "foreign-nop": engine.containers.create(foreign_image.id, NOP_STEP),
        "foreign-plain": engine.containers.create(base.id, ["sleep", "1"]),
        "foreign-labelled": engine.containers.create(base.id, NOP_STEP, labels={"com.example.tool": "x"}),
    }
    ids = {name: str(c.id) for name, c in made.items()}
    try:
        # A running build creates and commits step containers within a second: young ones are not leftovers.
        assert not {r.id for r in backend.list_managed() if r.kind == "build-container"} & set(ids.values())
        backend.build_leftover_age_s = 0
        found = {r.id: r for r in backend.list_managed() if r.kind == "build-container"}
        assert {name for name, cid in ids.items() if cid in found} == {"ours-nop", "ours-labelled"}
        # The labelled step is listed once, as a build leftover, not also as a container of no trial.
        assert not [r for r in backend.list_managed() if r.kind == "container" and r.id == ids["ours-labelled"]]
        listed = {i.name: i for i in lifecycle.gc(services, remove=False) if i.kind == "build-container"}
        assert {made["ours-nop"].name, made["ours-labelled"].name} <= set(listed)
        assert listed[made["ours-nop"].name].reason == "left by an interrupted image build"
        assert not {made[n].name for n in ("foreign-nop", "foreign-plain", "foreign-labelled")} & set(listed)

        for name in ("ours-nop", "ours-labelled"):  # removed by id, so a parallel run's leftovers stay theirs
            backend.remove_resource(found[ids[name]])
        remaining = {str(c.id) for c in engine.containers.list(all=True, filters={"status": "created"})}
        assert ids["ours-nop"] not in remaining and ids["ours-labelled"] not in remaining
        assert {ids["foreign-nop"], ids["foreign-plain"], ids["foreign-labelled"]} <= remaining
    finally:
        for container in made.values():
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
        services.close()
        engine.close()
