"""Names as the call apps draw them on the tiles, made comparable: what :mod:`fer_agent.vision.names` reads and the
tracker matches participants by (``--names``).

Labels are noisy: the self view's "(Me)", "Host", an ellipsis where the app cut a long name, emoji and icons read as
letters. :func:`normalise` takes those off; :func:`name_key` is what two readings of one name share (case, spaces,
punctuation and accents aside), and :func:`same_name` also takes a name cut short by the app for the whole.
"""

from __future__ import annotations

import re
import unicodedata

# Trailing badges that apps add to a name, and the ellipsis of a cut name.
_BADGES = re.compile(r"[\s(\[]*(?:\(?(?:me|host|co-host|cohost|guest|you|presenter|organi[sz]er)\)?)$", re.IGNORECASE)
_ELLIPSIS = re.compile(r"\s*(?:\.{2,}|…)+\s*$")
# Names have at least two letters.
MIN_LETTERS = 2


def normalise(text: str) -> str:
    """A label as a name: Unicode NFKC, symbols and emoji (and the icons an engine reads as stray marks at the
    ends) taken off, the app's badges ("(Me)", "Host", ...) and a cut name's ellipsis taken off, spaces collapsed.
    An empty string when no name is left."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(char for char in text if unicodedata.category(char)[0] in "LNZ" or char in "()-.'&,_")
    text = " ".join(text.split())
    previous = None
    while previous != text:
        previous = text
        text = _ELLIPSIS.sub("", _BADGES.sub("", text)).strip(" -_,.&'")
    return text if sum(char.isalpha() for char in text) >= MIN_LETTERS else ""


def name_key(text: str) -> str:
    """What two readings of one name share: the normalised name's letters and digits, casefolded, without accents (an
    engine may drop or add spaces between words, or read "é" as "e")."""
    decomposed = unicodedata.normalize("NFKD", normalise(text).casefold())
    return unicodedata.normalize("NFC", "".join(char for char in decomposed if char.isalnum()))


def same_name(a: str, b: str) -> bool:
    """Two readings of one name: the same key, or one a cut-off start of the other (an app shortens a long name
    with an ellipsis to fit a small tile) of at least 4 letters."""
    first, second = sorted((name_key(a), name_key(b)), key=len)
    return bool(first) and (first == second or (len(first) >= 4 and second.startswith(first)))
