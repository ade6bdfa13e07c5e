"""Real HTTP servers on 127.0.0.1 standing in for Twilio, a Web Push service, webhook robots.

Each is a context manager running a `ThreadingHTTPServer` on a free port in a daemon thread;
it records every request and can be told to fail. Use them with the real client libraries.
"""

from tests.standins.server import RecordedRequest, StandinServer
from tests.standins.twilio_api import TwilioStandin
from tests.standins.webhook import WebhookReceiver
from tests.standins.webpush import PushEndpoint

__all__ = [
    "PushEndpoint",
    "RecordedRequest",
    "StandinServer",
    "TwilioStandin",
    "WebhookReceiver",
]
