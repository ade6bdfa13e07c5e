"""Communities and device locations as CSV text (pure: text in, dataclasses out, and back).

``communities.csv``: ``id,name_zh,name_en``.
``device_locations.csv``: ``device,lat,lon,address,building,floor,owner,owner_phone`` —
lat/lon in WGS-84 degrees; owner_phone optional, E.164 or a Chinese national number.
"""

from __future__ import annotations

from collections.abc import Iterable

from cloud.registry.csvio import number, parse_csv, phone, required, write_csv
from cloud.registry.model import Community, DeviceLocation

COMMUNITY_COLUMNS = ("id", "name_zh", "name_en")
LOCATION_COLUMNS = ("device", "lat", "lon", "address", "building", "floor", "owner", "owner_phone")


def read_communities_csv(text: str, filename: str) -> list[tuple[int, Community]]:
    """(line, Community) pairs; ConfigError naming file, line and field for every bad row."""
    return parse_csv(
        text, filename, COMMUNITY_COLUMNS, ("id", "name_zh"), _community, key=lambda c: c.id
    )


def _community(row: dict[str, str]) -> Community:
    return Community(required(row, "id"), required(row, "name_zh"), row.get("name_en", ""))


def write_communities_csv(items: Iterable[Community]) -> str:
    return write_csv(COMMUNITY_COLUMNS, ((c.id, c.name_zh, c.name_en) for c in items))


def read_locations_csv(text: str, filename: str) -> list[tuple[int, DeviceLocation]]:
    """(line, DeviceLocation) pairs; ConfigError naming file, line and field for every bad row."""
    return parse_csv(
        text,
        filename,
        LOCATION_COLUMNS,
        ("device", "lat", "lon"),
        _location,
        key=lambda d: d.device,
    )


def _location(row: dict[str, str]) -> DeviceLocation:
    return DeviceLocation(
        device=required(row, "device"),
        lat=number(row, "lat", -90, 90),
        lon=number(row, "lon", -180, 180),
        address=row.get("address", ""),
        building=row.get("building", ""),
        floor=row.get("floor", ""),
        owner=row.get("owner", ""),
        owner_phone=phone(row, "owner_phone") if row.get("owner_phone") else "",
    )


def write_locations_csv(items: Iterable[DeviceLocation]) -> str:
    return write_csv(
        LOCATION_COLUMNS,
        (
            (
                d.device,
                repr(d.lat),
                repr(d.lon),
                d.address,
                d.building,
                d.floor,
                d.owner,
                d.owner_phone,
            )
            for d in items
        ),
    )
