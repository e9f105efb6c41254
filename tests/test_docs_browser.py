"""The docs pages in a real browser (Debian's Chromium, driven by Playwright) against `todo-svc serve`:
they render offline under the strict docs CSP, and Swagger UI works as a person would use it.

The browser may reach this machine only: every other request is aborted and recorded, and so are
page errors, console errors and CSP violations; a clean page has none of them.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from conftest import empty_tables
from debian import debian_program
from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Page,
    Request,
    Response,
    Route,
    async_playwright,
    expect,
)
from servers import Server, serving
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_svc.core.middleware import DOCS_CSP

pytestmark = pytest.mark.backends("postgresql")
expect.set_options(timeout=15_000)  # a first render on a busy two-core machine takes seconds
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
DOCS_ASSETS = Path(__file__).resolve().parent.parent / "todo_svc" / "docs_assets"
OPERATIONS = ("listTasks", "createTask", "login", "register")  # shown on both pages
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => window.reportCspViolation(
  `${event.effectiveDirective}: ${event.blockedURI || "inline"} (${event.sourceFile}:${event.lineNumber})`
));
"""


@dataclass
class PageLog:
    """What happened in the page that must not."""

    off_machine: list[str] = field(default_factory=list)  # requests to another host: aborted
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)
    assets: list[Response] = field(default_factory=list)

    def problems(self) -> dict[str, list[str]]:
        found = {
            "off_machine": self.off_machine,
            "page_errors": self.page_errors,
            "console_errors": self.console_errors,
            "csp_violations": self.csp_violations,
        }
        return {name: entries for name, entries in found.items() if entries}


@pytest.fixture(scope="module")
async def server(
    database_url: str, engine: AsyncEngine, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Server]:
    async with serving(database_url, tmp_path_factory.mktemp("docs") / "server.log") as running:
        yield running
    await empty_tables(engine)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    chromium = debian_program("chromium")  # never `playwright install`: no browser download here
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium)
        yield launched
        await launched.close()


@pytest.fixture(scope="module")
async def document(server: Server) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url) as client:
        return dict((await client.get("/docs/openapi.json")).json())


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[tuple[Page, PageLog]]:
    log = PageLog()
    context = await browser.new_context()

    async def this_machine_only(route: Route, request: Request) -> None:
        if urlsplit(request.url).hostname in LOCAL_HOSTS:
            await route.continue_()
        else:
            log.off_machine.append(request.url)
            await route.abort("blockedbyclient")

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            log.console_errors.append(message.text)

    def csp_violation(report: str) -> None:
        log.csp_violations.append(report)

    def response(answer: Response) -> None:
        if "/docs/assets/" in answer.url:
            log.assets.append(answer)

    await context.route("**/*", this_machine_only)
    await context.expose_function("reportCspViolation", csp_violation)
    await context.add_init_script(REPORT_CSP_VIOLATIONS)
    opened = await context.new_page()
    opened.set_default_timeout(15_000)
    opened.on("pageerror", lambda error: log.page_errors.append(str(error)))
    opened.on("console", console)
    opened.on("response", response)
    yield opened, log
    await context.close()


def operation(document: dict[str, Any], operation_id: str) -> dict[str, Any]:
    return next(
        found
        for path_item in document["paths"].values()
        for found in path_item.values()
        if isinstance(found, dict) and found.get("operationId") == operation_id
    )


async def test_swagger_ui_shows_the_operations_offline_under_the_strict_csp(
    server: Server, page: tuple[Page, PageLog], document: dict[str, Any]
) -> None:
    browser_page, log = page
    response = await browser_page.goto(f"{server.url}/docs")
    assert response is not None
    assert response.status == 200
    assert response.headers["content-security-policy"] == DOCS_CSP
    for operation_id in OPERATIONS:
        found = operation(document, operation_id)
        block = browser_page.locator(f"#operations-{found['tags'][0]}-{operation_id}")
        await expect(block.locator(".opblock-summary-description")).to_have_text(found["summary"])
    await browser_page.wait_for_load_state("networkidle")  # icons, favicon: everything it loads
    assert log.problems() == {}
    assert_cached_for_long(log.assets)


