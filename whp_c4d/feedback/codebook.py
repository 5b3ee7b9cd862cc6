"""The feedback codebook: topics, the keyword rules that suggest codes, and the suggestions themselves.

Types are the IFRC community feedback framework's, fixed in code (``models.TYPES``); topics and rules are
data administrators edit. Rules only suggest: what a person coded is never overwritten."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from ..auth.models import User
from ..auth.services import audit
from ..core.errors import ServiceError
from ..extensions import db
from ..inbound.keywords import normalise
from .models import TYPES, CodingRule, FeedbackItem, FeedbackTopic

#: Types that are sensitive by their nature (IFRC: reports of a concern or incident).
SENSITIVE_TYPES = frozenset({"concern"})


# --- suggestions -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Suggestion:
    type: str | None
    topic_id: int | None
    sensitive: bool
    words: tuple[str, ...]  # what matched, for the coder to see why


def active_rules() -> list[tuple[tuple[str, ...], str | None, str | None, int | None, bool]]:
    rows = db.session.execute(
        sa.select(CodingRule.words, CodingRule.language, CodingRule.type, CodingRule.topic_id, CodingRule.sensitive)
        .join(FeedbackTopic, FeedbackTopic.id == CodingRule.topic_id, isouter=True)
        .where(CodingRule.active.is_(True), sa.or_(CodingRule.topic_id.is_(None), FeedbackTopic.active.is_(True)))
        .order_by(CodingRule.id)).all()
    return [(tuple(w.strip() for w in words.split(",") if w.strip()), language, kind, topic_id, sensitive)
            for words, language, kind, topic_id, sensitive in rows]


def _has(plain: str, word: str) -> bool:
    """Whole words or phrases; a single word also in its plural (visa → visas, papel → papeles)."""
    if f" {word} " in plain:
        return True
    return " " not in word and (f" {word}s " in plain or f" {word}es " in plain)


def suggest(text: str, language: str | None = None, rules: Sequence | None = None) -> Suggestion:
    """The codes the rules suggest for ``text``: the topic with the most matching words (first rule on a
    tie), the type of the first matching type rule, else "question" when the text asks one."""
    plain = f" {normalise(text)} "
    rules = active_rules() if rules is None else rules
    topic_hits: dict[int, int] = {}
    kind: str | None = None
    sensitive = False
    matched: list[str] = []
    for words, rule_language, rule_type, topic_id, rule_sensitive in rules:
        if rule_language and language and rule_language != language:
            continue
        hits = [w for w in words if _has(plain, w)]
        if not hits:
            continue
        matched.extend(hits)
        if topic_id is not None:
            topic_hits[topic_id] = topic_hits.get(topic_id, 0) + len(hits)
        if rule_type and kind is None:
            kind = rule_type
        sensitive = sensitive or rule_sensitive
    if kind is None and ("?" in (text or "") or "¿" in (text or "")):
        kind = "question"
    topic = max(topic_hits, key=lambda t: topic_hits[t]) if topic_hits else None  # dicts keep rule order
    return Suggestion(kind, topic, sensitive or kind in SENSITIVE_TYPES, tuple(dict.fromkeys(matched)))


def apply_suggestion(item: FeedbackItem, rules: Sequence | None = None) -> None:
    s = suggest(item.text, item.language, rules)
    item.suggested_type, item.suggested_topic_id, item.suggested_sensitive = s.type, s.topic_id, s.sensitive
    # A possible concern is protected from the moment it arrives, before anyone codes it.
    if s.sensitive and item.coded_at is None:
        item.sensitive = True


# --- the codebook ------------------------------------------------------------------------------------

def topics(active_only: bool = True) -> list[FeedbackTopic]:
    q = sa.select(FeedbackTopic).order_by(FeedbackTopic.position, FeedbackTopic.code)
    if active_only:
        q = q.where(FeedbackTopic.active.is_(True))
    return list(db.session.scalars(q))


_TOPIC_CODE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


def save_topic(topic: FeedbackTopic | None, *, code: str, labels: dict[str, str], position: int | None,
               active: bool, actor: User) -> FeedbackTopic:
    code = (code or "").strip().lower()
    if topic is None:
        if not _TOPIC_CODE.match(code):
            raise ServiceError("invalid_code", value=code)
        if db.session.scalar(sa.select(FeedbackTopic.id).where(FeedbackTopic.code == code)):
            raise ServiceError("topic_code_taken", value=code)
        topic = FeedbackTopic(code=code)
    if not labels:
        raise ServiceError("label_required")
    topic.labels = labels
    if position is not None:
        topic.position = position
    topic.active = active
    db.session.add(topic)
    db.session.flush()
    audit("codebook.topic_saved", actor, target_type="feedback_topic", target_id=topic.id, active=active)
    return topic


def set_rule_active(rule: CodingRule, active: bool, actor: User) -> None:
    rule.active = active
    db.session.flush()
    audit("codebook.rule_saved", actor, target_type="coding_rule", target_id=rule.id, active=active)


def delete_rule(rule: CodingRule, actor: User) -> None:
    if rule.built_in:
        raise ServiceError("rule_built_in")
    rule_id = rule.id
    db.session.delete(rule)
    db.session.flush()
    audit("codebook.rule_deleted", actor, target_type="coding_rule", target_id=rule_id)


def save_rule(rule: CodingRule | None, *, words: str, language: str | None, type: str | None,
              topic_id: int | None, sensitive: bool, actor: User) -> CodingRule:
    if rule is not None and rule.built_in:
        raise ServiceError("rule_built_in")
    cleaned = [normalise(w) for w in (words or "").split(",")]
    cleaned = [w for w in dict.fromkeys(cleaned) if w]
    if not cleaned:
        raise ServiceError("rule_words_required")
    if not type and not topic_id and not sensitive:
        raise ServiceError("rule_needs_effect")
    if type and type not in TYPES:
        raise ServiceError("feedback_unknown_type", value=type)
    if topic_id is not None and db.session.get(FeedbackTopic, topic_id) is None:
        raise ServiceError("feedback_unknown_topic", value=topic_id)
    joined = ", ".join(cleaned)
    if len(joined) > 300:
        raise ServiceError("value_too_long", max=300)
    rule = rule or CodingRule(built_in=False, active=True)
    rule.words, rule.language, rule.type, rule.topic_id, rule.sensitive = joined, language or None, type or None, \
        topic_id, sensitive
    db.session.add(rule)
    db.session.flush()
    audit("codebook.rule_saved", actor, target_type="coding_rule", target_id=rule.id)
    return rule


def resuggest_uncoded(limit: int | None = None) -> int:
    """Run the rules again over items nobody has coded (after an administrator changed the rules)."""
    rules = active_rules()
    q = sa.select(FeedbackItem).where(FeedbackItem.coded_at.is_(None)).order_by(FeedbackItem.id)
    if limit:
        q = q.limit(limit)
    n = 0
    for item in db.session.scalars(q):
        apply_suggestion(item, rules)
        n += 1
    db.session.flush()
    return n
