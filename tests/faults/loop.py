"""The whole loop on real parts, for one fault at a time.

Simulated devices (in this process) → ``gridalarm edge run`` → Mosquitto → ``gridalarm cloud
run`` with dispatch → the real twilio client → the Twilio stand-in. The cloud runs under a
supervisor that restarts it after any exit, as systemd does; ``/readyz`` of both its HTTP
servers is polled all along. A test calls ``begin()``, injects its fault and field events,
``heal()``, ``settle()``, ``finish()``, and ``row()`` says how the loop came through.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.pool import NullPool

from cloud.ingest.checkpoint import read_checkpoint
from firmware_sim import SimulatorSet
from gridalarm.brokers import Mosquitto, free_port
from rigs.cloud import cloud_config, district
from rigs.gateway import GatewayProcess, rig_sim_config, sequenced, write_gateway_config
from rigs.standins.twilio_api import TwilioStandin
from tests.faults import ledger
from tests.faults.readiness import ReadyzWatch
from tests.faults.report import Row
from tests.faults.supervisor import Supervisor
from tests.integration.gateway_rig import wait_gateway_ready
from tests.integration.test_cloud_restart import CloudProcess
from tests.integration.test_dispatch import twilio_env
from tests.support import Recorder, until

SETTLE_S = 120.0  # the longest a healed loop may take to deliver what the fault held back
GATEWAY = "gw-t"
FIELD_EVENTS = {
    ("smk-0001", "smoke"): "smk-0001/smoke-fire",
    ("mh-0001", "tilt"): "mh-0001/manhole-tilt",
}
HEALTH_LINE = re.compile(r"cloud\.health: (?P<part>\S+): (?P<what>not ready|ready again)")


class FaultLoop:
    """One running loop and the record of one fault injected into it."""

    def __init__(
        self,
        broker: Mosquitto,
        work: Path,
        twilio: TwilioStandin,
        monkeypatch: pytest.MonkeyPatch,
        **cloud: Any,
    ) -> None:
        self.broker = broker
        self.twilio = twilio
        self.cloud = CloudProcess(work / "cloud")
        self.cloud.dir.mkdir(parents=True)
        self.ops, self.web = free_port(), free_port()
        self.database_url = self._write_cloud(cloud)
        self.db = sa.create_engine(self.database_url, poolclass=NullPool)
        self.supervisor = Supervisor(self.cloud, monkeypatch)
        self.watch = ReadyzWatch([f"http://127.0.0.1:{p}/readyz" for p in (self.ops, self.web)])
        self.gw_dir = work / "gw"
        self.gw: GatewayProcess | None = None
        self.sims: SimulatorSet | None = None
        self.recorder: Recorder | None = None
        self.expected: set[str] = set()
        self.t_fault = self.t_heal = 0.0
        self.t_recovered: float | None = None
        self.log_from = 0
        self.stop_code: int | None = None
        self.problems: list[str] = []

    def _write_cloud(self, overrides: dict[str, Any]) -> str:
        district(self.cloud.dir)  # district/ and lifecycle.yaml
        base = f"http://127.0.0.1:{self.web}"
        config = cloud_config(
            self.broker, self.cloud.dir,
            mqtt={"url": self.broker.url, "client_id": "cloud-faults"},
            metrics_listen=f"127.0.0.1:{self.ops}",
            dispatch={"lifecycle": "lifecycle.yaml", "registry_dir": "district",
                      "http_listen": f"127.0.0.1:{self.web}", "public_base_url": base},
            **overrides,
        )  # fmt: skip
        text = yaml.safe_dump(config.model_dump(mode="json", exclude_none=True))
        (self.cloud.dir / "cloud.yaml").write_text(text, encoding="utf-8")
        return config.database_url

    # -- what a test does ----------------------------------------------------------------
    def begin(self) -> None:
        """The fault starts now."""
        self.t_fault = time.monotonic()
        self.log_from = len(self.cloud.log())

    def field_event(self, device: str, event: str) -> None:
        """Something happens in the field that must become exactly one alarm."""
        assert self.sims is not None
        self.expected.add(FIELD_EVENTS[device, event])
        self.sims.device(device).trigger(event)

    async def live_alarm(self) -> None:
        """A smoke alarm whose first step's SMS has left: its next step is due in 3 s."""
        self.field_event("smk-0001", "smoke")
        await until(lambda: self.twilio.messages, 15, "the first step's SMS")

    async def hold(self, seconds: float) -> None:
        """Keep the fault in place: its length, not a wait for a condition."""
        await asyncio.sleep(seconds)

    async def heal(self, recovered: Callable[[], bool] | None = None) -> None:
        """The fault is over: wait until /readyz is green, the cloud has caught up with the
        gateway, and *recovered* holds (what this fault held back is done)."""
        self.t_heal, wall = time.monotonic(), time.time()

        def whole() -> bool:
            if self.watch.green_since(self.t_heal) is None or not self._caught_up(wall):
                return False
            return recovered is None or recovered()

        if await self._within(whole, SETTLE_S, "the loop to recover"):
            self.t_recovered = time.monotonic()

    async def settle(self) -> None:
        """Wait until every field event's alarm ran its whole escalation and nothing is left
        to send, so that no later message can change the count."""

        def done() -> bool:
            ids = self.alarm_ids()
            if len(ids) < len(self.expected):
                return False
            c = ledger.count_notifications(self.db, ids, self.twilio.messages)
            return c.seen == c.expected and ledger.settled(self.db, ids)

        await self._within(done, SETTLE_S, "every alarm's notifications, and nothing left to send")

    async def finish(self) -> None:
        """Stop the gateway and the cloud (SIGTERM: it must exit 0)."""
        if self.gw is not None:
            await asyncio.to_thread(self.gw.stop)
        self.stop_code = await self.supervisor.stop()
        if self.stop_code != 0:
            self.problems.append(f"the cloud's exit on SIGTERM was {self.stop_code}, not 0")

    async def outcome(
        self,
        number: int,
        fault: str,
        recovered: Callable[[], bool] | None = None,
        *,
        expect_red: bool = True,
        expect_answers: bool = True,
    ) -> Row:
        """The fault is over: heal, settle, finish, and the row (see those and ``row``)."""
        await self.heal(recovered)
        await self.settle()
        await self.finish()
        return self.row(number, fault, expect_red=expect_red, expect_answers=expect_answers)

    # -- what the loop says ----------------------------------------------------------------
    def alarm_ids(self) -> list[int]:
        by_key = ledger.raised(self.db)
        return [by_key[k][0] for k in sorted(self.expected) if by_key.get(k)]

    def published_readings(self) -> set[tuple[str, float]]:
        """(device, event time) of every data message with values the broker has had so far."""
        assert self.recorder is not None
        messages = sequenced(self.recorder.snapshot())
        return {(m["dev"], m["ts"]) for m in messages if m["t"] == "data" and m["values"]}

    def health_lines(self) -> Counter[tuple[str, str]]:
        """(part, "not ready" | "ready again") -> log lines since the fault began."""
        found = HEALTH_LINE.finditer(self.cloud.log()[self.log_from :])
        return Counter((m["part"], m["what"]) for m in found)

    def other_lines_naming(self, text: str) -> list[str]:
        """Log lines since the fault began that name *text*, besides cloud.health's own."""
        lines = self.cloud.log()[self.log_from :].splitlines()
        return [line for line in lines if text in line and "cloud.health:" not in line]

    def row(
        self, number: int, fault: str, *, expect_red: bool = True, expect_answers: bool = True
    ) -> Row:
        """How the loop came through: *expect_red*, /readyz must have said so; while the
        worker runs (*expect_answers*), /readyz must answer (503 is an answer; silence is not)."""
        end = self.t_recovered or time.monotonic()
        alarms = ledger.count_alarms(self.db, self.expected)
        ids = self.alarm_ids()
        notes = ledger.count_notifications(self.db, ids, self.twilio.messages)
        problems = [*alarms.problems, *notes.problems, *self.problems, *self._lost()]
        readyz = self._readyz(end, expect_red, problems)
        silent = self.watch.silent_s(self.t_fault, end)
        if expect_answers and silent:
            problems.append(
                f"/readyz did not answer for {silent:.1f} s: the worker's event loop was blocked"
            )
        if self.t_recovered is None:
            problems.append("not recovered (see the first problem)")
        if not self.supervisor.notify.readies:
            problems.append("the worker never told its supervisor READY=1 (sd_notify)")
        return Row(
            number, fault, alarms, notes, ledger.channel_counts(self.db, self.twilio.messages),
            readyz, self.supervisor.describe(), self._log_cell(problems),
            None if self.t_recovered is None else self.t_recovered - self.t_heal, problems,
        )  # fmt: skip

    def _readyz(self, end: float, expect_red: bool, problems: list[str]) -> str:
        reds = self.watch.red_between(self.t_fault, end)
        reasons = self.watch.reasons(self.t_fault, end)
        if expect_red and not reds:
            problems.append("/readyz stayed 200 through the fault")
        if not expect_red and reds:
            problems.append(f"/readyz went red: {reasons}")
        if not reds:
            return "green throughout"
        span = f"red {reds[-1].at - reds[0].at:.1f} s ({', '.join(sorted(reasons))})"
        return span + (", green after" if self.t_recovered is not None else ", still red")

    def _log_cell(self, problems: list[str]) -> str:
        lines = self.health_lines()
        parts = sorted({part for part, _ in lines})
        for part in parts:
            down, up = lines[part, "not ready"], lines[part, "ready again"]
            if down != 1 or up != 1:
                problems.append(f"log: {part} 'not ready' {down}x, 'ready again' {up}x (want 1, 1)")
        cells = [f"{p} {lines[p, 'not ready']}/{lines[p, 'ready again']}" for p in parts]
        return ", ".join(cells) or "none"

    def _caught_up(self, since: float) -> bool:
        """The cloud has every sequence number the gateway had published a moment ago (its
        status written after *since*, wall clock, with nothing left in its outbox)."""
        status = self.gw.fresh_status(since) if self.gw is not None else {}
        if not status or status.get("outbox_depth") != 0:
            return False
        seen = (read_checkpoint(self.db, "dedup") or {}).get(GATEWAY, {})
        return int(seen.get("w", 0)) >= int(status["last_seq"])

    def _lost(self) -> list[str]:
        seen = (read_checkpoint(self.db, "dedup") or {}).get(GATEWAY, {})
        if seen.get("l") or seen.get("r"):
            return [f"sequence numbers missing at the cloud: {seen}"]
        return []

    async def _within(self, condition: Callable[[], bool], timeout_s: float, what: str) -> bool:
        """until(), but a timeout becomes a problem in the row instead of ending the test."""
        try:
            await until(condition, timeout_s, what, step_s=0.2)
        except pytest.fail.Exception as err:
            self.problems.append(str(err))
            return False
        return True

    def _keep_answers(self) -> None:
        """Every /readyz answer as JSON lines beside the cloud's log, seconds from the fault."""
        lines = [
            json.dumps({"t": round(a.at - self.t_fault, 2), "url": a.url, "status": a.status,
                        "parts": a.parts})
            for a in self.watch.answers
        ]  # fmt: skip
        (self.cloud.dir / "readyz.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")

    # -- start and stop ----------------------------------------------------------------------
    async def start(self, stack: contextlib.AsyncExitStack) -> None:
        stack.callback(self.db.dispose)
        self.supervisor.start()
        stack.push_async_callback(self.supervisor.stop)
        stack.callback(self._keep_answers)  # runs after the watch has stopped
        stack.enter_context(self.watch)
        t0, wall = time.monotonic(), time.time()
        await until(lambda: self.watch.green_since(t0), 60, "the cloud's /readyz to answer 200")
        recorder = Recorder(self.broker.port, f"ga/v1/{GATEWAY}/#", client_id="faults-watch")
        stack.callback(recorder.close)
        self.recorder = recorder
        self.sims = await stack.enter_async_context(SimulatorSet.from_config(rig_sim_config()))
        self.gw = GatewayProcess(write_gateway_config(self.sims, self.broker, self.gw_dir))
        self.gw.start()
        stack.callback(self.gw.stop)
        await wait_gateway_ready(self.gw, recorder, devices=5)
        await until(
            lambda: self._caught_up(wall), 30, "the cloud to take in the gateway's messages"
        )


@contextlib.asynccontextmanager
async def fault_loop(
    broker: Mosquitto, work: Path, monkeypatch: pytest.MonkeyPatch, **cloud: Any
) -> AsyncIterator[FaultLoop]:
    """A running loop; *cloud* overrides cloud.yaml fields (database_url, sink)."""
    with TwilioStandin() as twilio:
        twilio_env(monkeypatch, twilio)
        loop = FaultLoop(broker, work, twilio, monkeypatch, **cloud)
        async with contextlib.AsyncExitStack() as stack:
            try:
                await loop.start(stack)
                yield loop
            except BaseException:
                print(loop.cloud.log()[-6000:])
                raise
