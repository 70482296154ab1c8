"""Monitoring: alarms on errors, 5xx, throttles and budget refusals; SNS; the dashboard."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from infra.constructs.monitoring import BUDGET_REFUSALS_METRIC

if TYPE_CHECKING:
    from conftest import Synthesis


def alarms_by_metric(synth: Synthesis, stage: str) -> dict[str, dict[str, Any]]:
    alarms = synth.resources(stage, "gateway", "AWS::CloudWatch::Alarm").values()
    return {a["Properties"]["MetricName"]: a["Properties"] for a in alarms}


def dimensions(alarm: dict[str, Any]) -> dict[str, Any]:
    return {d["Name"]: d["Value"] for d in alarm["Dimensions"]}


def test_prod_alarms_cover_errors_5xx_throttles_and_budget_refusals(synth: Synthesis) -> None:
    alarms = alarms_by_metric(synth, "prod")
    topic_id, _ = synth.one("prod", "gateway", "AWS::SNS::Topic")
    function_id, _ = synth.one("prod", "gateway", "AWS::Lambda::Function")

    assert set(alarms) == {"Errors", "Throttles", "Url5xxCount", "5XXError", BUDGET_REFUSALS_METRIC}
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["TreatMissingData"] == "notBreaching"
    for name in ("Errors", "Throttles", "Url5xxCount"):
        assert alarms[name]["Namespace"] == "AWS/Lambda"
        assert dimensions(alarms[name]) == {"FunctionName": {"Ref": function_id}}
    rest = alarms["5XXError"]
    assert rest["Namespace"] == "AWS/ApiGateway"
    assert dimensions(rest) == {"ApiName": "mantle-gateway-prod", "Stage": "prod"}


def test_budget_alarm_reads_the_metric_the_function_emits(synth: Synthesis) -> None:
    budget = alarms_by_metric(synth, "prod")[BUDGET_REFUSALS_METRIC]
    env = synth.environment("prod")

    assert budget["Namespace"] == env["POWERTOOLS_METRICS_NAMESPACE"]
    assert dimensions(budget) == {"service": env["POWERTOOLS_SERVICE_NAME"]}
    assert budget["Statistic"] == "Sum"


def test_alarm_email_is_subscribed_and_topic_requires_tls(synth: Synthesis) -> None:
    _, subscription = synth.one("flagoff", "gateway", "AWS::SNS::Subscription")
    _, policy = synth.one("flagoff", "gateway", "AWS::SNS::TopicPolicy")

    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == "ops@example.com"
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    (deny,) = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    # the one Allow is the budget-alert rule's (tests/infra/test_infra_budget_alerts.py)
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert [s["Principal"] for s in allows] == [{"Service": "events.amazonaws.com"}]
    assert synth.resources("prod", "gateway", "AWS::SNS::Subscription") == {}


def test_dev_has_a_dashboard_but_no_alarms(synth: Synthesis) -> None:
    assert synth.resources("dev", "gateway", "AWS::CloudWatch::Alarm") == {}
    assert synth.resources("dev", "gateway", "AWS::SNS::Topic") == {}
    for stage in ("dev", "prod", "flagoff"):
        synth.one(stage, "gateway", "AWS::CloudWatch::Dashboard")
