"""requirements-lambda.lock: every runtime requirement at its pin, every file hashed, resolved
for the platform the bundle is installed for. Reads the committed files only (no index)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from infra import lock
from infra.packaging import LOCK_FILE, PIP_PLATFORMS

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)$")
_HASH = re.compile(r"^--hash=sha256:[0-9a-f]{64}$")


def canonical(name: str) -> str:
    """PEP 503 name normalization: `Typing_Extensions` and `typing-extensions` are one project."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = _PIN.match(line)
        assert match, f"{path.name}: {line!r} is not pinned with =="
        pins[canonical(match[1])] = match[2]
    return pins


def lock_entries(text: str) -> dict[str, tuple[str, list[str]]]:
    """{name: (version, hash options)} from pip's requirements syntax with continuation lines;
    anything but a plain pin with hashes (a URL, an editable, a marker, an option) fails."""
    entries: dict[str, tuple[str, list[str]]] = {}
    logical = " ".join(
        line.split("#", 1)[0].strip() for line in text.replace("\\\n", " ").splitlines()
    )
    for requirement in re.split(r"\s+(?=[A-Za-z0-9][A-Za-z0-9._-]*==)", logical.strip()):
        pin, *options = requirement.split()
        match = _PIN.match(pin)
        assert match, f"{LOCK_FILE}: {pin!r} is not name==version"
        assert all(_HASH.match(option) for option in options), f"{pin}: {options}"
        entries[canonical(match[1])] = (match[2], options)
    return entries


@pytest.fixture(scope="module")
def lock_text(project_root: Path) -> str:
    return (project_root / LOCK_FILE).read_text()


def test_every_runtime_requirement_is_locked_at_its_pin_with_hashes(
    project_root: Path, lock_text: str
) -> None:
    pins = requirement_pins(project_root / "requirements.txt")
    entries = lock_entries(lock_text)

    assert pins, "requirements.txt pins nothing"
    for name, version in pins.items():
        assert name in entries, f"{name} is not in {LOCK_FILE}: run make lock"
        assert entries[name][0] == version, f"{name}: {entries[name][0]} locked, {version} pinned"
    for name, (_, hashes) in entries.items():
        assert hashes, f"{name} has no hash"
    # Transitive packages are locked too (botocore needs urllib3, httpx needs certifi, ...).
    assert {"urllib3", "certifi", "jmespath"} <= set(entries) - set(pins)


def test_the_lock_names_the_platform_bundling_installs_for(lock_text: str) -> None:
    assert lock_text.startswith(lock.header())
    assert lock.UV_PLATFORM == "aarch64-manylinux_2_34"
    # uv resolved for the newest tag pip is given: the same platform, spelled two ways.
    assert PIP_PLATFORMS["arm64"][0] == "manylinux_2_34_aarch64"


def test_the_lock_reader_refuses_what_require_hashes_would() -> None:
    hash_a, hash_b = "--hash=sha256:" + "a" * 64, "--hash=sha256:" + "b" * 64
    good = f"a==1 \\\n    {hash_a}\n    # via b\nb==2 {hash_b}"
    assert lock_entries(good) == {"a": ("1", [hash_a]), "b": ("2", [hash_b])}
    for bad in ("a>=1 --hash=sha256:" + "a" * 64, "a==1 --hash=md5:00", "-e ./pkg"):
        with pytest.raises(AssertionError):
            lock_entries(bad)


def test_make_lock_asks_uv_for_the_lambda_target() -> None:
    command = lock.uv_command(Path("requirements.txt"))

    joined = " ".join(command)
    assert "pip compile requirements.txt" in joined
    assert "--python-version 3.13" in joined
    assert "--python-platform aarch64-manylinux_2_34" in joined
    assert "--generate-hashes" in joined
