"""simulator: planned lifecycle events and status callbacks, fault-injection settings, inbound webhook status

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 12:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('simulator_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('error_code', sa.Integer(), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('applied', sa.Boolean(), nullable=False),
    sa.Column('duplicate', sa.Boolean(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_http_status', sa.Integer(), nullable=True),
    sa.Column('posted_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("state in ('pending','done','given_up')", name=op.f('ck_simulator_event_state')),
    sa.ForeignKeyConstraint(['message_id'], ['simulator_message.id'],
                            name=op.f('fk_simulator_event_message_id_simulator_message'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_simulator_event'))
    )
    with op.batch_alter_table('simulator_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_simulator_event_message_id'), ['message_id'], unique=False)
        batch_op.create_index('ix_simulator_event_state_due_at', ['state', 'due_at'], unique=False)

    op.create_table('simulator_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('values', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_simulator_settings'))
    )

    with op.batch_alter_table('simulator_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('webhook_status', sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table('simulator_message', schema=None) as batch_op:
        batch_op.drop_column('webhook_status')
    op.drop_table('simulator_settings')
    with op.batch_alter_table('simulator_event', schema=None) as batch_op:
        batch_op.drop_index('ix_simulator_event_state_due_at')
        batch_op.drop_index(batch_op.f('ix_simulator_event_message_id'))
    op.drop_table('simulator_event')
