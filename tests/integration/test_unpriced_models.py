"""Fail closed on models without a price (issue 10, item 1): a key with a monthly budget cannot
spend on a model the gateway cannot price, because nothing could be reserved nor charged for it.
Driven with the openai SDK against the live local door, moto's DynamoDB and the simulator."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import openai
import pytest

from mantle_gateway import schema
from mantle_gateway.settings import Settings
from mantle_gateway.store.dynamo import Dynamo
from mantle_gateway.store.limits import spend_pk
from tests.support.dynamo_faults import tapped

UNPRICED = "acme.unpriced-model-1"
"""Served by the simulator (it answers any model), priced nowhere."""
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}


@pytest.fixture
def dynamo_calls(settings: Settings) -> tuple[Dynamo, list[str]]:
    """A Dynamo of the gateway's own, and the operations its stores send, in order."""
    dynamo, tap = tapped(settings)
    return dynamo, tap.sent


def sdk(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/openai/v1", api_key=key, max_retries=0)


def ask(client: openai.OpenAI, model: str, *, stream: bool = False) -> Any:
    return client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=50,
        stream=stream,
    )


def month_item(dynamo: Dynamo, settings: Settings, key_id: str) -> dict[str, Any] | None:
    answer = dynamo.client.get_item(
        TableName=settings.limits_table,
        Key={schema.LIMITS_PK: {"S": spend_pk(key_id, datetime.now(UTC).strftime("%Y-%m"))}},
        ConsistentRead=True,
    )
    return answer.get("Item")


@pytest.mark.parametrize("stream", [False, True])
def test_a_budgeted_key_is_refused_an_unpriced_model_before_any_write_or_upstream_call(
    stream: bool, start_gateway, new_key, sim, settings, dynamo, dynamo_calls
) -> None:
    # GIVEN a key with a budget (and a rate limit) and a model the gateway has no price for
    gateway_dynamo, sent = dynamo_calls
    door = start_gateway(dynamo=gateway_dynamo)
    key, record = new_key(monthly_budget_usd=Decimal("100"), rpm=100)
    # WHEN the key asks for that model
    with pytest.raises(openai.PermissionDeniedError) as refused:
        ask(sdk(door.url, key), UNPRICED, stream=stream)
    # THEN it is refused, OpenAI-shaped, saying why
    assert refused.value.status_code == 403
    error = refused.value.response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "permission_error",
        "model_not_priced",
        "model",
    )
    assert UNPRICED in error["message"] and key not in error["message"]
    # AND nothing went upstream, nothing was written: no rate slot, no reservation
    assert sim.requests == []
    assert sent and not WRITES & set(sent), sent
    assert month_item(dynamo, settings, record.key_id) is None


def test_an_unbudgeted_key_still_uses_an_unpriced_model_at_cost_zero(
    gateway, new_key, sim, usage_items
) -> None:
    key, record = new_key(rpm=100)
    answer = ask(sdk(gateway.url, key), UNPRICED)
    assert answer.choices[0].message.content
    assert len(sim.requests) == 1
    (item,) = usage_items(record.key_id)
    assert item["model"] == UNPRICED
    assert Decimal(item["cost_usd"]) == 0


def test_prices_json_pricing_the_model_lets_a_budgeted_key_use_it(
    start_gateway, new_key, sim, usage_items, settings, dynamo
) -> None:
    # GIVEN the operator prices the model with PRICES_JSON
    door = start_gateway(price_overrides={UNPRICED: {"input": 2.0, "output": 8.0}})
    key, record = new_key(monthly_budget_usd=Decimal("100"))
    # WHEN the budgeted key asks for it, THEN it is answered and charged at that price
    answer = ask(sdk(door.url, key), UNPRICED)
    assert answer.usage is not None
    (item,) = usage_items(record.key_id)
    expected = (
        Decimal(answer.usage.prompt_tokens) * 2 + Decimal(answer.usage.completion_tokens) * 8
    ) / 1_000_000
    assert Decimal(item["cost_usd"]) == expected > 0
    assert len(sim.requests) == 1
    spend = month_item(dynamo, settings, record.key_id)
    assert spend is not None and Decimal(spend["spent_usd"]["N"]) == expected


def test_a_budgeted_key_uses_a_bundled_model_the_issue_found_unpriced(
    gateway, new_key, sim, usage_items
) -> None:
    """deepseek, gemma, mistral, grok, qwen: all served by Mantle, all priced now."""
    key, record = new_key(monthly_budget_usd=Decimal("100"))
    models = [
        "deepseek.v3.2",
        "google.gemma-4-31b",
        "mistral.mistral-large-3-675b-instruct",
        "xai.grok-4.3",
        "qwen.qwen3-32b",
    ]
    for model in models:
        ask(sdk(gateway.url, key), model)
    items = usage_items(record.key_id, count=len(models))
    assert sorted(i["model"] for i in items) == sorted(models)
    assert all(Decimal(i["cost_usd"]) > 0 for i in items)
