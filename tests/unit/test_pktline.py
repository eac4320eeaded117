"""The git proxy's view of a push: commands and pack size from the request, accepted refs from
the report, whatever the chunking."""

from __future__ import annotations

import pytest

from orchestrator.service.git_proxy import FLUSH_PKT, pkt, refusal_report, refused_refs
from orchestrator.service.pktline import Command, ProtocolError, PushReport, PushRequest

pytestmark = pytest.mark.unit

A, B, Z = "a" * 40, "b" * 40, "0" * 40


def _request() -> bytes:
    return (pkt(f"{A} {B} refs/heads/feature\0report-status side-band-64k agent=git/2.39\n".encode())
            + pkt(f"{B} {Z} refs/heads/old\n".encode()) + FLUSH_PKT + b"PACK" + b"\x00" * 1000)


@pytest.mark.parametrize("size", [1, 3, 7, 4096])
def test_commands_and_pack_bytes_are_read_in_any_chunking(size: int) -> None:
    data = _request()
    push = PushRequest()
    for at in range(0, len(data), size):
        push.feed(data[at:at + size])
    assert push.commands == [Command(A, B, "refs/heads/feature"), Command(B, Z, "refs/heads/old")]
    assert push.commands_read and push.side_band and "report-status" in push.capabilities
    assert push.pack_bytes == 1004


def test_a_stream_that_is_not_git_is_refused() -> None:
    with pytest.raises(ProtocolError):
        PushRequest().feed(b"GET / HTTP/1.1\r\n")


@pytest.mark.parametrize("side_band", [True, False])
def test_the_report_says_which_refs_were_accepted(side_band: bool) -> None:
    inner = (pkt(b"unpack ok\n") + pkt(b"ok refs/heads/feature\n") + pkt(b"ng refs/heads/old hook declined\n")
             + FLUSH_PKT)
    body = pkt(b"\x02Resolving deltas\n") + pkt(b"\x01" + inner[:9]) + pkt(b"\x01" + inner[9:]) + FLUSH_PKT \
        if side_band else inner
    report = PushReport(side_band)
    for at in range(0, len(body), 5):
        report.feed(body[at:at + 5])
    assert report.unpack_ok is True and report.accepted == ["refs/heads/feature"]
    assert report.rejected == {"refs/heads/old": "hook declined"}


def test_a_refused_push_is_answered_in_receive_packs_own_report() -> None:
    push = PushRequest()
    push.feed(pkt(f"{A} {B} refs/heads/main\0report-status side-band-64k\n".encode())
              + pkt(f"{A} {B} refs/heads/feature\n".encode()) + FLUSH_PKT)
    refused = refused_refs(push, "main")
    assert list(refused) == ["refs/heads/main"]
    report = PushReport(side_band=True)
    report.feed(refusal_report(push, refused))
    assert report.unpack_ok is True and report.accepted == []
    assert set(report.rejected) == {"refs/heads/main", "refs/heads/feature"}
