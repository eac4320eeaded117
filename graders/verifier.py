"""Verifier containers: where hidden tests run, and the checks that make their result worth trusting.

Every run gets a fresh container from the trial image, removed afterwards: the hidden run and
the starter-tests run never share one, so nothing the candidate's code leaves behind in one
run (a file, a process) reaches the next. In each:

- the workspace (the candidate's tree, the hidden tests, the harness files put back) is owned
  by root and read-only to the uid that runs the tests; the hidden tests sit in a root-owned
  folder, so that uid can neither edit nor rename nor replace them. The only places it can
  write are /tmp and the results folder (random name) the runner writes its JUnit XML to;
- the command is checked before any of the candidate's code is in the container, so a
  command that cannot run is infrastructure, and anything after that is the candidate's;
- root checksums the hidden files before the run (a mismatch is infrastructure) and after it
  (a mismatch is tampering); the container is stopped and restarted before the results are
  read, so no process the run started (left behind, or forked to the pids limit) survives to
  rewrite them or to block the checks.

Library templates (tests import the code, so it runs in the test process and can forge that
process's output) get per-run canaries: test files with random names beside the real ones,
some written to pass and some to fail. A must-fail canary reported passed, a must-pass one
missing or failing, or a real test missing while others passed, is tampering. Canaries
catch blanket forgery, not code that forges only the tests it knows by name (the bundled
hidden tests are public): that is what the service shape is for.

Service templates run the candidate's program in one container and the hidden tests in
another, over a private network made for the run: the tests' process and its results never
hold any of the candidate's code.

Results come only from the JUnit XML; printed "PASSED" lines earn nothing. A missing result
after the candidate's code ran is the candidate's (`Run.missing`); a machinery failure raises
`VerifierFailure`, which callers report as infrastructure.
"""

from __future__ import annotations

import hashlib
import io
import math
import posixpath
import random
import secrets
import shlex
import tarfile
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

from graders.junit import JUnitError, TestCase, lookup, node_key, parse_junit
from orchestrator.errors import PrerequisiteError, TrialError
from orchestrator.logging import redact_text
from orchestrator.sandbox.base import SandboxBackend, SandboxRef, SandboxSpec
from orchestrator.sandbox.docker import SandboxPathNotFound

VERIFIER_UID = 1000
AS_TESTS = f"{VERIFIER_UID}:{VERIFIER_UID}"
AS_ROOT = "0:0"
WORKSPACE = "/workspace"
_TAIL = 4000
_MAX_RESULTS_BYTES = 32 << 20
MAX_FILE_BYTES = 256 << 20
"""The largest file a test run may write (`ulimit -f`): the root layer is on the host's disk, and /tmp is
a size-limited tmpfs (SandboxSpec's default), so no file the candidate's code writes can fill the host."""
STALE_AFTER_S = 6 * 3600
"""A verifier or service container older than this is a leftover: no test run lasts so long."""
_TEST_ENV = {"HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1", "CI": "true", "LANG": "C.UTF-8"}  # noqa: S108


@dataclass(frozen=True)
class Canaries:
    """Per-run tests the candidate cannot know: random file and test names, fresh for each run."""

    files: dict[str, bytes]
    """Workspace-relative path → source."""
    must_pass: tuple[str, ...]
    must_fail: tuple[str, ...]

    @property
    def modules(self) -> tuple[str, ...]:
        return tuple(posixpath.basename(path)[:-3] for path in self.files)

    def to_json(self) -> dict[str, int]:
        return {"files": len(self.files), "must_pass": len(self.must_pass), "must_fail": len(self.must_fail)}


