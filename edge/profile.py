"""Device profiles: a register map (or ASCII fields) → named measurements and events.

A profile is one YAML file (shipped ones in ``edge/profiles/``). Each measurement and event
rule is compiled into small closures when the profile is built, so a poll of 500 devices
costs a loop over closures each.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from edge.decode import (
    Convert,
    Decoded,
    DType,
    Fetch,
    FieldEvent,
    ReadBlock,
    Value,
    bit_converter,
    number_converter,
    plan_reads,
    raw_reader,
    register_fetch,
)
from edge.errors import EdgeError
from wire.yamlconf import ConfigError, ConfigIssue, line_of, parse_yaml, unreadable, validate

__all__ = [
    "DType",
    "Decoded",
    "EventRule",
    "FieldEvent",
    "Identify",
    "Measurement",
    "Profile",
    "ProfileReferenceError",
    "ProfileSet",
    "ReadBlock",
    "UnknownProfileError",
]

SHIPPED_DIR = Path(__file__).parent / "profiles"
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_\-]{0,63}$")]
Register = Annotated[int, Field(ge=0, le=0xFFFF)]
Loc = tuple[int | str, ...]


class UnknownProfileError(EdgeError, KeyError):
    """No profile of that name; ``known`` lists the names there are."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.name = name
        self.known = tuple(known)
        super().__init__(name)

    def __str__(self) -> str:
        return f"unknown device profile {self.name!r} (known: {', '.join(self.known)})"


class ProfileReferenceError(EdgeError):
    """A profile whose parts do not fit together; ``problems`` are (field path, message).

    Not a ValueError on purpose: pydantic lets it through unwrapped, so the loader can
    point each problem at its own YAML line instead of at the top of the file.
    """

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{_dotted(loc)}: {msg}" for loc, msg in problems))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Identify(_Model):
    """How `scan` recognises the product: a read-only identity word."""

    address: Register = Field(6, description="Holding register of the identity word.")
    value: Register = Field(description="Identity word of this product, e.g. 0x5301.")


class Measurement(_Model):
    """One named value: where it lives and how to turn raw words into engineering units."""

    name: Name = Field(description="Measurement name with its unit, e.g. 'temperature_c'.")
    address: Register | None = Field(None, description="First holding register (Modbus profiles).")
    key: str | None = Field(
        None, description="Field key in the ASCII reply, e.g. 'S', 'T' (ASCII profiles)."
    )
    dtype: DType = Field(DType.U16, description="Encoding: u16, s16, u32, s32, f32 or bit.")
    bit: int | None = Field(None, ge=0, le=15, description="Bit index (dtype bit only).")
    word_order: Literal["big", "little"] = Field(
        "big", description="32-bit word order: big = 'AB CD' (high word first), little = 'CD AB'."
    )
    byte_order: Literal["big", "little"] = Field(
        "big", description="Byte order inside each word; little = byte-swapped words."
    )
    scale: float = Field(1.0, description="Value = raw × scale.")
    decimals_register: Register | None = Field(
        None, description="Register holding a decimals count d: value = raw × scale × 10^-d."
    )
    unit: str = Field("", description="Unit for display, e.g. '°C', 'mm', '%/m'.")
    deadband: float = Field(
        0.0,
        ge=0,
        description="Report-by-exception threshold in the measurement's unit; 0 = any change.",
    )
    valid_min: float | None = Field(
        None, description="Lowest valid value (bit: lowest valid register word); below → invalid."
    )
    valid_max: float | None = Field(
        None,
        description="Highest valid value (bit: highest valid register word, e.g. 31 for 5 bits).",
    )

    @model_validator(mode="after")
    def _shape(self) -> Measurement:
        if (self.dtype is DType.BIT) != (self.bit is not None):
            raise ValueError("'bit' is required for dtype bit and only allowed there")
        if self.address is not None and self.key is not None:
            raise ValueError("give 'address' (Modbus) or 'key' (ASCII), not both")
        return self

    @property
    def registers(self) -> list[int]:
        """Every register this measurement reads, its decimals register last."""
        assert self.address is not None
        regs = [self.address + i for i in range(self.dtype.words)]
        return regs if self.decimals_register is None else [*regs, self.decimals_register]

    def converter(self) -> Convert:
        """The compiled words → value function."""
        if self.dtype is DType.BIT:
            assert self.bit is not None
            return bit_converter(self.bit, self.valid_min, self.valid_max)
        return number_converter(
            raw_reader(
                self.dtype,
                word_swap=self.word_order == "little",
                byte_swap=self.byte_order == "little",
            ),
            scale=self.scale,
            keep_int=self.dtype.integer and self.scale == 1 and self.decimals_register is None,
            decimals=self.decimals_register is not None,
            valid_min=self.valid_min,
            valid_max=self.valid_max,
        )


