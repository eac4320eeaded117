"""How much one trial may ask of the gateway: the bounds that make it a hostile-input boundary.

The sandbox is the candidate's, so every request is input from an adversary who has read
this file. Each limit bounds one resource a trial could otherwise take from the host or
from the other trials (the first three are operator settings, `[gateway]` in trial.toml):

- `max_request_bytes`: one body (memory while it is read, the log line it becomes).
  Anthropic's own Messages limit is 32 MB; a larger body is refused with 413 and the
  connection closed without reading the rest.
- `max_in_flight`: concurrent exchanges of one trial (memory: at most this many bodies
  at once; upstream connections). Above it, 429, worth a retry.
- `log_quota_bytes`: the trial's log file on the host's disk. At the quota, requests are
  refused with 429 (not worth a retry) and the refusals logged, small, until
  `refusal_slack_bytes` more; refusals beyond that are counted in the service log only,
  so a flood cannot grow the file without bound.
  Requests admitted together are each checked against the size before them, so the
  file can pass the quota by at most `max_in_flight` records.
- `refused_head_chars`: a refused request is logged as its size, its sha256 and this
  many characters of its start, never whole.
- `default_output_tokens`: the output cap assumed for a request that names none, for the
  budget's reservation and for pricing an answer whose usage never came.
- `server_context_tokens`: the prompt reserved for a Responses request that continues a
  context held by the provider (`previous_response_id`, `conversation`): its body is
  small, its prompt may be the model's whole context window.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_request_bytes: int = 32 * 1024 * 1024
    max_in_flight: int = 16
    log_quota_bytes: int = 2 * 1024 * 1024 * 1024
    refusal_slack_bytes: int = 1024 * 1024
    refused_head_chars: int = 2048
    default_output_tokens: int = 32_768
    server_context_tokens: int = 400_000
