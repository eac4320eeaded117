"""Cut the response schemas of the operations our fake GitHub serves out of GitHub's OpenAPI description.

GitHub publishes its REST description on the npm registry as `@octokit/openapi`; the
whole package unpacks to ~400 MB, the description we need is one 13 MB file in it. This
script fetches the package with `npm pack` (or reads a file given with --source), keeps
only the operations listed in OPERATIONS with the component schemas they reach, turns
OpenAPI 3.0's `nullable` into plain JSON Schema, drops examples and prose, and writes
openapi-extract.json beside itself. tests/fakes/github/schema.py validates every response
of the fake against it.

    python tests/fakes/github/make_openapi_extract.py              # npm pack the newest
    python tests/fakes/github/make_openapi_extract.py --source api.github.com.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "openapi-extract.json"
PACKAGE = "@octokit/openapi"
MEMBER = "package/generated/api.github.com.json"

# Every operation the fake answers. Keep in step with tests/fakes/github_server.py.
OPERATIONS: list[tuple[str, str]] = [
    ("GET", "/meta"),
    ("GET", "/app"),
    ("GET", "/user"),
    ("GET", "/users/{username}"),
    ("GET", "/users/{username}/keys"),
    ("GET", "/orgs/{org}"),
    ("GET", "/orgs/{org}/repos"),
    ("POST", "/orgs/{org}/repos"),
    ("POST", "/app/installations/{installation_id}/access_tokens"),
    ("GET", "/repos/{owner}/{repo}"),
    ("PATCH", "/repos/{owner}/{repo}"),
    ("DELETE", "/repos/{owner}/{repo}"),
    ("PUT", "/repos/{owner}/{repo}/topics"),
    ("GET", "/repos/{owner}/{repo}/activity"),
    ("PUT", "/repos/{owner}/{repo}/branches/{branch}/protection"),
    ("GET", "/repos/{owner}/{repo}/keys"),
    ("POST", "/repos/{owner}/{repo}/keys"),
    ("DELETE", "/repos/{owner}/{repo}/keys/{key_id}"),
    ("GET", "/repos/{owner}/{repo}/collaborators"),
    ("PUT", "/repos/{owner}/{repo}/collaborators/{username}"),
    ("DELETE", "/repos/{owner}/{repo}/collaborators/{username}"),
    ("GET", "/repos/{owner}/{repo}/invitations"),
    ("DELETE", "/repos/{owner}/{repo}/invitations/{invitation_id}"),
    ("GET", "/user/repository_invitations"),
    ("PATCH", "/user/repository_invitations/{invitation_id}"),
    ("GET", "/repos/{owner}/{repo}/issues"),
    ("POST", "/repos/{owner}/{repo}/issues"),
    ("GET", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
    ("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
    ("PATCH", "/repos/{owner}/{repo}/issues/comments/{comment_id}"),
    ("GET", "/repos/{owner}/{repo}/pulls"),
    ("POST", "/repos/{owner}/{repo}/pulls"),
    ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}"),
    ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/files"),
    ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/commits"),
    ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews"),
    ("POST", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews"),
    ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/comments"),
    ("POST", "/repos/{owner}/{repo}/pulls/{pull_number}/comments"),
    ("POST", "/repos/{owner}/{repo}/pulls/{pull_number}/comments/{comment_id}/replies"),
    ("POST", "/repos/{owner}/{repo}/check-runs"),
]

# Keys that only document; dropping them takes the extract from megabytes to kilobytes.
_PROSE = {"example", "examples", "description", "title", "externalDocs", "deprecated", "x-github"}


def fetch_description(workdir: Path) -> Path:
    """`npm pack` the package and pull the one file we need out of the tarball."""
    subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=workdir, check=True, capture_output=True)
    tarball = next(workdir.glob("octokit-openapi-*.tgz"))
    with tarfile.open(tarball) as archive:
        member = archive.getmember(MEMBER)
        source = archive.extractfile(member)
        if source is None:
            raise SystemExit(f"{tarball} has no {MEMBER}")
        target = workdir / "api.github.com.json"
        target.write_bytes(source.read())
    return target


def _strip(node: Any) -> Any:
    if isinstance(node, dict):
        cleaned = {k: _strip_properties(v) if k in ("properties", "patternProperties") else _strip(v)
                   for k, v in node.items() if k not in _PROSE}
        if cleaned.pop("nullable", False):
            # OpenAPI 3.0 `nullable` has no JSON Schema meaning: say "this, or null".
            return {"anyOf": [cleaned, {"type": "null"}]}
        return cleaned
    if isinstance(node, list):
        return [_strip(item) for item in node]
    return node


def _strip_properties(properties: dict[str, Any]) -> dict[str, Any]:
    # Property names are data, not prose: a field called "description" stays.
    return {name: _strip(schema) for name, schema in properties.items()}


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.add(ref)
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for item in node:
            found |= _refs(item)
    return found


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def extract(doc: dict[str, Any]) -> dict[str, Any]:
    operations: dict[str, Any] = {}
    for method, path in OPERATIONS:
        operation = doc["paths"][path][method.lower()]
        responses: dict[str, Any] = {}
        for status, declared in operation["responses"].items():
            response = _resolve(doc, declared["$ref"]) if "$ref" in declared else declared
            content = response.get("content", {})
            media = content.get("application/json") or content.get("application/scim+json")
            responses[status] = _strip(media["schema"]) if media else None
        operations[f"{method} {path}"] = {"operationId": operation["operationId"], "responses": responses}

    schemas: dict[str, Any] = {}
    pending = _refs(operations)
    while pending:
        ref = pending.pop()
        name = ref.rsplit("/", 1)[-1]
        if not ref.startswith("#/components/schemas/") or name in schemas:
            continue
        schemas[name] = _strip(_resolve(doc, ref))
        pending |= _refs(schemas[name])
    return {
        "source": {"package": PACKAGE, "file": MEMBER, "api_version": doc["info"]["version"]},
        "operations": operations,
        "components": {"schemas": dict(sorted(schemas.items()))},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, help="api.github.com.json already on disk")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = args.source or fetch_description(Path(tmp))
        doc = json.loads(source.read_text())
        result = extract(doc)
    OUTPUT.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    print(f"{OUTPUT}: {len(result['operations'])} operations, {len(result['components']['schemas'])} schemas")


if __name__ == "__main__":
    main()
