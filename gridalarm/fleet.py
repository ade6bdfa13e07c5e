"""The rest of the district, alive: a light fleet of gateways speaking the wire contract.

The demo serves a handful of devices on real buses behind a real gateway; the other ~1,500 of
the district come from here, so the console shows a living district rather than 1,500
"offline". Each fleet gateway is its own MQTT client (so its status has its own birth and last
will), numbers its messages with its own sequence (kept in ``fleet.json`` across runs), and
reports its devices as the gateway's poller would: by exception beyond the profile's
deadbands and at each device's heartbeat (``replay.fleet_models``: the synthetic fleet's
device models and reporter). A gateway can lose its uplink for a while: it keeps what it
polls meanwhile and, back online, sends the backlog in sequence order with the original
event times — the catch-up the real gateway's outbox does. Given the nodes of a clustered broker,
a gateway whose connection fails moves on to the next node, as the real gateway's uplink does.

Cost: a poll per device per ``poll_s`` and a message per device per heartbeat; ~1,500 devices
at a 300 s heartbeat are a few messages a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt

from replay.fleet_models import (
    PROFILES,
    Model,
    Overrides,
    Report,
    Reporter,
    Weather,
    ebike_model,
    flood_model,
    manhole_model,
    smoke_model,
)
from rules.devices import DeviceInfo
from wire import DataMessage, EventMessage, GatewayStatus, Quality, encode
from wire.topics import data_topic, event_topic, status_topic

logger = logging.getLogger(__name__)

RECONNECT_S = 2.0  # a dropped fleet gateway reconnects after about this long (jittered)

SOFTWARE = "gridalarm-demo-fleet"
FIRST_POLLS_S = 5.0
CONNECTING = 16  # gateways connecting at once: a burst of 300 handshakes starves a small broker


def _model(device: DeviceInfo, rng: random.Random, now: float) -> Model:
    dry = Weather(())  # the scripted morning's rain falls on the real gauges only
    if device.type == "smoke":
        return smoke_model(rng)
    if device.type == "ebike":
        return ebike_model([], rng.randrange(5000), int(now - 86400))
    if device.type == "manhole":
        return manhole_model(rng, dry, 1.0)
    return flood_model(rng, dry, 1.0)


@dataclass
class _Device:
    info: DeviceInfo
    model: Model
    reporter: Reporter


@dataclass
class FleetGateway:
    """One fleet gateway: its devices, its sequence and, while its uplink is down, its backlog."""

    id: str
    devices: list[_Device]
    seq: int = 0
    backlog: list[tuple[str, bytes]] = field(default_factory=list)
    uplink: asyncio.Event = field(default_factory=asyncio.Event)
    down: asyncio.Event = field(default_factory=asyncio.Event)
    caught_up: asyncio.Event = field(default_factory=asyncio.Event)

    def poll(self, now: float) -> list[tuple[str, bytes]]:
        """Poll every device once; the messages it would send, numbered."""
        out: list[tuple[str, bytes]] = []
        for d in self.devices:
            reports: list[Report] = []
            d.reporter.poll(now, d.model(now), reports)
            out += [self._message(d.info, r) for r in reports]
        return out

    def _message(self, info: DeviceInfo, r: Report) -> tuple[str, bytes]:
        self.seq += 1
        ts = round(r.ts, 3)
        if r.event:
            event = EventMessage(
                self.id, info.device, self.seq, ts, r.event, r.active, values=r.values
            )
            return event_topic(self.id, info.device), encode(event)
        quality = Quality.COMM_ERROR if r.comm_error else Quality.GOOD
        data = DataMessage(self.id, info.device, self.seq, ts, quality, values=r.values)
        return data_topic(self.id, info.device), encode(data)

    def status(self, state: str, now: float) -> bytes:
        devices = len(self.devices) if state == "online" else 0
        return encode(GatewayStatus(self.id, state, round(now, 3), SOFTWARE, devices))  # type: ignore[arg-type]


def _scripted(model: Model, overrides: Overrides) -> Model:
    """*model* with a scripted incident's values laid over it while the incident lasts."""

    def poll(t: float) -> dict[str, float | int | bool]:
        values = model(t)
        _active, frame = overrides.at(t)
        return {**values, **frame} if frame else values

    return poll


