"""SMS segment calculator: the guide's check vectors, splitting rules, gsm_safe and their properties."""

from __future__ import annotations

import math
import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from whp_c4d.messaging import segments as seg
from whp_c4d.messaging.segments import SegmentInfo, analyse, gsm_safe, is_gsm7, segments

BASIC = sorted(seg.GSM_BASIC)
EXTENSION = sorted(seg.GSM_EXTENSION)
EMOJI = ["😜", "👍🏽", "👨\u200d👩\u200d👧", "🇬🇹", "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
         "1\ufe0f\u20e3", "❤\ufe0f"]
# Characters gsm_safe and the splitter treat specially, so hypothesis meets them far more often than
# it would by drawing from all of Unicode.
TRICKY = [
    "‘", "’", "“", "”", "«", "»", "–", "—", "−", "…", "•", "\u00a0", "\u202f", "\u2009", "\u200b",
    "\u200c", "\u200d", "\u200e", "\ufeff", "\u00ad", "\u0301", "\u0302", "\u0308", "\u0327", "\ufe0f",
    "\U0001f3fd", "\U0001f1ec", "\U0001f1f9", "á", "í", "ó", "ú", "ç", "â", "ê", "ë", "ï", "œ", "ł",
    "é", "ñ", "Ç", "ü", "😜", "\u212b", "\t",
]
gsm_text = st.text(alphabet=st.sampled_from(BASIC + EXTENSION), max_size=400)
any_char = st.one_of(st.characters(), st.sampled_from(TRICKY + BASIC + EXTENSION + EMOJI))
any_text = st.lists(any_char, max_size=300).map("".join)
realistic_text = st.lists(
    st.sampled_from([c for c in TRICKY if c != "…"] + ["Œ"] + BASIC + EXTENSION + EMOJI), max_size=300
).map("".join)


@pytest.mark.parametrize(
    ("text", "encoding", "count"),
    [
        ("1" * 160, "GSM-7", 1),
        ("1" * 161, "GSM-7", 2),
        ("1" * 307, "GSM-7", 3),
        ("{" + "1" * 158, "GSM-7", 1),
        ("{" + "1" * 159, "GSM-7", 2),
        ("á" * 70, "UCS-2", 1),
        ("á" * 71, "UCS-2", 2),
        ("😜" + "1" * 68, "UCS-2", 1),
        ("😜" + "1" * 69, "UCS-2", 2),
        ("😜" + "1" * 133, "UCS-2", 3),
        ("1" * 145 + "{" * 15, "GSM-7", 2),
    ],
)
def test_guide_check_vectors(text, encoding, count):
    info = analyse(text)
    assert (info.encoding, info.segments) == (encoding, count)
    assert segments(text) == count
    assert is_gsm7(text) == (encoding == "GSM-7")


def test_gsm_alphabet_is_the_full_03_38_table():
    assert len(seg.GSM_BASIC) == 127  # 128 positions minus the escape
    assert set("^{}\\[~]|€\f") == seg.GSM_EXTENSION
    assert is_gsm7("éÉèùìòÇØøÅåÄÖÑÜäöñüà¿¡ΔΦΓΛΩΠΨΣΘΞÆæß¤§@£$¥_\n\r")
    for ch in "áíóúÁÍÓÚçâêîôûëï`\t":
        assert not is_gsm7(ch), ch


def test_empty_text():
    assert analyse("") == SegmentInfo("GSM-7", 0, 0, 0, 160, (), ())
    assert segments("") == 0


def test_info_fields_for_a_multi_segment_gsm_text():
    info = analyse("1" * 145 + "{" * 15)
    assert info == SegmentInfo("GSM-7", 160, 175, 2, 153, (), ())


def test_spanish_accents_force_ucs2_and_are_named():
    info = analyse("Información útil")
    assert info.encoding == "UCS-2"
    assert info.non_gsm == ("ó", "ú")
    assert info.rewritable == ()  # only accent removal helps, and analyse assumes the plain rewrite
    assert analyse("Informacion util").encoding == "GSM-7"
    assert gsm_safe("Información útil", remove_accents=True) == "Informacion util"


def test_non_gsm_lists_distinct_characters_in_order_of_first_appearance():
    assert analyse("ú—ó—úá").non_gsm == ("ú", "—", "ó", "á")


def test_emoji_counts_two_units_and_characters_count_code_points():
    info = analyse("Hola 😜")
    assert (info.characters, info.units, info.encoding) == (6, 7, "UCS-2")


