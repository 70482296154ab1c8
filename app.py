"""CDK entry point: one stack set per stage listed in cdk.json context.

    cdk deploy --all -c stage=prod       deploy one stage (the cdk CLI passes cdk.json context)
    python app.py                        synthesize every stage into cdk.out/ (make synth)
    STAGE=dev SKIP_BUNDLING=1 python app.py   one stage, no pip: a quick synth

A bad stage value stops here with one line naming the stage and the field.
"""

from __future__ import annotations

import os
import sys

import aws_cdk as cdk

from infra.application import (
    PROJECT_ROOT,
    SKIP_BUNDLING_CONTEXT,
    apply_default_context,
    build,
    cdk_json_context,
)
from infra.stages import StageConfigError


def main() -> None:
    # Without the cdk CLI there is no CDK_OUTDIR and App() would write to a temp dir.
    outdir = None if os.environ.get("CDK_OUTDIR") else str(PROJECT_ROOT / "cdk.out")
    app = cdk.App(outdir=outdir)
    # The CLI hands cdk.json's context over; a plain `python app.py` reads it itself.
    apply_default_context(app, cdk_json_context())
    if os.environ.get("STAGE") and app.node.try_get_context("stage") is None:
        app.node.set_context("stage", os.environ["STAGE"])
    if os.environ.get("SKIP_BUNDLING"):
        app.node.set_context(SKIP_BUNDLING_CONTEXT, os.environ["SKIP_BUNDLING"])
    try:
        build(app)
    except StageConfigError as err:
        sys.exit(f"cdk.json: {err}")
    app.synth()


if __name__ == "__main__":
    main()
