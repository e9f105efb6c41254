"""Every wire shape of the API. Request bodies forbid unknown fields and are decoded strictly."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from todo_svc.services.tasks import MAX_ID

if TYPE_CHECKING:
    from todo_svc.services.auth import SignedIn, User
    from todo_svc.services.tasks import TaskRecord

TITLE_MAX = 255
BATCH_MAX = 100
EMAIL_MAX = 254
NoNul = r"^[^\x00]*$"
# What `str.strip()` removes, spelled out: `\s` means other sets in other regex dialects (JSON Schema's).
_SPACE = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# Rules on the value as sent, checked here with a readable message and published as `pattern`.
TITLE_SHAPE = re.compile(
    rf"[{_SPACE}]*[^{_SPACE}\x00](?:[^\x00]{{0,{TITLE_MAX - 2}}}[^{_SPACE}\x00])?[{_SPACE}]*"
)
EMAIL_SHAPE = re.compile(rf"[{_SPACE}]*[^@{_SPACE}\x00]+@[^@{_SPACE}\x00]+\.[^@{_SPACE}\x00]+[{_SPACE}]*")


def documented_pattern(shape: re.Pattern[str]) -> dict[str, object]:
    """A `Meta(extra_json_schema=...)` that makes Litestar publish `shape` (its `extra` is schema_extra)."""
    return {"extra": {"pattern": f"^{shape.pattern}$"}}


Email = Annotated[
    str,
    Meta(
        max_length=EMAIL_MAX,
        description="An email address of at most 254 characters; spaces around it and case are ignored.",
        examples=["ann@example.org"],
        extra_json_schema=documented_pattern(EMAIL_SHAPE),
    ),
]
Password = Annotated[
    str,
    Meta(
        min_length=8, max_length=128, description="8 to 128 characters.", examples=["correct horse battery"]
    ),
]
Title = Annotated[
    str,
    Meta(
        description="1 to 255 characters once trimmed, no NUL.",
        examples=["Buy milk"],
        extra_json_schema=documented_pattern(TITLE_SHAPE),
    ),
]
Description = Annotated[str, Meta(max_length=10_000, pattern=NoNul)]


def plain_optional(json_type: str) -> dict[str, Any]:
    """The `schema_extra` of an optional parameter: its type, not Litestar's oneOf with null,
    which generated clients then accept (and send as "None")."""
    return {"oneOf": None, "type": json_type}


OPTIONAL_HEADER = plain_optional("string")


class InvalidField(Exception):
    """A rule msgspec cannot express, broken in one field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _clean_title(title: str) -> str:
    if not TITLE_SHAPE.fullmatch(title):
        raise InvalidField("title", f"Title must be 1 to {TITLE_MAX} characters once trimmed, without NUL")
    return title.strip()


class Credentials(Struct, forbid_unknown_fields=True):
    email: Email
    password: Password

    def __post_init__(self) -> None:
        if not EMAIL_SHAPE.fullmatch(self.email):
            raise InvalidField("email", "Enter a valid email address of at most 254 characters")
        self.email = self.email.strip()


class TaskCreate(Struct, forbid_unknown_fields=True):
    title: Title
    description: Description | None = None
    completed: bool = False

    def __post_init__(self) -> None:
        self.title = _clean_title(self.title)


class TaskReplace(TaskCreate, forbid_unknown_fields=True):
    """The whole task: absent `description` and `completed` take their defaults."""


class TaskPatch(Struct, forbid_unknown_fields=True):
    """Any subset of the fields: absent means unchanged, `null` description means none."""

    title: Title | UnsetType = UNSET
    description: Description | UnsetType | None = UNSET
    completed: bool | UnsetType = UNSET

    def __post_init__(self) -> None:
        if self.title is not UNSET:
            self.title = _clean_title(self.title)


class CompletionSet(Struct, forbid_unknown_fields=True):
    completed: bool


TaskIds = Annotated[
    list[Annotated[int, Meta(ge=1, le=MAX_ID)]],
    Meta(
        min_length=1,
        max_length=BATCH_MAX,
        description=f"1 to {BATCH_MAX} distinct task ids.",
        # Litestar documents neither the items' bounds nor their distinctness unless told again
        # ("extra" is its schema_extra).
        extra_json_schema={
            "extra": {"items": {"type": "integer", "minimum": 1, "maximum": MAX_ID}, "uniqueItems": True}
        },
    ),
]


