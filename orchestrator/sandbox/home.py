"""Files the launch writes into the sandbox: the home (environment, git access, agent config) and
sshd's root-owned folder (authorized keys, session environment).

sshd sessions do not inherit the container's environment, so the trial's variables go both into
`~/.trial/env.sh` (sourced by login and interactive shells, and by `docker exec` shells) and into
one `SetEnv` line of `SSHD_DIR/session.conf`, which the image's sshd config includes (so `ssh host
cmd` has them too). Both that file and `authorized_keys` are owned by root: the candidate (uid 1000,
no capabilities) can read them but neither edit nor replace them, so a key or a variable of their
own never gets into a login. The candidate's `~/.ssh/environment` and `~/.ssh/rc` are ignored
(PermitUserEnvironment no, PermitUserRC no).
"""

from __future__ import annotations

import io
import re
import shlex
import tarfile
import time

CANDIDATE_UID = 1000
ROOT_UID = 0
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def env_sh(env: dict[str, str]) -> str:
    lines = ["# Written by trial at launch: the sandbox's environment (gateway, token, agent)."]
    lines += [f"export {key}={shlex.quote(value)}" for key, value in sorted(env.items())]
    return "\n".join(lines) + "\n"


def sshd_session_conf(env: dict[str, str]) -> str:
    """One `SetEnv` line (sshd keeps only the first), values double-quoted with `\\` and `"` escaped.
    A variable whose name or value sshd cannot carry (a newline) is left to env.sh."""
    pairs = []
    for key, value in sorted(env.items()):
        if not _ENV_NAME.match(key) or "\n" in value or "\r" in value:
            continue
        quoted = value.replace("\\", "\\\\").replace('"', '\\"')
        pairs.append(f'{key}="{quoted}"')
    header = "# Written by trial at launch: the environment of every SSH session.\n"
    return header + (f"SetEnv {' '.join(pairs)}\n" if pairs else "")


def sshd_tar(authorized_keys: list[str], env: dict[str, str]) -> bytes:
    """`authorized_keys` and `session.conf` for SSHD_DIR, owned by root and mode 0644."""
    keys = "".join(key.strip() + "\n" for key in authorized_keys if key.strip())
    return _tar({"authorized_keys": (keys, 0o644), "session.conf": (sshd_session_conf(env), 0o644)},
                uid=ROOT_UID, dir_mode=0o755)


def home_tar(files: dict[str, tuple[str, int]]) -> bytes:
    """A tar of {path relative to home: (content, mode)}, owned by the candidate, with parent dirs."""
    return _tar(files, uid=CANDIDATE_UID, dir_mode=0o700)


def _tar(files: dict[str, tuple[str, int]], *, uid: int, dir_mode: int) -> bytes:
    buffer = io.BytesIO()
    now = time.time()
    dirs: set[str] = set()
    for rel in files:
        parts = rel.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:depth]))
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for directory in sorted(dirs):
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = dir_mode
            info.uid = info.gid = uid
            info.mtime = int(now)
            tar.addfile(info)
        for rel, (content, mode) in sorted(files.items()):
            data = content.encode()
            info = tarfile.TarInfo(rel)
            info.size = len(data)
            info.mode = mode
            info.uid = info.gid = uid
            info.mtime = int(now)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def gitconfig(entries: dict[str, str]) -> str:
    """`~/.gitconfig` holding `entries` ({"section[.subsection].name": value}), as `git config --global`
    would write them, so the launch sets them with the home's other files instead of a git process each."""
    sections: dict[tuple[str, str], list[str]] = {}
    for key, value in entries.items():
        section, _, rest = key.partition(".")
        subsection, _, name = rest.rpartition(".")
        if not section or not name or "\n" in subsection:
            raise ValueError(f"not a git config key: {key!r}")
        sections.setdefault((section, subsection), []).append(f"\t{name} = {_git_quote(value)}\n")
    out = []
    for (section, subsection), lines in sections.items():
        header = f'[{section} "{_git_escape(subsection)}"]' if subsection else f"[{section}]"
        out.append(header + "\n" + "".join(lines))
    return "".join(out)


def _git_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _git_quote(value: str) -> str:
    """A value in double quotes (so `;`, `#` and edge spaces stay in it), `\\`, `"` and newlines escaped."""
    return '"' + _git_escape(value).replace("\n", "\\n").replace("\t", "\\t") + '"'
