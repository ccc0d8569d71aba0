"""The change feed numbered in commit order, and throttling counters shared by every process.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "changes",
        sa.Column("seq", _SERIAL, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key", sa.String(36), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "throttle_hits",
        sa.Column("id", _SERIAL, primary_key=True, autoincrement=True),
        sa.Column("bucket", sa.String(80), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_throttle_hits_bucket_at", "throttle_hits", ["bucket", "at"])


def downgrade() -> None:
    op.drop_index("ix_throttle_hits_bucket_at", "throttle_hits")
    op.drop_table("throttle_hits")
    op.drop_table("changes")
