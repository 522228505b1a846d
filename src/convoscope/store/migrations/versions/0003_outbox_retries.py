"""Outbox rows that failed to store wait before they are claimed again; claims are fair across projects.

Written by hand to match ``convoscope.store.meta``; ``tests/store/test_metadata.py`` compares the
migrated schema with the models.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("run_after", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_outbox_status_project_id", "outbox", ["status", "project_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_status_project_id", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("run_after")
