"""Showing a replay report: a timeline and summary tables on the terminal, or one HTML file.

Both work from the JSON report's data, so what is shown is what was saved.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Mapping
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

SEVERITY_STYLE = {"critical": "bold red", "danger": "red", "warning": "yellow", "info": "cyan"}


def when(ts: float | None, tz_offset_h: float) -> str:
    if ts is None:
        return "-"
    tz = dt.timezone(dt.timedelta(hours=tz_offset_h))
    return dt.datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M:%S")


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def print_timeline(
    console: Console, transitions: list[dict[str, Any]], limit: int, tz_offset_h: float
) -> None:
    for t in transitions[:limit]:
        style = SEVERITY_STYLE.get(t["severity"], "")
        who = escape(f"{t['device'] or t['gateway']:<12}  {t['title_zh']}  {t['title_en']}")
        console.print(
            f"{when(t['ts'], tz_offset_h)}  {t['kind']:<10} [{style}]{t['severity']:<8}[/]  {who}",
            highlight=False,
            soft_wrap=True,
        )
    if len(transitions) > limit:
        console.print(
            f"… {len(transitions) - limit} more transitions (see --report / --html)", soft_wrap=True
        )


def _counts_table(title: str, counts: Mapping[str, int] | Iterable[tuple[str, int]]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("")
    table.add_column("alarms", justify="right")
    for name, n in counts.items() if isinstance(counts, Mapping) else counts:
        table.add_row(str(name), str(n))
    return table


def print_summary(console: Console, summary: dict[str, Any], stats: dict[str, Any]) -> None:
    console.print(
        f"[bold]{summary['alarms']}[/] alarms, {summary['transitions']} transitions "
        f"({', '.join(f'{k} {v}' for k, v in summary['by_kind'].items()) or 'none'})",
        soft_wrap=True,
    )
    ttr = summary["time_to_raise_s"]
    console.print(
        f"time to raise (triggering message → raise): median {_secs(ttr['median'])}, "
        f"p95 {_secs(ttr['p95'])}, max {_secs(ttr['max'])}",
        soft_wrap=True,
    )
    for title, key in (
        ("by rule", "by_rule"),
        ("by severity", "by_severity"),
        ("by device type", "by_device_type"),
        ("top devices", "top_devices"),
    ):
        if summary[key]:
            console.print(_counts_table(title, summary[key]))
    ignored = {k: stats[k] for k in ("duplicates", "unknown_device", "wrong_gateway") if stats[k]}
    if ignored or stats["refused"]:
        console.print(
            f"skipped: {ignored} refused: {stats['refused']}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def print_comparison(console: Console, compare: dict[str, Any], tz_offset_h: float) -> None:
    c = compare["counts"]
    labels = escape(f"A={compare.get('label_a', 'A')} B={compare['rules']['label']}")
    console.print(
        f"[bold]compare[/] {labels}: "
        f"only in A {c['only_a']}, only in B {c['only_b']}, shifted {c['shifted']}, "
        f"same {c['same']}, severity changed {c['severity_changed']}",
        soft_wrap=True,
    )
    for title, rows in (("only in A", compare["only_a"]), ("only in B", compare["only_b"])):
        for r in rows:
            console.print(
                f"  {title}: {when(r['ts'], tz_offset_h)} {r['key']} {r['severity']}",
                markup=False,
                soft_wrap=True,
            )
    for r in compare["shifted"]:
        console.print(
            f"  shifted {r['shift_s']:+.1f} s: {r['key']} "
            f"{when(r['a_ts'], tz_offset_h)} → {when(r['b_ts'], tz_offset_h)}",
            markup=False,
            soft_wrap=True,
        )


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.5em}
table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}
th{background:#f0f0f0}td.n{text-align:right}
.critical{color:#fff;background:#b00}.danger{color:#b00}.warning{color:#a60}.info{color:#06a}
.grid{display:flex;gap:2em;flex-wrap:wrap}
"""


def _table(head: list[str], rows: Iterable[list[Any]], classes: Iterable[str] = ()) -> str:
    out = ["<table><tr>", *(f"<th>{html.escape(h)}</th>" for h in head), "</tr>"]
    cls = list(classes)
    for i, row in enumerate(rows):
        attr = f' class="{html.escape(cls[i])}"' if i < len(cls) else ""
        cells = "".join(f"<td>{html.escape(str(v))}</td>" for v in row)
        out.append(f"<tr{attr}>{cells}</tr>")
    out.append("</table>")
    return "".join(out)


def html_report(report: dict[str, Any], tz_offset_h: float, limit: int = 20_000) -> str:
    """One self-contained HTML page (inline CSS, no scripts, no external assets)."""
    rec, summary = report["recording"], report["summary"]
    parts = [
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>",
        f"<title>gridalarm replay: {html.escape(rec['file'])}</title><style>{_CSS}</style>",
        "</head><body>",
        f"<h1>Replay 回放 — {html.escape(rec['file'])}</h1>",
        f"<p>rules: {html.escape(report['rules']['label'])} · {summary['alarms']} alarms · "
        f"{report['stats']['readings']} readings · start {when(rec['start'], tz_offset_h)}</p>",
        "<h2>Summary 汇总</h2><div class='grid'>",
    ]
    for title, key in (
        ("by rule", "by_rule"),
        ("by severity", "by_severity"),
        ("by device type", "by_device_type"),
    ):
        parts.append(_table([title, "alarms"], ([k, v] for k, v in summary[key].items())))
    parts.append(_table(["top devices", "alarms"], ([k, v] for k, v in summary["top_devices"])))
    ttr = summary["time_to_raise_s"]
    parts.append(_table(["time to raise", "s"], [[k, v] for k, v in ttr.items()]))
    parts.append("</div>")
    if "compare" in report:
        parts.append(_compare_html(report["compare"], tz_offset_h))
    rows = report["transitions"][:limit]
    parts.append(f"<h2>Timeline 时间线 ({len(report['transitions'])})</h2>")
    parts.append(
        _table(
            ["time", "kind", "severity", "device", "rule", "标题", "title"],
            (
                [
                    when(t["ts"], tz_offset_h),
                    t["kind"],
                    t["severity"],
                    t["device"] or t["gateway"],
                    t["rule_id"],
                    t["title_zh"],
                    t["title_en"],
                ]
                for t in rows
            ),
            (t["severity"] for t in rows),
        )
    )
    parts.append("</body></html>\n")
    return "".join(parts)


def _compare_html(compare: dict[str, Any], tz_offset_h: float) -> str:
    c = compare["counts"]
    parts = [
        f"<h2>Compare 对比 with {html.escape(compare['rules']['label'])}</h2>",
        _table(
            ["only in A", "only in B", "shifted", "same", "severity changed"],
            [[c["only_a"], c["only_b"], c["shifted"], c["same"], c["severity_changed"]]],
        ),
    ]
    for title, key in (("only in A", "only_a"), ("only in B", "only_b")):
        if compare[key]:
            parts.append(
                _table(
                    [title, "key", "severity"],
                    ([when(r["ts"], tz_offset_h), r["key"], r["severity"]] for r in compare[key]),
                )
            )
    if compare["shifted"]:
        parts.append(
            _table(
                ["key", "A", "B", "shift s"],
                (
                    [
                        r["key"],
                        when(r["a_ts"], tz_offset_h),
                        when(r["b_ts"], tz_offset_h),
                        r["shift_s"],
                    ]
                    for r in compare["shifted"]
                ),
            )
        )
    return "".join(parts)
