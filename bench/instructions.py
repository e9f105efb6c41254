"""Instructions per request, counted by callgrind: the request path without the machine's noise.

    .venv/bin/python bench/instructions.py [--paths get,list] [--against REVISION]

Each path (GET of one task, GET of a 20-task list) runs through the app in process (Litestar's
test client, the production settings, PostgreSQL on a throwaway database) under
`valgrind --tool=callgrind`, 200 and then 700 times; the difference over 500 is what one
request costs, start-up and set-up cancelled out. Instructions do not depend on what else
the machine runs, so two revisions compare to the percent where req/s swing by ten.
`--against` counts REVISION too (a git worktree of it, on this venv). PostgreSQL's own work is
not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
SERVER = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
FEW, MANY = 200, 700


async def child(path: str, count: int) -> None:
    """The requests themselves (this file run again, under callgrind)."""
    from litestar.testing import AsyncTestClient

    from todo_svc.app import create_app

    async with AsyncTestClient(create_app()) as client:
        credentials = {"email": f"bench-{secrets.token_hex(4)}@example.org", "password": "password1"}
        await client.post("/api/v1/auth/register", json=credentials)
        tokens = (await client.post("/api/v1/auth/login", json=credentials)).json()
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        tasks = f"/api/v1/users/{tokens['user']['id']}/tasks"
        for number in range(20):
            task = (await client.post(tasks, json={"title": f"task {number}"}, headers=headers)).json()
        target = f"{tasks}/{task['id']}" if path == "get" else tasks
        for _ in range(count):
            answer = await client.get(target, headers=headers)
            if answer.status_code != 200:  # a refused request would count another path
                raise SystemExit(f"{answer.status_code}: {answer.text}")


@dataclass(frozen=True)
class Counted:
    """A run under callgrind, and the file it writes its totals to."""

    process: subprocess.Popen[str]
    out: Path

    def instructions(self) -> int:
        _, errors = self.process.communicate()
        if self.process.returncode != 0:
            raise SystemExit(f"a counted run failed:\n{errors[-2000:]}")
        summary = re.search(r"^summary: (\d+)", self.out.read_text(), re.MULTILINE)
        self.out.unlink()
        if summary is None:
            raise SystemExit(f"callgrind wrote no summary to {self.out}")
        return int(summary.group(1))


def counted(source: Path, path: str, count: int, environment: dict[str, str]) -> Counted:
    out = Path(tempfile.mkstemp(prefix="callgrind-")[1])
    command = [
        *("valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"),
        *(str(BIN / "python"), __file__, "--child", path, str(count)),
    ]
    env = {**environment, "PYTHONPATH": str(source)}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return Counted(process, out)


def per_request(source: Path, path: str, environment: dict[str, str]) -> float:
    few, many = (counted(source, path, count, environment) for count in (FEW, MANY))  # both cores
    return (many.instructions() - few.instructions()) / (MANY - FEW)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--paths", default="get,list")
    parser.add_argument("--against", help="a revision to count as well")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(child(args.child[0], int(args.child[1])))
        return 0

    database = f"todo_bench_{secrets.token_hex(4)}"
    admin = ["psql", "-q", SERVER, "-c"]
    url = SERVER.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{database}"
    environment = {
        **os.environ,
        **{"ENVIRONMENT": "production", "DATABASE_URL": url, "JWT_SECRET_KEY": secrets.token_urlsafe(48)},
        # the limiter counts every request, as in production, but never refuses one here
        **{"BCRYPT_ROUNDS": "4", "LOG_LEVEL": "INFO", "RATE_LIMIT_TASKS": "1000000/minute"},
    }
    sources = {"HEAD": ROOT}
    worktree = Path(tempfile.mkdtemp(prefix="bench-against-")) if args.against else None
    subprocess.run([*admin, f"CREATE DATABASE {database}"], check=True)
    try:
        subprocess.run(
            [str(BIN / "todo-svc"), "db", "upgrade"], env=environment, check=True, capture_output=True
        )
        if worktree is not None:
            subprocess.run(
                ["git", "worktree", "add", "-q", "--detach", str(worktree), args.against], check=True
            )
            sources[args.against] = worktree
        print(f"{'revision':<12} {'path':<6} {'instructions/request':>22}")
        for path in args.paths.split(","):
            counts = {name: per_request(source, path, environment) for name, source in sources.items()}
            for name, count in counts.items():
                change = f"  HEAD costs {counts['HEAD'] / count - 1:+.1%}" if name != "HEAD" else ""
                print(f"{name:<12} {path:<6} {count:>22,.0f}{change}")
    finally:
        if worktree is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], check=False)
        subprocess.run([*admin, f"DROP DATABASE IF EXISTS {database}"], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
