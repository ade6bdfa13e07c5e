"""Small spherical geometry: haversine distance, polygon centroid, point in polygon."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from cloud.registry.model import Point

EARTH_RADIUS_M = 6_371_008.8

Ring = Sequence[Sequence[float]]  # GeoJSON positions: [lon, lat]


def haversine_m(a_lat: float, a_lon: float, b_lat: float, b_lon: float) -> float:
    """Great-circle distance in metres between two points given in degrees."""
    p1, p2 = math.radians(a_lat), math.radians(b_lat)
    dp, dl = p2 - p1, math.radians(b_lon - a_lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def _ring_moments(ring: Ring) -> tuple[float, float, float]:
    """Signed area and first moments of a ring (planar lon/lat: fine at district scale)."""
    area = cx = cy = 0.0
    for (x0, y0, *_), (x1, y1, *_) in itertools.pairwise(ring):
        cross = x0 * y1 - x1 * y0
        area += cross
        cx += (x0 + x1) * cross
        cy += (y0 + y1) * cross
    return area / 2, cx / 6, cy / 6


def polygons_centroid(polygons: Sequence[Sequence[Ring]]) -> Point | None:
    """Area-weighted centroid of polygons (outer ring minus holes); None if the area is 0."""
    total = mx = my = 0.0
    for rings in polygons:
        for i, ring in enumerate(rings):
            area, cx, cy = _ring_moments(ring)
            if area == 0:
                continue
            weight = abs(area) if i == 0 else -abs(area)  # holes subtract, either winding
            total += weight
            mx += weight * cx / area
            my += weight * cy / area
    if abs(total) < 1e-15:
        return None
    return Point(lat=my / total, lon=mx / total)


def in_ring(lat: float, lon: float, ring: Ring) -> bool:
    """Even-odd rule: is (lat, lon) inside the closed ring?"""
    inside = False
    for (x0, y0, *_), (x1, y1, *_) in itertools.pairwise(ring):
        if (y0 > lat) != (y1 > lat) and lon < x0 + (lat - y0) * (x1 - x0) / (y1 - y0):
            inside = not inside
    return inside


def in_polygons(lat: float, lon: float, polygons: Sequence[Sequence[Ring]]) -> bool:
    """Is the point inside any polygon (inside its outer ring and outside its holes)?"""
    return any(
        in_ring(lat, lon, rings[0]) and not any(in_ring(lat, lon, h) for h in rings[1:])
        for rings in polygons
    )
