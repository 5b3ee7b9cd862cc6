"""participatory evaluation: partner reports, feedback items, the codebook (topics and suggestion rules, with the shipped defaults), notices

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 14:08:54.964579

"""
import unicodedata
import re
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


# The topics shipped with the product (IFRC community feedback framework, adapted to migration), with
# their labels in the UI languages. Administrators add, rename and switch off topics.
TOPICS = [
    ("regular_pathways", {"en": "Regular pathways", "es": "Vías regulares", "fr": "Voies régulières",
                          "ht": "Chemen legal", "nl": "Reguliere routes"}),
    ("documents", {"en": "Documents and procedures", "es": "Documentos y trámites", "fr": "Documents et démarches",
                   "ht": "Dokiman ak demach", "nl": "Documenten en procedures"}),
    ("work_offers", {"en": "Work offers and recruitment", "es": "Ofertas de trabajo y reclutamiento",
                     "fr": "Offres d'emploi et recrutement", "ht": "Òf travay ak rekritman",
                     "nl": "Werkaanbiedingen en werving"}),
    ("smuggling_fraud", {"en": "Smuggling and fraud", "es": "Tráfico de personas y estafas",
                         "fr": "Passeurs et escroqueries", "ht": "Trafik moun ak fwod",
                         "nl": "Mensensmokkel en oplichting"}),
    ("route_safety", {"en": "Safety on the route", "es": "Seguridad en la ruta", "fr": "Sécurité sur la route",
                      "ht": "Sekirite sou wout la", "nl": "Veiligheid onderweg"}),
    ("health", {"en": "Health", "es": "Salud", "fr": "Santé", "ht": "Sante", "nl": "Gezondheid"}),
    ("shelter", {"en": "Shelter", "es": "Albergue", "fr": "Hébergement", "ht": "Abri", "nl": "Onderdak"}),
    ("family", {"en": "Family", "es": "Familia", "fr": "Famille", "ht": "Fanmi", "nl": "Familie"}),
    ("return", {"en": "Return", "es": "Retorno", "fr": "Retour", "ht": "Retou", "nl": "Terugkeer"}),
    ("other", {"en": "Other", "es": "Otro", "fr": "Autre", "ht": "Lòt", "nl": "Overig"}),
]

