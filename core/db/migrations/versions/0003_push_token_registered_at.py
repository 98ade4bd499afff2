"""device.push_token_registered_at: when the phone gave its push token (APNs 410 timestamps)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 10:30:00
"""

from collections.abc import Sequence

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("device", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "push_token_registered_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("device", schema=None) as batch_op:
        batch_op.drop_column("push_token_registered_at")
