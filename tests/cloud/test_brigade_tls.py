"""Mutual TLS both ways, with certificates made in the test: our webhook client presents its
certificate to a brigade that requires one; the brigades' listener refuses a client without."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from cloud.brigade.listener import MutualTlsServer
from cloud.brigade.signing import IDEMPOTENCY_HEADER, sign
from cloud.brigade.webhook import WebhookClient, tls_problems
from cloud.config import BrigadeConfig, BrigadeListen, WebhookTls, load_cloud_config
from cloud.worker import bind
from rigs.standins.brigade import BrigadeStandin
from tests.deploy.pki import PkiPaths, make_test_pki

SECRET = "whsec_test"


@pytest.fixture
def pki(tmp_path: Path) -> PkiPaths:
    return make_test_pki(tmp_path, [], extra_clients=("cloud", "east-fire"))


@pytest.fixture
def tls_brigade(pki: PkiPaths) -> Iterator[BrigadeStandin]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca_cert))
    ctx.load_cert_chain(str(pki.server.cert), str(pki.server.key))
    ctx.verify_mode = ssl.CERT_REQUIRED
    with BrigadeStandin(tls=ctx) as s:
        s.secrets.append(SECRET)
        yield s


async def post(client: WebhookClient, url: str, key: str) -> bool:
    body = b'{"x": 1}'
    headers = {**sign(SECRET, body, time.time()), IDEMPOTENCY_HEADER: key}
    got = await client.post("east-fire", [url], body, headers)
    return got.delivered


async def test_webhooks_present_our_client_certificate(pki: PkiPaths, tls_brigade: BrigadeStandin):
    cloud = pki.clients["cloud"]
    ours = WebhookTls(ca_file=pki.ca_cert, cert_file=cloud.cert, key_file=cloud.key)
    async with WebhookClient(BrigadeConfig(tls_by_brigade={"east-fire": ours})) as client:
        assert await post(client, tls_brigade.url + "/hook", "k1")
    without = WebhookTls(ca_file=pki.ca_cert)
    async with WebhookClient(BrigadeConfig(tls=without, timeout_s=2)) as client:
        assert not await post(client, tls_brigade.url + "/hook", "k2")
    assert [p.key for p in tls_brigade.processed] == ["k1"]


@contextlib.asynccontextmanager
async def listener(pki: PkiPaths) -> AsyncIterator[str]:
    app = FastAPI()

    @app.get("/api/brigade/v1/ping")
    async def ping() -> dict[str, str]:
        return {"ok": "yes"}

    sock = bind("127.0.0.1:0", "test")
    port = sock.getsockname()[1]
    cfg = BrigadeListen(listen=f"127.0.0.1:{port}", cert_file=pki.server.cert,
                        key_file=pki.server.key, client_ca_file=pki.ca_cert)  # fmt: skip
    server = MutualTlsServer(app, sock, cfg)
    task = asyncio.create_task(server.serve(), name="test.brigade-listener")
    try:
        yield f"https://127.0.0.1:{port}/api/brigade/v1/ping"
    finally:
        server.stop()
        await task
        sock.close()


async def get(url: str, ctx: ssl.SSLContext) -> int:
    """The socket listens from ``bind``: the handshake waits for the server task, no retry."""
    async with httpx.AsyncClient(verify=ctx, timeout=5) as client:
        return (await client.get(url)).status_code


async def test_the_brigade_listener_requires_a_client_certificate(pki: PkiPaths):
    brigade = pki.clients["east-fire"]
    with_cert = ssl.create_default_context(cafile=str(pki.ca_cert))
    with_cert.load_cert_chain(str(brigade.cert), str(brigade.key))
    async with listener(pki) as url:
        assert await get(url, with_cert) == 200
        with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
            await get(url, ssl.create_default_context(cafile=str(pki.ca_cert)))


def test_unusable_tls_files_are_config_errors_before_start(pki: PkiPaths, tmp_path: Path):
    missing = tmp_path / "nope.crt"
    cfg = BrigadeConfig(
        tls_by_brigade={"east-fire": WebhookTls(cert_file=missing, key_file=missing)},
        listen=BrigadeListen(listen="127.0.0.1:0", cert_file=pki.server.cert,
                             key_file=pki.server.key, client_ca_file=missing),
    )  # fmt: skip
    fields = [i.field for i in tls_problems(cfg, dispatching=False)]
    assert fields == ["brigade.listen", "brigade.tls_by_brigade.east-fire", "brigade.listen"]
    good = BrigadeConfig(tls=WebhookTls(ca_file=pki.ca_cert))
    assert tls_problems(good, dispatching=True) == []


def test_tls_paths_in_cloud_yaml_are_relative_to_its_folder(tmp_path: Path):
    (tmp_path / "cloud.yaml").write_text(
        "brigade:\n"
        "  tls: {ca_file: pki/ca.crt}\n"
        "  tls_by_brigade: {east-fire: {cert_file: pki/c.crt, key_file: pki/c.key}}\n"
        "  listen: {listen: '0.0.0.0:8443', cert_file: s.crt, key_file: s.key,"
        " client_ca_file: ca.crt}\n",
        encoding="utf-8",
    )
    b = load_cloud_config(tmp_path / "cloud.yaml").brigade
    assert b.tls.ca_file == tmp_path / "pki/ca.crt" and b.tls.cert_file is None
    assert b.tls_by_brigade["east-fire"].key_file == tmp_path / "pki/c.key"
    assert b.listen is not None and b.listen.client_ca_file == tmp_path / "ca.crt"