def make_canaries(folder: str, count: int = 2) -> Canaries:
    """`count` files in `folder`, each with one test that passes and one that fails, in random order."""
    rng = random.SystemRandom()
    files: dict[str, bytes] = {}
    must_pass: list[str] = []
    must_fail: list[str] = []
    prefix = folder.strip("/") + "/" if folder.strip("/") else ""
    for _ in range(count):
        path = f"{prefix}test_{secrets.token_hex(8)}.py"
        left, right = rng.randrange(10**6), rng.randrange(10**6)
        passing, failing = f"test_{secrets.token_hex(8)}", f"test_{secrets.token_hex(8)}"
        bodies = [f"def {passing}():\n    assert {left} + {right} == {left + right}\n",
                  f"def {failing}():\n    assert {left} * {right} == {left * right + 1}\n"]
        rng.shuffle(bodies)
        files[path] = "\n\n".join(bodies).encode()
        must_pass.append(f"{path}::{passing}")
        must_fail.append(f"{path}::{failing}")
    return Canaries(files, tuple(must_pass), tuple(must_fail))


@dataclass(frozen=True)
class Job:
    """One test run: what goes into the container and what its results must show."""

    label: Literal["hidden", "pass_to_pass", "rewritten_tests"]
    command: str
    timeout_s: int
    workspace: bytes
    """A tar from `workspace_tar`."""
    protected: dict[str, bytes]
    """Workspace-relative path → bytes that must be there, unchanged, before and after the run."""
    sealed: tuple[str, ...] = ()
    """Workspace-relative folders that must hold exactly their protected files (the hidden tests)."""
    expected: tuple[str, ...] = ()
    """Real test ids the results must list."""
    canaries: Canaries | None = None


@dataclass(frozen=True)
class ServiceSpec:
    command: str
    port: int
    ready_timeout_s: int
    program: bytes
    """A tar from `workspace_tar` with the candidate's tree: the program's container only."""


@dataclass
class Run:
    command: str
    exit_code: int
    seconds: float
    output_tail: str
    cases: dict[str, TestCase] | None
    """The real tests' results (canaries left out); None when no result came back."""
    problem: str = ""
    tampering: list[dict[str, Any]] = field(default_factory=list)
    missing: dict[str, Any] | None = None
    """Set when the results are missing or unusable after the candidate's code ran: a failure."""
    canaries: Canaries | None = None

    def to_json(self) -> dict[str, Any]:
        # No durations, no canary names and no raw output unless something went wrong:
        # re-grading the same bundle must give the same report.
        data: dict[str, Any] = {"command": self.command, "exit_code": self.exit_code, "tests": len(self.cases or {})}
        if self.canaries:
            data["canaries"] = self.canaries.to_json()
        if self.problem:
            data.update(problem=self.problem, output_tail=self.output_tail)
        return data


class VerifierFailure(Exception):
    """The verifier could not produce a trustworthy run: infrastructure, never the candidate's fault."""


# ----- the workspace ---------------------------------------------------------------------------------

def _tar_add(archive: tarfile.TarFile, name: str, data: bytes | None, mode: int, made: set[str]) -> None:
    parts = name.split("/")
    for depth in range(1, len(parts) if data is not None else len(parts) + 1):
        folder = "/".join(parts[:depth])
        if folder and folder not in made:
            info = tarfile.TarInfo(folder)
            info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, 0o755, 0, 0
            archive.addfile(info)
            made.add(folder)
    if data is None:
        return
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.uid, info.gid = len(data), mode, 0, 0
    info.mtime = 0
    archive.addfile(info, io.BytesIO(data))


