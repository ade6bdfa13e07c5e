"""The demo's simulated grid workers: they read their phones and answer through the real page.

Each message a worker's phone gets (the ``PhoneBook``) names its alarms. For an alarm nobody
of the crew holds yet, the worker who got it takes it, goes there and, once the scene allows
(the scripted morning says when a device is all clear), resolves it — each step a form post
to the worker's page at a signed link, exactly as a phone would send it. A summary message
links only its first alarm, so the crew signs its own link for the others with the demo's
link secret: what the worker would open from the alarm list on the phone.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from sqlalchemy.engine import Engine as Database

from cloud.lifecycle.board import BoardRow, list_board
from cloud.notify import LinkSigner
from cloud.notify.links import link
from gridalarm.phones import Delivery, PhoneBook

logger = logging.getLogger(__name__)

LINK_TTL_S = 3600.0


@dataclass(frozen=True, slots=True)
class Pace:
    """Script seconds to real seconds: the morning runs *speed* times faster than life."""

    speed: float = 1.0

    async def wait(self, script_s: float) -> None:
        await asyncio.sleep(script_s / self.speed)


@dataclass(frozen=True, slots=True)
class Habits:
    """How long a worker takes for each step, in script seconds."""

    take_s: float = 30.0
    travel_s: float = 90.0
    on_site_s: float = 60.0


@dataclass(frozen=True, slots=True)
class Hazard:
    """A hazard a worker reports from the phone after handling an alarm nearby."""

    kind: str  # cloud.lifecycle.HazardKind
    note: str
    lat: float
    lon: float


@dataclass
class Scene:
    """What the scripted morning tells the crew: when a device is all clear, and the outcome
    a worker on the spot would give (default: real; device and gateway faults as faults)."""

    clear: dict[str, asyncio.Event] = field(default_factory=dict)
    outcomes: dict[str, tuple[str, str]] = field(default_factory=dict)  # device -> (outcome, note)
    hazards: dict[str, Hazard] = field(default_factory=dict)  # device -> found on the spot

    def all_clear(self, device: str) -> asyncio.Event:
        return self.clear.setdefault(device, asyncio.Event())

    async def wait_clear(self, key: str) -> None:
        """Until the script says *key* (a device or gateway) is all clear; at once if unscripted."""
        if key in self.clear:
            await self.clear[key].wait()

    def outcome(self, row: BoardRow) -> tuple[str, str]:
        if row.device in self.outcomes:
            return self.outcomes[row.device]
        if row.category in ("device_fault", "gateway"):
            return "device_fault", "设备已检修 / device checked"
        return "real", "已到场处置 / handled on site"


class Crew:
    """The simulated workers of the demo district."""

    def __init__(
        self,
        book: PhoneBook,
        db: Database,
        signer: LinkSigner,
        base_url: str,
        *,
        scene: Scene,
        pace: Pace,
        habits: Habits | None = None,
        say: Callable[[str], None] = lambda _line: None,
    ) -> None:
        self._book, self._db, self._signer, self._base = book, db, signer, base_url
        self._scene, self._pace, self._habits, self._say = scene, pace, habits or Habits(), say
        self._claimed: set[int] = set()
        self._busy = 0
        self.idle = asyncio.Event()  # no alarm in hand
        self.idle.set()
        self.resolved: list[int] = []

    async def run(self) -> None:
        """Answer every alarm the phones get, each in its own named task."""
        inbox = self._book.listen()
        async with httpx.AsyncClient(timeout=10.0) as http, asyncio.TaskGroup() as tg:
            while True:
                delivery = await inbox.get()
                for alarm_id in self._new(delivery):
                    self._busy += 1
                    self.idle.clear()
                    tg.create_task(
                        self._handle(http, delivery.worker_id, alarm_id),
                        name=f"demo.crew[{alarm_id}]",
                    )

    def _new(self, delivery: Delivery) -> list[int]:
        fresh = [a for a in delivery.alarm_ids if a not in self._claimed]
        self._claimed.update(fresh)
        return fresh

    async def _handle(self, http: httpx.AsyncClient, worker: str, alarm_id: int) -> None:
        try:
            row = await asyncio.to_thread(_board_row, self._db, alarm_id)
            if row is None or row.notify == "board" or row.holder is not None:
                return
            url = self._link(worker, alarm_id)
            await self._pace.wait(self._habits.take_s)
            if not await self._act(http, url, worker, alarm_id, {"action": "take"}):
                return
            await self._pace.wait(self._habits.travel_s)
            await self._act(http, url, worker, alarm_id, {"action": "arrive"})
            await self._scene.wait_clear(row.device or row.gateway)
            await self._pace.wait(self._habits.on_site_s)
            outcome, note = self._scene.outcome(row)
            form = {"action": "resolve", "outcome": outcome, "note": note}
            if await self._act(http, url, worker, alarm_id, form):
                self.resolved.append(alarm_id)
                hazard = self._scene.hazards.pop(row.device or "", None)  # reported once
                if hazard is not None:
                    await self._report(http, url, worker, hazard)
        except Exception:  # one worker's mishap must not end the demo
            logger.exception("crew: alarm %d, worker %s: gave up", alarm_id, worker)
        finally:
            self._busy -= 1
            if not self._busy:
                self.idle.set()

    def _link(self, worker: str, alarm_id: int) -> str:
        expires = datetime.fromtimestamp(datetime.now(UTC).timestamp() + LINK_TTL_S, UTC)
        return link(self._base, self._signer.make(worker, str(alarm_id), expires))

    async def _act(
        self, http: httpx.AsyncClient, url: str, worker: str, alarm_id: int, form: dict[str, str]
    ) -> bool:
        response = await http.post(f"{url}/action", data=form)
        done = response.status_code == httpx.codes.SEE_OTHER
        what = form["action"] + (f" ({form['outcome']})" if "outcome" in form else "")
        if done:
            self._say(f"WORKER {worker} {what} alarm {alarm_id}")
        else:
            logger.info(
                "crew: alarm %d: %s by %s: HTTP %d", alarm_id, what, worker, response.status_code
            )
        return done

    async def _report(self, http: httpx.AsyncClient, url: str, worker: str, h: Hazard) -> None:
        """Report *h* from the phone page's form (its id is made on the phone, as the page does)."""
        await self._pace.wait(self._habits.on_site_s)
        form = {
            "report_id": secrets.token_urlsafe(16), "kind": h.kind, "note": h.note,
            "lat": str(h.lat), "lon": str(h.lon),
        }  # fmt: skip
        # multipart, as the page's form sends it (an empty photo field: no photo taken)
        files = {"photos": ("", b"", "application/octet-stream")}
        response = await http.post(f"{url}/report", data=form, files=files)
        if response.status_code == httpx.codes.SEE_OTHER:
            self._say(f"WORKER {worker} reports a hazard: {h.kind} — {h.note}")
        else:
            logger.warning("crew: hazard report by %s: HTTP %d", worker, response.status_code)


def _board_row(db: Database, alarm_id: int) -> BoardRow | None:
    return next((r for r in list_board(db, limit=1000) if r.id == alarm_id), None)
