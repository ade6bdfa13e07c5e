"""The JSON depth check that keeps a recursive parser from meeting 100k brackets."""

from __future__ import annotations

import json

import pytest

from cloud.web.nesting import MAX_JSON_DEPTH, too_deep

GEOJSON = json.dumps(
    {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"id": "g1", "note": "[[[[{{{{"},
                "geometry": {"type": "MultiPolygon", "coordinates": [[[[118.1, 24.4]] * 4]]},
            }
        ],
    }
)


@pytest.mark.parametrize(
    ("text", "deep"),
    [
        (GEOJSON, False),
        ("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH, False),
        ("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), True),
        ('{"a":' * 100 + "1" + "}" * 100, True),
        ("[" * 100_000, True),  # never closed: a parser still enters every level
        ("[" * 100_000 + "}", True),  # mismatched closer
        ("]]]" + "[" * 10 + "}}}", False),  # malformed but shallow: the parser says why
        ('"' + "[" * 100 + '"', False),  # brackets inside a string nest nothing
        ('"\\"' + "[" * 100 + '"', False),  # ...even after an escaped quote
        ("", False),
    ],
)
def test_too_deep(text: str, deep: bool) -> None:
    assert too_deep(text) is deep
