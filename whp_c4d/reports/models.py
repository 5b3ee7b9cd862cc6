"""The one table reports keep: each campaign's outbox counted at the grain the reports use (a rollup)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..core.models import UTCDateTime
from ..extensions import db


class ReportRollup(db.Model):
    """A campaign's outbox counted per day, step, country, language, channel, status and failure reason
    (a few thousand rows for a million messages), and the people who replied or opted out per breakdown
    of its unfiltered report. Counts only: no contact, no number, no text.

    ``fingerprint`` says what the outbox and the inbound messages looked like when it was computed
    (latest change of the campaign's messages, latest inbound message): a rollup whose fingerprint still
    matches is exact; one that no longer matches is recomputed once it is older than the refresh period
    (``reports.rollup``). Campaign is a plain id, like the outbox's."""

    __tablename__ = "report_rollup"

    campaign_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fingerprint: Mapped[str] = mapped_column(sa.String(80))
    outbound: Mapped[list[Any]] = mapped_column(sa.JSON, default=list)
    people: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