def workspace_tar(tree: bytes | None, replace: dict[str, str | None], hidden: dict[str, bytes], hidden_dir: str,
                  *, extra: dict[str, bytes] | None = None) -> bytes:
    """`workspace/…`, all owned by root: the candidate's tree (None: none), harness files put back,
    the hidden tests under `hidden_dir` and `extra` files (canaries) added."""
    out = io.BytesIO()
    made: set[str] = set()
    hidden_prefix = hidden_dir.strip("/") + "/"
    added = set(extra or {})
    with tarfile.open(fileobj=out, mode="w") as target:
        _tar_add(target, "workspace", None, 0o755, made)
        if tree is not None:
            with tarfile.open(fileobj=io.BytesIO(tree)) as source:
                for member in source.getmembers():
                    path = member.name.removeprefix("./")
                    if (not member.isfile() or path in replace or path.startswith(hidden_prefix) or not path
                            or path in added):
                        continue  # directories are made as needed; links in a candidate tree are not followed
                    handle = source.extractfile(member)
                    data = handle.read() if handle else b""
                    _tar_add(target, f"workspace/{path}", data, 0o755 if member.mode & 0o111 else 0o644, made)
        for path, content in sorted(replace.items()):
            if content is not None:
                _tar_add(target, f"workspace/{path}", content.encode(), 0o644, made)
        for path, data in sorted(hidden.items()):
            _tar_add(target, f"workspace/{hidden_prefix}{path}", data, 0o644, made)
        for path, data in sorted((extra or {}).items()):
            _tar_add(target, f"workspace/{path}", data, 0o644, made)
    return out.getvalue()


def _results_tar(folder: str) -> bytes:
    """The one folder the test uid may write to (besides /tmp), readable by root for the output tail."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as target:
        # The leaf only: parents the archive does not list are left as they are (/var/tmp stays
        # root's, sticky), or made root-owned where missing.
        info = tarfile.TarInfo(folder.strip("/"))
        info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, 0o755, VERIFIER_UID, VERIFIER_UID
        target.addfile(info)
    return out.getvalue()


def _closed_var_tmp() -> bytes:
    """The image's /var/tmp as root's alone: the program writes to its capped tmpfs, not the root layer."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as target:
        info = tarfile.TarInfo("var/tmp")
        info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, 0o1755, 0, 0
        target.addfile(info)
    return out.getvalue()


# ----- one container ----------------------------------------------------------------------------------

@dataclass
class _Outcome:
    exit_code: int
    seconds: float
    tail: str
    xml: str | None
    problem: str = ""


