"""A paho client that moves bytes in bulk: one recv() per socket read, one send() per ack batch.

paho 2.2 reads a packet with a recv() of one byte for its type, one per byte of its length and
one for the rest: three system calls or more per PUBLISH, which cost more than everything we
do with the message. And each PUBACK is a packet of its own in paho's output queue, written
with a send() of its own. Together they were over a third of the ingest's CPU per message.
Everything else stays paho's — CONNECT, SUBSCRIBE, keep-alive, TLS, the packet handlers and
their callbacks: only the movement of bytes changes.

One exception, asked for by setting :attr:`BulkClient.on_publish_fast`: a QoS 0 or 1 PUBLISH
whose bytes are all in the buffer is taken apart here and handed over as (packet id, QoS,
topic, payload, retain), without paho's message object, its properties parser, its debug
log formatting, its callback lock and its walk of the subscription tree — together more than
the rest of a message's handling. Anything unusual (QoS 2, an empty topic or one that is not
UTF-8, lengths that do not add up) goes to paho's handler as before, which decides.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.exception import MalformedPacket

if TYPE_CHECKING:
    from paho.mqtt.client import _InPacket

RECV_SIZE = 65536  # one read takes what the kernel holds, up to this (or one TLS record)
_PUBACK = struct.Struct("!BBH")  # fixed header (PUBACK, remaining length 2), packet id
_PUBACK_TYPE = int(mqtt.PUBACK)
_V5 = int(mqtt.MQTTv5)

FastPublish = Callable[[int, int, str, bytes, bool], None]  # (mid, qos, topic, payload, retain)


class BulkClient(mqtt.Client):
    """paho's client reading its packets from a buffer that one recv() fills.

    The buffer is invisible to a selector: after ``loop_read()`` whole packets may wait in it
    (or, over TLS, decrypted in the SSL object) while the socket has nothing new. Whoever
    drives the client must call ``loop_read()`` again while :attr:`buffered` is true.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = b""  # unread bytes of the connection; empty when the socket must be read
        self._rpos = 0  # where they start in it
        # set: plain PUBLISH packets (QoS 0/1) go here, not through paho's on_message
        self.on_publish_fast: FastPublish | None = None
        self.fast_room = 1 << 30  # at most this many handed over per loop_read() (back-pressure)

    @property
    def buffered(self) -> bool:
        """Bytes are read (here or in the TLS layer) that no loop_read() has consumed yet."""
        if self._rbuf:
            return True
        pending = getattr(self._sock, "pending", None)  # ssl.SSLSocket: decrypted, unread
        return pending is not None and int(pending()) > 0

    def ack_many(self, mids: Iterable[int]) -> None:
        """Acknowledge QoS 1 messages with one packet in paho's output queue.

        The PUBACKs (4 bytes each; MQTT 5 allows the same form when the reason is success)
        are joined and queued as one: paho's writer then sends them with one send(), and keeps
        its bookkeeping — partial writes, asking for write readiness, keep-alive timing.
        """
        data = b"".join([_PUBACK.pack(_PUBACK_TYPE, 2, mid) for mid in mids])
        if data:
            self._packet_queue(mqtt.PUBACK, data, 0, 0)

    def _packet_read(self) -> MQTTErrorCode:
        # Between packets, plain PUBLISH packets wholly in the buffer go to on_publish_fast
        # (if set); any other whole packet goes to paho's handler directly: paho's reader would
        # still take it apart with a call per header byte. Otherwise
        # (buffer empty, or a packet only partly read) paho's reader runs on _sock_recv below;
        # it also stamps the time of the read for keep-alive, which covers every packet the
        # same recv() brought in.
        between = bool(self._rbuf) and not self._in_packet["command"]
        if between and self.on_publish_fast is not None and self._publishes(self.on_publish_fast):
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        whole = self._whole_packet() if between else None
        if whole is None:
            return super()._packet_read()
        command, body = whole
        self._in_packet = _in_packet(command, body)
        try:
            rc = self._packet_handle()
        except MalformedPacket as exc:
            self._easy_log(mqtt.MQTT_LOG_DEBUG, "Received malformed packet: %s", exc)
            rc = MQTTErrorCode.MQTT_ERR_PROTOCOL
        self._in_packet = _in_packet(0, bytearray())
        return rc

    def _publishes(self, deliver: FastPublish) -> int:
        """Hand over the plain PUBLISH packets wholly in the buffer, up to the first other
        packet (or incomplete one, or one paho's handler must judge); how many."""
        buf = self._rbuf
        size = len(buf)
        v5 = self._protocol == _V5
        n, room = 0, self.fast_room
        while buf and n < room:
            parsed = _publish_at(buf, self._rpos, size, v5)
            if parsed is None:
                break
            end, mid, qos, topic, payload, retain = parsed
            if end == size:  # taken off the buffer before it is handed over
                self._rbuf = buf = b""
            else:
                self._rpos = end
            n += 1
            deliver(mid, qos, topic, payload, retain)
        return n

    def _whole_packet(self) -> tuple[int, bytearray] | None:
        """Take the next packet off the buffer if all of it is there: (command byte, body)."""
        buf, pos = self._rbuf, self._rpos
        size = len(buf)
        length, i = _varint(buf, pos + 1, size)  # the remaining length
        end = i + length
        if length < 0 or end > size:  # incomplete, or malformed: paho's reader decides
            return None
        if end == size:
            self._rbuf = b""
        else:
            self._rpos = end
        return buf[pos], bytearray(memoryview(buf)[i:end])

    def _sock_recv(self, bufsize: int) -> bytes:
        buf = self._rbuf
        if buf:
            pos = self._rpos
        else:
            # paho's own recv: SSLWantRead/Write become BlockingIOError (WantWrite also asks to
            # be told when writable), EOF stays b"" — all reported as paho expects them
            buf = super()._sock_recv(max(bufsize, RECV_SIZE))
            if len(buf) <= bufsize:  # what was asked for, or less: nothing to keep
                return buf
            pos = 0
        end = pos + bufsize
        if end >= len(buf):
            self._rbuf = b""
            return buf[pos:]
        self._rbuf, self._rpos = buf, end
        return buf[pos:end]

    def _sock_close(self) -> None:
        self._rbuf = b""  # a closed connection's bytes must never be read as the next one's
        super()._sock_close()


