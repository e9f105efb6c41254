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
