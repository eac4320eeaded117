"""Run hidden Go tests against the candidate's package, for the pytest wrappers beside this file.

The candidate's tree (without their own *_test.go files, so no TestMain or init of theirs in a
test file decides the run) is copied to a scratch folder with the hidden Go files named, and
`go test -run '^Name$'` runs there. The verdict is pytest's, written to JUnit by the template's
hidden command; the Go output goes into the failure message.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

HIDDEN_GO = Path(__file__).resolve().parent / "go"
WORKSPACE = Path(os.environ.get("TRIAL_WORKSPACE", "/workspace"))


def go_test(test: str, *hidden: str, race: bool = False, timeout: int = 400) -> None:
    with tempfile.TemporaryDirectory(prefix="hidden-go-") as tmp:
        work = Path(tmp) / "src"
        shutil.copytree(WORKSPACE, work, ignore=shutil.ignore_patterns("*_test.go", "hidden_tests", ".git"))
        for name in hidden:
            shutil.copy(HIDDEN_GO / name, work / name)
        argv = ["go", "test", "-count=1", "-v", "-run", f"^{test}$", *(["-race"] if race else []), "."]
        done = subprocess.run(argv, cwd=work, capture_output=True, text=True, timeout=timeout, check=False)
    output = (done.stdout + done.stderr)[-4000:]
    assert done.returncode == 0, f"`{' '.join(argv)}` exited {done.returncode}:\n{output}"
    assert f"--- PASS: {test}" in done.stdout, f"{test} did not run:\n{output}"
