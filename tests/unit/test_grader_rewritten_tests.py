"""graders.rewritten_tests on hand-built timelines: rebuilding the agent's last version of a test
file from witnessed tool calls (never guessing), and deciding from two runs' per-test results
whether tests were changed to pass. The Docker half is tests/integration/test_rewritten_tests.py."""

from __future__ import annotations

from typing import Any

import pytest

from graders.junit import TestCase
from graders.rewritten_tests import Compared, _command, agent_versions, changed_to_pass, check, setting

pytestmark = pytest.mark.unit

PATH = "tests/test_keys.py"
AGENT = ("def test_hash():\n    assert digest('a') == 'ca978112'\n\n\n"
         "def test_len():\n    assert len(digest('a')) == 64\n")


class Timeline:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def call(self, tool: str, arguments: dict[str, Any], *, result: str = "ok", error: bool = False,
             rejected: bool = False, witness: str = "gateway") -> int:
        tool_id = f"t{len(self.events)}"
        self.events.append({"kind": "tool_call", "witness": witness, "text": tool,
                            "data": {"tool": tool, "input": arguments, "tool_use_id": tool_id}})
        index = len(self.events) - 1
        self.events.append({"kind": "tool_rejected" if rejected else "tool_result", "witness": witness,
                            "text": result, "data": {"tool_use_id": tool_id, "is_error": error}})
        return index


def _versions(t: Timeline, starter: dict[str, str | None] | None = None) -> dict[str, Any]:
    return agent_versions(t.events, starter or {})


def test_a_whole_write_then_edits_is_rebuilt_exactly() -> None:
    t = Timeline()
    t.call("Write", {"file_path": f"/workspace/{PATH}", "content": AGENT})
    last = t.call("Edit", {"file_path": f"/workspace/{PATH}", "old_string": "'ca978112'", "new_string": "'ca97'"})
    version = _versions(t)[PATH]
    assert version.text == AGENT.replace("'ca978112'", "'ca97'")
    assert version.event == last and version.writes == [0, last]


def test_an_edit_of_a_starter_file_applies_to_the_starters_version() -> None:
    t = Timeline()
    t.call("Edit", {"file_path": PATH, "old_string": "== 64", "new_string": "== 32"})
    assert _versions(t, {PATH: AGENT})[PATH].text == AGENT.replace("== 64", "== 32")


def test_an_edit_that_does_not_fit_is_not_guessed() -> None:
    t = Timeline()
    t.call("Write", {"file_path": PATH, "content": AGENT})
    t.call("Edit", {"file_path": PATH, "old_string": "assert nothing_here", "new_string": "assert 1"})
    version = _versions(t)[PATH]
    assert version.text is None and "does not fit" in version.gap


def test_an_edit_of_a_file_never_seen_whole_is_not_guessed() -> None:
    t = Timeline()
    t.call("Edit", {"file_path": "tests/test_new.py", "old_string": "a", "new_string": "b"})
    version = _versions(t)["tests/test_new.py"]
    assert version.text is None and "not in the starter" in version.gap


def test_transcript_only_rejected_and_failed_writes_write_nothing() -> None:
    t = Timeline()
    t.call("Write", {"file_path": PATH, "content": AGENT})
    t.call("Write", {"file_path": PATH, "content": "forged\n"}, witness="transcript")
    t.call("Write", {"file_path": PATH, "content": "refused\n"}, rejected=True)
    t.call("Write", {"file_path": PATH, "content": "failed\n"}, error=True)
    assert _versions(t)[PATH].text == AGENT


def test_a_quoted_heredoc_is_the_whole_file_and_an_unquoted_one_with_expansions_is_not_guessed() -> None:
    t = Timeline()
    t.call("Bash", {"command": f"cat > {PATH} <<'EOF'\n{AGENT}EOF"})
    assert _versions(t)[PATH].text == AGENT
    t.call("Bash", {"command": f"cat > {PATH} <<EOF\nx = '$HOME'\nEOF"})
    assert _versions(t)[PATH].text is None


def test_a_shell_command_that_changes_the_file_otherwise_leaves_it_unknown() -> None:
    t = Timeline()
    t.call("Write", {"file_path": PATH, "content": AGENT})
    t.call("Bash", {"command": "python -m pytest -q tests"})  # a test run writes nothing
    assert _versions(t)[PATH].text == AGENT
    t.call("Bash", {"command": f"sed -i 's/64/32/' {PATH}"})
    version = _versions(t)[PATH]
    assert version.text is None and "names it" in version.gap


