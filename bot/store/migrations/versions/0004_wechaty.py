"""wechaty: puppet id -> sopbot contact identity mapping

Revision ID: 0004_wechaty
Revises: 0003_delivery
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.store.types

revision: str = "0004_wechaty"
down_revision: str | None = "0003_delivery"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "wechat_identities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("puppet_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("canonical_wxid", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("weixin", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("alias", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("avatar", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("matched_by", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("first_seen_at", bot.store.types.UTCDateTime(), nullable=True),
        sa.Column("last_seen_at", bot.store.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "puppet_id", name="uq_wechat_identities_puppet"),
    )
    with op.batch_alter_table("wechat_identities") as batch:
        batch.create_index("ix_wechat_identities_canonical", ["account_id", "canonical_wxid"])


def downgrade() -> None:
    with op.batch_alter_table("wechat_identities") as batch:
        batch.drop_index("ix_wechat_identities_canonical")
    op.drop_table("wechat_identities")
