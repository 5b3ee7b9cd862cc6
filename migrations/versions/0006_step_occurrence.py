"""step occurrences (expanded or missed), per-message zone, quiet hours and expiry, campaign max delay

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 23:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('step_occurrence',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('step_id', sa.Integer(), nullable=False),
    sa.Column('occurrence', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('messages', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status in ('expanded','missed')", name=op.f('ck_step_occurrence_status')),
    sa.ForeignKeyConstraint(['step_id'], ['campaign_step.id'], name=op.f('fk_step_occurrence_step_id_campaign_step'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_step_occurrence')),
    sa.UniqueConstraint('step_id', 'occurrence', name='step_occurrence_once')
    )
    with op.batch_alter_table('step_occurrence', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_step_occurrence_step_id'), ['step_id'], unique=False)
    with op.batch_alter_table('outbound_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('timezone', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('quiet_start', sa.Time(), nullable=True))
        batch_op.add_column(sa.Column('quiet_end', sa.Time(), nullable=True))
        batch_op.add_column(sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.add_column(sa.Column('max_delay_hours', sa.Integer(), server_default='24', nullable=False))


def downgrade():
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.drop_column('max_delay_hours')
    with op.batch_alter_table('outbound_message', schema=None) as batch_op:
        batch_op.drop_column('expires_at')
        batch_op.drop_column('quiet_end')
        batch_op.drop_column('quiet_start')
        batch_op.drop_column('timezone')
    with op.batch_alter_table('step_occurrence', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_step_occurrence_step_id'))
    op.drop_table('step_occurrence')
