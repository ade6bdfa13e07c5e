"""/readyz as a load balancer sees it: polled over HTTP from a thread, every answer kept."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

POLL_S = 0.25  # a load balancer's probe interval, shortened; not a wait for a condition


@dataclass(frozen=True)
class Answer:
    """One probe: when asked (monotonic), which server, the status (None: no answer)."""

    at: float
    url: str
    status: int | None
    parts: dict[str, Any]

    @property
    def green(self) -> bool:
        return self.status == 200


class ReadyzWatch:
    """Polls each ``/readyz`` URL until closed; answers are kept in order."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="faults.readyz", daemon=True)

    def __enter__(self) -> ReadyzWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        with httpx.Client(timeout=5.0) as client:
            while not self._stop.is_set():
                for url in self.urls:
                    self._keep(self._probe(client, url))
                self._stop.wait(POLL_S)

    @staticmethod
    def _probe(client: httpx.Client, url: str) -> Answer:
        asked = time.monotonic()  # an answer is dated when it was asked for: silence starts then
        try:
            r = client.get(url)
        except httpx.HTTPError:
            return Answer(asked, url, None, {})
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        return Answer(asked, url, r.status_code, body.get("parts", {}))

    def _keep(self, answer: Answer) -> None:
        with self._lock:
            self.answers.append(answer)

    def between(self, start: float, end: float | None = None) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if a.at >= start and (end is None or a.at <= end)]

    def red_between(self, start: float, end: float) -> list[Answer]:
        """The answers in [start, end] that were not 200 (503, or no answer at all)."""
        return [a for a in self.between(start, end) if not a.green]

    def green_since(self, start: float) -> float | None:
        """When every URL last turned green after *start* and stayed so; None if one is red now."""
        turned = start
        for url in self.urls:
            mine = [a for a in self.between(start) if a.url == url]
            if not mine or not mine[-1].green:
                return None
            reds = [a.at for a in mine if not a.green]
            first_green = next(a.at for a in mine if a.green and (not reds or a.at > reds[-1]))
            turned = max(turned, first_green)
        return turned

    def silent_s(self, start: float, end: float) -> float:
        """The longest time in [start, end] during which a server did not answer at all."""
        longest = 0.0
        for url in self.urls:
            since: float | None = None
            for a in (a for a in self.between(start, end) if a.url == url):
                if a.status is None and since is None:
                    since = a.at
                elif a.status is not None and since is not None:
                    longest, since = max(longest, a.at - since), None
            if since is not None:
                longest = max(longest, end - since)
        return longest

    def reasons(self, start: float, end: float) -> dict[str, str]:
        """Every part that was not ok in [start, end], with the first reason /readyz gave."""
        out: dict[str, str] = {}
        for a in self.red_between(start, end):
            if a.status is None:
                out.setdefault("(no answer)", "connection refused")
            for part, why in a.parts.items():
                if why != "ok":
                    out.setdefault(part, str(why))
        return out
