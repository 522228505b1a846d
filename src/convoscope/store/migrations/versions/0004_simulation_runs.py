"""Simulation runs are kept, so a later run of the same suite can be compared with them.

Written by hand to match ``convoscope.store.meta``; ``tests/store/test_metadata.py`` compares the
migrated schema with the models.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "simulation_runs",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("suite_id", sa.String(128), nullable=False),
        sa.Column("agent_id", sa.String(128), nullable=False),
        sa.Column("agent_version", sa.String(128), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("passed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("errored", sa.Integer(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name="fk_simulation_runs_project_id_projects",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_simulation_runs"),
    )
    op.create_index("ix_simulation_runs_project_started", "simulation_runs", ["project_id", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_simulation_runs_project_started", table_name="simulation_runs")
    op.drop_table("simulation_runs")
