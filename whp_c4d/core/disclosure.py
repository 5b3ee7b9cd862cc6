"""Disclosure control that holds across queries: which counts a report may show.

Hiding each count of 1 to 4 on its own is not enough: 23 sent in a campaign and 20 in Guatemala give
Honduras away (3) whatever Honduras's own cell says. So every count a report can show is a cell of one
*cube*: the records broken down by every dimension a report filters or breaks down by, with every
marginal ("all countries", "all languages", …). A filtered view is one cell; a table's rows are its
neighbours along one dimension; its total is their marginal.

A hidden count is safe when no sum and difference of the counts shown gives it back. That holds when
there is a *witness*: a change of the records that changes the hidden count and leaves every count shown
as it was (then the counts shown cannot tell the two apart). The simplest witnesses are hypercubes: add
one to a record, take one from its neighbour along a dimension (another country), and so on along
several dimensions, so that every marginal over one of those dimensions stays the same. So:

1. every count of 1 to 4 is hidden (*primary*);
2. for each one no earlier witness covers, the cheapest witness is chosen (the records under it, the
   neighbours to alternate with, one dimension at a time, so that the counts it would change are few and
   small), and every published count it changes is hidden too (*complementary*).

Each hidden small count then has a witness whose changed counts are all hidden: no filter combination,
page, export or API answer, nor any arithmetic between them, recovers it
(``tests/test_disclosure_attack.py`` checks this with exact linear algebra, on random cubes and through
the API). The result depends on the records only, never on the view asked for, and every hidden cell is
shown the same way, so that a reader cannot tell a small count from one hidden beside it.

Nested dimensions (a step within its campaign) are only broken down under their parent's value. Counts
of people are distinct people in every cell, so a marginal is not always the sum of its parts (one person
in two countries); the witnesses are chosen on the counts shown all the same."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import chain, product

from .smallcells import SMALL_CELL


class _All:
    """The marginal over a dimension ("all countries")."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "*"

    def __reduce__(self):
        return (_All, ())


ALL = _All()


@dataclass(frozen=True)
class Layout:
    """The dimensions of a cube, and which of them are nested in another (a step in its campaign)."""

    dims: tuple[str, ...]
    nested: dict[str, str] = field(default_factory=dict)  # child dimension -> its parent dimension

    def units(self) -> list[tuple[int, ...]]:
        """Dimension positions taken together when marginals are formed: a parent with its children."""
        index = {d: i for i, d in enumerate(self.dims)}
        children = defaultdict(list)
        for child, parent in self.nested.items():
            children[index[parent]].append(index[child])
        return [(i, *children[i]) for i, d in enumerate(self.dims) if d not in self.nested]


def _ancestors(values: tuple) -> list[tuple]:
    """A unit's value and its marginals: (campaign, step) -> itself, (campaign, ALL), (ALL, ALL)."""
    out = [values]
    if len(values) > 1:
        out.append((values[0],) + (ALL,) * (len(values) - 1))
    out.append((ALL,) * len(values))
    return list(dict.fromkeys(out))


