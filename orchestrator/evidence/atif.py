"""The timeline as a Harbor ATIF trajectory (Agent Trajectory Interchange Format, v1.4).

Existing trajectory viewers open ATIF, so a reviewer can replay a trial in them. ATIF is
a conversation: user steps, agent steps (message, model, tool calls with their
observations, token metrics) and system steps. Our timeline maps onto it like this:
    user_prompt                 → a `user` step
    assistant_message           → an `agent` step (tool calls that follow join it)
    tool_call                   → a tool call on the current agent step
    tool_result / tool_rejected → that call's observation (rejections marked in `extra`)
    interrupt, commit, push, pr_*, review → `system` steps, the event kept in `extra`
Gateway events mirror what the agent's own transcript says, so they are exported only
for exchanges no transcript showed (flagged in `extra`). Rules the format sets and we
keep: step ids run 1, 2, 3…; model, tool calls and metrics appear on agent steps only;
an observation names the tool call it answers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

SCHEMA_VERSION = "ATIF-v1.4"
AGENT_KINDS = ("assistant_message", "tool_call")
RESULT_KINDS = ("tool_result", "tool_rejected")


def to_atif(events: list[dict[str, Any]], trial: Mapping[str, Any] | Any) -> dict[str, Any]:
    """One trajectory for the trial; `trial` is a store Trial or its JSON (manifest['trial'])."""
    info = _trial_json(trial)
    agent_sources = {str(info.get("agent") or "")}
    builder = _Builder()
    transcript_seen = any(e.get("source") not in ("gateway", "git", "forge") for e in events)
    for item in events:
        source, kind = str(item.get("source") or ""), str(item.get("kind") or "")
        if source == "gateway" and transcript_seen and kind != "interrupt":
            continue  # the transcript's own events carry these exchanges
        if kind == "user_prompt":
            builder.user(item)
        elif kind in AGENT_KINDS:
            builder.agent(item)
        elif kind in RESULT_KINDS:
            builder.observation(item)
        else:
            builder.system(item)
    steps = builder.steps
    metrics = [step["metrics"] for step in steps if "metrics" in step]
    models = [step["model_name"] for step in steps if step.get("model_name")]
    trajectory: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "session_id": str(info.get("id") or ""),
        "agent": {
            "name": str(info.get("agent") or "none"),
            "version": str(info.get("agent_version") or "unknown"),
            **({"model_name": max(set(models), key=models.count)} if models else {}),
        },
        "steps": steps,
        "final_metrics": {
            "total_prompt_tokens": sum(m.get("prompt_tokens", 0) for m in metrics),
            "total_completion_tokens": sum(m.get("completion_tokens", 0) for m in metrics),
            "total_cached_tokens": sum(m.get("cached_tokens", 0) for m in metrics),
            "total_steps": len(steps),
        },
        "notes": "Exported by trial from the evidence timeline (events.jsonl). Sessions of the agent "
                 "are concatenated in time order; each step's extra.session names its session.",
        "extra": {"trial": {key: info.get(key) for key in ("id", "template", "candidate", "agent", "state")
                            if key in info},
                  "sessions": sorted({str(e.get("session")) for e in events
                                      if e.get("session") and e.get("source") in agent_sources})},
    }
    cost = sum(m.get("cost_usd", 0.0) for m in metrics)
    if cost:
        trajectory["final_metrics"]["total_cost_usd"] = round(cost, 6)
    return trajectory


def _trial_json(trial: Mapping[str, Any] | Any) -> Mapping[str, Any]:
    if isinstance(trial, Mapping):
        return trial
    to_json = getattr(trial, "to_json", None)
    if callable(to_json):
        data = to_json()
        if isinstance(data, Mapping):
            return data
    raise TypeError(f"to_atif needs a Trial or its JSON, got {type(trial).__name__}")


class _Builder:
    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = []
        self.open_agent: dict[str, Any] | None = None
        self.call_steps: dict[str, dict[str, Any]] = {}

    def _add(self, item: Mapping[str, Any], source: str, message: str) -> dict[str, Any]:
        step: dict[str, Any] = {"step_id": len(self.steps) + 1, "source": source, "message": message}
        if item.get("ts"):
            step["timestamp"] = str(item["ts"])
        step["extra"] = {"event_source": item.get("source"), "kind": item.get("kind"),
                         **({"session": item["session"]} if item.get("session") else {}),
                         **({"witness": item["witness"]} if item.get("witness") else {})}
        data = item.get("data")
        if isinstance(data, Mapping):
            flags = {key: data[key] for key in ("missing_from_gateway", "gateway_seq", "sidechain") if key in data}
            step["extra"].update(flags)
        self.steps.append(step)
        return step

    def user(self, item: Mapping[str, Any]) -> None:
        self.open_agent = None
        self._add(item, "user", str(item.get("text") or ""))

    def agent(self, item: Mapping[str, Any]) -> None:
        data = _data(item)
        step = self.open_agent
        same_session = step is not None and step["extra"].get("session") == item.get("session")
        if item.get("kind") == "assistant_message" or step is None or not same_session:
            message = str(item.get("text") or "") if item.get("kind") == "assistant_message" else ""
            step = self._add(item, "agent", message)
            self.open_agent = step
        if data.get("model"):
            step.setdefault("model_name", str(data["model"]))
        metrics = _metrics(data.get("usage"), data.get("cost_usd"))
        if metrics:
            step["metrics"] = _merge_metrics(step.get("metrics"), metrics)
        if item.get("kind") == "tool_call":
            call_id = str(data.get("tool_use_id") or f"call-{step['step_id']}-{len(step.get('tool_calls', []))}")
            arguments = data.get("input") if isinstance(data.get("input"), Mapping) else {"text": item.get("text")}
            step.setdefault("tool_calls", []).append({
                "tool_call_id": call_id, "function_name": str(data.get("tool") or "tool"),
                "arguments": dict(arguments) if isinstance(arguments, Mapping) else {}})
            self.call_steps[call_id] = step

    def observation(self, item: Mapping[str, Any]) -> None:
        data = _data(item)
        call_id = str(data.get("tool_use_id") or "")
        step = self.call_steps.get(call_id)
        if step is None:
            # A result whose call we never saw (a transcript starting mid-turn): keep it visible.
            self.system(item)
            return
        result: dict[str, Any] = {"source_call_id": call_id, "content": str(item.get("text") or "")}
        step.setdefault("observation", {"results": []})["results"].append(result)
        if item.get("kind") == "tool_rejected":
            step["extra"].setdefault("rejected_calls", []).append(call_id)
        elif data.get("is_error"):
            step["extra"].setdefault("failed_calls", []).append(call_id)

    def system(self, item: Mapping[str, Any]) -> None:
        self.open_agent = None
        kind = str(item.get("kind") or "event")
        text = str(item.get("text") or "")
        step = self._add(item, "system", f"[{kind}] {text}".strip())
        data = item.get("data")
        if isinstance(data, Mapping):
            step["extra"]["data"] = json.loads(json.dumps(data, default=str))


def _data(item: Mapping[str, Any]) -> Mapping[str, Any]:
    data = item.get("data")
    return data if isinstance(data, Mapping) else {}


def _metrics(usage: Any, cost: Any) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    if isinstance(usage, Mapping):
        for ours, theirs in (("input_tokens", "prompt_tokens"), ("output_tokens", "completion_tokens"),
                             ("cached_tokens", "cached_tokens")):
            value = usage.get(ours)
            if isinstance(value, int | float) and not isinstance(value, bool):
                metrics[theirs] = int(value)
        if isinstance(usage.get("cost_usd"), int | float):
            metrics["cost_usd"] = float(usage["cost_usd"])
    if isinstance(cost, int | float) and not isinstance(cost, bool):
        metrics["cost_usd"] = float(cost)
    return metrics


def _merge_metrics(old: Any, new: dict[str, Any]) -> dict[str, Any]:
    merged = dict(old) if isinstance(old, Mapping) else {}
    for key, value in new.items():
        merged[key] = merged.get(key, 0) + value
    return merged
