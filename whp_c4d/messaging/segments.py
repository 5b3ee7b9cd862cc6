"""SMS segments: GSM-7 or UCS-2, how many segments a text costs, and rewriting text to stay in GSM-7."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# GSM 03.38 default alphabet; 0x1B (escape) is left out because it only introduces extension characters.
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Sent as escape + character, so each costs two septets.
GSM_EXTENSION = frozenset("\f^{}\\[~]|€")
GSM_ALPHABET = GSM_BASIC | GSM_EXTENSION

SINGLE_LIMIT = {GSM7: 160, UCS2: 70}
# Concatenated messages lose room to the user data header (6 bytes).
MULTI_LIMIT = {GSM7: 153, UCS2: 67}

_ZWJ = "\u200d"

# Invisible characters that carry no meaning in an SMS and would otherwise force UCS-2 on their own.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u2060\ufeff\u00ad"))
# Joiners and direction marks do carry meaning between characters of other scripts and inside emoji
# sequences, so they are only dropped next to GSM text (see _drop_stray_joiners).
_JOINERS = frozenset("\u200d\u200c\u200e\u200f")

_TYPOGRAPHIC = {
    **dict.fromkeys("‘’‚‛′‹›`´", "'"),
    **dict.fromkeys("“”„‟″«»", '"'),
    **dict.fromkeys("‐‑‒–—―−•", "-"),
    "…": "...",
    "\u2028": "\n",
    "\u2029": "\n",
    "\t": " ",  # tabs come with text pasted from spreadsheets; GSM-7 has none
}
_TYPOGRAPHIC_TABLE = str.maketrans(_TYPOGRAPHIC)

# Letters that have no canonical decomposition, so stripping combining marks cannot find their GSM letter.
_LETTER_FALLBACKS = {"œ": "oe", "Œ": "OE", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ı": "i"}


@dataclass(frozen=True)
class SegmentInfo:
    encoding: str  # GSM7 or UCS2
    characters: int  # code points, as len() counts them
    units: int  # septets (extension characters count 2) or UTF-16 code units (an emoji counts 2)
    segments: int  # 0 for the empty text
    per_segment: int  # the limit that applied: single (160/70) or concatenated (153/67)
    non_gsm: tuple[str, ...]  # distinct characters that force UCS-2, in order of first appearance
    rewritable: tuple[str, ...]  # those of non_gsm that gsm_safe() (without remove_accents) turns into GSM-7


def is_gsm7(text: str) -> bool:
    return all(ch in GSM_ALPHABET for ch in text)


def segments(text: str) -> int:
    return len(_split(text))


def analyse(text: str) -> SegmentInfo:
    non_gsm = tuple(dict.fromkeys(ch for ch in text if ch not in GSM_ALPHABET))
    encoding = UCS2 if non_gsm else GSM7
    atoms = list(_atoms(text, encoding))
    units = sum(weight for _, weight in atoms)
    parts = _pack(text, encoding, atoms)
    per_segment = MULTI_LIMIT[encoding] if len(parts) > 1 else SINGLE_LIMIT[encoding]
    # Judged one character at a time, so a joiner kept inside an emoji sequence still counts as
    # rewritable; the emoji itself is not, so the text as a whole is never promised GSM-7 wrongly.
    rewritable = tuple(ch for ch in non_gsm if (fixed := gsm_safe(ch)) != ch and is_gsm7(fixed))
    return SegmentInfo(encoding, len(text), units, len(parts), per_segment, non_gsm, rewritable)


def gsm_safe(text: str, *, remove_accents: bool = False) -> str:
    text = text.translate(_INVISIBLE)
    # Decomposed accents (pasted from macOS or PDFs) become the precomposed letters GSM-7 has.
    text = unicodedata.normalize("NFC", text)
    text = "".join(" " if ch != " " and unicodedata.category(ch) == "Zs" else ch for ch in text)
    text = text.translate(_TYPOGRAPHIC_TABLE)
    if remove_accents:
        text = "".join(_nearest_gsm(c) for c in _mark_clusters(text))
    return _drop_stray_joiners(text)


def _split(text: str) -> list[str]:
    """The text cut into the segments it is sent as."""
    encoding = GSM7 if is_gsm7(text) else UCS2
    return _pack(text, encoding, list(_atoms(text, encoding)))


def _pack(text: str, encoding: str, atoms: list[tuple[int, int]]) -> list[str]:
    if not text:
        return []
    if sum(weight for _, weight in atoms) <= SINGLE_LIMIT[encoding]:
        return [text]
    capacity = MULTI_LIMIT[encoding]
    parts: list[str] = []
    start = end = fill = 0
    for length, weight in atoms:
        # Atoms are never cut, so an escape pair, a surrogate pair or a grapheme cluster stays whole.
        if fill + weight > capacity:
            parts.append(text[start:end])
            start, fill = end, 0
        end += length
        fill += weight
    parts.append(text[start:end])
    return parts


def _atoms(text: str, encoding: str) -> Iterator[tuple[int, int]]:
    """(code points, units) of each piece that must not be split across segments."""
    if encoding == GSM7:
        for ch in text:
            yield 1, 2 if ch in GSM_EXTENSION else 1
        return
    capacity = MULTI_LIMIT[UCS2]
    for cluster in _grapheme_clusters(text):
        units = _utf16_units(cluster)
        if units <= capacity:
            yield len(cluster), units
        else:
            # A cluster longer than a segment (stacked combining marks) has to be cut somewhere.
            for ch in cluster:
                yield 1, _utf16_units(ch)


def _utf16_units(text: str) -> int:
    # Counted rather than encoded so lone surrogates cannot raise.
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def _is_regional_indicator(ch: str) -> bool:
    return "\U0001f1e6" <= ch <= "\U0001f1ff"


def _extends(prev: str, ch: str, cluster_len: int) -> bool:
    """Whether ch continues the cluster ending in prev (a simplified UAX #29)."""
    if unicodedata.category(ch)[0] == "M":  # combining marks, variation selectors, keycaps
        return True
    if ch == _ZWJ or prev == _ZWJ:
        return True
    if "\U0001f3fb" <= ch <= "\U0001f3ff":  # skin tone modifiers
        return True
    if "\U000e0020" <= ch <= "\U000e007f":  # tag sequences (subdivision flags)
        return True
    if prev == "\r" and ch == "\n":
        return True
    return cluster_len == 1 and _is_regional_indicator(prev) and _is_regional_indicator(ch)


def _grapheme_clusters(text: str) -> Iterator[str]:
    start = 0
    for i in range(1, len(text)):
        if not _extends(text[i - 1], text[i], i - start):
            yield text[start:i]
            start = i
    if text:
        yield text[start:]


def _mark_clusters(text: str) -> Iterator[str]:
    """A character with the combining marks after it: the unit an accent belongs to."""
    start = 0
    for i in range(1, len(text)):
        if unicodedata.category(text[i])[0] != "M":
            yield text[start:i]
            start = i
    if text:
        yield text[start:]


def _nearest_gsm(cluster: str) -> str:
    if is_gsm7(cluster):
        return cluster
    if cluster in _LETTER_FALLBACKS:
        return _LETTER_FALLBACKS[cluster]
    chars = list(unicodedata.normalize("NFD", cluster))
    # Drop diacritics one at a time from the outside in, so ǘ becomes ü (in GSM-7) rather than u.
    # Marks of class 0 (variation selectors, the keycap) are part of an emoji, not an accent.
    while len(chars) > 1 and unicodedata.combining(chars[-1]):
        chars.pop()
        candidate = unicodedata.normalize("NFC", "".join(chars))
        if is_gsm7(candidate):
            return candidate
    return cluster


def _drop_stray_joiners(text: str) -> str:
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] not in _JOINERS:
            out.append(text[i])
            i += 1
            continue
        j = i
        while j < n and text[j] in _JOINERS:
            j += 1
        before = text[i - 1] if i else None
        after = text[j] if j < n else None
        # Removing a joiner in front of a combining mark would move the mark onto another character.
        next_is_mark = after is not None and unicodedata.category(after)[0] == "M"
        beside_gsm = before is None or after is None or before in GSM_ALPHABET or after in GSM_ALPHABET
        if next_is_mark or not beside_gsm:
            out.append(text[i:j])
        i = j
    return "".join(out)
