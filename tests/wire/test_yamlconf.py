"""YAML config errors name the file, the line and the field."""

from __future__ import annotations

import pydantic
import pytest

from wire.yamlconf import ConfigError, load_model


class Dev(pydantic.BaseModel, extra="forbid"):
    id: str
    unit: int = pydantic.Field(ge=1, le=247)


class Conf(pydantic.BaseModel, extra="forbid"):
    name: str
    devices: list[Dev]


def test_every_error_names_file_line_field() -> None:
    text = (
        "name: x\ndevices:\n  - id: a\n    unit: 3\n  - id: b\n    unit: 300\n"
        "  - id: c\n    unti: 4\n"
    )
    with pytest.raises(ConfigError) as info:
        load_model(Conf, text, "gw.yaml")
    lines = str(info.value).splitlines()
    assert "gw.yaml:6: devices[1].unit: Input should be less than or equal to 247" in lines
    assert "gw.yaml:8: devices[2].unti: Extra inputs are not permitted" in lines
    assert any(line.startswith("gw.yaml:7: devices[2].unit") for line in lines)


def test_syntax_error_names_line() -> None:
    with pytest.raises(ConfigError, match=r"gw.yaml:[34]: YAML syntax"):
        load_model(Conf, "name: x\ndevices:\n  - id: [a\n", "gw.yaml")


def test_valid_config_loads() -> None:
    conf = load_model(Conf, "name: x\ndevices:\n  - {id: a, unit: 1}\n", "gw.yaml")
    assert conf.devices[0].unit == 1
