"""silence: contacts indexed by the moments a silence can begin at (their last message, the
start of the friendship, when sopbot first saw them), for `silent:` SOP steps

Revision ID: 0010_silence
Revises: 0009_retention
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010_silence"
down_revision: str | None = "0009_retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_contacts_last_message_at", "contacts", ["last_message_at"])
    op.create_index("ix_contacts_friend_added_at", "contacts", ["friend_added_at"])
    op.create_index("ix_contacts_first_seen_at", "contacts", ["first_seen_at"])


def downgrade() -> None:
    op.drop_index("ix_contacts_first_seen_at", table_name="contacts")
    op.drop_index("ix_contacts_friend_added_at", table_name="contacts")
    op.drop_index("ix_contacts_last_message_at", table_name="contacts")
