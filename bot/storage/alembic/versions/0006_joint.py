"""joint meetings: respondents of overlapping territories invited to one « temps d'échange »

Revision ID: 0006_joint
Revises: 0005_messages
Create Date: 2026-11-29 15:15:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_joint"
down_revision: str | None = "0005_messages"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("meeting", schema=None) as batch_op:
        batch_op.add_column(sa.Column("joint_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_meeting_joint_id"), ["joint_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("meeting", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meeting_joint_id"))
        batch_op.drop_column("joint_id")
