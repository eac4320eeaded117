"""The whole grade of a careful session (hidden tests on the real engine), then report.html opened in
headless Chromium (Debian's `chromium`, offline flags) and its screenshot checked for the timeline.

A second page, the same report with a tampering alert, must show the red alert box above the
timeline. Without chromium the test skips, and under CI=true it fails: CI must never pass having
rendered nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from graders.base import GradeContext
from graders.runner import grade_bundle
from orchestrator.catalog import load_template
from orchestrator.config import SandboxSettings
from orchestrator.evidence.bundle import Bundle
from orchestrator.report.html import COLORS, render_html
from orchestrator.report.model import Report
from orchestrator.sandbox.base import BuildRequest
from orchestrator.sandbox.docker import DockerBackend
from tests.conftest import BASE_IMAGE
from tests.fixtures.bundle_builder import MINI_TEMPLATE, careful_session

pytestmark = pytest.mark.e2e

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars")
WINDOW = (1280, 720)
MIN_MARK_RUN = 15  # timeline marks are 20 px tall; legend swatches only 10


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    message = "Debian's chromium package is not installed (apt-get install -y chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


def read_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and RGB rows of an 8-bit RGB/RGBA PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, idat, header = 8, b"", b""
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        position += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and color in (2, 6), (depth, color)
    channels = 3 if color == 2 else 4
    stride = width * channels
    raw = zlib.decompress(idat)
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            left = line[x - channels] if x >= channels else 0
            up = previous[x]
            corner = previous[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                estimate = left + up - corner
                pa, pb, pc = abs(estimate - left), abs(estimate - up), abs(estimate - corner)
                line[x] = (line[x] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        previous = line
        rows.append(bytes(line[i] for i in range(stride) if i % channels < 3))
    return width, height, rows


def mark_rows(rows: list[bytes], width: int, color: str) -> list[int]:
    """Top rows of every vertical run of `color` at least MIN_MARK_RUN pixels tall: the timeline marks."""
    wanted = bytes.fromhex(color.lstrip("#"))
    tops = set()
    for x in range(width):
        run = 0
        for y, row in enumerate(rows):
            if row[3 * x:3 * x + 3] == wanted:
                run += 1
                if run == MIN_MARK_RUN:
                    tops.add(y - MIN_MARK_RUN + 1)
            else:
                run = 0
    return sorted(tops)


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    backend = DockerBackend(SandboxSettings())
    dockerfile = (MINI_TEMPLATE / "Dockerfile").read_bytes()
    context_dir = tmp_path_factory.mktemp("image")
    (context_dir / "Dockerfile").write_bytes(dockerfile)
    tag = f"trial-tpl-mini-test:{hashlib.sha256(dockerfile + BASE_IMAGE.encode()).hexdigest()[:12]}"
    image = backend.build(BuildRequest(context_dir=context_dir, tag=tag, buildargs={"BASE_IMAGE": BASE_IMAGE})).tag
    bundle = Bundle(careful_session(tmp_path_factory.mktemp("careful")))
    template = load_template(MINI_TEMPLATE)
    context = GradeContext(template=template, sandbox=backend, image=image)
    report = grade_bundle(bundle, template, context)
    assert report.status == "complete", report.to_json()["graders"]
    first = (bundle.path / "report.json").read_bytes()
    grade_bundle(bundle, template, context)
    assert (bundle.path / "report.json").read_bytes() == first  # re-grading, hidden tests included, is stable
    return bundle


def test_the_html_report_shows_the_timeline_in_a_real_browser(graded: Bundle, tmp_path: Path) -> None:
    chromium = _chromium()
    screenshot = tmp_path / "report.png"
    result = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
         f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--screenshot={screenshot}",
         (graded.path / "report.html").as_uri()],
        capture_output=True, text=True, timeout=180, check=False)
    assert screenshot.is_file(), result.stderr[-2000:]
    width, height, rows = read_png(screenshot.read_bytes())
    assert (width, height) == WINDOW
    lanes = {name: mark_rows(rows, width, COLORS[name]) for name in ("prompt", "agent", "test_fail", "test_pass",
                                                                     "commit")}
    for name, tops in lanes.items():
        assert tops, f"no {name} mark on the timeline"
    # Lanes top to bottom: the candidate, the agent, tests, commits.
    assert max(lanes["prompt"]) < min(lanes["agent"]) < min(lanes["test_fail"]) < min(lanes["commit"])
    assert lanes["test_fail"][0] == lanes["test_pass"][0]  # one lane for test runs, failing then passing
    html = (graded.path / "report.html").read_text()
    assert html.count("<rect ") == len(graded.events())


ALERT_RED = "#cf222e"
"""The border of a critical alert (report.html's `.alert.critical`)."""


def _screenshot(chromium: str, page: Path, tmp_path: Path) -> tuple[int, int, list[bytes]]:
    screenshot = tmp_path / f"{page.stem}.png"
    result = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
         f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--screenshot={screenshot}", page.as_uri()],
        capture_output=True, text=True, timeout=180, check=False)
    assert screenshot.is_file(), result.stderr[-2000:]
    return read_png(screenshot.read_bytes())


def test_a_tampering_alert_is_red_and_above_the_timeline_in_a_real_browser(graded: Bundle, tmp_path: Path) -> None:
    chromium = _chromium()
    report = Report.from_json(json.loads((graded.path / "report.json").read_text()))
    report.alerts = [{"kind": "hidden_tests_tampered", "evidence_refs": ["event:3"],
                      "message": "Canary test_zz_must_fail passed: the run was rewritten. Hidden tests score 0."}]
    page = tmp_path / "alerted.html"
    page.write_text(render_html(report, graded.events()))
    width, _, rows = _screenshot(chromium, page, tmp_path)
    red = mark_rows(rows, width, ALERT_RED)  # the box's left and right borders: vertical red runs
    prompts = mark_rows(rows, width, COLORS["prompt"])
    assert red, "no red alert box on the first screen"
    assert prompts and max(red) < min(prompts)  # above the timeline, on the first screen
