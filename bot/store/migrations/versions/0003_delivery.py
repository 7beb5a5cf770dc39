"""delivery: outbox policy columns, pauses, worker registry

Revision ID: 0003_delivery
Revises: 0002_signals
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.store.types

revision: str = "0003_delivery"
down_revision: str | None = "0002_signals"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("quiet_policy", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False, server_default="wait"))
        batch.add_column(sa.Column("guarantee", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False, server_default="at_most_once"))
        batch.add_column(sa.Column("expires_at", bot.store.types.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("parts_sent", sa.Integer(), nullable=False, server_default="0"))
        batch.create_index("ix_outbox_account_sent", ["account_id", "state", "sent_at"])
        batch.create_index("ix_outbox_contact_sent", ["contact_id", "state", "sent_at"])
        # replaced by ix_outbox_claim; SQLite preferred it for per-contact counts and then
        # scanned every planned row
        batch.drop_index("ix_outbox_state_due")
        batch.create_index(
            "ix_outbox_claim", ["account_id", "state", sa.text("priority DESC"), "not_before", "id"]
        )
    op.create_table(
        "delivery_pauses",
        sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("paused_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("paused_at", bot.store.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("scope"),
    )
    op.create_table(
        "delivery_workers",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("host", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", bot.store.types.UTCDateTime(), nullable=True),
        sa.Column("heartbeat_at", bot.store.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("delivery_workers")
    op.drop_table("delivery_pauses")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_claim")
        batch.create_index("ix_outbox_state_due", ["state", "not_before"])
        batch.drop_index("ix_outbox_contact_sent")
        batch.drop_index("ix_outbox_account_sent")
        batch.drop_column("parts_sent")
        batch.drop_column("expires_at")
        batch.drop_column("guarantee")
        batch.drop_column("quiet_policy")
