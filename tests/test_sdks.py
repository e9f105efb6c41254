"""Generated SDKs as their users get them: clients generated from the committed docs/openapi.json with
the generators' default options, a normal client script (tests/sdk/) type-checked strictly and run
against a live server. The generators and checkers are pinned and installed once into a cache of
their own ($XDG_CACHE_HOME or ~/.cache, todo-svc-tests/), never into the project's venv."""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import empty_tables
from servers import Server, serving
from sqlalchemy.ext.asyncio import AsyncEngine

ROOT = Path(__file__).parent.parent
DOCUMENT = ROOT / "docs" / "openapi.json"
SDK = Path(__file__).parent / "sdk"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "todo-svc-tests"
GENERATOR = "openapi-python-client==0.29.1"
# ruff runs as the generator's post-hook; the rest is mypy and the generated client's runtime deps.
PYTHON_TOOLS = (GENERATOR, "ruff==0.17.6", "mypy==2.4.1", "httpx==0.28.1", "attrs==26.1.0")
# `"ETag"?: unknown;` (a header or field without a type), not the `[name: string]: unknown;` every
# headers object of openapi-typescript ends with.
NAMED_UNKNOWN = re.compile(r'^\s*("?[\w-]+"?\??: unknown);$', re.MULTILINE)

pytestmark = pytest.mark.backends("postgresql")


def run(*command: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run a tool; when it fails, its output (both streams) is the test's failure message."""
    result = subprocess.run(  # noqa: S603 - our own pinned tools
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        pytest.fail(f"{Path(command[0]).name} exited {result.returncode}:\n{output}", pytrace=False)
    return output


@contextmanager
def locked(name: str) -> Iterator[Path]:
    """A cache entry, built by one test run at a time."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield CACHE / name


def python_tools() -> Path:
    """The bin directory of a venv holding PYTHON_TOOLS, installed on the first run only."""
    pins = "\n".join(PYTHON_TOOLS) + "\n"
    with locked(GENERATOR.replace("==", "-")) as venv:
        if not (venv / "pins.txt").is_file() or (venv / "pins.txt").read_text() != pins:
            shutil.rmtree(venv, ignore_errors=True)
            run(sys.executable, "-m", "venv", venv)
            run(venv / "bin" / "python", "-m", "pip", "install", "--quiet", *PYTHON_TOOLS)
            (venv / "pins.txt").write_text(pins)
    return venv / "bin"


def node_modules() -> Path:
    """tests/sdk/typescript's packages, installed by `npm ci` once per package-lock.json."""
    project = SDK / "typescript"
    lock = (project / "package-lock.json").read_bytes()
    with locked(f"openapi-typescript-{hashlib.sha256(lock).hexdigest()[:12]}") as directory:
        if not (directory / "node_modules" / ".package-lock.json").is_file():
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir()
            for name in ("package.json", "package-lock.json"):
                shutil.copy(project / name, directory / name)
            run("npm", "ci", "--no-audit", "--no-fund", cwd=directory)
    return directory / "node_modules"


@pytest.fixture(scope="module")
async def server(
    database_url: str, engine: AsyncEngine, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Server]:
    log = tmp_path_factory.mktemp("sdk") / "server.log"
    async with serving(database_url, log, RATE_LIMIT_ENABLED="false") as live:
        yield live
    await empty_tables(engine)  # the flows' accounts and tasks: later tests expect empty tables


def test_python_client(server: Server, tmp_path: Path) -> None:
    tools = python_tools()
    env = {**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}"}
    client = tmp_path / "client"
    output = run(
        tools / "openapi-python-client", "generate", "--path", DOCUMENT, "--output-path", client, env=env
    )
    assert output.strip() == f"Generating {client}", f"the generator warned:\n{output}"
    # it drops `deprecated`, so the legacy twins say it in the docstring their description becomes
    legacy = client / "todo_svc_client" / "api" / "tasks" / "list_tasks_legacy.py"
    assert "Deprecated: use `listTasks`" in legacy.read_text()

    env |= {"MYPYPATH": str(client), "PYTHONPATH": str(client)}
    cache = ["--cache-dir", str(tools.parent / "mypy-cache")]
    run(tools / "mypy", "--strict", *cache, SDK / "python_flow.py", env=env, cwd=tmp_path)
    print(run(tools / "python", SDK / "python_flow.py", server.url, env=env))


def test_typescript_client(server: Server, tmp_path: Path) -> None:
    (tmp_path / "node_modules").symlink_to(node_modules())
    for name in ("flow.ts", "tsconfig.json", "package.json"):
        shutil.copy(SDK / "typescript" / name, tmp_path / name)
    npm_bin = tmp_path / "node_modules" / ".bin"
    output = run(npm_bin / "openapi-typescript", DOCUMENT, "-o", "schema.d.ts", cwd=tmp_path)
    said = [line for line in output.splitlines() if not line.startswith(("✨ openapi-typescript", "🚀 "))]
    assert not said, f"the generator warned:\n{output}"
    unknown = NAMED_UNKNOWN.findall((tmp_path / "schema.d.ts").read_text())
    assert not unknown, f"untyped headers or fields in the generated types: {unknown}"

    # One strict compile: noEmitOnError (tsconfig.json) makes it the `tsc --strict --noEmit` gate too.
    run(npm_bin / "tsc", "-p", "tsconfig.json", "--strict", cwd=tmp_path)
    print(run("node", tmp_path / "out" / "flow.js", server.url, cwd=tmp_path))
