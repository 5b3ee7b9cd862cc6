"""Scheduled jobs: thin wrappers over services, taking the app and nothing else."""

from __future__ import annotations

import logging

from ..extensions import db

log = logging.getLogger(__name__)


def sweep(app) -> None:
    from ..campaigns.sweep import sweep as run

    with app.app_context():
        result = run()
        if result.expanded or result.missed:
            log.info("sweep: %s campaigns, %s enrolled, %s rows queued, %s occurrences missed", result.campaigns,
                     result.enrolled, sum(result.expanded.values()), len(result.missed))
        db.session.remove()


def purge(app) -> None:
    from ..auth.services import audit
    from ..core import retention

    with app.app_context():
        removed = retention.purge()
        audit("privacy.purged", None, removed=removed)
        db.session.commit()
        db.session.remove()


def inbound(app) -> None:
    """Finish inbound messages a crash left stored but not understood (the webhook normally does it)."""
    from ..inbound.services import process_pending

    with app.app_context():
        done = process_pending(app.config)
        if done:
            log.info("inbound: %s stored messages processed late", done)
        db.session.remove()


def feedback(app) -> None:
    """File feedback messages the queue does not hold yet (the inbound service normally files them)."""
    from ..feedback.services import collect_inbound

    with app.app_context():
        done = collect_inbound()
        db.session.commit()
        if done:
            log.info("feedback: %s messages filed late", done)
        db.session.remove()
