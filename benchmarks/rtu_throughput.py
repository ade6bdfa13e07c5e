"""RTU throughput of the edge driver on one simulated 9600-baud bus (run by hand).

    python benchmarks/rtu_throughput.py [--transactions 200] [--rounds 5] [--baud 9600]

Prints the median transactions/s over the rounds for a 1-register read and for the
8-register device poll, and the ratio against the physical limit of the line:
10 bits per character (8N1), request 8 bytes, reply 5 + 2n bytes, and a 3.5-character
silence after each frame.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from edge.config import SerialBus
from edge.drivers import open_bus
from firmware_sim import SimConfig, SimulatorSet

BITS_PER_CHAR = 10
REQUEST_BYTES = 8


def limit_tx_per_s(baud: int, registers: int) -> float:
    """Transactions per second the line allows for an FC03 read of ``registers``."""
    char_s = BITS_PER_CHAR / baud
    gap_s = 3.5 * char_s if baud <= 19200 else 0.00175
    reply_bytes = 5 + 2 * registers
    return 1 / ((REQUEST_BYTES + reply_bytes) * char_s + 2 * gap_s)


async def one_round(port: str, baud: int, registers: int, n: int) -> float:
    async with open_bus(SerialBus(id="bench", kind="serial", port=port, baud=baud)) as bus:
        await bus.read_registers(1, 0, registers)  # warm-up, not timed
        start = time.perf_counter()
        for _ in range(n):
            await bus.read_registers(1, 0, registers, timeout_s=0.5)
        elapsed = time.perf_counter() - start
        assert bus.counters["ok"] == n + 1, dict(bus.counters)
    return n / elapsed


async def main(n: int, rounds: int, baud: int) -> None:
    config = SimConfig.model_validate(
        {
            "buses": [{"name": "bench", "transport": "rtu", "baud": baud}],
            "devices": [{"id": "smk-1", "type": "smoke", "transport": "rtu", "bus": "bench"}],
        }
    )
    async with SimulatorSet.from_config(config) as sims:
        [endpoint] = sims.endpoints()
        print(f"{n} transactions x {rounds} rounds, {baud} baud 8N1, sim pty {endpoint.address}")
        for registers, what in [(1, "1-register read"), (8, "8-register device poll")]:
            rates = [await one_round(endpoint.address, baud, registers, n) for _ in range(rounds)]
            median = statistics.median(rates)
            limit = limit_tx_per_s(baud, registers)
            each = ", ".join(f"{r:.1f}" for r in rates)
            print(
                f"{what:24s} median {median:6.1f} tx/s  (rounds {each})"
                f"  limit {limit:5.1f} tx/s  ratio {median / limit:.1%}"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transactions", type=int, default=200, help="transactions per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the median is reported")
    parser.add_argument("--baud", type=int, default=9600, help="line speed")
    args = parser.parse_args()
    asyncio.run(main(args.transactions, args.rounds, args.baud))
