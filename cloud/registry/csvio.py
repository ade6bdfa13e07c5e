"""CSV plumbing shared by the registry files: rows with their line, errors with file:line:field.

Every reader collects all problems of a file and raises one ConfigError listing them, so an
operator fixes a file in one pass. A UTF-8 byte-order mark (Excel's habit) is ignored.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from wire.yamlconf import ConfigError, ConfigIssue

T = TypeVar("T")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_PHONE_NOISE = re.compile(r"[\s\-().]")


class FieldError(ValueError):
    """A bad value in one column of one row."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def parse_csv(
    text: str,
    filename: str,
    columns: Sequence[str],
    required: Sequence[str],
    parse: Callable[[dict[str, str]], T],
    *,
    key: Callable[[T], object] | None = None,
) -> list[tuple[int, T]]:
    """Parse every row with *parse*; return (line, item) pairs or raise one ConfigError.

    *key* names what must be unique in the file (a duplicate is an error at its second line).
    """
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    header = [h.strip() for h in next(reader, [])]
    issues = [
        ConfigIssue(filename, 1, c, "required column missing") for c in required if c not in header
    ]
    issues += [ConfigIssue(filename, 1, c, "unknown column") for c in header if c not in columns]
    if issues:
        raise ConfigError(issues)
    items: list[tuple[int, T]] = []
    seen: dict[object, int] = {}
    line = reader.line_num
    for raw in reader:
        start, line = line + 1, reader.line_num
        if not any(cell.strip() for cell in raw):
            continue
        if len(raw) != len(header):
            issues.append(
                ConfigIssue(filename, start, "", f"{len(raw)} cells, header has {len(header)}")
            )
            continue
        row = {h: cell.strip() for h, cell in zip(header, raw, strict=True)}
        try:
            item = parse(row)
        except FieldError as err:
            issues.append(ConfigIssue(filename, start, err.field, err.message))
            continue
        if key is not None:
            k = key(item)
            if k in seen:
                issues.append(
                    ConfigIssue(
                        filename, start, str(columns[0]), f"{k!r} already on line {seen[k]}"
                    )
                )
                continue
            seen[k] = start
        items.append((start, item))
    if issues:
        raise ConfigError(issues)
    return items


def write_csv(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue()


def required(row: dict[str, str], field: str) -> str:
    value = row.get(field, "")
    if not value:
        raise FieldError(field, "empty")
    return value


def number(row: dict[str, str], field: str, low: float, high: float) -> float:
    try:
        value = float(required(row, field))
    except ValueError:
        raise FieldError(field, f"{row[field]!r} is not a number") from None
    if not low <= value <= high:
        raise FieldError(field, f"{value} is outside {low}..{high}")
    return value


def phone(row: dict[str, str], field: str, *, country: str = "86") -> str:
    """A phone number in E.164; national forms (13800000001, 0592-1234567) get +*country*."""
    raw = row.get(field, "")
    digits = _PHONE_NOISE.sub("", raw)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    elif digits and not digits.startswith("+"):
        digits = "+" + country + digits.removeprefix("0")
    if not _E164.match(digits):
        raise FieldError(field, f"{raw!r} is not a phone number (E.164, e.g. +8613800000001)")
    return digits


def choice(row: dict[str, str], field: str, options: Sequence[str], default: str) -> str:
    value = row.get(field) or default
    if value not in options:
        raise FieldError(field, f"{value!r} is not one of {', '.join(options)}")
    return value
