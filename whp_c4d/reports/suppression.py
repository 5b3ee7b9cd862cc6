"""Small-cell suppression: counts of people under 5 are shown as "<5" everywhere (see core.smallcells)."""

from ..core.smallcells import SMALL_CELL, cell

__all__ = ["SMALL_CELL", "cell"]
