"""The console under a district's load (run by hand):

    python benchmarks/console_live.py [--alarms 200] [--raises 100] [--consoles 20]

On the demo district (~1,500 devices, real registry) with *alarms* open alarms, a real desk and
the console served by uvicorn on loopback:

1. first load in headless Chromium (Playwright, Debian's chromium): the board and the map
   (every device marker placed) — wall time and bytes transferred;
2. alarm raise → browser: *raises* alarms handed to the desk one by one (as ingest does),
   each timed until its row appears on an open board (pushed over SSE) — p50/p99;
3. board update cost with *consoles* SSE streams connected (one timed here, the others curl
   processes): this process's CPU per change and the time until the timed console has it,
   against a single console.

Raises are spaced past the live stream's coalescing gap (MIN_GAP_S): a storm is coalesced
into at most five boards a second per console, by design.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from playwright.async_api import async_playwright

from cloud.console import attach_console
from cloud.console.live import MIN_GAP_S
from cloud.console.users import Role, add_user
from cloud.database import open_database
from cloud.dispatch.service import SHIPPED_LIFECYCLE
from cloud.ingest.checkpoint import commit_checkpoint
from cloud.ingest.devices import load_devices
from cloud.lifecycle import (
    AlarmDesk,
    AlarmView,
    OutboundMessage,
    StepRequest,
    Target,
    load_config,
)
from cloud.lifecycle.rule_alarms import AlarmChange
from cloud.registry import create_registry_tables, import_district, write_demo_district

PASSWORD = "benchmark password"


class FirstWorker:
    def targets(self, alarm: AlarmView, step: StepRequest) -> list[Target]:
        return [Target("w-bench")]


class NullSender:
    async def send(self, message: OutboundMessage) -> str | None:
        return message.message_id


def change(device: str, gateway: str, n: int, severity: str = "warning") -> AlarmChange:
    return AlarmChange(
        kind="raise",
        key=f"{device}/bench-{n}",
        rule_id="bench",
        device=device,
        gateway=gateway,
        severity=severity,
        ts=time.time(),
        title_en="Suspected fire",
        title_zh="疑似火警",
        category="fire",
        notify="board",
        value=None,
        clears="manual",
        detail={},
    )


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(p / 100 * len(ordered) + 0.5) - 1)]


async def serve(app: FastAPI, sock: socket.socket) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]), name="bench.http")
    while not server.started:
        await asyncio.sleep(0.01)
    return server, task


async def raise_and_wait(db: Any, desk: AlarmDesk, c: AlarmChange) -> None:
    await asyncio.to_thread(commit_checkpoint, db, [c], {})
    desk.on_changes([c])


async def signed_in(browser: Any, base: str, state: Any = None) -> tuple[Any, Any]:
    """(context, page) signed in: through the form, or from a signed-in context's *state*."""
    context = await browser.new_context(
        viewport={"width": 1600, "height": 900}, storage_state=state
    )
    page = await context.new_page()
    if state is None:
        await page.goto(f"{base}/console/login")
        await page.fill("input[name=username]", "bench")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_selector("#board-rows tr.row", state="attached")
    return context, page


async def first_load(browser: Any, base: str) -> dict[str, Any]:
    """Board and map each in a fresh context (empty cache), signed in already."""
    context, _ = await signed_in(browser, base)
    state = await context.storage_state()
    await context.close()
    out: dict[str, Any] = {}
    for name, url, ready in (
        ("board", "/console/", "#board-rows tr.row"),
        ("map", "/console/map", "#map[data-devices]"),
    ):
        context, page = await signed_in(browser, base, state)
        t0 = time.perf_counter()
        await page.goto(base + url)
        await page.wait_for_selector(ready, state="attached", timeout=60_000)
        elapsed = time.perf_counter() - t0
        size = await page.evaluate(
            "() => performance.getEntries().filter(e => e.entryType === 'navigation' ||"
            " e.entryType === 'resource').reduce((s, e) => s + (e.encodedBodySize || 0), 0)"
        )
        out[name] = (elapsed, size)
        if name == "map":
            out["markers"] = await page.get_attribute("#map", "data-devices")
        await context.close()
    return out


async def sse_latency(
    browser: Any, base: str, db: Any, desk: AlarmDesk, fleet: list[tuple[str, str]], raises: int
) -> list[float]:
    context, page = await signed_in(browser, base)
    await page.evaluate("""() => { window.seen = {}; new MutationObserver(() => {
        const t = performance.timeOrigin + performance.now();
        document.querySelectorAll('#board-rows tr.row').forEach(r => {
          if (!(r.dataset.id in window.seen)) { window.seen[r.dataset.id] = t; } });
      }).observe(document.getElementById('board-rows'), {childList: true}); }""")
    latencies = []
    for n in range(raises):
        device, gateway = fleet[(n * 7 + 3) % len(fleet)]
        c = change(device, gateway, 10_000 + n, "critical")
        t0 = time.time() * 1000
        await raise_and_wait(db, desk, c)
        handle = await page.wait_for_function(
            "(key) => { const r = [...document.querySelectorAll('#board-rows tr.row')]"
            ".find(r => r.querySelector('td:nth-child(3) a')?.textContent === key);"
            " return r ? window.seen[r.dataset.id] : null; }",
            arg=device,
            timeout=10_000,
        )
        latencies.append(await handle.json_value() - t0)
        await asyncio.sleep(MIN_GAP_S + 0.05)  # an alarm on its own, not inside a storm
    await context.close()
    return latencies


