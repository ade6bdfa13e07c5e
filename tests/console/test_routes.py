"""The console's routes over a real desk: sign-in, cookie flags, CSRF on every form post,
viewers cannot act, a dispatcher's actions reach the lifecycle, pages and CSV answer."""

from __future__ import annotations

import time

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from cloud.config import ConsoleConfig
from cloud.console import attach_console
from cloud.console.users import Role, add_user
from cloud.lifecycle import HazardKind, HazardReport
from cloud.lifecycle.audit import Event, append
from cloud.lifecycle.rule_alarms import alarm_events
from cloud.lifecycle.tables import lifecycle_alarms, outbox
from tests.console.conftest import BASE, Rig, client, csrf_of, sign_in


async def test_pages_need_a_session_and_the_root_leads_to_the_console(rig: Rig) -> None:
    async with client(rig) as http:
        root = await http.get("/")
        assert root.status_code == 303 and root.headers["location"] == "/console/"
        page = await http.get("/console/", headers={"accept": "text/html"})
        assert page.status_code == 303
        assert page.headers["location"].startswith("/console/login?next=/console/")
        assert (await http.get("/console/map.json")).status_code == 401
        assert (await http.get("/console/events")).status_code == 401


async def test_sign_in_sets_a_strict_http_only_cookie_and_wrong_passwords_fail(rig: Rig) -> None:
    async with client(rig) as http:
        bad = await sign_in(http, "disp", "wrong password!")
        assert bad.status_code == 401
        ok = await sign_in(http, "disp")
        assert ok.status_code == 303 and ok.headers["location"] == "/console/"
        cookie = next(
            v for k, v in ok.headers.multi_items() if k == "set-cookie" and "ga_session" in v
        )
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
        assert "Secure" not in cookie  # the public URL is http here
        board = await http.get("/console/")
        assert board.status_code == 200 and "disp" in board.text
        assert "script-src 'self' 'nonce-" in board.headers["content-security-policy"]


async def test_a_sign_in_form_without_its_csrf_token_is_refused(rig: Rig) -> None:
    async with client(rig) as http:
        await http.get("/console/login")
        refused = await http.post(
            "/console/login", data={"username": "disp", "password": "correct horse battery"}
        )
        assert refused.status_code == 403


async def test_actions_need_the_csrf_token_and_a_role_that_may_act(rig: Rig) -> None:
    aid = await rig.raise_alarm()
    async with client(rig) as http:
        await sign_in(http, "viewer")
        page = await http.get(f"/console/alarms/{aid}")
        assert page.status_code == 200 and "/resolve" not in page.text  # no forms for viewers
        token = csrf_of(page.text)  # the sign-out form's
        refused = await http.post(
            f"/console/alarms/{aid}/resolve", data={"csrf": token, "outcome": "false_alarm"}
        )
        assert refused.status_code == 403
    async with client(rig) as http:
        await sign_in(http, "disp")
        no_token = await http.post(f"/console/alarms/{aid}/resolve", data={"outcome": "real"})
        assert no_token.status_code == 403
        wrong = await http.post(
            f"/console/alarms/{aid}/resolve", data={"csrf": "x" * 43, "outcome": "real"}
        )
        assert wrong.status_code == 403
        foreign = await http.post(
            f"/console/alarms/{aid}/resolve",
            headers={"origin": "https://evil.example"},
            data={
                "csrf": csrf_of((await http.get(f"/console/alarms/{aid}")).text),
                "outcome": "real",
            },
        )
        assert foreign.status_code == 403
    assert _state(rig, aid) != "resolved"


