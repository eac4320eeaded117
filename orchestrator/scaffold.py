"""`trial templates new NAME`: a new template folder that passes `trial templates check` at once.

The scaffold is a tiny HTTP service in the chosen language (python, go or typescript) with a
trivial brief (add GET /sum), one planted defect (the greeting page echoes the visitor's name
without HTML escaping), hidden tests in the service shape (pytest over HTTP, so the results
come from a container that holds none of the candidate's code), a reference solution and the
patch that puts the defect back. Every file says in comments what a team replaces.

The files live in orchestrator/scaffold_data/<language>/ as three trees: `starter/` (what the
candidate gets), `reference/` (only the files the solution changes, whole) and `defect/` (the
reference's files with the defect put back); the patches are computed from them, so a
scaffold's patches always apply. `shared/` holds what every language shares. Python files
there end in `.tmpl` (dropped when written) so this repository's linters leave them alone.
"""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path
from typing import Literal

from orchestrator.catalog import NAME_RE, Track, load_template, require_complete
from orchestrator.errors import TemplateError

Language = Literal["python", "go", "typescript"]
LANGUAGES: tuple[Language, ...] = ("python", "go", "typescript")
DATA = Path(__file__).resolve().parent / "scaffold_data"


def make_patch(old: dict[str, str], new: dict[str, str]) -> str:
    """A unified diff `git apply` takes, from path → text before and after (absent: no file)."""
    chunks: list[str] = []
    for path in sorted(set(old) | set(new)):
        before, after = old.get(path), new.get(path)
        if before == after:
            continue
        header = f"diff --git a/{path} b/{path}\n"
        if before is None:
            header += "new file mode 100644\n"
        elif after is None:
            header += "deleted file mode 100644\n"
        lines = difflib.unified_diff((before or "").splitlines(keepends=True), (after or "").splitlines(keepends=True),
                                     "/dev/null" if before is None else f"a/{path}",
                                     "/dev/null" if after is None else f"b/{path}", n=3)
        body = "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)
        chunks.append(header + body)
    return "".join(chunks)


def _tree(folder: Path) -> dict[str, str]:
    """path → text; `x.py.tmpl` is `x.py` (so this repo's linters and type checker skip the data)."""
    if not folder.is_dir():
        return {}
    return {p.relative_to(folder).as_posix().removesuffix(".tmpl"): p.read_text()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def scaffold(root: Path, name: str, language: str, track: str) -> Path:
    """Write templates_dir/NAME from the scaffold for `language`; nothing is left behind on error."""
    if not NAME_RE.match(name):
        raise TemplateError(f"'{name}' is not a template name (lowercase letters, digits and '-')",
                            "pick a name like `billing-api`")
    if language not in LANGUAGES:
        raise TemplateError(f"no scaffold for language '{language}'", f"use one of: {', '.join(LANGUAGES)}")
    if track not in Track.__args__:  # type: ignore[attr-defined]
        raise TemplateError(f"'{track}' is not a track", "use builder, specialist or design")
    target = root / name
    if target.exists():
        raise TemplateError(f"{target} already exists", "pick another name or remove the folder")
    values = {"NAME": name, "TRACK": track, "LANGUAGE": language}
    shared, own = DATA / "shared", DATA / language
    starter = {**_tree(own / "starter")}
    reference = {**starter, **_tree(own / "reference")}
    defect = {**reference, **_tree(own / "defect")}
    staging = root / f".{name}.scaffold"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        files: dict[str, str] = {}
        for base in (shared / "template", own / "template"):
            files.update(_tree(base))
        files.update({f"starter/{path}": text for path, text in starter.items()})
        files["reference/solution.patch"] = make_patch(starter, reference)
        files["reference/defect.patch"] = make_patch(reference, defect)
        for path, text in files.items():
            dest = staging / path
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(_fill(text, values))
        require_complete(load_template(staging))  # a scaffold that does not load is our bug
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
