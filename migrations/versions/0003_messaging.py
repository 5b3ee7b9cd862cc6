"""messaging: senders; the Twilio simulator's messages

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 10:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('sender',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('from_address', sa.String(length=40), nullable=True),
    sa.Column('messaging_service_sid', sa.String(length=34), nullable=True),
    sa.Column('countries', sa.JSON(), nullable=False),
    sa.Column('cap_per_second', sa.Integer(), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("channel in ('sms','whatsapp')", name=op.f('ck_sender_channel')),
    sa.CheckConstraint("(from_address is null) <> (messaging_service_sid is null)", name=op.f('ck_sender_one_address')),
    sa.CheckConstraint("cap_per_second > 0", name=op.f('ck_sender_cap_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sender')),
    sa.UniqueConstraint('name', name=op.f('uq_sender_name'))
    )
    with op.batch_alter_table('sender', schema=None) as batch_op:
        # At most one default sender per channel.
        batch_op.create_index('uq_sender_default_per_channel', ['channel'], unique=True,
                              sqlite_where=sa.text('is_default'), postgresql_where=sa.text('is_default'))

    op.create_table('simulator_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sid', sa.String(length=34), nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('direction', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('to_address', sa.Text(), nullable=False),
    sa.Column('to_index', sa.String(length=64), nullable=True),
    sa.Column('from_address', sa.Text(), nullable=True),
    sa.Column('from_index', sa.String(length=64), nullable=True),
    sa.Column('messaging_service_sid', sa.String(length=34), nullable=True),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('media_urls', sa.JSON(), nullable=False),
    sa.Column('content_sid', sa.String(length=34), nullable=True),
    sa.Column('content_variables', sa.Text(), nullable=True),
    sa.Column('status_callback', sa.Text(), nullable=True),
    sa.Column('validity_period', sa.Integer(), nullable=True),
    sa.Column('num_segments', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('error_code', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("direction in ('outbound-api','inbound')", name=op.f('ck_simulator_message_direction')),
    sa.CheckConstraint("channel in ('sms','whatsapp')", name=op.f('ck_simulator_message_channel')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_simulator_message')),
    sa.UniqueConstraint('sid', name=op.f('uq_simulator_message_sid'))
    )
    with op.batch_alter_table('simulator_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_simulator_message_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_simulator_message_from_index'), ['from_index'], unique=False)
        batch_op.create_index(batch_op.f('ix_simulator_message_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_simulator_message_to_index'), ['to_index'], unique=False)


def downgrade():
    with op.batch_alter_table('simulator_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_simulator_message_to_index'))
        batch_op.drop_index(batch_op.f('ix_simulator_message_status'))
        batch_op.drop_index(batch_op.f('ix_simulator_message_from_index'))
        batch_op.drop_index(batch_op.f('ix_simulator_message_created_at'))

    op.drop_table('simulator_message')
    with op.batch_alter_table('sender', schema=None) as batch_op:
        batch_op.drop_index('uq_sender_default_per_channel')

    op.drop_table('sender')
