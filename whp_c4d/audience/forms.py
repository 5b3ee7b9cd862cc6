"""Forms for contacts, consent, import, segments and privacy settings."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    IntegerField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional

CHANNEL_CHOICES = [("sms", "SMS"), ("whatsapp", "WhatsApp")]
SOURCE_CHOICES = [
    ("form", _l("Paper or web form")),
    ("partner_registration", _l("Registered by a partner organisation")),
    ("keyword", _l("Keyword (the person wrote to us)")),
    ("import", _l("Imported list with recorded consent")),
]
CONSENT_FILTER_CHOICES = [("", _l("Any")), ("campaigns", _l("Campaign messages")), ("polls", _l("Polls"))]


class ContactForm(FlaskForm):
    phone = StringField(_l("Phone number"), validators=[DataRequired(), Length(max=40)],
                        description=_l("With the country code (+502 …), or the national number and the country."))
    country = SelectField(_l("Country"), choices=[], validators=[DataRequired()])
    language = SelectField(_l("Language of the messages"), choices=[], validators=[DataRequired()])
    channels = SelectMultipleField(_l("Channels"), choices=CHANNEL_CHOICES, validators=[DataRequired()])
    tags = StringField(_l("Tags (separated by ;)"), validators=[Optional(), Length(max=500)])
    consent_source = SelectField(_l("How the person gave consent"), choices=SOURCE_CHOICES)
    consent_date = DateField(_l("Date of consent"), validators=[DataRequired()])
    notice_version = StringField(_l("Version of the privacy notice read to the person"),
                                 validators=[Optional(), Length(max=40)])


class ContactEditForm(FlaskForm):
    language = SelectField(_l("Language of the messages"), choices=[], validators=[DataRequired()])
    country = SelectField(_l("Country"), choices=[], validators=[DataRequired()])
    timezone = StringField(_l("Time zone"), validators=[DataRequired(), Length(max=64)])
    tags = StringField(_l("Tags (separated by ;)"), validators=[Optional(), Length(max=500)])


class NumberForm(FlaskForm):
    phone = StringField(_l("New phone number"), validators=[DataRequired(), Length(max=40)])
    country = SelectField(_l("Country of the new number"), choices=[], validators=[Optional()])


class ConsentForm(FlaskForm):
    channel = SelectField(_l("Channel"), choices=CHANNEL_CHOICES)
    decision = RadioField(_l("Decision"), choices=[("grant", _l("Gives consent")), ("withdraw", _l("Opts out"))],
                          default="grant")
    source = SelectField(_l("Source"), choices=SOURCE_CHOICES)
    notice_version = StringField(_l("Privacy notice version"), validators=[Optional(), Length(max=40)])


class EraseForm(FlaskForm):
    confirm = StringField(_l("Type the pseudonym to confirm"), validators=[DataRequired(), Length(max=12)])


class ImportForm(FlaskForm):
    file = FileField(_l("CSV file (UTF-8, with a header row)"), validators=[FileRequired()])
    mode = RadioField(_l("When some rows have errors"), default="valid_only", choices=[
        ("valid_only", _l("Import the valid rows, report the others")),
        ("all_or_nothing", _l("Import nothing until every row is valid")),
    ])


class SegmentForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    countries = SelectMultipleField(_l("Countries"), choices=[], validators=[Optional()])
    languages = SelectMultipleField(_l("Languages"), choices=[], validators=[Optional()])
    channels = SelectMultipleField(_l("Channels"), choices=CHANNEL_CHOICES, validators=[Optional()])
    tags = StringField(_l("Tags (any of, separated by ;)"), validators=[Optional(), Length(max=500)])
    consent = SelectField(_l("Consent for"), choices=CONSENT_FILTER_CHOICES, validators=[Optional()])
    active_within_days = IntegerField(_l("Active in the last N days"),
                                      validators=[Optional(), NumberRange(min=1, max=3650)])
    inactive_for_days = IntegerField(_l("Inactive for at least N days"),
                                     validators=[Optional(), NumberRange(min=1, max=3650)])


class LanguageForm(FlaskForm):
    code = StringField(_l("ISO 639 code (e.g. pap, quc, mam, cab)"), validators=[DataRequired(), Length(min=2, max=3)])
    enabled = BooleanField(_l("Enabled"), default=True)

