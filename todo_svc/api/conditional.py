"""ETags of tasks and task lists, and the If-Match / If-None-Match headers that use them.

A task's tag is `"<id>.<version>"`; the version moves with every change, so
the tag is strong. If-Match becomes the set of versions a write accepts, and
the repository checks it inside the UPDATE itself. A list's tag is the owner's
change number (it moves with every change of any of their tasks) and a digest
of the query: a poll with the current one costs one row, not a page.
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated

import msgspec
from litestar.params import HeaderParameter

from todo_svc.api.schemas import OPTIONAL_HEADER
from todo_svc.services.tasks import TaskQuery, TaskRecord

_TAG = re.compile(r'\s*(W/)?"([^"]*)"\s*(?:,|$)')

IfMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-Match",
        schema_extra=OPTIONAL_HEADER,
        required=False,
        description="Change only if the task still has this ETag.",
    ),
]
IfNoneMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-None-Match",
        schema_extra=OPTIONAL_HEADER,
        required=False,
        description="304 when the task still has this ETag.",
    ),
]


ListIfNoneMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-None-Match",
        schema_extra=OPTIONAL_HEADER,
        required=False,
        description="304 when nothing in the user's tasks changed since this list ETag.",
    ),
]


def etag(task: TaskRecord) -> str:
    return f'"{task.id}.{task.version}"'


def list_etag(owner_id: int, query: TaskQuery, changes: int) -> str:
    shape = (owner_id, query.completed, query.q, query.sort, query.limit, query.offset, query.after)
    digest = hashlib.blake2b(msgspec.msgpack.encode(shape), digest_size=8).hexdigest()
    return f'"l{changes}.{digest}"'


def _tags(header: str) -> list[tuple[bool, str]]:
    return [(bool(weak), tag) for weak, tag in _TAG.findall(header)]


def accepted_versions(if_match: str | None, task_id: int) -> frozenset[int] | None:
    """The versions of this task that If-Match accepts; `None` for no condition (absent or `*`).

    Strong comparison: weak tags and tags of other tasks match nothing.
    """
    if if_match is None or if_match.strip() == "*":
        return None
    versions = set()
    for weak, tag in _tags(if_match):
        tag_id, _, version = tag.partition(".")
        if not weak and tag_id == str(task_id) and version.isdecimal():
            versions.add(int(version))
    return frozenset(versions)


def is_current(if_none_match: str | None, task: TaskRecord) -> bool:
    """If-None-Match names the task's current tag (weak comparison, as RFC 9110 asks for GET)."""
    return names(if_none_match, etag(task))


def names(if_none_match: str | None, current_tag: str) -> bool:
    """If-None-Match names `current_tag`, or `*` (weak comparison, as RFC 9110 asks for GET)."""
    if if_none_match is None:
        return False
    current = current_tag.strip('"')
    return if_none_match.strip() == "*" or any(tag == current for _, tag in _tags(if_none_match))
