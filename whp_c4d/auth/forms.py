"""Forms for logging in, the first administrator, one's own account, users, partners and tokens."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional

from ..config import UI_LOCALES
from ..core.permissions import ROLE_LABELS
from .services import MIN_PASSWORD_LENGTH

ROLE_CHOICES = list(ROLE_LABELS.items())
LANGUAGE_CHOICES = [("", _l("Browser language"))] + [(c, c) for c in UI_LOCALES]


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=512)])


class CodeForm(FlaskForm):
    code = StringField(_l("Code"), validators=[DataRequired(), Length(max=40)],
                       description=_l("The six digits your authenticator app shows, or one of your recovery codes."),
                       render_kw={"autocomplete": "one-time-code", "inputmode": "text", "autofocus": True})


class SetupForm(FlaskForm):
    name = StringField(_l("Your name"), validators=[DataRequired(), Length(max=200)])
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Email(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=512)])
    confirm = PasswordField(_l("Repeat the password"), validators=[
        DataRequired(), EqualTo("password", message=_l("The passwords do not match."))])


class AccountForm(FlaskForm):
    ui_language = SelectField(_l("Language of the interface"), choices=LANGUAGE_CHOICES, validators=[Optional()])
    test_phone = StringField(_l("My phone for test messages"), validators=[Optional(), Length(max=40)],
                             description=_l("International format, e.g. +502 5555 0123. Only you and test sends use it."))


class PasswordForm(FlaskForm):
    current = PasswordField(_l("Current password"), validators=[DataRequired()])
    password = PasswordField(_l("New password"), validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=512)])
    confirm = PasswordField(_l("Repeat the new password"), validators=[
        DataRequired(), EqualTo("password", message=_l("The passwords do not match."))])


class UserForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Email(), Length(max=254)])
    role = SelectField(_l("Role"), choices=ROLE_CHOICES)
    partner_id = SelectField(_l("Partner organisation (partner users only)"), coerce=int, choices=[],
                             validators=[Optional()])
    countries = SelectMultipleField(_l("Limit to countries (officers only; none selected = all)"),
                                    choices=[], validators=[Optional()])
    ui_language = SelectField(_l("Language of the interface"), choices=LANGUAGE_CHOICES, validators=[Optional()])
    active = BooleanField(_l("Active"), default=True)
    password = PasswordField(_l("Initial password (leave empty to keep the current one)"),
                             validators=[Optional(), Length(min=MIN_PASSWORD_LENGTH, max=512)])


class PartnerForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    country = SelectField(_l("Country"), choices=[], validators=[DataRequired()])
    active = BooleanField(_l("Active"), default=True)


class ApiTokenForm(FlaskForm):
    user_id = SelectField(_l("User"), coerce=int, choices=[])
    name = StringField(_l("What the token is for"), validators=[DataRequired(), Length(max=100)])


class EmptyForm(FlaskForm):
    """For buttons that change state: carries the CSRF token and nothing else."""
