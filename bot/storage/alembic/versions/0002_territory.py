"""territory: the responses' départements and the commune index of their territories

Revision ID: 0002_territory
Revises: 0001
Create Date: 2026-11-29 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0002_territory'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('submission', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                'departements',
                sqlmodel.sql.sqltypes.AutoString(length=32),
                nullable=False,
                server_default='',
            )
        )
        batch_op.create_index(batch_op.f('ix_submission_departements'), ['departements'], unique=False)
    op.create_table('submission_commune',
    sa.Column('submission_id', sa.Integer(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
    sa.ForeignKeyConstraint(['submission_id'], ['submission.id'], ),
    sa.PrimaryKeyConstraint('submission_id', 'code')
    )
    with op.batch_alter_table('submission_commune', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_submission_commune_code'), ['code'], unique=False)
    op.create_table('submission_place_word',
    sa.Column('submission_id', sa.Integer(), nullable=False),
    sa.Column('word', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.ForeignKeyConstraint(['submission_id'], ['submission.id'], ),
    sa.PrimaryKeyConstraint('submission_id', 'word')
    )
    with op.batch_alter_table('submission_place_word', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_submission_place_word_word'), ['word'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('submission_place_word', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_submission_place_word_word'))
    op.drop_table('submission_place_word')
    with op.batch_alter_table('submission_commune', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_submission_commune_code'))
    op.drop_table('submission_commune')
    with op.batch_alter_table('submission', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_submission_departements'))
        batch_op.drop_column('departements')