class Verifier:
    """A fresh container for one run under a name of its own, removed on exit (stale leftovers of the
    trial's earlier runs, found by label, are removed first; a concurrent run's never).

    Its main process is root's idle `sleep`; the tests run through exec as the test uid. Root
    has no capabilities, and the container no network unless `network` names the private
    network of a service run.
    """

    def __init__(self, sandbox: SandboxBackend, image: str, trial_id: str, *, network: str | None = None) -> None:
        self.sandbox = sandbox
        self.image = image
        self.trial_id = trial_id
        self.network = network
        self.ref: SandboxRef | None = None
        # On the writable layer (copy_out cannot read a tmpfs), under a random name.
        self.results_dir = f"/var/tmp/trial-{secrets.token_hex(8)}"  # noqa: S108

    def __enter__(self) -> Verifier:
        # Docker copies archives only into a writable root; the container is a throwaway with
        # no capabilities, so the root stays writable here (to root only: see workspace_tar).
        spec = SandboxSpec(trial_id=self.trial_id, image=self.image, role="verifier",
                           network_disabled=self.network is None, internal_network=self.network, extra_hosts={},
                           command=("sleep", "infinity"), volumes={}, user=AS_ROOT, workdir="/",
                           read_only_root=False, name_suffix=_name_suffix())
        try:
            _clear_stale(self.sandbox, self.trial_id, "verifier")
            self.ref = self.sandbox.start(self.sandbox.create(spec))
            self.sandbox.copy_in(self.ref, "/", _results_tar(self.results_dir))
            # The image's world-writable folders on the root layer (/var/tmp): the test uid writes only to
            # /tmp (a capped tmpfs) and its results folder. Root owns them, so no capability is needed.
            # (-xdev still lists the mount points themselves: the tmpfs /tmp stays open.)
            self.sandbox.exec(self.ref, ["sh", "-c", "find / -xdev -type d -perm -0002 ! -fstype tmpfs -exec "
                                         "chmod o-w {} + 2>/dev/null; true"], user=AS_ROOT)
        except TrialError as exc:
            self._remove()
            raise VerifierFailure(f"verifier container failed: {exc.one_line()}") from exc
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._remove()

    def _remove(self) -> None:
        if self.ref is not None:
            with suppress(TrialError):  # `trial gc` finds it by label; the job itself is done
                self.sandbox.remove(self.ref)
            self.ref = None

    def _require(self) -> SandboxRef:
        if self.ref is None:
            raise VerifierFailure("the verifier is not running (use it as a context manager)")
        return self.ref

    def _exec(self, argv: list[str], *, user: str, workdir: str = "/", env: dict[str, str] | None = None,
              timeout_s: int | None = None) -> tuple[int, str]:
        try:
            result = self.sandbox.exec(self._require(), argv, user=user, workdir=workdir, env=env,
                                       timeout_s=timeout_s)
        except TrialError as exc:
            raise VerifierFailure(f"verifier exec failed: {exc.one_line()}") from exc
        return result.exit_code, result.stdout + result.stderr

    def preflight(self, command: str, *, module: bool = True) -> None:
        """Fail as infrastructure when the runner itself is missing, before any candidate code is here.

        `module`: also check that `python -m X`'s X is installed (not for a program's command,
        whose module is the candidate's own code)."""
        line = command.replace("{junit}", "/dev/null")
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise VerifierFailure(f"`{command}` is not a valid shell command: {exc}") from exc
        words = [w for w in words if "=" not in w.split("/")[0]] or [""]
        program = words[0]
        code, out = self._exec(["sh", "-c", 'command -v "$1" >/dev/null', "sh", program], user=AS_TESTS)
        if code != 0:
            raise VerifierFailure(f"`{command}` could not run in the verifier: `{program}`: command not found")
        if module and posixpath.basename(program).startswith("python") and len(words) > 2 and words[1] == "-m":
            probe = "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec(sys.argv[1]) else 3)"
            code, out = self._exec([program, "-c", probe, words[2]], user=AS_TESTS)
            if code != 0:
                raise VerifierFailure(f"`{command}` could not run in the verifier: no module `{words[2]}` "
                                      f"in the image ({out.strip()[-200:]})")

    def load(self, payload: bytes) -> None:
        """Unpack a tar (paths like `workspace/...`) at the container's root."""
        try:
            self.sandbox.copy_in(self._require(), "/", payload)
        except TrialError as exc:
            raise VerifierFailure(f"could not load the workspace: {exc.one_line()}") from exc

    def inventory(self, job: Job) -> list[dict[str, Any]]:
        """What differs, as root sees it, from what the job protects (empty: nothing)."""
        files = sorted(job.protected)
        script = ("cd /workspace || exit 3; find . -maxdepth 0 -printf '%y %U %m %p\\n'; [ $# -gt 0 ] && { "
                  'find "$@" -printf \'%y %U %m %p\\n\' 2>/dev/null; echo --; '
                  'find "$@" -type f -exec sha256sum {} + 2>/dev/null; }; echo "-- end"')
        for _ in range(3):
            # Only root's own process writes this output (nothing of the candidate's survives the
            # restart), so a missing end marker is the exec's plumbing, never the candidate: retry.
            code, out = self._exec(["sh", "-c", script, "sh", *job.sealed, *files], user=AS_ROOT)
            if code != 0 or "\n-- end" in out:
                break
        else:
            raise VerifierFailure("the verifier's file check returned no complete answer (three tries)")
        if code != 0:
            return [{"path": WORKSPACE, "expected": "a folder", "found": f"cannot be read (exit {code})"}]
        out = out[:out.rindex("\n-- end") + 1]
        listing, _, sums = out.partition("\n--\n")
        entries: dict[str, tuple[str, str, int]] = {}
        for row in listing.splitlines():
            parts = row.split(" ", 3)
            if len(parts) == 4:
                entries[parts[3].removeprefix("./") or "."] = (parts[0], parts[1], int(parts[2], 8))
        digests = {}
        for row in sums.splitlines():
            digest, _, path = row.partition("  ")
            digests[path] = digest
        problems: list[dict[str, Any]] = []

        def check(path: str, kind: str) -> None:
            found = entries.get(path)
            if found is None:
                problems.append({"path": path, "expected": kind, "found": "missing"})
            elif found[0] != kind[0] or found[1] != "0" or found[2] & 0o022:
                problems.append({"path": path, "expected": f"{kind} owned by root, not writable by others",
                                 "found": f"type {found[0]}, owner uid {found[1]}, mode {found[2]:o}"})

        check(".", "directory")
        for folder in job.sealed:
            check(folder, "directory")
        for path in files:
            check(path, "file")
            expected = hashlib.sha256(job.protected[path]).hexdigest()
            if path in entries and digests.get(path) != expected:
                problems.append({"path": path, "expected": f"sha256 {expected}",
                                 "found": f"sha256 {digests.get(path, 'unreadable')}"})
        for path, (kind, _, _) in sorted(entries.items()):
            inside = any(path == f or path.startswith(f.rstrip("/") + "/") for f in job.sealed)
            holds_protected = kind == "d" and any(p.startswith(path + "/") for p in job.protected)
            if inside and path not in job.protected and path not in job.sealed and not holds_protected:
                problems.append({"path": path, "expected": "nothing", "found": f"an extra entry (type {kind})"})
        return problems

    def _end_strays(self) -> None:
        """Nothing the run started outlives it: a stop kills every process in the container, however
        many there are (no exec is needed, so a fork bomb at the pids limit cannot stop it); the
        restart brings back root's idle process alone, for the checks and the results."""
        ref = self._require()
        try:
            self.sandbox.stop(ref, timeout_s=1)
            self.ref = self.sandbox.start(ref)
        except TrialError as exc:
            raise VerifierFailure(f"could not restart the verifier after the run: {exc.one_line()}") from exc

    def run(self, command: str, timeout_s: int, env: dict[str, str] | None = None) -> _Outcome:
        """Run `command` in /workspace as the test uid; `{junit}` names the XML file it must write."""
        ref = self._require()
        junit_path = f"{self.results_dir}/results.xml"
        output = f"{self.results_dir}/output.txt"
        line = command.replace("{junit}", junit_path)
        started = time.monotonic()
        # The output goes to a file, not the exec's stream: a process the command leaves behind
        # keeps its stdout, and would otherwise hold the stream (and this grader) open.
        # `ulimit -f` (dash counts 512-byte blocks) caps every file the run writes, the output file too.
        limited = f"ulimit -f {max(1, MAX_FILE_BYTES // 512)}; ({line}) >{output} 2>&1 </dev/null"
        code, streamed = self._exec(["sh", "-c", limited], user=AS_TESTS,
                                    workdir=WORKSPACE, env={**_TEST_ENV, **(env or {})}, timeout_s=timeout_s)
        seconds = time.monotonic() - started
        self._end_strays()
        # Read as the test uid: a symlink planted in its place must not make root read for it.
        _, tail = self._exec(["tail", "-c", str(_TAIL), output], user=AS_TESTS)
        tail = redact_text((tail + streamed)[-_TAIL:])
        try:
            archive = self.sandbox.copy_out(ref, junit_path, max_bytes=_MAX_RESULTS_BYTES)
        except SandboxPathNotFound:
            why = f"timed out after {timeout_s} s" if code in (124, 137) else f"exit {code}"
            return _Outcome(code, seconds, tail, None, f"no JUnit XML was written ({why})")
        except PrerequisiteError as exc:  # the engine went away: nothing to do with the candidate
            raise VerifierFailure(f"could not read the results: {exc.one_line()}") from exc
        except TrialError as exc:
            return _Outcome(code, seconds, tail, None, f"the results could not be read: {exc.one_line()}")
        try:
            return _Outcome(code, seconds, tail, _single_file(archive))
        except tarfile.TarError as exc:
            return _Outcome(code, seconds, tail, None, f"the results could not be read: {exc}")