class EventRule(_Model):
    """A discrete event derived from a measurement: a bool's edges or a counter's increase."""

    name: Name = Field(description="Event name as published, e.g. 'smoke_alarm'.")
    measurement: Name = Field(description="Measurement it watches.")
    kind: Literal["edge", "counter"] = Field(
        "edge",
        description="edge: bool rising (active) / falling; counter: momentary, per increase.",
    )
    counter_modulus: int = Field(65536, gt=1, description="Counter wraps to 0 at this value.")
    attach: list[Name] = Field(
        default_factory=list,
        description="Measurements whose current values ride along in the detail.",
    )


class Profile(_Model):
    """A device type: its register map or ASCII fields, its events and its defaults."""

    name: Name = Field(description="Profile name, used in device configs, e.g. 'smoke'.")
    description: str = Field("", description="What the device is.")
    protocol: Literal["modbus", "ascii"] = Field(
        "modbus", description="Modbus registers or ASCII line."
    )
    identify: Identify | None = Field(None, description="Identity rule for `scan` (Modbus only).")
    poll_interval_s: float = Field(1.0, gt=0, description="Default seconds between polls.")
    heartbeat_s: float = Field(
        60.0, gt=0, description="Default: publish all values at least this often."
    )
    measurements: list[Measurement] = Field(min_length=1, description="Named values.")
    event_rules: list[EventRule] = Field(
        default_factory=list, alias="events", description="Discrete events (YAML key 'events')."
    )

    _plan: list[ReadBlock] = PrivateAttr(default_factory=list)
    _decoders: list[tuple[str, Fetch | str, Convert]] = PrivateAttr(default_factory=list)
    _deadbands: list[tuple[str, float]] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _compile(self) -> Profile:
        """Check that the parts fit, then compile the read plan, decoders and deadbands once."""
        if problems := _problems(self):
            raise ProfileReferenceError(problems)
        if self.protocol == "modbus":
            self._plan = plan_reads([r for m in self.measurements for r in m.registers])
            self._decoders = [
                (m.name, register_fetch(m.registers, self._plan), m.converter())
                for m in self.measurements
            ]
        else:
            self._decoders = [(m.name, m.key or "", m.converter()) for m in self.measurements]
        self._deadbands = [
            (m.name, 0.0 if m.dtype is DType.BIT else m.deadband) for m in self.measurements
        ]
        return self

    def read_plan(self) -> list[ReadBlock]:
        """The FC03 reads one poll needs, in the order decode_registers expects the blocks."""
        return list(self._plan)

    def decode_registers(self, blocks: Sequence[Sequence[int]]) -> Decoded:
        """Decode the blocks read per read_plan()."""
        if len(blocks) != len(self._plan) or any(
            len(b) != p.count for b, p in zip(blocks, self._plan, strict=True)
        ):
            raise ValueError(f"profile {self.name}: blocks do not match the read plan {self._plan}")
        values: dict[str, Value] = {}
        invalid: list[str] = []
        for name, fetch, convert in self._decoders:
            assert not isinstance(fetch, str)
            value = convert(fetch(blocks))
            if value is None:
                invalid.append(name)
            else:
                values[name] = value
        return Decoded(values, tuple(invalid))

    def decode_ascii(self, fields: Mapping[str, int]) -> Decoded:
        """Decode the integer fields of an ASCII reply (a missing field → invalid)."""
        values: dict[str, Value] = {}
        invalid: list[str] = []
        for name, key, convert in self._decoders:
            assert isinstance(key, str)
            raw = fields.get(key)
            value = (
                None if raw is None or not -0x8000 <= raw <= 0xFFFF else convert((raw & 0xFFFF,))
            )
            if value is None:
                invalid.append(name)
            else:
                values[name] = value
        return Decoded(values, tuple(invalid))

    def events(
        self, previous: Mapping[str, Value] | None, current: Mapping[str, Value]
    ) -> list[FieldEvent]:
        """Events between two polls' values.

        A bool with no previous value (first poll, or it was invalid) raises its event if it
        is active now, so an alarm that was on before we looked is not lost; it never falls.
        A counter needs a previous value to count from.
        """
        before = previous or {}
        out: list[FieldEvent] = []
        for rule in self.event_rules:
            now = current.get(rule.measurement)
            if now is None:
                continue
            then = before.get(rule.measurement)
            if rule.kind == "edge":
                if bool(now) != bool(then):
                    out.append(FieldEvent(rule.name, bool(now), _attached(rule, current)))
            elif then is not None and (delta := (int(now) - int(then)) % rule.counter_modulus):
                detail = {rule.measurement: now, "delta": delta, **_attached(rule, current)}
                out.append(FieldEvent(rule.name, None, detail))
        return out

    def changed(self, previous_reported: Mapping[str, Value], current: Mapping[str, Value]) -> bool:
        """True when any measurement moved beyond its deadband, or became (in)valid."""
        for name, deadband in self._deadbands:
            then = previous_reported.get(name)
            now = current.get(name)
            if then is None or now is None:
                if (then is None) != (now is None):
                    return True
            elif now != then if deadband == 0 else abs(now - then) > deadband:
                return True
        return False

    def measurement(self, name: str) -> Measurement:
        """The measurement called ``name``."""
        for m in self.measurements:
            if m.name == name:
                return m
        raise KeyError(name)


