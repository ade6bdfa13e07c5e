"""Notifications: SMS (Twilio), Web Push, webhooks and the console, plus texts and links.

The only package that talks to Twilio, push services or webhook receivers; every library
error is translated into `ChannelError(retryable=...)` here.
"""

from cloud.notify.console import ConsoleChannel
from cloud.notify.errors import (
    ChannelError,
    ConfigError,
    LinkError,
    LinkExpired,
    LinkForged,
    LinkMalformed,
    NotifyError,
    PushEndpointRefused,
    TemplateError,
)
from cloud.notify.inbound import Reply, parse_reply, verify_twilio_signature
from cloud.notify.links import LinkSigner, link
from cloud.notify.message import (
    Channel,
    ChannelKind,
    Locale,
    Message,
    Receipt,
    Recipient,
    WebhookFormat,
    WebhookTarget,
    message_id,
)
from cloud.notify.pushservices import DEFAULT_PUSH_HOSTS, PushServices
from cloud.notify.redaction import escape, mask_phone, redact
from cloud.notify.smstext import fits_one_sms, sms_encoding, sms_units
from cloud.notify.templates import AlarmFacts, render_alarm, render_summary
from cloud.notify.twilio_sms import TwilioSettings, TwilioSms
from cloud.notify.webhook import Webhook, sign_json_body, verify_json_signature
from cloud.notify.webpush import VapidKeys, VapidSettings, WebPush, generate_vapid_keys

__all__ = [
    "DEFAULT_PUSH_HOSTS",
    "AlarmFacts",
    "Channel",
    "ChannelError",
    "ChannelKind",
    "ConfigError",
    "ConsoleChannel",
    "LinkError",
    "LinkExpired",
    "LinkForged",
    "LinkMalformed",
    "LinkSigner",
    "Locale",
    "Message",
    "NotifyError",
    "PushEndpointRefused",
    "PushServices",
    "Receipt",
    "Recipient",
    "Reply",
    "TemplateError",
    "TwilioSettings",
    "TwilioSms",
    "VapidKeys",
    "VapidSettings",
    "WebPush",
    "Webhook",
    "WebhookFormat",
    "WebhookTarget",
    "escape",
    "fits_one_sms",
    "generate_vapid_keys",
    "link",
    "mask_phone",
    "message_id",
    "parse_reply",
    "redact",
    "render_alarm",
    "render_summary",
    "sign_json_body",
    "sms_encoding",
    "sms_units",
    "verify_json_signature",
    "verify_twilio_signature",
]
