"""rollups: daily counters per account for the results report, the watermarks that keep
them up to date, orders with the messages they are attributed to; indexes to look up a
group's messages by time and who was sent a marketing message

Revision ID: 0008_rollups
Revises: 0007_contact_fields
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.store.types

revision: str = "0008_rollups"
down_revision: str | None = "0007_contact_fields"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "daily_rollups",
        sa.Column("account_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("metric", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "day", "metric", "key"),
    )
    op.create_table(
        "rollup_marks",
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("last_at", bot.store.types.UTCDateTime(), nullable=True),
        sa.Column("updated_at", bot.store.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("source"),
    )
    op.create_table(
        "rollup_pending",
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("row_id", sa.BigInteger(), nullable=False),
        sa.Column("since", bot.store.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("source", "row_id"),
    )
    op.create_table(
        "order_touches",
        sa.Column("order_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("account_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("ordered_at", bot.store.types.UTCDateTime(), nullable=True),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("paid", sa.Boolean(), nullable=False),
        sa.Column("last_sop", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("last_step", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("last_sent_at", bot.store.types.UTCDateTime(), nullable=True),
        sa.Column("first_sop", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("first_step", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("first_sent_at", bot.store.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("order_id"),
    )
    op.create_index("ix_order_touches_account_day", "order_touches", ["account_id", "day"])
    op.create_index("ix_order_touches_contact_id", "order_touches", ["contact_id"])
    op.create_index("ix_inbound_room_time", "inbound_messages", ["room_id", "sent_at"])
    op.create_index("ix_inbound_room_contact_time", "inbound_messages", ["room_id", "contact_id", "sent_at"])
    op.create_index(
        "ix_outbox_contact_category_sent", "outbox", ["contact_id", "state", "category", "sent_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_contact_category_sent", table_name="outbox")
    op.drop_index("ix_inbound_room_contact_time", table_name="inbound_messages")
    op.drop_index("ix_inbound_room_time", table_name="inbound_messages")
    op.drop_index("ix_order_touches_contact_id", table_name="order_touches")
    op.drop_index("ix_order_touches_account_day", table_name="order_touches")
    op.drop_table("order_touches")
    op.drop_table("rollup_pending")
    op.drop_table("rollup_marks")
    op.drop_table("daily_rollups")