def _attached(rule: EventRule, current: Mapping[str, Value]) -> dict[str, Value]:
    return {m: current[m] for m in rule.attach if m in current}


def _problems(p: Profile) -> list[tuple[Loc, str]]:
    """Cross-field checks, each with the path of the offending field."""
    problems: list[tuple[Loc, str]] = []
    names = [m.name for m in p.measurements]
    for i, m in enumerate(p.measurements):
        at: Loc = ("measurements", i)
        if names.index(m.name) != i:
            problems.append(((*at, "name"), f"duplicate measurement {m.name!r}"))
        if p.protocol == "modbus":
            if m.address is None:
                problems.append(((*at, "address"), "required in a Modbus profile"))
        else:
            if m.key is None:
                problems.append(((*at, "key"), "required in an ASCII profile"))
            if m.dtype.words != 1 or m.decimals_register is not None:
                problems.append(((*at, "dtype"), "ASCII fields are single 16-bit values"))
        if m.decimals_register is not None and m.dtype is DType.BIT:
            problems.append(((*at, "decimals_register"), "not for dtype bit"))
        if not math.isfinite(m.scale) or m.scale == 0:
            problems.append(((*at, "scale"), "must be a finite non-zero number"))
    event_names = [e.name for e in p.event_rules]
    for i, e in enumerate(p.event_rules):
        problems += _event_problems(e, i, p, names, event_names)
    if p.identify is not None and p.protocol != "modbus":
        problems.append((("identify",), "only Modbus profiles can be identified by a register"))
    return problems


def _event_problems(
    e: EventRule, i: int, p: Profile, names: list[str], event_names: list[str]
) -> list[tuple[Loc, str]]:
    at: Loc = ("events", i)
    problems: list[tuple[Loc, str]] = []
    if event_names.index(e.name) != i:
        problems.append(((*at, "name"), f"duplicate event {e.name!r}"))
    if e.measurement not in names:
        return [
            *problems,
            ((*at, "measurement"), f"unknown measurement {e.measurement!r} (known: {names})"),
        ]
    m = p.measurements[names.index(e.measurement)]
    if e.kind == "edge" and m.dtype is not DType.BIT:
        problems.append(
            ((*at, "measurement"), f"an edge event needs a bit measurement, {m.name} is {m.dtype}")
        )
    if e.kind == "counter" and not (
        m.dtype.integer and m.scale == 1 and m.decimals_register is None
    ):
        problems.append(
            ((*at, "measurement"), f"a counter needs an unscaled integer, {m.name} is not")
        )
    problems += [
        ((*at, "attach", j), f"unknown measurement {a!r}")
        for j, a in enumerate(e.attach)
        if a not in names
    ]
    return problems


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_profile_file(path: Path) -> Profile:
    """Read one profile file; ConfigError names the file, line and field of every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise unreadable(str(path), err) from err
    data = parse_yaml(text, str(path))
    try:
        return validate(Profile, data, str(path))
    except ProfileReferenceError as err:
        issues = [
            ConfigIssue(str(path), line_of(data, loc), _dotted(loc), msg)
            for loc, msg in err.problems
        ]
        raise ConfigError(issues) from err


class ProfileSet:
    """The profiles a gateway knows, by name."""

    def __init__(self, profiles: Sequence[Profile]) -> None:
        self._by_name: dict[str, Profile] = {}
        for p in profiles:
            self._by_name[p.name] = p

    @classmethod
    def load(cls, extra_dirs: Sequence[Path] = ()) -> ProfileSet:
        """Shipped profiles, then each extra folder's ``*.yaml``; later files override by name.

        Every bad file is reported in one ConfigError; nothing loads half.
        """
        profiles: list[Profile] = []
        issues: list[ConfigIssue] = []
        for folder in [SHIPPED_DIR, *extra_dirs]:
            if not folder.is_dir():
                issues.append(ConfigIssue(str(folder), None, "", "profile folder does not exist"))
                continue
            for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
                try:
                    profiles.append(load_profile_file(path))
                except ConfigError as err:
                    issues += err.issues
        if issues:
            raise ConfigError(issues)
        return cls(profiles)

    def get(self, name: str) -> Profile:
        """The profile called ``name``; UnknownProfileError (a KeyError) lists the known ones."""
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownProfileError(name, self.names()) from None

    def names(self) -> list[str]:
        """Known profile names, sorted."""
        return sorted(self._by_name)

    def guess(self, registers_0_to_7: Sequence[int]) -> Profile | None:
        """The Modbus profile whose identity word matches, for `scan`."""
        for p in self._by_name.values():
            ident = p.identify
            if (
                ident
                and ident.address < len(registers_0_to_7)
                and registers_0_to_7[ident.address] == ident.value
            ):
                return p
        return None

    def __iter__(self) -> Iterator[Profile]:
        return iter(self._by_name[n] for n in self.names())

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name
