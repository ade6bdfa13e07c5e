"""The worker's phone page and the Twilio SMS webhook (FastAPI, server-rendered).

``create_app(desk, signer, twilio_auth_token=..., public_base_url=..., clock=...,
settings=...)`` (the worker builds the settings from the environment); the desk
is anything that satisfies ``WorkerDesk``; ``LifecycleWorkerDesk`` is the real one.
"""

from cloud.web.adapter import LifecycleWorkerDesk
from cloud.web.app import create_app
from cloud.web.protocols import (
    AlarmPage,
    BrigadeNote,
    HistoryEntry,
    Place,
    RegistryDesk,
    RegistryFile,
    WorkerDesk,
    WorkerInfo,
)
from cloud.web.settings import WebSettings

__all__ = [
    "AlarmPage",
    "BrigadeNote",
    "HistoryEntry",
    "LifecycleWorkerDesk",
    "Place",
    "RegistryDesk",
    "RegistryFile",
    "WebSettings",
    "WorkerDesk",
    "WorkerInfo",
    "create_app",
]
