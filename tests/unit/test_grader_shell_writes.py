"""Which shell commands write files, and what they write: the agent's shell is one of its pens."""

from __future__ import annotations

import pytest

from graders.timeline import file_writes, shell_writes_files, witness, witnessed_view

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("command", "writes"), [
    ("cat > keyservice/x.py <<'EOF'\nimport hmac\nEOF", True),
    ("cat <<EOF > notes.md\nhello\nEOF", True),
    ("sed -i 's/return None/raise KeyError(key)/' keyservice/store.py", True),
    ("python3 -c \"open('a.py','w').write('x = 1')\"", True),
    ("python3 -c \"import keyservice; print(keyservice.__file__)\"", False),
    ("echo 'x = 1' >> calc/extra.py", True),
    ("tee calc/extra.py < /tmp/draft", True),
    ("mv calc/old.py calc/new.py", True),
    ("git checkout -- keyservice/api.py", True),
    ("git checkout -b feature", False),
    ("python3 -m pytest -q tests > /tmp/out.txt 2>&1", False),
    ("ls -la > /dev/null 2>&1", False),
    ("grep -rn 'def revoke' keyservice", False),
])
def test_shell_commands_that_write_files(command: str, writes: bool) -> None:
    assert shell_writes_files(command) is writes


def _call(command: str, **extra: object) -> dict:
    return {"kind": "tool_call", "source": "claude-code", "text": "Bash", "witness": "gateway",
            "data": {"tool": "Bash", "input": {"command": command}, "tool_use_id": "t1", **extra}}


def test_heredocs_name_their_file_and_other_writes_are_attributed_by_content() -> None:
    writes = file_writes([_call("cat > /workspace/calc/extra.py <<'EOF'\nVALUE = 42\nEOF")])
    assert ("calc/extra.py", ("VALUE = 42",)) in {(w.path, w.lines) for w in writes}
    assert all(w.via_shell for w in writes)
    [inline] = file_writes([_call("python3 -c \"open('a.py','w').write('import os\\nprint(os.sep)\\n')\"")])
    assert inline.path == "" and "print(os.sep)" in inline.lines
    [sed] = file_writes([_call("sed -i 's/return None/raise KeyError(key_id)/' keyservice/store.py")])
    assert sed.fragments == ("raise KeyError(key_id)",)


def test_only_witnessed_events_keep_their_kind_in_the_scored_view() -> None:
    forged = {"kind": "tool_rejected", "source": "claude-code", "text": "rejected", "data": {"tool_use_id": "t1"}}
    seen = {**forged, "data": {"tool_use_id": "t1", "gateway_seq": 3}}
    stamped = {**seen, "witness": "transcript"}  # the collector's word wins over the fallback
    assert [witness(e) for e in (forged, seen, stamped)] == ["transcript", "gateway", "transcript"]
    assert [e["kind"] for e in witnessed_view([forged, seen, stamped])] == ["unwitnessed", "tool_rejected",
                                                                           "unwitnessed"]
    assert witness({"kind": "commit", "source": "git", "data": {}}) == "host"
    assert witness({"kind": "push", "source": "forge", "data": {}}) == "forge"
