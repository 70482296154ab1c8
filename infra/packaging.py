"""How the Lambda bundle is made, with no CDK import: what is left out, the pip call for the
Lambda platform, copying sources, trimming botocore. `infra/bundling.py` runs it inside CDK's
asset staging; `bench/` builds the same bundle to measure it without starting jsii.

Two machines build the same bundle: pip installs exactly the pinned, hashed files of
`requirements-lambda.lock` (`--require-hashes --no-deps`), which `infra/lock.py` resolves from
`requirements.txt` for the Lambda platform (not for the machine that runs pip); the bytecode is
compiled with the runtime's paths (`/var/task/...`), not the build folder's.
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

LOCK_FILE = "requirements-lambda.lock"
"""At the project root: the function's dependencies, each pinned with its hashes, for the
Lambda platform below (`make lock` writes it from requirements.txt)."""

LAMBDA_PYTHON = "3.13"
LAMBDA_TASK_ROOT = "/var/task"
LAMBDA_GLIBC_MINOR = 34
"""The python3.12+ runtimes run on Amazon Linux 2023, whose glibc is 2.34: wheels up to
manylinux_2_34 load there."""
MACHINES = {"arm64": "aarch64", "x86_64": "x86_64"}
"""Lambda architecture name → the machine name in wheel platform tags."""


def manylinux_platforms(machine: str, glibc_minor: int = LAMBDA_GLIBC_MINOR) -> tuple[str, ...]:
    """Every manylinux tag a CPython on glibc 2.`glibc_minor` accepts for `machine`, newest
    first, with the legacy aliases (PEP 600; PEP 599/571/513). pip derives none of them from
    another, so each is passed: with only `manylinux2014_aarch64`, a package whose current
    release ships `manylinux_2_28_aarch64` wheels alone would not install."""
    floor = 17 if machine == "aarch64" else 5  # the oldest manylinux each machine has
    aliases = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    tags: list[str] = []
    for minor in range(glibc_minor, floor - 1, -1):
        tags.append(f"manylinux_2_{minor}_{machine}")
        if minor in aliases:
            tags.append(f"{aliases[minor]}_{machine}")
    return tuple(tags)


PIP_PLATFORMS = {name: manylinux_platforms(machine) for name, machine in MACHINES.items()}


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
    *, lock: Path, target: Path, python_version: str, platforms: Sequence[str]
) -> list[str]:
    """The pip call that installs the lock's wheels for Lambda on any host: binary wheels only,
    each file checked against its hash, nothing resolved (the lock is complete for the target;
    resolving again would evaluate environment markers for the host's Python)."""
    return [
        sys.executable, "-m", "pip", "install",
        *(option for platform in platforms for option in ("--platform", platform)),
        "--implementation", "cp",
        "--python-version", python_version,
        "--only-binary=:all:",
        "--require-hashes",
        "--no-deps",
        "--no-compile",
        "--disable-pip-version-check",
        "--quiet",
        "-r", str(lock),
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
    .pyc files are used without comparing source timestamps, which zipping may change; `-d`
    records each module's path as it will be in Lambda (tracebacks name `/var/task/...`)
    instead of the build folder's, which differs per machine and would change every .pyc.
    False (the bundle still works, only colder) when some file could not be compiled."""
    command = [interpreter, "-m", "compileall", "-q", "-j", "0", "-d", LAMBDA_TASK_ROOT]
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
    compiled = interpreter is not None and compile_bytecode(target, interpreter, run)
    normalize_modes(target)
    return interpreter if compiled else None


def normalize_modes(target: Path) -> None:
    """Files 0644, folders 0755, whatever the umask that pip and git ran under: Lambda reads the
    package as another user, so it needs them readable by all, and the asset zip stores each
    file's mode, so two machines with different umasks would otherwise build different zips.
    (re:Post knowledge center "lambda-deployment-package-errors": 644 files, 755 folders)."""
    target.chmod(0o755)
    for path in target.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


LAYER_EXCLUDES: tuple[str, ...] = ("__pycache__", "*.pyc", "tests", ".gitkeep", ".DS_Store")
