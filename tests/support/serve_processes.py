"""Several `mantle-gateway serve` processes on one DynamoDB, as several Lambda instances are:
the concurrency tests fire requests at all of them at once and read what they logged."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

COMMAND = str(Path(sys.executable).parent / "mantle-gateway")


Instance = tuple[str, "subprocess.Popen[str]"]
"""The instance's base URL and its process (stdout and stderr merged, as text)."""


@contextmanager
def serve_processes(env: Mapping[str, str], count: int) -> Iterator[list[Instance]]:
    """Start `count` instances against the simulator with `env`; stop them all on exit."""
    processes = [
        subprocess.Popen(
            [COMMAND, "serve", "--upstream", "simulator", "--port", "0"],
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(count)
    ]
    try:
        yield [(_url(p), p) for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            process.wait(timeout=10)


def _url(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    end = time.monotonic() + 30
    while time.monotonic() < end:
        line = process.stdout.readline()
        if "listening on " in line:
            return line.split("listening on ")[1].split()[0]
    raise AssertionError("an instance did not start")
