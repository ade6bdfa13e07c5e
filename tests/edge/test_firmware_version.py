"""One rule for the firmware word (register 7): firmware_sim/REGISTERS.md's, in scan's output."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edge.installer.scan import FoundUnit, firmware_version
from firmware_sim.catalog import MODELS

REGISTERS_MD = Path(__file__).resolve().parents[2] / "firmware_sim" / "REGISTERS.md"


@pytest.mark.parametrize(
    ("word", "version"),
    [
        (0x0102, "v1.2"),
        (0x0110, "v1.10"),  # BCD: not v1.16
        (0x0100, "v1.0"),
        (0x1203, "v12.3"),
        (0x9999, "v99.99"),
        (0x0000, "v0.0"),
        (0x01AF, ""),  # a nibble above 9 is not a version
        (0xFFFF, ""),
    ],
)
def test_firmware_word_is_bcd_major_minor(word: int, version: str) -> None:
    assert firmware_version(word) == version


def test_registers_md_states_the_rule_scan_uses() -> None:
    text = REGISTERS_MD.read_text(encoding="utf-8")
    rule = next(line for line in text.splitlines() if line.startswith("| firmware version |"))
    examples = re.findall(r"(0x[0-9A-F]{4}) = (v[0-9.]+)", rule)
    assert len(examples) >= 3
    for word, version in examples:
        assert firmware_version(int(word, 16)) == version, rule
    per_type = re.findall(
        r"\| 0x0007 \| firmware \| u16 \| — \| — \| (0x[0-9A-F]{4}) = (v[0-9.]+)", text
    )
    assert len(per_type) == len(MODELS)
    for word, version in per_type:
        assert firmware_version(int(word, 16)) == version


def test_every_simulated_type_serves_a_documented_version() -> None:
    text = REGISTERS_MD.read_text(encoding="utf-8")
    for name, model in MODELS.items():
        word = model(seed=0, now=0.0, initial={}).read(7, 1, 0.0)[0]
        unit = FoundUnit(1, registers=(0,) * 7 + (word,))
        assert unit.firmware_version, name
        assert f"0x{word:04X} = {unit.firmware_version} |" in text, name
