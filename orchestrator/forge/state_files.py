"""The host's per-trial files of the GitHub forge under `<data>/forge/github/`.

The host service's git proxy writes, per trial, the host push log (`<trial>.pushes.tsv`) and
the pack bytes taken so far (`<trial>.pack-bytes`, the size quota); forge/github.py reads them
at collect. They belong to the trial: teardown removes them, and `trial gc` finds those of
trials that are gone or closed (a trial torn down before teardown removed them, or a store
that was reset).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SUFFIXES = (".pushes.tsv", ".pack-bytes")


@dataclass(frozen=True)
class StateFile:
    path: Path
    trial_id: str


def state_dir(forge_dir: Path) -> Path:
    return forge_dir / "github"


def state_files(forge_dir: Path) -> list[StateFile]:
    """Every per-trial file in the GitHub state folder (none if it does not exist)."""
    folder = state_dir(forge_dir)
    if not folder.is_dir():
        return []
    found: list[StateFile] = []
    for path in sorted(folder.iterdir()):
        for suffix in SUFFIXES:
            if path.name.endswith(suffix) and path.is_file() and not path.is_symlink():
                found.append(StateFile(path, path.name[: -len(suffix)]))
    return found


def remove_trial_files(forge_dir: Path, trial_id: str) -> list[Path]:
    """Remove one trial's files; the paths removed."""
    removed: list[Path] = []
    for suffix in SUFFIXES:
        path = state_dir(forge_dir) / f"{trial_id}{suffix}"
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append(path)
    return removed