def _require_distinct(ids: list[int]) -> None:
    if duplicates := sorted(task_id for task_id, count in Counter(ids).items() if count > 1):
        raise InvalidField("ids", f"Duplicate ids: {', '.join(map(str, duplicates))}")


class TaskBatchCreate(Struct, forbid_unknown_fields=True):
    tasks: Annotated[list[TaskCreate], Meta(min_length=1, max_length=BATCH_MAX)]


class TaskBatchComplete(Struct, forbid_unknown_fields=True):
    ids: TaskIds
    completed: bool

    def __post_init__(self) -> None:
        _require_distinct(self.ids)


class TaskBatchDelete(Struct, forbid_unknown_fields=True):
    ids: TaskIds

    def __post_init__(self) -> None:
        _require_distinct(self.ids)


class TaskOut(Struct):
    id: int
    user_id: int
    title: str
    description: str | None
    completed: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, task: TaskRecord) -> TaskOut:
        """The task's fields by name (a column the wire does not show is left out)."""
        return msgspec.convert(task, cls, from_attributes=True)


class TaskList(Struct):
    items: list[TaskOut]


class DeletedCount(Struct):
    deleted: int


class TaskPage(Struct):
    items: list[TaskOut]
    total: int
    limit: int
    offset: int
    next_cursor: Annotated[
        str | None,
        Meta(
            description='Pass as `cursor` for the next page (also in `Link: rel="next"`); null on the last.'
        ),
    ]


class TaskChangesOut(Struct):
    items: Annotated[
        list[TaskOut], Meta(description="Tasks created or changed since, as they are now, in change order.")
    ]
    deleted: Annotated[list[int], Meta(description="Ids of the tasks deleted since.")]
    next_since: Annotated[str, Meta(description="Pass as `since` for the changes after these.")]
    has_more: Annotated[bool, Meta(description="More changes follow: ask again at once with `next_since`.")]


class UserOut(Struct):
    id: int
    email: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(user.id, user.email, user.created_at, user.updated_at)


class TokenPair(Struct):
    access_token: str
    expires_in: Annotated[int, Meta(description="Seconds until the access token expires.")]
    refresh_token: Annotated[
        str, Meta(description="Opaque, single use: trade it at /auth/refresh for a new pair.")
    ]
    user: UserOut
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme name, not a secret

    @classmethod
    def of(cls, signed: SignedIn) -> TokenPair:
        return cls(signed.access_token, signed.expires_in, signed.refresh_token, UserOut.of(signed.user))


class RefreshRequest(Struct, forbid_unknown_fields=True):
    refresh_token: Annotated[str, Meta(min_length=1, max_length=256)]


class FieldError(Struct):
    field: str
    message: str


class ErrorBody(Struct, omit_defaults=True):
    error: Annotated[str, Meta(description="The HTTP reason phrase.")]
    detail: str
    status_code: int
    timestamp: datetime
    request_id: str
    errors: list[FieldError] | UnsetType = UNSET
    checks: dict[str, str] | UnsetType = UNSET


class Health(Struct):
    status: Literal["ok"] = "ok"


class Readiness(Struct):
    status: Literal["ok"]
    checks: dict[str, str]


# What "Try it out" starts from, one per request body (a test decodes each as its Struct).
REQUEST_EXAMPLES: dict[type[Struct], dict[str, Any]] = {
    Credentials: {"email": "ann@example.org", "password": "correct horse battery"},
    TaskCreate: {"title": "Buy milk", "description": "Two litres, semi-skimmed", "completed": False},
    TaskReplace: {"title": "Buy oat milk", "description": "Two litres", "completed": False},
    TaskPatch: {"completed": True},
    CompletionSet: {"completed": True},
    TaskBatchCreate: {"tasks": [{"title": "Buy milk"}, {"title": "Call the plumber", "completed": False}]},
    TaskBatchComplete: {"ids": [1, 2], "completed": True},
    TaskBatchDelete: {"ids": [1, 2]},
    RefreshRequest: {"refresh_token": "the refresh_token of your last login or refresh"},
}