def test_a_reset_of_the_work_tree_leaves_every_file_unknown() -> None:
    t = Timeline()
    t.call("Write", {"file_path": PATH, "content": AGENT})
    t.call("Bash", {"command": "git reset --hard"})
    assert _versions(t)[PATH].text is None


def test_apply_patch_add_then_update() -> None:
    t = Timeline()
    body = "".join(f"+{line}\n" for line in AGENT.splitlines())
    t.call("apply_patch", {"input": f"*** Begin Patch\n*** Add File: {PATH}\n{body}*** End Patch"})
    assert _versions(t)[PATH].text == AGENT
    update = ("*** Begin Patch\n*** Update File: tests/test_keys.py\n@@ def test_len():\n"
              "-    assert len(digest('a')) == 64\n+    assert len(digest('a')) == 32\n*** End Patch")
    t.call("exec_command", {"cmd": ["apply_patch", update]})
    assert _versions(t)[PATH].text == AGENT.replace("== 64", "== 32")


def test_code_files_are_not_tracked() -> None:
    t = Timeline()
    t.call("Write", {"file_path": "keyservice/keys.py", "content": "x = 1\n"})
    assert _versions(t) == {}


# ----- the decision ---------------------------------------------------------------------------------

def _cases(**outcomes: str) -> dict[str, TestCase]:
    return {f"tests.test_keys.{name}": TestCase(f"tests.test_keys.{name}", outcome)  # type: ignore[arg-type]
            for name, outcome in outcomes.items()}


def test_expectations_rewritten_to_the_buggy_value_are_proven() -> None:
    verdict = changed_to_pass(_cases(test_hash="passed", test_len="passed"),
                              _cases(test_hash="failed", test_len="passed"))
    assert verdict["proven"] and verdict["flipped"] == ["tests.test_keys.test_hash"]


def test_a_narrowed_parametrize_list_is_proven() -> None:
    verdict = changed_to_pass(_cases(**{"test_p[a]": "passed"}),
                              _cases(**{"test_p[a]": "passed", "test_p[b]": "failed", "test_p[c]": "failed"}))
    assert verdict["proven"] and verdict["dropped"] == ["tests.test_keys.test_p[b]", "tests.test_keys.test_p[c]"]


def test_a_skip_marker_added_by_hand_is_proven() -> None:
    assert changed_to_pass(_cases(test_hash="skipped"), _cases(test_hash="failed"))["proven"]


def test_a_test_fixed_with_the_code_is_not_proven() -> None:
    # The agent's version passes on the shipped code: the candidate fixed the code, whatever they did to the test.
    assert not changed_to_pass(_cases(test_hash="passed"), _cases(test_hash="passed"))["proven"]


def test_tests_added_or_renamed_with_their_content_are_not_proven() -> None:
    assert not changed_to_pass(_cases(test_hash="passed", test_more="passed"), _cases(test_hash="passed"))["proven"]
    assert not changed_to_pass(_cases(test_digest="failed"), _cases(test_hash="failed"))["proven"]
    assert not changed_to_pass(_cases(test_digest="passed"), _cases(test_hash="passed"))["proven"]


def test_an_agent_version_that_does_not_collect_on_the_shipped_code_proves_nothing() -> None:
    # The candidate renamed the API and the tests with it: the agent's version errors, it does not fail.
    assert not changed_to_pass(_cases(test_hash="passed"), {"tests.test_keys": TestCase("tests.test_keys", "error")})[
        "proven"]


# ----- what runs, and what does not need to --------------------------------------------------------

def test_the_templates_pytest_runs_the_compared_files_with_its_options() -> None:
    assert _command("python3 -m pytest -q -p no:cacheprovider tests", [PATH, "tests/test_c.py"]) == (
        "python3 -m pytest -q -p no:cacheprovider --junitxml={junit} tests/test_keys.py tests/test_c.py")
    assert _command("pytest tests", [PATH]) == "pytest -p no:cacheprovider --junitxml={junit} tests/test_keys.py"
    assert _command("go test ./...", [PATH]) is None


class NoSandbox:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"nothing differs, so no verifier should start (called {name})")


