"""Rendering a run report for people (tables) or programs (JSON)."""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table

from email_scheduler.report import RunReport
from email_scheduler.store.volume import DailyVolume


def to_json(report: RunReport) -> str:
    """Return the report as one JSON object."""
    return json.dumps(report.to_dict(), sort_keys=True)


def _section(title: str, values: dict[str, int] | dict[str, float]) -> Table:
    # As wide as its title, which would otherwise wrap over narrow columns.
    table = Table(
        title=title,
        title_justify="left",
        show_header=False,
        box=None,
        min_width=len(title),
    )
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
    if report.repeat_of:
        console.print(
            f"inputs unchanged since run {report.repeat_of}: its plan stands "
            "(counts below are its own; --replan plans again)"
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


def _volume_title(volume: DailyVolume) -> str:
    if volume.daily_cap is None:
        return "Emails to go out (daily cap: no run yet)"
    limit = volume.overage_limit
    shown = "" if limit is None else f", overage limit: {limit}"
    return f"Emails to go out (daily cap: {volume.daily_cap}{shown})"


def render_volume(volume: DailyVolume, console: Console) -> None:
    """Print emails per day and type, marking days over the overage limit.

    Balancing leaves a day alone up to the limit (cap x overage_threshold),
    so only a day past it holds emails that balancing could not move.
    """
    types = sorted({t for counts in volume.by_day.values() for t in counts})
    table = Table(title=_volume_title(volume))
    table.add_column("day")
    for email_type in types:
        table.add_column(email_type, justify="right")
    table.add_column("total", justify="right", style="bold")
    table.add_column("")
    for day, counts in volume.by_day.items():
        over = volume.over_limit(day)
        cells = [f"{counts.get(t, 0):,}" for t in types]
        total = f"{sum(counts.values()):,}"
        flag = "over limit" if over else ""
        table.add_row(day, *cells, total, flag, style="red" if over else None)
    console.print(table)
