"""Local pip bundling for the arm64 Lambda, without Docker.

CDK calls `LocalPythonBundling.try_bundle(output_dir, ...)` while staging an asset (only for the
stacks it is asked to bundle: `cdk synth`/`deploy` of those stacks, or `python app.py`). It installs
the hashed lock `requirements-lambda.lock` for the Lambda platform with pip's cross-platform flags,
then copies our sources on top, into `output_dir` — the directory CDK hands us under `cdk.out/`,
never the repository.
https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.ILocalBundling.html
https://repost.aws/knowledge-center/lambda-python-package-compatible

Returning True tells CDK not to fall back to Docker; a failing pip raises, so a broken bundle
never silently turns into a Docker attempt.

The asset hash is CDK's source fingerprint (the sources minus `exclude`) plus the bundling
options; the lock lives outside the source folder, so its SHA-256 is put into the bundling
options' environment to make a dependency change produce a new asset.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from infra.packaging import (
    FUNCTION_EXCLUDES,
    LAYER_EXCLUDES,
    PIP_PLATFORMS,
    BundlingError,
    Runner,
    find_runtime_python,
    finish_bundle,
    pip_command,
    run_command,
)


@jsii.implements(ILocalBundling)
class LocalPythonBundling:
    """pip install for the Lambda platform + our sources, straight into CDK's output folder."""

    def __init__(
        self,
        *,
        source_dir: Path,
        lock: Path,
        excludes: Sequence[str],
        python_version: str,
        platforms: Sequence[str],
        run: Runner = run_command,
        find_python: Callable[[str], str | None] = find_runtime_python,
    ) -> None:
        self.source_dir = source_dir
        self.lock = lock
        self.excludes = tuple(excludes)
        self.python_version = python_version
        self.platforms = tuple(platforms)
        self._run = run
        self._find_python = find_python

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_options: Any) -> bool:
        target = Path(output_dir)
        command = pip_command(
            lock=self.lock,
            target=target,
            python_version=self.python_version,
            platforms=self.platforms,
        )
        try:
            self._run(command)
        except subprocess.CalledProcessError as exc:
            raise BundlingError(
                f"pip exited with {exc.returncode} installing {self.lock.name} for "
                f"{self.platforms[0]}/cp{self.python_version.replace('.', '')} (is the package "
                "index reachable? a hash mismatch: run make lock); templates alone: "
                "SKIP_BUNDLING=1 make synth, or cdk synth -c skipBundling=true"
            ) from exc
        compiled_by = finish_bundle(
            target,
            self.source_dir,
            self.excludes,
            self.python_version,
            run=self._run,
            find_python=self._find_python,
        )
        if compiled_by is None:
            print(
                f"note: no python{self.python_version} compiled the bundle, so it ships without "
                "bytecode and each cold start compiles every module (install that Python, "
                "e.g. with pyenv, to precompile)",
                file=sys.stderr,
            )
        return True


def python_function_code(
    *,
    source_dir: Path,
    lock: Path,
    runtime: lambda_.Runtime,
    architecture: lambda_.Architecture,
    excludes: Sequence[str] = FUNCTION_EXCLUDES,
) -> lambda_.Code:
    """The function's code asset: sources from `source_dir` plus the locked dependencies."""
    python_version = runtime.name.removeprefix("python")
    platforms = PIP_PLATFORMS[architecture.name]
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    bundler = LocalPythonBundling(
        source_dir=source_dir,
        lock=lock,
        excludes=excludes,
        python_version=python_version,
        platforms=platforms,
    )
    return lambda_.Code.from_asset(
        str(source_dir),
        exclude=list(excludes),
        bundling=BundlingOptions(
            # Required by the API; never pulled, because try_bundle always succeeds or raises.
            image=runtime.bundling_image,
            local=bundler,
            environment={
                "LOCK_SHA256": digest,
                "PIP_PLATFORMS": ",".join(platforms),
                "PIP_PYTHON_VERSION": python_version,
            },
        ),
    )


def layer_code(*, layer_dir: Path) -> lambda_.Code:
    """A layer made of `layer_dir`'s contents: Lambda extracts them under `/opt/`.

    `layers/streaming_runtime/streaming_runtime/exec_wrapper` therefore runs as
    `/opt/streaming_runtime/exec_wrapper`. No bundling, so the layout is the same whether or not
    bundling runs; file modes (the wrapper's executable bit) are kept as in the repository.
    """
    return lambda_.Code.from_asset(str(layer_dir), exclude=list(LAYER_EXCLUDES))
