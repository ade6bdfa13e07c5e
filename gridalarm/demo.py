"""`gridalarm demo`: the whole district, alive, with a scripted morning the crew answers.

The simulators serve real Modbus RTU / ASCII frames on ptys and Modbus TCP on loopback; the
demo gateway reads them exactly as it would read an RS485 line, through its outbox, over MQTT.
The rest of the district's ~1,500 devices come from a light fleet of gateways speaking the
same wire contract (``gridalarm.fleet``). The cloud runs in this process; its messages to grid
workers show on the terminal and on the "phones" page, and simulated workers answer them
through the worker's page (``gridalarm.crew``) while the scripted morning plays
(``gridalarm.morning``). `gridalarm sim list` / `gridalarm sim trigger DEVICE EVENT` work
against it from another terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from cloud.lifecycle.rule_alarms import AlarmChange
from cloud.notify import LinkSigner
from cloud.worker import Cloud, PortInUse, bind, cloud_worker, failure_line
from edge.gateway import run_gateway
from firmware_sim import SimulatorSet
from firmware_sim.control import ControlServer
from firmware_sim.statefile import remove_state, state_path, write_state
from gridalarm import phones
from gridalarm.brokers import BrokerError, BrokerInfo, choose_broker
from gridalarm.crew import Crew, Pace, Scene
from gridalarm.demo_config import (
    CONSOLE_USER,
    GATEWAY_ID,
    console_account,
    console_password,
    demo_cloud_config,
    gateway_yaml,
    link_secret,
    locate,
    place_devices,
    write_text,
)
from gridalarm.fleet import LiveFleet
from gridalarm.kpis import board_kpis
from gridalarm.morning import SMOKE, AlarmWatch, Morning
from gridalarm.state import fresh_start
from gridalarm.traffic import TrafficView, watch_traffic
from rules.devices import DeviceInfo

__all__ = ["DemoOptions", "gateway_yaml", "run_demo"]

logger = logging.getLogger(__name__)

DEFAULT_SIM = Path(__file__).resolve().parent.parent / "firmware_sim" / "scenarios" / "demo.yaml"


@contextlib.asynccontextmanager
async def _control(sims: SimulatorSet) -> AsyncIterator[str]:
    """Serve `gridalarm sim list / trigger` for the demo's simulators."""
    server = ControlServer(sims)
    address = await server.start()
    path = state_path()
    write_state(path, address, sims)
    try:
        yield address
    finally:
        remove_state(path)
        await server.aclose()


@dataclass(frozen=True)
class DemoOptions:
    """What `gridalarm demo` was asked for."""

    broker_url: str | None
    sim_config: Path | None
    state_dir: Path
    duration_s: float | None
    plain: bool
    embedded_broker: bool = False
    http: str = "127.0.0.1:8080"
    speed: float = 1.0
    scenario: bool = True
    keep_state: bool = False
    fleet: bool = True


@dataclass
class _Parts:
    """What `_demo` started, for the tasks that run on it."""

    broker: BrokerInfo
    sims: SimulatorSet
    cloud: Cloud
    view: TrafficView
    watch: AlarmWatch
    book: phones.PhoneBook
    fleet: LiveFleet | None
    signer: LinkSigner  # the cloud's link key: the crew opens alarms as their links would
    shop: tuple[float, float] | None  # where the morning's breakfast shop is


async def _demo(options: DemoOptions, console: Console, web: socket.socket) -> None:
    say = _say(console)
    async with contextlib.AsyncExitStack() as stack:
        parts = await _start(options, say, stack, web)
        async with asyncio.TaskGroup() as tg:
            config_path = options.state_dir / "gateway.yaml"
            gw = tg.create_task(run_gateway(config_path), name="demo.gateway")
            tg.create_task(
                watch_traffic(
                    parts.broker.host, parts.broker.port, parts.view, options.plain, console
                ),
                name="demo.view",
            )
            tasks = [gw, *_extras(options, parts, tg, say)]
            if options.duration_s is not None:
                await asyncio.sleep(options.duration_s)
                for task in tasks:
                    task.cancel()
                await asyncio.wait(tasks)
                raise asyncio.CancelledError  # ends the view, the cloud and the broker in order


