"""pipeline: SOP occurrences are planned in chunks; `finished_at` says when planning ended

Revision ID: 0005_pipeline
Revises: 0004_wechaty
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.store.types

revision: str = "0005_pipeline"
down_revision: str | None = "0004_wechaty"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sop_runs") as batch:
        batch.add_column(sa.Column("finished_at", bot.store.types.UTCDateTime(), nullable=True))
    # every earlier occurrence was planned in one transaction: it finished when it was decided
    op.execute("UPDATE sop_runs SET finished_at = decided_at")


def downgrade() -> None:
    with op.batch_alter_table("sop_runs") as batch:
        batch.drop_column("finished_at")
