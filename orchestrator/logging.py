"""structlog, configured once per process: console for people, JSON for machines.

Every record passes through `redact_secrets`, so a token that slips into an event's
fields is masked before it is written anywhere.

structlog (with asyncio and rich's traceback renderer behind it, ~0.1 s of imports) is loaded
on the first record that passes the configured level, not at import: a command that logs
nothing at or above it, such as a warm `trial launch` at the default WARNING, never loads it.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import MutableMapping
from typing import Any, Literal

# Names of fields whose values are secrets whatever they hold.
_SECRET_KEYS = re.compile(r"(token|secret|password|api[_-]?key|authorization|private[_-]?key)", re.I)
# Secret-looking values anywhere in a string: our trial tokens, provider and GitHub keys.
_SECRET_VALUES = re.compile(
    r"(trl_[A-Za-z0-9_-]{16,}|sk-[A-Za-z0-9_-]{16,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"
)
REDACTED = "***"


def redact_text(text: str) -> str:
    return _SECRET_VALUES.sub(REDACTED, text)


def redact_secrets(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        if _SECRET_KEYS.search(key) and key != "event":
            event_dict[key] = REDACTED
        elif isinstance(value, str):
            event_dict[key] = redact_text(value)
    return event_dict


_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "warn": logging.WARNING,
           "error": logging.ERROR, "exception": logging.ERROR, "critical": logging.CRITICAL,
           "fatal": logging.CRITICAL}
class _Setup:
    """What `configure` asked for, kept until structlog is loaded (module state, behind a lock)."""

    lock = threading.Lock()
    threshold: int | None = None
    """The level `configure` set; None until it runs (every record then goes to structlog as it stands)."""
    pending: tuple[str, int] | None = None
    """A `configure` not yet applied because structlog is not loaded yet."""


def configure(fmt: Literal["console", "json"] = "console", level: str = "INFO") -> None:
    number = logging.getLevelName(level.upper())
    if not isinstance(number, int):
        from orchestrator.errors import UsageError

        raise UsageError(f"unknown log level '{level}'", "use DEBUG, INFO, WARNING or ERROR")
    with _Setup.lock:
        _Setup.threshold = number
        _Setup.pending = (fmt, number)
    if "structlog" in sys.modules:
        _structlog()


def _structlog() -> Any:
    """structlog, imported and configured (with the last `configure`) on first use."""
    import structlog

    with _Setup.lock:
        if _Setup.pending is None:
            return structlog
        fmt, number = _Setup.pending
        _Setup.pending = None
        renderer: Any
        if fmt == "json":
            renderer = structlog.processors.JSONRenderer()
        else:
            renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        structlog.configure(
            processors=[
                structlog.contextvars.merge_contextvars,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                redact_secrets,
                structlog.processors.format_exc_info,
                renderer,
            ],
            wrapper_class=structlog.make_filtering_bound_logger(number),
            logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
            cache_logger_on_first_use=False,
        )
    return structlog


def _dropped(*_: Any, **__: Any) -> None:
    return None


class _Logger:
    """What `get_logger` returns: binds like a structlog logger; a record below the configured level
    is dropped here, anything else goes to a structlog logger made (and structlog loaded) on first need."""

    __slots__ = ("_bound", "_real")

    def __init__(self, bound: dict[str, Any]) -> None:
        self._bound = bound
        self._real: Any = None

    def bind(self, **more: Any) -> _Logger:
        return _Logger({**self._bound, **more})

    def new(self, **values: Any) -> _Logger:
        return _Logger(dict(values))

    def __getattr__(self, name: str) -> Any:
        level = _LEVELS.get(name)
        threshold = _Setup.threshold
        if level is not None and threshold is not None and level < threshold:
            return _dropped
        if self._real is None:
            self._real = _structlog().get_logger("trial", **self._bound)
        return getattr(self._real, name)


def get_logger(**bound: Any) -> Any:
    """A lazy logger: safe at import time, it takes the configuration in force when it logs."""
    return _Logger(bound)
