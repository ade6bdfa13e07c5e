"""One cloud worker's alarm desk for the multi-worker lifecycle tests (no tests here).

Run as a process so a test can kill it -9 mid-run:
``python -m tests.cloud.lifecycle_worker DB_URL WORKER_ID TWILIO_URL`` prints ``ready`` once
its desk is open and runs until killed. Each worker heartbeats in ``cluster_workers``; the
desks judge liveness from it, as scaled workers do.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
import threading
import zlib
from collections.abc import AsyncIterator, Iterator

from sqlalchemy.engine import Engine

from cloud.cluster.leases import metadata as cluster_metadata
from cloud.cluster.members import heartbeat, live_workers
from cloud.lifecycle import (
    AlarmDesk,
    AlarmView,
    DeliveryError,
    LifecycleConfig,
    OutboundMessage,
    StepRequest,
    Target,
    TargetKind,
)
from cloud.notify import ChannelError, ChannelKind, Message, Recipient, TwilioSettings, TwilioSms
from tests.cloud.test_lifecycle_fixtures import config

SID = "AC" + "7" * 32
TOKEN = "multi-worker-auth-token-0123456"
STEP_WAIT_S = 0.4  # between the chain's steps
SWEEP_S = 0.5
BEAT_S = 0.2
LIVE_WITHIN_S = 1.5  # a worker silent this long is dead
STEPS = 4  # per alarm: 2 nearest, 1 more nearest, the supervisor, the commander
MESSAGES_PER_ALARM = 5


def desk_config() -> LifecycleConfig:
    steps = [
        {"wait_s": 0, "target": "next_nearest"},
        {"wait_s": STEP_WAIT_S, "target": "next_nearest"},
        {"wait_s": STEP_WAIT_S, "target": "grid_supervisor"},
        {"wait_s": STEP_WAIT_S, "target": "duty_commander"},
    ]
    outbox = {"channels": ["sms"], "retries_per_channel": 8, "backoff_base_s": 0.05,
              "backoff_max_s": 0.5}  # fmt: skip
    return config(policies__standard={"steps": steps}, outbox=outbox)


class DeviceDispatcher:
    """Test double of the Dispatcher protocol: each device has its own people, so no two
    alarms share a person (no summaries) and every message id is known in advance."""

    def targets(self, alarm: AlarmView, step: StepRequest) -> list[Target]:
        dev = alarm.device
        if step.target is TargetKind.NEXT_NEAREST:
            free = [f"{dev}-n{i}" for i in range(1, 4) if f"{dev}-n{i}" not in step.exclude]
            return [Target(w) for w in free[: step.count]]
        role = "sup" if step.target is TargetKind.GRID_SUPERVISOR else "cmd"
        return [Target(f"{dev}-{role}")]


def expected_ids(alarm_id: int, device: str) -> set[str]:
    """The message ids one alarm's chain sends (critical: two nearest at first)."""
    people = [(0, "n1"), (0, "n2"), (1, "n3"), (2, "sup"), (3, "cmd")]
    return {f"a{alarm_id}-s{seq}-{device}-{who}" for seq, who in people}


class TwilioSender:
    """The lifecycle's Sender over the real TwilioSms client (the SMS channel alone)."""

    def __init__(self, twilio_url: str) -> None:
        settings = TwilioSettings(account_sid=SID, auth_token=TOKEN, from_number="+15005550006",
                                  api_url=twilio_url, timeout_s=10.0)  # fmt: skip
        self.sms = TwilioSms(settings)

    async def send(self, m: OutboundMessage) -> str | None:
        phone = f"+86138{zlib.crc32(m.worker_id.encode()) % 10**8:08d}"
        msg = Message(id=m.message_id, alarm_id=",".join(map(str, m.alarm_ids)),
                      recipient=Recipient(m.worker_id, m.worker_id, phone),
                      channel=ChannelKind.SMS, text=m.text, link=m.link)  # fmt: skip
        try:
            return (await self.sms.send(msg)).provider_id
        except ChannelError as err:
            raise DeliveryError(err.reason, retryable=err.retryable) from err


def beat(db: Engine, worker: str) -> None:
    with db.begin() as conn:
        heartbeat(conn, worker)


@contextlib.contextmanager
def heartbeats(db: Engine, worker: str) -> Iterator[None]:
    """The worker's heartbeat, in a thread of its own, stopped and joined on exit."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(BEAT_S):
            beat(db, worker)

    beat(db, worker)  # alive before its first claim
    thread = threading.Thread(target=run, name=f"heartbeat[{worker}]")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextlib.asynccontextmanager
async def worker_desk(url: str, worker: str, twilio_url: str) -> AsyncIterator[AlarmDesk]:
    """An open desk that sweeps and heartbeats, as one scaled cloud worker runs it."""
    sender = TwilioSender(twilio_url)
    desk = AlarmDesk(
        url, desk_config(), dispatcher=DeviceDispatcher(), sender=sender, instance=worker,
        worker_id=worker, sweep_s=SWEEP_S,
        live_workers=functools.partial(live_workers, within_s=LIVE_WITHIN_S),
    )  # fmt: skip
    cluster_metadata.create_all(desk.db)
    try:
        with heartbeats(desk.db, worker):
            async with desk:
                yield desk
    finally:
        sender.sms.close()


async def main(url: str, worker: str, twilio_url: str) -> None:
    async with worker_desk(url, worker, twilio_url):
        print("ready", flush=True)
        await asyncio.Event().wait()  # until killed


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
