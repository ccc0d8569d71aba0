"""Indexes for the purge (``kizuna.purge``): each of its batches finds the oldest rows of one
kind by an index, so a batch costs the same with ten thousand or a million stored sessions.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_INDEXES = (
    ("ix_refresh_tokens_expires_at", "refresh_tokens", ["expires_at"]),
    ("ix_refresh_tokens_revoked_at", "refresh_tokens", ["revoked_at"]),
    ("ix_sessions_expires_at", "sessions", ["expires_at"]),
    ("ix_sessions_last_used_at", "sessions", ["last_used_at"]),
    ("ix_security_events_at", "security_events", ["at"]),
    ("ix_throttle_hits_at", "throttle_hits", ["at"]),
)


def upgrade() -> None:
    for name, table, columns in _INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(_INDEXES):
        op.drop_index(name, table)
