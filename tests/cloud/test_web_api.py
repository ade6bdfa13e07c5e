"""The registry over HTTP: export and import like ``gridalarm cloud``, behind an admin token.

A real SQLite database, the real registry functions and ``LifecycleWorkerDesk``; the API's
answers are compared with what ``import_district`` and the ``export_*`` functions give.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from cloud.database import open_database
from cloud.ingest.devices import upsert_devices
from cloud.lifecycle import AlarmDesk
from cloud.registry import (
    create_registry_tables,
    export_communities_csv,
    export_device_locations_csv,
    export_grids_geojson,
    export_shifts_csv,
    export_workers_csv,
    import_district,
    write_demo_district,
)
from cloud.web import LifecycleWorkerDesk, create_app
from cloud.web.registry_api import MAX_FILE_BYTES
from cloud.web.settings import WebSettings
from rules.devices_csv import read_devices_csv
from tests.cloud.test_lifecycle_fixtures import RankedDispatcher, RecordingSender, config
from tests.cloud.test_web_support import TWILIO_TOKEN, signer

PUBLIC = "https://alarm.example.cn"
ADMIN = "admin-token-" + "k" * 20
AUTH = {"Authorization": f"Bearer {ADMIN}"}
CSV = {**AUTH, "Content-Type": "text/csv; charset=utf-8"}
GEOJSON = {**AUTH, "Content-Type": "application/geo+json"}
ORDER = ("communities", "grids", "device_locations", "workers", "shifts")
EXPORTS = {
    "communities": export_communities_csv,
    "grids": export_grids_geojson,
    "workers": export_workers_csv,
    "shifts": export_shifts_csv,
    "device_locations": export_device_locations_csv,
}
COMMUNITIES = "id,name_zh,name_en\nyecuo,叶厝社区,Yecuo\nhubin,湖滨社区,Hubin\n"


def filename(name: str) -> str:
    return f"{name}.geojson" if name == "grids" else f"{name}.csv"


def headers(name: str) -> dict[str, str]:
    return GEOJSON if name == "grids" else CSV


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("district")
    write_demo_district(folder, seed=5)
    return folder


class Api:
    def __init__(self, db: Engine, client: httpx.AsyncClient) -> None:
        self.db, self.client = db, client

    async def put(
        self, name: str, text: str | bytes, hdrs: dict[str, str] | None = None
    ) -> httpx.Response:
        return await self.client.put(
            f"/api/registry/{name}", content=text, headers=hdrs or headers(name)
        )


def make_app(db: Engine, desk: AlarmDesk, settings: WebSettings | None) -> httpx.AsyncClient:
    app = create_app(
        LifecycleWorkerDesk(desk, db), signer(), twilio_auth_token=TWILIO_TOKEN,
        public_base_url=PUBLIC, clock=time.time, settings=settings,
    )  # fmt: skip
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC)


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[tuple[Engine, AlarmDesk]]:
    url = f"sqlite:///{tmp_path / 'cloud.db'}"
    db = open_database(url)
    create_registry_tables(db)
    async with AlarmDesk(
        url, config(), dispatcher=RankedDispatcher([]), sender=RecordingSender(),
        instance=f"api-{tmp_path.name}",
    ) as alarm_desk:  # fmt: skip
        yield db, alarm_desk
    db.dispose()


@pytest.fixture
async def api(desk: tuple[Engine, AlarmDesk]) -> AsyncIterator[Api]:
    db, alarm_desk = desk
    settings = WebSettings(admin_token=SecretStr(ADMIN))
    async with make_app(db, alarm_desk, settings) as client:
        yield Api(db, client)


def snapshot(db: Engine) -> dict[str, str]:
    return {name: export(db) for name, export in EXPORTS.items()}


async def test_put_every_file_then_get_is_what_cloud_import_gives(
    api: Api, district: Path, tmp_path: Path
) -> None:
    devices = (district / "devices.csv").read_text(encoding="utf-8")
    upsert_devices(api.db, read_devices_csv(devices, "devices.csv"))  # devices: not this API
    for name in ORDER:
        text = (district / filename(name)).read_text(encoding="utf-8")
        r = await api.put(name, text.encode("utf-8"))
        assert r.status_code == 200, r.text
        assert r.json()["file"] == filename(name) and r.json()["imported"] > 0

    cli_db = open_database(f"sqlite:///{tmp_path / 'cli.db'}")
    create_registry_tables(cli_db)
    counts = import_district(cli_db, district)
    assert counts["grids.geojson"] == 150
    for name in ORDER:
        r = await api.client.get(f"/api/registry/{name}", headers=AUTH)
        assert r.status_code == 200
        assert r.text == EXPORTS[name](cli_db), name
        assert r.headers["content-type"].startswith(
            "application/geo+json" if name == "grids" else "text/csv"
        )
        assert r.headers["cache-control"] == "no-store"
        assert filename(name) in r.headers["content-disposition"]
    cli_db.dispose()


async def test_put_replaces_rows_with_the_same_ids_and_keeps_others(api: Api) -> None:
    assert (await api.put("communities", COMMUNITIES)).json()["imported"] == 2
    r = await api.put("communities", "id,name_zh,name_en\nhubin,湖滨新社区,New Hubin\n")
    assert r.status_code == 200 and r.json()["imported"] == 1
    text = (await api.client.get("/api/registry/communities", headers=AUTH)).text
    assert text == export_communities_csv(api.db)
    assert "湖滨新社区" in text and "叶厝社区" in text and "湖滨社区," not in text


async def test_a_bad_file_is_422_with_every_issue_and_changes_nothing(api: Api) -> None:
    await api.put("communities", COMMUNITIES)
    before = snapshot(api.db)
    bad = (
        "id,name,phone,locale,role,community,grids,push_subscription\n"
        "w1,陈丽,13800000001,zh-CN,worker,yecuo,nowhere,\n"
        "w2,王强,not-a-phone,zh-CN,worker,yecuo,g1,\n"
    )
    r = await api.put("workers", bad)
    assert r.status_code == 422
    issues = r.json()["issues"]
    assert any(i.startswith("workers.csv:3: phone: ") for i in issues), issues
    assert snapshot(api.db) == before

    r = await api.put("workers", "id,name,phone,locale,role,community,grids\n"
                      "w1,陈丽,13800000001,zh-CN,worker,yecuo,nowhere\n")  # fmt: skip
    assert r.status_code == 422
    assert r.json()["issues"] == ["workers.csv:2: grids: 'nowhere' is not a known grid"]
    assert snapshot(api.db) == before

    r = await api.put("communities", b"id,name_zh,name_en\nx,\xff\xfe,y\n")
    assert r.status_code == 422 and r.json()["issues"][0].startswith("communities.csv: not UTF-8")
    assert snapshot(api.db) == before


@pytest.mark.parametrize(
    "auth",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer wrong-token-wrong-token"},
        {"Authorization": f"Bearer {ADMIN}x"},
        {"Authorization": f"Basic {ADMIN}"},
        {"Authorization": "Bearer t\u00f6ken".encode()},  # non-ASCII: still just 401
    ],
)
async def test_missing_or_bad_token_is_401_and_changes_nothing(
    api: Api, auth: dict[str, Any]
) -> None:
    r = await api.client.get("/api/registry/communities", headers=auth)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = await api.put("communities", COMMUNITIES, {**auth, "Content-Type": "text/csv"})
    assert r.status_code == 401
    assert export_communities_csv(api.db) == "id,name_zh,name_en\n"


async def test_without_an_admin_token_the_api_does_not_exist(
    desk: tuple[Engine, AlarmDesk],
) -> None:
    db, alarm_desk = desk
    async with make_app(db, alarm_desk, None) as client:
        assert (await client.get("/api/registry/communities", headers=AUTH)).status_code == 404
        r = await client.put("/api/registry/communities", content=COMMUNITIES, headers=CSV)
        assert r.status_code == 404
    assert export_communities_csv(db) == "id,name_zh,name_en\n"


async def test_unknown_file_is_404_after_auth(api: Api) -> None:
    assert (await api.client.get("/api/registry/devices")).status_code == 401
    assert (await api.client.get("/api/registry/devices", headers=AUTH)).status_code == 404


async def test_wrong_content_type_is_415(api: Api) -> None:
    r = await api.put("communities", COMMUNITIES, {**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 415
    assert (await api.put("grids", "{}", CSV)).status_code == 415
    assert (await api.put("workers", "id\n", AUTH)).status_code == 415
    assert export_communities_csv(api.db) == "id,name_zh,name_en\n"


async def test_a_body_over_the_limit_is_413(api: Api) -> None:
    big = COMMUNITIES.encode() + b"#" * MAX_FILE_BYTES

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the stream is counted
        for i in range(0, len(big), 1 << 20):
            yield big[i : i + (1 << 20)]

    assert (await api.put("communities", big)).status_code == 413
    r = await api.client.put("/api/registry/communities", content=chunks(), headers=CSV)
    assert r.status_code == 413
    assert export_communities_csv(api.db) == "id,name_zh,name_en\n"


def test_settings_from_env_refuse_a_short_token() -> None:
    with pytest.raises(ValueError, match="admin_token"):
        WebSettings.from_env({"GRIDALARM_ADMIN_TOKEN": "short"})
    assert WebSettings.from_env({}).admin_token is None
    got = WebSettings.from_env({"GRIDALARM_ADMIN_TOKEN": ADMIN}).admin_token
    assert got is not None and got.get_secret_value() == ADMIN


@pytest.mark.parametrize(
    "body",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"type": "FeatureCollection", "features": ' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"a":' * 50_000 + "1" + "}" * 50_000,
    ],
    ids=["arrays", "features", "objects"],
)
async def test_deeply_nested_json_is_refused_and_changes_nothing(
    api: Api, district: Path, body: str
) -> None:
    for name in ("communities", "grids"):
        text = (district / filename(name)).read_text(encoding="utf-8")
        assert (await api.put(name, text.encode("utf-8"))).status_code == 200
    before = snapshot(api.db)
    assert len(body) < MAX_FILE_BYTES
    r = await api.put("grids", body.encode("ascii"))
    assert r.status_code in (400, 422), r.text
    assert "nested" in r.text
    assert snapshot(api.db) == before
    again = (district / "grids.geojson").read_text(encoding="utf-8").encode("utf-8")
    assert (await api.put("grids", again)).status_code == 200  # still serving