# Suggestion rules shipped with the product: (topic code or None, type or None, sensitive, words as people
# write them, in the five content languages). Stored normalised like keywords. They only suggest: the
# coder decides.
RULES = [
    ("regular_pathways", None, False, "visa, visado, permiso, asilo, refugio legal, residencia, regularizacion, "
     "parole, cbp one, asylum, permit, residence, visa humanitaire, asile, titre de sejour, viza, azil, "
     "verblijfsvergunning, asiel"),
    ("documents", None, False, "pasaporte, documento, documentos, papeles, cita, tramite, acta, passport, "
     "documents, appointment, papers, passeport, rendez vous, paspo, dokiman, papye, randevou, paspoort, "
     "documenten, afspraak"),
    ("work_offers", None, False, "trabajo, empleo, oferta de trabajo, reclutador, contrato, agencia, job, work, "
     "recruiter, contract, travail, emploi, recruteur, travay, djob, werk, baan, werving"),
    ("smuggling_fraud", None, False, "coyote, pollero, estafa, fraude, me cobraron, smuggler, scam, fraud, "
     "passeur, arnaque, escroquerie, fwod, vole lajan, smokkelaar, oplichting, oplichter"),
    ("route_safety", "concern", True, "secuestro, secuestraron, violacion, abuso, amenaza, extorsion, asalto, "
     "kidnap, kidnapped, rape, abuse, threat, extortion, enlevement, viol, menace, kidnape, vyole, "
     "menase, ontvoering, verkrachting, bedreiging, afpersing"),
    ("route_safety", None, False, "peligro, peligroso, robo, ruta, selva, darien, danger, dangerous, robbery, "
     "route, jungle, dangereux, danje, vole, wout, gevaar, gevaarlijk, beroving"),
    ("health", None, False, "salud, medico, hospital, enfermo, enferma, medicina, clinica, health, doctor, "
     "sick, medicine, clinic, sante, malade, medecin, lopital, maladi, medikaman, gezondheid, ziek, dokter, "
     "ziekenhuis"),
    ("shelter", None, False, "albergue, alojamiento, donde dormir, techo, shelter, accommodation, where to "
     "sleep, abri, hebergement, kote pou dòmi, kay, opvang, onderdak, slaapplaats"),
    ("family", None, False, "familia, hijo, hija, hijos, ninos, reunificacion, family, children, son, "
     "daughter, famille, enfants, fanmi, pitit, timoun, familie, kinderen, zoon, dochter"),
    ("return", None, False, "regresar, retorno, volver, deportacion, deportado, deportada, return, deport, "
     "deported, retour, expulse, rentrer, retounen, depote, terugkeer, teruggaan, uitgezet"),
    (None, "praise", False, "gracias, muchas gracias, thanks, thank you, merci, mesi, mesi anpil, bedankt, "
     "dank je, dank u"),
    (None, "observation", False, "dicen que, escuche que, me dijeron que, rumor, they say, i heard, people say, "
     "rumour, rumor, on dit, j ai entendu, rumeur, yo di, mwen tande, rimè, ze zeggen, ik hoorde, gerucht"),
    (None, "request", False, "necesito, quiero, por favor ayuda, pueden, i need, i want, please help, can you, "
     "j ai besoin, je veux, aidez moi, mwen bezwen, mwen vle, tanpri, ik heb nodig, ik wil, kunnen jullie"),
]


def _normalise(text):
    plain = "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w]+", " ", plain).replace("_", " ").split())


def topic_rows():
    return [{"code": code, "labels": labels, "position": i * 10, "active": True}
            for i, (code, labels) in enumerate(TOPICS)]


def rule_rows(topic_ids):
    return [{"words": ", ".join(_normalise(w) for w in words.split(",") if w.strip()), "language": None,
             "type": kind, "topic_id": topic_ids.get(code) if code else None, "sensitive": sensitive,
             "active": True, "built_in": True}
            for code, kind, sensitive, words in RULES]


