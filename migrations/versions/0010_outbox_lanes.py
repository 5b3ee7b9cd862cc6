"""outbox: lanes (answers to a person before broadcasts); the due index leads with the lane

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('outbound_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('priority', sa.SmallInteger(), server_default='1', nullable=False))
        batch_op.drop_index('ix_outbound_due')
        batch_op.create_index('ix_outbound_due', ['status', 'priority', 'earliest_at'], unique=False)
    # Answers already waiting go in the first lane.
    op.execute("UPDATE outbound_message SET priority = 0 WHERE purpose = 'reply'")


def downgrade():
    with op.batch_alter_table('outbound_message', schema=None) as batch_op:
        batch_op.drop_index('ix_outbound_due')
        batch_op.create_index('ix_outbound_due', ['status', 'earliest_at'], unique=False)
        batch_op.drop_column('priority')
