"""`make lock`: resolve requirements.txt for the Lambda platform into requirements-lambda.lock.

The lock pins every package the function ships, transitive ones too, each with the SHA-256 of
every file of its pinned version, so `pip install --require-hashes --no-deps` installs the same
files on every machine (`infra/packaging.py`). It is resolved for the function's platform, not for
the machine that runs this: CPython 3.13 on Amazon Linux 2023, aarch64, glibc 2.34. pip cannot do
that (it evaluates environment markers such as `python_version < "3.13"` against its own
interpreter), so uv resolves it (`uv pip compile --python-version --python-platform`); uv is a dev
dependency, needed only here.

    make lock                       # after editing requirements.txt; commit both files

Run it, too, to move the lock to newer transitive releases. It needs the package index; bundling
from the lock needs the index as well, but never resolves anything.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from infra.packaging import LAMBDA_GLIBC_MINOR, LAMBDA_PYTHON, LOCK_FILE, MACHINES

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = "requirements.txt"
UV_PLATFORM = f"{MACHINES['arm64']}-manylinux_2_{LAMBDA_GLIBC_MINOR}"
"""The function's architecture (arm64, DESIGN §6) and glibc, as uv names a target platform."""


def header(python_version: str = LAMBDA_PYTHON, platform: str = UV_PLATFORM) -> str:
    """The lock's first lines: what it was resolved for and how to make it again."""
    return (
        f"# The Lambda function's dependencies for CPython {python_version} on {platform}, each\n"
        "# pinned with the hashes of its files. Written from requirements.txt by `make lock`\n"
        "# (infra/lock.py); do not edit. Bundling installs exactly this, with\n"
        "# pip install --require-hashes --no-deps (infra/packaging.py).\n"
    )


def uv_command(
    requirements: Path, *, python_version: str = LAMBDA_PYTHON, platform: str = UV_PLATFORM
) -> list[str]:
    """uv's resolution for the target, printed to stdout (the header is ours)."""
    return [
        sys.executable, "-m", "uv", "pip", "compile", str(requirements),
        "--python-version", python_version,
        "--python-platform", platform,
        "--generate-hashes",
        "--no-header",
        "--quiet",
    ]  # fmt: skip


def write_lock(project_root: Path = PROJECT_ROOT) -> Path:
    """Resolve and write the lock; raises CalledProcessError when uv fails."""
    done = subprocess.run(
        uv_command(Path(REQUIREMENTS)),
        cwd=project_root,  # relative, so the lock's "via -r requirements.txt" notes are too
        capture_output=True,
        text=True,
        check=True,
    )
    lock = project_root / LOCK_FILE
    lock.write_text(header() + done.stdout, encoding="utf-8")
    return lock


def main() -> int:
    try:
        lock = write_lock()
    except subprocess.CalledProcessError as exc:
        detail = exc.stderr.strip().splitlines()[-1:] or [f"exit {exc.returncode}"]
        hint = "is uv installed (make install)?"
        print(f"make lock: uv failed ({detail[0]}); {hint}", file=sys.stderr)
        return 1
    print(f"wrote {lock.relative_to(PROJECT_ROOT)} for CPython {LAMBDA_PYTHON} on {UV_PLATFORM}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
