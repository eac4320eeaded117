"""Host-side git over candidate content: one way to run it, with nothing the candidate can steer.

The candidate owns every tree and ref in their repository. Git lets a tree steer the
process that reads it: `.gitattributes` names filter, diff and merge drivers (commands
defined in config, such as a `filter.lfs` or a textconv in the operator's own
~/.gitconfig), `export-ignore` / `export-subst` change what `git archive` hands the
graders, and `refs/replace/*` makes `git log` show other commits than the ones pushed.
So every host-side git command over candidate content runs:

- with no system or global config (`GIT_CONFIG_NOSYSTEM=1`, `GIT_CONFIG_GLOBAL=/dev/null`),
  so no driver the operator defined for their own work can be named by a candidate's tree;
- with `core.attributesFile=/dev/null` and, in every repository we read, an
  `info/attributes` (which outranks any `.gitattributes` in a tree) that unsets filters,
  export rules and drivers (`harden`);
- without replace refs, terminal prompts or optional locks;
- with `--no-textconv` / `--no-ext-diff` where a command would show a diff (`DIFF_FLAGS`);
- under a timeout, so a hostile repository cannot hold a collect or a grade forever.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from orchestrator.errors import TrialError

SAFE_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_ATTR_NOSYSTEM": "1",
    "GIT_NO_REPLACE_OBJECTS": "1",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_OPTIONAL_LOCKS": "0",
}
# Where a parent process's git variables would point our commands at another repository.
_DROPPED = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES",
            "GIT_NAMESPACE", "GIT_CONFIG", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_COUNT", "GIT_EXTERNAL_DIFF",
            "GIT_ATTR_SOURCE", "GIT_REPLACE_REF_BASE")
# (No `-c diff.external=`: an empty value makes git try to run "" on every plain diff.)
SAFE_CONFIG = ("-c", "core.attributesFile=/dev/null", "-c", "core.fsmonitor=false")
DIFF_FLAGS = ("--no-textconv", "--no-ext-diff")
"""For any command that shows a diff (diff, show, log -p): no textconv, no external diff tool."""

NEUTRAL_ATTRIBUTES = ("# Written by trial: a candidate's .gitattributes cannot run drivers or change exports.\n"
                      "* -filter !diff !merge -export-ignore -export-subst -ident !working-tree-encoding "
                      "!text !eol\n")
"""`info/attributes` outranks `.gitattributes` in a tree; `!x` forces an attribute back to unspecified."""

DEFAULT_TIMEOUT_S = 600.0


class GitError(TrialError, RuntimeError):
    """A host-side git command failed or ran out of time."""

    def __init__(self, message: str, hint: str | None = None, *, stderr: str = "", returncode: int | None = None):
        super().__init__(message, hint)
        self.stderr = stderr
        self.returncode = returncode


def env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment for host-side git: ours, minus anything that redirects git."""
    base = {key: value for key, value in os.environ.items() if key not in _DROPPED}
    return {**base, **SAFE_ENV, **(extra or {})}


def argv(*args: str) -> list[str]:
    return ["git", *SAFE_CONFIG, *args]


def harden(git_dir: Path) -> None:
    """Write the neutral `info/attributes` into a repository's git dir (idempotent)."""
    info = git_dir / "info"
    info.mkdir(parents=True, exist_ok=True)
    target = info / "attributes"
    if not target.is_file() or target.read_text() != NEUTRAL_ATTRIBUTES:
        target.write_text(NEUTRAL_ATTRIBUTES)


def run(args: Sequence[str], *, cwd: Path | None = None, extra_env: Mapping[str, str] | None = None,
        timeout_s: float | None = DEFAULT_TIMEOUT_S, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `git ARGS` hardened, output as text; raise GitError on failure (if `check`) or timeout."""
    try:
        done = subprocess.run(argv(*args), cwd=cwd, env=env(extra_env), capture_output=True, text=True,
                              errors="replace", timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise _timeout(args, timeout_s) from exc
    if check and done.returncode != 0:
        raise _failed(args, done.stderr, done.returncode)
    return done


def run_bytes(args: Sequence[str], *, cwd: Path | None = None, timeout_s: float | None = DEFAULT_TIMEOUT_S,
              check: bool = True) -> subprocess.CompletedProcess[bytes]:
    """`run` for commands whose output is bytes (archives, blobs)."""
    try:
        done = subprocess.run(argv(*args), cwd=cwd, env=env(), capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise _timeout(args, timeout_s) from exc
    if check and done.returncode != 0:
        raise _failed(args, done.stderr.decode("utf-8", "replace"), done.returncode)
    return done


def _timeout(args: Sequence[str], timeout_s: float | None) -> GitError:
    return GitError(f"git {_verb(args)} did not finish within {timeout_s or 0:g}s",
                    "the repository may be hostile or very large")


def _failed(args: Sequence[str], stderr: str, returncode: int) -> GitError:
    return GitError(f"git {_verb(args)} failed: {stderr.strip()[-300:]}", stderr=stderr, returncode=returncode)


def _verb(args: Sequence[str]) -> str:
    """The subcommand, past any `-c key=value` and `--git-dir DIR` options."""
    rest = list(args)
    while rest and rest[0].startswith("-"):
        rest = rest[2:] if rest[0] in ("-c", "--git-dir", "-C") else rest[1:]
    return rest[0] if rest else ""


def output(args: Sequence[str], *, cwd: Path | None = None, extra_env: Mapping[str, str] | None = None,
           timeout_s: float | None = DEFAULT_TIMEOUT_S) -> str:
    """stdout of a hardened `git ARGS` as text (undecodable bytes replaced)."""
    return run(args, cwd=cwd, extra_env=extra_env, timeout_s=timeout_s).stdout
