"""inbound messages, keywords (with the shipped defaults), poll responses, conversation state, the WhatsApp window

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 01:07:08.960462

"""
import re
import unicodedata
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


# The keywords shipped with the product: (action, language the word tells us, language to switch to,
# words as people type them). Stored normalised: lower case, no accents, punctuation as spaces.
KEYWORDS = [
    ("opt_out", "en", None, ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT")),
    ("opt_out", "es", None, ("BAJA", "ALTO", "PARAR", "DETENER", "CANCELAR", "DARME DE BAJA")),
    ("opt_out", "fr", None, ("ARRÊT", "ARRETER", "DÉSABONNER", "DESINSCRIRE")),
    ("opt_out", "ht", None, ("SISPANN", "KANPE", "DEZABONE")),
    ("opt_out", "nl", None, ("STOPPEN", "AFMELDEN", "UITSCHRIJVEN")),
    ("opt_in", "en", None, ("START", "UNSTOP", "YES", "SUBSCRIBE", "JOIN")),
    ("opt_in", "es", None, ("SÍ", "ALTA", "UNIRME", "SUSCRIBIR", "EMPEZAR")),
    ("opt_in", "fr", None, ("COMMENCER", "OUI", "ABONNER", "INSCRIRE")),
    ("opt_in", "ht", None, ("KÒMANSE", "WI", "ABONE")),
    ("opt_in", "nl", None, ("AANMELDEN", "JA", "BEGINNEN")),
    ("help", "en", None, ("HELP", "INFO")),
    ("help", "es", None, ("AYUDA", "INFORMACIÓN")),
    ("help", "fr", None, ("AIDE",)),
    ("help", "ht", None, ("ÈD", "EDE")),
    ("help", "nl", None, ("HULP",)),
    ("language", "es", "es", ("ES", "ESPAÑOL", "CASTELLANO")),
    ("language", "en", "en", ("EN", "ENGLISH")),
    ("language", "fr", "fr", ("FR", "FRANÇAIS")),
    ("language", "ht", "ht", ("HT", "KREYÒL", "KREYOL AYISYEN", "CREOLE")),
    ("language", "nl", "nl", ("NL", "NEDERLANDS")),
    ("erase", "es", None, ("BORRAR", "BORRAR MIS DATOS", "ELIMINAR")),
    ("erase", "en", None, ("DELETE", "ERASE", "DELETE MY DATA")),
    ("erase", "fr", None, ("SUPPRIMER", "EFFACER")),
    ("erase", "ht", None, ("EFASE", "SIPRIME")),
    ("erase", "nl", None, ("VERWIJDEREN", "WISSEN")),
    ("real", "es", None, ("ES REAL", "ES VERDAD", "ES CIERTO")),
    ("real", "en", None, ("IS THIS REAL", "IS IT REAL", "REAL")),
    ("real", "fr", None, ("C'EST VRAI", "EST-CE VRAI")),
    ("real", "ht", None, ("SE VRE", "ESKE SE VRE")),
    ("real", "nl", None, ("IS DIT ECHT", "IS HET ECHT", "ECHT")),
]


def _normalise(text):
    plain = "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w]+", " ", plain).replace("_", " ").split())


def keyword_rows():
    rows, seen = [], set()
    for action, language, value, words in KEYWORDS:
        for word in words:
            normal = _normalise(word)
            if normal not in seen:
                seen.add(normal)
                rows.append({"word": normal, "action": action, "language": language, "value": value,
                             "built_in": True, "active": True})
    return rows


