"""contact fields: an operator's own fields per contact (城市 is a column, 会员卡号 a field),
lunar birthdays (`农历MM-DD`) need a wider birthday column, and imported profiles of people
who are no contact yet wait in pending_profiles

Revision ID: 0007_contact_fields
Revises: 0006_leases
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.store.types

revision: str = "0007_contact_fields"
down_revision: str | None = "0006_leases"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pending_profiles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("wxid", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("phone", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("unionid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("alias", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("fields", sa.JSON(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=True),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", bot.store.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_pending_profiles_wxid", "pending_profiles", ["wxid"])
    op.create_index("ix_pending_profiles_phone", "pending_profiles", ["phone"])
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("custom_fields", sa.JSON(), nullable=True))
        batch.alter_column(
            "birthday",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=10),
            type_=sqlmodel.sql.sqltypes.AutoString(length=16),
            existing_nullable=True,
        )


def downgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.alter_column(
            "birthday",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=16),
            type_=sqlmodel.sql.sqltypes.AutoString(length=10),
            existing_nullable=True,
        )
        batch.drop_column("custom_fields")
    op.drop_index("ix_pending_profiles_phone", table_name="pending_profiles")
    op.drop_index("ix_pending_profiles_wxid", table_name="pending_profiles")
    op.drop_table("pending_profiles")
