"""Budget alerts in the stacks: where the function sends them, PutEvents on the default bus only,
and a rule to the alarm topic that only that rule may publish to."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from infra.constructs.budget_alerts import DETAIL_TYPE, EVENT_SOURCE
from mantle_gateway.core import alerts

if TYPE_CHECKING:
    from conftest import Synthesis

STAGES = ("dev", "prod", "flagoff")


def test_the_rule_matches_what_the_runtime_emits() -> None:
    assert (EVENT_SOURCE, DETAIL_TYPE) == (alerts.SOURCE, alerts.DETAIL_TYPE)


@pytest.mark.parametrize(
    ("stage", "thresholds"), [("dev", "50,80,100"), ("prod", "50,80,100"), ("flagoff", "25,90")]
)
def test_the_function_sends_alerts_to_eventbridge_for_its_stage(
    synth: Synthesis, stage: str, thresholds: str
) -> None:
    env = synth.environment(stage)

    assert env["BUDGET_ALERT_EVENTS"] == "eventbridge"
    assert env["GATEWAY_STAGE"] == stage
    assert env["BUDGET_ALERT_THRESHOLDS"] == thresholds


@pytest.mark.parametrize("stage", STAGES)
def test_put_events_is_granted_on_the_default_bus_only(synth: Synthesis, stage: str) -> None:
    granted = [s for s in synth.statements(stage) if "events:" in json.dumps(s["Action"])]

    (statement,) = granted
    assert statement["Action"] == "events:PutEvents"
    assert statement["Effect"] == "Allow"
    if stage == "flagoff":  # account and region pinned: a literal ARN
        assert statement["Resource"] == "arn:aws:events:eu-west-1:123456789012:event-bus/default"
    else:
        assert statement["Resource"] == {
            "Fn::Join": [
                "",
                [
                    "arn:",
                    {"Ref": "AWS::Partition"},
                    ":events:",
                    {"Ref": "AWS::Region"},
                    ":",
                    {"Ref": "AWS::AccountId"},
                    ":event-bus/default",
                ],
            ]
        }


def test_a_stage_without_alarms_has_no_rule(synth: Synthesis) -> None:
    assert synth.resources("dev", "gateway", "AWS::Events::Rule") == {}
    assert synth.resources("dev", "gateway", "AWS::SNS::Topic") == {}


@pytest.mark.parametrize("stage", ["prod", "flagoff"])
def test_the_rule_sends_this_stages_alerts_to_the_alarm_topic_as_a_sentence(
    synth: Synthesis, stage: str
) -> None:
    rule_id, rule = synth.one(stage, "gateway", "AWS::Events::Rule")
    topic_id, _ = synth.one(stage, "gateway", "AWS::SNS::Topic")
    props = rule["Properties"]

    assert "EventBusName" not in props  # the account's default bus
    assert props["EventPattern"] == {
        "source": [alerts.SOURCE],
        "detail-type": [alerts.DETAIL_TYPE],
        "detail": {"stage": [stage]},
    }
    (target,) = props["Targets"]
    assert target["Arn"] == {"Ref": topic_id}
    paths = target["InputTransformer"]["InputPathsMap"]
    assert set(paths.values()) == {
        f"$.detail.{name}"
        for name in (
            "key_id",
            "key_name",
            "month",
            "threshold_pct",
            "spent_usd",
            "budget_usd",
            "stage",
        )
    }
    template = target["InputTransformer"]["InputTemplate"]
    assert all(f"<{name}>" in template for name in paths)
    assert rule_id.startswith("BudgetAlerts")


@pytest.mark.parametrize("stage", ["prod", "flagoff"])
def test_only_that_rule_may_publish_to_the_topic_and_only_over_tls(
    synth: Synthesis, stage: str
) -> None:
    rule_id, _ = synth.one(stage, "gateway", "AWS::Events::Rule")
    _, policy = synth.one(stage, "gateway", "AWS::SNS::TopicPolicy")
    statements: list[dict[str, Any]] = policy["Properties"]["PolicyDocument"]["Statement"]

    from_events = [
        s for s in statements if s.get("Principal") == {"Service": "events.amazonaws.com"}
    ]
    (allow,) = from_events
    assert (allow["Effect"], allow["Action"]) == ("Allow", "sns:Publish")
    assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]}}}
    assert any(
        s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )
