"""How deep a JSON text nests, checked before any recursive parser sees it.

Python's ``json`` recurses once per level: a body of 100k brackets, far below any size cap,
raises RecursionError inside whichever parser meets it (ours or the registry's importer), and
that surfaces as a 500. Real documents are shallow — GeoJSON needs about 7 levels, a push
subscription 2 — so anything deeper than ``MAX_JSON_DEPTH`` is refused up front.
"""

from __future__ import annotations

import re

MAX_JSON_DEPTH = 32
# A JSON string (escapes included); brackets inside one do not nest anything.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_AS_PARENS = str.maketrans("[{]}", "(())")


def too_deep(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether *text* (JSON, possibly malformed) opens more than *limit* levels at once.

    Linear-time string operations, no recursion: each round drops the innermost pairs, one
    level per round; what cannot pair up (``)))((``) still opens levels a parser would enter.
    """
    s = _NOT_BRACKET.sub("", _STRING.sub("", text)).translate(_AS_PARENS)
    for rounds in range(limit + 1):
        shorter = s.replace("()", "")
        if shorter == s:
            return rounds + s.count("(") > limit
        s = shorter
    return True