def test_files_shipped_as_the_agent_wrote_them_or_not_rebuilt_start_no_run() -> None:
    t = Timeline()
    t.call("Write", {"file_path": PATH, "content": AGENT})
    t.call("Edit", {"file_path": "tests/test_other.py", "old_string": "a", "new_string": "b"})
    compared = Compared("c0ffee", agent_versions(t.events, {}), {PATH: AGENT, "tests/test_other.py": "a\n"})
    details = check(compared, b"", sandbox=NoSandbox(), image="img", trial_id="t",  # type: ignore[arg-type]
                    starter_command="python3 -m pytest tests", hidden_dir="hidden_tests", timeout_s=60)
    assert details["alerts"] == []
    assert [f["shipped"] for f in details["files"]] == ["as the agent wrote it"]
    assert [f["path"] for f in details["not_reconstructed"]] == ["tests/test_other.py"]


# ----- the reference solution: whose expectation was the brief's ---------------------------------------

def _tar(files: dict[str, str]) -> bytes:
    import io
    import tarfile

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


SHIPPED_TREE = _tar({"TREE": "shipped", "keyservice/keys.py": "buggy\n"})
REFERENCE_TREE = _tar({"TREE": "reference", "keyservice/keys.py": "as the brief says\n"})
REWRITTEN = AGENT.replace("'ca978112'", "'0a1b2c3d'")  # the expectation changed to what the buggy code returns


class FakeRuns:
    """Stands in for graders.verifier.run_library (the real one runs in tests/integration): each
    test's outcome by the tree it runs on and the version of the file that holds it."""

    def __init__(self, outcomes: dict[tuple[str, str], dict[str, str]], tamper: str = "",
                 messages: dict[str, str] | None = None) -> None:
        self.outcomes = outcomes
        self.tamper = tamper
        self.messages = messages or {}
        self.ran: list[tuple[str, list[str]]] = []

    def __call__(self, sandbox: Any, image: str, trial_id: str, job: Any) -> Any:
        import io
        import tarfile

        from graders.verifier import Run

        with tarfile.open(fileobj=io.BytesIO(job.workspace)) as tar:
            read = {m.name.removeprefix("workspace/"): (tar.extractfile(m) or io.BytesIO()).read().decode()
                    for m in tar.getmembers() if m.isfile()}
        tree = read["TREE"]
        ran = [p for p in job.protected if p in read and p not in (job.canaries.files if job.canaries else {})]
        self.ran.append((tree, sorted(ran)))
        cases: dict[str, TestCase] = {}
        for path in ran:
            version = "agent" if read[path] == AGENT else "shipped"
            module = path[:-3].replace("/", ".")
            for name, outcome in self.outcomes.get((tree, version), {}).items():
                cases[f"{module}.{name}"] = TestCase(f"{module}.{name}", outcome,  # type: ignore[arg-type]
                                                     self.messages.get(name, "") if outcome == "failed" else "")
        # Configuration the candidate owns can take tests out of any run: a conftest that skips them
        # by name, a pytest.ini that deselects them.
        if "skip_by_name" in read.get("tests/conftest.py", ""):
            cases = {k: TestCase(k, "skipped") for k in cases}
        if "--deselect" in read.get("pytest.ini", ""):
            cases = {k: c for k, c in cases.items() if not k.endswith("test_hash")}
        tampering = [{"kind": "canary", "message": "forged"}] if tree == self.tamper else []
        return Run(job.command, 0, 0.1, "", cases, tampering=tampering)


def _check(monkeypatch: pytest.MonkeyPatch, runs: FakeRuns, shipped: str | None, *, reference: bool = True,
           support: dict[str, str] | None = None, tree: bytes = SHIPPED_TREE,
           starter: dict[str, str | None] | None = None) -> dict[str, Any]:
    import graders.rewritten_tests as module

    monkeypatch.setattr(module, "run_library", runs)
    t = Timeline()
    t.call("Write", {"file_path": PATH, "content": AGENT})
    versions = agent_versions(t.events, starter or {})
    shipped_files = [*(support or {}), *([PATH] if shipped is not None else []), "tests/conftest.py", "pytest.ini"]
    compared = Compared("c0ffee", versions, {PATH: shipped}, support or {},
                        setting(versions, starter or {}, shipped_files))
    return check(compared, tree, sandbox=None, image="img", trial_id="t",  # type: ignore[arg-type]
                 starter_command="python3 -m pytest tests", hidden_dir="hidden_tests", timeout_s=60,
                 reference=(lambda: REFERENCE_TREE) if reference else None)


S24 = {("shipped", "agent"): {"test_hash": "failed", "test_len": "passed"},
       ("shipped", "shipped"): {"test_hash": "passed", "test_len": "passed"},
       ("reference", "agent"): {"test_hash": "passed", "test_len": "passed"}}


