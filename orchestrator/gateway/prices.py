"""The price table: USD per million tokens by model, and what one exchange cost.

The packaged `prices.json` is the default; an operator file (`gateway.price_table`)
adds or replaces models by key. A model id matches the longest key that equals it or is
followed by a separator, so `claude-sonnet-4-5-20250929` finds `claude-sonnet-4-5` while
`gpt-5.6` does not silently take `gpt-5`'s (possibly lower) price. A model that matches
no key is priced at the table's highest rate of each kind, so it can never spend for free.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.errors import ConfigError
from orchestrator.gateway.usage import Usage

PER_TOKENS = 1_000_000
# What may follow a key inside a longer model id: a date or variant suffix, a cloud
# provider's version tag (`@20250805`, `:0`), a Claude Code context tag (`[1m]`).
_SEPARATORS = frozenset("-@:_/[")
# Model names come from requests; bound the lookup memo so junk names cannot grow it.
_MEMO_LIMIT = 1024


_Effective = tuple[float, float, float, float, float]
"""Input, output, cache read, 5-minute and 1-hour cache write rates, defaults applied."""


class Rates(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_read: float | None = Field(default=None, ge=0)
    """Cache hits; when absent, charged as input (never cheaper than published)."""
    cache_write: float | None = Field(default=None, ge=0)
    """5-minute cache writes; when absent, 1.25 × input (Anthropic's multiplier)."""
    cache_write_1h: float | None = Field(default=None, ge=0)
    """1-hour cache writes; when absent, 2 × input."""

    def effective(self) -> _Effective:
        return (
            self.input,
            self.output,
            self.input if self.cache_read is None else self.cache_read,
            self.input * 1.25 if self.cache_write is None else self.cache_write,
            self.input * 2 if self.cache_write_1h is None else self.cache_write_1h,
        )


class LongContextRates(Rates):
    above_prompt_tokens: int = Field(gt=0)


class ModelRates(Rates):
    long_context: LongContextRates | None = None


class PriceFile(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    as_of: str | None = None
    models: dict[str, ModelRates]


@dataclass(frozen=True)
class Priced:
    cost_usd: float
    price_key: str | None
    """The table key used, or None when the model is unknown and the highest rates applied."""
    long_context: bool = False

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"key": self.price_key, "fallback": self.price_key is None}
        if self.long_context:
            data["long_context"] = True
        return data


class PriceTable:
    def __init__(self, models: dict[str, ModelRates], as_of: str | None = None) -> None:
        if not models:
            raise ConfigError("price table has no models", "add at least one entry under 'models'")
        self.models = dict(models)
        self.as_of = as_of
        # Longest keys first, so the first match is the longest one.
        self._keys = sorted(self.models, key=len, reverse=True)
        self._memo: dict[str, str | None] = {}
        highest = [max(rates.effective()[kind] for rates in self._all_rates()) for kind in range(5)]
        self.highest = Rates(input=highest[0], output=highest[1], cache_read=highest[2],
                             cache_write=highest[3], cache_write_1h=highest[4])
        # Each key's effective rates and long-context tier, worked out once: every billed
        # exchange is priced twice (its reservation, its cost), on the gateway's hot path.
        self._rates: dict[str | None, tuple[_Effective, int | None, _Effective | None]] = {
            key: (rates.effective(), None if rates.long_context is None else rates.long_context.above_prompt_tokens,
                  None if rates.long_context is None else rates.long_context.effective())
            for key, rates in self.models.items()}
        self._rates[None] = (self.highest.effective(), None, None)

    def _all_rates(self) -> list[Rates]:
        found: list[Rates] = []
        for rates in self.models.values():
            found.append(rates)
            if rates.long_context is not None:
                found.append(rates.long_context)
        return found

    @classmethod
    def load(cls, override: Path | None = None) -> PriceTable:
        packaged = resources.files("orchestrator.gateway").joinpath("prices.json").read_text()
        base = _parse(packaged, "orchestrator/gateway/prices.json")
        models = dict(base.models)
        as_of = base.as_of
        if override is not None:
            try:
                text = override.read_text()
            except OSError as exc:
                raise ConfigError(f"gateway.price_table {override}: cannot read ({exc.strerror})",
                                  "point gateway.price_table at a readable JSON file") from exc
            extra = _parse(text, str(override))
            models.update(extra.models)
            as_of = extra.as_of or as_of
        return cls(models, as_of)

    def lookup(self, model: str | None) -> str | None:
        """The longest key matching `model` at a separator, or None."""
        if not model:
            return None
        if model in self._memo:
            return self._memo[model]
        found = next((key for key in self._keys
                      if model == key or (model.startswith(key) and model[len(key)] in _SEPARATORS)), None)
        if len(self._memo) < _MEMO_LIMIT:
            self._memo[model] = found
        return found

    def _tier(self, model: str | None, prompt_tokens: int) -> tuple[str | None, _Effective, bool]:
        """The table key for `model`, the rates that apply to a prompt this long, and whether
        they are the long-context tier's (an unknown model: None and the highest rates)."""
        key = self.lookup(model)
        rates, above, long_rates = self._rates[key]
        if above is not None and long_rates is not None and prompt_tokens > above:
            return key, long_rates, True
        return key, rates, False

    def price(self, model: str | None, usage: Usage) -> Priced:
        key, rates, long_context = self._tier(model, usage.prompt_tokens)
        rate_in, rate_out, rate_read, rate_write, rate_write_1h = rates
        cost = (usage.input_tokens * rate_in + usage.output_tokens * rate_out
                + usage.cache_read_tokens * rate_read + usage.cache_write_tokens * rate_write
                + usage.cache_write_1h_tokens * rate_write_1h) / PER_TOKENS
        return Priced(round(cost, 10), key, long_context)

    def worst_case(self, model: str | None, prompt_tokens: int, output_tokens: int) -> float:
        """The most a request of this size can cost: what the budget reserves at admission.

        The prompt is priced at the dearest way the provider may bill it (a 1-hour cache
        write costs twice the input rate), in the long-context tier when it would apply.
        """
        _, rates, _ = self._tier(model, prompt_tokens)
        rate_in, rate_out, rate_read, rate_write, rate_write_1h = rates
        dearest_in = max(rate_in, rate_read, rate_write, rate_write_1h)
        return round((prompt_tokens * dearest_in + output_tokens * rate_out) / PER_TOKENS, 10)


def _parse(text: str, source: str) -> PriceFile:
    try:
        return PriceFile.model_validate(json.loads(text))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno})",
                          "fix the price table's syntax") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"{source}: field '{field}': {first['msg']}",
                          "each model needs input and output rates in USD per million tokens") from exc
