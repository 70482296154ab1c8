"""How the Lambda bundle is made, with no CDK import: what is left out, the pip call for the
Lambda platform, copying sources, trimming botocore. `infra/bundling.py` runs it inside CDK's
asset staging; `bench/` builds the same bundle to measure it without starting jsii.
"""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath

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

PIP_PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}


class BundlingError(RuntimeError):
    """pip could not build the Lambda bundle; the message says how to synthesize without it."""


def run_command(command: Sequence[str]) -> None:
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


def find_runtime_python(version: str) -> str | None:
    """A CPython of the Lambda runtime's version on this machine (`python3.13` on PATH, or a
    pyenv install), or None. Bytecode is version-specific but not platform-specific, so any
    host's 3.13 compiles what arm64 Lambda runs."""
    candidates = [shutil.which(f"python{version}") or ""]
    pyenv = Path.home() / ".pyenv" / "versions"
    candidates += sorted(str(p) for p in pyenv.glob(f"{version}*/bin/python{version}"))
    probe = "import sys; print('%d.%d' % sys.version_info[:2])"
    for candidate in filter(None, candidates):
        try:
            done = subprocess.run(
                [candidate, "-c", probe], capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0 and done.stdout.strip() == version:
            return candidate
    return None


def compile_bytecode(target: Path, interpreter: str, run: Runner = run_command) -> bool:
    """Compile the bundle with the runtime's own CPython so Lambda, whose /var/task is
    read-only, does not compile every module again on every cold start. `unchecked-hash`
    .pyc files are used without comparing source timestamps, which zipping may change.
    False (the bundle still works, only colder) when some file could not be compiled."""
    command = [interpreter, "-m", "compileall", "-q", "-j", "0"]
    command += ["--invalidation-mode", "unchecked-hash", str(target)]
    try:
        run(command)
    except subprocess.CalledProcessError:
        return False
    return True


def finish_bundle(
    target: Path,
    source_dir: Path,
    excludes: Sequence[str],
    python_version: str,
    *,
    run: Runner = run_command,
    find_python: Callable[[str], str | None] = find_runtime_python,
) -> str | None:
    """Everything a function bundle gets after pip installed its wheels into `target`; returns
    the interpreter that compiled it, or None when it ships without bytecode."""
    shutil.rmtree(target / "bin", ignore_errors=True)  # console scripts: host shebangs, unused
    trim_botocore_data(target)
    copy_sources(source_dir, target, excludes)
    interpreter = find_python(python_version)
    if interpreter is not None and compile_bytecode(target, interpreter, run):
        return interpreter
    return None


LAYER_EXCLUDES: tuple[str, ...] = ("__pycache__", "*.pyc", "tests", ".gitkeep", ".DS_Store")