class Cube:
    """Counts per cell for every measure, and which (cell, measure) pairs are hidden. ``published``
    says which cells a report can show (default: all); the others are neither checked nor hidden."""

    #: How many records under a small count, and how many neighbours per dimension, a witness is sought among.
    CANDIDATES = 3
    NEIGHBOURS = 4

    def __init__(self, layout: Layout, counts: dict[tuple, dict[str, int]] | None = None,
                 people: dict[tuple, dict[str, set]] | None = None, threshold: int = SMALL_CELL,
                 published: Callable[[tuple, str], bool] | None = None):
        self.layout = layout
        self.threshold = threshold
        self.published = published or (lambda cell, measure: True)
        self.units = layout.units()
        flat = [i for unit in self.units for i in unit]  # unit order -> dimension order
        position = [flat.index(i) for i in range(len(layout.dims))]
        self._reorder = (lambda t: (t[position[0]],)) if len(position) == 1 else \
            (lambda t, get=__import__("operator").itemgetter(*position): get(t))
        self._projections: dict[tuple, list[tuple]] = {}
        self._marginal_sets: dict[tuple, frozenset[tuple]] = {}
        self._close: dict[tuple, list[tuple]] = {}
        self.values: dict[tuple, dict[str, int]] = {}
        self.base: set[tuple] = set()
        self._build(counts or {}, people or {})
        self.hidden: set[tuple[tuple, str]] = set()
        self._order = {cell: n for n, cell in enumerate(sorted(self.values, key=repr))}
        for m in sorted({m for v in self.values.values() for m in v}):
            self._suppress(m)

    # --- building -------------------------------------------------------------------------------------

    def _project(self, cell: tuple) -> list[tuple]:
        found = self._projections.get(cell)
        if found is None:
            found = self._projections[cell] = [tuple(cell[i] for i in unit) for unit in self.units]
        return found

    def _assemble(self, parts: Iterable[tuple]) -> tuple:
        return self._reorder(tuple(chain.from_iterable(parts)))

    def _marginals(self, key: tuple) -> frozenset[tuple]:
        found = self._marginal_sets.get(key)
        if found is None:
            found = self._marginal_sets[key] = frozenset(
                self._assemble(combo) for combo in product(*[_ancestors(p) for p in self._project(key)]))
        return found

    def _build(self, counts: dict[tuple, dict[str, int]], people: dict[tuple, dict[str, set]]) -> None:
        sums: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        sets: dict[tuple, dict[str, set]] = defaultdict(lambda: defaultdict(set))
        self._under: dict[tuple, list[tuple]] = defaultdict(list)  # a cell -> the records it sums
        for key in set(counts) | set(people):
            for cell in self._marginals(key):
                self._under[cell].append(key)
        for key, measures in counts.items():
            self.base.add(key)
            for cell in self._marginals(key):
                target = sums[cell]
                for m, n in measures.items():
                    target[m] += n
        for key, measures in people.items():
            self.base.add(key)
            for cell in self._marginals(key):
                target = sets[cell]
                for m, who in measures.items():
                    target[m] |= who
        for cell in set(sums) | set(sets):
            values = dict(sums.get(cell, {}))
            values.update({m: len(who) for m, who in sets.get(cell, {}).items()})
            self.values[cell] = values

    # --- suppressing ------------------------------------------------------------------------------------

    def value(self, cell: tuple, measure: str) -> int:
        return self.values.get(cell, {}).get(measure, 0)

    def _suppress(self, m: str) -> None:
        t, val = self.threshold, self.value
        base = sorted((b for b in self.base if val(b, m) > 0), key=self._order.__getitem__)
        # Records that differ from a record in one unit only: its neighbours along that unit.
        rest: list[dict[tuple, list[tuple]]] = [defaultdict(list) for _ in self.units]
        for b in base:
            parts = self._project(b)
            for k in range(len(self.units)):
                rest[k][tuple(parts[:k] + parts[k + 1:])].append(parts[k])
        small = sorted((c for c, v in self.values.items() if 0 < v.get(m, 0) < t and self.published(c, m)),
                       key=lambda c: (val(c, m), self._order[c]))
        covered: set[tuple] = set()
        for x in small:
            if x in covered:
                continue
            affected = self._witness(x, m, rest)
            covered.update(affected)
            self.hidden.update((c, m) for c in affected if self.published(c, m))

    def _witness(self, x: tuple, m: str, rest) -> set[tuple]:
        """The cells changed by the cheapest witness found for ``x``: the sum of the counts newly hidden,
        over a few records under ``x`` and, unit by unit, the best neighbour to alternate with."""
        xs = self._project(x)
        under = [b for b in self._under.get(x, ()) if self.value(b, m) > 0]
        under.sort(key=lambda b: (self.value(b, m), self._order[b]))
        best: tuple[float, set[tuple]] | None = None
        for b in under[:self.CANDIDATES]:
            bs = self._project(b)
            choice: list[tuple | None] = [None] * len(self.units)  # the neighbour per unit, or None
            cost, cells = float("inf"), set()  # alternating nowhere (hiding every marginal of b): the fallback
            for k in range(len(self.units)):
                others = tuple(bs[:k] + bs[k + 1:])
                near = [s for s in rest[k].get(others, ()) if s != bs[k] and xs[k] not in _ancestors(s)]
                near.sort(key=lambda s: self.value(self._assemble(bs[:k] + [s] + bs[k + 1:]), m))
                for s in near[:self.NEIGHBOURS]:
                    trial = choice[:k] + [s] + choice[k + 1:]
                    c, found = self._cost(bs, trial, m, min(cost, best[0] if best else cost))
                    if c < cost:
                        cost, cells, choice = c, found, trial
            plain = self._cost(bs, [None] * len(self.units), m, cost)  # dropped as soon as it costs more
            if plain[0] < cost:
                cost, cells = plain
            if best is None or cost < best[0]:
                best = (cost, cells)
            # Or a pair: one more here, one fewer in a record outside ``x`` that differs in several units
            # (sparse data, where no hypercube has all its corners). It changes the cells holding one of them.
            mine = self._marginals(b)
            outside = [o for o in self._nearby(b) if self.value(o, m) > 0 and x not in self._marginals(o)]
            outside.sort(key=lambda o: (sum(p != q for p, q in zip(bs, self._project(o), strict=True)),
                                        self.value(o, m), self._order[o]))
            for o in outside[:self.NEIGHBOURS]:
                cells = mine ^ self._marginals(o)
                cost = sum(self._price(c, m) for c in cells if (c, m) not in self.hidden and self.published(c, m))
                if cost < best[0]:
                    best = (cost, cells)
        return best[1] if best else {x}

    def _nearby(self, b: tuple) -> list[tuple]:
        """Records that differ from ``b`` in one or two units (the candidates for a pair witness)."""
        found = self._close.get(b)
        if found is not None:
            return found
        if not hasattr(self, "_by_pair"):
            self._by_pair: dict[tuple, list[tuple]] = defaultdict(list)
            n = len(self.units)
            for r in self.base:
                ps = self._project(r)
                for k1 in range(n):
                    for k2 in range(k1 + 1, n):
                        self._by_pair[(k1, k2, tuple(p for i, p in enumerate(ps) if i not in (k1, k2)))].append(r)
        ps, n, near = self._project(b), len(self.units), set()
        for k1 in range(n):
            for k2 in range(k1 + 1, n):
                near.update(self._by_pair.get((k1, k2, tuple(p for i, p in enumerate(ps) if i not in (k1, k2))), ()))
        near.discard(b)
        found = self._close[b] = sorted(near, key=self._order.__getitem__)
        return found

    def _price(self, cell: tuple, m: str) -> float:
        """What hiding a count costs readers: more for a bigger count, and more the more it sums up (a
        campaign's total matters more than one language in one week)."""
        return self.value(cell, m) * 4 ** sum(v is ALL for v in cell)

    def _cost(self, bs: list[tuple], choice: list[tuple | None], m: str,
              bound: float = float("inf")) -> tuple[float, set[tuple]]:
        """The cells a witness changes (per unit: the record's marginals, or those that tell the record
        from its neighbour) and what hiding them costs; infinite when one of them holds no count (a 0 is
        shown, so it cannot hide anything) or when it costs more than ``bound`` (a better one is known)."""
        per_unit = []
        for b, s in zip(bs, choice, strict=True):
            if s is None:
                per_unit.append(_ancestors(b))
            else:
                mine, theirs = set(_ancestors(b)), set(_ancestors(s))
                per_unit.append(sorted(mine ^ theirs, key=repr))
        cells, cost = set(), 0.0
        values, hidden, published, reorder = self.values, self.hidden, self.published, self._reorder
        for combo in product(*per_unit):
            cell = reorder(tuple(chain.from_iterable(combo)))
            n = values.get(cell, {}).get(m, 0)
            if n == 0:
                if published(cell, m):
                    return float("inf"), set()
                continue
            cells.add(cell)
            if (cell, m) not in hidden and published(cell, m):
                cost += n * 4 ** sum(v is ALL for v in cell)
                if cost >= bound:
                    return float("inf"), set()
        return cost, cells

    # --- reading ----------------------------------------------------------------------------------------

    def cell(self, **values) -> tuple:
        """The cell for these dimension values (the others: all)."""
        unknown = set(values) - set(self.layout.dims)
        if unknown:
            raise KeyError(f"not a dimension: {sorted(unknown)}")
        return tuple(values.get(d, ALL) for d in self.layout.dims)

    def is_hidden(self, cell: tuple, measure: str) -> bool:
        return (cell, measure) in self.hidden

    def shown(self, cell: tuple, measure: str) -> int | str:
        """The count as a report shows it: the number, or "<5" when hidden (whatever it is)."""
        return "<5" if (cell, measure) in self.hidden else self.value(cell, measure)
