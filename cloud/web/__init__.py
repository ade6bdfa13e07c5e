"""The worker's phone page and the Twilio SMS webhook (FastAPI, server-rendered).

``create_app(desk, signer, twilio_auth_token=..., public_base_url=..., clock=...)``; the desk
is anything that satisfies ``WorkerDesk``; ``LifecycleWorkerDesk`` is the real one.
"""

from cloud.web.adapter import LifecycleWorkerDesk
from cloud.web.app import create_app
from cloud.web.desk import AlarmPage, HistoryEntry, Place, WorkerDesk, WorkerInfo

__all__ = [
    "AlarmPage",
    "HistoryEntry",
    "LifecycleWorkerDesk",
    "Place",
    "WorkerDesk",
    "WorkerInfo",
    "create_app",
]