async def test_a_dispatcher_reassigns_escalates_and_resolves(rig: Rig) -> None:
    aid = await rig.raise_alarm()
    rig.db.dispose()
    async with client(rig) as http:
        await sign_in(http, "disp")
        token = csrf_of((await http.get(f"/console/alarms/{aid}")).text)
        with rig.db.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO registry_workers (id, name, phone, locale, role, community) "
                "VALUES ('w9', '林芳', '+8613800000009', 'zh-CN', 'worker', 'c-1')"
            )
        moved = await http.post(
            f"/console/alarms/{aid}/reassign",
            data={"csrf": token, "worker": "w9", "note": "nearer"},
        )
        assert moved.status_code == 303
        up = await http.post(f"/console/alarms/{aid}/escalate", data={"csrf": token, "note": ""})
        assert up.status_code == 303
        done = await http.post(
            f"/console/alarms/{aid}/resolve",
            data={"csrf": token, "outcome": "false_alarm", "note": "早餐油烟"},
        )
        assert done.status_code == 303
        again = await http.post(
            f"/console/alarms/{aid}/resolve", data={"csrf": token, "outcome": "nonsense"}
        )
        assert again.status_code == 400
        detail = await http.get(f"/console/alarms/{aid}")
    assert _state(rig, aid) == "resolved"
    with rig.db.connect() as conn:
        kinds = [
            (r.kind, r.actor)
            for r in conn.execute(
                sa.select(alarm_events.c.kind, alarm_events.c.actor).where(
                    alarm_events.c.alarm_id == aid
                )
            )
        ]
        paged = (
            conn.execute(sa.select(outbox.c.worker_id).where(outbox.c.alarm_id == aid))
            .scalars()
            .all()
        )
    assert ("reassigned", "console:disp") in kinds and ("resolved", "console:disp") in kinds
    assert "w9" in paged
    assert "早餐油烟" in detail.text and "console:disp" in detail.text


async def test_kpis_map_and_csv_answer(rig: Rig) -> None:
    await rig.raise_alarm()
    async with client(rig) as http:
        await sign_in(http, "viewer")
        kpis = await http.get("/console/kpis")
        assert kpis.status_code == 200 and "发生数" in kpis.text
        csv = await http.get("/console/kpis/per_day.csv")
        assert csv.status_code == 200 and csv.text.startswith("\ufeff日期 day,发生数 raised")
        assert (await http.get("/console/kpis/nothing.csv")).status_code == 404
        data = (await http.get("/console/map.json")).json()
        assert set(data) >= {"grids", "devices", "alarms", "workers"}
        js = await http.get("/console/assets/leaflet.js")
        assert js.status_code == 200 and "Leaflet" in js.text[:2000]
        english = await http.get("/console/lang/en?next=/console/kpis")
        assert english.status_code == 303
        assert (
            "Raised" in (await http.get("/console/kpis")).text
            or "raised" in (await http.get("/console/kpis")).text
        )


def _state(rig: Rig, aid: int) -> str:
    with rig.db.connect() as conn:
        return str(
            conn.execute(
                sa.select(lifecycle_alarms.c.state).where(lifecycle_alarms.c.alarm_id == aid)
            ).scalar_one()
        )


async def test_sign_out_ends_the_session(rig: Rig) -> None:
    async with client(rig) as http:
        await sign_in(http, "viewer")
        board = await http.get("/console/")
        refused = await http.post("/console/logout", data={"csrf": ""})
        assert refused.status_code == 403
        out = await http.post("/console/logout", data={"csrf": csrf_of(board.text)})
        assert out.status_code == 303 and out.headers["location"] == "/console/login"
        again = await http.get("/console/", headers={"accept": "text/html"})
        assert again.status_code == 303


async def test_the_sign_in_page_says_how_to_make_the_first_account(rig: Rig) -> None:
    with rig.db.begin() as conn:
        conn.exec_driver_sql("DELETE FROM console_users")
    async with client(rig) as http:
        page = await http.get("/console/login")
        assert 'id="no-accounts"' in page.text and "gridalarm cloud user add" in page.text


async def test_the_timeline_shows_the_brigade_status(rig: Rig) -> None:
    aid = await rig.raise_alarm()
    with rig.db.begin() as conn:
        detail = {"kind": "status", "status": "en_route", "eta_s": 240, "brigade_name": "思明消防"}
        append(
            conn,
            [
                Event(
                    aid,
                    "smk-1/smoke-fire",
                    "critical",
                    "brigade_status",
                    "brigade:simming",
                    time.time(),
                    detail,
                )
            ],
        )
    async with client(rig) as http:
        await sign_in(http, "viewer")
        page = await http.get(f"/console/alarms/{aid}")
    assert 'class="kind-brigade_status brigade"' in page.text
    assert "消防状态" in page.text and "en_route" in page.text and "思明消防" in page.text
    assert ">特急<" in page.text and 'data-state="notified"' in page.text


async def test_repeated_wrong_passwords_are_refused_for_a_while(rig: Rig) -> None:
    async with client(rig) as http:
        for _ in range(5):
            assert (await sign_in(http, "disp", "not the password")).status_code == 401
        assert (await sign_in(http, "disp")).status_code == 429


