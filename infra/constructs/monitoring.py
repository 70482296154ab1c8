"""Alarms (errors and 5xx, throttles, budget refusals) and one dashboard per stage.

Alarms, when the stage enables them, notify an SNS topic (subscribe more endpoints to it at will;
the stage's `alarmEmail` is subscribed for you):

- function errors       Lambda `Errors` ≥ 1 in 5 min: an unhandled exception or a timeout.
- Function URL 5xx      `Url5xxCount` ≥ 5 in 5 min: the gateway answering 5xx (502/503/504 are
                        upstream or DynamoDB trouble that the gateway reports but cannot fix).
- REST API 5xx          `5XXError` ≥ 5 in 5 min on this stage.
- throttles             Lambda `Throttles` ≥ 1 in 5 min: account or reserved concurrency reached.
- budget refusals       custom `BudgetRefusals` ≥ 1 in 1 h: a key hit its monthly budget (a
                        finance signal, not a fault).

The budget metric is what the runtime emits through Powertools Metrics: namespace
POWERTOOLS_METRICS_NAMESPACE, name `BudgetRefusals`, and Powertools' default dimension
`service` = POWERTOOLS_SERVICE_NAME.

The topic's resource policy: a topic policy replaces SNS's default one, so the TLS-only Deny that
`enforce_ssl` writes would leave nobody allowed to publish, and alarm notifications would never
arrive (re:Post knowledge center "cloudwatch-receive-sns-for-alarm-trigger"). Each AWS service
that publishes gets its own Allow on `sns:Publish`, limited with `aws:SourceAccount` and
`aws:SourceArn` to this account's resources of that service (the confused-deputy guard AWS
documents for service principals). `TopicPublisher` is one such grant; CloudWatch alarms are the
first (`ALARM_PUBLISHER`), another service (EventBridge rules, say) is one more entry.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import ArnFormat, Aws, Duration, Fn, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

BUDGET_REFUSALS_METRIC = "BudgetRefusals"
_FIVE_MINUTES = Duration.minutes(5)


@dataclass(frozen=True, slots=True)
class TopicPublisher:
    """An AWS service allowed to publish to the alarm topic, from this account's resources that
    match `arn:<partition>:<service>:<region>:<account>:<resource>`."""

    service: str
    """Service endpoint name: `cloudwatch` → principal `cloudwatch.amazonaws.com`."""
    resource: str
    """The ARN's resource part, wildcards allowed: `alarm:*`, or `rule/budget-*` for rules."""

    def statement(self, topic: sns.ITopic) -> iam.PolicyStatement:
        stack = Stack.of(topic)
        source_arn = stack.format_arn(
            service=self.service, resource=self.resource, arn_format=ArnFormat.NO_RESOURCE_NAME
        )
        return iam.PolicyStatement(
            sid=f"Allow{self.service.capitalize()}Publish",
            principals=[iam.ServicePrincipal(f"{self.service}.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions={
                "StringEquals": {"aws:SourceAccount": stack.account},
                "ArnLike": {"aws:SourceArn": source_arn},
            },
        )


ALARM_PUBLISHER = TopicPublisher("cloudwatch", "alarm:*")
"""CloudWatch alarms publish as `cloudwatch.amazonaws.com`, with the alarm's ARN as source."""

TOPIC_PUBLISHERS: tuple[TopicPublisher, ...] = (ALARM_PUBLISHER,)
"""Every service allowed to publish to the alarm topic, one policy statement each."""


class GatewayMonitoring(Construct):
    """Alarms on the function and both doors, a budget-refusal alarm, and the dashboard."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage_name: str,
        function: lambda_.IFunction,
        rest_api: apigw.RestApi,
        metrics_namespace: str,
        service_name: str,
        alarms_enabled: bool,
        alarm_email: str | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.metrics = {
            "errors": function.metric_errors(period=_FIVE_MINUTES, statistic="Sum"),
            "throttles": function.metric_throttles(period=_FIVE_MINUTES, statistic="Sum"),
            "url5xx": _function_metric(function, "Url5xxCount"),
            "rest5xx": rest_api.metric_server_error(
                period=_FIVE_MINUTES,
                statistic="Sum",
                dimensions_map={"ApiName": rest_api.rest_api_name, "Stage": stage_name},
            ),
            "budget": cw.Metric(
                namespace=metrics_namespace,
                metric_name=BUDGET_REFUSALS_METRIC,
                dimensions_map={"service": service_name},
                period=Duration.hours(1),
                statistic="Sum",
            ),
        }
        self.topic: sns.Topic | None = None
        self.alarms: list[cw.Alarm] = []
        if alarms_enabled:
            self.topic = self._topic(stage_name, alarm_email)
            self.alarms = self._alarms(self.topic)
        self.dashboard = self._dashboard(stage_name, function, rest_api)

    def _topic(self, stage_name: str, alarm_email: str | None) -> sns.Topic:
        # Not KMS-encrypted: notifications carry alarm names and states only, and CloudWatch
        # cannot publish to a topic under the AWS-managed aws/sns key (a customer-managed key
        # per stage would protect nothing). Publishing over TLS is enforced; the publishers
        # are named (module docstring), since this policy replaces SNS's default one.
        topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name=f"Mantle Gateway {stage_name} alarms",
            enforce_ssl=True,
        )
        for publisher in TOPIC_PUBLISHERS:
            topic.add_to_resource_policy(publisher.statement(topic))
        if alarm_email:
            topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        return topic

    def _alarms(self, topic: sns.ITopic) -> list[cw.Alarm]:
        specs = (
            ("FunctionErrors", "errors", 1, "The gateway function failed (exception or timeout)"),
            ("FunctionThrottles", "throttles", 1, "Invocations were throttled (concurrency)"),
            ("FunctionUrl5xx", "url5xx", 5, "The Function URL door answered 5xx"),
            ("RestApi5xx", "rest5xx", 5, "The REST API door answered 5xx"),
            ("BudgetRefusals", "budget", 1, "A gateway key was refused: monthly budget spent"),
        )
        alarms = []
        for construct_id, metric, threshold, description in specs:
            alarm = cw.Alarm(
                self,
                construct_id,
                metric=self.metrics[metric],
                threshold=threshold,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                alarm_description=description,
            )
            alarm.add_alarm_action(cw_actions.SnsAction(topic))
            alarms.append(alarm)
        return alarms

    def _dashboard(
        self, stage_name: str, function: lambda_.IFunction, rest_api: apigw.RestApi
    ) -> cw.Dashboard:
        def graph(title: str, *metrics: cw.IMetric) -> cw.GraphWidget:
            return cw.GraphWidget(title=title, left=list(metrics), width=8, height=6)

        dashboard = cw.Dashboard(
            self,
            "Dashboard",
            # Dashboards are global per account: the region keeps two deployments apart.
            dashboard_name=Fn.join("-", ["MantleGateway", stage_name, Aws.REGION]),
        )
        dashboard.add_widgets(
            graph(
                "Requests",
                function.metric_invocations(period=_FIVE_MINUTES, statistic="Sum"),
                _function_metric(function, "UrlRequestCount"),
            ),
            graph(
                "Errors", self.metrics["errors"], self.metrics["url5xx"], self.metrics["rest5xx"]
            ),
            graph(
                "Duration (p50, p99)",
                function.metric_duration(period=_FIVE_MINUTES, statistic="p50"),
                function.metric_duration(period=_FIVE_MINUTES, statistic="p99"),
            ),
        )
        dashboard.add_widgets(
            graph(
                "Concurrency and throttles",
                function.metric("ConcurrentExecutions", period=_FIVE_MINUTES, statistic="Maximum"),
                self.metrics["throttles"],
            ),
            graph(
                "REST API",
                rest_api.metric_count(period=_FIVE_MINUTES, statistic="Sum"),
                rest_api.metric_client_error(period=_FIVE_MINUTES, statistic="Sum"),
                rest_api.metric_latency(period=_FIVE_MINUTES, statistic="p99"),
            ),
            graph(
                "Function URL 4xx / budget refusals",
                _function_metric(function, "Url4xxCount"),
                self.metrics["budget"],
            ),
        )
        if self.alarms:
            dashboard.add_widgets(
                cw.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms), width=24)
            )
        return dashboard


def _function_metric(function: lambda_.IFunction, name: str) -> cw.Metric:
    """A Function URL metric (AWS/Lambda, dimension FunctionName), summed over 5 minutes."""
    return function.metric(name, period=_FIVE_MINUTES, statistic="Sum")
