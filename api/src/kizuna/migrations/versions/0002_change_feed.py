"""Change feed for per-process session caches: users.updated_at, and indexes to find
recently revoked sessions and recently changed users cheaply.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("updated_at", sa.DateTime(), nullable=True))
    op.execute("UPDATE users SET updated_at = created_at")
    with op.batch_alter_table("users") as batch:
        batch.alter_column("updated_at", existing_type=sa.DateTime(), nullable=False)
    op.create_index("ix_users_updated_at", "users", ["updated_at"])
    op.create_index("ix_sessions_revoked_at", "sessions", ["revoked_at"])


def downgrade() -> None:
    op.drop_index("ix_sessions_revoked_at", "sessions")
    op.drop_index("ix_users_updated_at", "users")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("updated_at")
