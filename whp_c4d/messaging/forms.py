"""Forms for the administration of senders."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length, Optional

from ..audience.forms import CHANNEL_CHOICES


class SenderForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=100)])
    channel = SelectField(_l("Channel"), choices=CHANNEL_CHOICES)
    from_address = StringField(_l("Number (“From”)"), validators=[Optional(), Length(max=60)],
                               description=_l("With + and the country code. Leave empty when the messages go "
                                              "out through a Messaging Service."))
    messaging_service_sid = StringField(_l("Messaging Service SID"), validators=[Optional(), Length(max=60)],
                                        description=_l("MG… from the Twilio console, instead of a number."))
    countries = SelectMultipleField(_l("Countries of the recipients (none selected = any)"), choices=[],
                                    validators=[Optional()])
    cap_per_second = IntegerField(_l("Messages per second"), validators=[Optional()],
                                  description=_l("SMS count every segment. Empty: 10 for SMS, 80 for WhatsApp."))
    is_default = BooleanField(_l("Default sender of its channel"))
    active = BooleanField(_l("Active"), default=True)
