"""In-memory preference storage (the prototype keeps nothing across restarts)."""

from __future__ import annotations

import copy
import threading
from typing import Any

DEFAULT: dict[str, Any] = {"opt_out": [], "quiet_hours": None}


class PreferenceStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._prefs: dict[str, dict[str, Any]] = {}

    def get(self, user: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._prefs.get(user, DEFAULT))

    def put(self, user: str, prefs: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._prefs[user] = copy.deepcopy(prefs)
            return copy.deepcopy(prefs)
