"""Names as the call apps draw them on the tiles, made comparable: what :mod:`fer_agent.vision.names` reads and the
tracker matches participants by (``--names``).

Labels are noisy: the self view's "(Me)", "Host", an ellipsis where the app cut a long name, emoji and icons read as
letters. :func:`normalise` takes those off; :func:`name_key` is what two readings of one name share (case, spaces,
punctuation and accents aside), and :func:`same_name` also takes a name cut short by the app for the whole.
"""

from __future__ import annotations

import re
import unicodedata

# The badges apps put after a name, in parentheses; and the ellipsis of a name cut to fit its tile (after NFKC, which
# makes "…" three full stops). A cut name keeps one "…" at its end, so that it is known for a start of a name.
_BADGE = re.compile(r"\s*\((?:me|you|host|co-?host|guest|external|presenter|organi[sz]er)\)$", re.IGNORECASE)
_ELLIPSIS = re.compile(r"\s*\.{2,}$")
CUT = "…"
# Names have at least two letters; a cut name is taken for the start of a longer one from this many letters and digits.
MIN_LETTERS = 2
MIN_CUT = 4


def normalise(text: str) -> str:
    """A label as a name: Unicode NFKC, symbols and emoji (and the icons an engine reads as stray marks) taken off,
    the app's badges in parentheses ("(Me)", "(Host)", "(Guest)", ...) taken off, a cut name's ellipsis made one
    "…", spaces collapsed. An empty string when no name is left."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(char for char in text if unicodedata.category(char)[0] in "LNZ" or char in "()-.'&,_")
    text = " ".join(text.split())
    cut = False
    previous = None
    while previous != text:
        previous = text
        text = _BADGE.sub("", text)
        if _ELLIPSIS.search(text):
            text, cut = _ELLIPSIS.sub("", text), True
        text = text.strip(" -_,&'")
    if sum(char.isalpha() for char in text) < MIN_LETTERS:
        return ""
    return text + CUT if cut else text


def name_key(text: str) -> str:
    """What two readings of one name share: the normalised name's letters and digits, casefolded, without accents (an
    engine may drop or add spaces between words, or read "é" as "e")."""
    decomposed = unicodedata.normalize("NFKD", normalise(text).casefold())
    return unicodedata.normalize("NFC", "".join(char for char in decomposed if char.isalnum()))


def same_name(a: str, b: str) -> bool:
    """Two readings of one name: the same key, or one a name the app cut to fit a small tile (it ends with "…") whose
    key of at least :data:`MIN_CUT` starts the other's."""
    shorter, longer = sorted((normalise(a), normalise(b)), key=lambda name: len(name_key(name)))
    first, second = name_key(shorter), name_key(longer)
    if not first:
        return False
    return first == second or (shorter.endswith(CUT) and len(first) >= MIN_CUT and second.startswith(first))