def test_extension_pair_is_never_split():
    text = "1" * 152 + "{" + "1" * 10
    parts = seg._split(text)
    assert parts == ["1" * 152, "{" + "1" * 10]
    assert analyse(text).units == 164


def test_surrogate_pair_is_never_split():
    parts = seg._split("1" * 66 + "😜" + "1" * 10)
    assert parts == ["1" * 66, "😜" + "1" * 10]


@pytest.mark.parametrize("cluster", ["👨\u200d👩\u200d👧", "👍🏽", "🇬🇹", "e\u0301", "1\ufe0f\u20e3"])
def test_grapheme_cluster_is_never_split(cluster):
    text = "á" * 66 + cluster + "á" * 10
    parts = seg._split(text)
    assert parts[0] == "á" * 66
    assert parts[1].startswith(cluster)


def test_flags_pair_regional_indicators_two_by_two():
    clusters = list(seg._grapheme_clusters("🇬🇹🇭🇳🇸"))
    assert clusters == ["🇬🇹", "🇭🇳", "🇸"]


def test_a_cluster_longer_than_a_segment_is_cut_between_code_points():
    text = "e" + "\u0301" * 200
    parts = seg._split(text)
    assert "".join(parts) == text
    assert [seg._utf16_units(p) for p in parts] == [67, 67, 67]


def test_gsm_safe_rewrites_typography():
    assert gsm_safe("Ça va — “oui”…") == 'Ça va - "oui"...'
    assert is_gsm7(gsm_safe("Ça va — “oui”…"))
    assert gsm_safe("‘a’ ‚b‛ 5′ 6″ „c‟ «d» e–f―g−h • i") == "'a' 'b' 5' 6\" \"c\" \"d\" e-f-g-h - i"
    assert gsm_safe("a\u00a0b\u202fc\u2009d") == "a b c d"
    assert gsm_safe("a\u200bb\ufeffc\u200dd\u00ade") == "abcde"


def test_gsm_safe_keeps_what_it_cannot_map():
    assert gsm_safe("Información 😜 日本") == "Información 😜 日本"


def test_gsm_safe_keeps_joiners_inside_emoji_sequences():
    family = "👨\u200d👩\u200d👧"
    assert gsm_safe(f"Hola {family}!") == f"Hola {family}!"
    assert gsm_safe("hola\u200d") == "hola"


def test_gsm_safe_composes_decomposed_accents():
    assert gsm_safe("cafe\u0301") == "café"
    assert is_gsm7(gsm_safe("cafe\u0301"))


def test_remove_accents_maps_to_the_closest_gsm_letter():
    assert gsm_safe("áíóúÁÍÓÚ ç âêîôû ëï", remove_accents=True) == "aiouAIOU c aeiou ei"
    # Letters GSM-7 has are kept, accent and all.
    assert gsm_safe("é É è ù ì ò ñ ü à Ç Ä Ö", remove_accents=True) == "é É è ù ì ò ñ ü à Ç Ä Ö"
    assert gsm_safe("ǘ", remove_accents=True) == "ü"  # the nearest GSM letter, not the bare u
    assert gsm_safe("œuvre Łódź", remove_accents=True) == "oeuvre Lodz"
    assert gsm_safe("cafe\u0301 a\u0301", remove_accents=True) == "café a"
    assert gsm_safe("1\ufe0f\u20e3 日本", remove_accents=True) == "1\ufe0f\u20e3 日本"


def test_rewritable_lists_only_what_the_plain_rewrite_fixes():
    info = analyse("“Ça” — á 😜")
    assert info.non_gsm == ("“", "”", "—", "á", "😜")
    assert info.rewritable == ("“", "”", "—")


@settings(max_examples=300, deadline=None)
@given(any_text, any_char)
def test_appending_a_character_never_reduces_segments(text, ch):
    assert segments(text + ch) >= segments(text)


@settings(max_examples=300, deadline=None)
@given(any_text, any_text)
@example("1" * 160, "á")
@example("{" * 80, "á")
@example("🇬", "🇹")
def test_appending_text_never_reduces_segments(text, more):
    assert segments(text + more) >= segments(text)


@settings(max_examples=300, deadline=None)
@given(gsm_text)
def test_gsm_text_is_always_gsm7(text):
    info = analyse(text)
    assert info.encoding == "GSM-7"
    assert info.non_gsm == () and info.rewritable == ()
    assert info.units == len(text) + sum(ch in seg.GSM_EXTENSION for ch in text)


