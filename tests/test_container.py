"""The Containerfile: lint-clean, non-root, an init as PID 1, a health check, a complete build context.

(No container builder runs here; these are the properties a build would not show until production.
`just container-test` builds the image and runs it.)
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest


@pytest.fixture
def containerfile(project_root: Path) -> str:
    return (project_root / "Containerfile").read_text()


def instructions(containerfile: str, name: str) -> list[str]:
    joined = containerfile.replace("\\\n", " ")
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.startswith(f"{name} ")]


def test_hadolint_finds_nothing(project_root: Path) -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run(  # noqa: S603 - a fixed linter command
        [hadolint, "Containerfile"], cwd=project_root, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_runtime_stage_runs_as_a_non_root_user(containerfile: str) -> None:
    runtime = containerfile.split(" AS runtime", 1)[1]
    users = instructions(runtime, "USER")
    assert users, "the runtime stage sets no USER"
    assert users[-1].strip() not in {"0", "root"}


def test_an_init_is_pid_1_and_granian_serves(containerfile: str) -> None:
    assert instructions(containerfile, "ENTRYPOINT") == ['["dumb-init", "--single-child", "--"]']
    assert instructions(containerfile, "CMD")[-1] == '["todo-svc", "serve"]'


def test_health_check_probes_liveness(containerfile: str) -> None:
    (healthcheck,) = instructions(containerfile, "HEALTHCHECK")
    assert "/health'" in healthcheck
    assert re.search(r"--timeout=\d+s", healthcheck)


def test_podman_builds_keep_the_health_check(containerfile: str) -> None:
    """podman's default image format (OCI) drops HEALTHCHECK with a mere warning; Docker's keeps it."""
    header = [line for line in containerfile.splitlines() if line.startswith("#")]
    podman_builds = [line for line in header if "podman build" in line]
    assert podman_builds, "the header does not say how to build with podman"
    assert all("podman build --format docker" in line for line in podman_builds)


@pytest.mark.parametrize(
    ("engine", "command"),
    [
        ("podman", "podman build --format docker -f Containerfile -t todo-svc:latest ."),
        ("docker", "docker build -f Containerfile -t todo-svc:latest ."),
    ],
)
def test_just_container_builds_podman_images_in_docker_format(
    project_root: Path, engine: str, command: str
) -> None:
    just = str(Path(sys.executable).parent / "just")  # rust-just, from the test extra
    result = subprocess.run(  # noqa: S603 - a fixed command
        [just, "--dry-run", "container"],
        cwd=project_root,
        env={**os.environ, "CONTAINER_ENGINE": engine},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == command


def test_the_runtime_venv_holds_the_project_without_extras_or_pip(containerfile: str) -> None:
    """The build stage installs `.` (no test or dev extras), then removes pip, setuptools, wheel."""
    build = containerfile.split(" AS build", 1)[1].split(" AS runtime", 1)[0]
    runs = instructions(build, "RUN")
    commands = [command.strip() for run in runs for command in run.split("&&")]
    installs = [command for command in commands if re.search(r"\bpip install\b", command)]
    project_installs = [command for command in installs if command.split()[-1].startswith(".")]
    assert project_installs, "the build stage does not install the project"
    assert all(command.split()[-1] == "." for command in project_installs), project_installs
    uninstall = next(i for i, command in enumerate(commands) if "pip uninstall" in command)
    assert uninstall > commands.index(installs[-1])
    assert {"pip", "setuptools", "wheel"} <= set(commands[uninstall].split())
    runtime = containerfile.split(" AS runtime", 1)[1]
    assert instructions(runtime, "COPY") == ["--from=build /opt/venv /opt/venv"]


def test_dependencies_are_installed_before_the_code_is_copied(containerfile: str) -> None:
    """A change to the code reuses the cached dependency layer instead of fetching every package."""
    build = containerfile.split(" AS build", 1)[1].split(" AS runtime", 1)[0]
    steps = [line for line in build.replace("\\\n", " ").splitlines() if line.startswith(("COPY ", "RUN "))]
    dependencies = next(i for i, step in enumerate(steps) if "-r requirements.txt" in step)
    code = next(i for i, step in enumerate(steps) if step.startswith("COPY todo_svc"))
    assert [step for step in steps[:dependencies] if step.startswith("COPY")] == ["COPY pyproject.toml ./"]
    assert dependencies < code


def test_the_container_test_script_is_a_strict_bash_script(project_root: Path) -> None:
    script = project_root / "deploy" / "container-test.sh"
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "\nset -euo pipefail\n" in text
    assert script.stat().st_mode & 0o111, "deploy/container-test.sh is not executable"
    checked = subprocess.run(  # noqa: S603 - a fixed command
        ["bash", "-n", str(script)],  # noqa: S607 - bash from PATH, as the recipe runs it
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert "deploy/container-test.sh" in (project_root / "justfile").read_text()


def test_production_defaults_and_the_listening_address(containerfile: str) -> None:
    runtime = containerfile.split(" AS runtime", 1)[1]
    env = " ".join(instructions(runtime, "ENV"))
    assert "ENVIRONMENT=production" in env
    assert "HOST=0.0.0.0" in env
    assert instructions(runtime, "EXPOSE") == ["8000"]


def test_build_context_holds_what_the_build_copies(project_root: Path, containerfile: str) -> None:
    """Every COPY source exists and survives .dockerignore (whose last matching line wins)."""
    patterns = [
        line.strip()
        for line in (project_root / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        verdict = False
        for pattern in patterns:
            negated = pattern.startswith("!")
            if fnmatch.fnmatch(path, pattern.lstrip("!").rstrip("/")):
                verdict = not negated
        return verdict

    sources = [
        source
        for copy in instructions(containerfile, "COPY")
        if not copy.startswith("--from")
        for source in copy.split()[:-1]
    ]
    assert sources
    for source in sources:
        assert (project_root / source).exists(), source
        assert not ignored(source.rstrip("/")), f"{source} is excluded by .dockerignore"
    assert all(ignored(private) for private in (".venv", ".git", ".env", "todo.db"))


def test_the_installed_package_carries_its_migrations(project_root: Path, tmp_path: Path) -> None:
    """The image installs the wheel; `todo-svc db upgrade` in it needs the migrations inside."""
    built = subprocess.run(  # noqa: S603 - fixed arguments
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "-w",
            str(tmp_path),
            ".",
        ],
        cwd=project_root,
        check=False,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("todo_svc-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {name for name in names if name.startswith("todo_svc/migrations/versions/")}
    in_checkout = {
        f"todo_svc/migrations/versions/{path.name}"
        for path in (project_root / "migrations" / "versions").glob("*.py")
    }
    assert in_checkout
    assert shipped == in_checkout
    assert "todo_svc/migrations/env.py" in names