async def test_an_internal_tile_server_from_the_config_is_allowed_on_the_map(rig: Rig) -> None:
    app = FastAPI()
    tiles = "http://tiles.street.gov:8080/{z}/{x}/{y}.png"
    attach_console(
        app, rig.desk, rig.db, public_base_url=BASE, config=ConsoleConfig(tile_url=tiles)
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        await sign_in(http, "viewer")
        page = await http.get("/console/map")
    assert f'data-tiles="{tiles}"' in page.text
    assert (
        "img-src 'self' data: http://tiles.street.gov:8080;"
        in page.headers["content-security-policy"]
    )


async def test_device_grid_and_worker_pages(rig: Rig) -> None:
    aid = await rig.raise_alarm()
    with rig.db.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO devices (device, gateway, type, grid, building, community, heartbeat_s)"
            " VALUES ('smk-1', 'gw-1', 'smoke', 'g-1', 'b-1', 'c-1', 60)"
        )
        conn.exec_driver_sql(
            "INSERT INTO registry_grids (id, community, name, geometry, centroid_lat,"
            " centroid_lon) VALUES ('g-1', 'c-1', '第1网格', '{}', 24.48, 118.09)"
        )
        conn.exec_driver_sql(
            "INSERT INTO registry_workers (id, name, phone, locale, role, community) "
            "VALUES ('w1', '陈丽', '+8613800000001', 'zh-CN', 'worker', 'c-1')"
        )
        conn.exec_driver_sql("INSERT INTO registry_worker_grids VALUES ('w1', 0, 'g-1')")
    async with client(rig) as http:
        await sign_in(http, "viewer")
        device = await http.get("/console/devices/smk-1")
        grid = await http.get("/console/grids/g-1")
        worker = await http.get("/console/workers/w1")
        missing = await http.get("/console/devices/nope")
    assert device.status_code == 200 and f"/console/alarms/{aid}" in device.text
    assert grid.status_code == 200 and "陈丽" in grid.text and "smk-1" in grid.text
    assert worker.status_code == 200 and "g-1" in worker.text
    assert missing.status_code == 404


async def test_a_workers_hazard_report_is_on_the_board_map_and_detail(rig: Rig) -> None:
    report = HazardReport(
        "r" * 20,
        "w1",
        HazardKind.BLOCKED_EXIT,
        note="消防通道被杂物堵塞",
        lat=24.4801,
        lon=118.0902,
        grid="g-1",
        community="c-1",
    )
    aid = await rig.desk.report(report)
    async with client(rig) as http:
        await sign_in(http, "viewer")
        board = await http.get("/console/")
        spots = (await http.get("/console/map.json")).json()["alarms"]
        detail = await http.get(f"/console/alarms/{aid}")
    assert f'id="alarm-{aid}"' in board.text and 'data-grid="g-1"' in board.text
    assert "网格员上报" in board.text
    assert [(s["id"], s["lat"]) for s in spots] == [(aid, 24.4801)]
    assert 'id="report"' in detail.text and "消防通道被杂物堵塞" in detail.text


async def test_big_bodies_are_compressed_for_browsers_that_take_gzip(rig: Rig) -> None:
    async with client(rig) as http:
        await sign_in(http, "viewer")
        packed = await http.get(
            "/console/assets/plotly.min.js", headers={"accept-encoding": "gzip"}
        )
        plain = await http.get(
            "/console/assets/plotly.min.js", headers={"accept-encoding": "identity"}
        )
    assert packed.headers["content-encoding"] == "gzip" and "content-encoding" not in plain.headers
    assert packed.content == plain.content  # httpx decodes it
    assert int(packed.headers["content-length"]) < len(plain.content) / 3


async def test_redirects_stay_inside_the_console(rig: Rig) -> None:
    async with client(rig) as http:
        for target in ("https://evil.example/", "//evil.example/", "/console/\\\\evil", "/other"):
            switched = await http.get("/console/lang/en", params={"next": target})
            assert switched.headers["location"] == "/console/"
        form = await http.get("/console/login", params={"next": "//evil.example/"})
        assert 'name="next" value="/console/"' in form.text


async def test_only_admins_see_the_accounts(rig: Rig) -> None:
    add_user(rig.db, "boss", "an admin password", Role.ADMIN)
    async with client(rig) as http:
        await sign_in(http, "disp")
        assert (await http.get("/console/staff")).status_code == 403
    async with client(rig) as http:
        await sign_in(http, "boss", "an admin password")
        page = await http.get("/console/staff")
    assert page.status_code == 200 and "viewer" in page.text and "argon2" not in page.text
