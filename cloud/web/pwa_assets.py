"""What makes the worker's page an installable PWA: manifest, service worker, icons.

Kept as Python text, not files, because the package data ships only ``*.html``/``*.yaml``;
nothing here is fetched from the internet. URLs are relative so the app works under a prefix.
"""

from __future__ import annotations

import functools
import struct
import zlib
from typing import Any

NAME = "街道大脑 / Street Brain"
SHORT_NAME = "街道大脑"
THEME = "#c62828"
BACKGROUND = "#f5f6f7"
PNG_SIZES = (192, 512)

# Relative to /manifest.webmanifest: the page lives under /m/{token}.
MANIFEST: dict[str, Any] = {
    "id": "m/",
    "name": NAME,
    "short_name": SHORT_NAME,
    "description": "街道网格员报警处置 / Grid workers' alarm page",
    "lang": "zh-CN",
    "start_url": "m/",
    "scope": "m/",
    "display": "standalone",
    "background_color": BACKGROUND,
    "theme_color": THEME,
    "icons": [
        *(
            {"src": f"icon-{n}.png", "sizes": f"{n}x{n}", "type": "image/png",
             "purpose": "any maskable"}
            for n in PNG_SIZES
        ),
        {"src": "icon.svg", "sizes": "any", "type": "image/svg+xml"},
    ],
}  # fmt: skip

ICON_SVG = f"""<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 96 96">
<rect width="96" height="96" fill="{THEME}"/>
<circle cx="48" cy="48" r="26" fill="none" stroke="#fff" stroke-width="8"/>
<circle cx="48" cy="48" r="9" fill="#fff"/>
</svg>
"""

# The service worker: show a notification per push (title, body, url), open the link on click.
SERVICE_WORKER_JS = """'use strict';
self.addEventListener('install', function () { self.skipWaiting(); });
self.addEventListener('activate', function (event) { event.waitUntil(self.clients.claim()); });

self.addEventListener('push', function (event) {
  var data = {};
  if (event.data) {
    try { data = event.data.json(); } catch (e) { data = {body: event.data.text()}; }
  }
  var options = {
    body: data.body || '',
    icon: new URL('../icon-192.png', self.registration.scope).href,
    data: {url: data.url || ''},
    requireInteraction: true
  };
  if (data.alarm_id) { options.tag = 'alarm-' + data.alarm_id; options.renotify = true; }
  event.waitUntil(self.registration.showNotification(data.title || '街道大脑', options));
});

self.addEventListener('notificationclick', function (event) {
  event.notification.close();
  var url = event.notification.data && event.notification.data.url;
  if (!url) { return; }
  var target;
  try { target = new URL(url, self.registration.scope); } catch (e) { return; }
  if (target.protocol !== 'https:' && target.protocol !== 'http:') { return; }
  event.waitUntil(self.clients.matchAll({type: 'window', includeUncontrolled: true})
    .then(function (list) {
      for (var i = 0; i < list.length; i++) {
        if (list[i].url === target.href && 'focus' in list[i]) { return list[i].focus(); }
      }
      return self.clients.openWindow(target.href);
    }));
});
"""


@functools.cache
def icon_png(size: int) -> bytes:
    """A square PNG of the SVG icon's design (red, white ring and dot), drawn here."""
    red, white = bytes.fromhex(THEME[1:]), b"\xff\xff\xff"
    c, ring_in, ring_out, dot = size / 2, size * 22 / 96, size * 30 / 96, size * 9 / 96
    rows = []
    for y in range(size):
        row = bytearray(b"\x00")  # filter: none
        dy2 = (y + 0.5 - c) ** 2
        for x in range(size):
            d = ((x + 0.5 - c) ** 2 + dy2) ** 0.5
            row += white if d <= dot or ring_in <= d <= ring_out else red
        rows.append(bytes(row))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        _chunk(kind, data)
        for kind, data in ((b"IHDR", header), (b"IDAT", zlib.compress(b"".join(rows), 9)),
                           (b"IEND", b""))
    )  # fmt: skip


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
