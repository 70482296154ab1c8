"""Measure 5b: the size of the Lambda deployment package and of the streaming-runtime layer.

Built the way the infrastructure builds them (`infra/bundling.py`), without importing it (that
would start CDK's jsii runtime): pip installs `requirements.txt` for arm64 / CPython 3.13 with
binary wheels only and no bytecode, our sources are copied on top minus the same excludes (read
from `infra/bundling.py` itself, so they cannot drift), and each folder is zipped as a CDK
asset is. A pip failure (no package index) is reported as "not measured", never raised.
"""

from __future__ import annotations

import ast
import fnmatch
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from bench.procs import REPO

PLATFORM = "manylinux2014_aarch64"
PYTHON_VERSION = "3.13"
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
    reason: str = ""
    """Why the function package was not measured."""


def build(workdir: Path, *, with_dependencies: bool) -> Packages:
    layer_dir = workdir / "layer"
    copy_tree(REPO / "layers" / "streaming_runtime", layer_dir, excludes("LAYER_EXCLUDES"))
    layer = Size(tree_size(layer_dir), zip_size(layer_dir))
    if not with_dependencies:
        return Packages(None, layer, None, "not measured (--quick skips pip)")
    function_dir = workdir / "function"
    failure = pip_install(function_dir)
    if failure:
        return Packages(None, layer, None, f"not measured ({failure})")
    shutil.rmtree(function_dir / "bin", ignore_errors=True)
    copy_tree(REPO / "functions", function_dir, excludes("FUNCTION_EXCLUDES"))
    function = Size(tree_size(function_dir), zip_size(function_dir))
    return Packages(function, layer, function_dir)


def pip_install(target: Path) -> str:
    """Lambda-platform wheels into `target`; "" on success, else a one-line reason."""
    command = [
        sys.executable, "-m", "pip", "install",
        "--platform", PLATFORM,
        "--implementation", "cp",
        "--python-version", PYTHON_VERSION,
        "--only-binary=:all:",
        "--no-compile",
        "--disable-pip-version-check",
        "--quiet",
        "-r", str(REPO / "requirements.txt"),
        "-t", str(target),
    ]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=_PIP_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"pip could not run: {exc}"
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
        return "pip failed: " + (lines[-1] if lines else f"exit {done.returncode}")[:160]
    return ""


def excludes(name: str) -> tuple[str, ...]:
    """A tuple of string literals assigned to `name` in infra/bundling.py."""
    tree = ast.parse((REPO / "infra" / "bundling.py").read_text())
    for node in ast.walk(tree):
        target: ast.expr | None = None
        value: ast.expr | None = None
        if isinstance(node, ast.AnnAssign):
            target, value = node.target, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        if isinstance(target, ast.Name) and target.id == name and value is not None:
            return tuple(str(v) for v in ast.literal_eval(value))
    raise LookupError(f"{name} not found in infra/bundling.py")


def is_excluded(relative: PurePosixPath, patterns: Sequence[str]) -> bool:
    """Same rule as `infra.bundling.is_excluded`: a pattern without "/" matches a name at any
    depth; "**/NAME" likewise; anything else is a path from the source root."""
    text = relative.as_posix()
    for pattern in patterns:
        name_pattern = pattern.removeprefix("**/")
        if "/" not in name_pattern:
            if any(fnmatch.fnmatchcase(part, name_pattern) for part in relative.parts):
                return True
        elif fnmatch.fnmatchcase(text, pattern) or text.startswith(pattern.rstrip("/") + "/"):
            return True
    return False


def copy_tree(source: Path, target: Path, patterns: Sequence[str]) -> None:
    for path in sorted(source.rglob("*")):
        relative = PurePosixPath(path.relative_to(source).as_posix())
        if path.is_dir() or is_excluded(relative, patterns):
            continue
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)


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