async def fan_out(
    base: str,
    cookie: str,
    db: Any,
    desk: AlarmDesk,
    fleet: list[tuple[str, str]],
    consoles: int,
    changes: int,
    offset: int,
) -> tuple[float, float]:
    """(this process's CPU ms per change, ms until the timed console had it, median).

    One console is timed in this process; the others are curl processes reading the same
    stream, so the CPU counted is the server's (and one client's), not the other clients'."""
    got: list[float] = []

    async def listen(client: httpx.AsyncClient) -> None:
        async with client.stream("GET", f"{base}/console/events?v=-2") as response:
            async for line in response.aiter_lines():
                if line.startswith("event: board"):
                    got.append(time.perf_counter())

    others = [
        await asyncio.create_subprocess_exec(
            "curl",
            "-sN",
            "-o",
            "/dev/null",
            "--cookie",
            f"ga_session={cookie}",
            f"{base}/console/events?v=-2",
        )
        for _ in range(consoles - 1)
    ]
    client = httpx.AsyncClient(cookies={"ga_session": cookie}, timeout=None)
    task = asyncio.create_task(listen(client), name="bench.sse")
    while not got:  # the first board (the catch-up)
        await asyncio.sleep(0.01)
    await asyncio.sleep(1.0)  # the curl consoles have connected and had theirs
    spans, cpu0 = [], time.process_time()
    for n in range(changes):
        before = len(got)
        device, gateway = fleet[(n * 13 + offset) % len(fleet)]
        t0 = time.perf_counter()
        await raise_and_wait(db, desk, change(device, gateway, offset + n))
        while len(got) <= before:
            await asyncio.sleep(0.002)
        spans.append((got[-1] - t0) * 1000)
        await asyncio.sleep(MIN_GAP_S + 0.05)  # past the stream's coalescing gap
    cpu = (time.process_time() - cpu0) * 1000 / changes
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await client.aclose()
    for proc in others:
        proc.terminate()
        await proc.wait()
    return cpu, statistics.median(spans)


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="console-bench-"))
    url = f"sqlite:///{work / 'cloud.db'}"
    db = open_database(url)
    create_registry_tables(db)
    write_demo_district(work / "district")
    import_district(db, work / "district")
    fleet = [(d.device, d.gateway) for d in load_devices(db).values()]
    add_user(db, "bench", PASSWORD, Role.DISPATCHER)
    desk = AlarmDesk(
        url, load_config(SHIPPED_LIFECYCLE), dispatcher=FirstWorker(), sender=NullSender()
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = FastAPI()
    attach_console(app, desk, db, public_base_url=base)
    async with desk:
        for n in range(args.alarms):
            device, gateway = fleet[(n * 5) % len(fleet)]
            await raise_and_wait(db, desk, change(device, gateway, n))
        server, task = await serve(app, sock)
        try:
            await run_all(args, base, db, desk, fleet)
        finally:
            server.should_exit = True
            await task


async def run_all(
    args: argparse.Namespace, base: str, db: Any, desk: AlarmDesk, fleet: list[tuple[str, str]]
) -> None:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
        )
        load = await first_load(browser, base)
        print(f"devices {len(fleet)}, open alarms {args.alarms}, map markers {load['markers']}")
        for name in ("board", "map"):
            elapsed, size = load[name]
            print(f"first load {name}: {elapsed * 1000:.0f} ms, {size / 1024:.0f} KiB")
        lat = await sse_latency(browser, base, db, desk, fleet, args.raises)
        print(
            f"raise -> browser row over SSE ({len(lat)} raises): p50 {percentile(lat, 50):.1f} ms,"
            f" p99 {percentile(lat, 99):.1f} ms, slowest {sorted(lat)[-3:]}"
        )
        await browser.close()
    async with httpx.AsyncClient() as http:
        form = await http.get(f"{base}/console/login")
        token = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        signed = await http.post(
            f"{base}/console/login",
            data={"csrf": token, "username": "bench", "password": PASSWORD, "next": "/console/"},
        )
        cookie = signed.cookies["ga_session"]
    for consoles in (1, args.consoles):
        cpu, span = await fan_out(
            base, cookie, db, desk, fleet, consoles, 30, 50_000 + consoles * 100
        )
        print(
            f"{consoles:>2} consoles: server CPU {cpu:.1f} ms per change, "
            f"last console updated after {span:.1f} ms (median)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alarms", type=int, default=200)
    parser.add_argument("--raises", type=int, default=100)
    parser.add_argument("--consoles", type=int, default=20)
    asyncio.run(main(parser.parse_args()))
