"""Measure 5a: cold import time, each figure a fresh interpreter (median of repetitions).

- the handler module alone (`mantle_gateway.doors.lambda_entry`), the figure the target names;
  it defers building the gateway to the first request, so that alone says little about a cold
  start, hence also
- "to first request": the handler plus everything the first request adds before any network:
  `wiring.build` (settings, the httpx pool with its TLS context, the stores, Powertools), the
  SigV4 signer and the stores' DynamoDB client (`store.wire`, its transport and credentials),
  the role's credentials in the environment as Lambda gives them;
- the same from the real Lambda bundle. When this machine has CPython 3.13 (the runtime's
  version), the bundle was compiled by it as deployment compiles it, and both figures run on
  3.13: without the bytecode (what a bundle built where no 3.13 exists costs: /var/task is
  read-only, so Lambda would compile every module on every cold start) and as built. Without a
  3.13 here, both run on this interpreter: as built (no bytecode) and once compiled;
- the bare dependencies, and the streaming runtime of the layer, for comparison.
Times are measured inside the child with `time.perf_counter()` around the imports, so the
interpreter's own start-up is left out.
"""

from __future__ import annotations

import compileall
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.procs import REPO
from bench.stats import median

HANDLER = "import mantle_gateway.doors.lambda_entry"
FIRST_REQUEST = """
import os
os.environ.update(AWS_ACCESS_KEY_ID="ASIABENCH", AWS_SECRET_ACCESS_KEY="bench",
                  AWS_SESSION_TOKEN="bench")  # where Lambda puts the role's session
import mantle_gateway.doors.lambda_entry
from mantle_gateway import wiring
from mantle_gateway.settings import Settings
from mantle_gateway.store.dynamo import Dynamo
from mantle_gateway.upstream.signing import default_credentials
local = "http://127.0.0.1:9"
env = {"AWS_REGION": "us-east-1", "MANTLE_ENDPOINT_URL": local, "AWS_ENDPOINT_URL_DYNAMODB": local}
wiring.build(Settings.from_env(env))
Dynamo(region="us-east-1", endpoint_url=local).wire
default_credentials()()
"""
DEPENDENCIES = ("httpx", "botocore.session", "aws_lambda_powertools")
LAYER = "import streaming_runtime.bootstrap"

_CHILD = """
import sys, time
sys.path[:0] = {path!r}
start = time.perf_counter()
exec(compile({body!r}, "<bench>", "exec"))
print(repr(time.perf_counter() - start))
"""


@dataclass(frozen=True, slots=True)
class ColdStart:
    handler: float
    first_request: float
    dependencies: dict[str, float]
    layer: float
    bundle_no_pyc: float | None
    bundle_pyc: float | None
    bundle_python: str = ""
    """The Python version the bundle figures ran on."""


def measure(repeats: int, bundle: Path | None, runtime_python: str | None = None) -> ColdStart:
    def timed(body: str, **options: object) -> float:
        return median([_run(body, **options) for _ in range(repeats)])  # type: ignore[arg-type]

    no_pyc = with_pyc = None
    python = runtime_python or sys.executable
    if bundle is not None:
        # -S: no site-packages (only the bundle and the standard library), -B: write no .pyc.
        flags = ["-S", "-B"]
        if runtime_python is not None:
            # Looking for bytecode only under an empty prefix ignores the bundle's __pycache__.
            with tempfile.TemporaryDirectory() as empty:
                ignore = [*flags, "-X", f"pycache_prefix={empty}"]
                no_pyc = timed(FIRST_REQUEST, path=[str(bundle)], flags=ignore, python=python)
        else:
            no_pyc = timed(FIRST_REQUEST, path=[str(bundle)], flags=flags)
            compileall.compile_dir(bundle, quiet=1, workers=2)
        with_pyc = timed(FIRST_REQUEST, path=[str(bundle)], flags=flags, python=python)
    return ColdStart(
        handler=timed(HANDLER),
        first_request=timed(FIRST_REQUEST),
        dependencies={name: timed(f"import {name}") for name in DEPENDENCIES},
        layer=timed(LAYER, path=[str(REPO / "layers" / "streaming_runtime")]),
        bundle_no_pyc=no_pyc,
        bundle_pyc=with_pyc,
        bundle_python=_version(python) if bundle is not None else "",
    )


def _version(python: str) -> str:
    probe = "import platform; print(platform.python_version())"
    done = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _run(
    body: str, path: Sequence[str] = (), flags: Sequence[str] = (), python: str = sys.executable
) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = _CHILD.format(path=list(path), body=body)
    done = subprocess.run(
        [python, *flags, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"cold import failed: {done.stderr.strip()[-1500:]}")
    return float(done.stdout.strip().splitlines()[-1])