def upgrade():
    op.create_table('keyword',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('word', sa.String(length=60), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('value', sa.String(length=8), nullable=True),
    sa.Column('built_in', sa.Boolean(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("action in ('opt_out','opt_in','help','language','erase','real')", name=op.f('ck_keyword_action')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_keyword')),
    sa.UniqueConstraint('word', name=op.f('uq_keyword_word'))
    )
    op.create_table('conversation_state',
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('erasure_requested_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reasked_message_id', sa.BigInteger(), nullable=True),
    sa.Column('last_ack_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name=op.f('fk_conversation_state_contact_id_contact'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('contact_id', name=op.f('pk_conversation_state'))
    )
    op.create_table('inbound_message',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('provider_sid', sa.String(length=34), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('to_address', sa.String(length=64), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('text_hash', sa.String(length=64), nullable=False),
    sa.Column('num_media', sa.Integer(), nullable=False),
    sa.Column('media', sa.Text(), nullable=True),
    sa.Column('button_payload', sa.String(length=200), nullable=True),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=True),
    sa.Column('action', sa.String(length=16), nullable=True),
    sa.Column('flag', sa.String(length=30), nullable=True),
    sa.Column('campaign_id', sa.Integer(), nullable=True),
    sa.Column('step_id', sa.Integer(), nullable=True),
    sa.Column('answered', sa.Boolean(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('handled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('handled_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("channel in ('sms','whatsapp')", name=op.f('ck_inbound_message_channel')),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name=op.f('fk_inbound_message_contact_id_contact'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['handled_by_id'], ['user_account.id'], name=op.f('fk_inbound_message_handled_by_id_user_account'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_message')),
    sa.UniqueConstraint('provider_sid', name=op.f('uq_inbound_message_provider_sid'))
    )
    with op.batch_alter_table('inbound_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbound_message_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index('ix_inbound_message_contact_hash', ['contact_id', 'text_hash', 'received_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbound_message_contact_id'), ['contact_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbound_message_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbound_message_received_at'), ['received_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbound_message_status'), ['status'], unique=False)

    op.create_table('poll_response',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('step_id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('occurrence', sa.String(length=32), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('choice', sa.Integer(), nullable=True),
    sa.Column('inbound_message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name=op.f('fk_poll_response_contact_id_contact'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['inbound_message_id'], ['inbound_message.id'], name=op.f('fk_poll_response_inbound_message_id_inbound_message'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_poll_response')),
    sa.UniqueConstraint('step_id', 'occurrence', 'contact_id', name='poll_response_once')
    )
    with op.batch_alter_table('poll_response', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_poll_response_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_poll_response_contact_id'), ['contact_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_poll_response_step_id'), ['step_id'], unique=False)

    with op.batch_alter_table('contact_channel', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_inbound_at', sa.DateTime(timezone=True), nullable=True))
    keyword = sa.table('keyword', sa.column('word', sa.String), sa.column('action', sa.String),
                       sa.column('language', sa.String), sa.column('value', sa.String),
                       sa.column('built_in', sa.Boolean), sa.column('active', sa.Boolean),
                       sa.column('created_at', sa.DateTime(timezone=True)))
    now = datetime.now(timezone.utc)
    op.bulk_insert(keyword, [{**row, "created_at": now} for row in keyword_rows()])


def downgrade():
    with op.batch_alter_table('contact_channel', schema=None) as batch_op:
        batch_op.drop_column('last_inbound_at')

    with op.batch_alter_table('poll_response', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_poll_response_step_id'))
        batch_op.drop_index(batch_op.f('ix_poll_response_contact_id'))
        batch_op.drop_index(batch_op.f('ix_poll_response_campaign_id'))

    op.drop_table('poll_response')
    with op.batch_alter_table('inbound_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbound_message_status'))
        batch_op.drop_index(batch_op.f('ix_inbound_message_received_at'))
        batch_op.drop_index(batch_op.f('ix_inbound_message_kind'))
        batch_op.drop_index(batch_op.f('ix_inbound_message_contact_id'))
        batch_op.drop_index('ix_inbound_message_contact_hash')
        batch_op.drop_index(batch_op.f('ix_inbound_message_campaign_id'))

    op.drop_table('inbound_message')
    op.drop_table('conversation_state')
    op.drop_table('keyword')
