"""The console's read models and actions on PostgreSQL: the same code as on SQLite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.console.conftest import client, csrf_of, make_rig, sign_in
from tests.postgres import find_bin, postgres_server
from tests.support import need_service


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    if find_bin() is None:
        need_service("PostgreSQL")
    with postgres_server() as url:
        yield url


async def test_board_detail_actions_map_and_kpis_on_postgres(pg_url: str) -> None:
    async with make_rig(pg_url) as rig:
        aid = await rig.raise_alarm()
        async with client(rig) as http:
            await sign_in(http, "disp")
            board = await http.get("/console/")
            assert f'id="alarm-{aid}"' in board.text
            detail = await http.get(f"/console/alarms/{aid}")
            assert detail.status_code == 200
            done = await http.post(
                f"/console/alarms/{aid}/resolve",
                data={"csrf": csrf_of(detail.text), "outcome": "false_alarm", "note": "油烟"},
            )
            assert done.status_code == 303
            assert (await http.get("/console/map.json")).status_code == 200
            kpis = await http.get("/console/kpis")
            assert kpis.status_code == 200 and "smk-1" in kpis.text  # its false alarm
            csv = await http.get("/console/kpis/false_alarms.csv")
            assert "smk-1,1,1,1.0" in csv.text
