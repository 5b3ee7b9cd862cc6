"""A poll's results: per choice, its label in the campaign's base language and how many people chose it,
overall and by language, country and channel, plus the answers we did not understand (kept as
feedback). One grouped query; counts stay exact here and ``show`` is what a viewer may see.

Who operates campaigns (officers, admins) sees exact counts; everyone else (evaluators) sees every
count of 1 to 4 as "<5" (``core.smallcells.cell``), on the page and in the API, as in every report."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask_babel import gettext as _

from ..campaigns.models import Step
from ..core.disclosure import ALL, Cube, Layout
from ..extensions import db
from .models import PollResponse

DIMENSIONS = ("language", "country", "channel")


@dataclass
class ChoiceCount:
    """One row of the results: a choice (``number`` None: answers not understood)."""

    number: int | None
    label: str
    count: int = 0
    by: dict[str, dict[str, int]] = field(default_factory=lambda: {d: {} for d in DIMENSIONS})


@dataclass
class PollResults:
    step: Step
    question: str  # the step's text in the base language
    base_language: str | None
    choices: list[ChoiceCount]
    not_understood: ChoiceCount
    values: dict[str, list[str]]  # every language, country and channel seen, sorted
    occurrences: list[str]
    occurrence: str | None = None  # None: every occurrence together
    suppress_small_cells: bool = False
    cube: Cube | None = None  # when suppressed: which counts are hidden, over every sending

    @property
    def answered(self) -> int:
        """People who gave a valid answer."""
        return sum(c.count for c in self.choices)

    @property
    def total(self) -> int:
        return self.answered + self.not_understood.count

    def count(self, which, dim: str | None = None, value=None) -> int:
        """People for a choice (a ``ChoiceCount``), ``"answered"`` (valid answers) or ``"total"``, overall
        or for one language, country or channel."""
        if which == "total":
            return self.row_total(dim, value) if dim else self.total
        if which == "answered":
            return sum(c.by[dim].get(value, 0) for c in self.choices) if dim else self.answered
        return which.by[dim].get(value, 0) if dim else which.count

    def at(self, which, dim: str | None = None, value=None) -> int | str:
        """That count as this viewer may see it: exact, or "<5" when hidden (a count of 1 to 4, or one
        hidden with it so that it cannot be worked out from the others and the totals)."""
        n = self.count(which, dim, value)
        if self.cube is None:
            return n
        if which == "total":
            understood, choice = ALL, ALL
        elif which == "answered":
            understood, choice = True, ALL
        else:
            understood, choice = which.number is not None, which.number
        cell = self.cube.cell(occurrence=self.occurrence or ALL, understood=understood, choice=choice,
                              **({dim: value} if dim else {}))
        return "<5" if self.cube.is_hidden(cell, "people") else n

    def share(self, c: ChoiceCount) -> float | None:
        """Share of the valid answers (0 to 1); None when the count or the total is hidden, so that a
        percentage never gives a small count away."""
        if not self.answered or self.at(c) == "<5" or self.at("answered") == "<5":
            return None
        return c.count / self.answered

    def row_total(self, dimension: str, value: str) -> int:
        """Everybody who answered, understood or not, with this language, country or channel."""
        return sum(c.by[dimension].get(value, 0) for c in [*self.choices, self.not_understood])

    def as_json(self) -> dict:
        at = self.at

        def row(c: ChoiceCount) -> dict:
            return {"count": at(c), **{f"by_{d}": {v: at(c, d, v) for v in self.values[d]} for d in DIMENSIONS}}

        return {
            "step_id": self.step.id, "step_key": self.step.key, "campaign_id": self.step.campaign_id,
            "question": self.question, "base_language": self.base_language,
            "occurrence": self.occurrence, "occurrences": self.occurrences,
            "small_cells_suppressed": self.suppress_small_cells,
            "total": at("total"), "answered": at("answered"),
            "choices": [{"number": c.number, "label": c.label, **row(c)} for c in self.choices],
            "not_understood": row(self.not_understood),
        }


#: Every count of a poll is a cell of this cube: which sending, understood or not › which choice, and
#: the breakdowns.
LAYOUT = Layout(("occurrence", "understood", "choice", *DIMENSIONS), nested={"choice": "understood"})


def _labels(step: Step) -> tuple[dict[int, str], str, str | None]:
    """Option labels and the question, from the base language's content (else any language's)."""
    base = step.campaign.base_language if step.campaign else None
    contents = sorted(step.contents, key=lambda c: (c.language != base, c.language))
    labels: dict[int, str] = {}
    for content in contents:
        for opt in content.options or []:
            n = opt.get("number")
            if isinstance(n, int) and not labels.get(n):
                labels[n] = (opt.get("label") or "").strip()
    question = contents[0].sms_text if contents else ""
    return labels, question, base


def poll_results(step_id: int | Step, *, occurrence: str | None = None,
                 suppress_small_cells: bool = False) -> PollResults | None:
    """The results of a poll step (None when there is no such poll). ``occurrence`` limits them to one
    sending of a recurring poll."""
    step = step_id if isinstance(step_id, Step) else db.session.get(Step, step_id)
    if step is None or step.kind != "poll":
        return None
    r = PollResponse
    rows = db.session.execute(
        sa.select(r.occurrence, r.choice, r.language, r.country, r.channel, sa.func.count())
        .where(r.step_id == step.id).group_by(r.occurrence, r.choice, r.language, r.country, r.channel)).all()
    occurrences = sorted({row[0] for row in rows})
    labels, question, base = _labels(step)
    numbers = set(labels) | {row[1] for row in rows if row[1] is not None}
    choices = {n: ChoiceCount(n, labels.get(n) or _("Option %(number)s", number=n)) for n in sorted(numbers)}
    not_understood = ChoiceCount(None, _("Not understood"))
    values: dict[str, set[str]] = defaultdict(set)
    for occ, choice, language, country, channel, n in rows:
        if occurrence and occ != occurrence:
            continue
        target = not_understood if choice is None else choices[choice]
        target.count += n
        for dim, value in zip(DIMENSIONS, (language, country, channel), strict=True):
            target.by[dim][value] = target.by[dim].get(value, 0) + n
            values[dim].add(value)
    cube = None
    if suppress_small_cells:  # every sending together, so that one sending cannot be subtracted from all
        cube = Cube(LAYOUT, counts={(occ, choice is not None, choice, language, country, channel): {"people": n}
                                    for occ, choice, language, country, channel, n in rows})
    return PollResults(step=step, question=question, base_language=base, choices=list(choices.values()),
                       not_understood=not_understood, values={d: sorted(values[d]) for d in DIMENSIONS},
                       occurrences=occurrences, occurrence=occurrence, suppress_small_cells=suppress_small_cells,
                       cube=cube)
