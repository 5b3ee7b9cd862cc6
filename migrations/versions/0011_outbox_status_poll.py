"""outbox: when to ask Twilio for the status of a message whose final report has not come

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('outbound_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('next_check_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_outbound_check', ['next_check_at'], unique=False,
                              sqlite_where=sa.text("status IN ('queued', 'sent')"),
                              postgresql_where=sa.text("status IN ('queued', 'sent')"))


def downgrade():
    with op.batch_alter_table('outbound_message', schema=None) as batch_op:
        batch_op.drop_index('ix_outbound_check', sqlite_where=sa.text("status IN ('queued', 'sent')"),
                            postgresql_where=sa.text("status IN ('queued', 'sent')"))
        batch_op.drop_column('next_check_at')
