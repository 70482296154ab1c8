"""cdk-nag AwsSolutions: no open finding, every acknowledgement needed and reasoned; outputs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Annotations, Match
from cdk_nag import AwsSolutionsChecks

import infra.nag
from infra.application import build, cdk_json_context

if TYPE_CHECKING:
    from conftest import Synthesis

    from infra.application import StageStacks


def all_stacks(synth: Synthesis) -> list[cdk.Stack]:
    stacks: list[StageStacks] = list(synth.stages.values())
    return [stack for s in stacks for stack in (s.data, s.gateway)]


def test_nag_finds_nothing_unacknowledged_and_cdk_reports_no_error(synth: Synthesis) -> None:
    # The fixture's app.synth() already ran the plugin (it raises on a finding); check again
    # explicitly, and check CDK's own annotations.
    report = AwsSolutionsChecks().validate_scope(synth.app)

    assert [v.rule_name for v in report.violations] == []
    assert report.success is True
    for stack in all_stacks(synth):
        annotations = Annotations.from_stack(stack)
        assert annotations.find_error("*", Match.any_value()) == []
        assert annotations.find_warning("*", Match.any_value()) == []


def test_every_acknowledgement_answers_a_real_finding_and_has_a_reason(
    synth: Synthesis,
) -> None:
    # GIVEN the same stages built again, with acknowledgements recorded instead of applied
    acknowledged: set[tuple[str, str]] = set()
    reasons: list[str] = []

    def record(scope: cdk.IConstruct, rule: str, reason: str) -> None:
        acknowledged.add((scope.node.path, rule))
        reasons.append(reason)

    context = {
        **cdk_json_context(),
        "stages": synth.app.node.try_get_context("stages"),
        "aws:cdk:bundling-stacks": [],
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(infra.nag, "acknowledge", record)
        bare = cdk.App(context=context)
        build(bare)

    # WHEN cdk-nag checks it
    findings = {
        (resource.construct_path, violation.rule_name)
        for violation in AwsSolutionsChecks().validate_scope(bare).violations
        for resource in violation.violating_resources
    }

    assert findings
    assert acknowledged

    # THEN each finding sits under an acknowledgement of that rule, and each is used
    def covered_by(finding: tuple[str, str], ack: tuple[str, str]) -> bool:
        return finding[1] == ack[1] and (finding[0] + "/").startswith(ack[0] + "/")

    assert {f for f in findings if not any(covered_by(f, a) for a in acknowledged)} == set()
    assert {a for a in acknowledged if not any(covered_by(f, a) for f in findings)} == set()
    assert all(len(reason) > 60 for reason in reasons)


def test_acknowledgement_reasons_are_written_into_the_templates(synth: Synthesis) -> None:
    found = {}
    for resource in synth.template("prod", "gateway").to_json()["Resources"].values():
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
            found[rule["id"]] = rule["reason"]

    assert {
        "AwsSolutions-APIG2",
        "AwsSolutions-APIG3",
        "AwsSolutions-APIG4",
        "AwsSolutions-COG4",
        "AwsSolutions-L1",
        "AwsSolutions-IAM5[Resource::*]",
    } <= set(found)
    assert all(reason.strip() for reason in found.values())


def test_an_empty_reason_is_refused() -> None:
    with pytest.raises(ValueError, match="needs a reason"):
        infra.nag.acknowledge(cdk.App(), "AwsSolutions-L1", " ")


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_gateway_outputs_both_urls_and_their_base_urls(synth: Synthesis, stage: str) -> None:
    outputs = synth.template(stage, "gateway").find_outputs("*")
    url_id, _ = synth.one(stage, "gateway", "AWS::Lambda::Url")

    assert outputs["FunctionUrl"]["Value"] == {"Fn::GetAtt": [url_id, "FunctionUrl"]}
    assert outputs["OpenAiBaseUrl"]["Value"] == {
        "Fn::Join": ["", [{"Fn::GetAtt": [url_id, "FunctionUrl"]}, "openai/v1"]]
    }
    assert outputs["AnthropicBaseUrl"]["Value"] == {
        "Fn::Join": ["", [{"Fn::GetAtt": [url_id, "FunctionUrl"]}, "anthropic"]]
    }
    rest = outputs["RestApiOpenAiBaseUrl"]["Value"]["Fn::Join"][1]
    assert rest[-1] == "/openai/v1"
    assert outputs["RestApiAnthropicBaseUrl"]["Value"]["Fn::Join"][1][-1] == "/anthropic"
    assert "RestApiUrl" in outputs
    assert "FunctionName" in outputs


def test_every_stage_gets_a_data_and_a_gateway_stack(synth: Synthesis) -> None:
    names = sorted(stack.stack_name for stack in all_stacks(synth))

    assert names == [
        "MantleGateway-dev-Data",
        "MantleGateway-dev-Gateway",
        "MantleGateway-flagoff-Data",
        "MantleGateway-flagoff-Gateway",
        "MantleGateway-prod-Data",
        "MantleGateway-prod-Gateway",
    ]
