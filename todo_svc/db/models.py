"""Tables. Ownership lives in `user_id` columns; deleting a user deletes everything of theirs."""

from __future__ import annotations

from datetime import datetime

from advanced_alchemy.base import IdentityAuditBase
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
        NEVER_REUSE_IDS,
    )

    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    completed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Bumped by every change: the ETag, and the If-Match check inside the UPDATE itself.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


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
