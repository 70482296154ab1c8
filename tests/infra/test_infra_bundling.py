"""Local pip bundling: the hashed pip call for arm64/cp313, sources copied without local-only
parts, bytecode that does not depend on where it was built."""

from __future__ import annotations

import json
import marshal
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Template

from infra import packaging
from infra.bundling import (
    FUNCTION_EXCLUDES,
    LAYER_EXCLUDES,
    BundlingError,
    LocalPythonBundling,
    pip_command,
    python_function_code,
)
from infra.constructs.gateway_function import STREAMING_RUNTIME_WRAPPER
from infra.packaging import PIP_PLATFORMS, compile_bytecode, manylinux_platforms, trim_botocore_data

if TYPE_CHECKING:
    from conftest import Synthesis


def test_no_bundling_runs_when_bundling_stacks_is_empty(
    synth: Synthesis, project_root: Path
) -> None:
    assert synth.bundler_calls == []
    # Unbundled, the function asset is the source folder itself: pip never touched it.
    directory = Path(synth.app.synth().directory)
    manifest = json.loads((directory / "MantleGateway-dev-Gateway.assets.json").read_text())
    paths = {Path(directory, f["source"]["path"]) for f in manifest["files"].values()}
    assert project_root / "functions" in paths


def make_sources(root: Path) -> Path:
    files = [
        "mantle_gateway/__init__.py",
        "mantle_gateway/core/pipeline.py",
        "mantle_gateway/core/__pycache__/pipeline.cpython-313.pyc",
        "mantle_gateway/cli/main.py",
        "mantle_gateway/simulator/server.py",
        "mantle_gateway.egg-info/PKG-INFO",
        "tests/test_x.py",
    ]
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    return root


def test_try_bundle_installs_lambda_wheels_into_the_output_dir_then_copies_sources(
    tmp_path: Path,
) -> None:
    source = make_sources(tmp_path / "functions")
    lock = tmp_path / "requirements-lambda.lock"
    lock.write_text("httpx==0.28.1 --hash=sha256:" + "0" * 64 + "\n")
    output = tmp_path / "cdk.out" / "asset-building"
    output.mkdir(parents=True)
    commands: list[Sequence[str]] = []

    def fake_pip(command: Sequence[str]) -> None:
        commands.append(command)
        (output / "bin").mkdir()
        (output / "httpx").mkdir()

    bundler = LocalPythonBundling(
        source_dir=source,
        lock=lock,
        excludes=FUNCTION_EXCLUDES,
        python_version="3.13",
        platforms=PIP_PLATFORMS["arm64"],
        run=fake_pip,
        find_python=lambda _version: None,
    )

    assert bundler.try_bundle(str(output), image=None) is True  # type: ignore[arg-type]

    assert commands == [
        pip_command(
            lock=lock,
            target=output,
            python_version="3.13",
            platforms=PIP_PLATFORMS["arm64"],
        )
    ]
    command = " ".join(commands[0])
    assert command.startswith(f"{sys.executable} -m pip install ")
    for flag in (
        "--platform manylinux_2_34_aarch64",
        "--platform manylinux_2_28_aarch64",
        "--platform manylinux_2_17_aarch64",
        "--platform manylinux2014_aarch64",
        "--implementation cp",
        "--python-version 3.13",
        "--only-binary=:all:",
        "--require-hashes",
        "--no-deps",
        f"-r {lock}",
        f"-t {output}",
    ):
        assert flag in command
    shipped = sorted(p.relative_to(output).as_posix() for p in output.rglob("*") if p.is_file())
    assert shipped == ["mantle_gateway/__init__.py", "mantle_gateway/core/pipeline.py"]
    assert not (output / "bin").exists()
    assert (output / "httpx").is_dir()


def arm64_bundler(tmp_path: Path, **seams: Any) -> LocalPythonBundling:
    """A bundler for the function's platform over a small source tree, with `seams` (run,
    find_python) replacing what would touch the network or the machine's Pythons."""
    return LocalPythonBundling(
        source_dir=make_sources(tmp_path / "functions"),
        lock=tmp_path / "requirements-lambda.lock",
        excludes=FUNCTION_EXCLUDES,
        python_version="3.13",
        platforms=PIP_PLATFORMS["arm64"],
        **seams,
    )


