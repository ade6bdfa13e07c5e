"""A stand-in Web Push service that holds the browser's keys and decrypts what it receives."""

from __future__ import annotations

import base64
import json
import os
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from rigs.standins.server import RecordedRequest, Reply, StandinServer


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class PushReceived:
    """One decrypted push: the plaintext, its TTL header, and the verified VAPID claims."""

    path: str
    plaintext: bytes
    ttl: str | None
    vapid_claims: dict[str, Any]
    vapid_public_key: str

    def json(self) -> Any:
        return json.loads(self.plaintext)


class PushEndpoint(StandinServer):
    """Plays browser and push service: `subscription()` is what the page would send us.

    Its endpoints name it *host_name* (default ``localhost``), never the address it listens
    on: senders refuse internal addresses, and allow the name only when configured to."""

    def __init__(self, host_name: str = "localhost") -> None:
        super().__init__()
        self.host_name = host_name
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._auth = os.urandom(16)
        self.received: list[PushReceived] = []
        self.gone: set[str] = set()
        self._statuses: deque[int] = deque()

    def subscription(self, name: str = "w1") -> dict[str, Any]:
        """A PushSubscription for endpoint path `/push/<name>`."""
        public = self._key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": f"{self.origin}/push/{name}",
            "keys": {"p256dh": b64url(public), "auth": b64url(self._auth)},
        }

    @property
    def origin(self) -> str:
        """``http://<host_name>:<port>``: where subscriptions point, the VAPID audience."""
        return f"http://{self.host_name}:{self.url.rsplit(':', 1)[1]}"

    def unsubscribe(self, name: str) -> None:
        """Answer 410 Gone for this subscription from now on."""
        self.gone.add(f"/push/{name}")

    def fail_next(self, n: int, status: int = 503) -> None:
        """Answer the next *n* pushes with *status* without decrypting them."""
        self._statuses.extend([status] * n)

    def handle(self, req: RecordedRequest) -> Reply:
        if req.method != "POST" or not req.path.startswith("/push/"):
            return Reply(404)
        if req.path in self.gone:
            return Reply(410, b'{"reason":"subscription expired"}')
        if self._statuses:
            return Reply(self._statuses.popleft())
        try:
            claims, public = self._verify_vapid(req.headers.get("authorization", ""))
        except (ValueError, KeyError, InvalidSignature) as err:
            return Reply(401, json.dumps({"reason": f"vapid: {err}"}).encode())
        if req.headers.get("content-encoding") != "aes128gcm":
            return Reply(415)
        plaintext = http_ece.decrypt(
            req.body, private_key=self._key, auth_secret=self._auth, version="aes128gcm"
        )
        self.received.append(
            PushReceived(req.path, plaintext, req.headers.get("ttl"), claims, public)
        )
        return Reply(201)

    def _verify_vapid(self, header: str) -> tuple[dict[str, Any], str]:
        """RFC 8292: `vapid t=<ES256 JWT>, k=<public key>`; aud must be our origin."""
        scheme, _, rest = header.partition(" ")
        if scheme.lower() != "vapid":
            raise ValueError(f"scheme {scheme!r}")
        params = dict(p.strip().split("=", 1) for p in rest.split(","))
        signing_input, _, sig = params["t"].rpartition(".")
        raw_sig = unb64url(sig)
        der = encode_dss_signature(
            int.from_bytes(raw_sig[:32], "big"), int.from_bytes(raw_sig[32:], "big")
        )
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(params["k"]))
        key.verify(der, signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        claims: dict[str, Any] = json.loads(unb64url(signing_input.split(".")[1]))
        if claims["aud"] != self.origin:
            raise ValueError(f"aud {claims['aud']!r}")
        if int(claims["exp"]) <= time.time():
            raise ValueError("expired")
        return claims, params["k"]
