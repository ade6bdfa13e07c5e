"""A stand-in fire brigade dispatch system: verifies our signature, deduplicates by the
Idempotency-Key, records what it processed in arrival order, and answers as ASAP's
receivers do (accepted with an incident number, or rejected with a reason).

``outage()`` makes it answer 503 (or hang up) until ``restore()``; with ``tls`` it serves
HTTPS and, given a client CA, requires a client certificate signed by it.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from cloud.brigade.signing import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from rigs.standins.server import RecordedRequest, Reply, StandinServer


@dataclass(frozen=True)
class Processed:
    """One message the brigade acted on (the first arrival of its key)."""

    key: str
    content_type: str
    body: bytes
    received_at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.body)


class BrigadeStandin(StandinServer):
    """Answers each new key once; a repeated key gets the first answer again, unprocessed."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__()
        self.secrets: list[str] = []
        self.processed: list[Processed] = []
        self.duplicates = 0
        self.bad_signatures = 0
        self._answers: dict[str, dict[str, Any]] = {}
        self._reject: dict[str, str] = {}  # key prefix -> reason
        self._down: Reply | None = None
        self._lock = threading.Condition()
        self._tls = tls
        # a sender that gave up on a hanging answer closed its end: not an error to print
        self._httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)

    @property
    def url(self) -> str:
        base = super().url
        return base.replace("http://", "https://", 1) if self._tls is not None else base

    def outage(self, status: int = 503, *, hang_up: bool = False, hang_s: float = 0.0) -> None:
        """Answer *status* (after *hang_s*: a sender's timeout), or hang up, until restored."""
        self._down = (
            Reply(drop=True) if hang_up else Reply(status, b'{"error":"down"}', delay_s=hang_s)
        )

    def restore(self) -> None:
        self._down = None

    def reject(self, key_prefix: str, reason: str = "not_in_area") -> None:
        """Reject messages whose key starts with *key_prefix* (e.g. ``ga-7-``)."""
        self._reject[key_prefix] = reason

    def handle(self, req: RecordedRequest) -> Reply:
        down = self._down
        if down is not None:
            return down
        bad = verify(self.secrets, req.headers.get(TIMESTAMP_HEADER.lower()),
                     req.headers.get(SIGNATURE_HEADER.lower()), req.body, time.time())  # fmt: skip
        key = req.headers.get(IDEMPOTENCY_HEADER.lower(), "")
        if bad is not None or not key:
            with self._lock:
                self.bad_signatures += 1
            return Reply(401, json.dumps({"error": f"signature {bad}"}).encode())
        with self._lock:
            if key in self._answers:
                self.duplicates += 1
            else:
                self._answers[key] = self._answer(key)
                self.processed.append(Processed(key, req.headers.get("content-type", ""), req.body))
                self._lock.notify_all()
            return Reply(200, json.dumps(self._answers[key]).encode())

    def _answer(self, key: str) -> dict[str, Any]:
        for prefix, reason in self._reject.items():
            if key.startswith(prefix):
                return {"answer": "rejected", "reason": reason, "text": "stand-in refuses it"}
        return {"answer": "accepted", "incident": f"F-{len(self._answers) + 1}"}

    def wait_processed(self, n: int, timeout_s: float = 5.0) -> list[Processed]:
        """Block until at least *n* messages were processed; AssertionError at the deadline."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.processed) >= n, timeout=timeout_s):
                keys = [p.key for p in self.processed]
                raise AssertionError(f"brigade processed {keys}, not {n}, in {timeout_s} s")
            return list(self.processed)
