"""Budget alerts: the function puts them on the default event bus; a rule sends them to the
stage's alarm topic.

The runtime (`mantle_gateway/core/alerts.py`) emits one event per key, UTC month and threshold
when the key's spend first reaches it: source `mantle-gateway`, detail-type `Budget Threshold
Reached`, detail `{key_id, key_name, month, threshold_pct, spent_usd, budget_usd, stage}`. Here:

- the function's environment says where alerts go (`BUDGET_ALERT_EVENTS=eventbridge`), for
  which stage (`GATEWAY_STAGE`) and at which percentages by default (`BUDGET_ALERT_THRESHOLDS`,
  from the stage's `budgetAlertThresholds`; a key's own `--alert-at` wins);
- its role may `events:PutEvents` on this account's and region's default bus, nothing else;
- when the stage has an alarm topic, a rule on the default bus matching this stage's alerts
  (source, detail-type and `detail.stage`) targets it with one readable sentence (what the
  stage's alarm e-mail receives), and the topic's policy lets EventBridge publish for that rule
  only (`aws:SourceArn`). Other targets (a Lambda, Slack through AWS
  Chatbot, another account's bus) are more targets on this rule, or rules of their own with the
  same pattern.
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sns-permissions
"""

from __future__ import annotations

from typing import Any

import jsii
from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

EVENT_SOURCE = "mantle-gateway"
DETAIL_TYPE = "Budget Threshold Reached"


class BudgetAlerts(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage_name: str,
        function: lambda_.Function,
        thresholds: tuple[int, ...],
        topic: sns.ITopic | None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        function.add_environment("BUDGET_ALERT_EVENTS", "eventbridge")
        function.add_environment("GATEWAY_STAGE", stage_name)
        function.add_environment(
            "BUDGET_ALERT_THRESHOLDS", ",".join(map(str, thresholds)) or "none"
        )
        self.bus_arn = stack.format_arn(
            service="events",
            resource="event-bus",
            resource_name="default",
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["events:PutEvents"], resources=[self.bus_arn])
        )
        self.rule: events.Rule | None = None
        if topic is not None:
            self.rule = events.Rule(
                self,
                "ToAlarmTopic",
                description=f"Mantle Gateway ({stage_name}): budget thresholds to the alarm topic",
                event_pattern=events.EventPattern(
                    source=[EVENT_SOURCE],
                    detail_type=[DETAIL_TYPE],
                    detail={"stage": [stage_name]},
                ),
                targets=[_Topic(topic)],
            )
            topic.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="AllowBudgetAlertRulePublish",
                    principals=[iam.ServicePrincipal("events.amazonaws.com")],
                    actions=["sns:Publish"],
                    resources=[topic.topic_arn],
                    conditions={"ArnEquals": {"aws:SourceArn": self.rule.rule_arn}},
                )
            )


@jsii.implements(events.IRuleTarget)
class _Topic:
    """The topic as a rule target, without `aws_events_targets.SnsTopic`'s grant: that one lets
    every EventBridge rule of any account publish; the construct's statement names this rule."""

    def __init__(self, topic: sns.ITopic) -> None:
        self._topic = topic

    def bind(self, _rule: Any, _id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(arn=self._topic.topic_arn, input=E_MAIL_TEXT)


def _detail(name: str) -> str:
    return events.EventField.from_path(f"$.detail.{name}")


E_MAIL_TEXT = events.RuleTargetInput.from_text(
    f"Mantle Gateway budget alert ({_detail('stage')}): key {_detail('key_name')} "
    f"({_detail('key_id')}) has spent {_detail('spent_usd')} USD of its "
    f"{_detail('budget_usd')} USD budget for {_detail('month')} (UTC), reaching "
    f"{_detail('threshold_pct')}%."
)
"""What the topic's subscribers (the stage's alarm e-mail) read: one sentence, not the JSON."""
