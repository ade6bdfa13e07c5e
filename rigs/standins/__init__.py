"""Real HTTP servers on 127.0.0.1 standing in for Twilio, a Web Push service, webhook robots.

Each is a context manager running a `ThreadingHTTPServer` on a free port in a daemon thread;
it records every request and can be told to fail. Use them with the real client libraries.
"""

from rigs.standins.server import RecordedRequest, StandinServer
from rigs.standins.twilio_api import TwilioStandin
from rigs.standins.webhook import WebhookReceiver
from rigs.standins.webpush import PushEndpoint

__all__ = [
    "PushEndpoint",
    "RecordedRequest",
    "StandinServer",
    "TwilioStandin",
    "WebhookReceiver",
]
