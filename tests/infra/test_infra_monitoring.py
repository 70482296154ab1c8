"""Monitoring: alarms on errors, 5xx, throttles and budget refusals; SNS; the dashboard."""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Any

import aws_cdk as cdk
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template

from infra.constructs.monitoring import ALARM_PUBLISHER, BUDGET_REFUSALS_METRIC, TopicPublisher

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


def test_alarm_email_is_subscribed(synth: Synthesis) -> None:
    _, subscription = synth.one("flagoff", "gateway", "AWS::SNS::Subscription")

    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == "ops@example.com"
    assert synth.resources("prod", "gateway", "AWS::SNS::Subscription") == {}


def topic_statements(synth: Synthesis, stage: str) -> tuple[str, list[dict[str, Any]]]:
    topic_id, _ = synth.one(stage, "gateway", "AWS::SNS::Topic")
    _, policy = synth.one(stage, "gateway", "AWS::SNS::TopicPolicy")
    assert policy["Properties"]["Topics"] == [{"Ref": topic_id}]
    return topic_id, policy["Properties"]["PolicyDocument"]["Statement"]


PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "eu-west-1", "AWS::AccountId": "123456789012"}
"""What the pseudo parameters resolve to in the requests below (a deploy to that account)."""


def plain(value: Any) -> Any:
    """A template value with `Fn::Join` and pseudo-parameter `Ref`s resolved as `PSEUDO` says."""
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(plain(part) for part in parts)
    if isinstance(value, dict) and value.get("Ref") in PSEUDO:
        return PSEUDO[value["Ref"]]
    return value


def allowed(statements: list[dict[str, Any]], request: dict[str, str]) -> bool:
    """IAM's evaluation for one `sns:Publish` on the topic: an explicit Deny wins, else an
    Allow is needed (a topic policy replaces SNS's default one: nothing is allowed by default).
    Handles what the topic policy uses: Principal `*` or {Service}, Bool, StringEquals, ArnLike,
    ArnEquals (a value CloudFormation resolves at deploy time never equals a request's)."""

    def matches(statement: dict[str, Any]) -> bool:
        principal = statement["Principal"]
        if principal != "*" and principal.get("Service") != request["service"]:
            return False
        for operator, conditions in statement.get("Condition", {}).items():
            for key, template_value in conditions.items():
                value, wanted = request[key], plain(template_value)
                if operator in ("Bool", "StringEquals") and value != wanted:
                    return False
                if operator == "ArnLike" and not fnmatch.fnmatchcase(value, wanted):
                    return False
                if operator == "ArnEquals" and value != wanted:
                    return False
        return statement["Action"] == "sns:Publish"

    effects = {s["Effect"] for s in statements if matches(s)}
    return "Allow" in effects and "Deny" not in effects


ALARM = {
    "service": "cloudwatch.amazonaws.com",
    "aws:SecureTransport": "true",
    "aws:SourceAccount": "123456789012",
    "aws:SourceArn": "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:MantleGateway-x",
}
"""CloudWatch publishing a state change of one of the stage's alarms."""


def test_cloudwatch_alarms_may_publish_to_the_topic_and_nobody_else(synth: Synthesis) -> None:
    topic_id, statements = topic_statements(synth, "flagoff")  # account and region explicit
    elsewhere = "arn:aws:cloudwatch:eu-west-1:999999999999:alarm:x"
    not_an_alarm = "arn:aws:cloudwatch:eu-west-1:123456789012:dashboard/x"

    assert allowed(statements, ALARM)
    assert not allowed(statements, {**ALARM, "aws:SecureTransport": "false"})
    assert not allowed(statements, {**ALARM, "aws:SourceAccount": "999999999999"})
    assert not allowed(statements, {**ALARM, "aws:SourceArn": elsewhere})
    assert not allowed(statements, {**ALARM, "aws:SourceArn": not_an_alarm})
    assert not allowed(statements, {**ALARM, "service": "events.amazonaws.com"})
    for statement in statements:
        assert statement["Resource"] == {"Ref": topic_id}


def test_topic_policy_keeps_the_tls_deny_and_scopes_cloudwatch_in_every_account(
    synth: Synthesis,
) -> None:
    _, statements = topic_statements(synth, "prod")  # account and region left to the deploy
    (deny,) = [s for s in statements if s["Effect"] == "Deny"]
    (allow,) = [s for s in statements if s.get("Sid") == "AllowCloudwatchPublish"]
    # the one other Allow: the budget-alert rule, naming that rule (test_infra_budget_alerts)
    others = [s for s in statements if s not in (deny, allow)]
    assert [s["Principal"] for s in others] == [{"Service": "events.amazonaws.com"}]
    assert set(others[0]["Condition"]) == {"ArnEquals"}

    assert deny["Effect"] == "Deny"
    assert deny["Principal"] == "*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert allow["Effect"] == "Allow"
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    source_arn = plain(allow["Condition"]["ArnLike"]["aws:SourceArn"])
    assert source_arn == "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:*"
    assert allowed(statements, ALARM)


def test_another_service_publisher_is_one_more_statement() -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "Bare", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    topic = sns.Topic(stack, "Topic", enforce_ssl=True)
    for publisher in (ALARM_PUBLISHER, TopicPublisher("events", "rule/budget-*")):
        topic.add_to_resource_policy(publisher.statement(topic))

    (policy,) = Template.from_stack(stack).find_resources("AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]

    events = {
        "service": "events.amazonaws.com",
        "aws:SecureTransport": "true",
        "aws:SourceAccount": "123456789012",
        "aws:SourceArn": "arn:aws:events:eu-west-1:123456789012:rule/budget-x",
    }
    assert [s["Sid"] for s in statements][1:] == ["AllowCloudwatchPublish", "AllowEventsPublish"]
    source_arn = plain(statements[2]["Condition"]["ArnLike"]["aws:SourceArn"])
    assert source_arn == "arn:aws:events:eu-west-1:123456789012:rule/budget-*"
    assert allowed(statements, ALARM)
    assert allowed(statements, events)
    other_rule = "arn:aws:events:eu-west-1:123456789012:rule/nightly"
    assert not allowed(statements, {**events, "aws:SourceArn": other_rule})
    assert not allowed(statements, {**events, "service": "cloudwatch.amazonaws.com"})


def test_dev_has_a_dashboard_but_no_alarms(synth: Synthesis) -> None:
    assert synth.resources("dev", "gateway", "AWS::CloudWatch::Alarm") == {}
    assert synth.resources("dev", "gateway", "AWS::SNS::Topic") == {}
    for stage in ("dev", "prod", "flagoff"):
        synth.one(stage, "gateway", "AWS::CloudWatch::Dashboard")
