"""The layers' imports go one way: the use cases (services) and what they build on know no web framework.

Read from the source (every `import` our modules make, TYPE_CHECKING ones included), not from
`sys.modules`: advanced-alchemy imports Litestar by itself whenever it is installed, so importing
any repository loads it whatever our code does.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "todo_svc"


def module_file(name: str) -> Path | None:
    relative = Path(*name.split("."))
    for candidate in (
        PACKAGE.parent / relative.with_suffix(".py"),
        PACKAGE.parent / relative / "__init__.py",
    ):
        if candidate.is_file():
            return candidate
    return None


def imports_of(name: str) -> set[str]:
    path = module_file(name)
    assert path is not None, name
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def reachable_project_modules(roots: list[str]) -> dict[str, set[str]]:
    """Every todo_svc module the roots import, directly or through each other, with its imports."""
    seen: dict[str, set[str]] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen or module_file(name) is None:
            continue
        seen[name] = imports_of(name)
        todo.extend(imported for imported in seen[name] if imported.startswith("todo_svc."))
    return seen


def test_the_services_and_what_they_import_import_no_web_framework() -> None:
    services = [f"todo_svc.services.{path.stem}" for path in (PACKAGE / "services").glob("*.py")]
    modules = reachable_project_modules(services)
    assert "todo_svc.services.auth" in modules
    assert "todo_svc.db.tasks" in modules  # the walk follows the services' imports
    web = {
        module: sorted(name for name in imported if name.split(".")[0] == "litestar")
        for module, imported in modules.items()
    }
    assert {module: names for module, names in web.items() if names} == {}


def test_the_api_layer_reaches_the_database_only_through_its_composition_root() -> None:
    """Routes speak to services; only api/dependencies.py (and app.py, outside api/) wires db in."""
    api = {f"todo_svc.api.{path.stem}" for path in (PACKAGE / "api").glob("*.py")}
    assert "todo_svc.api.tasks" in api
    reaching = {
        module: sorted(name for name in imports_of(module) if name.startswith("todo_svc.db"))
        for module in api - {"todo_svc.api.dependencies"}
    }
    assert {module: names for module, names in reaching.items() if names} == {}
