"""Checks before approval: everything that would make an officer regret a send, found all at once."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from ..core.i18n import country_name, language_name
from ..core.localtime import in_quiet_hours
from ..core.phones import COUNTRY_DEFAULT_TZ
from ..extensions import db
from ..messaging.segments import analyse, gsm_safe
from .models import Campaign, ContentVariable, OfficialDomain, Step, StepContent
from .planning import audience_count, group_routes, purpose_of, reachable_query, step_local_time
from .schemas import variables_in

MAX_SEGMENTS_WARNING = 3
URL_RE = re.compile(r"(?:https?://|www\.)[^\s<>\"']+", re.IGNORECASE)

MESSAGES = {
    "no_steps": _l("The campaign has no steps yet."),
    "no_audience": _l("Choose an audience (a saved segment)."),
    "empty_audience": _l("The audience is empty: nobody in the segment lives in the campaign's countries "
                         "and can receive messages."),
    "missing_content": _l("Step %(step)s has no content in %(language)s and no fallback covers it."),
    "missing_sms_text": _l("Step %(step)s has no SMS text in %(language)s."),
    "whatsapp_needs_template": _l("Step %(step)s: WhatsApp in %(language)s needs an approved template "
                                  "(ContentSid) for business-initiated messages, or turn on SMS fallback."),
    "sms_fallback_without_text": _l("Step %(step)s: SMS fallback is on but there is no SMS text in %(language)s."),
    "unreachable": _l("Step %(step)s cannot reach %(count)s people reading %(language)s: %(why)s"),
    "unknown_variable": _l("Step %(step)s (%(language)s) uses {%(name)s}, which is not defined."),
    "variable_without_value": _l("{%(name)s} (used in step %(step)s) has no value for %(country)s: "
                                 "ask an administrator to fill it in."),
    "quiet_hours_everyone": _l("Step %(step)s is due at %(time)s, inside the quiet hours (%(start)s–%(end)s) "
                               "of every recipient."),
    "quiet_hours_some": _l("Step %(step)s is due inside quiet hours for some recipients (%(zones)s); "
                           "they will get it at %(end)s their time."),
    "options_missing": _l("Step %(step)s is a %(kind)s without options in %(language)s."),
    "step_outside_dates": _l("Step %(step)s is dated %(date)s, outside the campaign's dates."),
    "step_in_past": _l("Step %(step)s is dated %(date)s, which has passed."),
    "too_many_segments": _l("Step %(step)s (%(language)s, SMS) takes %(segments)s segments: "
                            "every recipient costs %(segments)s times the price of one."),
    "ucs2_avoidable": _l("Step %(step)s (%(language)s, SMS): %(chars)s turn the whole message into UCS-2 "
                         "(%(segments)s segments instead of %(gsm_segments)s)."),
    "unofficial_link": _l("Step %(step)s (%(language)s) links to %(domain)s, which is not on the list "
                          "of official domains."),
    "no_price": _l("No price per segment is set for %(channel)s in %(country)s: the estimate leaves it out."),
}


#: Why people of the audience cannot be reached (the sendability decision's reasons), and what to do.
UNREACHABLE_WHY = {
    "no_whatsapp_template": _l("they have WhatsApp and no SMS consent, and a message we start on WhatsApp needs an "
                               "approved template. Add the template for this language, or narrow the audience."),
}


@dataclass
class Problem:
    severity: str  # "error" blocks approval; "warning" is shown, not blocking
    code: str
    params: dict[str, Any] = field(default_factory=dict)
    step_id: int | None = None
    language: str | None = None

    @property
    def message(self) -> str:
        params = dict(self.params)
        if "language" in params:
            params["language"] = language_name(params["language"], in_sentence=True)
        if "country" in params:
            params["country"] = country_name(params["country"])
        if "why" in params:
            params["why"] = str(UNREACHABLE_WHY.get(params["why"], params["why"]))
        return str(MESSAGES[self.code]) % params

    @property
    def blocking(self) -> bool:
        return self.severity == "error"


def check_campaign(campaign: Campaign) -> list[Problem]:
    problems: list[Problem] = []
    if not campaign.steps:
        problems.append(Problem("error", "no_steps"))
    if campaign.segment_id is None:
        problems.append(Problem("error", "no_audience"))
    elif audience_count(campaign) == 0:
        problems.append(Problem("error", "empty_audience"))
    variables = {v.name: v for v in db.session.scalars(sa.select(ContentVariable))}
    domains = [d.lower() for d in db.session.scalars(sa.select(OfficialDomain.domain))]
    zones = _audience_zones(campaign)
    missing_values: set[tuple[str, str]] = set()
    groups: dict[str, list] = {}
    for step in campaign.steps:
        problems.extend(_content_problems(campaign, step))
        if campaign.segment_id is not None:
            purpose = purpose_of(step)
            if purpose not in groups:
                groups[purpose] = db.session.execute(reachable_query(campaign, purpose)).all()
            problems.extend(_reach_problems(campaign, step, groups[purpose]))
        problems.extend(_timing_problems(campaign, step, zones))
        for c in step.contents:
            for name in sorted(set(_all_variables(c))):
                var = variables.get(name)
                if var is None:
                    problems.append(Problem("error", "unknown_variable", {"step": step.number, "language": c.language,
                                                                          "name": name}, step.id, c.language))
                    continue
                for country in campaign.countries:
                    if (name, country) not in missing_values and not var.value_for(country):
                        missing_values.add((name, country))
                        problems.append(Problem("error", "variable_without_value",
                                                {"name": name, "step": step.number, "country": country}, step.id))
            problems.extend(_text_warnings(campaign, step, c, domains))
    return sorted(problems, key=lambda p: (p.severity != "error", p.step_id or 0))


def blocking_problems(campaign: Campaign) -> list[Problem]:
    return [p for p in check_campaign(campaign) if p.blocking]


def _all_variables(c: StepContent) -> list[str]:
    texts = [c.sms_text, c.whatsapp_text, c.thanks, *(c.template_variables or {}).values()]
    for o in c.options or []:
        texts += [o.get("label"), o.get("reply")]
    return [v for t in texts for v in variables_in(t)]


def _covered(campaign: Campaign, step: Step, language: str, has) -> bool:
    return any(has(step.content(code)) for code in [language, *campaign.fallbacks.get(language, [])])


def _content_problems(campaign: Campaign, step: Step) -> list[Problem]:
    out: list[Problem] = []
    n = step.number

    def any_text(c):
        return c is not None and bool((c.sms_text or "").strip() or (c.whatsapp_text or "").strip())

    for lang in campaign.languages:
        if not _covered(campaign, step, lang, any_text):
            out.append(Problem("error", "missing_content", {"step": n, "language": lang}, step.id, lang))
            continue
        c = step.content(lang)
        if c is None:
            continue  # a fallback language covers it; that language is checked on its own
        if "sms" in campaign.channels and not (c.sms_text or "").strip():
            out.append(Problem("error", "missing_sms_text", {"step": n, "language": lang}, step.id, lang))
        if "whatsapp" in campaign.channels and not c.template_sid:
            if not campaign.sms_fallback:
                out.append(Problem("error", "whatsapp_needs_template", {"step": n, "language": lang}, step.id, lang))
            elif not (c.sms_text or "").strip() and "sms" not in campaign.channels:
                out.append(Problem("error", "sms_fallback_without_text", {"step": n, "language": lang},
                                   step.id, lang))
        if step.kind in ("poll", "menu") and not c.options:
            out.append(Problem("error", "options_missing", {"step": n, "language": lang, "kind": step.kind},
                               step.id, lang))
    return out


def _reach_problems(campaign: Campaign, step: Step, groups: list) -> list[Problem]:
    """People of the audience who consented to a channel of the campaign but whom this step cannot
    reach, by the dispatcher's own decision (the WhatsApp window taken as closed): blocking, so that "no
    blocking problems" means the dispatcher will send. A language already missing its template (no SMS
    fallback) is reported once, by the content check."""
    unreached: dict[tuple[str, str], int] = {}
    for gr in group_routes(campaign, step, groups):  # no content: checked above
        if isinstance(gr.route, str) and gr.route != "no_consent":  # no consent: in no plan; the estimate counts them
            unreached[(gr.language, gr.route)] = unreached.get((gr.language, gr.route), 0) + gr.count
    out = []
    for (language, reason), count in sorted(unreached.items()):
        if reason == "no_whatsapp_template" and not campaign.sms_fallback:
            continue  # "whatsapp_needs_template" says it for the whole language
        out.append(Problem("error", "unreachable", {"step": step.number, "count": count, "language": language,
                                                    "why": reason}, step.id, language))
    return out


def _audience_zones(campaign: Campaign) -> list[str]:
    """The audience's zones; without an audience yet, the target countries' usual zones."""
    zones = {row[2] for row in db.session.execute(reachable_query(campaign))} if campaign.segment_id else set()
    return sorted(zones or {COUNTRY_DEFAULT_TZ.get(c, "UTC") for c in campaign.countries})


def _timing_problems(campaign: Campaign, step: Step, zones: list[str]) -> list[Problem]:
    out: list[Problem] = []
    n = step.number
    fmt = {"start": campaign.quiet_start.strftime("%H:%M"), "end": campaign.quiet_end.strftime("%H:%M")}
    if step.timezone:
        day = step.at_date or date.today()
        inside = [z for z in zones if in_quiet_hours(
            step_local_time(step, day, z).time(), campaign.quiet_start, campaign.quiet_end)]
        if zones and len(inside) == len(zones):
            out.append(Problem("error", "quiet_hours_everyone",
                               {"step": n, "time": step.local_time.strftime("%H:%M"), **fmt}, step.id))
        elif inside:
            out.append(Problem("warning", "quiet_hours_some", {"step": n, "zones": ", ".join(inside), **fmt},
                               step.id))
    elif in_quiet_hours(step.local_time, campaign.quiet_start, campaign.quiet_end):
        out.append(Problem("error", "quiet_hours_everyone",
                           {"step": n, "time": step.local_time.strftime("%H:%M"), **fmt}, step.id))
    if step.timing_type == "at" and step.at_date:
        if (campaign.start_date and step.at_date < campaign.start_date) or (
                campaign.end_date and step.at_date > campaign.end_date):
            out.append(Problem("warning", "step_outside_dates", {"step": n, "date": step.at_date.isoformat()},
                               step.id))
        elif step.at_date < date.today():
            out.append(Problem("warning", "step_in_past", {"step": n, "date": step.at_date.isoformat()}, step.id))
    return out


def _text_warnings(campaign: Campaign, step: Step, c: StepContent, domains: list[str]) -> list[Problem]:
    out: list[Problem] = []
    n = step.number
    if "sms" in campaign.channels or campaign.sms_fallback:
        info = analyse(c.sms_text or "")
        if info.segments > MAX_SEGMENTS_WARNING:
            out.append(Problem("warning", "too_many_segments", {"step": n, "language": c.language,
                                                                 "segments": info.segments}, step.id, c.language))
        if info.encoding == "UCS-2":
            typographic = analyse(gsm_safe(c.sms_text))
            accentless = analyse(gsm_safe(c.sms_text, remove_accents=True))
            # Quotes, dashes and dots are always worth fixing; removing accents only when it saves money.
            better = typographic if typographic.encoding == "GSM-7" else accentless
            worth = typographic.encoding == "GSM-7" or (
                accentless.encoding == "GSM-7" and accentless.segments < info.segments and len(info.non_gsm) <= 4)
            if worth:
                out.append(Problem("warning", "ucs2_avoidable", {
                    "step": n, "language": c.language, "chars": " ".join(info.non_gsm),
                    "segments": info.segments, "gsm_segments": better.segments}, step.id, c.language))
    for text in (c.sms_text, c.whatsapp_text, c.media_url, *[o.get("reply") for o in c.options or []]):
        for url in URL_RE.findall(text or ""):
            host = (urlsplit(url if "://" in url else "https://" + url).hostname or "").lower().rstrip(".")
            if host and not any(host == d or host.endswith("." + d) for d in domains):
                out.append(Problem("warning", "unofficial_link", {"step": n, "language": c.language,
                                                                   "domain": host}, step.id, c.language))
    return out
