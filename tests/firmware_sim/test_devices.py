"""Each device type: truth in engineering units after events, over simulated time."""

from __future__ import annotations

import struct

import pytest

from firmware_sim import UnknownEventError, UnknownFaultError
from firmware_sim.ebike import EbikeBlocker
from firmware_sim.flood import FloodGauge
from firmware_sim.manhole import ManholeCover
from firmware_sim.registers import f32_cdab, f32_cdab_words, s16, to_s16
from firmware_sim.smoke import SmokeDetector

T0 = 1_700_000_000.0


def test_word_conversions() -> None:
    assert to_s16(-100) == 0xFF9C and s16(0xFF9C) == -100
    first, second = f32_cdab_words(123.25)
    assert struct.pack(">HH", second, first) == struct.pack(">f", 123.25)
    assert f32_cdab(first, second) == 123.25


def test_smoke_event_table() -> None:
    dev = SmokeDetector(seed=1, now=T0, initial={"temperature_c": -10.0})
    calm = dev.truth(T0 + 10)
    assert calm["alarm"] is False and calm["battery_mv"] == 3000
    assert -10.3 < float(calm["temperature_c"]) < -9.7
    assert calm["alarm_threshold_pct_per_m"] == 3.0
    dev.trigger("smoke", T0 + 20)
    hot = dev.truth(T0 + 30)
    assert hot["alarm"] is True and float(hot["obscuration_pct_per_m"]) > 3.0
    dev.trigger("test", T0 + 30)
    assert dev.truth(T0 + 34.9)["test"] is True
    assert dev.truth(T0 + 35.1)["test"] is False
    for event in ("fault", "low-battery", "tamper"):
        dev.trigger(event, T0 + 40)
    broken = dev.truth(T0 + 40)
    assert broken["fault"] and broken["tamper"] and broken["low_battery"]
    assert int(broken["battery_mv"]) < 2600
    dev.trigger("clear", T0 + 50)
    assert not any(v for k, v in dev.truth(T0 + 51).items() if isinstance(v, bool))


def test_smoke_silence_ends_with_the_alarm() -> None:
    dev = SmokeDetector(seed=2, now=T0)
    dev.trigger("smoke", T0 + 1)
    dev.write(5, [1], T0 + 2)
    assert dev.truth(T0 + 3)["sounder_silenced"] is True
    dev.trigger("clear", T0 + 4)
    assert dev.truth(T0 + 5)["sounder_silenced"] is False


def test_smoke_threshold_write_moves_the_alarm() -> None:
    dev = SmokeDetector(seed=3, now=T0, initial={"obscuration_pct_per_m": 1.0})
    assert dev.truth(T0 + 1)["alarm"] is False
    dev.write(4, [80], T0 + 1)  # an installer makes it more sensitive
    assert dev.truth(T0 + 2)["alarm"] is True


def test_truth_is_raw_times_scale() -> None:
    dev = SmokeDetector(seed=4, now=T0)
    raw = dev.registers(T0 + 100)
    truth = dev.truth(T0 + 100)
    assert truth["obscuration_pct_per_m"] == raw[1] * 0.01
    assert truth["temperature_c"] == s16(raw[2]) * 0.1


def test_same_seed_same_values_whatever_the_polling() -> None:
    a, b = SmokeDetector(seed=7, now=T0), ManholeCover(seed=7, now=T0)
    c, d = SmokeDetector(seed=7, now=T0), ManholeCover(seed=7, now=T0)
    for step in range(1, 600):
        c.registers(T0 + step * 0.37)
        d.registers(T0 + step * 0.37)
    assert a.truth(T0 + 300) == c.truth(T0 + 300)
    assert b.truth(T0 + 300) == d.truth(T0 + 300)
    assert SmokeDetector(seed=8, now=T0).truth(T0 + 300) != a.truth(T0 + 300)