def _in_packet(command: int, body: bytearray) -> _InPacket:
    """paho's record of the packet being read, as its reader leaves it for the handlers."""
    return {
        "command": command,
        "have_remaining": 1 if command else 0,
        "remaining_count": [],
        "remaining_mult": 1,
        "remaining_length": len(body),
        "packet": body,
        "to_process": 0,
        "pos": 0,
    }


def _varint(buf: bytes, i: int, size: int) -> tuple[int, int]:
    """MQTT's variable byte integer at *i* (7 bits a byte, low first, at most 4 bytes): (value,
    index after it); value -1 if *buf* ends first (at *size*) or it runs past 4 bytes."""
    value, shift = 0, 0
    while i < size and shift <= 21:
        byte = buf[i]
        value |= (byte & 127) << shift
        shift += 7
        i += 1
        if byte < 128:
            return value, i
    return -1, i


def _publish_at(  # noqa: PLR0911
    buf: bytes, pos: int, size: int, v5: bool
) -> tuple[int, int, int, str, bytes, bool] | None:
    """The QoS 0/1 PUBLISH at *pos* if all of it is in *buf*: (end, mid, qos, topic, payload,
    retain); None for anything else (another packet, QoS 2, incomplete, or a packet paho's
    handler must judge: an empty or non-UTF-8 topic, lengths that do not add up)."""
    command = buf[pos]
    qos = (command >> 1) & 3
    if command >> 4 != 3 or qos > 1:
        return None
    length, i = _varint(buf, pos + 1, size)
    end = i + length
    if length < 2 or end > size:  # incomplete, malformed (-1), or too short for a topic
        return None
    tlen = buf[i] << 8 | buf[i + 1]
    p = i + 2 + tlen
    if tlen == 0 or p > end:
        return None
    mid = 0
    if qos:
        if p + 2 > end:
            return None
        mid = buf[p] << 8 | buf[p + 1]
        p += 2
    if v5:  # properties: a variable length, then that many bytes (none the ingest uses)
        plen, p = _varint(buf, p, end)
        p += plen
        if plen < 0 or p > end:
            return None
    try:
        topic = buf[i + 2 : i + 2 + tlen].decode()
    except UnicodeDecodeError:
        return None
    return end, mid, qos, topic, buf[p:end], bool(command & 1)
