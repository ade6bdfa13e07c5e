"""Editing a gateway config file as text, so the installer's comments survive.

PyYAML drops comments on a round trip, so `add-device` does not re-dump the file: it finds
the ``devices:`` list with PyYAML's node marks and inserts a block of text after its last
item. The result is validated as a whole; on any error the original text is put back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from edge.config import DeviceConfig
from edge.installer.errors import UsageError
from edge.site import Site, load_site
from wire.yamlconf import ConfigError, parse_yaml

_INDENT = 2


def append_device(path: Path, device: DeviceConfig) -> Site:
    """Append *device* to the ``devices:`` list of *path*; validate; roll back on error.

    Returns the loaded site with the new device. ConfigError lists every issue of the
    edited file (the file itself is left as it was).
    """
    original = _read(path)
    edited = with_device(original, device, str(path))
    _write(path, edited)
    try:
        return load_site(path)
    except ConfigError:
        _write(path, original)
        raise


def with_device(text: str, device: DeviceConfig, filename: str) -> str:
    """*text* with *device* appended to its ``devices:`` list, all else untouched."""
    parse_yaml(text, filename)  # syntax errors as ConfigError, with the line
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    if root is None:
        return "".join([*lines, "devices:\n", *device_block(device, _INDENT)])
    if not isinstance(root, yaml.MappingNode):
        raise UsageError(f"{filename}: the top level is not a mapping of sections")
    for key, value in root.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "devices":
            return _insert(lines, key, value, device, filename)
    return "".join([*lines, "devices:\n", *device_block(device, _INDENT)])


def _insert(
    lines: list[str], key: yaml.Node, value: yaml.Node, device: DeviceConfig, filename: str
) -> str:
    key_line = key.start_mark.line
    if isinstance(value, yaml.SequenceNode) and not value.flow_style and value.value:
        at = _last_line(value) + 1
        return "".join([*lines[:at], *device_block(device, value.start_mark.column), *lines[at:]])
    empty_flow = isinstance(value, yaml.SequenceNode) and value.flow_style and not value.value
    null = isinstance(value, yaml.ScalarNode) and value.tag == "tag:yaml.org,2002:null"
    if not (empty_flow or null):
        raise UsageError(
            f"{filename}:{key_line + 1}: devices: not a block list ('- id: ...' per line); "
            "add the device by hand"
        )
    # `devices: []` or `devices:` / `devices: ~`: drop the empty value, keep any comment.
    line = lines[key_line]
    start, end = value.start_mark.column, value.end_mark.column
    lines[key_line] = (line[:start].rstrip() + " " + line[end:].lstrip()).rstrip() + "\n"
    at = key_line + 1
    block = device_block(device, key.start_mark.column + _INDENT)
    return "".join([*lines[:at], *block, *lines[at:]])


def _last_line(node: yaml.Node) -> int:
    """The 0-based line of the last character that belongs to *node*.

    A block collection's end mark sits at the next token (after any trailing comments), so
    look at its deepest last child instead; a scalar's end mark is right after its text.
    """
    while isinstance(node, yaml.SequenceNode | yaml.MappingNode) and not node.flow_style:
        last = node.value[-1]
        node = last[1] if isinstance(last, tuple) else last
    mark = node.end_mark
    line = int(mark.line)
    return line - 1 if mark.column == 0 and line > 0 else line


def device_block(device: DeviceConfig, dash_column: int) -> list[str]:
    """*device* as a block-list item, the fields that differ from the defaults only."""
    fields = device.model_dump(mode="json", exclude_defaults=True)
    pad = " " * dash_column
    out = []
    for i, (name, value) in enumerate(fields.items()):
        lead = f"{pad}- " if i == 0 else f"{pad}  "
        out.append(f"{lead}{name}: {_scalar(value)}\n")
    return out


def _scalar(value: object) -> str:
    """A YAML scalar that reads back as *value*: plain when safe, else double-quoted."""
    if isinstance(value, str):
        plain = value and value[0] not in "!&*-?[]{}|>'\"%@`#,:" and ": " not in value
        if plain and " #" not in value and yaml.safe_load(value) == value:
            return value
        return json.dumps(value)
    return json.dumps(value)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror}") from err


def _write(path: Path, text: str) -> None:
    """Replace *path* atomically, keeping its permissions."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.chmod(tmp, path.stat().st_mode & 0o7777)
    os.replace(tmp, path)
