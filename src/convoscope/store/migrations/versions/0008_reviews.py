"""The review queue (calls queued for people by rule, with their claims) and people's labels.

Written by hand to match ``convoscope.store.reviews_meta``; ``tests/store/test_metadata.py`` compares
the migrated schema with the models.

Revision ID: 0008
Revises: 0007
Create Date: 2027-01-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "review_items",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("call_id", sa.String(200), nullable=False),
        sa.Column("metric", sa.String(200), nullable=False),
        sa.Column("rule", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.String(200), nullable=True),
        sa.Column("call_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("claimed_by_name", sa.String(200), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("skipped_by", sa.JSON(), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name="fk_review_items_project_id_projects", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_review_items"),
        sa.UniqueConstraint("project_id", "call_id", "metric", name="uq_review_items_project_id"),
    )
    op.create_index(
        "ix_review_items_project_state", "review_items", ["project_id", "state", "priority", "queued_at"]
    )
    op.create_table(
        "review_labels",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("call_id", sa.String(200), nullable=False),
        sa.Column("metric", sa.String(200), nullable=False),
        sa.Column("reviewer_id", sa.String(64), nullable=False),
        sa.Column("reviewer_name", sa.String(200), nullable=False),
        sa.Column("verdict", sa.String(8), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("rule", sa.String(32), nullable=True),
        sa.Column("judge", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name="fk_review_labels_project_id_projects", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_review_labels"),
        sa.UniqueConstraint(
            "project_id", "call_id", "metric", "reviewer_id", name="uq_review_labels_project_id"
        ),
    )
    op.create_index(
        "ix_review_labels_project_metric", "review_labels", ["project_id", "metric", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_review_labels_project_metric", table_name="review_labels")
    op.drop_table("review_labels")
    op.drop_index("ix_review_items_project_state", table_name="review_items")
    op.drop_table("review_items")
