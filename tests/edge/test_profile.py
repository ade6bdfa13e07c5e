"""Device profiles: decoding hand-built registers, events, deadbands, and bad profile files."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from edge.errors import EdgeError
from edge.profile import (
    Decoded,
    FieldEvent,
    Profile,
    ProfileSet,
    ReadBlock,
    UnknownProfileError,
)
from wire.yamlconf import ConfigError


@pytest.fixture(scope="module")
def profiles() -> ProfileSet:
    return ProfileSet.load([])


def f32_cdab(value: float) -> list[int]:
    hi, lo = struct.unpack(">HH", struct.pack(">f", value))
    return [lo, hi]


@pytest.mark.parametrize(
    ("profile", "registers", "expected"),
    [
        (
            "smoke",
            [0b10001, 350, 0xFF9C, 3000, 300, 1],
            {
                "alarm": True,
                "fault": False,
                "test": False,
                "low_battery": False,
                "tamper": True,
                "obscuration_pct_per_m": 350 * 0.01,
                "temperature_c": -100 * 0.1,
                "battery_mv": 3000,
                "alarm_threshold_pct_per_m": 300 * 0.01,
                "sounder_silenced": True,
            },
        ),
        (
            "smoke",
            [0b01110, 3, 253, 2500, 50, 0],
            {
                "alarm": False,
                "fault": True,
                "test": True,
                "low_battery": True,
                "tamper": False,
                "obscuration_pct_per_m": 3 * 0.01,
                "temperature_c": 253 * 0.1,
                "battery_mv": 2500,
                "alarm_threshold_pct_per_m": 50 * 0.01,
                "sounder_silenced": False,
            },
        ),
        (
            "ebike",
            [0b011, 65535, 0x6543, 0x2100, 1, 0],
            {
                "ebike_present": True,
                "door_held": True,
                "camera_fault": False,
                "detections": 65535,
                "last_detection_ts": 0x65432100,
                "door_hold_enabled": False,
            },
        ),
        (
            "manhole",
            [0b0011, 0xFE3E, 120, 3600, 0xFFAB],
            {
                "displaced": True,
                "tilt_alarm": True,
                "water_alarm": False,
                "low_battery": False,
                "tilt_deg": -450 * 0.1,
                "water_level_mm": 120,
                "battery_mv": 3600,
                "signal_dbm": -85,
            },
        ),
        (
            "manhole",
            [0b1100, 900, 800, 2400, 0xFFF6],
            {
                "displaced": False,
                "tilt_alarm": False,
                "water_alarm": True,
                "low_battery": True,
                "tilt_deg": 900 * 0.1,
                "water_level_mm": 800,
                "battery_mv": 2400,
                "signal_dbm": -10,
            },
        ),
        (
            "flood",
            [0b10, *f32_cdab(412.75), 125, 1, 300],
            {
                "sensor_fault": False,
                "level_alarm": True,
                "level_mm": 412.75,
                "rain_mm_h": 125 * 10.0**-1,
                "level_alarm_point_mm": 300,
            },
        ),
        (
            "flood",
            [0b01, *f32_cdab(0.1), 3500, 2, 0],
            {
                "sensor_fault": True,
                "level_alarm": False,
                "level_mm": struct.unpack(">f", struct.pack(">f", 0.1))[0],
                "rain_mm_h": 3500 * 10.0**-2,
                "level_alarm_point_mm": 0,
            },
        ),
    ],
)
def test_decode_registers(
    profiles: ProfileSet, profile: str, registers: list[int], expected: dict[str, object]
) -> None:
    p = profiles.get(profile)
    [block] = p.read_plan()
    decoded = p.decode_registers([registers[: block.count]])
    assert decoded == Decoded(expected, ())
    for name, value in decoded.values.items():
        assert type(value) is type(expected[name]), name


def test_integers_stay_int_and_scaled_become_float(profiles: ProfileSet) -> None:
    values = profiles.get("smoke").decode_registers([[0, 0, 0, 3000, 300, 0]]).values
    assert type(values["battery_mv"]) is int
    assert type(values["temperature_c"]) is float
    assert type(values["alarm"]) is bool


@pytest.mark.parametrize(
    ("profile", "invalid"),
    [
        (
            "smoke",
            (
                "alarm",
                "fault",
                "test",
                "low_battery",
                "tamper",
                "obscuration_pct_per_m",
                "battery_mv",
                "alarm_threshold_pct_per_m",
                "sounder_silenced",
            ),
        ),
        (
            "ebike",
            (
                "ebike_present",
                "door_held",
                "camera_fault",
                "last_detection_ts",
                "door_hold_enabled",
            ),
        ),
        (
            "manhole",
            (
                "displaced",
                "tilt_alarm",
                "water_alarm",
                "low_battery",
                "water_level_mm",
                "battery_mv",
            ),
        ),
        ("flood", ("sensor_fault", "level_alarm", "level_mm", "rain_mm_h", "level_alarm_point_mm")),
    ],
)
def test_garbage_registers_are_invalid_not_values(
    profiles: ProfileSet, profile: str, invalid: tuple[str, ...]
) -> None:
    p = profiles.get(profile)
    decoded = p.decode_registers([[0xFFFF] * b.count for b in p.read_plan()])
    assert decoded.invalid == invalid
    assert not set(invalid) & set(decoded.values)
    # 0xFFFF as s16 is -1: plausible, so it stays a value (-0.1 °C, -0.1 °, -1 dBm)
    assert set(decoded.values) == {m.name for m in p.measurements} - set(invalid)


def test_nan_and_bad_decimals_are_invalid(profiles: ProfileSet) -> None:
    nan = list(struct.unpack(">HH", struct.pack(">f", float("nan"))))
    decoded = profiles.get("flood").decode_registers([[0, nan[1], nan[0], 125, 12, 300]])
    assert decoded.invalid == ("level_mm", "rain_mm_h")


def test_read_plan_is_one_block_including_decimals(profiles: ProfileSet) -> None:
    assert profiles.get("smoke").read_plan() == [ReadBlock(0, 6)]
    assert profiles.get("ebike").read_plan() == [ReadBlock(0, 6)]
    assert profiles.get("manhole").read_plan() == [ReadBlock(0, 5)]
    assert profiles.get("flood").read_plan() == [ReadBlock(0, 6)]


def test_read_plan_splits_far_registers_and_decodes_across_blocks() -> None:
    p = Profile.model_validate(
        {
            "name": "split",
            "measurements": [
                {"name": "a", "address": 0},
                {"name": "b_c", "address": 100, "dtype": "s32", "word_order": "little"},
                {"name": "d", "address": 102, "decimals_register": 3},
            ],
        }
    )
    assert p.read_plan() == [ReadBlock(0, 4), ReadBlock(100, 3)]
    decoded = p.decode_registers([[7, 0, 0, 2], [0xFFFE, 0xFFFF, 1234]])
    assert decoded.values == {"a": 7, "b_c": -2, "d": 1234 * 10.0**-2}


def test_byte_swapped_words() -> None:
    p = Profile.model_validate(
        {
            "name": "swapped",
            "measurements": [
                {"name": "v", "address": 0, "dtype": "u32", "byte_order": "little"},
                {"name": "w", "address": 2, "byte_order": "little", "scale": 0.5},
            ],
        }
    )
    assert p.decode_registers([[0x3412, 0x7856, 0x0201]]).values == {
        "v": 0x12345678,
        "w": 0x0102 * 0.5,
    }


def test_decode_rejects_blocks_that_do_not_match_the_plan(profiles: ProfileSet) -> None:
    with pytest.raises(ValueError, match="read plan"):
        profiles.get("smoke").decode_registers([[0, 0, 0]])


def test_decode_ascii(profiles: ProfileSet) -> None:
    p = profiles.get("smoke-ascii")
    decoded = p.decode_ascii({"S": 0x0005, "OB": 412, "T": -100, "B": 2900})
    assert decoded == Decoded(
        {
            "alarm": True,
            "fault": False,
            "test": True,
            "low_battery": False,
            "tamper": False,
            "obscuration_pct_per_m": 412 * 0.01,
            "temperature_c": -100 * 0.1,
            "battery_mv": 2900,
        },
        (),
    )
    missing = p.decode_ascii({"S": 0, "OB": 0, "T": 0})
    assert missing.invalid == ("battery_mv",)


def test_guess_by_identity_word(profiles: ProfileSet) -> None:
    for name, ident in [
        ("smoke", 0x5301),
        ("ebike", 0x4542),
        ("manhole", 0x4D48),
        ("flood", 0x464C),
    ]:
        guessed = profiles.guess([0, 0, 0, 0, 0, 0, ident, 0x0100])
        assert guessed is not None and guessed.name == name
    assert profiles.guess([0] * 8) is None
    assert profiles.guess([0] * 3) is None


def test_unknown_profile_names_the_known_ones(profiles: ProfileSet) -> None:
    with pytest.raises(UnknownProfileError) as caught:
        profiles.get("toaster")
    assert isinstance(caught.value, EdgeError) and isinstance(caught.value, KeyError)
    assert "smoke" in str(caught.value) and "flood" in str(caught.value)


# --- events and report-by-exception -------------------------------------------------


def test_bool_edges(profiles: ProfileSet) -> None:
    p = profiles.get("smoke")
    quiet = {"alarm": False, "fault": False, "obscuration_pct_per_m": 0.2, "temperature_c": 21.0}
    alarm = {**quiet, "alarm": True, "obscuration_pct_per_m": 3.5}
    assert p.events(quiet, quiet) == []
    assert p.events(quiet, alarm) == [
        FieldEvent("smoke_alarm", True, {"obscuration_pct_per_m": 3.5, "temperature_c": 21.0})
    ]
    assert p.events(alarm, quiet) == [
        FieldEvent("smoke_alarm", False, {"obscuration_pct_per_m": 0.2, "temperature_c": 21.0})
    ]


def test_first_poll_raises_active_conditions_only(profiles: ProfileSet) -> None:
    p = profiles.get("manhole")
    now = {"displaced": True, "tilt_alarm": False, "water_alarm": True, "tilt_deg": 30.0}
    assert [(e.name, e.active) for e in p.events(None, now)] == [
        ("cover_displaced", True),
        ("water_alarm", True),
    ]
    # an invalid (missing) value neither raises nor clears anything
    assert p.events(now, {"tilt_deg": 30.0}) == []


@pytest.mark.parametrize(
    ("before", "after", "delta"),
    [(5, 6, 1), (5, 9, 4), (65535, 0, 1), (65534, 2, 4), (7, 7, None)],
)
def test_counter_events_handle_wrap(
    profiles: ProfileSet, before: int, after: int, delta: int | None
) -> None:
    p = profiles.get("ebike")
    events = p.events(
        {"detections": before}, {"detections": after, "last_detection_ts": 1_700_000_000}
    )
    if delta is None:
        assert events == []
    else:
        assert events == [
            FieldEvent(
                "ebike_detected",
                None,
                {"detections": after, "delta": delta, "last_detection_ts": 1_700_000_000},
            )
        ]
    assert p.events(None, {"detections": after}) == []  # no baseline, no count


def test_changed_uses_deadbands(profiles: ProfileSet) -> None:
    p = profiles.get("smoke")  # temperature deadband 0.5, battery 50, threshold 0
    base = {
        "alarm": False,
        "temperature_c": 20.0,
        "battery_mv": 3000,
        "alarm_threshold_pct_per_m": 3.0,
    }
    assert not p.changed(base, dict(base))
    assert not p.changed(base, {**base, "temperature_c": 20.4})
    assert p.changed(base, {**base, "temperature_c": 20.6})
    assert not p.changed(base, {**base, "battery_mv": 3050})
    assert p.changed(base, {**base, "battery_mv": 2949})
    assert p.changed(base, {**base, "alarm": True})
    assert p.changed(base, {**base, "alarm_threshold_pct_per_m": 3.01})
    without_battery = {k: v for k, v in base.items() if k != "battery_mv"}
    assert p.changed(base, without_battery)  # went invalid
    assert p.changed(without_battery, base)  # came back


# --- loading files -------------------------------------------------------------------


def test_shipped_profiles(profiles: ProfileSet) -> None:
    assert profiles.names() == ["ebike", "flood", "manhole", "smoke", "smoke-ascii"]
    assert [e.name for e in profiles.get("smoke").event_rules] == [
        "smoke_alarm",
        "fault",
        "test_button",
        "low_battery",
        "tamper",
    ]


def test_extra_dir_overrides_by_name(tmp_path: Path) -> None:
    (tmp_path / "smoke.yaml").write_text(
        "name: smoke\nprotocol: modbus\nmeasurements:\n  - {name: battery_mv, address: 3}\n"
    )
    (tmp_path / "pump.yaml").write_text(
        "name: pump\nmeasurements:\n  - {name: running, address: 0, dtype: bit, bit: 0}\n"
    )
    profiles = ProfileSet.load([tmp_path])
    assert [m.name for m in profiles.get("smoke").measurements] == ["battery_mv"]
    assert profiles.get("pump").read_plan() == [ReadBlock(0, 1)]
    assert "flood" in profiles


BAD = [
    (  # unknown dtype, deep in a list
        "name: x\nmeasurements:\n  - {name: a, address: 0}\n  - name: b\n    address: 1\n"
        "    dtype: u17\n",
        6,
        "measurements[1].dtype",
    ),
    (  # unknown key
        "name: x\nmeasurements:\n  - name: a\n    address: 0\n    sclae: 0.1\n",
        5,
        "measurements[0].sclae",
    ),
    (  # event refers to a missing measurement (cross-field check)
        "name: x\nmeasurements:\n  - {name: a, address: 0, dtype: bit, bit: 0}\nevents:\n"
        "  - name: e1\n    measurement: a\n  - name: e2\n    measurement: nope\n",
        8,
        "events[1].measurement",
    ),
    (  # counter on a bit
        "name: x\nmeasurements:\n  - {name: a, address: 0, dtype: bit, bit: 0}\nevents:\n"
        "  - {name: e1, measurement: a, kind: counter}\n",
        5,
        "events[0].measurement",
    ),
    (  # ASCII profile without keys
        "name: x\nprotocol: ascii\nmeasurements:\n  - {name: a, key: S}\n  - {name: b}\n",
        5,
        "measurements[1].key",
    ),
    (  # duplicate measurement name
        "name: x\nmeasurements:\n  - {name: a, address: 0}\n  - {name: a, address: 1}\n",
        4,
        "measurements[1].name",
    ),
    (  # bit without index
        "name: x\nmeasurements:\n  - {name: a, address: 0, dtype: bit}\n",
        3,
        "measurements[0]",
    ),
]


@pytest.mark.parametrize(("text", "line", "field"), BAD)
def test_bad_profile_names_file_line_and_field(
    tmp_path: Path, text: str, line: int, field: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        ProfileSet.load([tmp_path])
    [issue] = caught.value.issues
    assert (issue.file, issue.line, issue.field) == (str(path), line, field)
    assert f"{path}:{line}: {field}" in str(caught.value)


def test_every_bad_file_is_reported_at_once(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("name: a\nmeasurements: []\n")
    (tmp_path / "b.yaml").write_text("name: b\nmeasurements: [\n")
    with pytest.raises(ConfigError) as caught:
        ProfileSet.load([tmp_path, tmp_path / "missing"])
    files = [i.file for i in caught.value.issues]
    assert files == [str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"), str(tmp_path / "missing")]
