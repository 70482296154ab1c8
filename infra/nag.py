"""cdk-nag (v3): the AwsSolutions checks on every stack, and acknowledgements with reasons.

cdk-nag 3 is a CDK policy-validation plugin: it walks the construct tree at synthesis, and any
finding that is not acknowledged interrupts `synth` with a report. An acknowledgement is CDK's
`Validations.of(construct).acknowledge(...)`; it covers the construct and everything below it,
and one finding of a multi-finding rule is spelled `Rule[finding]` (e.g. `AwsSolutions-IAM5
[Resource::*]`). The reasons are also written into the template metadata (`cdk_nag`) for audits.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


def add_checks(app: App) -> None:
    Validations.of(app).add_plugins(
        AwsSolutionsChecks(app, verbose=True, write_suppressions_to_cloud_formation=True)
    )


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding on `scope` (and its children) for a written reason."""
    if not reason.strip():
        raise ValueError(f"{rule}: an acknowledgement needs a reason")
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))
