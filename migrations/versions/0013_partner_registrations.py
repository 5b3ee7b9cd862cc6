"""audience: partners' registrations (their receipts; partners see these, never contacts)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08 03:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('partner_registration',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=12), nullable=False),
    sa.Column('partner_id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('channels', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name=op.f('fk_partner_registration_contact_id_contact'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['partner_id'], ['partner_organisation.id'],
                            name=op.f('fk_partner_registration_partner_id_partner_organisation'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_partner_registration_user_id_user_account'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partner_registration')),
    sa.UniqueConstraint('reference', name=op.f('uq_partner_registration_reference'))
    )
    with op.batch_alter_table('partner_registration', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_partner_registration_contact_id'), ['contact_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_partner_registration_partner_id'), ['partner_id'], unique=False)


def downgrade():
    with op.batch_alter_table('partner_registration', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_partner_registration_partner_id'))
        batch_op.drop_index(batch_op.f('ix_partner_registration_contact_id'))
    op.drop_table('partner_registration')