def _name_suffix() -> str:
    """`<unix time, hex>-<random>`: unique per container, and its age readable from its name alone."""
    return f"{int(time.time()):x}-{secrets.token_hex(3)}"


def _clear_stale(sandbox: SandboxBackend, trial_id: str, role: str) -> None:
    """Remove this trial's `role` containers (found by label) made longer ago than any run can last: a
    grader that died left them. Never one younger: it may be another grade of the same trial, running now."""
    prefix = f"trial-{trial_id}-{role}-"
    try:
        resources = sandbox.list_managed(frozenset({"container"}))
    except TrialError:
        return  # only housekeeping: teardown and gc find them by label too
    for resource in resources:
        if resource.kind != "container" or resource.trial_id != trial_id or not resource.name.startswith(prefix):
            continue
        stamp = resource.name.removeprefix(prefix).split("-", 1)[0]
        try:
            made = int(stamp, 16)
        except ValueError:
            continue
        if time.time() - made > STALE_AFTER_S:
            with suppress(TrialError):  # already being removed by someone else
                sandbox.remove_resource(resource)


def _single_file(archive: bytes) -> str:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            if member.isfile():
                handle = tar.extractfile(member)
                return handle.read().decode("utf-8", "replace") if handle else ""
    raise tarfile.TarError("the archive holds no file")