def _extras(
    options: DemoOptions, parts: _Parts, tg: asyncio.TaskGroup, say: Callable[[str], None]
) -> list[asyncio.Task[None]]:
    """The fleet, the crew and the scripted morning, as asked."""
    tasks: list[asyncio.Task[None]] = []
    if parts.fleet is not None:
        tasks.append(tg.create_task(parts.fleet.run(), name="demo.fleet"))
    dispatch = parts.cloud.dispatch
    if not options.scenario or dispatch is None:
        return tasks
    pace, scene = Pace(options.speed), Scene()
    crew = Crew(
        parts.book, parts.cloud.db, parts.signer, dispatch.base_url, scene=scene, pace=pace, say=say
    )
    tasks.append(tg.create_task(crew.run(), name="demo.crew"))
    outage = min(parts.fleet.gateways) if parts.fleet is not None and parts.fleet.gateways else None
    morning = Morning(parts.sims, parts.fleet, parts.watch, scene, pace, say, outage, parts.shop)
    tasks.append(tg.create_task(_morning(morning, crew, parts.cloud, say), name="demo.morning"))
    return tasks


async def _morning(morning: Morning, crew: Crew, cloud: Cloud, say: Callable[[str], None]) -> None:
    """Play the morning; once the crew has closed what it brought, say the KPIs."""
    await morning.play()
    await crew.idle.wait()
    kpis = await asyncio.to_thread(board_kpis, cloud.db)
    say(kpis.line())


async def _start(
    options: DemoOptions,
    say: Callable[[str], None],
    stack: contextlib.AsyncExitStack,
    web: socket.socket,
) -> _Parts:
    broker = await stack.enter_async_context(
        choose_broker(options.broker_url, embedded=options.embedded_broker)
    )
    say(f"broker: {broker.url} ({broker.kind})")
    sims = await stack.enter_async_context(
        SimulatorSet.from_config(options.sim_config or DEFAULT_SIM, speed=options.speed)
    )
    control = await stack.enter_async_context(_control(sims))
    say(
        f"simulators: {len(sims.devices())} devices on {len(sims.endpoints())} buses behind "
        f"{GATEWAY_ID}; control at {control} — try: gridalarm sim list"
    )
    state = options.state_dir
    await asyncio.to_thread(write_text, state / "gateway.yaml", gateway_yaml(sims, broker))
    fleet_devices = await asyncio.to_thread(place_devices, sims, state / "district")
    secret = await asyncio.to_thread(link_secret, state)
    config = await asyncio.to_thread(
        demo_cloud_config, broker, state, options.http, secret, options.speed
    )
    view = TrafficView(quiet_gateways={d.gateway for d in fleet_devices})
    cloud = await stack.enter_async_context(
        cloud_worker(config, console=view.notification, web_socket=web)
    )
    password = await asyncio.to_thread(console_password, state)
    await asyncio.to_thread(console_account, cloud.db, password)
    watch, book = AlarmWatch(), phones.PhoneBook()
    _tap(cloud, view, watch, book)
    fleet = _fleet(options, broker, fleet_devices, say)
    sms = "SMS via Twilio" if cloud.dispatch and "sms" in cloud.dispatch.channels else "console"
    say(f"cloud: shipped rules; dispatch to grid workers by {sms}; worker page at "
        f"http://{options.http}/m/<token>")  # fmt: skip
    shop = await asyncio.to_thread(locate, state / "district", SMOKE)
    return _Parts(broker, sims, cloud, view, watch, book, fleet, LinkSigner(secret), shop)


