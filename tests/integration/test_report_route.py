"""report.html served to reviewers by the host service: the real aiohttp app on loopback, a per-trial
read-only link; a wrong token, another trial's token, a traversal or a symlink all get the same 404."""

from __future__ import annotations

import asyncio
import http.client
import inspect
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiohttp import web

from orchestrator.config import Settings, load_settings
from orchestrator.forge.local import LocalForge
from orchestrator.grading import grade
from orchestrator.report.access import report_path, report_token, report_url
from orchestrator.service.app import create_app
from orchestrator.services import Services
from orchestrator.store import Store, Trial, utcnow
from tests.conftest import free_port
from tests.fakes.github.world import commit_tree
from tests.fixtures.bundle_builder import MINI_TEMPLATE, careful_session

pytestmark = pytest.mark.unit

PAGE = "<!DOCTYPE html><html><body><h1>Trial report</h1></body></html>"


@contextmanager
def serving(app: web.Application, port: int | None = None) -> Iterator[int]:
    """The app on a loopback port in a thread with its own event loop, as `trial serve` runs it."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    port = port or free_port()
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(20)
    try:
        yield port
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(20)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(20)


def get(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """A raw request: the path goes out byte for byte, with no client-side normalisation of `..`."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


@pytest.fixture
def served(trial_home: Path) -> Iterator[tuple[Settings, Store, int]]:
    settings = load_settings({"service.public_host": "trial.example.test", "service.port": 7717})
    store = Store.open(settings.home)
    for trial_id in ("t-one", "t-two"):
        bundle = settings.evidence_dir / trial_id
        bundle.mkdir(parents=True)
        (bundle / "report.html").write_text(PAGE.replace("Trial report", f"Trial report {trial_id}"))
        (bundle / "manifest.json").write_text("{}")
    (settings.evidence_dir / "t-link").mkdir()
    (settings.evidence_dir / "t-link" / "report.html").symlink_to(settings.home / "secret.key")
    with serving(_app(settings, store)) as port:
        yield settings, store, port
    store.close()


def _app(settings: Settings, store: Store) -> web.Application:
    # The service's deadline watcher (where this version has one) is not what these tests are about.
    quiet = {"watch_deadlines": False} if "watch_deadlines" in inspect.signature(create_app).parameters else {}
    return create_app(settings, store, **quiet)


def test_the_link_serves_the_trials_report_read_only(served: tuple[Settings, Store, int]) -> None:
    settings, store, port = served
    url = report_url(settings, store, "t-one")
    assert url is not None and url.startswith("http://trial.example.test:7717/reports/t-one/")
    path = urlsplit(url).path
    status, headers, body = get(port, path)
    assert status == 200 and body.decode() == PAGE.replace("Trial report", "Trial report t-one")
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in headers["content-security-policy"]
    # Following a link out of the report must not hand the capability to GitHub or anyone else.
    assert headers["referrer-policy"] == "no-referrer" and headers["x-content-type-options"] == "nosniff"
    assert get(port, path, "HEAD")[0] == 200
    assert get(port, path, "POST")[0] == 405
    assert get(port, path, "PUT")[0] == 405


def test_a_wrong_token_or_another_trials_token_is_404(served: tuple[Settings, Store, int]) -> None:
    _, store, port = served
    good = report_token(store, "t-one")
    flipped = ("0" if good[0] != "0" else "1") + good[1:]
    for path in (report_path("t-one", flipped), report_path("t-one", good[:-1]),
                 report_path("t-one", good + "0"), report_path("t-one", report_token(store, "t-two")),
                 report_path("t-nope", report_token(store, "t-nope")), report_path("t-one", "")):
        status, _, body = get(port, path)
        assert status == 404, path
        assert b"Trial report" not in body


