"""`trial verify ID`: prove a bundle is byte for byte what the collector wrote and signed.

Checks, in this order, and names the first that fails:
1. manifest.json is there and is JSON;
2. manifest.sig is the operator's (or a given public key's) signature over its exact bytes;
3. every file the manifest lists is there, a plain file, with the listed size and sha256
   (so any byte of it, a final newline included, is covered);
4. no file is in the bundle that the manifest does not list (reports from `trial grade`
   aside: grading is repeatable and never evidence);
5. the bundle's gateway log is an intact hash chain (orchestrator.gateway.log.verify_chain),
   every request it stores as blocks rebuilds from blocks that match their names, and its
   record count and head are the ones the manifest recorded;
6. when the gateway's own log is at hand (the operator's data dir), it ends in that same head:
   records cut off the bundle's copy, or added to the live log after collect, show here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from orchestrator.config import Settings
from orchestrator.errors import NotFoundError, UsageError
from orchestrator.evidence.bundle import GATEWAY_LOG, MANIFEST, REPORT_FILES, sha256_file
from orchestrator.evidence.signing import (
    SIGNATURE,
    check_signature,
    fingerprint,
    load_public_key,
    operator_public_key,
)
from orchestrator.store import Store

UNSIGNED_FILES = frozenset({MANIFEST, SIGNATURE, *REPORT_FILES, *(f".{name}.tmp" for name in REPORT_FILES)})
"""Files a bundle may hold that the manifest does not list."""


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    detail: str
    path: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "ok": self.ok, "detail": self.detail, "path": self.path}


@dataclass
class BundleVerdict:
    bundle: Path
    key: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(finding.ok for finding in self.findings)

    @property
    def problems(self) -> list[Finding]:
        return [finding for finding in self.findings if not finding.ok]

    @property
    def first_difference(self) -> str | None:
        first = next(iter(self.problems), None)
        return first.detail if first else None

    def to_json(self) -> dict[str, Any]:
        return {"bundle": str(self.bundle), "ok": self.ok, "key": self.key,
                "first_difference": self.first_difference, "checked": len(self.findings),
                "problems": [finding.to_json() for finding in self.problems]}


def verify_bundle(bundle_dir: Path, public: Ed25519PublicKey, live_log: Path | None = None) -> BundleVerdict:
    verdict = BundleVerdict(bundle_dir, fingerprint(public))
    add = verdict.findings.append
    manifest_path = bundle_dir / MANIFEST
    if not manifest_path.is_file() or manifest_path.is_symlink():
        add(Finding("manifest", False, f"{MANIFEST} is missing", MANIFEST))
        return verdict
    raw = manifest_path.read_bytes()
    manifest = _parse(raw)
    if manifest is None:
        add(Finding("manifest", False, f"{MANIFEST} is not a JSON object", MANIFEST))
        return verdict
    signature = check_signature(raw, bundle_dir / SIGNATURE, public)
    add(Finding("signature", signature.ok, signature.detail, SIGNATURE))
    listed = manifest.get("files") if isinstance(manifest.get("files"), dict) else {}
    assert isinstance(listed, dict)  # noqa: S101 - narrowed above
    for rel, meta in sorted(listed.items()):
        add(_check_file(bundle_dir, str(rel), meta if isinstance(meta, dict) else {}))
    for path in sorted(bundle_dir.rglob("*")):
        rel = path.relative_to(bundle_dir).as_posix()
        if rel not in listed and rel not in UNSIGNED_FILES and (path.is_symlink() or not path.is_dir()):
            add(Finding("unlisted", False, f"{rel}: in the bundle but not in the manifest", rel))
    verdict.findings.extend(_check_gateway(bundle_dir, manifest, live_log))
    return verdict


def _parse(raw: bytes) -> dict[str, Any] | None:
    import json

    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _check_file(bundle_dir: Path, rel: str, meta: dict[str, Any]) -> Finding:
    path = bundle_dir / rel
    if path.is_symlink():
        return Finding("file", False, f"{rel}: is a link, not the file the manifest lists", rel)
    if not path.is_file():
        return Finding("file", False, f"{rel}: missing", rel)
    size = path.stat().st_size
    if size != meta.get("size"):
        return Finding("file", False, f"{rel}: {size} bytes, the manifest says {meta.get('size')}", rel)
    if sha256_file(path) != meta.get("sha256"):
        return Finding("file", False, f"{rel}: sha256 differs from the manifest (same size: a byte changed)", rel)
    return Finding("file", True, f"{rel}: sha256 matches", rel)


def _check_gateway(bundle_dir: Path, manifest: dict[str, Any], live_log: Path | None) -> list[Finding]:
    from orchestrator.gateway.log import verify_chain

    recorded = manifest.get("gateway") if isinstance(manifest.get("gateway"), dict) else {}
    assert isinstance(recorded, dict)  # noqa: S101 - narrowed above
    copy = bundle_dir / GATEWAY_LOG
    findings: list[Finding] = []
    if not copy.exists():
        if int(recorded.get("records") or 0) > 0:
            findings.append(Finding("gateway_chain", False, f"{GATEWAY_LOG} is missing but the manifest recorded "
                                                            f"{recorded.get('records')} records", GATEWAY_LOG))
        return findings
    chain = verify_chain(copy)
    if chain.ok:
        findings.append(Finding("gateway_chain", True, f"{GATEWAY_LOG}: {chain.reason}", GATEWAY_LOG))
    elif recorded.get("chain_ok") is False and chain.records == recorded.get("records") \
            and chain.head == recorded.get("head"):
        # Broken before collect (a gateway killed mid-write), and recorded so in the signed
        # manifest: the bundle is unchanged; the records after the break were never trusted.
        findings.append(Finding("gateway_chain", True, f"{GATEWAY_LOG}: unchanged since collect, where the "
                                                       f"manifest recorded it broken: {chain.reason}", GATEWAY_LOG))
    else:
        findings.append(Finding("gateway_chain", False, f"{GATEWAY_LOG}: {chain.reason}", GATEWAY_LOG))
    if not recorded.get("head"):
        findings.append(Finding("gateway_head", False, "the manifest records no gateway chain head: the log cannot "
                                                       "be tied to the signature", GATEWAY_LOG))
        return findings
    same = chain.head == recorded.get("head") and chain.records == recorded.get("records")
    findings.append(Finding("gateway_head", same,
                            f"{GATEWAY_LOG}: {chain.records} records ending in {chain.head[:16]}"
                            + ("" if same else f", the manifest recorded {recorded.get('records')} ending in "
                                               f"{str(recorded.get('head'))[:16]}"), GATEWAY_LOG))
    if live_log is not None and live_log.is_file():
        live = verify_chain(live_log)
        same = live.ok and live.head == recorded.get("head") and live.records == recorded.get("records")
        findings.append(Finding("gateway_live", same,
                                f"the gateway's own log ({live_log}) has {live.records} records ending in "
                                f"{live.head[:16]}" + ("" if same else f": not the {recorded.get('records')} "
                                                                         "the bundle recorded"), str(live_log)))
    return findings


def verify_trial_bundle(settings: Settings, store: Store | None, trial_id: str | None, *,
                        bundle_dir: Path | None = None, public_key: Path | None = None) -> BundleVerdict:
    """A trial's bundle in this data dir (checked against the live gateway log too), or any copy of one."""
    from orchestrator.gateway.log import log_path

    live: Path | None = None
    if bundle_dir is None:
        if not trial_id or store is None:
            raise UsageError("verify needs a trial ID, --bundle DIR or --log FILE", "e.g. trial verify t1a2b3c4")
        trial = store.get_trial(trial_id)
        bundle_dir = settings.evidence_dir / trial.id
        live = log_path(settings.home, trial.id)
    if not (bundle_dir / MANIFEST).is_file():
        raise NotFoundError(f"{bundle_dir} holds no evidence bundle (no {MANIFEST})",
                            "run `trial collect ID` first, or name the folder with --bundle DIR")
    key = load_public_key(public_key) if public_key else operator_public_key(settings.home)
    return verify_bundle(bundle_dir, key, live)
