"""Domain errors. The API layer alone decides which status each one is."""

from __future__ import annotations


class DomainError(Exception):
    """A use case refused; `str(error)` is a sentence safe to show a client."""


class TaskNotFound(DomainError):
    def __init__(self, task_id: int) -> None:
        super().__init__(f"Task {task_id} not found")


class EmailTaken(DomainError):
    def __init__(self) -> None:
        super().__init__("An account with this email already exists")


class InvalidCredentials(DomainError):
    def __init__(self) -> None:
        super().__init__("Incorrect email or password")


class AccountGone(DomainError):
    def __init__(self) -> None:
        super().__init__("The account of this token no longer exists")


class TaskChanged(DomainError):
    """An If-Match precondition failed: the task changed since the client read it."""

    def __init__(self, task_id: int) -> None:
        super().__init__(f"Task {task_id} has changed since the tag given in If-Match")


class TasksNotFound(DomainError):
    def __init__(self, task_ids: list[int]) -> None:
        self.task_ids = task_ids
        super().__init__(f"Tasks not found: {', '.join(map(str, task_ids))}; nothing was changed")


class IdempotencyKeyInFlight(DomainError):
    def __init__(self) -> None:
        super().__init__("A request with this Idempotency-Key is still being processed; retry later")


class IdempotencyKeyReused(DomainError):
    def __init__(self) -> None:
        super().__init__("This Idempotency-Key was already used with a different request")


class RefreshTokenInvalid(DomainError):
    def __init__(self) -> None:
        super().__init__("The refresh token is invalid, expired or already used; log in again")


class ChangesExpired(DomainError):
    """A changes-feed position older than the deletions kept: the client must read everything again."""

    def __init__(self, retention_days: int) -> None:
        super().__init__(
            f"This since token is older than the {retention_days} days deletions are kept; "
            "read the task list again, then follow the feed from its next_since"
        )