@settings(max_examples=300, deadline=None)
@given(st.one_of(any_text, gsm_text))
def test_units_and_segments_agree(text):
    info = analyse(text)
    assert info.characters == len(text)
    assert (info.segments == 0) == (text == "")
    single = seg.SINGLE_LIMIT[info.encoding]
    if text:
        assert (info.segments == 1) == (info.units <= single)
    assert info.per_segment == (single if info.segments <= 1 else seg.MULTI_LIMIT[info.encoding])
    assert info.segments >= math.ceil(info.units / info.per_segment)
    if info.encoding == "GSM-7":
        # Only an escape pair can leave a septet unused.
        assert info.segments <= max(1, math.ceil(info.units / 152))
    parts = seg._split(text)
    assert "".join(parts) == text and len(parts) == info.segments
    if info.segments > 1:
        for part in parts:
            assert sum(w for _, w in seg._atoms(part, info.encoding)) <= info.per_segment
        if info.encoding == "UCS-2":
            # Segments end on a grapheme cluster boundary, except inside a cluster too long for any segment.
            allowed, position = {0}, 0
            for cluster in seg._grapheme_clusters(text):
                if seg._utf16_units(cluster) > info.per_segment:
                    allowed.update(range(position, position + len(cluster)))
                position += len(cluster)
                allowed.add(position)
            cuts = [sum(map(len, parts[:i])) for i in range(1, len(parts))]
            assert set(cuts) <= allowed


@settings(max_examples=300, deadline=None)
@given(any_text)
def test_non_gsm_and_rewritable_are_consistent(text):
    info = analyse(text)
    assert set(info.non_gsm) == {ch for ch in text if not is_gsm7(ch)}
    assert len(set(info.non_gsm)) == len(info.non_gsm)
    assert set(info.rewritable) <= set(info.non_gsm)
    if info.non_gsm and set(info.rewritable) == set(info.non_gsm):
        assert is_gsm7(gsm_safe(text))


@settings(max_examples=500, deadline=None)
@given(any_text, st.booleans())
@example("a\u200b\u0301", False)
@example("’\u200d’", False)
@example("a\u200d\u200d😀", True)
@example("á\u0301", True)
def test_gsm_safe_is_idempotent(text, remove_accents):
    once = gsm_safe(text, remove_accents=remove_accents)
    assert gsm_safe(once, remove_accents=remove_accents) == once


@settings(max_examples=300, deadline=None)
@given(any_text)
@example("a\u200b\u0301")
def test_gsm_safe_never_touches_gsm_text_and_never_brings_in_new_non_gsm_characters(text):
    gsm_only = "".join(ch for ch in text if is_gsm7(ch))
    assert gsm_safe(gsm_only) == gsm_only
    assert gsm_safe(gsm_only, remove_accents=True) == gsm_only
    # A non-GSM character in the result is one of the input's, or composed from the input's (NFC).
    source = set(unicodedata.normalize("NFD", text))
    for remove_accents in (False, True):
        for ch in gsm_safe(text, remove_accents=remove_accents):
            if not is_gsm7(ch):
                assert set(unicodedata.normalize("NFD", ch)) <= source


def test_gsm_safe_can_cost_more_segments_because_of_the_ellipsis_or_oe():
    # One "…" is one UCS-2 unit but three GSM-7 septets, so the rewrite is not always cheaper.
    text = "…" * 70
    assert segments(text) == 1
    assert segments(gsm_safe(text)) == 2
    # œ becomes two letters; next to an emoji the text stays UCS-2 and simply grows.
    text = "œ😜" * 23
    assert segments(text) == 1
    assert segments(gsm_safe(text, remove_accents=True)) == 2


@settings(max_examples=300, deadline=None)
@given(realistic_text, st.booleans())
@example("{" * 69 + "’", False)
@example("a\u200d😜" * 20, False)
def test_gsm_safe_never_costs_more_segments_otherwise(text, remove_accents):
    # Only "…" and œ/Œ turn one character into several. Arbitrary Unicode is left out on purpose:
    # NFC expands a few composition exclusions (U+0344, U+0F73, U+FB2A) into two code points.
    text = text.replace("œ", "").replace("Œ", "")
    assert segments(gsm_safe(text, remove_accents=remove_accents)) <= segments(text)


def test_gsm_safe_turns_tabs_from_spreadsheets_into_spaces():
    from whp_c4d.messaging.segments import analyse, gsm_safe

    assert analyse("Hola\tmundo").encoding == "UCS-2"
    assert gsm_safe("Hola\tmundo") == "Hola mundo"
