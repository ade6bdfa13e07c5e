"""Gateway peak RSS with 500 simulated devices (target <= 80 MB).

Run by hand:  python benchmarks/gateway_rss.py [--devices 500] [--seconds 30] [--rounds 3]

The simulators (Modbus TCP, 4 device types) run in this process; the gateway runs as its
own process (`python -m gridalarm edge run`) against a real Mosquitto, polling every device
once a second. Peak RSS is the kernel's VmHWM of the gateway process. Baseline in the same
run: VmHWM of a Python process that only imports the gateway's modules and idles.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from firmware_sim import SimConfig, SimulatorSet
from gridalarm.brokers import mosquitto

TYPES = ["smoke", "ebike", "manhole", "flood"]
UNITS_PER_BUS = 125


def sim_config(n: int) -> SimConfig:
    buses, devices = [], []
    for i in range(n):
        bus = f"tcp-{i // UNITS_PER_BUS + 1}"
        if not buses or buses[-1]["name"] != bus:
            buses.append({"name": bus, "transport": "tcp"})
        devices.append(
            {
                "id": f"d-{i:04d}",
                "type": TYPES[i % 4],
                "transport": "tcp",
                "bus": bus,
                "unit": i % UNITS_PER_BUS + 1,
                "seed": i,
            }
        )
    return SimConfig.model_validate({"buses": buses, "devices": devices})


def gateway_config(sims: SimulatorSet, url: str, directory: Path) -> Path:
    buses = []
    for ep in sims.endpoints():
        host, port = ep.address.rsplit(":", 1)
        buses.append({"id": ep.bus, "kind": "tcp", "host": host, "port": int(port)})
    devices = [
        {
            "id": d.id,
            "bus": d.bus,
            "unit": d.unit,
            "profile": d.type,
            "poll_interval_s": 1.0,
            "heartbeat_s": 30,
        }
        for d in sims.devices()
    ]
    path = directory / "gateway.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "gateway_id": "gw-rss",
                "mqtt": {"url": url},
                "outbox": {"path": "outbox.sqlite"},
                "state_dir": ".",
                "buses": buses,
                "devices": devices,
            }
        ),
        encoding="utf-8",
    )
    return path


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


async def gateway_round(n: int, seconds: float, url: str, tmp: Path) -> tuple[float, int]:
    async with SimulatorSet.from_config(sim_config(n)) as sims:
        path = gateway_config(sims, url, tmp)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gridalarm",
                "edge",
                "run",
                "--config",
                str(path),
                "--log-level",
                "WARNING",
            ]
        )
        try:
            await asyncio.sleep(seconds)  # the measured period itself, not a wait for a condition
            peak = vm_hwm_mb(proc.pid)
            status = yaml.safe_load((tmp / "status.json").read_text())
            polls = sum(d["counters"].get("good", 0) for d in status["devices"].values())
        finally:
            proc.terminate()
            proc.wait(20)
    return peak, polls


def baseline_mb() -> float:
    code = "import edge.gateway, edge.drivers, edge.profile, sys; sys.stdout.write('ok'); sys.stdout.flush(); input()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    proc.stdout.read(2)
    peak = vm_hwm_mb(proc.pid)
    proc.communicate(b"\n")
    return peak


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    peaks, bases = [], []
    with tempfile.TemporaryDirectory() as d, mosquitto(Path(d) / "broker") as broker:
        for r in range(args.rounds):
            tmp = Path(d) / f"r{r}"
            tmp.mkdir()
            bases.append(baseline_mb())
            t0 = time.monotonic()
            peak, polls = asyncio.run(gateway_round(args.devices, args.seconds, broker.url, tmp))
            peaks.append(peak)
            rate = polls / (time.monotonic() - t0)
            print(
                f"round {r + 1}: gateway peak RSS {peak:.1f} MB with {args.devices} devices "
                f"({polls} good polls, ~{rate:.0f}/s); import-only baseline {bases[-1]:.1f} MB"
            )
    mp, mb = statistics.median(peaks), statistics.median(bases)
    print(
        f"gateway_rss: median peak {mp:.1f} MB with {args.devices} devices (target <= 80 MB); "
        f"import-only baseline {mb:.1f} MB; ratio {mp / mb:.2f}"
    )


if __name__ == "__main__":
    main()