def test_smoke_battery_drains() -> None:
    dev = SmokeDetector(seed=1, now=T0)
    assert int(dev.truth(T0 + 3600)["battery_mv"]) < 3000


def test_ebike_detection_holds_the_door_for_ten_seconds() -> None:
    dev = EbikeBlocker(seed=1, now=T0)
    dev.trigger("ebike", T0 + 5)
    seen = dev.truth(T0 + 6)
    assert seen["ebike_present"] and seen["door_held"]
    assert seen["detections"] == 1 and seen["last_detection_ts"] == int(T0 + 5)
    assert dev.registers(T0 + 6)[4] == 1
    gone = dev.truth(T0 + 15.1)
    assert not gone["ebike_present"] and not gone["door_held"]
    dev.write(5, [0], T0 + 20)
    dev.trigger("ebike", T0 + 21)
    disabled = dev.truth(T0 + 22)
    assert disabled["ebike_present"] and not disabled["door_held"]
    assert disabled["detections"] == 2 and disabled["door_hold_enabled"] is False
    dev.trigger("camera-fault", T0 + 23)
    assert dev.truth(T0 + 23)["camera_fault"] is True


def test_ebike_counter_wraps() -> None:
    dev = EbikeBlocker(seed=1, now=T0, initial={"detections": 65535})
    dev.trigger("ebike", T0 + 1)
    assert dev.truth(T0 + 1)["detections"] == 0


def test_manhole_events() -> None:
    dev = ManholeCover(seed=1, now=T0, initial={"signal_dbm": -97})
    calm = dev.truth(T0 + 5)
    assert not calm["displaced"] and -101 <= int(calm["signal_dbm"]) <= -93
    dev.trigger("tilt", T0 + 10)
    tilted = dev.truth(T0 + 10)
    assert tilted["displaced"] and tilted["tilt_alarm"] and tilted["tilt_deg"] == 30.0
    dev.trigger("water", T0 + 11)
    assert dev.truth(T0 + 11)["water_level_mm"] == 800
    assert dev.truth(T0 + 11)["water_alarm"] is True
    dev.trigger("low-battery", T0 + 12)
    assert dev.truth(T0 + 12)["low_battery"] is True
    dev.trigger("clear", T0 + 13)
    assert not any(v for k, v in dev.truth(T0 + 14).items() if isinstance(v, bool))


def test_flood_rise_climbs_to_400_mm_in_a_minute() -> None:
    dev = FloodGauge(seed=1, now=T0)
    dev.trigger("rise", T0 + 10)
    half = float(dev.truth(T0 + 40)["level_mm"])
    assert 190 < half < 210
    full = dev.truth(T0 + 75)
    assert 399 < float(full["level_mm"]) < 401 and full["level_alarm"] is True
    raw = dev.registers(T0 + 75)
    assert full["level_mm"] == f32_cdab(raw[1], raw[2])


def test_flood_rain_fills_and_dry_weather_drains() -> None:
    dev = FloodGauge(seed=1, now=T0, initial={"level_alarm_point_mm": 100})
    dev.trigger("rain", T0)
    wet = dev.truth(T0 + 120)
    assert wet["rain_mm_h"] == 350 * 10**-1
    assert 115 < float(wet["level_mm"]) < 125 and wet["level_alarm"] is True
    dev.trigger("clear", T0 + 121)
    dry = dev.truth(T0 + 122)
    assert dry["level_mm"] == 0.0 and dry["rain_mm_h"] == 0.0 and not dry["level_alarm"]
    dev.trigger("fault", T0 + 123)
    assert dev.truth(T0 + 123)["sensor_fault"] is True


def test_unknown_event_and_fault_are_refused() -> None:
    dev = FloodGauge(seed=1, now=T0)
    with pytest.raises(UnknownEventError, match="rise, rain, fault, clear"):
        dev.trigger("smoke", T0)
    with pytest.raises(UnknownFaultError):
        dev.set_fault("melted")
