"""Registry import and export: round trips, and bad rows named by file, line and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from cloud.database import open_database
from cloud.ingest.devices import upsert_devices
from cloud.registry import (
    Locale,
    Role,
    create_registry_tables,
    export_communities_csv,
    export_device_locations_csv,
    export_grids_geojson,
    export_shifts_csv,
    export_workers_csv,
    import_communities_csv,
    import_device_locations_csv,
    import_district,
    import_grids_geojson,
    import_shifts_csv,
    import_workers_csv,
    load_registry,
    record_position,
    set_duty_commander,
    set_grid_supervisor,
    write_demo_district,
)
from rules.devices import DeviceInfo
from wire.yamlconf import ConfigError

COMMUNITIES = "id,name_zh,name_en\nyecuo,叶厝社区,Yecuo\nhubin,湖滨社区,Hubin\n"


def square(lon: float, lat: float, d: float = 0.002) -> list[list[list[float]]]:
    return [[[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]]


def feature(gid: str, community: str = "yecuo", coords: object = None) -> str:
    geometry = {"type": "Polygon", "coordinates": coords or square(118.09, 24.48)}
    props = {"id": gid, "community": community, "name": f"网格 {gid}"}
    return json.dumps({"type": "Feature", "properties": props, "geometry": geometry})


def collection(*features: str) -> str:
    return '{\n  "type": "FeatureCollection",\n  "features": [\n' + ",\n".join(features) + "\n]}\n"


@pytest.fixture
def db(tmp_path: Path) -> Engine:
    engine = open_database(f"sqlite:///{tmp_path / 'reg.db'}")
    create_registry_tables(engine)
    return engine


@pytest.fixture
def grids_db(db: Engine) -> Engine:
    import_communities_csv(db, COMMUNITIES, "communities.csv")
    import_grids_geojson(db, collection(feature("g1"), feature("g2", "hubin")), "grids.geojson")
    return db


def issues(err: pytest.ExceptionInfo[ConfigError]) -> list[tuple[str, int | None, str]]:
    return [(i.file, i.line, i.field) for i in err.value.issues]


def test_demo_district_round_trips(db: Engine, tmp_path: Path) -> None:
    """Import the demo files, export every table: the same bytes come back."""
    write_demo_district(tmp_path / "d", seed=3)
    counts = import_district(db, tmp_path / "d")
    assert counts["grids.geojson"] == 150
    assert counts["devices.csv"] == counts["device_locations.csv"]
    for name, export in [
        ("communities.csv", export_communities_csv),
        ("grids.geojson", export_grids_geojson),
        ("workers.csv", export_workers_csv),
        ("shifts.csv", export_shifts_csv),
        ("device_locations.csv", export_device_locations_csv),
    ]:
        assert export(db) == (tmp_path / "d" / name).read_text(encoding="utf-8"), name


def test_grids_get_a_centroid_and_multipolygons_work(db: Engine) -> None:
    import_communities_csv(db, COMMUNITIES, "c.csv")
    multi = json.dumps(
        {
            "type": "Feature",
            "properties": {"id": "m", "community": "hubin"},
            "geometry": {
                "type": "MultiPolygon",
                "coordinates": [square(118.0, 24.0, 0.01), square(118.02, 24.0, 0.01)],
            },
        }
    )
    holed = [*square(118.0, 24.0, 0.03), square(118.001, 24.001, 0.01)[0][::-1]]
    import_grids_geojson(db, collection(multi, feature("h", coords=holed)), "g.geojson")
    grids = {g.id: g for g in load_registry(db).grids}
    assert grids["m"].centroid.lat == pytest.approx(24.005)
    assert grids["m"].centroid.lon == pytest.approx(118.015)
    assert grids["m"].name == "m"  # no name: the id
    h = grids["h"].centroid  # (9 x 0.015 - 1 x 0.006) / 8: the hole subtracts
    assert (h.lat, h.lon) == pytest.approx((24.016125, 118.016125))
    again = export_grids_geojson(db)
    import_grids_geojson(db, again, "again.geojson")
    assert export_grids_geojson(db) == again


def test_workers_round_trip_with_everything(grids_db: Engine) -> None:
    sub = '{"endpoint": "https://push.example/abc", "keys": {"p256dh": "x", "auth": "y"}}'
    text = (
        "id,name,phone,locale,role,community,grids,push_subscription\n"
        f'w1,陈丽,138 0000 0001,en,worker,yecuo,g2;g1,"{sub.replace(chr(34), chr(34) * 2)}"\n'
        "s1,王强,+8613800000002,,supervisor,yecuo,,\n"
        "c1,Li Na,0592-1234567,zh-CN,commander,,,\n"
    )
    assert import_workers_csv(grids_db, text, "workers.csv") == 3
    workers = {w.id: w for w in load_registry(grids_db).workers}
    w1 = workers["w1"]
    assert (w1.phone, w1.locale, w1.role, w1.grids) == (
        "+8613800000001",
        Locale.EN,
        Role.WORKER,
        ("g2", "g1"),
    )
    assert json.loads(w1.push_subscription or "")["endpoint"] == "https://push.example/abc"
    assert workers["s1"].role is Role.SUPERVISOR and workers["s1"].locale is Locale.ZH_CN
    assert workers["c1"].phone == "+865921234567"
    exported = export_workers_csv(grids_db)
    import_workers_csv(grids_db, exported, "again.csv")
    assert export_workers_csv(grids_db) == exported


def test_reimport_replaces_grids_and_shifts(grids_db: Engine) -> None:
    head = "id,name,phone,grids,community\n"
    import_workers_csv(grids_db, head + "w1,甲,+8613800000001,g1;g2,yecuo\n", "a.csv")
    import_workers_csv(grids_db, head + "w1,甲,+8613800000001,g2,yecuo\n", "b.csv")
    assert load_registry(grids_db).workers[0].grids == ("g2",)
    shifts = "worker,weekdays,start,end\nw1,mon-fri,08:00,20:00\nw1,sat,20:00,08:00\n"
    assert import_shifts_csv(grids_db, shifts, "s.csv") == 2
    import_shifts_csv(grids_db, "worker,weekdays,start,end,tz\nw1,daily,00:00,24:00,\n", "t.csv")
    (only,) = load_registry(grids_db).shifts
    assert (only.weekdays, only.start_min, only.end_min, only.tz) == (
        frozenset(range(7)),
        0,
        1440,
        "Asia/Shanghai",
    )
    assert export_shifts_csv(grids_db) == (
        "worker,weekdays,start,end,tz\nw1,mon;tue;wed;thu;fri;sat;sun,00:00,24:00,Asia/Shanghai\n"
    )


def test_device_locations(grids_db: Engine) -> None:
    upsert_devices(grids_db, [DeviceInfo("smk-0042", "gw-0001", "smoke", "g1")])
    text = (
        "device,lat,lon,address,building,floor,owner,owner_phone\n"
        "smk-0042,24.481,118.091,叶厝路12号,7号楼,1,包饼店,13900000001\n"
    )
    import_device_locations_csv(grids_db, text, "loc.csv")
    (loc,) = load_registry(grids_db).locations
    assert (loc.lat, loc.floor, loc.owner, loc.owner_phone) == (
        24.481,
        "1",
        "包饼店",
        "+8613900000001",
    )
    assert export_device_locations_csv(grids_db).splitlines()[1] == (
        "smk-0042,24.481,118.091,叶厝路12号,7号楼,1,包饼店,+8613900000001"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (  # bad phone on line 3, bad locale and role on lines 4 and 5
            "id,name,phone,locale,role,community,grids\n"
            "w1,甲,+8613800000001,zh-CN,worker,yecuo,g1\n"
            "w2,乙,12ab,zh-CN,worker,yecuo,g1\n"
            "w3,丙,+8613800000003,fr,worker,yecuo,g1\n"
            "w4,丁,+8613800000004,en,boss,yecuo,g1\n",
            [("w.csv", 3, "phone"), ("w.csv", 4, "locale"), ("w.csv", 5, "role")],
        ),
        (  # a worker without grids; a supervisor without community; duplicate id
            "id,name,phone,role,community,grids\n"
            "w1,甲,+8613800000001,worker,yecuo,\n"
            "s1,乙,+8613800000002,supervisor,,\n"
            "\n"
            "c1,丙,+8613800000003,commander,,\n"
            "c1,丁,+8613800000004,commander,,\n",
            [("w.csv", 2, "grids"), ("w.csv", 3, "community"), ("w.csv", 6, "id")],
        ),
        ("id,name\nw1,甲\n", [("w.csv", 1, "phone")]),  # required column missing
        ("id,name,phone,shoe_size\n", [("w.csv", 1, "shoe_size")]),  # unknown column
        (  # references: unknown grid, unknown community
            "id,name,phone,community,grids\n"
            "w1,甲,+8613800000001,yecuo,g1;g9\n"
            "w2,乙,+8613800000002,nowhere,g1\n",
            [("w.csv", 2, "grids"), ("w.csv", 3, "community")],
        ),
        (  # a JSON cell that is not a subscription
            'id,name,phone,community,grids,push_subscription\nw1,甲,+8613800000001,yecuo,g1,"[1]"\n',
            [("w.csv", 2, "push_subscription")],
        ),
    ],
)
def test_bad_worker_rows(grids_db: Engine, text: str, expected: list[tuple[str, int, str]]) -> None:
    with pytest.raises(ConfigError) as err:
        import_workers_csv(grids_db, text, "w.csv")
    assert issues(err) == expected
    assert load_registry(grids_db).workers == ()  # nothing half-imported


def test_bad_shift_rows(grids_db: Engine) -> None:
    import_workers_csv(
        grids_db, "id,name,phone,community,grids\nw1,甲,+8613800000001,yecuo,g1\n", "w.csv"
    )
    text = (
        "worker,weekdays,start,end,tz\n"
        "w1,mon-fri,08:00,20:00,\n"
        "w1,someday,08:00,20:00,\n"
        "w1,mon,8am,20:00,\n"
        "w1,mon,08:00,25:00,\n"
        "w1,mon,08:00,20:00,Mars/Olympus\n"
        "w9,mon,08:00,20:00,\n"
    )
    with pytest.raises(ConfigError) as err:
        import_shifts_csv(grids_db, text, "s.csv")
    assert issues(err) == [
        ("s.csv", 3, "weekdays"),
        ("s.csv", 4, "start"),
        ("s.csv", 5, "end"),
        ("s.csv", 6, "tz"),
    ]
    with pytest.raises(ConfigError) as err:
        import_shifts_csv(
            grids_db, text.splitlines()[0] + "\n" + "\n".join(text.splitlines()[6:]), "s.csv"
        )
    assert issues(err) == [("s.csv", 2, "worker")]
    assert "'w9' is not a known worker" in str(err.value)


def test_bad_location_rows(grids_db: Engine) -> None:
    upsert_devices(grids_db, [DeviceInfo("smk-0001", "gw-0001", "smoke")])
    text = (
        "device,lat,lon,owner_phone\n"
        "smk-0001,95,118.0,\n"
        "smk-0001,24.0,east,\n"
        "smk-0002,24.0,118.0,not-a-phone\n"
        ",24.0,118.0,\n"
    )
    with pytest.raises(ConfigError) as err:
        import_device_locations_csv(grids_db, text, "loc.csv")
    assert issues(err) == [
        ("loc.csv", 2, "lat"),
        ("loc.csv", 3, "lon"),
        ("loc.csv", 4, "owner_phone"),
        ("loc.csv", 5, "device"),
    ]
    with pytest.raises(ConfigError, match=r"loc.csv:2: device: 'smk-0404' is not a known device"):
        import_device_locations_csv(grids_db, "device,lat,lon\nsmk-0404,24,118\n", "loc.csv")


def test_bad_geojson_features_name_their_line(db: Engine) -> None:
    import_communities_csv(db, COMMUNITIES, "c.csv")
    open_ring = [[[118.0, 24.0], [118.1, 24.0], [118.1, 24.1], [118.0, 24.1]]]
    flat = [[[118.0, 24.0], [118.1, 24.0], [118.2, 24.0], [118.0, 24.0]]]
    text = collection(
        feature("ok"),  # line 4
        feature("bad-ring", coords=open_ring),  # line 5
        feature("flat", coords=flat),  # line 6
        feature("ok"),  # line 7: duplicate
        json.dumps({"type": "Feature", "properties": {"id": "x"}, "geometry": None}),  # line 8
        feature("far", coords=[[[200, 24], [118, 24], [118, 25], [200, 24]]]),  # line 9
    )
    with pytest.raises(ConfigError) as err:
        import_grids_geojson(db, text, "grids.geojson")
    assert issues(err) == [
        ("grids.geojson", 5, "features[1].geometry.coordinates[0][0]"),
        ("grids.geojson", 6, "features[2].geometry"),
        ("grids.geojson", 7, "features[3].properties.id"),
        ("grids.geojson", 8, "features[4].properties.community"),
        ("grids.geojson", 9, "features[5].geometry.coordinates[0][0][0]"),
    ]
    assert load_registry(db).grids == ()


def test_geojson_syntax_and_references(db: Engine) -> None:
    with pytest.raises(ConfigError) as err:
        import_grids_geojson(db, '{"type": "FeatureCollection",\n "features": [,]}', "g.geojson")
    assert issues(err) == [("g.geojson", 2, "")]
    with pytest.raises(ConfigError, match="not a FeatureCollection"):
        import_grids_geojson(db, "[]", "g.geojson")
    with pytest.raises(ConfigError) as err:
        import_grids_geojson(db, collection(feature("g1", community="atlantis")), "g.geojson")
    assert issues(err) == [("g.geojson", 4, "properties.community")]


def test_positions_keep_the_newest(grids_db: Engine) -> None:
    import_workers_csv(
        grids_db, "id,name,phone,community,grids\nw1,甲,+8613800000001,yecuo,g1\n", "w.csv"
    )
    assert record_position(grids_db, "w1", 24.0, 118.0, 100.0)
    assert record_position(grids_db, "w1", 24.1, 118.1, 200.0)
    assert not record_position(grids_db, "w1", 24.2, 118.2, 150.0)  # late, older fix
    (pos,) = load_registry(grids_db).positions
    assert (pos.lat, pos.ts) == (24.1, 200.0)


def test_posts(grids_db: Engine) -> None:
    set_grid_supervisor(grids_db, "g1", "s1")
    set_duty_commander(grids_db, "c1")
    reg = load_registry(grids_db)
    assert (reg.grid_supervisors, reg.duty_commander) == ({"g1": "s1"}, "c1")
    set_grid_supervisor(grids_db, "g1", None)
    set_duty_commander(grids_db, None)
    reg = load_registry(grids_db)
    assert (reg.grid_supervisors, reg.duty_commander) == ({}, None)


def test_district_import_is_all_or_nothing(db: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "d"
    write_demo_district(folder)
    shifts = (folder / "shifts.csv").read_text(encoding="utf-8")
    (folder / "shifts.csv").write_text(
        shifts + "w-9999,mon,08:00,20:00,Asia/Shanghai\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError) as err:
        import_district(db, folder)
    line = len(shifts.splitlines()) + 1
    assert issues(err) == [(str(folder / "shifts.csv"), line, "worker")]
    reg = load_registry(db)
    assert (reg.grids, reg.workers, reg.shifts) == ((), (), ())


def test_bom_and_crlf_are_fine(grids_db: Engine) -> None:
    text = "\ufeffid,name,phone,community,grids\r\nw1,甲,+8613800000001,yecuo,g1\r\n"
    assert import_workers_csv(grids_db, text, "excel.csv") == 1
