"""Grids as a GeoJSON FeatureCollection (pure: text in, Grid dataclasses out, and back).

Each Feature has a Polygon or MultiPolygon geometry ([lon, lat], WGS-84) and the properties
``id``, ``community`` and ``name``; other properties are ignored. The centroid is computed
here. Errors name the file, the line where the bad feature starts, and the JSON path.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from cloud.registry.geo import polygons_centroid
from cloud.registry.model import Grid
from wire.yamlconf import ConfigError, ConfigIssue

_DECODER = json.JSONDecoder()


def read_grids_geojson(text: str, filename: str) -> list[tuple[int, Grid]]:
    """(line, Grid) pairs; ConfigError naming file, line and field for every bad feature."""
    text = text.removeprefix("\ufeff")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError([ConfigIssue(filename, err.lineno, "", f"JSON: {err.msg}")]) from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise ConfigError([ConfigIssue(filename, 1, "type", "not a FeatureCollection")])
    features = doc.get("features")
    if not isinstance(features, list):
        raise ConfigError([ConfigIssue(filename, 1, "features", "missing or not a list")])
    lines = _feature_lines(text)
    if len(lines) != len(features):  # e.g. a repeated "features" key: no lines, still checked
        lines = [1] * len(features)
    grids: list[tuple[int, Grid]] = []
    issues: list[ConfigIssue] = []
    seen: dict[str, int] = {}
    for i, (line, feature) in enumerate(zip(lines, features, strict=True)):
        try:
            grid = _grid(feature)
        except _FeatureError as err:
            issues.append(ConfigIssue(filename, line, f"features[{i}].{err.path}", err.message))
            continue
        if grid.id in seen:
            issues.append(
                ConfigIssue(
                    filename,
                    line,
                    f"features[{i}].properties.id",
                    f"{grid.id!r} already on line {seen[grid.id]}",
                )
            )
            continue
        seen[grid.id] = line
        grids.append((line, grid))
    if issues:
        raise ConfigError(issues)
    return grids


class _FeatureError(ValueError):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path, self.message = path, message


def _grid(feature: Any) -> Grid:
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise _FeatureError("type", "not a Feature")
    props = feature.get("properties")
    if not isinstance(props, dict):
        raise _FeatureError("properties", "missing")
    for key in ("id", "community"):
        if not isinstance(props.get(key), str) or not props[key]:
            raise _FeatureError(f"properties.{key}", "missing or not a non-empty string")
    geometry = feature.get("geometry")
    polygons = _polygons(geometry)
    centroid = polygons_centroid(polygons)
    if centroid is None:
        raise _FeatureError("geometry", "polygon has no area")
    return Grid(
        id=props["id"],
        community=props["community"],
        name=str(props.get("name") or props["id"]),
        geometry=json.dumps(geometry, separators=(",", ":")),
        centroid=centroid,
    )


def _polygons(geometry: Any) -> list[list[list[list[float]]]]:
    if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        raise _FeatureError("geometry.type", "not a Polygon or MultiPolygon")
    coords = geometry.get("coordinates")
    polygons = [coords] if geometry["type"] == "Polygon" else coords
    if not isinstance(polygons, list) or not polygons:
        raise _FeatureError("geometry.coordinates", "empty")
    for p, rings in enumerate(polygons):
        if not isinstance(rings, list) or not rings:
            raise _FeatureError(f"geometry.coordinates[{p}]", "no rings")
        for r, ring in enumerate(rings):
            _check_ring(ring, f"geometry.coordinates[{p}][{r}]")
    return polygons


def _check_ring(ring: Any, path: str) -> None:
    if not isinstance(ring, list) or len(ring) < 4:
        raise _FeatureError(path, "a ring needs at least 4 positions")
    for k, pos in enumerate(ring):
        ok = (
            isinstance(pos, list)
            and len(pos) >= 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in pos[:2])
        )
        if not ok or not (-180 <= pos[0] <= 180 and -90 <= pos[1] <= 90):
            raise _FeatureError(f"{path}[{k}]", f"{pos!r} is not a [lon, lat] position")
    if ring[0][:2] != ring[-1][:2]:
        raise _FeatureError(path, "ring is not closed (first position != last)")


def _feature_lines(text: str) -> list[int]:
    """The line where each element of the top-level "features" array starts."""
    pos = _skip(text, 0) + 1  # after the '{'
    while True:
        pos = _skip(text, pos)
        if text[pos] == "}":
            return []
        key, pos = _DECODER.raw_decode(text, pos)
        pos = _skip(text, _skip(text, pos) + 1)  # past the ':'
        if key == "features":
            return _item_lines(text, pos)
        _, pos = _DECODER.raw_decode(text, pos)
        pos = _skip(text, pos)
        pos += text[pos] == ","


def _item_lines(text: str, pos: int) -> list[int]:
    lines: list[int] = []
    line, counted = 1, 0
    pos += 1  # the '['
    while True:
        pos = _skip(text, pos)
        if text[pos] == "]":
            return lines
        line += text.count("\n", counted, pos)
        counted = pos
        lines.append(line)
        _, pos = _DECODER.raw_decode(text, pos)
        pos = _skip(text, pos)
        pos += text[pos] == ","


def _skip(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\n\r":
        pos += 1
    return pos


def write_grids_geojson(grids: Iterable[Grid]) -> str:
    """A FeatureCollection, one feature per line (so errors in it point at one line)."""
    features = [
        json.dumps(
            {
                "type": "Feature",
                "properties": {"id": g.id, "community": g.community, "name": g.name},
                "geometry": json.loads(g.geometry),
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )
        for g in grids
    ]
    return '{"type":"FeatureCollection","features":[\n' + ",\n".join(features) + "\n]}\n"
