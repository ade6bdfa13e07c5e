"""`gridalarm demo`: simulated field devices → a real gateway → a broker, shown live.

The simulators serve real Modbus RTU / ASCII frames on ptys and Modbus TCP on loopback; the
gateway reads them exactly as it would read an RS485 line, through its outbox, over MQTT.
`gridalarm sim list` / `gridalarm sim trigger DEVICE EVENT` work against it from another
terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import yaml
from rich.console import Console

from cloud.cli import DEMO_DATABASE
from cloud.config import CloudConfig, resolve
from cloud.lifecycle.rule_alarms import AlarmChange
from cloud.registry import write_demo_district
from cloud.worker import PortInUse, bind, cloud_worker, failure_line
from edge.gateway import run_gateway
from firmware_sim import SimulatorSet
from firmware_sim.control import ControlServer
from firmware_sim.statefile import remove_state, state_path, write_state
from gridalarm.brokers import BrokerError, BrokerInfo, choose_broker
from gridalarm.traffic import TrafficView, watch_traffic
from rules.devices_csv import read_devices_csv, write_devices_csv

logger = logging.getLogger(__name__)

DEFAULT_SIM = Path(__file__).resolve().parent.parent / "firmware_sim" / "scenarios" / "demo.yaml"
PROFILE_OF = {"rtu": "{type}", "tcp": "{type}", "ascii": "{type}-ascii"}


GATEWAY_ID = "gw-demo"


def gateway_yaml(sims: SimulatorSet, broker: BrokerInfo, gateway_id: str = GATEWAY_ID) -> str:
    """A gateway config that reads every simulated device, as an installer would write it."""
    buses = []
    for ep in sims.endpoints():
        if ep.transport == "tcp":
            host, port = ep.address.rsplit(":", 1)
            buses.append({"id": ep.bus, "kind": "tcp", "host": host, "port": int(port)})
        else:
            protocol = "ascii" if ep.transport == "ascii" else "modbus-rtu"
            buses.append({"id": ep.bus, "kind": "serial", "protocol": protocol, "port": ep.address})
    devices = [
        {
            "id": d.id,
            "bus": d.bus,
            "unit": d.unit,
            "profile": PROFILE_OF[d.transport].format(type=d.type),
            "poll_interval_s": 0.5,
            "heartbeat_s": 30,
        }
        for d in sims.devices()
    ]
    config = {
        "gateway_id": gateway_id,
        "mqtt": {"url": broker.url, "protocol": "5" if "5" in broker.protocols else "3.1.1"},
        "outbox": {"path": "outbox.sqlite"},
        "state_dir": ".",
        "buses": buses,
        "devices": devices,
    }
    body: str = yaml.safe_dump(config, sort_keys=False)
    return "# Written by `gridalarm demo` from the simulators it started.\n" + body


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


async def _demo(options: DemoOptions, console: Console, web: socket.socket) -> None:
    async with contextlib.AsyncExitStack() as stack:
        broker = await stack.enter_async_context(
            choose_broker(options.broker_url, embedded=options.embedded_broker)
        )
        console.print(f"broker: {broker.url} ({broker.kind})")
        sims = await stack.enter_async_context(
            SimulatorSet.from_config(options.sim_config or DEFAULT_SIM)
        )
        control = await stack.enter_async_context(_control(sims))
        console.print(
            f"simulators: {len(sims.devices())} devices on {len(sims.endpoints())} buses; "
            f"control at {control} — try: gridalarm sim list"
        )
        config_path = options.state_dir / "gateway.yaml"
        await asyncio.to_thread(_write, config_path, gateway_yaml(sims, broker))
        console.print(f"gateway config: {config_path}")
        view = TrafficView()
        config = await asyncio.to_thread(
            demo_cloud_config, sims, broker, options.state_dir, options.http
        )
        cloud = await stack.enter_async_context(
            cloud_worker(config, console=view.notification, web_socket=web)
        )
        desk_changes = cloud.ingest.on_changes

        def show_and_dispatch(changes: list[AlarmChange]) -> None:
            view.alarms(changes)
            if desk_changes is not None:
                desk_changes(changes)

        cloud.ingest.on_changes = show_and_dispatch
        sms = "SMS via Twilio" if cloud.dispatch and "sms" in cloud.dispatch.channels else "console"
        console.print(
            f"cloud: shipped rules; dispatch to grid workers by {sms}; worker page at "
            f"http://{options.http}/m/<token> (each message carries its link)"
        )
        async with asyncio.TaskGroup() as tg:
            gw = tg.create_task(run_gateway(config_path), name="demo.gateway")
            watch = tg.create_task(
                watch_traffic(broker.host, broker.port, view, options.plain, console),
                name="demo.view",
            )
            if options.duration_s is not None:
                await asyncio.sleep(options.duration_s)
                gw.cancel()
                await asyncio.wait({gw})
                watch.cancel()


def demo_cloud_config(
    sims: SimulatorSet, broker: BrokerInfo, state_dir: Path, http: str
) -> CloudConfig:
    """A cloud for the demo: the fictional demo district (9 communities, 150 grids, ~200
    workers on shifts), the simulated devices placed in it behind the demo gateway, the shipped
    rules and lifecycle, SQLite, and the workers' web page on *http*."""
    district = state_dir / "district"
    write_demo_district(district)
    devices = read_devices_csv(
        (district / "devices.csv").read_text(encoding="utf-8"), "devices.csv"
    )
    simulated = {d.id for d in sims.devices()}
    placed = [
        dataclasses.replace(d, gateway=GATEWAY_ID, heartbeat_s=30.0) if d.device in simulated else d
        for d in devices
    ]
    _write(district / "devices.csv", write_devices_csv(placed))
    config = CloudConfig.model_validate(
        {
            "mqtt": {
                "url": broker.url,
                "client_id": "gridalarm-demo-cloud",
                "protocol": "5" if "5" in broker.protocols else "3.1.1",
            },
            "database_url": f"sqlite:///{DEMO_DATABASE}",
            "sink": {"kind": "sqlite", "path": "readings.sqlite"},
            "metrics_listen": None,
            "dispatch": {
                "registry_dir": "district",
                "http_listen": http,
                "public_base_url": f"http://{http}",
            },
        }
    )
    return resolve(config, state_dir)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def run_demo(options: DemoOptions) -> int:
    """Run the demo until Ctrl-C (or the duration); return the exit code.

    2: the web port is taken (checked before anything starts); 3: no broker; 1: a part of
    the cloud failed for good (one line; the log has the details)."""
    console = Console()
    try:  # held from now on and handed to the cloud: nothing else can take it meanwhile
        web = bind(options.http, "pass --http HOST:PORT")
    except PortInUse as err:
        print(f"gridalarm demo: {err}", file=sys.stderr)
        return 2

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
        console.print("demo stopped")
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
