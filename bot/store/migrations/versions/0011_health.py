"""health: inbound messages by account and time, for the account's complaint count

Revision ID: 0011_health
Revises: 0010_silence
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011_health"
down_revision: str | None = "0010_silence"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_inbound_account_time", "inbound_messages", ["account_id", "sent_at"])


def downgrade() -> None:
    op.drop_index("ix_inbound_account_time", table_name="inbound_messages")
