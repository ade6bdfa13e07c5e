"""The brigades' own HTTPS listener: the same web app, but only for a client certificate
signed by the brigades' CA (mutual TLS), as some brigades' networks require."""

from __future__ import annotations

import socket
import ssl

import uvicorn
from fastapi import FastAPI

from cloud.config import BrigadeListen
from cloud.ops import Server


class MutualTlsServer(Server):
    """uvicorn with TLS on a bound socket; a client without a valid certificate is refused
    in the handshake."""

    def __init__(self, app: FastAPI, sock: socket.socket, listen: BrigadeListen) -> None:
        super().__init__(app, sock)
        self._server = uvicorn.Server(
            uvicorn.Config(
                app, log_level="warning", lifespan="off", access_log=False,
                ssl_certfile=str(listen.cert_file), ssl_keyfile=str(listen.key_file),
                ssl_ca_certs=str(listen.client_ca_file), ssl_cert_reqs=ssl.CERT_REQUIRED,
            )
        )  # fmt: skip
