"""Small-cell suppression: counts of people under 5 are shown as "<5" everywhere.

In core so that every domain showing counts can use it (the dashboard in reports/, a campaign's
progress in campaigns/); reports/ is a leaf that nothing imports."""

SMALL_CELL = 5


def cell(n: int | None) -> str:
    n = n or 0
    return "0" if n == 0 else ("<5" if n < SMALL_CELL else str(n))
