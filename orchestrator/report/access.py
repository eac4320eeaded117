"""The per-trial read-only link under which the host service serves report.html to reviewers.

The link carries a capability: an HMAC of the trial id under the store's server secret
(the key of every token digest, kept in the data dir), cut to 128 bits. Nothing is
stored, the same trial always gets the same link (so re-grading writes the same
report.md), and no one without the secret can derive another trial's link. Rotating the
secret revokes every link at once.
"""

from __future__ import annotations

import hmac
import re
from pathlib import Path

from orchestrator.config import Settings
from orchestrator.store import Store

REPORT_FILE = "report.html"
_PURPOSE = "trial.report-link/v1:"
"""Separates these digests from token digests: a token always starts with `trl_`."""
TOKEN_HEX = 32
TRIAL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def report_token(store: Store, trial_id: str) -> str:
    return store.digest(_PURPOSE + trial_id)[:TOKEN_HEX]


def report_path(trial_id: str, token: str) -> str:
    return f"/reports/{trial_id}/{token}/{REPORT_FILE}"


def base_url(settings: Settings) -> str | None:
    """Where reviewers reach the host service: `[review] report_base_url`, or on the local forge (whose
    reviewers sit at the host) the service's own address. On GitHub only the operator knows how
    reviewers reach the host (a proxy, a public bind), so without the setting there is no link."""
    if settings.review.report_base_url:
        return settings.review.report_base_url.rstrip("/")
    if settings.forge.kind != "local":
        return None
    host = settings.service.public_host
    return f"http://{f'[{host}]' if ':' in host else host}:{settings.service.port}"


def report_url(settings: Settings, store: Store, trial_id: str) -> str | None:
    """Where reviewers open this trial's report.html; None when there is no such place (see base_url)."""
    base = base_url(settings)
    if base is None or not settings.review.report_links or not TRIAL_ID.fullmatch(trial_id):
        return None
    return base + report_path(trial_id, report_token(store, trial_id))


def report_file(settings: Settings, store: Store, trial_id: str, token: str) -> Path | None:
    """The trial's report.html when `token` is its link's; None for anything else (answered 404)."""
    if not TRIAL_ID.fullmatch(trial_id) or not settings.review.report_links:
        return None
    if not hmac.compare_digest(token.encode(), report_token(store, trial_id).encode()):
        return None
    evidence = settings.evidence_dir.resolve()
    path = evidence / trial_id / REPORT_FILE
    # The bundle is written by the host, but a link must never lead anywhere else: no symlinks.
    if path.is_symlink() or path.parent.is_symlink() or not path.is_file() or path.resolve().parent.parent != evidence:
        return None
    return path