def build_fleet(
    devices: list[DeviceInfo],
    seqs: dict[str, int],
    now: float,
    incidents: Mapping[str, Overrides] | None = None,
) -> list[FleetGateway]:
    """One gateway per gateway id of *devices*, continuing the sequences in *seqs*; the
    devices named in *incidents* read what their scripted incidents say."""
    by_gateway: dict[str, list[_Device]] = {}
    for n, info in enumerate(sorted(devices, key=lambda d: d.device)):
        rng = random.Random(n)
        model = _model(info, rng, now)
        if incidents and info.device in incidents:
            model = _scripted(model, incidents[info.device])
        # nothing reported yet: the first poll sends a full reading of every device
        reporter = Reporter(PROFILES[info.type], info.heartbeat_s, model(now), now - 1e9)
        by_gateway.setdefault(info.gateway, []).append(_Device(info, model, reporter))
    return [FleetGateway(gw, devs, seqs.get(gw, 0)) for gw, devs in sorted(by_gateway.items())]


class LiveFleet:
    """Runs the fleet gateways against a broker until cancelled; ``cut_uplink`` for outages."""

    def __init__(
        self,
        devices: list[DeviceInfo],
        host: str,
        port: int,
        seq_file: Path,
        *,
        poll_s: float = 60.0,
        mqtt5: bool = False,
        shared: bool = False,
        cluster: Sequence[tuple[str, int]] = (),
        incidents: Mapping[str, Overrides] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """*shared*: one connection for every gateway (a small broker that cannot hold ~300
        clients); each gateway still numbers its own messages and says online and offline
        itself, but no last will stands for it. *cluster*: the other nodes of *host*:*port*'s
        broker; the gateways start spread over the nodes and a gateway whose connection fails
        tries the next one. *incidents*: scripted values of some devices (``build_fleet``)."""
        self._seq_file = seq_file
        self._brokers = [(host, port), *cluster]
        self._poll_s, self._mqtt5, self._clock = poll_s, mqtt5, clock
        self._shared: aiomqtt.Client | None = None
        self._share = shared
        fleet = build_fleet(devices, _read_seqs(seq_file), clock(), incidents)
        self.gateways = {g.id: g for g in fleet}
        # gateway -> the index of its node in [host:port, *cluster]
        self.broker = {g.id: n % len(self._brokers) for n, g in enumerate(fleet)}
        self.devices = len(devices)
        self.published = 0
        self._connecting = asyncio.Semaphore(CONNECTING)
        self._back_at: dict[str, float] = {}
        self._until = math.inf

    def cut_uplink(self, gateway: str, for_s: float) -> None:
        """*gateway* loses its uplink now for *for_s* seconds, then catches up."""
        self._back_at[gateway] = self._clock() + for_s
        self.gateways[gateway].caught_up.clear()
        self.gateways[gateway].down.set()

    async def run(self, until: float | None = None) -> None:
        """Every gateway in one TaskGroup; the sequences are saved on the way out.

        With *until* (a time of the clock) the gateways poll no more from then on: each sends
        what it has left, and the run ends once all have."""
        self._until = math.inf if until is None else until
        try:
            async with contextlib.AsyncExitStack() as stack:
                if self._share:
                    self._shared = await stack.enter_async_context(self._client("fleet", None))
                    # every gateway publishes on it at once: many calls in flight are normal
                    self._shared.pending_calls_threshold = 10 * len(self.gateways)
                await self._gateways()
        finally:
            self.save()

    async def _gateways(self) -> None:
        async with asyncio.TaskGroup() as tg:
            saver = tg.create_task(self._save_every(30.0), name="demo.fleet.seqs")
            gateways = []
            for n, gw in enumerate(self.gateways.values()):
                # the first polls within seconds (the console fills at once), then spread
                offset = min(self._poll_s, FIRST_POLLS_S) * n / max(1, len(self.gateways))
                name = f"demo.fleet[{gw.id}]"
                gateways.append(tg.create_task(self._gateway(gw, offset), name=name))
            await asyncio.wait(gateways)  # a failing one cancels the group, and this wait
            saver.cancel()

    def save(self) -> None:
        seqs = {g.id: g.seq for g in self.gateways.values()}
        self._seq_file.write_text(json.dumps(seqs, sort_keys=True), encoding="utf-8")

    async def _save_every(self, period_s: float) -> None:
        while True:
            await asyncio.sleep(period_s)
            await asyncio.to_thread(self.save)

    async def _gateway(self, gw: FleetGateway, offset_s: float) -> None:
        next_poll = self._clock() + offset_s
        while next_poll < self._until or gw.backlog:
            try:
                next_poll = await self._session(gw, next_poll)
            except aiomqtt.MqttError as err:
                if self._shared is not None:
                    raise  # the one shared connection: nothing of ours can reopen it
                # a real gateway's uplink drops too: it keeps polling and catches up in order,
                # on the next node of a cluster
                self.broker[gw.id] = (self.broker[gw.id] + 1) % len(self._brokers)
                logger.warning("fleet %s: uplink lost (%s); reconnecting", gw.id, err)
                self._back_at[gw.id] = self._clock() + RECONNECT_S * (0.5 + random.random())
                next_poll = await self._offline(gw, next_poll)

    async def _session(self, gw: FleetGateway, next_poll: float) -> float:
        """One connection of *gw*: catch up, serve until the uplink is cut; the next poll."""
        async with contextlib.AsyncExitStack() as stack:
            client = self._shared
            if client is None:
                async with self._connecting:
                    will = gw.status("offline", self._clock())
                    broker = self._brokers[self.broker[gw.id]]
                    client = await stack.enter_async_context(self._client(gw.id, will, broker))
            await _publish_qos1(
                client, status_topic(gw.id), gw.status("online", self._clock()), True
            )
            for topic, payload in gw.backlog:  # the catch-up, in sequence order
                await self._publish(client, topic, payload)
            if gw.backlog:
                logger.info("fleet %s: caught up %d messages", gw.id, len(gw.backlog))
            gw.backlog.clear()  # only once all of it went: after a drop it goes again, same seqs
            gw.caught_up.set()
            next_poll = await self._serve(client, gw, next_poll)
            if not gw.down.is_set():
                return next_poll  # the run is over: leave as a killed load generator would
            # what the broker's last will would say once it noticed the silence
            await _publish_qos1(
                client, status_topic(gw.id), gw.status("offline", self._clock()), True
            )
        return await self._offline(gw, next_poll)

    def _client(
        self, name: str, offline: bytes | None, broker: tuple[str, int] | None = None
    ) -> aiomqtt.Client:
        """A connection for gateway *name* (to *broker*, by default the first), its last will
        the *offline* status."""
        host, port = broker or self._brokers[0]
        will = None if offline is None else aiomqtt.Will(status_topic(name), offline, 1, True)
        protocol = aiomqtt.ProtocolVersion.V5 if self._mqtt5 else aiomqtt.ProtocolVersion.V311
        return aiomqtt.Client(
            host, port, identifier=f"gridalarm-fleet-{name}", will=will,
            protocol=protocol, keepalive=60,
        )  # fmt: skip

    async def _publish(self, client: aiomqtt.Client, topic: str, payload: bytes) -> None:
        await _publish_qos1(client, topic, payload, False)
        self.published += 1

    async def _serve(self, client: aiomqtt.Client, gw: FleetGateway, next_poll: float) -> float:
        """Poll and publish until the uplink is cut or the run is over; return when the next
        poll is due."""
        while next_poll < self._until:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation, and
            # one of 321 gateways that misses Ctrl-C keeps the whole demo from stopping
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, next_poll - self._clock())):
                    await gw.down.wait()
            if gw.down.is_set():
                return next_poll
            batch = gw.poll(self._clock())
            next_poll += self._poll_s
            for i, (topic, payload) in enumerate(batch):
                try:
                    await self._publish(client, topic, payload)
                except aiomqtt.MqttError:
                    gw.backlog += batch[i:]  # numbered already: they go out on reconnect
                    raise
        return next_poll

    async def _offline(self, gw: FleetGateway, next_poll: float) -> float:
        """Keep polling into the backlog until the uplink is back."""
        back_at = self._back_at.pop(gw.id, self._clock())
        while (now := self._clock()) < back_at:
            if next_poll <= now and next_poll < self._until:
                gw.backlog += gw.poll(now)
                next_poll += self._poll_s
            wake = back_at if next_poll >= self._until else min(next_poll, back_at)
            await asyncio.sleep(wake - now)
        gw.down.clear()
        return next_poll


async def _publish_qos1(client: aiomqtt.Client, topic: str, payload: bytes, retain: bool) -> None:
    """Publish at QoS 1 without losing a cancellation on the way.

    aiomqtt waits for the acknowledgement with 3.11's ``asyncio.wait_for``, which returns the
    result and drops a cancellation that arrives as the acknowledgement does (fixed in 3.12).
    The task still counts the request, so it is raised here: otherwise a gateway that
    missed it polls on and the fleet never stops."""
    await client.publish(topic, payload, qos=1, retain=retain)
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _read_seqs(path: Path) -> dict[str, int]:
    """The sequences a previous run reached (none: start at 1)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}
