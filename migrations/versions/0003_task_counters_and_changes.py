"""Per-user task counters, change numbers and tombstones; trigram search indexes

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

Triggers keep the counters in the transaction of every write, whoever writes
(the service, a batch, `todo-svc seed`, SQL by hand): the list's `total` reads
one row instead of counting, and the changes feed reads what changed since a
change number. A user's counter row is locked by each of their writes until
commit, so their change numbers commit in order: a reader that has seen change
N never later finds a committed change below it.
"""

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

POSTGRESQL_TRIGGERS = (
    """
CREATE FUNCTION task_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO task_counters AS counter (user_id, tasks, completed, changes)
        VALUES (NEW.user_id, 1, NEW.completed::int, 1)
        ON CONFLICT (user_id) DO UPDATE
            SET tasks = counter.tasks + 1,
                completed = counter.completed + NEW.completed::int,
                changes = counter.changes + 1
        RETURNING changes INTO NEW.last_change;
        RETURN NEW;
    ELSIF TG_OP = 'UPDATE' THEN
        UPDATE task_counters
            SET completed = completed + NEW.completed::int - OLD.completed::int, changes = changes + 1
            WHERE user_id = NEW.user_id
            RETURNING changes INTO NEW.last_change;
        RETURN NEW;
    END IF;
    -- DELETE. While the account itself is being deleted its counter and tombstones go with it.
    IF EXISTS (SELECT 1 FROM users WHERE id = OLD.user_id) THEN
        WITH counted AS (
            UPDATE task_counters
                SET tasks = tasks - 1, completed = completed - OLD.completed::int, changes = changes + 1
                WHERE user_id = OLD.user_id
                RETURNING changes
        )
        INSERT INTO task_tombstones (user_id, task_id, change, deleted_at)
        SELECT OLD.user_id, OLD.id, changes, clock_timestamp() FROM counted;
    END IF;
    RETURN OLD;
END
$$
""",
    "CREATE TRIGGER task_written BEFORE INSERT OR UPDATE ON tasks"
    " FOR EACH ROW EXECUTE FUNCTION task_counted()",
    "CREATE TRIGGER task_deleted AFTER DELETE ON tasks FOR EACH ROW EXECUTE FUNCTION task_counted()",
)

# SQLite cannot change NEW in a BEFORE trigger: its AFTER triggers number the row with a second
# UPDATE, which the `WHEN` keeps from counting itself again.
SQLITE_TRIGGERS = (
    """
CREATE TRIGGER task_inserted AFTER INSERT ON tasks BEGIN
    INSERT INTO task_counters (user_id, tasks, completed, changes)
    VALUES (NEW.user_id, 1, NEW.completed, 1)
    ON CONFLICT (user_id) DO UPDATE
        SET tasks = tasks + 1, completed = completed + excluded.completed, changes = changes + 1;
    UPDATE tasks SET last_change = (SELECT changes FROM task_counters WHERE user_id = NEW.user_id)
        WHERE id = NEW.id;
END
""",
    """
CREATE TRIGGER task_updated AFTER UPDATE ON tasks WHEN NEW.last_change = OLD.last_change BEGIN
    UPDATE task_counters
        SET completed = completed + NEW.completed - OLD.completed, changes = changes + 1
        WHERE user_id = NEW.user_id;
    UPDATE tasks SET last_change = (SELECT changes FROM task_counters WHERE user_id = NEW.user_id)
        WHERE id = NEW.id;
END
""",
    """
CREATE TRIGGER task_deleted AFTER DELETE ON tasks
WHEN EXISTS (SELECT 1 FROM users WHERE id = OLD.user_id) BEGIN
    UPDATE task_counters
        SET tasks = tasks - 1, completed = completed - OLD.completed, changes = changes + 1
        WHERE user_id = OLD.user_id;
    INSERT INTO task_tombstones (user_id, task_id, change, deleted_at)
        SELECT OLD.user_id, OLD.id, changes, strftime('%Y-%m-%d %H:%M:%f', 'now')
        FROM task_counters WHERE user_id = OLD.user_id;
END
""",
)

# Existing tasks: numbered per user in the order they last changed, and counted.
BACKFILL = (
    """
UPDATE tasks SET last_change = (
    SELECT count(*) FROM tasks AS earlier
    WHERE earlier.user_id = tasks.user_id
      AND (earlier.updated_at < tasks.updated_at
           OR (earlier.updated_at = tasks.updated_at AND earlier.id <= tasks.id))
)
""",
    """
INSERT INTO task_counters (user_id, tasks, completed, changes)
SELECT user_id, count(*), sum(CASE WHEN completed THEN 1 ELSE 0 END), count(*)
FROM tasks GROUP BY user_id
""",
)
POSTGRESQL_BACKFILL = (
    """
UPDATE tasks SET last_change = numbered.n
FROM (SELECT id, row_number() OVER (PARTITION BY user_id ORDER BY updated_at, id) AS n FROM tasks) AS numbered
WHERE tasks.id = numbered.id
""",
    BACKFILL[1],
)


def upgrade() -> None:
    postgresql = op.get_context().dialect.name == "postgresql"
    op.create_table(
        "task_counters",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("tasks", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("completed", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("changes", sa.BigInteger(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_task_counters_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_task_counters")),
    )
    op.create_table(
        "task_tombstones",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.Identity(always=False, start=1, increment=1),
            nullable=False,
        ),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("change", sa.BigInteger(), nullable=False),
        sa.Column("deleted_at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_task_tombstones_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_tombstones")),
    )
    with op.batch_alter_table("task_tombstones", schema=None) as batch_op:
        batch_op.create_index("ix_task_tombstones_user_change", ["user_id", "change"], unique=False)
        batch_op.create_index("ix_task_tombstones_deleted", ["deleted_at"], unique=False)
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_change", sa.BigInteger(), server_default="0", nullable=False))
    for statement in POSTGRESQL_BACKFILL if postgresql else BACKFILL:
        op.execute(statement)
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index("ix_tasks_user_change", ["user_id", "last_change"], unique=False)
    if postgresql:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
        for column in ("title", "description"):
            op.create_index(
                f"ix_tasks_{column}_trgm",
                "tasks",
                ["user_id", column],
                postgresql_using="gin",
                postgresql_ops={column: "gin_trgm_ops"},
            )
    for statement in POSTGRESQL_TRIGGERS if postgresql else SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER task_deleted ON tasks")
        op.execute("DROP TRIGGER task_written ON tasks")
        op.execute("DROP FUNCTION task_counted()")
        op.drop_index("ix_tasks_description_trgm", table_name="tasks")
        op.drop_index("ix_tasks_title_trgm", table_name="tasks")
    else:
        for trigger in ("task_deleted", "task_updated", "task_inserted"):
            op.execute(f"DROP TRIGGER {trigger}")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_user_change")
        batch_op.drop_column("last_change")
    op.drop_table("task_tombstones")
    op.drop_table("task_counters")
