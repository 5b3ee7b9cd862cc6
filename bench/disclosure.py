"""How long the disclosure cube takes to build (core/disclosure.py), by size of the programme.

A report page builds it once per state of the data (then it is cached in-process), so this is the first
page after a change. Records are synthetic: every campaign › step × country × language × channel × week
with a count drawn from a skewed distribution (many small cells, as in a real programme), seven
measures, a failure reason on some.

    .venv/bin/python bench/disclosure.py            # the sizes below
    .venv/bin/python bench/disclosure.py 4 3 6 3 2 8  # campaigns steps countries languages channels weeks
"""

from __future__ import annotations

import random
import sys
import time
from itertools import product

from whp_c4d.core.disclosure import Cube
from whp_c4d.reports.guard import EngagementGuard

MEASURES = ("targeted", "sent", "delivered", "read", "failed")


def records(campaigns: int, steps: int, countries: int, languages: int, channels: int, weeks: int, seed: int = 7):
    rnd = random.Random(seed)
    out = {}
    for c, s, k, lang, ch, w in product(range(campaigns), range(steps), range(countries), range(languages),
                                        range(channels), range(weeks)):
        n = int(rnd.paretovariate(1.2)) - 1  # mostly 0 to 3, sometimes hundreds
        if n <= 0:
            continue
        reason = rnd.choice([None, None, "undelivered:30003"])
        out[(c, f"{c}.{s}", f"C{k}", f"l{lang}", f"ch{ch}", f"2026-W{w:02d}", reason)] = {
            "targeted": n, "sent": n, "delivered": max(n - 1, 0), "read": n // 2, "failed": 1 if reason else 0}
    return out


def main(argv: list[str]) -> None:
    sizes = [tuple(int(a) for a in argv)] if argv else [(1, 3, 4, 3, 2, 4), (3, 4, 6, 3, 2, 8), (6, 5, 8, 4, 2, 12)]
    for size in sizes:
        counts = records(*size)
        started = time.perf_counter()
        cube = Cube(EngagementGuard.layout, counts=counts, published=EngagementGuard.published)
        took = time.perf_counter() - started
        hidden = len(cube.hidden)
        print(f"campaigns/steps/countries/languages/channels/weeks {size}: {len(counts)} records, "
              f"{len(cube.values)} cells, {hidden} hidden (cell, measure) pairs, built in {took:.2f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
