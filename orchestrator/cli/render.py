"""Rendering for people (rich) and scripts (a versioned JSON envelope on stdout)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

JSON_VERSION = 1


class _LazyConsole:
    """A rich Console made on first use: rich costs ~20-45 ms of imports, and a command that only
    prints JSON (`trial launch --json`, as scripts and cohorts call it) never renders anything."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def _get(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)

    # Special methods are looked up on the type, not through __getattr__: rich's Live and status
    # enter the console (`with console:`) to buffer its output.
    def __enter__(self) -> Console:
        return self._get().__enter__()

    def __exit__(self, *exc: Any) -> None:
        self._get().__exit__(*exc)

    def __setattr__(self, name: str, value: Any) -> None:
        # rich's Live redirects a console by assigning its `file`: that must reach the real console.
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._get(), name, value)


# Typed as Console for callers; the proxy forwards every attribute to the real one.
out: Console = _LazyConsole(soft_wrap=True, highlight=False)  # type: ignore[assignment]
err: Console = _LazyConsole(stderr=True, highlight=False, soft_wrap=True)  # type: ignore[assignment]


def emit_json(command: str, data: Any) -> None:
    envelope = {"version": JSON_VERSION, "command": command, "ok": True, "data": data}
    _write_document(json.dumps(envelope, indent=2, sort_keys=True, default=str))


def emit_json_error(command: str, message: str, hint: str | None, exit_code: int) -> None:
    envelope = {"version": JSON_VERSION, "command": command, "ok": False,
                "error": {"message": message, "hint": hint, "exit_code": exit_code}}
    _write_document(json.dumps(envelope, indent=2, sort_keys=True))


def _write_document(text: str) -> None:
    """One JSON document, flushed whole: a pipe's reader gets each document as it is made. Without
    the flush, `trial reap --watch --json` into a pipe held its reports in stdout's block buffer
    until some 8 KB had gathered (about fifty passes)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


@contextmanager
def progress(title: str, *, quiet: bool = False) -> Iterator[Callable[[str], None]]:
    """A spinner on stderr that shows the current step; a no-op when quiet or not a terminal."""
    if quiet or not err.is_terminal:
        def say(step: str) -> None:
            if not quiet:
                err.print(f"[dim]·[/dim] {step}")
        yield say
        return
    with err.status(title) as status:
        def update(step: str) -> None:
            status.update(f"{title}: {step}")
            err.print(f"[dim]·[/dim] {step}")
        yield update
