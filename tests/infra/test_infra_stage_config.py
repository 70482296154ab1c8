"""StageConfig: cdk.json's stages parse into typed values; a bad value fails in one line."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from infra.stages import (
    LOG_RETENTION_DAYS,
    StageConfigError,
    parse_stage,
    parse_stages,
    select_stages,
)

ROOT = Path(__file__).resolve().parents[2]
STAGES: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]["stages"]


def test_cdk_json_dev_and_prod_have_the_documented_values() -> None:
    stages = parse_stages(STAGES)

    dev, prod = stages["dev"], stages["prod"]
    assert (dev.enable_openai_passthrough, dev.log_retention_days, dev.removal_policy) == (
        True,
        7,
        "destroy",
    )
    assert (dev.pitr, dev.deletion_protection) == (False, False)
    assert (prod.enable_openai_passthrough, prod.log_retention_days, prod.removal_policy) == (
        True,
        30,
        "retain",
    )
    assert (prod.pitr, prod.deletion_protection, prod.alarms) == (True, True, True)
    assert dev.enable_anthropic_passthrough and prod.enable_anthropic_passthrough
    assert prod.lambda_timeout_seconds <= 900


def bad(field: str, value: object) -> dict[str, Any]:
    raw = copy.deepcopy(STAGES["dev"])
    if value is _MISSING:
        del raw[field]
    else:
        raw[field] = value
    return raw


_MISSING = object()


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("enableOpenaiPassthrough", "yes", "enableOpenaiPassthrough: 'yes' is not true or false"),
        ("enableOpenaiPassthrough", _MISSING, "enableOpenaiPassthrough: is required"),
        ("enableAnthropicPassthrough", "no", "enableAnthropicPassthrough: 'no' is not true or"),
        ("logRetentionDays", 8, "logRetentionDays: 8 is not one of 1, 3, 5, 7"),
        ("removalPolicy", "snapshot", "removalPolicy: 'snapshot' is not one of retain, destroy"),
        ("pitr", 1, "pitr: 1 is not true or false"),
        ("lambdaTimeoutSeconds", 901, "lambdaTimeoutSeconds: 901 is outside 1..900"),
        ("lambdaMemoryMb", 64, "lambdaMemoryMb: 64 is outside 128..10240"),
        ("lambdaMemoryMb", 1.5, "lambdaMemoryMb: 1.5 is not a whole number"),
        ("defaultKeyLimits", {"rpm": 0, "tpm": 5}, "defaultKeyLimits.rpm: 0 is outside"),
        ("defaultKeyLimits", {"rpm": 5}, "defaultKeyLimits: {'rpm': 5} is not an object"),
        ("region", "mars-1", "region: 'mars-1' is not a region name"),
        ("account", "12345", "account: '12345' is not a 12-digit AWS account id"),
        ("mantleEndpointUrl", "ftp://x", "mantleEndpointUrl: 'ftp://x' is not an http(s) URL"),
        ("alarmEmail", "ops@example.com", "alarmEmail: is set but alarms is false"),
        ("logLevel", "LOUD", "logLevel: 'LOUD' is not one of DEBUG"),
        ("corsAllowedOrigins", [], "corsAllowedOrigins: [] is not a non-empty list"),
        ("mantleProjects", ["proj-x"], "mantleProjects: 'proj-x' is not a Mantle project id"),
        ("mantleProjects", [], "mantleProjects: [] is not a non-empty list"),
        ("budgetAlertThresholds", [0, 50], "budgetAlertThresholds: [0, 50] is not a list of"),
        ("budgetAlertThresholds", "50,80", "budgetAlertThresholds: '50,80' is not a list of"),
        ("budgetAlertThresholds", [True], "budgetAlertThresholds: [True] is not a list of"),
        ("pitrr", True, "pitrr: is not a known stage field"),
    ],
)
def test_a_bad_stage_value_fails_in_one_line_naming_stage_and_field(
    field: str, value: object, expected: str
) -> None:
    with pytest.raises(StageConfigError) as error:
        parse_stages({"dev": bad(field, value)})

    message = str(error.value)
    assert message.startswith("stage 'dev': ")
    assert expected in message
    assert "\n" not in message


def test_a_bad_stage_name_or_shape_is_refused() -> None:
    with pytest.raises(StageConfigError, match=r"^stage 'Prod!': name: "):
        parse_stage("Prod!", STAGES["prod"])
    with pytest.raises(StageConfigError, match=r"^stage 'dev': must be an object"):
        parse_stage("dev", ["not", "an", "object"])
    with pytest.raises(StageConfigError, match="context 'stages' is missing"):
        parse_stages(None)


def test_stage_selection_defaults_to_every_stage_and_refuses_unknown_names() -> None:
    stages = parse_stages(STAGES)

    assert [s.name for s in select_stages(stages, None)] == ["dev", "prod"]
    assert [s.name for s in select_stages(stages, "prod")] == ["prod"]
    with pytest.raises(StageConfigError, match=r"^stage 'qa': not defined in cdk.json"):
        select_stages(stages, "qa")


def test_app_entry_point_exits_with_the_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import app  # the repository's app.py

    monkeypatch.setenv("STAGE", "qa")
    with pytest.raises(SystemExit) as exit_info:
        app.main()

    assert exit_info.value.code == (
        "cdk.json: stage 'qa': not defined in cdk.json (known: dev, prod)"
    )


def test_every_accepted_log_retention_has_a_cdk_value() -> None:
    from infra.cdk_values import log_retention

    for days in LOG_RETENTION_DAYS:
        config = parse_stage("dev", {**STAGES["dev"], "logRetentionDays": days})
        assert log_retention(config).name  # no KeyError: every accepted value maps


def test_anthropic_flag_defaults_on_for_stages_written_before_it() -> None:
    older = bad("enableAnthropicPassthrough", _MISSING)
    assert parse_stages({"dev": older})["dev"].enable_anthropic_passthrough is True
