"""Which push services we POST to: a subscription's endpoint is a URL a browser (or whoever
holds a page link) hands us, and we later send to it from inside the network.

Only the push services browsers really use are allowed, by host name (a name allows its
subdomains); a closed network adds its own with ``GRIDALARM_PUSH_HOSTS``. An IP literal that
is not a public address (loopback, private, link-local, ...) is refused whatever the list says,
and the list itself takes names only. Names are not resolved here: the list is the defence,
so keep it to services you trust.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cloud.notify.errors import ConfigError, PushEndpointRefused

ENV = "GRIDALARM_PUSH_HOSTS"
MAX_ENDPOINT_CHARS = 2048
DEFAULT_PUSH_HOSTS = (
    "fcm.googleapis.com",  # Chrome, Edge and other Chromium browsers (Firebase Cloud Messaging)
    "android.googleapis.com",  # older Chrome subscriptions (GCM endpoints, served by FCM)
    "push.services.mozilla.com",  # Firefox (autopush: updates.push.services.mozilla.com)
    "push.apple.com",  # Safari (web.push.apple.com)
    "notify.windows.com",  # Edge on Windows (WNS: *.notify.windows.com)
)
PLAIN = "http://"  # an entry spelled http://NAME also allows plain http to NAME (a stand-in)
_NAME = re.compile(
    r"(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
)


class PushServices(BaseModel):
    """The push services a subscription may point at."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hosts: tuple[str, ...] = Field(
        default=DEFAULT_PUSH_HOSTS,
        description="push service host names reached over https; each allows its subdomains",
    )
    extra_hosts: tuple[str, ...] = Field(
        default=(),
        description=f"{ENV}: more host names, comma-separated (a closed network's own push "
        f"service); {PLAIN}NAME also allows plain http to NAME, for a test stand-in",
    )

    @field_validator("hosts", "extra_hosts")
    @classmethod
    def _names_only(cls, entries: tuple[str, ...]) -> tuple[str, ...]:
        clean = tuple(e.strip().lower() for e in entries)
        for entry in clean:
            name = entry.removeprefix(PLAIN)
            if not _NAME.fullmatch(name) or _is_address(name):
                raise ValueError(f"{entry!r} is not a host name (no addresses, ports or paths)")
        return clean

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PushServices:
        """The defaults plus ``GRIDALARM_PUSH_HOSTS``."""
        raw = env.get(ENV, "")
        extra = tuple(e for e in raw.split(",") if e.strip()) if raw.strip() else ()
        if raw.strip() and len(extra) != raw.count(",") + 1:
            raise ConfigError(f"{ENV}: an empty entry in {raw!r}")
        try:
            return cls(extra_hosts=extra)
        except ValidationError as err:
            raise ConfigError(f"{ENV}: {err.errors()[0]['msg']}") from err

    def check(self, url: str) -> None:
        """Return if *url* is an endpoint of an allowed push service; else PushEndpointRefused."""
        if not url or len(url) > MAX_ENDPOINT_CHARS or not url.isascii() or not url.isprintable():
            raise PushEndpointRefused("push endpoint refused: not a printable ASCII URL")
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError as err:
            raise PushEndpointRefused(f"push endpoint refused: not a URL ({err})") from err
        if parts.username is not None or parts.password is not None:
            raise PushEndpointRefused("push endpoint refused: credentials in the URL")
        if _is_address(host):
            address = ipaddress.ip_address(host)
            if not address.is_global:
                raise PushEndpointRefused(
                    f"push endpoint refused: {address} is an internal address"
                )
        plain = self._match(host)
        if plain is None:
            raise PushEndpointRefused(
                f"push endpoint refused: {host!r} is not a known push service"
            )
        if parts.scheme != "https" and not (plain and parts.scheme == "http"):
            raise PushEndpointRefused(f"push endpoint refused: {parts.scheme!r} is not https")

    def _match(self, host: str) -> bool | None:
        """None: no entry names *host*; else whether the entry allows plain http."""
        found: bool | None = None
        for entry in (*self.hosts, *self.extra_hosts):
            name = entry.removeprefix(PLAIN)
            if host == name or host.endswith("." + name):
                found = bool(found) or entry.startswith(PLAIN)
        return found


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
