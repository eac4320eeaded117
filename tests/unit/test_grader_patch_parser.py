"""One parser for Codex's apply_patch envelope (graders.timeline.parse_patch), read by provenance
(graders.timeline.file_writes: the lines each file got) and by graders.rewritten_tests (the file
rebuilt from its hunks). The envelope below is the shape Codex sends: add, update with several
hunks and `@@` headers, delete, and an update that moves the file."""

from __future__ import annotations

from typing import Any

import pytest

from graders.rewritten_tests import agent_versions
from graders.timeline import file_writes, parse_patch

pytestmark = pytest.mark.unit

STARTER = ("import pytest\n\n\ndef test_one():\n    assert f(1) == 1\n\n\n"
           "def test_two():\n    assert f(2) == 4\n\n\ndef test_three():\n    assert f(3) == 9\n")
ENVELOPE = """*** Begin Patch
*** Add File: tests/test_new.py
+def test_new():
+    assert f(0) == 0
*** Update File: tests/test_f.py
@@ def test_one():
-    assert f(1) == 1
+    assert f(1) == 2
@@ def test_three():
-    assert f(3) == 9
+    assert f(3) == 6
*** End of File
*** Delete File: tests/test_old.py
*** Update File: tests/test_moved.py
*** Move to: tests/test_renamed.py
@@
 def test_two():
-    assert f(2) == 4
+    assert f(2) == 5
*** End Patch"""


def _call(patch: str, tool: str = "apply_patch") -> list[dict[str, Any]]:
    arguments: dict[str, Any] = {"input": patch} if tool == "apply_patch" else {"cmd": ["apply_patch", patch]}
    return [{"kind": "tool_call", "witness": "gateway", "text": tool,
             "data": {"tool": tool, "input": arguments, "tool_use_id": "c1"}},
            {"kind": "tool_result", "witness": "gateway", "text": "Done", "data": {"tool_use_id": "c1"}}]


def test_the_envelope_parses_into_files_with_their_hunks() -> None:
    files = parse_patch(ENVELOPE)
    assert [(f.action, f.path, f.move_to) for f in files] == [
        ("Add", "tests/test_new.py", None), ("Update", "tests/test_f.py", None),
        ("Delete", "tests/test_old.py", None), ("Update", "tests/test_moved.py", "tests/test_renamed.py")]
    add, update, delete, move = files
    assert add.added == ("def test_new():", "    assert f(0) == 0") and add.removed == ()
    assert update.hunks == (("-    assert f(1) == 1", "+    assert f(1) == 2"),
                            ("-    assert f(3) == 9", "+    assert f(3) == 6"))
    assert delete.hunks == ()
    assert move.hunks == ((" def test_two():", "-    assert f(2) == 4", "+    assert f(2) == 5"),)


@pytest.mark.parametrize("tool", ["apply_patch", "exec_command"])
def test_provenance_reads_the_lines_each_file_got(tool: str) -> None:
    writes = {w.path: w for w in file_writes(_call(ENVELOPE, tool))}
    # A deleted file got no lines; a moved one got its lines under its new path.
    assert sorted(writes) == ["tests/test_f.py", "tests/test_new.py", "tests/test_renamed.py"]
    assert writes["tests/test_f.py"].lines == ("    assert f(1) == 2", "    assert f(3) == 6")
    assert writes["tests/test_f.py"].removed == ("    assert f(1) == 1", "    assert f(3) == 9")
    assert writes["tests/test_renamed.py"].lines == ("    assert f(2) == 5",)


def test_rewritten_tests_rebuild_each_file_from_the_same_hunks() -> None:
    starter: dict[str, str | None] = {"tests/test_f.py": STARTER, "tests/test_old.py": STARTER,
                                      "tests/test_moved.py": STARTER}
    versions = agent_versions(_call(ENVELOPE), starter)
    assert versions["tests/test_new.py"].text == "def test_new():\n    assert f(0) == 0\n"
    assert versions["tests/test_f.py"].text == STARTER.replace("f(1) == 1", "f(1) == 2").replace("f(3) == 9",
                                                                                                  "f(3) == 6")
    assert versions["tests/test_old.py"].text is None and "deleted" in versions["tests/test_old.py"].gap
    assert versions["tests/test_renamed.py"].text == STARTER.replace("f(2) == 4", "f(2) == 5")
    assert versions["tests/test_moved.py"].text is None and "moved to tests/test_renamed.py" in versions[
        "tests/test_moved.py"].gap


def test_a_hunk_that_does_not_fit_is_not_guessed() -> None:
    patch = "*** Begin Patch\n*** Update File: tests/test_f.py\n@@\n-    assert f(7) == 7\n+    assert 1\n*** End Patch"
    version = agent_versions(_call(patch), {"tests/test_f.py": STARTER})["tests/test_f.py"]
    assert version.text is None and "does not fit" in version.gap
