"""The Idempotency-Key header of create requests: replay the first response to its retries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import msgspec
from litestar import Response
from litestar.enums import MediaType
from litestar.params import HeaderParameter
from litestar.status_codes import HTTP_201_CREATED

from todo_svc.api.dependencies import Database, idempotency_service
from todo_svc.api.schemas import OPTIONAL_HEADER
from todo_svc.services.idempotency import StoredResponse, fingerprint

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        schema_extra=OPTIONAL_HEADER,
        required=False,
        pattern=r"^[\x21-\x7e]{1,255}$",
        description="1 to 255 visible ASCII characters. A retry with the same key and body within 24 hours "
        "gets the first response again (with `Idempotent-Replayed: true`) and creates nothing.",
    ),
]


async def replay_or_run(
    db: Database,
    owner_id: int,
    key: str | None,
    operation: str,
    body: msgspec.Struct,
    run: Callable[[], Awaitable[Response[Any]]],
) -> Response[Any]:
    """Run the create once per key; answer its retries with the stored response.

    Without a key nothing is looked up; with one, the record and the created tasks
    share the request's session and so its transaction.
    """
    if key is None:
        return await run()
    records = idempotency_service(db)
    request = fingerprint(operation, msgspec.json.encode(body))
    if (stored := await records.begin(owner_id, key, request)) is not None:
        headers = {"Idempotent-Replayed": "true"}
        if stored.location:
            headers["Location"] = stored.location
        return Response(
            stored.body, status_code=stored.status_code, headers=headers, media_type=MediaType.JSON
        )
    response = await run()
    first = StoredResponse(
        response.status_code or HTTP_201_CREATED,  # the creates set theirs
        msgspec.json.encode(response.content),
        response.headers.get("Location"),
    )
    await records.remember(owner_id, key, request, first)
    return response
