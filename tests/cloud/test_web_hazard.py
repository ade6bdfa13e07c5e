"""The worker reports a hazard from the phone page, over the real lifecycle desk and registry."""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from PIL import Image

from cloud.lifecycle import AlarmDesk, Outcome
from cloud.lifecycle.reports import hazard_reports
from cloud.registry import tables as registry
from cloud.web import LifecycleWorkerDesk, create_app
from cloud.web.photos import MAX_BYTES, PhotoRefused, PhotoStore
from tests.cloud.test_lifecycle_fixtures import outbox_rows, rows
from tests.cloud.test_web_adapter import PUBLIC, notified_alarm
from tests.cloud.test_web_support import TWILIO_TOKEN, signer

SQUARE = {"type": "Polygon", "coordinates": [[[118.0, 24.0], [118.2, 24.0], [118.2, 24.2],
                                               [118.0, 24.2], [118.0, 24.0]]]}  # fmt: skip


@dataclass
class World:
    desk: AlarmDesk
    url: str
    token: str
    client: httpx.AsyncClient
    photos: Path


def jpeg_with_exif(size: tuple[int, int] = (64, 48)) -> bytes:
    img = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x010E] = "W. Wang's phone, 24.49N 118.12E"  # ImageDescription
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif)
    return out.getvalue()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with notified_alarm(tmp_path, "hazard") as (desk, reg, url, alarm_id):
        with reg.begin() as conn:
            conn.execute(sa.insert(registry.grids).values(
                id="g-lake", community="c-1", name="湖滨", geometry=json.dumps(SQUARE),
                centroid_lat=24.1, centroid_lon=118.1,
            ))  # fmt: skip
        app = create_app(
            LifecycleWorkerDesk(desk, reg), signer(), twilio_auth_token=TWILIO_TOKEN,
            public_base_url=PUBLIC, clock=time.time, photo_dir=tmp_path / "photos",
        )  # fmt: skip
        tok = signer().make("w2", str(alarm_id), datetime.fromtimestamp(time.time() + 600, UTC))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC) as client:
            yield World(desk, url, tok, client, tmp_path / "photos")


async def form_id(w: World) -> str:
    r = await w.client.get(f"/m/{w.token}/report")
    assert r.status_code == 200
    assert "Report a hazard" in r.text and "Blocked fire exit" in r.text  # w2 reads English
    found = re.search(r'name="report_id" value="([^"]+)"', r.text)
    assert found is not None
    return found[1]


async def post(w: World, fields: dict[str, str], photos: list[bytes]) -> httpx.Response:
    files = [("photos", (f"p{i}.jpg", p, "image/jpeg")) for i, p in enumerate(photos)]
    no_file = [("photos", ("", b"", "application/octet-stream"))]  # as a browser sends it
    return await w.client.post(f"/m/{w.token}/report", data=fields, files=files or no_file)


async def test_a_report_with_a_photo_becomes_an_alarm_placed_in_its_grid(world: World) -> None:
    rid = await form_id(world)
    fields = {"report_id": rid, "kind": "blocked_exit", "note": "纸箱堵住楼梯",
              "lat": "24.1", "lon": "118.1"}  # fmt: skip
    r = await post(world, fields, [jpeg_with_exif()])
    assert r.status_code == 303, r.text
    done = await world.client.get(httpx.URL(f"{PUBLIC}/m/{world.token}/report").join(
        r.headers["location"]).path + "?" + r.headers["location"].split("?")[1])  # fmt: skip
    assert "Your report reached the command centre" in done.text
    (rep,) = rows(world.url, sa.select(hazard_reports))
    assert (rep.reporter, rep.kind, rep.grid, rep.community) == ("w2", "blocked_exit", "g-lake",
                                                                 "c-1")  # fmt: skip
    state = world.desk.lifecycle.state(rep.alarm_id)
    assert (state["category"], state["title_en"]) == ("report", "Blocked fire exit")
    (name,) = json.loads(rep.photos)
    with Image.open(world.photos / name) as kept:
        assert kept.format == "JPEG" and not kept.getexif()  # nothing of the phone's EXIF
    photo = await world.client.get(f"/m/{world.token}/photos/{name}")
    assert photo.status_code == 200 and photo.content == (world.photos / name).read_bytes()


async def test_the_same_form_sent_twice_is_one_report(world: World) -> None:
    rid = await form_id(world)
    for _ in range(2):
        r = await post(world, {"report_id": rid, "kind": "flooding", "note": "", "lat": "",
                               "lon": ""}, [])  # fmt: skip
        assert r.status_code == 303
    assert len(rows(world.url, sa.select(hazard_reports))) == 1


async def test_the_reporter_is_told_when_it_is_closed(world: World) -> None:
    rid = await form_id(world)
    await post(world, {"report_id": rid, "kind": "indoor_charging", "note": "3楼楼道"}, [])
    (rep,) = rows(world.url, sa.select(hazard_reports))
    await world.desk.acknowledge(rep.alarm_id, "w1")
    await world.desk.resolve(rep.alarm_id, "w1", Outcome.REAL, note="已劝离")
    told = [m for m in outbox_rows(world.url) if m.worker_id == "w2"]
    assert len(told) == 1 and 'Your report "E-bike charging indoors" is closed' in told[0].text


@pytest.mark.parametrize(
    ("fields", "photos", "status"),
    [
        ({"kind": "volcano"}, [], 400),
        ({"kind": "other", "lat": "91", "lon": "0"}, [], 400),
        ({"kind": "other", "extra": "x"}, [], 400),
        ({"kind": "other", "report_id": "../../x"}, [], 400),
        ({"kind": "other"}, [b"GIF89a not a photo"], 422),
        ({"kind": "other"}, [b"%PDF-1.7"], 422),
    ],
    ids=["unknown-kind", "bad-lat", "unknown-field", "bad-id", "gif", "pdf"],
)
async def test_bad_reports_are_refused_and_change_nothing(
    world: World, fields: dict[str, str], photos: list[bytes], status: int
) -> None:
    before = len(outbox_rows(world.url))
    fields = {"report_id": await form_id(world), **fields}
    r = await post(world, fields, photos)
    assert r.status_code == status, r.text
    assert rows(world.url, sa.select(hazard_reports)) == []
    assert len(outbox_rows(world.url)) == before
    assert not world.photos.exists() or list(world.photos.iterdir()) == []


async def test_a_body_over_the_limit_is_refused_before_it_is_read(world: World) -> None:
    r = await world.client.post(
        f"/m/{world.token}/report", content=b"x" * 16,
        headers={"Content-Type": "multipart/form-data; boundary=b",
                 "Content-Length": str(5 * MAX_BYTES)},
    )  # fmt: skip
    assert r.status_code == 413


async def test_a_forged_link_cannot_report(world: World) -> None:
    r = await world.client.post(f"/m/{world.token[:-2]}AA/report", data={"kind": "other"})
    assert r.status_code == 403
    assert rows(world.url, sa.select(hazard_reports)) == []


def test_photo_store_refuses_bombs_and_foreign_names(tmp_path: Path) -> None:
    store = PhotoStore(tmp_path)
    big = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(big, "PNG")  # 100 Mpx, a few KB on the wire
    with pytest.raises(PhotoRefused):
        store.keep(big.getvalue())
    assert store.path("../cloud.db") is None
    assert store.path("a" * 64 + ".jpg") is None
    name = store.keep(jpeg_with_exif((4000, 3000)))
    with Image.open(tmp_path / name) as kept:
        assert max(kept.size) == 2048
    assert store.path(name) == tmp_path / name
