"""A stand-in webhook receiver (WeCom / DingTalk robots, plain JSON hooks)."""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from rigs.standins.server import RecordedRequest, Reply, StandinServer

ROBOT_OK = {"errcode": 0, "errmsg": "ok"}


class WebhookReceiver(StandinServer):
    """Records every request; answers 200 `{"errcode":0}` unless told otherwise."""

    def __init__(self) -> None:
        super().__init__()
        self._replies: deque[Reply] = deque()

    def reply_next(self, n: int, status: int = 200, body: Any = ROBOT_OK) -> None:
        """Answer the next *n* requests with *status* and *body* (JSON-encoded)."""
        self._replies.extend(Reply(status, json.dumps(body).encode()) for _ in range(n))

    def drop_next(self, n: int) -> None:
        """Hang up on the next *n* requests without answering."""
        self._replies.extend(Reply(drop=True) for _ in range(n))

    def handle(self, req: RecordedRequest) -> Reply:
        if self._replies:
            return self._replies.popleft()
        return Reply(200, json.dumps(ROBOT_OK).encode())
