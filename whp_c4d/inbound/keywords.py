"""Understanding what people write: normalisation, keyword matching with one typo, poll answers and a
language guess. Pure functions over plain data (no database): the parser must never raise, whatever
arrives (hypothesis checks it).

Matching ignores case, accents, punctuation and surrounding spaces, and tolerates one typo (a letter
added, missing, changed, or two swapped) in words of five letters or more. A keyword counts only when
it is the whole message: "stop" inside a sentence is feedback, flagged for review.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

FUZZY_MIN = 5  # words this long tolerate one typo
_NOT_WORD = re.compile(r"[^\w]+")

# The shipped keywords are data: migration 0007 inserts them (administrators edit them afterwards).

# Confirming an erasure: "yes" in the five languages (or the erase word again).
CONFIRM_WORDS = frozenset({"si", "yes", "oui", "wi", "ja", "confirmar", "confirmo", "confirm", "confirmer",
                           "konfime", "bevestigen", "ok"})

# Number words 1-10 in the programme's languages, so "dos", "deux", "de", "twee" all mean 2.
NUMBER_WORDS = {
    "es": ("uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve", "diez"),
    "en": ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"),
    "fr": ("un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix"),
    "ht": ("en", "de", "twa", "kat", "senk", "sis", "sèt", "uit", "nèf", "dis"),
    "nl": ("een", "twee", "drie", "vier", "vijf", "zes", "zeven", "acht", "negen", "tien"),
}

# A few very common words per language, for guessing the language of a first message.
_COMMON = {
    "es": "hola gracias que de la el en por para no si quiero informacion como donde necesito ayuda buenos dias "
          "tengo mi es un una con los las trabajo papeles",
    "en": "hello hi thanks thank you the is what how where i need help want to please my work information",
    "fr": "bonjour merci je le la les est ce que comment ou besoin aide vous voudrais travail avec pour",
    "ht": "bonjou mesi mwen ou nou li yo ki sa pa kijan kote bezwen ede vle travay pou ak nan map m",
    "nl": "hallo dank je ik de het een is wat hoe waar nodig hulp wil werk alstublieft goedemorgen graag",
}


def normalise(text: str | None) -> str:
    """Lower case, accents removed, punctuation and symbols as spaces, spaces collapsed."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", str(text)).casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_NOT_WORD.sub(" ", plain).replace("_", " ").split())


def one_typo_apart(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` differ by at most one insertion, deletion, substitution or swap of
    two neighbours (Damerau-Levenshtein distance <= 1). Linear time."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diff = [i for i in range(la) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
    if la > lb:
        a, b, la, lb = b, a, lb, la
    i = 0
    while i < la and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1:]


def close_enough(said: str, word: str) -> bool:
    """Exact, or one typo away when the keyword has at least five letters (not counting spaces)."""
    if said == word:
        return True
    return len(word.replace(" ", "")) >= FUZZY_MIN and one_typo_apart(said, word)


@dataclass(frozen=True)
class KeywordEntry:
    word: str  # normalised
    action: str
    language: str
    value: str | None = None


@dataclass(frozen=True)
class KeywordMatch:
    action: str
    language: str
    value: str | None
    word: str
    exact: bool


def match_keyword(text: str | None, entries: Sequence[KeywordEntry]) -> KeywordMatch | None:
    """The keyword the whole message is, exactly or with one typo; None when there is none or when a
    typo makes it ambiguous between two different actions."""
    said = normalise(text)
    if not said or len(said) > 60:
        return None
    for e in entries:
        if e.word == said:
            return KeywordMatch(e.action, e.language, e.value, e.word, True)
    near = [e for e in entries if close_enough(said, e.word)]
    if not near or len({(e.action, e.value) for e in near}) > 1:
        return None
    e = near[0]
    return KeywordMatch(e.action, e.language, e.value, e.word, False)


def mentions(text: str | None, entries: Iterable[KeywordEntry], action: str) -> bool:
    """Whether a keyword of ``action`` appears, exactly, inside the message (a word, or a run of words):
    with one typo allowed, everyday words would count ("para" is one letter from "parar")."""
    said = normalise(text)
    if not said:
        return False
    words = said.split()
    for e in entries:
        if e.action != action:
            continue
        size = len(e.word.split())
        for i in range(len(words) - size + 1):
            if " ".join(words[i:i + size]) == e.word:  # exact: inside a sentence a typo means nothing
                return True
    return False


def is_confirmation(text: str | None, erase_words: Iterable[str] = ()) -> bool:
    said = normalise(text)
    return said in CONFIRM_WORDS or said in set(erase_words)


@dataclass(frozen=True)
class Choice:
    number: int
    words: tuple[str, ...]  # accepted words and labels, in every language of the campaign


def parse_choice(text: str | None, choices: Sequence[Choice]) -> int | None:
    """The chosen option's number: a digit ("2", "2.", "opción 2" is not accepted: ambiguous), a number
    word in any of the five languages ("dos", "deux", "de", "twee"), or an accepted word or label
    (one typo allowed from five letters). None when it is not one clear choice."""
    said = normalise(text)
    if not said or len(said) > 80:
        return None
    numbers = {c.number for c in choices}
    if said.isdigit():
        n = int(said) if len(said) < 4 else -1
        return n if n in numbers else None
    found: set[int] = set()
    for words in NUMBER_WORDS.values():
        for i, w in enumerate(words, start=1):
            if said == normalise(w) and i in numbers:
                found.add(i)
    for c in choices:
        for w in c.words:
            if close_enough(said, normalise(w)):
                found.add(c.number)
    return found.pop() if len(found) == 1 else None


def guess_language(text: str | None, country_default: str, allowed: Iterable[str],
                   entries: Iterable[KeywordEntry] = ()) -> str:
    """The language a first message is most likely written in: common words and keywords of each
    language, with the country's main language winning ties."""
    allowed = list(allowed)
    words = normalise(text).split()
    if not words:
        return country_default
    vocab: dict[str, set[str]] = {lang: set(normalise(_COMMON.get(lang, "")).split()) for lang in allowed}
    for e in entries:
        if e.language in vocab and " " not in e.word:
            vocab[e.language].add(e.word)
    scores = {lang: sum(1 for w in words if w in vocab[lang]) for lang in allowed}
    best = max(scores.values(), default=0)
    if best == 0 or scores.get(country_default) == best:
        return country_default
    return next(lang for lang in allowed if scores[lang] == best)
