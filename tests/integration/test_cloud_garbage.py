"""Garbage on the wire is counted and logged; the cloud keeps running and loses none of the
good messages around it."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cloud.worker import cloud_worker
from gridalarm.brokers import Mosquitto, free_port
from tests.integration.test_cloud_pipeline import cloud_config
from tests.support import until
from wire import DataMessage, EventMessage, encode
from wire.topics import data_topic, event_topic

pytestmark = pytest.mark.integration

GOOD_DEV = "fl-0001"  # registered on gw-t by the pipeline test's registry


def good(seq: int) -> tuple[str, bytes]:
    msg = DataMessage(
        gw="gw-t",
        dev=GOOD_DEV,
        seq=seq,
        ts=time.time() + seq * 0.001,
        values={"level_mm": float(seq), "rain_mm_h": 0.0},
    )
    return data_topic("gw-t", GOOD_DEV), encode(msg)


GARBAGE: list[tuple[str, bytes, str]] = [
    (data_topic("gw-t", GOOD_DEV), b"{not json", "json"),
    (
        data_topic("gw-t", GOOD_DEV),
        b'{"t":"data","gw":"gw-t","dev":"fl-0001","seq":"seven","ts":1}',
        "schema",
    ),
    (data_topic("gw-t", GOOD_DEV), b"[" * 70_000, "too_large"),
    (
        data_topic("gw-t", GOOD_DEV),
        encode(DataMessage(gw="gw-evil", dev=GOOD_DEV, seq=1, ts=1.0)),
        "spoofed",
    ),
    (
        data_topic("gw-t", "ghost-1"),
        encode(DataMessage(gw="gw-t", dev="ghost-1", seq=900_001, ts=1.0)),
        "unknown_device",
    ),
    (
        event_topic("gw-t", GOOD_DEV),
        encode(DataMessage(gw="gw-t", dev=GOOD_DEV, seq=1, ts=1.0)),
        "wrong_kind",
    ),
    ("ga/v1/gw-t/dev/fl 0001/data", b"{}", "topic"),
    (
        data_topic("gw-t", GOOD_DEV),
        b'{"t":"data","gw":"gw-t","dev":"fl-0001","seq":3,"ts":1,"v":9}',
        "version",
    ),
    # a registered device published by another gateway: spoofing one level down
    (
        data_topic("gw-x", GOOD_DEV),
        encode(DataMessage(gw="gw-x", dev=GOOD_DEV, seq=1, ts=1.0)),
        "wrong_gateway",
    ),
]


def bad_count(cloud: object, reason: str) -> float:
    return float(cloud.metrics.bad.labels(reason)._value.get())  # type: ignore[attr-defined]


async def test_garbage_is_counted_and_good_messages_all_arrive(
    broker: Mosquitto, tmp_path: Path
) -> None:
    port = free_port()
    async with cloud_worker(
        cloud_config(broker, tmp_path, metrics_listen=f"127.0.0.1:{port}")
    ) as cloud:
        await until(cloud.ingest.ingress.connected.is_set, 15, "the cloud to connect")
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="garbage-gun")
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        seq = 0
        for _round in range(20):
            for topic, payload, _reason in GARBAGE:
                seq += 1
                client.publish(*good(seq), qos=1)
                client.publish(topic, payload, qos=1)
        seq += 1
        client.publish(*good(seq), qos=1).wait_for_publish(10)
        event = EventMessage(
            gw="gw-t", dev=GOOD_DEV, seq=seq + 1, ts=time.time(), event="sensor_fault", active=True
        )
        client.publish(event_topic("gw-t", GOOD_DEV), encode(event), qos=1).wait_for_publish(10)
        client.disconnect()
        client.loop_stop()
        await until(
            lambda: cloud.ingest.counts["data"] == seq and cloud.ingest.counts["event"] == 1,
            30,
            f"all {seq} good data messages and the event",
        )
        for _topic, _payload, reason in GARBAGE:
            # the same (gateway, seq) sent again is a redelivery, dropped before the registry check
            want = 1 if reason in ("unknown_device", "wrong_gateway") else 20
            await until(lambda r=reason, w=want: bad_count(cloud, r) >= w, 10, f"{reason} counted")
        assert bad_count(cloud, "unknown_device") == 1
        assert cloud.ingest.duplicates >= 38, (
            "repeats of the ghost's and gw-x's seq are redeliveries"
        )
        url = f"http://127.0.0.1:{port}/metrics"
        scraped = (await asyncio.to_thread(urllib.request.urlopen, url, None, 5)).read().decode()
        assert 'gridalarm_bad_messages_total{reason="json"} 20.0' in scraped
        assert f'gridalarm_messages_total{{kind="data"}} {float(seq)}' in scraped
        assert "gridalarm_decision_seconds_bucket" in scraped
    assert cloud.ingest.counts["readings"] == 2 * seq