async def test_redoc_shows_the_operations_offline_under_the_strict_csp(
    server: Server, page: tuple[Page, PageLog], document: dict[str, Any]
) -> None:
    browser_page, log = page
    response = await browser_page.goto(f"{server.url}/docs/redoc")
    assert response is not None
    assert response.status == 200
    assert response.headers["content-security-policy"] == DOCS_CSP
    for operation_id in OPERATIONS:
        found = operation(document, operation_id)
        section = browser_page.locator(f'[id="tag/{found["tags"][0]}/operation/{operation_id}"]')
        await expect(section.locator("h2").first).to_have_text(found["summary"])
    await browser_page.get_by_placeholder("Search...").fill("tasks")  # the search worker answers
    await expect(browser_page.locator("[data-role='search:results']")).to_contain_text(
        operation(document, "listTasks")["summary"]
    )
    await browser_page.wait_for_load_state("networkidle")
    assert log.problems() == {}
    assert_cached_for_long(log.assets)


def assert_cached_for_long(assets: list[Response]) -> None:
    """Asset URLs change with their content (?v=hash, or a hash for a name), so they may be kept."""
    assert len(assets) >= 3  # a bundle, a stylesheet and an init script at least
    for asset in assets:
        assert asset.status == 200, asset.url
        assert "immutable" in asset.headers["cache-control"], asset.url
        assert "max-age=31536000" in asset.headers["cache-control"], asset.url


async def test_swagger_ui_lists_and_creates_the_users_tasks_once_authorized(
    server: Server, page: tuple[Page, PageLog], document: dict[str, Any]
) -> None:
    """Authorize with a bearer token, try out GET /api/v1/users/{user_id}/tasks and see the tasks,
    then create one from the example Swagger UI offers."""
    credentials = {"email": f"docs-{uuid.uuid4().hex[:8]}@example.org", "password": "long enough pw"}
    titles = [f"water the plants {uuid.uuid4().hex[:6]}", f"read the docs {uuid.uuid4().hex[:6]}"]
    async with httpx.AsyncClient(base_url=server.url) as client:
        registered = await client.post("/api/v1/auth/register", json=credentials)
        assert registered.status_code == 201, registered.text
        user_id = registered.json()["user"]["id"]
        login = await client.post("/api/v1/auth/login", json=credentials)
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]
        for title in titles:
            created = await client.post(
                f"/api/v1/users/{user_id}/tasks",
                json={"title": title},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert created.status_code == 201, created.text

    browser_page, log = page
    await browser_page.goto(f"{server.url}/docs")
    await browser_page.get_by_role("button", name="Authorize", exact=True).click()
    dialog = browser_page.locator(".modal-ux")
    await dialog.get_by_role("textbox").fill(token)
    await dialog.get_by_role("button", name="Apply credentials").click()
    await expect(dialog.get_by_role("heading", name="Authorized")).to_be_visible()
    await dialog.get_by_role("button", name="Close").click()

    list_tasks = browser_page.locator("#operations-tasks-listTasks")
    await list_tasks.locator(".opblock-summary-control").click()
    await list_tasks.get_by_role("button", name="Try it out").click()
    await list_tasks.locator('tr[data-param-name="user_id"] input').fill(str(user_id))
    await list_tasks.get_by_role("button", name="Execute").click()

    answer = list_tasks.locator(".live-responses-table .response")
    await expect(answer.locator(".response-col_status")).to_have_text("200")
    for title in titles:
        await expect(answer.locator(".response-col_description")).to_contain_text(title)

    # creating starts from the documented example, a sensible task, and "Execute" creates it
    create_task = browser_page.locator("#operations-tasks-createTask")
    await create_task.locator(".opblock-summary-control").click()
    await create_task.get_by_role("button", name="Try it out").click()
    example = json.loads(await create_task.locator("textarea.body-param__text").input_value())
    assert example == schema_example(document, "TaskCreate")
    await create_task.locator('tr[data-param-name="user_id"] input').fill(str(user_id))
    await create_task.get_by_role("button", name="Execute").click()
    created = create_task.locator(".live-responses-table .response")
    await expect(created.locator(".response-col_status")).to_have_text("201")
    await expect(created.locator(".response-col_description")).to_contain_text(example["title"])
    assert log.problems() == {}


def schema_example(document: dict[str, Any], name: str) -> dict[str, Any]:
    (example,) = document["components"]["schemas"][name]["examples"]
    assert isinstance(example, dict)
    return example


def test_the_vendored_assets_are_the_ones_recorded() -> None:
    """SHA256SUMS is what `just docs-assets` wrote: a hand edit of a vendored file shows here."""
    sums = (DOCS_ASSETS / "SHA256SUMS").read_text().splitlines()
    assert sums
    for line in sums:
        digest, name = line.split(maxsplit=1)
        assert hashlib.sha256((DOCS_ASSETS / name).read_bytes()).hexdigest() == digest, name
