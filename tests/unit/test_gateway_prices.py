"""Price table: longest-prefix lookup at separators, unknown models at the highest rates, overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.errors import ConfigError
from orchestrator.gateway.prices import PriceTable
from orchestrator.gateway.usage import Usage, estimate, from_anthropic, from_openai_chat, from_openai_responses

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return PriceTable.load()


def test_packaged_table_is_dated_and_covers_both_providers(table: PriceTable) -> None:
    assert table.as_of and table.as_of.startswith("20")
    for model in ("claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5", "gpt-5", "gpt-4.1", "o4-mini"):
        assert table.lookup(model) == model
    opus = table.models["claude-opus-4-1"]
    assert (opus.input, opus.output, opus.cache_read, opus.cache_write) == (15.0, 75.0, 1.5, 18.75)


@pytest.mark.parametrize(("model", "key"), [
    ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
    ("claude-sonnet-4-20250514", "claude-sonnet-4"),
    ("claude-opus-4-1@20250805", "claude-opus-4-1"),       # Vertex-style version tag
    ("claude-opus-4-5-20251101", "claude-opus-4-5"),       # not the pricier claude-opus-4
    ("gpt-5-mini-2025-08-07", "gpt-5-mini"),                # longest key wins over gpt-5
    ("gpt-5-2025-08-07", "gpt-5"),
    ("gpt-4.1-nano", "gpt-4.1-nano"),
    ("o3-pro-2025-06-10", "o3-pro"),
    ("gpt-5.6", None),                                      # a new family must not take gpt-5's price
    ("gpt-50", None),
    ("claude-sonnet-45", None),
    ("mystery-model", None),
    (None, None),
])
def test_lookup_matches_longest_key_at_a_separator(table: PriceTable, model: str | None, key: str | None) -> None:
    assert table.lookup(model) == key


def test_anthropic_cost_prices_each_token_kind_once(table: PriceTable) -> None:
    usage = from_anthropic({"input_tokens": 1000, "output_tokens": 500, "cache_read_input_tokens": 20_000,
                            "cache_creation_input_tokens": 4000})
    assert usage is not None
    priced = table.price("claude-sonnet-4-5-20250929", usage)
    expected = (1000 * 3.0 + 500 * 15.0 + 20_000 * 0.3 + 4000 * 3.75) / 1e6
    assert priced.cost_usd == pytest.approx(expected)
    assert priced.price_key == "claude-sonnet-4-5"
    assert priced.to_json() == {"key": "claude-sonnet-4-5", "fallback": False}


def test_one_hour_cache_writes_cost_more_than_five_minute_ones(table: PriceTable) -> None:
    usage = from_anthropic({"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 3000,
                            "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000}})
    assert usage == Usage(cache_write_tokens=1000, cache_write_1h_tokens=2000)
    assert table.price("claude-haiku-4-5", usage).cost_usd == pytest.approx((1000 * 1.25 + 2000 * 2.0) / 1e6)


def test_openai_cached_tokens_are_taken_out_of_the_prompt(table: PriceTable) -> None:
    chat = from_openai_chat({"prompt_tokens": 10_000, "completion_tokens": 200,
                             "prompt_tokens_details": {"cached_tokens": 8000}})
    responses = from_openai_responses({"input_tokens": 10_000, "output_tokens": 200,
                                       "input_tokens_details": {"cached_tokens": 8000}})
    assert chat == responses == Usage(input_tokens=2000, output_tokens=200, cache_read_tokens=8000)
    assert table.price("gpt-5", chat).cost_usd == pytest.approx((2000 * 1.25 + 200 * 10 + 8000 * 0.125) / 1e6)


def test_unknown_model_pays_the_highest_rate_of_each_kind(table: PriceTable) -> None:
    usage = Usage(input_tokens=1000, output_tokens=1000, cache_read_tokens=1000)
    priced = table.price("brand-new-model", usage)
    assert priced.price_key is None and priced.to_json()["fallback"] is True
    for key in table.models:
        assert priced.cost_usd >= table.price(key, usage).cost_usd
    assert table.highest.output == max(rates.output for rates in table.models.values())


def test_long_context_tier_applies_to_the_whole_request(table: PriceTable) -> None:
    short = Usage(input_tokens=50_000, output_tokens=1000, cache_read_tokens=40_000)
    long = Usage(input_tokens=50_000, output_tokens=1000, cache_read_tokens=60_000)
    assert not table.price("claude-haiku-5-5", short).long_context
    priced = table.price("claude-haiku-5-5", long)
    assert priced.long_context
    assert priced.cost_usd == pytest.approx((50_000 * 0.5 + 1000 * 2.5 + 60_000 * 0.05) / 1e6)


def test_operator_table_adds_and_overrides_models(tmp_path: Path) -> None:
    extra = tmp_path / "prices.json"
    extra.write_text(json.dumps({"as_of": "2030-01-01", "models": {
        "in-house-model": {"input": 1, "output": 2},
        "gpt-5": {"input": 100, "output": 200, "cache_read": 10}}}))
    table = PriceTable.load(extra)
    assert table.as_of == "2030-01-01"
    assert table.price("in-house-model", Usage(input_tokens=1_000_000)).cost_usd == pytest.approx(1.0)
    assert table.price("gpt-5", Usage(output_tokens=1_000_000)).cost_usd == pytest.approx(200.0)
    # Rates left out are never cheaper than input: a cache read without a rate costs input.
    assert table.price("in-house-model", Usage(cache_read_tokens=1_000_000)).cost_usd == pytest.approx(1.0)
    assert table.lookup("claude-opus-4-1") == "claude-opus-4-1"  # the packaged entries stay


@pytest.mark.parametrize(("content", "field"), [
    ('{"models": {"m": {"input": 1}}}', "models.m.output"),
    ('{"models": {"m": {"input": -1, "output": 1}}}', "models.m.input"),
    ('{"models": {"m": {"input": 1, "output": 1, "typo": 3}}}', "models.m.typo"),
])
def test_bad_operator_table_names_file_and_field(tmp_path: Path, content: str, field: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        PriceTable.load(path)
    assert str(path) in caught.value.message and field in caught.value.message


def test_unreadable_or_invalid_operator_table(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        PriceTable.load(tmp_path / "missing.json")
    (tmp_path / "syntax.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        PriceTable.load(tmp_path / "syntax.json")


def test_estimate_never_lowers_reported_counts_and_marks_itself() -> None:
    assert estimate(None, request_bytes=4000, output_chars=300) == Usage(
        input_tokens=1000, output_tokens=100, estimated=True)
    known = Usage(input_tokens=30, output_tokens=1)  # what message_start had said
    assert estimate(known, request_bytes=4000, output_chars=30) == Usage(
        input_tokens=30, output_tokens=10, estimated=True)
    reported = Usage(input_tokens=30, output_tokens=50)
    assert estimate(reported, request_bytes=4000, output_chars=30) == Usage(
        input_tokens=30, output_tokens=50, estimated=True)


def test_worst_case_prices_the_prompt_at_its_dearest_rate_and_the_whole_output_cap(table: PriceTable) -> None:
    # claude-sonnet-4-5: a 1-hour cache write ($6/M) is the dearest way to bill a prompt; output $15/M.
    assert table.worst_case("claude-sonnet-4-5", 10_000, 4_000) == pytest.approx((10_000 * 6 + 4_000 * 15) / 1e6)
    # Past 200k prompt tokens the long-context tier applies: $12/M prompt, $22.5/M output.
    assert table.worst_case("claude-sonnet-4-5", 300_000, 0) == pytest.approx(300_000 * 12 / 1e6)
    # An unknown model at the table's highest rates; the worst case never undercuts the real price.
    assert table.worst_case("mystery", 1_000, 1_000) >= table.price("mystery", Usage(1_000, 1_000)).cost_usd
    for model in ("claude-sonnet-4-5", "gpt-5.4", "claude-opus-4-1"):
        usage = Usage(input_tokens=400, output_tokens=900, cache_read_tokens=100, cache_write_tokens=300,
                      cache_write_1h_tokens=200)
        assert table.worst_case(model, usage.prompt_tokens, usage.output_tokens) >= table.price(model, usage).cost_usd


@pytest.mark.parametrize(("kind", "payload", "expected"), [
    ("anthropic.messages", {"max_tokens": 4096}, (4096, True)),
    ("anthropic.messages", {}, (32_768, False)),
    ("openai.chat", {"max_completion_tokens": 100, "max_tokens": 50}, (100, True)),
    ("openai.chat", {"max_tokens": 50, "n": 4}, (200, True)),
    ("openai.chat", {"n": 2}, (65_536, False)),
    ("openai.responses", {"max_output_tokens": 777}, (777, True)),
    ("openai.responses", {"max_output_tokens": True}, (32_768, False)),  # a bool is not a count
    ("openai.responses", {"max_output_tokens": -5}, (32_768, False)),
])
def test_output_cap_reads_each_wire_formats_field(kind: str, payload: dict[str, object],
                                                  expected: tuple[int, bool]) -> None:
    from orchestrator.gateway.usage import output_cap

    assert output_cap(kind, payload, 32_768) == expected