# ----- runs -------------------------------------------------------------------------------------------

def run_library(sandbox: SandboxBackend, image: str, trial_id: str, job: Job) -> Run:
    """The tests and the candidate's code in one fresh container, under canaries."""
    with Verifier(sandbox, image, trial_id) as verifier:
        verifier.preflight(job.command)
        verifier.load(job.workspace)
        _check_before(verifier, job)
        outcome = verifier.run(job.command, job.timeout_s)
        changed = verifier.inventory(job)
    return _judge(job, outcome, changed)


def run_command(sandbox: SandboxBackend, image: str, trial_id: str, workspace: bytes, command: str,
                timeout_s: int) -> Run:
    """A command for its exit code alone (`trial templates check` runs the starter's tests so)."""
    with Verifier(sandbox, image, trial_id) as verifier:
        verifier.preflight(command)
        verifier.load(workspace)
        outcome = verifier.run(command, timeout_s)
    return Run(command, outcome.exit_code, outcome.seconds, outcome.tail, None)


def run_service(sandbox: SandboxBackend, image: str, trial_id: str, job: Job, service: ServiceSpec) -> Run:
    """The candidate's program in one container, the tests in another, on a private network."""
    network = f"trial-{trial_id}-net-{secrets.token_hex(4)}"
    try:
        sandbox.create_network(network, trial_id)
    except TrialError as exc:
        raise VerifierFailure(f"could not create the tests' private network: {exc.one_line()}") from exc
    program: SandboxRef | None = None
    try:
        with Verifier(sandbox, image, trial_id, network=network) as verifier:
            verifier.preflight(job.command)
            verifier.preflight(service.command, module=False)
            # Every file the program writes is capped as the tests' are (`ulimit -f`, 512-byte blocks in dash).
            capped = f"ulimit -f {max(1, MAX_FILE_BYTES // 512)}; exec sh -c {shlex.quote(service.command)}"
            spec = SandboxSpec(trial_id=trial_id, image=image, role="service", internal_network=network,
                               extra_hosts={}, command=("sh", "-c", capped), volumes={}, user=AS_TESTS,
                               workdir=WORKSPACE, env=dict(_TEST_ENV), read_only_root=False,
                               name_suffix=_name_suffix())
            try:
                _clear_stale(sandbox, trial_id, "service")
                program = sandbox.create(spec)
                sandbox.copy_in(program, "/", service.program)
                sandbox.copy_in(program, "/", _closed_var_tmp())  # before start: its program runs at once
            except TrialError as exc:
                raise VerifierFailure(f"could not prepare the program's container: {exc.one_line()}") from exc
            problem = ""
            try:
                program = sandbox.start(program)
            except TrialError as exc:  # the candidate's program exited at once: their failure
                problem = f"the program did not stay up: {exc.one_line()}"
            host = program.name  # its name on the run's private network
            verifier.load(job.workspace)
            _check_before(verifier, job)
            gone = bool(problem)  # a failed start removed the program's container
            if not problem:
                running = program
                problem = _wait_ready(verifier, host, service.port, service.ready_timeout_s,
                                      lambda: _ended(sandbox, running))
                gone = problem.startswith(EXITED)
            # A program that is gone is sought where nothing listens (the tests' own loopback), so each
            # test fails at once instead of waiting on a name the private network no longer resolves.
            target = "127.0.0.1" if gone else host
            env = {"TRIAL_SERVICE_URL": f"http://{target}:{service.port}", "TRIAL_SERVICE_HOST": target,
                   "TRIAL_SERVICE_PORT": str(service.port)}
            outcome = verifier.run(job.command, job.timeout_s, env)
            changed = verifier.inventory(job)
        run = _judge(job, outcome, changed)
        if problem:
            run.problem = "; ".join(p for p in (problem, run.problem) if p)
        return run
    finally:
        if program is not None:
            with suppress(TrialError):
                sandbox.remove(program)
        with suppress(TrialError):
            sandbox.remove_network(network)


