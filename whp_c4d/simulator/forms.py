"""Forms of the simulator's pages: a fake handset writing in, and the fault-injection settings."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from .services import MAX_BODY


class ReplyForm(FlaskForm):
    to = SelectField(_l("To"), choices=[], validators=[DataRequired()])
    body = TextAreaField(_l("Message"), validators=[DataRequired(), Length(max=MAX_BODY)])


class NewPhoneForm(FlaskForm):
    number = StringField(_l("Phone number of the fake handset"), validators=[DataRequired(), Length(max=40)],
                         description=_l("With + and the country code. Use a fictional number."))
    to = SelectField(_l("To"), choices=[], validators=[DataRequired()])
    body = TextAreaField(_l("Message"), validators=[DataRequired(), Length(max=MAX_BODY)])


def _rate(label):
    return StringField(label, validators=[Optional(), Length(max=12)])


class SettingsForm(FlaskForm):
    latency_ms = StringField(_l("Latency of every answer (milliseconds)"), validators=[Optional(), Length(max=20)],
                             description=_l("A number such as 100, or a range such as 50-300."))
    rate_429 = _rate(_l("Share of sends refused with 429 “too many requests”"))
    rate_500 = _rate(_l("Share of sends answered with a server error (nothing sent)"))
    rate_timeout = _rate(_l("Share of sends that time out (nothing sent)"))
    rate_accepted_then_500 = _rate(_l("Share of sends accepted but answered with a server error"))
    rate_accepted_then_timeout = _rate(_l("Share of sends accepted but answered too late"))
    rate_21610 = _rate(_l("Share of sends refused with 21610 (the person replied STOP)"))
    rate_undelivered = _rate(_l("Share of messages ending undelivered (30003)"))
    rate_duplicate = _rate(_l("Share of status callbacks sent twice"))
    rate_reorder = _rate(_l("Share of messages whose “sent” callback arrives last"))
    callback_delays = StringField(_l("Seconds until sent, delivered and read"), validators=[Optional(), Length(max=60)],
                                  description=_l("Three increasing numbers separated by commas, such as 0.5,1.5,4."))
    timeout_seconds = StringField(_l("How long a timeout holds the answer (seconds)"),
                                  validators=[Optional(), Length(max=12)])
