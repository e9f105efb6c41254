"""The Containerfile: lint-clean, non-root, an init as PID 1, a health check, a complete build context.

(No container builder runs here; these are the properties a build would not show until production.)
"""

from __future__ import annotations

import fnmatch
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
