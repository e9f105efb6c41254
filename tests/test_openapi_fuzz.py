"""Schemathesis against the served OpenAPI document: every operation, called as a signed-in user.

Every response must be documented (status, content type, headers, body), valid requests must
be accepted and invalid ones rejected, and no request, however malformed, may end in a 5xx.
"""

from __future__ import annotations

import zlib
from typing import Any

import anyio
import httpx
import pytest
import schemathesis
from conftest import empty_tables
from hypothesis import HealthCheck, settings
from litestar import Litestar
from litestar.testing import AsyncTestClient
from schemathesis import Case
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_svc.db.models import MAX_ID

Client = AsyncTestClient[Litestar]
Message = dict[str, Any]
SEEDED_TASKS = 5


class SuiteApp:
    """The suite's app, as an ASGI app that Schemathesis can call from its own event loop.

    The app runs in the suite client's event loop (its connection pool belongs to that loop),
    so each request is read here, run there, and its answer played back here.
    """

    def __init__(self, client: Client) -> None:
        self._client = client

    async def __call__(self, scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":  # the app's lifespan is the suite client's
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        messages = await anyio.to_thread.run_sync(self._client.blocking_portal.call, self._run, scope, body)
        for message in messages:
            await send(message)

    async def _run(self, scope: Message, body: bytes) -> list[Message]:
        sent: list[Message] = []
        incoming = iter([{"type": "http.request", "body": body, "more_body": False}])

        async def receive() -> Message:
            return next(incoming, {"type": "http.disconnect"})

        async def send(message: Message) -> None:
            sent.append(message)

        await self._client.app({**scope, "state": {}}, receive, send)
        return sent


class FuzzAccount:
    """The caller, with the documented example credentials: user 1, with tasks 1..SEEDED_TASKS."""

    EMAIL, PASSWORD = "ann@example.org", "correct horse battery"  # the OpenAPI examples

    def __init__(self, client: Client, engine: AsyncEngine) -> None:
        self._client, self._engine = client, engine
        self._operation: str | None = None  # the operation the account was last set up for
        self.id, self.token = 0, ""
        self._reset()

    def prepare(self, case: Case) -> None:
        """A fresh start for each operation, so that every one finds the seeded tasks."""
        if case.operation.label != self._operation:
            self._reset()
            self._operation = case.operation.label

    def deleted(self) -> None:
        self._operation = None

    def _reset(self) -> None:
        self._client.blocking_portal.call(self._register_on_empty_tables)

    async def _register_on_empty_tables(self) -> None:
        # The ids restart: the account is user 1 again, and its tokens (which name user 1 and its
        # email) stay valid, also those already given to generated cases.
        await empty_tables(self._engine)
        transport = httpx.ASGITransport(app=self._client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            credentials = {"email": self.EMAIL, "password": self.PASSWORD}
            response = await http.post("/api/v1/auth/register", json=credentials)
            assert response.status_code == 201, response.text
            body = response.json()
            assert self.id in (0, body["user"]["id"]), body
            self.id, self.token = body["user"]["id"], body["access_token"]
            tasks = {"tasks": [{"title": f"seeded {number}"} for number in range(1, SEEDED_TASKS + 1)]}
            headers = {"Authorization": f"Bearer {self.token}"}
            response = await http.post(f"/api/v1/users/{self.id}/tasks/batch", json=tasks, headers=headers)
            assert response.status_code == 201, response.text
            assert [task["id"] for task in response.json()["items"]] == list(range(1, SEEDED_TASKS + 1))


@pytest.fixture(scope="module")
def suite_app(session_client: Client) -> SuiteApp:
    return SuiteApp(session_client)


@pytest.fixture
def account(client: Client, engine: AsyncEngine) -> FuzzAccount:
    return FuzzAccount(client, engine)


@pytest.fixture
def api_schema(suite_app: SuiteApp, account: FuzzAccount) -> schemathesis.BaseSchema:
    """The document the app serves; operations that declare bearer auth get the account's token."""
    api = schemathesis.openapi.from_asgi("/docs/openapi.json", suite_app)

    @api.auth(refresh_interval=None)
    class Bearer:
        # Through Schemathesis, so that the cases that leave the token out on purpose go without it.
        def get(self, case: Case, context: schemathesis.AuthContext) -> str:
            return account.token

        def set(self, case: Case, token: str, context: schemathesis.AuthContext) -> None:
            case.headers["Authorization"] = f"Bearer {token}"

    return api


@pytest.fixture(autouse=True)
def _lazy_schema_node_id(request: pytest.FixtureRequest) -> None:
    """Schemathesis 4.32's lazy schema reads `node._nodeid`, which pytest 9.2 no longer has."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=30, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)
def test_every_operation_conforms_to_the_openapi_document(case: Case, account: FuzzAccount) -> None:
    """Schemathesis' checks, all of its defaults: no 5xx; status, content type, headers and body as
    documented; valid data accepted and invalid rejected; auth enforced; other methods 405 with Allow.

    Derandomized, so every run sends the same requests.
    """
    account.prepare(case)
    aim_at_the_caller(case, account)
    response = case.call()
    if case.method == "DELETE" and case.path.endswith("/users/me") and response.status_code == 204:
        account.deleted()
    case.validate_response(response, excluded_checks=stateful_rejection(case, response.status_code))


def aim_at_the_caller(case: Case, account: FuzzAccount) -> None:
    """Point most valid ids at the caller and its seeded tasks, leaving ids that are invalid on purpose.

    Random ids end in 403 (another user's path) or 404 before anything deeper runs.
    """
    path = dict(case.path_parameters)
    for name, value in path.items():
        if type(value) is int and 1 <= value <= MAX_ID and zlib.crc32(f"{name}={value}".encode()) % 4:
            path[name] = account.id if name == "user_id" else 1 + value % SEEDED_TASKS
    if path != case.path_parameters:
        case.path_parameters = path  # assigned, not changed in place: Schemathesis revalidates the case


def stateful_rejection(case: Case, status: int) -> list[schemathesis.CheckFunction]:
    """The check that does not apply when the server's state, not the request, is the reason for a 4xx.

    A stale `If-Match` (412) or an `Idempotency-Key` used before with another body (422) is
    answered as API.md says, but Schemathesis counts any such 4xx as "valid data rejected". So is
    a `cursor` or `since` the service did not issue (400): a string, as the schema says, but only
    the service's own signed tokens are positions.
    """
    header = {412: "If-Match", 422: "Idempotency-Key"}.get(status)
    stateful = bool(header and header in case.headers)
    stateful |= status == 400 and bool({"cursor", "since"} & set(case.query or {}))
    return [schemathesis.checks.positive_data_acceptance] if stateful else []