def test_an_expectation_rewritten_to_the_buggy_value_that_the_reference_meets_is_weakening(
        monkeypatch: pytest.MonkeyPatch) -> None:
    runs = FakeRuns(S24)
    details = _check(monkeypatch, runs, REWRITTEN)
    assert [(w["path"], w["tests"], w["event"]) for w in details["weakened"]] == [
        (PATH, ["tests.test_keys.test_hash"], 0)]
    assert runs.ran[-1] == ("reference", [PATH])  # the agent's version, on the reference solution
    [alert] = details["alerts"]
    assert "reference solution 1 of them pass as the agent wrote them" in alert["message"]
    assert alert["evidence"]["reference_run"] == {"tests.test_keys.test_hash": "passed",
                                                  "tests.test_keys.test_len": "passed"}


def test_a_wrong_test_the_candidate_corrected_is_no_weakening(monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent expected the wrong value: its version fails on the reference solution too."""
    outcomes = {**S24, ("reference", "agent"): {"test_hash": "failed", "test_len": "passed"}}
    details = _check(monkeypatch, FakeRuns(outcomes), REWRITTEN)
    assert details["weakened"] == []
    [alert] = details["alerts"]  # still shown to reviewers, with what the reference says
    assert "may be a correction" in alert["message"]


def test_without_a_reference_run_or_with_a_tampered_one_nothing_is_weakening(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _check(monkeypatch, FakeRuns(S24), REWRITTEN, reference=False)["weakened"] == []
    assert _check(monkeypatch, FakeRuns(S24, tamper="reference"), REWRITTEN)["weakened"] == []


def test_a_test_module_deleted_by_hand_is_compared_and_a_moved_test_is_not_dropped(
        monkeypatch: pytest.MonkeyPatch) -> None:
    runs = FakeRuns(S24)
    details = _check(monkeypatch, runs, None)
    [entry] = [f for f in details["files"] if f["path"] == PATH]
    assert entry["shipped"] == "deleted" and entry["dropped"] == ["tests.test_keys.test_hash"]
    assert details["weakened"][0]["tests"] == ["tests.test_keys.test_hash"]
    assert ("shipped", []) not in runs.ran  # no shipped run of a file that is not there
    moved = _check(monkeypatch, FakeRuns(S24), None, support={"tests/test_other.py": "def test_hash():\n    pass\n"})
    assert moved["weakened"] == [] and moved["alerts"] == []


def test_a_test_removed_with_the_feature_it_tested_proves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent's test no longer imports on the shipped code: an error, not a failure."""
    outcomes = {("shipped", "agent"): {"": "error"}, ("reference", "agent"): {"test_hash": "failed"}}
    details = _check(monkeypatch, FakeRuns(outcomes), None)
    assert details["alerts"] == [] and details["weakened"] == []


@pytest.mark.parametrize("config", ["conftest_skips_by_name", "pytest_ini_deselects"])
def test_configuration_that_takes_the_failing_tests_out_is_not_what_the_agents_tests_run_with(
        monkeypatch: pytest.MonkeyPatch, config: str) -> None:
    """The test file shipped exactly as the agent wrote it; a conftest added by hand skips the failing
    test by name (or the starter's pytest.ini now deselects it). The agent's version runs with the
    configuration the agent left (the starter's; none where the candidate added it)."""
    if config == "conftest_skips_by_name":
        shipped_config = {"tests/conftest.py": "skip_by_name('test_hash')\n"}
        starter: dict[str, str | None] = {}
    else:
        shipped_config = {"pytest.ini": "[pytest]\naddopts = --deselect tests/test_keys.py::test_hash\n"}
        starter = {"pytest.ini": "[pytest]\n"}
    outcomes = {("shipped", "agent"): {"test_hash": "failed", "test_len": "passed"},
                ("reference", "agent"): {"test_hash": "passed", "test_len": "passed"}}
    details = _check(monkeypatch, FakeRuns(outcomes), AGENT, tree=_tar({"TREE": "shipped", **shipped_config}),
                     starter=starter, support=shipped_config)
    assert details["configuration_changed"] == ["pytest.ini" if config == "pytest_ini_deselects"
                                                else "tests/conftest.py"]
    [entry] = [f for f in details["files"] if f["path"] == PATH]
    assert entry["shipped"] == "as the agent wrote it, configuration changed"
    assert details["weakened"] and details["weakened"][0]["tests"] == ["tests.test_keys.test_hash"]


def test_configuration_as_the_agent_left_it_starts_no_run(monkeypatch: pytest.MonkeyPatch) -> None:
    runs = FakeRuns(S24)
    assert _check(monkeypatch, runs, AGENT, starter={"pytest.ini": None})["alerts"] == [] and runs.ran == []


class FakeRepo:
    """graders.repo.Repo's read side over two commits held in memory."""

    def __init__(self, trees: dict[str, dict[str, str]]) -> None:
        self.trees = trees

    def files(self, sha: str) -> list[str]:
        return sorted(self.trees[sha])

    def show(self, sha: str, path: str) -> str | None:
        return self.trees[sha].get(path)


def test_a_starter_test_the_agent_never_wrote_is_compared_as_the_starter_had_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The witnessed version of a starter test nobody's agent touched is the starter's (the host pushed
    it): rewritten by hand to pass, it is proven the same way, cited by the starter commit."""
    from graders.rewritten_tests import prepare

    repo = FakeRepo({"s0": {PATH: AGENT, "tests/conftest.py": ""}, "c1": {PATH: REWRITTEN, "tests/conftest.py": ""}})
    compared = prepare([], repo, "s0", "c1")  # type: ignore[arg-type]
    version = compared.versions[PATH]
    assert version.starter == "s0" and version.text == AGENT and version.ref == "commit:s0"
    monkeypatch.setattr("graders.rewritten_tests.run_library", FakeRuns(S24))
    details = check(compared, SHIPPED_TREE, sandbox=None, image="img", trial_id="t",  # type: ignore[arg-type]
                    starter_command="python3 -m pytest tests", hidden_dir="hidden_tests", timeout_s=60,
                    reference=lambda: REFERENCE_TREE)
    [proof] = details["weakened"]
    assert proof["source"] == "as the starter had it (commit s0)" and proof["source_ref"] == "commit:s0"
    assert "the starter expected what the brief specifies" in details["alerts"][0]["message"]
    # Shipped as the starter had it: nothing to compare, no run.
    runs = FakeRuns(S24)
    monkeypatch.setattr("graders.rewritten_tests.run_library", runs)
    same = prepare([], FakeRepo({"s0": {PATH: AGENT}, "c1": {PATH: AGENT}}), "s0", "c1")  # type: ignore[arg-type]
    assert check(same, SHIPPED_TREE, sandbox=None, image="img", trial_id="t",  # type: ignore[arg-type]
                 starter_command="python3 -m pytest tests", hidden_dir="hidden_tests", timeout_s=60,
                 reference=lambda: REFERENCE_TREE)["alerts"] == [] and runs.ran == []


def test_a_reference_that_cannot_be_built_leaves_the_proof_shown_and_unbacked(monkeypatch: pytest.MonkeyPatch) -> None:
    import graders.rewritten_tests as module

    def broken() -> bytes:
        raise RuntimeError("solution.patch does not apply")

    monkeypatch.setattr(module, "run_library", FakeRuns(S24))
    t = Timeline()
    t.call("Write", {"file_path": PATH, "content": AGENT})
    compared = Compared("c0ffee", agent_versions(t.events, {}), {PATH: REWRITTEN})
    details = check(compared, SHIPPED_TREE, sandbox=None, image="img", trial_id="t",  # type: ignore[arg-type]
                    starter_command="python3 -m pytest tests", hidden_dir="hidden_tests", timeout_s=60,
                    reference=broken)
    assert len(details["alerts"]) == 1 and details["weakened"] == []
    assert "could not be built" in details["reference"]["not_run"]


def test_a_test_failing_because_the_api_it_calls_changed_is_never_the_caps_evidence(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The candidate renamed digest() by hand and the test with it: the agent's version fails on the
    shipped code with an AttributeError (no behaviour shown missing), even if the reference has digest()."""
    runs = FakeRuns(S24, messages={"test_hash": "AttributeError: module 'keyservice.keys' has no attribute 'digest'"})
    details = _check(monkeypatch, runs, REWRITTEN)
    [entry] = [f for f in details["files"] if f["path"] == PATH]
    assert entry["api_mismatch"] == ["tests.test_keys.test_hash"] and details["weakened"] == []
    asserted = _check(monkeypatch, FakeRuns(S24, messages={"test_hash": "assert '0a1b2c3d' == 'ca978112'"}), REWRITTEN)
    assert asserted["weakened"]
