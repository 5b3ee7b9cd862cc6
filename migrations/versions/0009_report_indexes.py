"""reports: per-campaign rollups of the outbox; indexes for a campaign's latest change and its 21610 opt-outs

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('report_rollup',
    sa.Column('campaign_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('fingerprint', sa.String(length=80), nullable=False),
    sa.Column('outbound', sa.JSON(), nullable=False),
    sa.Column('people', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('campaign_id', name=op.f('pk_report_rollup'))
    )
    with op.batch_alter_table('outbound_message', schema=None) as batch_op:
        batch_op.create_index('ix_outbound_campaign_updated', ['campaign_id', 'updated_at'], unique=False)
        batch_op.create_index('ix_outbound_opted_out_at_twilio', ['campaign_id'], unique=False,
                              sqlite_where=sa.text('error_code = 21610'),
                              postgresql_where=sa.text('error_code = 21610'))


def downgrade():
    with op.batch_alter_table('outbound_message', schema=None) as batch_op:
        batch_op.drop_index('ix_outbound_opted_out_at_twilio', sqlite_where=sa.text('error_code = 21610'),
                            postgresql_where=sa.text('error_code = 21610'))
        batch_op.drop_index('ix_outbound_campaign_updated')
    op.drop_table('report_rollup')
