"""Rendering a run report for people (tables) or programs (JSON)."""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table

from email_scheduler.run import RunReport
from email_scheduler.store.volume import DailyVolume


def to_json(report: RunReport) -> str:
    """Return the report as one JSON object."""
    return json.dumps(report.to_dict(), sort_keys=True)


def _section(title: str, values: dict[str, int] | dict[str, float]) -> Table:
    table = Table(title=title, title_justify="left", show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for key, value in values.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) else f"{value:.2f}s")
    if not values:
        table.add_row("(none)", "")
    return table


def render(report: RunReport, console: Console) -> None:
    """Print the report as short tables."""
    mode = " (dry run: nothing written)" if report.dry_run else ""
    console.print(
        f"[bold]{report.database}[/] for {report.today}{mode}  run {report.run_id}"
    )
    console.print(
        f"contacts read {report.contacts_read:,}, eligible {report.contacts_eligible:,}"
    )
    console.print(_section("Emails planned, by type", report.planned))
    console.print(_section("Emails skipped, by reason", report.skipped))
    console.print(
        _section("Contacts without email, by reason", report.contacts_without_email)
    )
    console.print(_section("Data-quality issues", report.data_quality))
    console.print(_section("Balancing", report.balancing))
    rows_title = "Rows that would change" if report.dry_run else "Rows written"
    console.print(_section(rows_title, report.rows))
    console.print(_section("Time per phase", report.seconds))
    if report.interrupted_runs_before:
        console.print(
            f"[yellow]{report.interrupted_runs_before} earlier run(s) never completed; "
            "this run recomputed and wrote the whole plan.[/]"
        )


def render_volume(volume: DailyVolume, console: Console) -> None:
    """Print emails per day and type, marking days over the daily cap."""
    types = sorted({t for counts in volume.by_day.values() for t in counts})
    cap = volume.daily_cap
    table = Table(title=f"Emails to go out (daily cap: {cap if cap else 'no run yet'})")
    table.add_column("day")
    for email_type in types:
        table.add_column(email_type, justify="right")
    table.add_column("total", justify="right", style="bold")
    table.add_column("")
    for day, counts in volume.by_day.items():
        total = sum(counts.values())
        over = cap is not None and total > cap
        cells = [f"{counts.get(t, 0):,}" for t in types]
        flag = "over cap" if over else ""
        table.add_row(day, *cells, f"{total:,}", flag, style="red" if over else None)
    console.print(table)