def test_traversal_and_symlinks_are_refused(served: tuple[Settings, Store, int]) -> None:
    settings, store, port = served
    token = report_token(store, "t-one")
    secret = (settings.home / "secret.key").read_bytes()
    probes = [
        f"/reports/t-one/{token}/../manifest.json",
        f"/reports/t-one/{token}/manifest.json",
        f"/reports/t-one/{token}/%2e%2e/%2e%2e/secret.key",
        f"/reports/..%2F..%2Fsecret.key/{report_token(store, '../../secret.key')}/report.html",
        f"/reports/%2e%2e/{report_token(store, '..')}/report.html",
        f"/reports/t-one%2F..%2F..%2Fsecret.key/{token}/report.html",
        "/reports/../secret.key",
        "/reports/../../trial.db",
        report_path("t-link", report_token(store, "t-link")),  # a report.html that is a symlink
    ]
    for path in probes:
        status, _, body = get(port, path)
        assert status == 404, path
        assert secret not in body and b"SQLite" not in body


def test_links_can_be_turned_off_and_moved_behind_a_proxy(trial_home: Path) -> None:
    store = Store.open(load_settings().home)
    off = load_settings({"review.report_links": False})
    assert report_url(off, store, "t-one") is None
    proxied = load_settings({"review.report_base_url": "https://trial.example.com/", "forge.kind": "github",
                             "forge.org": "acme"})
    url = report_url(proxied, store, "t-one")
    assert url == f"https://trial.example.com/reports/t-one/{report_token(store, 't-one')}/report.html"
    # On GitHub a link to the host's own address would be dead for reviewers: none unless configured.
    assert report_url(load_settings({"forge.kind": "github", "forge.org": "acme"}), store, "t-one") is None
    assert len(report_token(store, "t-one")) == 32 and report_token(store, "t-one") != report_token(store, "t-two")
    store.close()


def test_trial_grade_puts_the_served_link_in_the_comment(trial_home: Path, tmp_path: Path) -> None:
    """`trial grade` writes report.md with the link; the service serves that very page, anchors included."""
    port = free_port()
    settings = load_settings({"service.public_host": "127.0.0.1", "service.port": port})
    store = Store.open(settings.home)
    now = utcnow()
    forge = LocalForge(settings, store)
    repo = forge.create_repo("t-careful", "t-careful", "the PR the report is posted on")
    work = tmp_path / "work"
    commit_tree(work, {"README.md": "# calc\n"}, "Starter")
    forge.push(repo, work, "main")
    identity = ["-c", "user.name=Carol", "-c", "user.email=carol@example.com"]
    subprocess.run(["git", "checkout", "-q", "-b", "feature"], cwd=work, check=True)
    subprocess.run(["git", *identity, "commit", "-q", "--allow-empty", "-m", "Work"], cwd=work, check=True)
    forge.push(repo, work, "feature")
    store.create_trial(Trial(id="t-careful", template="mini", candidate="carol", agent="claude-code",
                             state="collected", created_at=now, updated_at=now, hours=1.0, budget_usd=1.0,
                             data={"repo": repo.to_json()}))
    settings.evidence_dir.mkdir(parents=True)
    shutil.move(careful_session(tmp_path / "session"), settings.evidence_dir / "t-careful")
    templates = tmp_path / "templates"
    shutil.copytree(MINI_TEMPLATE, templates / "mini")
    services = Services.from_settings(settings.model_copy(update={"templates_dir": templates}),
                                      sandbox=object())  # type: ignore[arg-type]  # no image: hidden tests not run
    outcome = grade(services, "t-careful", post=True)
    text = (outcome.bundle / "report.md").read_text()
    # What reviewers read on the PR is this report, link included.
    [pull] = forge.pull_requests(repo)
    assert [c["body"] for c in pull.comments] == [text] and outcome.comment_url
    [url] = re.findall(r"\[full report with timeline\]\((http://[^)]+)\)", text)
    assert url == report_url(settings, store, "t-careful")
    with serving(_app(settings, store), port):
        status, _, body = get(port, urlsplit(url).path)
    assert status == 200 and body == (outcome.bundle / "report.html").read_bytes()
    fragments = set(re.findall(re.escape(url) + r"#([\w-]+)\)", text))
    assert any(f.startswith("event-") for f in fragments)
    assert all(f'id="{fragment}"'.encode() in body for fragment in fragments)
    store.close()