READY_PROBE_S = 2
EXITED = "the program exited before accepting connections"
"""Each readiness probe's share of ready_timeout_s; between probes the program's container is checked."""


def _wait_ready(verifier: Verifier, host: str, port: int, timeout_s: int, ended: Callable[[], str]) -> str:
    """Wait until the program accepts connections; a program that never does, or exits first,
    fails its tests. `ended` says how the program's container ended ("" while it runs), so a
    program that crashed is reported at once with its exit code, not after the whole timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        chunk = max(1, min(READY_PROBE_S, math.ceil(deadline - time.monotonic())))
        probe = (f"end=$(($(date +%s)+{chunk})); while [ $(date +%s) -lt $end ]; do "
                 f"timeout 1 bash -c 'exec 3<>/dev/tcp/{host}/{int(port)}' 2>/dev/null && exit 0; sleep 0.2; "
                 "done; exit 1")  # timeout: once the program's container has exited its name takes seconds to fail
        code, _ = verifier._exec(["bash", "-c", probe], user=AS_TESTS, timeout_s=chunk + 10)
        if code == 0:
            return ""
        how = ended()
        if how:
            return f"{EXITED} on port {port}: {how}"
        if time.monotonic() >= deadline:
            return f"the program did not accept connections on port {port} within {timeout_s} s"


def _ended(sandbox: SandboxBackend, program: SandboxRef) -> str:
    """"" while the program's container runs, else how it ended (exit code and last output where
    the backend can tell: Docker's `exit_report`)."""
    try:
        status = sandbox.status(program)
    except TrialError:
        return ""  # the engine did not answer: keep probing until the timeout
    if status in ("running", "restarting", "paused", "created"):
        return ""
    report = getattr(sandbox, "exit_report", None)
    if callable(report):
        with suppress(TrialError):
            return redact_text(str(report(program)))
    return f"its container is {status}"


def _check_before(verifier: Verifier, job: Job) -> None:
    problems = verifier.inventory(job)
    if problems:  # nothing of the candidate's has run yet: the machinery laid the files out wrong
        raise VerifierFailure("the verifier's workspace is not as laid out: " + ", ".join(
            f"{p['path']} ({p['found']})" for p in problems[:5]))


# ----- the verdict ------------------------------------------------------------------------------------