def _fleet(
    options: DemoOptions, broker: BrokerInfo, devices: list[DeviceInfo], say: Callable[[str], None]
) -> LiveFleet | None:
    if not options.fleet or not devices:
        return None
    seqs = options.state_dir / "fleet.json"
    # the embedded broker runs in this process: ~300 more connections would swamp it
    shared = broker.kind == "amqtt"
    mqtt5 = "5" in broker.protocols
    fleet = LiveFleet(devices, broker.host, broker.port, seqs, mqtt5=mqtt5, shared=shared)
    say(
        f"fleet: {fleet.devices} more devices of the district behind {len(fleet.gateways)} gateways"
    )
    return fleet


def _tap(cloud: Cloud, view: TrafficView, watch: AlarmWatch, book: phones.PhoneBook) -> None:
    """Let the view and the morning see each alarm transition, and the phones page each message.

    The web app is already serving; a route added now is found from the next request on."""
    desk_changes = cloud.single.on_changes

    def on_changes(changes: list[AlarmChange]) -> None:
        view.alarms(changes)
        watch.on_changes(changes)
        if desk_changes is not None:
            desk_changes(changes)

    cloud.single.on_changes = on_changes
    if cloud.dispatch is not None:
        phones.tap_channels(cloud.dispatch.channels, book)
        cloud.dispatch.app.include_router(phones.router(book))


def _say(console: Console) -> Callable[[str], None]:
    return lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True)


def run_demo(options: DemoOptions) -> int:
    """Run the demo until Ctrl-C (or the duration); return the exit code.

    2: the web port is taken (checked before anything starts); 3: no broker; 1: a part of
    the cloud failed for good (one line; the log has the details)."""
    console = Console(soft_wrap=True)
    try:  # held from now on and handed to the cloud: nothing else can take it meanwhile
        web = bind(options.http, "pass --http HOST:PORT")
    except PortInUse as err:
        print(f"gridalarm demo: {err}", file=sys.stderr)
        return 2
    options = _introduce(options, console)

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        await _demo(options, console, web)

    try:
        asyncio.run(main())
    except (asyncio.CancelledError, KeyboardInterrupt):
        _say(console)("demo stopped")
    except BrokerError as err:
        print(f"gridalarm demo: broker: {err}", file=sys.stderr)
        return 3
    except PortInUse as err:  # another port of the cloud's (none in the demo's config)
        print(f"gridalarm demo: {err}", file=sys.stderr)
        return 2
    except Exception as err:
        logger.critical("demo stopped: %s", failure_line(err), exc_info=err)
        print(f"gridalarm demo: stopped: {failure_line(err)}", file=sys.stderr)
        return 1
    finally:
        web.close()
    return 0


TABLE_LINES = 34  # the live table (10 devices, header) and the event panel (12 lines)
TABLE_COLUMNS = 80


def _room_for_table(console: Console) -> bool:
    """The live table needs a terminal with room for it; elsewhere one line per message."""
    if not console.is_terminal or console.is_dumb_terminal:
        return False
    return console.height >= TABLE_LINES and console.width >= TABLE_COLUMNS


def _introduce(options: DemoOptions, console: Console) -> DemoOptions:
    """The addresses first, whatever the terminal; then the view and the state it will have."""
    say = _say(console)
    state = _prepare_state(options)  # first: the console's password belongs to the new state
    password = console_password(options.state_dir)
    say(f"console: http://{options.http}/console/  (sign in: {CONSOLE_USER} / {password})")
    say(f"phones:  http://{options.http}{phones.PATH}  (what every worker's phone received)")
    say(state)
    if not options.plain and not _room_for_table(console):
        options = dataclasses.replace(options, plain=True)
    return options


def _prepare_state(options: DemoOptions) -> str:
    """Start fresh unless asked to keep the state; the line that says which."""
    if options.keep_state:
        return f"state: continuing the last run in {options.state_dir} (--keep-state)"
    gone = fresh_start(options.state_dir)
    note = f"; {gone} files of the last run removed" if gone else ""
    return f"state: fresh start in {options.state_dir}{note} (--keep-state continues the last run)"
