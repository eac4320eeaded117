"""Evidence refs (`commit:<sha>`, `pr:<n>`, `comment:<url>`, `event:<i>`, `test:<id>`) as labels and links."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import quote

_MENTION = re.compile(r"@(?=[\w-])")


@dataclass(frozen=True)
class Links:
    repo_url: str | None = None
    """Web URL of the repository (https only: a local forge's path is no link)."""
    html_url: str | None = None
    """Where report.html can be opened; None: events are named, not linked, in the PR comment."""
    pr_url: str | None = None

    @classmethod
    def create(cls, repo_url: str | None, html_url: str | None, pr_url: str | None) -> Links:
        def web(url: str | None) -> str | None:
            return url.rstrip("/") if url and url.startswith(("https://", "http://")) else None

        return cls(web(repo_url), web(html_url) if html_url else None, web(pr_url))

    def resolve(self, ref: str, *, in_html: bool = False) -> tuple[str, str | None]:
        """(label, url or None) for one evidence ref."""
        kind, _, value = ref.partition(":")
        if kind == "commit":
            # The forge's page where there is one; the commit's row in report.html otherwise (local forge).
            return value[:8], f"{self.repo_url}/commit/{value}" if self.repo_url else self.anchor(
                f"commit-{value}", in_html=in_html)
        if kind == "pr":
            return f"PR #{value}", self.pr_url or (f"{self.repo_url}/pull/{value}" if self.repo_url else None)
        if kind == "comment":
            return "comment", value if value.startswith(("https://", "http://")) else None
        if kind == "event":
            return f"event {value}", self.anchor(f"event-{value}", in_html=in_html)
        if kind == "test":
            return value, self.anchor(fragment_for_test(value), in_html=in_html)
        return ref, None

    def file_at(self, sha: str, path: str, line: int = 0) -> str | None:
        """A file (and line) of a commit on the forge; None where the forge has no web page (local)."""
        if not self.repo_url or not re.fullmatch(r"[0-9a-f]{7,64}", sha) or not path:
            return None
        # Paths are the candidate's: quoted, so no `)` or space can end or bend a Markdown link.
        return f"{self.repo_url}/blob/{sha}/{quote(path, safe='/')}" + (f"#L{line}" if line > 0 else "")

    def anchor(self, name: str, *, in_html: bool) -> str | None:
        """A place in report.html: a fragment inside the page, or the page's URL plus the fragment."""
        if in_html:
            return f"#{name}"
        return f"{self.html_url}#{name}" if self.html_url else None


def fragment_for_test(test_id: str) -> str:
    """A test's anchor in report.html: test ids hold `::`, `/`, `[` and spaces, so they are hashed."""
    return "test-" + hashlib.sha256(test_id.encode()).hexdigest()[:16]


def md_text(text: object, limit: int | None = None) -> str:
    """Text from the evidence, made inert in Markdown: no markup, links, HTML or @-mentions."""
    flat = " ".join(str(text).split())
    if limit is not None and len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    for char in "\\`*_[]|#~":
        flat = flat.replace(char, "\\" + char)
    # Entities rather than escapes: no Markdown or HTML reading can turn these back into tags.
    flat = flat.replace("<", "&lt;").replace(">", "&gt;")
    return _MENTION.sub("@\u200b", flat)


def md_link(label: str, url: str | None) -> str:
    return f"[{md_text(label)}]({url})" if url else md_text(label)