def _judge(job: Job, outcome: _Outcome, changed: list[dict[str, Any]]) -> Run:
    run = Run(job.command, outcome.exit_code, outcome.seconds, outcome.tail, None, outcome.problem,
              canaries=job.canaries)
    if changed:
        run.tampering.append(tampering(
            "hidden_files_changed", f"Files the {job.label} run must not change were changed during it.",
            {"run": job.label, "changes": changed[:20]}))
    if outcome.xml is None:
        run.missing = {"run": job.label, "message": f"The {job.label.replace('_', '-')} run ended without "
                       f"results after the candidate's code ran: {outcome.problem}. Scored as failing; the "
                       "output tail shows why (a crash, a hang, or the run cut short on purpose).",
                       "evidence": {"exit_code": outcome.exit_code, "output_tail": outcome.tail[-1500:]}}
        return run
    try:
        cases = parse_junit(outcome.xml)
    except JUnitError as exc:
        run.problem = f"unusable JUnit XML: {exc}"
        run.missing = {"run": job.label, "message": f"The {job.label.replace('_', '-')} run's results are not "
                       f"JUnit XML ({exc}). Scored as failing.",
                       "evidence": {"exit_code": outcome.exit_code, "output_tail": outcome.tail[-1500:]}}
        return run
    real, found = split_canaries(cases, job.canaries)
    run.cases = real
    run.tampering += judge_results(job.label, real, found, job.canaries, job.expected)
    return run


def tampering(kind: str, message: str, evidence: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "message": message, "evidence": evidence}


def split_canaries(cases: dict[str, TestCase], canaries: Canaries | None) -> tuple[dict[str, TestCase],
                                                                                   dict[str, TestCase | None]]:
    """The real tests' cases, and each canary id → its case (None: not in the results)."""
    if canaries is None:
        return dict(cases), {}
    modules = set(canaries.modules)
    real = {key: case for key, case in cases.items() if not modules & set(key.split("."))}
    found = {test_id: lookup(cases, test_id) for test_id in (*canaries.must_pass, *canaries.must_fail)}
    return real, found


def _collection_errors(cases: dict[str, TestCase]) -> set[str]:
    """Module keys pytest could not collect (JUnit: no classname, the module as the name, an error)."""
    return {key for key, case in cases.items() if case.outcome == "error" and "collection" in case.message.lower()}


def judge_results(label: str, real: dict[str, TestCase], canaries_found: dict[str, TestCase | None],
                  canaries: Canaries | None, expected: tuple[str, ...]) -> list[dict[str, Any]]:
    """What in a run's results shows they were rewritten, cut or forged (empty: nothing)."""
    found: list[dict[str, Any]] = []
    if canaries is None:
        return found
    forged = [t for t in canaries.must_fail if (case := canaries_found.get(t)) and case.outcome == "passed"]
    if forged:
        found.append(tampering(
            "canary_passed", f"In the {label.replace('_', '-')} run, a test written to fail (a canary made for "
            "this run, which the candidate could not know) was reported as passing: code in the test process "
            "rewrote the outcomes.", {"run": label, "canaries": forged}))
    # Below: only when a real test passed. A run cut short at collection passes nothing, and earns nothing.
    if not any(case.outcome == "passed" for case in real.values()):
        return found
    unwell = {t: (case.outcome if (case := canaries_found.get(t)) else "missing") for t in canaries.must_pass}
    unwell = {t: outcome for t, outcome in unwell.items() if outcome != "passed"}
    dropped = [t for t in canaries.must_fail if canaries_found.get(t) is None]
    if unwell or dropped:
        found.append(tampering(
            "canary_missing", f"In the {label.replace('_', '-')} run, real tests passed but per-run canaries "
            "did not come back as written (must pass: not passing or missing; must fail: missing): tests were "
            "skipped, deselected or the results rewritten.",
            {"run": label, "must_pass": unwell, "must_fail_missing": dropped}))
    broken = _collection_errors(real)
    absent = [t for t in expected if lookup(real, t) is None and node_key(t.split("::", 1)[0]) not in broken]
    if absent:
        found.append(tampering(
            "tests_missing", f"In the {label.replace('_', '-')} run, {len(absent)} test(s) the template names "
            "are missing from the results although others passed and their files were collected.",
            {"run": label, "tests": absent[:20]}))
    return found
