"""trust: address verification codes for copies, bot markers (health probe, database token)

Revision ID: 0003_trust
Revises: 0001
Create Date: 2026-11-29 12:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.storage.models


revision: str = '0003_trust'
down_revision: str | None = '0002_territory'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('address_verification',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('code_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', bot.storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', bot.storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('verified_at', bot.storage.models.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('address_verification', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_address_verification_address'), ['address'], unique=False)
        batch_op.create_index(batch_op.f('ix_address_verification_user_id'), ['user_id'], unique=False)

    op.create_table('bot_marker',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('at', bot.storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('value', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('bot_marker')
    with op.batch_alter_table('address_verification', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_address_verification_user_id'))
        batch_op.drop_index(batch_op.f('ix_address_verification_address'))

    op.drop_table('address_verification')
