"""What administrators maintain for authors: objectives, per-country variables, prices, official domains."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa

from ..auth.models import User
from ..auth.services import audit
from ..core import phones
from ..core.errors import ServiceError
from ..extensions import db
from .models import (
    ANY_COUNTRY,
    CampaignObjective,
    ContentVariable,
    ContentVariableValue,
    OfficialDomain,
    SegmentPrice,
)

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
DOMAIN_RE = re.compile(r"^(?=.{3,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def save_objective(code: str, labels: dict[str, str], actor: User, active: bool = True) -> CampaignObjective:
    code = code.strip().lower()
    if not NAME_RE.match(code):
        raise ServiceError("invalid_code", value=code[:40])
    labels = {k: v.strip()[:120] for k, v in labels.items() if v and v.strip()}
    if not labels:
        raise ServiceError("label_required")
    row = db.session.get(CampaignObjective, code)
    if row is None:
        position = (db.session.scalar(sa.select(sa.func.max(CampaignObjective.position))) or 0) + 10
        row = CampaignObjective(code=code, position=position)
        db.session.add(row)
    row.labels = {**(row.labels or {}), **labels}
    row.active = active
    db.session.flush()
    audit("settings.objective_saved", actor, code=code, active=active)
    return row


def save_variable(name: str, description: str, actor: User) -> ContentVariable:
    name = name.strip().strip("{}").lower()
    if not NAME_RE.match(name):
        raise ServiceError("invalid_code", value=name[:40])
    row = db.session.get(ContentVariable, name) or ContentVariable(name=name)
    row.description = description.strip()[:300]
    db.session.add(row)
    db.session.flush()
    audit("settings.variable_saved", actor, name=name)
    return row


def set_variable_values(variable: ContentVariable, values: dict[str, str], actor: User) -> None:
    """``values``: country -> text; empty text removes the country's value."""
    for country, value in values.items():
        country = country.upper()
        if not phones.is_country(country):
            raise ServiceError("unknown_country", value=country[:10])
        value = (value or "").strip()
        if len(value) > 500:
            raise ServiceError("value_too_long", max=500)
        row = db.session.get(ContentVariableValue, (variable.name, country))
        if value and row is None:
            db.session.add(ContentVariableValue(variable_name=variable.name, country=country, value=value))
        elif value:
            row.value = value
        elif row is not None:
            db.session.delete(row)
    db.session.flush()
    db.session.expire(variable, ["values"])
    audit("settings.variable_values_saved", actor, name=variable.name)


def delete_variable(variable: ContentVariable, actor: User) -> None:
    name = variable.name
    db.session.delete(variable)
    db.session.flush()
    audit("settings.variable_deleted", actor, name=name)


def save_price(country: str, channel: str, price: str, currency: str, actor: User) -> SegmentPrice:
    country = country.strip().upper() or ANY_COUNTRY
    if country != ANY_COUNTRY and not phones.is_country(country):
        raise ServiceError("unknown_country", value=country[:10])
    if channel not in ("sms", "whatsapp"):
        raise ServiceError("unknown_channel", value=channel[:20])
    try:
        amount = Decimal(price.strip().replace(",", "."))
    except (InvalidOperation, AttributeError):
        raise ServiceError("invalid_price", value=str(price)[:20]) from None
    if not amount.is_finite() or amount < 0 or amount > 100:
        raise ServiceError("invalid_price", value=str(price)[:20])
    currency = (currency or "USD").strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise ServiceError("invalid_currency", value=currency[:10])
    row = db.session.get(SegmentPrice, (country, channel)) or SegmentPrice(country=country, channel=channel)
    row.price, row.currency = amount, currency
    db.session.add(row)
    db.session.flush()
    audit("settings.price_saved", actor, country=country, channel=channel, price=str(amount), currency=currency)
    return row


def delete_price(country: str, channel: str, actor: User) -> None:
    row = db.session.get(SegmentPrice, (country, channel))
    if row is not None:
        db.session.delete(row)
        db.session.flush()
        audit("settings.price_deleted", actor, country=country, channel=channel)


def add_domain(domain: str, actor: User) -> OfficialDomain:
    domain = domain.strip().lower()
    domain = re.sub(r"^https?://", "", domain).split("/")[0].removeprefix("www.")
    if not DOMAIN_RE.match(domain):
        raise ServiceError("invalid_domain", value=domain[:60])
    row = db.session.get(OfficialDomain, domain)
    if row is None:
        row = OfficialDomain(domain=domain)
        db.session.add(row)
        db.session.flush()
        audit("settings.domain_added", actor, domain=domain)
    return row


def remove_domain(domain: str, actor: User) -> None:
    row = db.session.get(OfficialDomain, domain)
    if row is not None:
        db.session.delete(row)
        db.session.flush()
        audit("settings.domain_removed", actor, domain=domain)