def test_a_failing_pip_stops_synthesis_with_the_way_around_it(tmp_path: Path) -> None:
    def failing_pip(command: Sequence[str]) -> None:
        raise subprocess.CalledProcessError(1, list(command))

    bundler = arm64_bundler(tmp_path, run=failing_pip)

    with pytest.raises(BundlingError, match="SKIP_BUNDLING=1 make synth") as error:
        bundler.try_bundle(str(tmp_path / "out"), image=None)  # type: ignore[arg-type]

    assert "manylinux_2_34_aarch64/cp313" in str(error.value)
    assert "make lock" in str(error.value)
    assert "\n" not in str(error.value)


def test_the_exec_wrapper_ships_in_the_layer_and_is_executable(project_root: Path) -> None:
    # The layer is layers/streaming_runtime/ extracted under /opt/.
    relative = Path(STREAMING_RUNTIME_WRAPPER).relative_to("/opt")
    wrapper = project_root / "layers" / "streaming_runtime" / relative

    assert wrapper.is_file(), f"{STREAMING_RUNTIME_WRAPPER} is not in layers/streaming_runtime/"
    assert os.stat(wrapper).st_mode & stat.S_IXUSR
    assert not any(part in LAYER_EXCLUDES for part in relative.parts)


def test_a_lock_change_makes_a_new_function_asset(tmp_path: Path) -> None:
    source = make_sources(tmp_path / "functions")
    pinned = {"a": "httpx==0.28.1\n", "b": "httpx==0.28.1\n", "c": "httpx==0.28.0\n"}
    app = cdk.App(context={"aws:cdk:bundling-stacks": []})
    stack = cdk.Stack(app, "Bare")
    for name, text in pinned.items():
        lock = tmp_path / f"requirements-{name}.lock"
        lock.write_text(text)
        lambda_.Function(
            stack,
            name,
            runtime=lambda_.Runtime.PYTHON_3_13,
            architecture=lambda_.Architecture.ARM_64,
            handler="mantle_gateway.handler",
            code=python_function_code(
                source_dir=source,
                lock=lock,
                runtime=lambda_.Runtime.PYTHON_3_13,
                architecture=lambda_.Architecture.ARM_64,
            ),
        )

    functions = Template.from_stack(stack).find_resources("AWS::Lambda::Function")
    keys = {logical_id[0]: f["Properties"]["Code"]["S3Key"] for logical_id, f in functions.items()}

    assert keys["a"] == keys["b"]
    assert keys["a"] != keys["c"]


def test_bundle_keeps_only_the_botocore_models_the_function_loads(tmp_path: Path) -> None:
    data = tmp_path / "botocore" / "data"
    for service in ("dynamodb", "sts", "ec2", "s3"):
        (data / service / "2012-08-10").mkdir(parents=True)
    (data / "endpoints.json").write_text("{}")

    removed = trim_botocore_data(tmp_path)

    assert removed == ["ec2", "s3"]
    assert sorted(p.name for p in data.iterdir()) == ["dynamodb", "endpoints.json", "sts"]


def test_the_bundle_is_compiled_by_the_runtime_python_when_the_machine_has_one(
    tmp_path: Path,
) -> None:
    output = tmp_path / "out"
    output.mkdir()
    commands: list[Sequence[str]] = []
    bundler = arm64_bundler(
        tmp_path, run=commands.append, find_python=lambda version: f"/opt/python{version}"
    )

    assert bundler.try_bundle(str(output), image=None) is True  # type: ignore[arg-type]

    pip, compile_ = commands
    assert "pip" in pip
    assert list(compile_) == [
        "/opt/python3.13", "-m", "compileall", "-q", "-j", "0", "-d", "/var/task",
        "--invalidation-mode", "unchecked-hash", str(output),
    ]  # fmt: skip


def test_compiled_bytecode_is_used_without_checking_source_times(tmp_path: Path) -> None:
    module = tmp_path / "pkg" / "mod.py"
    module.parent.mkdir()
    module.write_text("VALUE = 1\n")

    assert compile_bytecode(tmp_path, sys.executable) is True

    tag = sys.implementation.cache_tag
    pyc = (module.parent / "__pycache__" / f"mod.{tag}.pyc").read_bytes()
    flags = int.from_bytes(pyc[4:8], "little")
    assert flags == 0b01, "hash-based (bit 0) and not checked against the source (bit 1)"


