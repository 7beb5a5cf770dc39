"""signals: rule hits, referrals, referral codes, event relay, orders.account_id

Revision ID: 0002_signals
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.store.types

revision: str = "0002_signals"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("account_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
    op.create_table(
        "rule_hits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("hit_at", bot.store.types.UTCDateTime(), nullable=True),
        sa.Column("message_ref", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("excerpt", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("fired", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_rule_hits_contact_rule_time", "rule_hits", ["contact_id", "rule_id", "hit_at"])
    op.create_table(
        "referrals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("referrer_id", sa.Integer(), nullable=False),
        sa.Column("referred_key", sqlmodel.sql.sqltypes.AutoString(length=160), nullable=False),
        sa.Column("referred_id", sa.Integer(), nullable=True),
        sa.Column("via", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("ref", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("created_at", bot.store.types.UTCDateTime(), nullable=True),
        sa.Column("converted_at", bot.store.types.UTCDateTime(), nullable=True),
        sa.Column("converted_order_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.ForeignKeyConstraint(["referrer_id"], ["contacts.id"]),
        sa.ForeignKeyConstraint(["referred_id"], ["contacts.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("referrer_id", "referred_key", name="uq_referrals_pair"),
    )
    op.create_index("ix_referrals_referrer_id", "referrals", ["referrer_id"])
    op.create_index("ix_referrals_referred_key", "referrals", ["referred_key"])
    op.create_index("ix_referrals_referred_id", "referrals", ["referred_id"])
    op.create_table(
        "referral_codes",
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("created_at", bot.store.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"]),
        sa.PrimaryKeyConstraint("code"),
        sa.UniqueConstraint("contact_id"),
    )
    op.create_table(
        "event_relay",
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["contact_events.id"]),
        sa.PrimaryKeyConstraint("event_id"),
    )


def downgrade() -> None:
    op.drop_table("event_relay")
    op.drop_table("referral_codes")
    op.drop_index("ix_referrals_referred_id", "referrals")
    op.drop_index("ix_referrals_referred_key", "referrals")
    op.drop_index("ix_referrals_referrer_id", "referrals")
    op.drop_table("referrals")
    op.drop_index("ix_rule_hits_contact_rule_time", "rule_hits")
    op.drop_table("rule_hits")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("account_id")
