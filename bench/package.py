"""Measure 5b: the size of the Lambda deployment package and of the streaming-runtime layer.

Built by the infrastructure's own packaging steps (`infra/packaging.py`, which imports no CDK):
pip installs the hashed `requirements-lambda.lock` for arm64 / CPython 3.13 with binary wheels
only and no bytecode, botocore is trimmed to the models the function loads, our sources are
copied on top minus the same excludes, the whole is compiled by a local CPython 3.13 if there is
one (as `cdk deploy` does), and each folder is zipped as a CDK asset is. A pip failure (no
package index) is reported as "not measured", never raised.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.procs import REPO
from infra.packaging import (
    FUNCTION_EXCLUDES,
    LAMBDA_PYTHON,
    LAYER_EXCLUDES,
    LOCK_FILE,
    PIP_PLATFORMS,
    copy_sources,
    finish_bundle,
    pip_command,
)

PLATFORMS = PIP_PLATFORMS["arm64"]
PYTHON_VERSION = LAMBDA_PYTHON
"""The function's runtime and architecture (DESIGN §6: arm64, Python 3.13)."""
_PIP_TIMEOUT = 600


@dataclass(frozen=True, slots=True)
class Size:
    unzipped: int
    zipped: int


@dataclass(frozen=True, slots=True)
class Packages:
    function: Size | None
    layer: Size
    function_dir: Path | None
    """The unzipped function bundle, for the cold-import measure (None when not built)."""
    runtime_python: str | None = None
    """The CPython 3.13 that compiled the bundle's bytecode, as deployment does when the machine
    has one (None: the bundle carries no bytecode)."""
    reason: str = ""
    """Why the function package was not measured."""


def build(workdir: Path, *, with_dependencies: bool) -> Packages:
    layer_dir = workdir / "layer"
    copy_sources(REPO / "layers" / "streaming_runtime", layer_dir, LAYER_EXCLUDES)
    layer = Size(tree_size(layer_dir), zip_size(layer_dir))
    if not with_dependencies:
        return Packages(None, layer, None, "not measured (--quick skips pip)")
    function_dir = workdir / "function"
    failure = pip_install(function_dir)
    if failure:
        return Packages(None, layer, None, f"not measured ({failure})")
    runtime_python = finish_bundle(
        function_dir, REPO / "functions", FUNCTION_EXCLUDES, PYTHON_VERSION, run=_quiet
    )
    function = Size(tree_size(function_dir), zip_size(function_dir))
    return Packages(function, layer, function_dir, runtime_python)


def _quiet(command: Sequence[str]) -> None:
    subprocess.run(list(command), check=True, capture_output=True, timeout=_PIP_TIMEOUT)


def pip_install(target: Path) -> str:
    """Lambda-platform wheels into `target`; "" on success, else a one-line reason."""
    command = pip_command(
        lock=REPO / LOCK_FILE,
        target=target,
        python_version=PYTHON_VERSION,
        platforms=PLATFORMS,
    )
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=_PIP_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"pip could not run: {exc}"
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
        return "pip failed: " + (lines[-1] if lines else f"exit {done.returncode}")[:160]
    return ""


def tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def zip_size(root: Path) -> int:
    """Bytes of `root` zipped with deflate, as a CDK file asset is uploaded."""
    handle, name = tempfile.mkstemp(suffix=".zip")
    os.close(handle)
    archive = Path(name)
    try:
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    out.write(path, path.relative_to(root).as_posix())
        return archive.stat().st_size
    finally:
        archive.unlink(missing_ok=True)