def test_bytecode_is_the_same_wherever_the_bundle_is_built(tmp_path: Path) -> None:
    source = "def f():\n    raise ValueError('x')\n"
    builds = [tmp_path / "machine-a" / "cdk.out" / "asset", tmp_path / "b"]
    for build in builds:
        (build / "pkg").mkdir(parents=True)
        (build / "pkg" / "mod.py").write_text(source)
        assert compile_bytecode(build, sys.executable) is True

    tag = sys.implementation.cache_tag
    first, second = (b / "pkg" / "__pycache__" / f"mod.{tag}.pyc" for b in builds)
    assert first.read_bytes() == second.read_bytes()
    code = marshal.loads(first.read_bytes()[16:])  # noqa: S302 - compiled by this test
    assert code.co_filename == "/var/task/pkg/mod.py"  # where Lambda runs it


def test_the_bundle_is_readable_by_lambda_whatever_the_umask(tmp_path: Path) -> None:
    output = tmp_path / "out"
    private = output / "httpx" / "_client.py"
    private.parent.mkdir(parents=True)
    private.write_text("x")
    private.chmod(0o600)  # pip under umask 077
    private.parent.chmod(0o700)
    bundler = arm64_bundler(tmp_path, run=lambda _command: None, find_python=lambda _v: None)

    bundler.try_bundle(str(output), image=None)  # type: ignore[arg-type]

    modes = {
        p.relative_to(output).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in output.rglob("*")
    }
    assert modes["httpx"] == 0o755
    assert modes["httpx/_client.py"] == 0o644
    assert modes["mantle_gateway/core/pipeline.py"] == 0o644
    assert set(modes.values()) == {0o644, 0o755}


def test_a_broken_module_leaves_the_bundle_uncompiled_not_the_synth_failed(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("def (:\n")
    assert compile_bytecode(tmp_path, sys.executable) is False


def test_the_runtime_python_must_report_the_runtime_version(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(packaging.shutil, "which", lambda _name: sys.executable)
    monkeypatch.setattr(packaging.Path, "home", lambda: tmp_path)  # no pyenv versions there
    running = f"{sys.version_info.major}.{sys.version_info.minor}"

    assert packaging.find_runtime_python(running) == sys.executable
    assert packaging.find_runtime_python("2.1") is None


def test_pip_is_given_every_manylinux_tag_amazon_linux_2023_loads() -> None:
    arm64 = manylinux_platforms("aarch64")

    assert PIP_PLATFORMS["arm64"] == arm64
    assert arm64[0] == "manylinux_2_34_aarch64"  # glibc 2.34: nothing newer loads
    assert arm64[-2:] == ("manylinux_2_17_aarch64", "manylinux2014_aarch64")
    assert "manylinux_2_28_aarch64" in arm64
    assert len(arm64) == len(set(arm64)) == 34 - 17 + 1 + 1
    x86 = manylinux_platforms("x86_64")
    assert x86[0] == "manylinux_2_34_x86_64"
    assert {"manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"} <= set(x86)


PRICES = "mantle_gateway/core/prices.json"


def test_the_function_bundle_ships_the_price_data_and_loads_it(
    project_root: Path, tmp_path: Path
) -> None:
    # GIVEN the function's sources copied as the bundler copies them
    copied = packaging.copy_sources(project_root / "functions", tmp_path, FUNCTION_EXCLUDES)
    assert PRICES in copied
    # WHEN Python runs from the bundle alone (no site-packages, so no editable install)
    script = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from mantle_gateway.core import pricing\n"
        "from mantle_gateway.usage import TokenCounts\n"
        "assert pricing.__file__.startswith(sys.argv[1]), pricing.__file__\n"
        "cost = pricing.PriceTable().cost('deepseek.v3.2', TokenCounts(input=10**6))\n"
        "print(cost)\n"
    )
    done = subprocess.run(
        [sys.executable, "-S", "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # THEN the bundled prices are there
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0.6200000000"


def test_the_installed_package_ships_the_price_data(project_root: Path, tmp_path: Path) -> None:
    """What a wheel of the project holds is what setuptools' build_py lays out. It runs on a
    clean copy of the project: a leftover egg-info would list the file whatever pyproject says."""
    project = tmp_path / "project"
    for name in ("pyproject.toml", "requirements.txt"):
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(project_root / name, project / name)
    packaging.copy_sources(project_root / "functions", project / "functions", ("*.egg-info",))
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import setuptools; setuptools.setup()",
            "-q",
            "build_py",
            "--build-lib",
            str(tmp_path / "lib"),
        ],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    shipped = tmp_path / "lib" / PRICES
    assert shipped.read_bytes() == (project_root / "functions" / PRICES).read_bytes()
