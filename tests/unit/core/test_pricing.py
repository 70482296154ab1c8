"""Cost per usage: exact decimals, cached rate, unknown models cost nothing; the bundled data
file, its sources, and the price of the gateway's Mantle region."""

import json
import re
import subprocess
import sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mantle_gateway.core import pricing
from mantle_gateway.core.pricing import PriceTable
from mantle_gateway.simulator.server import DEFAULT_MODELS
from mantle_gateway.usage import TokenCounts

PRICE_FIELDS = {"input", "output", "cached", "cache_write"}


def test_cost_of_bundled_model() -> None:
    table = PriceTable()
    cost = table.cost("openai.gpt-oss-120b", TokenCounts(input=1_000_000, output=500_000))
    assert cost == Decimal("0.45")


def test_cached_tokens_use_the_cached_rate() -> None:
    table = PriceTable()
    cost = table.cost("openai.gpt-5.5", TokenCounts(input=1000, output=0, cached=400))
    assert cost == (Decimal(600) * Decimal("5.50") + Decimal(400) * Decimal("0.55")) / 1_000_000


def test_override_and_unknown_model() -> None:
    table = PriceTable({"acme.model": {"input": 1.0, "output": 2.0}})
    assert table.cost("acme.model", TokenCounts(input=1, output=1)) == Decimal("0.000003")
    assert table.cost("nobody.knows", TokenCounts(input=10)) is None


def test_cache_writes_use_the_cache_write_rate_and_reads_the_cached_rate() -> None:
    # GIVEN a model with all four prices (Anthropic Messages: reads and writes of a prompt cache)
    table = PriceTable(
        {"acme.claude": {"input": 3, "output": 15, "cached": 0.3, "cache_write": 3.75}}
    )
    # WHEN 1,000 input tokens of which 200 were cache reads and 300 cache writes
    tokens = TokenCounts(input=1000, output=10, cached=200, cache_write=300)
    # THEN each part is charged at its own rate
    expected = (
        500 * Decimal(3) + 200 * Decimal("0.3") + 300 * Decimal("3.75") + 10 * 15
    ) / Decimal(1_000_000)
    assert table.cost("acme.claude", tokens) == expected


def test_cache_writes_without_their_own_price_cost_the_input_rate() -> None:
    table = PriceTable({"acme.model": {"input": 1, "output": 2}})
    assert table.cost("acme.model", TokenCounts(input=100, cache_write=100)) == Decimal("0.0001")


# -- the bundled data file ---------------------------------------------------------------------


def bundled_file() -> dict[str, Any]:
    path = Path(pricing.__file__).with_name(pricing.PRICES_FILE)
    data: dict[str, Any] = json.loads(path.read_text(), parse_float=Decimal)
    return data


def test_the_data_file_says_where_its_prices_come_from_and_when() -> None:
    data = bundled_file()
    assert datetime.strptime(data["retrieved"], "%Y-%m-%d")
    assert data["unit"] == "USD per 1M tokens"
    assert data["not_verified"], "what could not be checked is written down"
    for model, entry in data["models"].items():
        assert entry["source"] in data["sources"], model


def test_every_bundled_price_is_whole_and_positive_in_every_region() -> None:
    for model, entry in bundled_file()["models"].items():
        default = {k: v for k, v in entry.items() if k in PRICE_FIELDS}
        assert {"input", "output"} <= default.keys(), model
        for region, price in entry.get("regions", {}).items():
            assert price.keys() == default.keys(), (model, region)  # a region gives every rate
            assert re.fullmatch(r"[a-z]{2}(-gov)?-[a-z]+-\d", region), region
        for price in [default, *entry.get("regions", {}).values()]:
            assert all(isinstance(v, Decimal) and v > 0 for v in price.values()), model


def test_ids_are_mantle_ids_without_region_prefix_or_version_suffix() -> None:
    """mantle-facts §6.1: `openai.gpt-oss-120b`, never `us.…` nor `…-v1:0` / `…-1:0`."""
    for model in bundled_file()["models"]:
        assert re.fullmatch(r"[a-z]+\.[a-z0-9][a-z0-9.-]*", model), model
        assert not re.match(r"(us|eu|apac|jp|au|global|us-gov)\.", model), model
        assert ":" not in model and not model.endswith("-v1"), model


@pytest.mark.parametrize(
    "model",
    [
        *DEFAULT_MODELS,  # what the simulator lists, as Mantle's /v1/models would
        # the other ids mantle-facts §6.1 names, and the families issue 10 found costing 0
        "openai.gpt-5.6-sol",
        "openai.gpt-5.6-terra",
        "openai.gpt-5.6-luna",
        "mistral.devstral-2-123b",
        "moonshotai.kimi-k2-thinking",
        "zai.glm-5",
        "zai.glm-4.7-flash",
        "minimax.minimax-m2.5",
        "qwen.qwen3-32b",
        "nvidia.nemotron-nano-9b-v2",
        "anthropic.claude-opus-4-8",
    ],
)
def test_models_mantle_serves_are_priced(model: str) -> None:
    assert PriceTable().cost(model, TokenCounts(input=1000, output=1000)) is not None


def test_claude_models_carry_cache_read_and_write_rates() -> None:
    claude = {m: e for m, e in bundled_file()["models"].items() if m.startswith("anthropic.")}
    assert claude
    for model, entry in claude.items():
        assert entry["cached"] < entry["input"] < entry["cache_write"], model


def test_the_price_follows_the_mantle_region() -> None:
    tokens = TokenCounts(input=1_000_000, output=1_000_000)
    # us-east-1 is each model's own price; eu-west-2 lists its own for this model
    assert PriceTable().cost("qwen.qwen3-coder-next", tokens) == Decimal("1.70")
    assert PriceTable(region="eu-west-2").cost("qwen.qwen3-coder-next", tokens) == Decimal("2.64")
    # a region that lists no price of its own pays the model's own
    assert PriceTable(region="us-west-2").cost("qwen.qwen3-coder-next", tokens) == Decimal("1.70")
    gov = PriceTable(region="us-gov-west-1")
    assert gov.cost("openai.gpt-oss-120b", tokens) == Decimal("0.90")


def test_prices_json_overrides_the_regional_price() -> None:
    table = PriceTable({"deepseek.v3.2": {"output": 3}}, region="sa-east-1")
    tokens = TokenCounts(input=1_000_000, output=1_000_000)
    assert table.cost("deepseek.v3.2", tokens) == Decimal("0.74") + Decimal(3)


def test_the_file_is_read_when_a_table_is_built_not_when_the_module_is_imported() -> None:
    """The handler imports the core at cold start; the data file is read by `wiring.build`."""
    script = (
        "import sys\n"
        "opened = []\n"
        "sys.addaudithook(lambda event, args: event == 'open' and opened.append(str(args[0])))\n"
        "from mantle_gateway.core import pipeline, pricing\n"
        "at_import = [p for p in opened if p.endswith('prices.json')]\n"
        "pricing.PriceTable()\n"
        "at_build = [p for p in opened if p.endswith('prices.json')]\n"
        "print(len(at_import), len(at_build))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.split() == ["0", "1"]
