"""Indexes for the admin side at a million users: users in bytewise email order (PostgreSQL),
a user's sessions newest first, a user's security events newest first, recent events from one
address.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _postgresql() -> bool:
    return bool(op.get_bind().dialect.name == "postgresql")


def upgrade() -> None:
    # The admin list pages and searches by email in code-point order (a prefix is then one
    # range). SQLite compares bytes already and its unique index on email serves; PostgreSQL
    # compares by the database's locale unless told otherwise, so it gets a "C" index.
    if _postgresql():
        op.create_index(
            "ix_users_email_bytewise", "users", [sa.text('email COLLATE "C"')], unique=False
        )
    op.create_index("ix_sessions_user_created", "sessions", ["user_id", "created_at"])
    op.create_index("ix_security_events_user_at", "security_events", ["user_id", "at", "id"])
    op.create_index("ix_security_events_ip_at", "security_events", ["ip", "at"])


def downgrade() -> None:
    op.drop_index("ix_security_events_ip_at", "security_events")
    op.drop_index("ix_security_events_user_at", "security_events")
    op.drop_index("ix_sessions_user_created", "sessions")
    if _postgresql():
        op.drop_index("ix_users_email_bytewise", "users")
