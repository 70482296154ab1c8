"""Local pip bundling for the arm64 Lambda, without Docker.

CDK calls `LocalPythonBundling.try_bundle(output_dir, ...)` while staging an asset (only for the
stacks it is asked to bundle: `cdk synth`/`deploy` of those stacks, or `python app.py`). It installs
`requirements.txt` for the Lambda platform with pip's cross-platform flags, then copies our sources
on top, into `output_dir` — the directory CDK hands us under `cdk.out/`, never the repository.
https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.ILocalBundling.html
https://repost.aws/knowledge-center/lambda-python-package-compatible

Returning True tells CDK not to fall back to Docker; a failing pip raises, so a broken bundle
never silently turns into a Docker attempt.

The asset hash is CDK's source fingerprint (the sources minus `exclude`) plus the bundling
options; the requirements file lives outside the source folder, so its SHA-256 is put into the
bundling options' environment to make a dependency change produce a new asset.
"""

from __future__ import annotations

import fnmatch
import hashlib
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import jsii
from aws_cdk import BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

Runner = Callable[[Sequence[str]], None]

# Left out of the Lambda bundle (and of the asset fingerprint): the local-only packages, tests,
# caches and packaging leftovers. Pattern rules: a pattern without "/" matches a file or folder
# name at any depth; "**/NAME" likewise; anything else is a path from the source root.
FUNCTION_EXCLUDES: tuple[str, ...] = (
    "mantle_gateway/simulator",
    "mantle_gateway/cli",
    "tests",
    "__pycache__",
    "*.pyc",
    "*.egg-info",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".DS_Store",
)

_PIP_PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}


class BundlingError(RuntimeError):
    """pip could not build the Lambda bundle; the message says how to synthesize without it."""


def _run(command: Sequence[str]) -> None:
    subprocess.run(list(command), check=True)


def is_excluded(relative: PurePosixPath, patterns: Sequence[str]) -> bool:
    """Whether `relative` (a path inside the source folder) or one of its parents is excluded."""
    text = relative.as_posix()
    for pattern in patterns:
        name_pattern = pattern.removeprefix("**/")
        if "/" not in name_pattern:
            if any(fnmatch.fnmatchcase(part, name_pattern) for part in relative.parts):
                return True
        elif fnmatch.fnmatchcase(text, pattern) or text.startswith(pattern.rstrip("/") + "/"):
            return True
    return False


def copy_sources(source: Path, target: Path, excludes: Sequence[str]) -> list[str]:
    """Copy the non-excluded files of `source` into `target`; returns their relative paths."""
    copied: list[str] = []
    for path in sorted(source.rglob("*")):
        relative = PurePosixPath(path.relative_to(source).as_posix())
        if is_excluded(relative, excludes) or path.is_dir():
            continue
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)
        copied.append(relative.as_posix())
    return copied


def pip_command(
    *, requirements: Path, target: Path, python_version: str, platform: str
) -> list[str]:
    """The pip call that fetches Lambda-compatible wheels on any host (binary wheels only)."""
    return [
        sys.executable, "-m", "pip", "install",
        "--platform", platform,
        "--implementation", "cp",
        "--python-version", python_version,
        "--only-binary=:all:",
        "--no-compile",
        "--disable-pip-version-check",
        "--quiet",
        "-r", str(requirements),
        "-t", str(target),
    ]  # fmt: skip


BOTOCORE_SERVICES_KEPT: tuple[str, ...] = ("dynamodb", "sts", "sso", "sso-oidc")
"""botocore ships ~400 service models (most of its 26 MiB); the function calls DynamoDB only
(STS/SSO are kept for the credential chain). The root files (endpoints, partitions, retry
and default configuration) stay."""


def trim_botocore_data(target: Path, keep: Sequence[str] = BOTOCORE_SERVICES_KEPT) -> list[str]:
    """Delete the service models the function never loads; returns the removed service names."""
    data = target / "botocore" / "data"
    if not data.is_dir():
        return []
    removed = []
    for service in sorted(p for p in data.iterdir() if p.is_dir()):
        if service.name not in keep:
            shutil.rmtree(service)
            removed.append(service.name)
    return removed


@jsii.implements(ILocalBundling)
class LocalPythonBundling:
    """pip install for the Lambda platform + our sources, straight into CDK's output folder."""

    def __init__(
        self,
        *,
        source_dir: Path,
        requirements: Path,
        excludes: Sequence[str],
        python_version: str,
        platform: str,
        run: Runner = _run,
    ) -> None:
        self.source_dir = source_dir
        self.requirements = requirements
        self.excludes = tuple(excludes)
        self.python_version = python_version
        self.platform = platform
        self._run = run

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_options: Any) -> bool:
        target = Path(output_dir)
        command = pip_command(
            requirements=self.requirements,
            target=target,
            python_version=self.python_version,
            platform=self.platform,
        )
        try:
            self._run(command)
        except subprocess.CalledProcessError as exc:
            raise BundlingError(
                f"pip exited with {exc.returncode} installing {self.requirements.name} for "
                f"{self.platform}/cp{self.python_version.replace('.', '')} (is the package index "
                "reachable?); templates alone: SKIP_BUNDLING=1 make synth, or "
                "cdk synth -c skipBundling=true"
            ) from exc
        # Console scripts are useless in Lambda and carry host-specific shebangs.
        shutil.rmtree(target / "bin", ignore_errors=True)
        trim_botocore_data(target)
        copy_sources(self.source_dir, target, self.excludes)
        return True


def python_function_code(
    *,
    source_dir: Path,
    requirements: Path,
    runtime: lambda_.Runtime,
    architecture: lambda_.Architecture,
    excludes: Sequence[str] = FUNCTION_EXCLUDES,
) -> lambda_.Code:
    """The function's code asset: sources from `source_dir` plus pinned runtime dependencies."""
    python_version = runtime.name.removeprefix("python")
    platform = _PIP_PLATFORMS[architecture.name]
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    bundler = LocalPythonBundling(
        source_dir=source_dir,
        requirements=requirements,
        excludes=excludes,
        python_version=python_version,
        platform=platform,
    )
    return lambda_.Code.from_asset(
        str(source_dir),
        exclude=list(excludes),
        bundling=BundlingOptions(
            # Required by the API; never pulled, because try_bundle always succeeds or raises.
            image=runtime.bundling_image,
            local=bundler,
            environment={
                "REQUIREMENTS_SHA256": digest,
                "PIP_PLATFORM": platform,
                "PIP_PYTHON_VERSION": python_version,
            },
        ),
    )


LAYER_EXCLUDES: tuple[str, ...] = ("__pycache__", "*.pyc", "tests", ".gitkeep", ".DS_Store")


def layer_code(*, layer_dir: Path) -> lambda_.Code:
    """A layer made of `layer_dir`'s contents: Lambda extracts them under `/opt/`.

    `layers/streaming_runtime/streaming_runtime/exec_wrapper` therefore runs as
    `/opt/streaming_runtime/exec_wrapper`. No bundling, so the layout is the same whether or not
    bundling runs; file modes (the wrapper's executable bit) are kept as in the repository.
    """
    return lambda_.Code.from_asset(str(layer_dir), exclude=list(LAYER_EXCLUDES))
