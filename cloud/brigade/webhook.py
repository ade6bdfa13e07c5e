"""POSTing a message to a brigade's webhook URLs: the one place that talks HTTP to brigades.

The URLs are tried in order (failover) until one answers. 2xx is delivered (its body may
carry the brigade's answer); 408, 429, 5xx, a timeout or a connection error passes (tried
again later); any other answer is a refusal for good (dead at once, with the reason). TLS
per brigade or global: the CA bundle we check their server against, and our client
certificate for mutual TLS. httpx's errors are translated here and go no further.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import httpx

from cloud.brigade.answers import BrigadeAnswer, parse_answer
from cloud.config import BrigadeConfig, BrigadeListen, WebhookTls
from wire.yamlconf import ConfigIssue

logger = logging.getLogger(__name__)

PASSING = frozenset({408, 429})  # client errors that say "later", not "never"
MAX_ANSWER_BYTES = 64_000


@dataclass(frozen=True, slots=True)
class Post:
    """How one POST ended, over all the brigade's URLs."""

    delivered: bool
    retryable: bool
    error: str = ""
    status: int | None = None
    answer: BrigadeAnswer | None = None


def ssl_context(tls: WebhookTls) -> ssl.SSLContext:
    """Trust *tls.ca_file* (else the system's) and present our certificate when one is set."""
    ctx = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
    if tls.cert_file is not None:
        ctx.load_cert_chain(str(tls.cert_file), str(tls.key_file) if tls.key_file else None)
    return ctx


def tls_problems(config: BrigadeConfig, *, dispatching: bool) -> list[ConfigIssue]:
    """Every TLS file of the brigade section that cannot be used (checked before start)."""
    checks: list[tuple[str, WebhookTls | BrigadeListen]] = [("brigade.tls", config.tls)]
    checks += [(f"brigade.tls_by_brigade.{b}", t) for b, t in config.tls_by_brigade.items()]
    issues: list[ConfigIssue] = []
    if config.listen is not None:
        if not dispatching:
            issues.append(ConfigIssue("cloud config", None, "brigade.listen", "needs dispatch"))
        checks.append(("brigade.listen", config.listen))
    for where, tls in checks:
        try:
            if isinstance(tls, BrigadeListen):
                _server_context(tls)
            else:
                ssl_context(tls)
        except (OSError, ssl.SSLError) as err:
            issues.append(ConfigIssue("cloud config", None, where, f"unusable: {err}"))
    return issues


def _server_context(listen: BrigadeListen) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(listen.client_ca_file))
    ctx.load_cert_chain(str(listen.cert_file), str(listen.key_file))
    return ctx


class WebhookClient:
    """One pooled httpx client per TLS setting; ``async with`` closes them."""

    def __init__(self, config: BrigadeConfig) -> None:
        timeout = httpx.Timeout(config.timeout_s)
        self._default = httpx.AsyncClient(verify=ssl_context(config.tls), timeout=timeout)
        self._by_brigade = {
            b: httpx.AsyncClient(verify=ssl_context(t), timeout=timeout)
            for b, t in config.tls_by_brigade.items()
        }

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for client in (self._default, *self._by_brigade.values()):
            await client.aclose()

    async def post(
        self, brigade_id: str, urls: list[str], body: bytes, headers: dict[str, str]
    ) -> Post:
        """POST *body* to the first of *urls* that takes it."""
        client = self._by_brigade.get(brigade_id, self._default)
        last = Post(delivered=False, retryable=True, error="no webhook URL")
        for url in urls:
            last = await _post_one(client, url, body, headers)
            if last.delivered or not last.retryable:
                return last
        return last


async def _post_one(
    client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]
) -> Post:
    try:
        resp = await client.post(url, content=body, headers=headers)
    except httpx.TimeoutException as err:
        return Post(False, True, f"{url}: no answer in time ({type(err).__name__})")
    except (httpx.TransportError, ssl.SSLError, OSError) as err:
        return Post(False, True, f"{url}: {type(err).__name__}: {err}"[:300])
    code = resp.status_code
    if 200 <= code < 300:
        return Post(True, False, status=code, answer=parse_answer(resp.content[:MAX_ANSWER_BYTES]))
    why = f"{url}: HTTP {code} {resp.text[:200]!r}"
    if code >= 500 or code in PASSING:
        return Post(False, True, why, status=code)
    return Post(False, False, why, status=code)
