"""A stand-in for Twilio's Messages API: Basic auth, form bodies, idempotency, injected faults."""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from rigs.standins.server import RecordedRequest, Reply, StandinServer

_MESSAGES = re.compile(r"/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages\.json")
IDEMPOTENCY_HEADER = "i-twilio-idempotency-token"


@dataclass(frozen=True)
class _Fault:
    kind: str  # "fail": answer `status` without processing; "drop": process, then hang up;
    status: int = 500  # "delay": process, answer after `delay_s`
    delay_s: float = 0.0


class TwilioStandin(StandinServer):
    """`messages` holds what was accepted for delivery, once per idempotency token."""

    def __init__(self, account_sid: str = "AC" + "0" * 32, auth_token: str = "t" * 32) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.messages: list[dict[str, Any]] = []
        self._by_token: dict[str, bytes] = {}
        self._faults: deque[_Fault] = deque()
        self._standing: _Fault | None = None  # answers every request after the queued faults
        self._lock = threading.Lock()

    def fail_next(self, n: int, status: int = 500) -> None:
        """Answer the next *n* requests with *status* before looking at them."""
        self._faults.extend(_Fault("fail", status) for _ in range(n))

    def drop_next(self, n: int) -> None:
        """Accept the next *n* messages, then close the connection without an answer."""
        self._faults.extend(_Fault("drop") for _ in range(n))

    def delay_next(self, n: int, delay_s: float) -> None:
        """Accept the next *n* messages but answer only after *delay_s* (client timeouts)."""
        self._faults.extend(_Fault("delay", delay_s=delay_s) for _ in range(n))

    def fail_all(self, status: int = 500) -> None:
        """Answer every request with *status*, without looking at it, until ``heal()``."""
        self._standing = _Fault("fail", status)

    def delay_all(self, delay_s: float) -> None:
        """Accept every message but answer only after *delay_s*, until ``heal()``."""
        self._standing = _Fault("delay", delay_s=delay_s)

    def heal(self) -> None:
        """End ``fail_all`` / ``delay_all``; faults queued by the ``*_next`` calls stay."""
        self._standing = None

    def handle(self, req: RecordedRequest) -> Reply:
        m = _MESSAGES.fullmatch(req.path)
        if req.method != "POST" or m is None:
            return _error(404, 20404, f"The requested resource {req.path} was not found")
        fault = self._faults.popleft() if self._faults else self._standing
        if fault is not None and fault.kind == "fail":
            return _error(fault.status, 20500, "Internal Server Error (injected)")
        if not self._authorized(req) or m["sid"] != self.account_sid:
            return _error(401, 20003, "Authenticate")
        form = {k: v[0] for k, v in req.form().items()}
        for key, code in (("To", 21604), ("From", 21603), ("Body", 21602)):
            if not form.get(key):
                return _error(400, code, f"A '{key}' is required.")
        body = self._accept(form, req.headers.get(IDEMPOTENCY_HEADER))
        reply = Reply(status=201, body=body)
        if fault is not None:
            reply.drop = fault.kind == "drop"
            reply.delay_s = fault.delay_s
        return reply

    def _authorized(self, req: RecordedRequest) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return req.headers.get("authorization") == f"Basic {expected}"

    def _accept(self, form: dict[str, str], token: str | None) -> bytes:
        with self._lock:
            if token is not None and token in self._by_token:
                return self._by_token[token]
            now = format_datetime(datetime.now(UTC), usegmt=True)
            record = {
                "sid": "SM" + secrets.token_hex(16),
                "account_sid": self.account_sid,
                "to": form["To"],
                "from": form["From"],
                "body": form["Body"],
                "status": "queued",
                "num_segments": "1",
                "direction": "outbound-api",
                "date_created": now,
                "date_updated": now,
                "api_version": "2010-04-01",
                "idempotency_token": token,
            }
            self.messages.append(record)
            body = json.dumps(record).encode()
            if token is not None:
                self._by_token[token] = body
            return body


def _error(status: int, code: int, message: str) -> Reply:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return Reply(status=status, body=json.dumps(body).encode())
