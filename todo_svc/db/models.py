"""Tables. Ownership lives in `user_id` columns; deleting a user deletes everything of theirs."""

from __future__ import annotations

from datetime import datetime

from advanced_alchemy.base import AdvancedDeclarativeBase, IdentityAuditBase, IdentityBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

# PostgreSQL's BIGINT: ids past it can match no row, and asyncpg would refuse to send them.
MAX_ID = 2**63 - 1
# SQLite would hand a deleted row's id to the next insert: a deleted account's
# unexpired token would then open the next account. AUTOINCREMENT forbids reuse.
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


class User(IdentityAuditBase):
    __tablename__ = "users"
    __table_args__ = NEVER_REUSE_IDS

    email: Mapped[str] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(128))


# One account per address, whatever its case (emails are also stored normalised).
Index("ux_users_email_lower", func.lower(User.email), unique=True)


class Task(IdentityAuditBase):
    __tablename__ = "tasks"
    __table_args__ = (
        # A user's tasks in every order the list offers: (user_id, <column>, id).
        Index("ix_tasks_user_created", "user_id", "created_at", "id"),
        Index("ix_tasks_user_updated", "user_id", "updated_at", "id"),
        Index("ix_tasks_user_title", "user_id", "title", "id"),
        # The changes feed: a user's tasks in the order they last changed.
        Index("ix_tasks_user_change", "user_id", "last_change"),
        # `q` on PostgreSQL: trigram indexes, within the user (btree_gin), so a search costs what
        # it finds, not the size of the list.
        *(
            Index(
                f"ix_tasks_{column}_trgm",
                "user_id",
                column,
                postgresql_using="gin",
                postgresql_ops={column: "gin_trgm_ops"},
            ).ddl_if(dialect="postgresql")
            for column in ("title", "description")
        ),
        NEVER_REUSE_IDS,
    )

    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    completed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Bumped by every change: the ETag, and the If-Match check inside the UPDATE itself.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # The owner's change number of this task's latest change (set by the database's triggers).
    last_change: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class TaskCounter(AdvancedDeclarativeBase):
    """Per user, kept by triggers in the writing transaction: how many tasks (and how many
    completed), and how many changes so far. Its row lock orders one user's changes, so change
    numbers commit in the order they are given."""

    __tablename__ = "task_counters"

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    tasks: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    completed: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    changes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class TaskTombstone(IdentityBase):
    """A deleted task, for the changes feed; kept TASK_TOMBSTONE_RETENTION_DAYS (`todo-svc changes prune`)."""

    __tablename__ = "task_tombstones"
    __table_args__ = (
        Index("ix_task_tombstones_user_change", "user_id", "change"),
        Index("ix_task_tombstones_deleted", "deleted_at"),
    )

    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    task_id: Mapped[int] = mapped_column(BigInteger)
    change: Mapped[int] = mapped_column(BigInteger)
    deleted_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))


class IdempotencyRecord(IdentityAuditBase):
    """The response to a create sent with an `Idempotency-Key`, replayed to the same key for 24 hours."""

    __tablename__ = "idempotency_records"
    __table_args__ = (
        UniqueConstraint("user_id", "key"),
        Index("ix_idempotency_records_created", "created_at"),
    )

    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(SmallInteger)
    body: Mapped[str] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(String(1024))


class RefreshToken(IdentityAuditBase):
    """One refresh token, stored only as its SHA-256 digest, in a family that rotation extends."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (
        Index("ix_refresh_tokens_family", "family"),
        Index("ix_refresh_tokens_expires", "expires_at"),
        NEVER_REUSE_IDS,
    )

    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    family: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
