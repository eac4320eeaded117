"""The LLM judge: a fixed rubric prompt sent through our gateway, the semantic reader of a session.

The rule-based signals give the base score; the judge, when a key for it exists, reads
what rules cannot (was this pushback right, does this spec leave the design open) and
moves each criterion it scores by at most `MAX_MOVE` of the criterion's range, its
agreement with the rules shown. Without a key, every result says the semantic reading
was not done.

The judge talks to the gateway like any client (Anthropic Messages or OpenAI Chat
Completions over plain HTTP), so its spend is logged and budgeted like everything else,
and the runtime needs no provider SDK. It must quote the evidence it scores: a score
whose quotes are not found verbatim in the material is discarded. Its token use and cost
are reported with the result.

It runs when a grader's `judge` table says `enabled = true`, or, with no `enabled` key,
whenever both TRIAL_JUDGE_URL and TRIAL_JUDGE_TOKEN are set (a key exists: the judge is
the primary reader). `enabled = false` turns it off.

Options (a grader's `judge` table in template.toml):
    enabled = true
    url = "http://127.0.0.1:7717"      # gateway base URL (or env TRIAL_JUDGE_URL)
    token_env = "TRIAL_JUDGE_TOKEN"     # env var holding a gateway token; never in a file
    model = "claude-sonnet-5-5"
    wire = "anthropic"                  # or "openai"
    price_in_per_mtok = 3.0             # USD per million tokens for the reported cost;
    price_out_per_mtok = 15.0           # by default the gateway's own price table
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Literal

from orchestrator.errors import ConfigError, PrerequisiteError, TrialError

DEFAULT_TOKEN_ENV = "TRIAL_JUDGE_TOKEN"  # noqa: S105 - the name of a variable, not a secret
DEFAULT_URL_ENV = "TRIAL_JUDGE_URL"
_JSON_BLOCK = re.compile(r"\{.*\}", re.S)


@dataclass(frozen=True)
class JudgeConfig:
    url: str
    token: str = field(repr=False)
    model: str = "claude-sonnet-5-5"
    wire: Literal["anthropic", "openai"] = "anthropic"
    timeout_s: float = 120.0
    max_tokens: int = 2000
    price_in_per_mtok: float | None = None
    price_out_per_mtok: float | None = None

    @classmethod
    def from_options(cls, options: dict[str, Any], env: dict[str, str] | None = None) -> JudgeConfig | None:
        """None unless `judge.enabled` is true; then every missing piece is a ConfigError."""
        env = dict(os.environ) if env is None else env
        table = options.get("judge")
        if not isinstance(table, dict):
            table = {}
        enabled = table.get("enabled")
        if enabled is None:
            enabled = bool(env.get(DEFAULT_URL_ENV) and env.get(str(table.get("token_env") or DEFAULT_TOKEN_ENV)))
        if not enabled:
            return None
        url = str(table.get("url") or env.get(DEFAULT_URL_ENV) or "").rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"rubric option judge.url: {url or 'missing'!s} is not an http(s) URL",
                              f"set judge.url in template.toml or {DEFAULT_URL_ENV} to the gateway's base URL")
        token_env = str(table.get("token_env") or DEFAULT_TOKEN_ENV)
        token = env.get(token_env, "")
        if not token:
            raise ConfigError(f"rubric option judge.token_env: environment variable {token_env} is empty",
                              "export a gateway token for the judge in that variable")
        wire = str(table.get("wire") or "anthropic")
        if wire not in ("anthropic", "openai"):
            raise ConfigError(f"rubric option judge.wire: '{wire}' is not anthropic or openai",
                              "use wire = \"anthropic\" or \"openai\"")
        return cls(url=url, token=token, model=str(table.get("model") or cls.model),
                   wire=wire,  # type: ignore[arg-type]
                   timeout_s=float(table.get("timeout_s") or cls.timeout_s),
                   max_tokens=int(table.get("max_tokens") or cls.max_tokens),
                   price_in_per_mtok=_float(table.get("price_in_per_mtok")),
                   price_out_per_mtok=_float(table.get("price_out_per_mtok")))


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def exchange_cost(config: JudgeConfig, input_tokens: int, output_tokens: int) -> float:
    """What one judge exchange cost: the configured prices, else the gateway's own price table
    (so the judge reports what the gateway charged the budget for it)."""
    if config.price_in_per_mtok is not None and config.price_out_per_mtok is not None:
        return (input_tokens * config.price_in_per_mtok + output_tokens * config.price_out_per_mtok) / 1e6
    from orchestrator.gateway.prices import PriceTable
    from orchestrator.gateway.usage import Usage

    priced = PriceTable.load().price(config.model, Usage(input_tokens=input_tokens, output_tokens=output_tokens))
    return priced.cost_usd


@dataclass
class JudgeUsage:
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    def add(self, config: JudgeConfig, input_tokens: int, output_tokens: int) -> None:
        self.calls += 1
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.cost_usd = round(self.cost_usd + exchange_cost(config, input_tokens, output_tokens), 8)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def ask(config: JudgeConfig, system: str, prompt: str, usage: JudgeUsage) -> str:
    """One deterministic (temperature 0) exchange through the gateway; returns the answer text."""
    if config.wire == "anthropic":
        url = f"{config.url}/anthropic/v1/messages"
        headers = {"x-api-key": config.token, "anthropic-version": "2023-06-01"}
        body: dict[str, Any] = {"model": config.model, "max_tokens": config.max_tokens, "temperature": 0,
                                "system": system, "messages": [{"role": "user", "content": prompt}]}
    else:
        url = f"{config.url}/openai/v1/chat/completions"
        headers = {"authorization": f"Bearer {config.token}"}
        body = {"model": config.model, "max_tokens": config.max_tokens, "temperature": 0,
                "messages": [{"role": "system", "content": system}, {"role": "user", "content": prompt}]}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",  # noqa: S310 - http(s) checked
                                     headers={"content-type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=config.timeout_s) as response:  # noqa: S310 - http(s) checked
            reply = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode(errors="replace")
        raise PrerequisiteError(f"LLM judge: {url} answered {exc.code}: {detail}",
                                "check the judge token and the gateway budget, or disable the judge") from exc
    except (urllib.error.URLError, TimeoutError, OSError, json.JSONDecodeError) as exc:
        raise PrerequisiteError(f"LLM judge: {url} did not answer: {exc}",
                                "start the gateway with `trial serve`, or disable the judge") from exc
    if config.wire == "anthropic":
        text = "".join(block.get("text", "") for block in reply.get("content") or [] if isinstance(block, dict))
        counts = reply.get("usage") or {}
        usage.add(config, int(counts.get("input_tokens", 0)), int(counts.get("output_tokens", 0)))
    else:
        choices = reply.get("choices") or [{}]
        text = str((choices[0].get("message") or {}).get("content") or "")
        counts = reply.get("usage") or {}
        usage.add(config, int(counts.get("prompt_tokens", 0)), int(counts.get("completion_tokens", 0)))
    return text


def answer_json(text: str) -> dict[str, Any]:
    """The JSON object in a judge answer (models wrap it in prose or fences now and then)."""
    match = _JSON_BLOCK.search(text)
    if not match:
        return {}
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def quote_found(quote: str, material: str) -> bool:
    """A quote counts only if it appears in the material (whitespace-insensitive, at least 3 words)."""
    flat_quote = " ".join(quote.split()).lower()
    return len(flat_quote.split()) >= 3 and flat_quote in " ".join(material.split()).lower()


def configured(options: dict[str, Any], details: dict[str, Any]) -> JudgeConfig | None:
    """The judge's config from a grader's options; a bad one is recorded as infrastructure."""
    try:
        return JudgeConfig.from_options(options)
    except TrialError as exc:
        details["judge"] = {"status": "infra_error", "error": exc.one_line()}
        return None


def consult(config: JudgeConfig, system: str, prompt: str,
            details: dict[str, Any]) -> tuple[dict[str, Any], JudgeUsage] | None:
    """One judge exchange, answered as JSON. The judge is an optional extra: its failure is
    recorded as infrastructure (with what it cost) and never counted against the candidate."""
    usage = JudgeUsage()
    try:
        return answer_json(ask(config, system, prompt, usage)), usage
    except TrialError as exc:
        details["judge"] = {"status": "infra_error", "error": exc.one_line(), "usage": usage.to_json()}
        return None


MAX_MOVE = 0.25
"""The most the judge moves a criterion, as a share of its maximum (1 point of 4)."""
AGREE_WITHIN = 0.25
"""Rules and judge agree when their scores differ by at most this share of the maximum."""


def not_done() -> dict[str, Any]:
    return {"status": "not_done",
            "note": "Semantic reading not done: no LLM judge is configured (set TRIAL_JUDGE_URL and "
                    "TRIAL_JUDGE_TOKEN, or a rubric `judge` table); the scores are the rule-based signals alone."}


def judge_moves(criteria: list[Any], answer: dict[str, Any], material: str,
                aliases: dict[str, str] | None = None, *, raise_ok: bool = True) -> dict[str, Any]:
    """Move each criterion the judge scored toward its score, by at most MAX_MOVE of its range.

    `raise_ok=False`: the outcomes showed the material shaped no work worth reading (the agent
    built nothing, or nothing of the brief passes), so the judge, who reads only the words, may
    lower a criterion but never raise it.

    `answer[dimension] = {"score": 0..4, "quotes": [...]}`; a score whose quotes are not found
    verbatim in `material` counts as 0 (and its quotes are listed as rejected); `aliases` maps
    a judge dimension to a criterion id. Returns what the report shows: per criterion the
    rule score, the judge's, the moved score and whether they agreed.
    """
    dimensions: dict[str, Any] = {}
    by_id = {c.id: c for c in criteria}
    for dimension, raw in answer.items():
        criterion = by_id.get((aliases or {}).get(dimension, dimension))
        if criterion is None or not isinstance(raw, dict):
            continue
        quotes = [q for q in raw.get("quotes") or [] if isinstance(q, str)]
        proven = [q for q in quotes if quote_found(q, material)]
        score = raw.get("score")
        judged = max(0.0, min(4.0, float(score))) if isinstance(score, int | float) else 0.0
        if judged > 0 and not proven:
            judged = 0.0  # a score it cannot back with a verbatim quote is not evidence
        target = judged / 4.0 * criterion.max
        rule = float(criterion.score)
        bound = MAX_MOVE * criterion.max
        moved = round(min(max(target, rule - bound), rule + (bound if raise_ok else 0.0)), 2)
        agree = abs(target - rule) <= AGREE_WITHIN * criterion.max
        dimensions[dimension] = {"criterion": criterion.id, "rules": rule, "judge": round(target, 2),
                                 "moved_to": moved, "agree": agree, "quotes": proven,
                                 "rejected_quotes": [q for q in quotes if q not in proven]}
        if moved != rule:
            criterion.rationale += (f" LLM judge: {judged:g}/4 (quoted: \"{proven[0][:80]}\"), moved from {rule:g}."
                                    if proven else f" LLM judge: {judged:g}/4 without a verifiable quote, moved "
                                    f"from {rule:g}.")
            criterion.score = moved
    agreed = [d for d in dimensions.values() if d["agree"]]
    return {"dimensions": dimensions,
            "agreement": f"{len(agreed)} of {len(dimensions)} dimension(s) agree with the rule-based signals"
                         if dimensions else "the judge scored no dimension"}