def upgrade():
    # ### commands auto generated by Alembic - please adjust! ###
    op.create_table('feedback_topic',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('labels', sa.JSON(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feedback_topic')),
    sa.UniqueConstraint('code', name=op.f('uq_feedback_topic_code'))
    )
    op.create_table('coding_rule',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('words', sa.String(length=300), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=True),
    sa.Column('type', sa.String(length=16), nullable=True),
    sa.Column('topic_id', sa.Integer(), nullable=True),
    sa.Column('sensitive', sa.Boolean(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('built_in', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['topic_id'], ['feedback_topic.id'], name=op.f('fk_coding_rule_topic_id_feedback_topic'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coding_rule'))
    )
    op.create_table('notice',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('target_type', sa.String(length=40), nullable=False),
    sa.Column('target_id', sa.Integer(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('read_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['read_by_id'], ['user_account.id'], name=op.f('fk_notice_read_by_id_user_account'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notice'))
    )
    with op.batch_alter_table('notice', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notice_created_at'), ['created_at'], unique=False)

    op.create_table('partner_report',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('partner_id', sa.Integer(), nullable=False),
    sa.Column('submission_token', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('activity_date', sa.Date(), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('admin_area', sa.String(length=80), nullable=False),
    sa.Column('locality', sa.String(length=200), nullable=False),
    sa.Column('activity_type', sa.String(length=20), nullable=False),
    sa.Column('activity_other', sa.String(length=200), nullable=False),
    sa.Column('campaign_ids', sa.JSON(), nullable=False),
    sa.Column('materials', sa.String(length=500), nullable=False),
    sa.Column('participants', sa.Integer(), nullable=False),
    sa.Column('women', sa.Integer(), nullable=False),
    sa.Column('men', sa.Integer(), nullable=False),
    sa.Column('sex_other', sa.Integer(), nullable=False),
    sa.Column('age_under_13', sa.Integer(), nullable=False),
    sa.Column('age_13_17', sa.Integer(), nullable=False),
    sa.Column('age_18_59', sa.Integer(), nullable=False),
    sa.Column('age_60_plus', sa.Integer(), nullable=False),
    sa.Column('groups', sa.JSON(), nullable=False),
    sa.Column('languages', sa.JSON(), nullable=False),
    sa.Column('what_worked', sa.Text(), nullable=False),
    sa.Column('what_did_not', sa.Text(), nullable=False),
    sa.Column('questions_heard', sa.Text(), nullable=False),
    sa.Column('rumours_heard', sa.Text(), nullable=False),
    sa.Column('suggestions', sa.Text(), nullable=False),
    sa.Column('protection_concern', sa.Boolean(), nullable=False),
    sa.Column('protection_text', sa.Text(), nullable=True),
    sa.Column('submitted_by_id', sa.Integer(), nullable=True),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("activity_type in ('workshop','community_meeting','radio','materials','social_media','other')", name=op.f('ck_partner_report_activity_type')),
    sa.CheckConstraint('participants >= 0 and women >= 0 and men >= 0 and sex_other >= 0 and age_under_13 >= 0 and age_13_17 >= 0 and age_18_59 >= 0 and age_60_plus >= 0', name=op.f('ck_partner_report_counts_not_negative')),
    sa.ForeignKeyConstraint(['partner_id'], ['partner_organisation.id'], name=op.f('fk_partner_report_partner_id_partner_organisation'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['submitted_by_id'], ['user_account.id'], name=op.f('fk_partner_report_submitted_by_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['updated_by_id'], ['user_account.id'], name=op.f('fk_partner_report_updated_by_id_user_account'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partner_report')),
    sa.UniqueConstraint('submission_token', name=op.f('uq_partner_report_submission_token'))
    )
    with op.batch_alter_table('partner_report', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_partner_report_activity_date'), ['activity_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_partner_report_country'), ['country'], unique=False)
        batch_op.create_index(batch_op.f('ix_partner_report_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_partner_report_partner_id'), ['partner_id'], unique=False)

    op.create_table('feedback_item',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('inbound_message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('partner_report_id', sa.Integer(), nullable=True),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('partner_id', sa.Integer(), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=True),
    sa.Column('campaign_id', sa.Integer(), nullable=True),
    sa.Column('step_id', sa.Integer(), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('suggested_type', sa.String(length=16), nullable=True),
    sa.Column('suggested_topic_id', sa.Integer(), nullable=True),
    sa.Column('suggested_sensitive', sa.Boolean(), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=True),
    sa.Column('topic_id', sa.Integer(), nullable=True),
    sa.Column('sensitive', sa.Boolean(), nullable=False),
    sa.Column('criticality', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('loop_action', sa.Text(), nullable=False),
    sa.Column('assigned_to_id', sa.Integer(), nullable=True),
    sa.Column('coded_by_id', sa.Integer(), nullable=True),
    sa.Column('coded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("criticality in ('urgent','action','none')", name=op.f('ck_feedback_item_criticality')),
    sa.CheckConstraint("source in ('message','poll','partner_question','partner_rumour','partner_suggestion')", name=op.f('ck_feedback_item_source')),
    sa.CheckConstraint("status in ('new','under_review','referred','answered','closed')", name=op.f('ck_feedback_item_status')),
    sa.CheckConstraint("type is null or type in ('question','request','concern','praise','observation','incomplete')", name=op.f('ck_feedback_item_type')),
    sa.ForeignKeyConstraint(['assigned_to_id'], ['user_account.id'], name=op.f('fk_feedback_item_assigned_to_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['coded_by_id'], ['user_account.id'], name=op.f('fk_feedback_item_coded_by_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name=op.f('fk_feedback_item_contact_id_contact'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['inbound_message_id'], ['inbound_message.id'], name=op.f('fk_feedback_item_inbound_message_id_inbound_message'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['partner_report_id'], ['partner_report.id'], name=op.f('fk_feedback_item_partner_report_id_partner_report'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['suggested_topic_id'], ['feedback_topic.id'], name=op.f('fk_feedback_item_suggested_topic_id_feedback_topic'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['topic_id'], ['feedback_topic.id'], name=op.f('fk_feedback_item_topic_id_feedback_topic'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feedback_item')),
    sa.UniqueConstraint('inbound_message_id', name=op.f('uq_feedback_item_inbound_message_id')),
    sa.UniqueConstraint('partner_report_id', 'source', name='feedback_item_once_per_report_field')
    )
    with op.batch_alter_table('feedback_item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feedback_item_assigned_to_id'), ['assigned_to_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_feedback_item_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_feedback_item_contact_id'), ['contact_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_feedback_item_country'), ['country'], unique=False)
        batch_op.create_index(batch_op.f('ix_feedback_item_partner_report_id'), ['partner_report_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_feedback_item_received_at'), ['received_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_feedback_item_source'), ['source'], unique=False)
        batch_op.create_index(batch_op.f('ix_feedback_item_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_feedback_item_topic_id'), ['topic_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_feedback_item_type'), ['type'], unique=False)

    # ### end Alembic commands ###
    topic = sa.table("feedback_topic", sa.column("id", sa.Integer), sa.column("code", sa.String),
                     sa.column("labels", sa.JSON), sa.column("position", sa.Integer), sa.column("active", sa.Boolean))
    op.bulk_insert(topic, topic_rows())
    ids = dict((code, id_) for id_, code in op.get_bind().execute(sa.select(topic.c.id, topic.c.code)))
    rule = sa.table("coding_rule", sa.column("words", sa.String), sa.column("language", sa.String),
                    sa.column("type", sa.String), sa.column("topic_id", sa.Integer),
                    sa.column("sensitive", sa.Boolean), sa.column("active", sa.Boolean),
                    sa.column("built_in", sa.Boolean), sa.column("created_at", sa.DateTime(timezone=True)))
    now = datetime.now(timezone.utc)
    op.bulk_insert(rule, [{**row, "created_at": now} for row in rule_rows(ids)])


def downgrade():
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table('feedback_item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feedback_item_type'))
        batch_op.drop_index(batch_op.f('ix_feedback_item_topic_id'))
        batch_op.drop_index(batch_op.f('ix_feedback_item_status'))
        batch_op.drop_index(batch_op.f('ix_feedback_item_source'))
        batch_op.drop_index(batch_op.f('ix_feedback_item_received_at'))
        batch_op.drop_index(batch_op.f('ix_feedback_item_partner_report_id'))
        batch_op.drop_index(batch_op.f('ix_feedback_item_country'))
        batch_op.drop_index(batch_op.f('ix_feedback_item_contact_id'))
        batch_op.drop_index(batch_op.f('ix_feedback_item_campaign_id'))
        batch_op.drop_index(batch_op.f('ix_feedback_item_assigned_to_id'))

    op.drop_table('feedback_item')
    with op.batch_alter_table('partner_report', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_partner_report_partner_id'))
        batch_op.drop_index(batch_op.f('ix_partner_report_created_at'))
        batch_op.drop_index(batch_op.f('ix_partner_report_country'))
        batch_op.drop_index(batch_op.f('ix_partner_report_activity_date'))

    op.drop_table('partner_report')
    with op.batch_alter_table('notice', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notice_created_at'))

    op.drop_table('notice')
    op.drop_table('coding_rule')
    op.drop_table('feedback_topic')
    # ### end Alembic commands ###
