"""The operator's ed25519 key, and the signature that makes a bundle defensible.

The manifest lists the sha256 of every file in the bundle and the gateway chain's head; a
signature over the manifest's exact bytes (`manifest.sig`) therefore covers the whole
bundle. The private key is made on first use under the data dir (`keys/`, 0700; the key
file 0600) and never leaves it; the public key is exported (`trial key export`) so a
third party can check a bundle with `trial verify --bundle DIR --public-key FILE`.

`manifest.sig` is one canonical JSON line; any other byte sequence is refused, so not
even whitespace in it can change unnoticed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from orchestrator.errors import EvidenceError, UsageError
from orchestrator.evidence.bundle import MANIFEST, MANIFEST_SIG

KEY_DIR = "keys"
KEY_FILE = "operator-ed25519.pem"
SIGNATURE = MANIFEST_SIG
ALGORITHM = "ed25519"
SIGNATURE_VERSION = 1


def key_path(home: Path) -> Path:
    return home / KEY_DIR / KEY_FILE


def fingerprint(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(serialization.Encoding.PEM,
                               serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def operator_key(home: Path) -> Ed25519PrivateKey:
    """The operator's signing key, created (0600, in a 0700 folder) the first time it is needed."""
    path = key_path(home)
    if not path.exists():
        _create(path)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise EvidenceError(f"{path} is readable by others (mode {mode:o})", f"chmod 600 {path}")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except ValueError as exc:
        raise EvidenceError(f"{path} is not a PEM private key", "restore it from a backup; bundles signed with it "
                            "verify only with its public key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise EvidenceError(f"{path} is not an ed25519 key", "move it away; a new key is made on next use")
    return key


def operator_public_key(home: Path) -> Ed25519PublicKey:
    """The operator's public key, for checking; never creates a key (a new one would verify nothing)."""
    if not key_path(home).exists():
        raise UsageError(f"no operator key at {key_path(home)}: this data dir never signed a bundle",
                         "check with the signer's key: --public-key FILE (they run `trial key export`)")
    return operator_key(home).public_key()


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    pem = Ed25519PrivateKey.generate().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption())
    # Unique per call, not per process: parallel collects in one process (a cohort) race here too.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # never replaces a key another process made meanwhile
    except FileExistsError:
        pass
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An exported public key (PEM), for checking bundles signed elsewhere."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path} is not a PEM public key", "export one with `trial key export`") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise UsageError(f"{path} is not an ed25519 public key", "export one with `trial key export`")
    return key


def signature_bytes(manifest: bytes, key: Ed25519PrivateKey) -> bytes:
    record = {"algorithm": ALGORITHM, "key": fingerprint(key.public_key()),
              "signature": base64.b64encode(key.sign(manifest)).decode("ascii"), "version": SIGNATURE_VERSION}
    return _canonical(record)


def _canonical(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode("ascii")


def sign_bundle(bundle_dir: Path, key: Ed25519PrivateKey) -> Path:
    """Write `manifest.sig`: the key's signature over manifest.json's exact bytes."""
    target = bundle_dir / SIGNATURE
    tmp = bundle_dir / f".{SIGNATURE}.tmp"
    tmp.write_bytes(signature_bytes((bundle_dir / MANIFEST).read_bytes(), key))
    tmp.replace(target)
    return target


@dataclass(frozen=True)
class SignatureCheck:
    ok: bool
    detail: str
    signer: str | None = None


def check_signature(manifest: bytes, signature_file: Path, public: Ed25519PublicKey) -> SignatureCheck:
    """Whether `signature_file` is exactly a signature by `public` over `manifest`."""
    if not signature_file.is_file():
        return SignatureCheck(False, f"{SIGNATURE} is missing: the bundle is unsigned")
    raw = signature_file.read_bytes()
    try:
        record = json.loads(raw)
    except ValueError:
        record = None
    if not isinstance(record, dict) or _canonical(record) != raw:
        return SignatureCheck(False, f"{SIGNATURE} is not in its one canonical form (a byte was changed)")
    expected = fingerprint(public)
    if record.get("algorithm") != ALGORITHM or record.get("version") != SIGNATURE_VERSION:
        return SignatureCheck(False, f"{SIGNATURE} names algorithm {record.get('algorithm')!r} version "
                                     f"{record.get('version')!r}, not {ALGORITHM} {SIGNATURE_VERSION}")
    if record.get("key") != expected:
        return SignatureCheck(False, f"signed by key {record.get('key')}, not by {expected}", record.get("key"))
    try:
        public.verify(base64.b64decode(str(record.get("signature")), validate=True), manifest)
    except (InvalidSignature, ValueError):
        return SignatureCheck(False, "the signature does not match manifest.json: the manifest or the "
                                     "signature changed after signing", expected)
    return SignatureCheck(True, f"signed by {expected}", expected)
