"""Small-cell suppression: counts of people under 5 are shown as "<5" everywhere.

In core so that every domain showing counts can use it (the dashboard in reports/, a campaign's
progress in campaigns/); reports/ is a leaf that nothing imports."""

SMALL_CELL = 5


def cell(n: int | None) -> str:
    n = n or 0
    return "0" if n == 0 else ("<5" if n < SMALL_CELL else str(n))


def hides_small_cells(role: str | None) -> bool:
    """Who sees "<5": everyone who does not run campaigns (evaluators, partners). Officers and
    administrators operate campaigns and see exact counts on operational pages."""
    from .permissions import can

    return not can(role, "campaigns.launch")
