"""retention: SOPs the automatic brake paused, the loss alerts sent to the admins, and an
index to count an SOP's sends since a moment

Revision ID: 0009_retention
Revises: 0008_rollups
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.store.types

revision: str = "0009_retention"
down_revision: str | None = "0008_rollups"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sop_brakes",
        sa.Column("sop_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("tripped_at", bot.store.types.UTCDateTime(), nullable=True),
        sa.Column("sends", sa.Integer(), nullable=False),
        sa.Column("deletions", sa.Integer(), nullable=False),
        sa.Column("opt_outs", sa.Integer(), nullable=False),
        sa.Column("complaints", sa.Integer(), nullable=False),
        sa.Column("resumed_at", bot.store.types.UTCDateTime(), nullable=True),
        sa.Column("resumed_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.PrimaryKeyConstraint("sop_id"),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("account_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("sop_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("window_start", bot.store.types.UTCDateTime(), nullable=True),
        sa.Column("window_end", bot.store.types.UTCDateTime(), nullable=True),
        sa.Column("message", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", bot.store.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_alerts_kind_scope", "alerts", ["kind", "account_id", "sop_id", "window_end"])
    op.create_index("ix_outbox_sop_sent", "outbox", ["sop_id", "state", "sent_at", "contact_id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_sop_sent", table_name="outbox")
    op.drop_index("ix_alerts_kind_scope", table_name="alerts")
    op.drop_table("alerts")
    op.drop_table("sop_brakes")
