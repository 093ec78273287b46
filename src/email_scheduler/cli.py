"""The `email-scheduler` command line: parse options, call the library, print."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from rich import box
from rich.console import Console
from rich.table import Table

from email_scheduler import campaigns, summary
from email_scheduler.config import load_settings
from email_scheduler.errors import ConfigError, SchedulerError
from email_scheduler.generate import generate_org
from email_scheduler.run import org_today, run
from email_scheduler.store import schema
from email_scheduler.store.campaigns import CampaignType
from email_scheduler.store.database import check_exists, connect
from email_scheduler.store.volume import daily_volume

F = TypeVar("F", bound=Callable[..., Any])

DEMO_DATABASE = Path("sample") / "org.sqlite3"


def _fail(message: str, code: int) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def reports_errors(command: F) -> F:
    """Turn library errors into one line on stderr and the documented exit code."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except click.ClickException:
            raise
        except SchedulerError as exc:
            _fail(str(exc), exc.exit_code)
        except Exception as exc:  # noqa: BLE001 - the one place errors reach users
            logging.getLogger("email_scheduler").debug("failure", exc_info=True)
            _fail(f"{type(exc).__name__}: {exc}", 1)

    return wrapper  # type: ignore[return-value]


def _parse_today(value: str | None) -> dt.date:
    if value is None:
        return org_today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date written YYYY-MM-DD"
        ) from None


@click.group()
@click.version_option(package_name="email-scheduler")
@click.option(
    "-v", "--verbose", is_flag=True, help="Log each run's start and end to stderr."
)
def main(verbose: bool) -> None:
    """Plan compliant birthday, effective-date and AEP emails for an org database."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(message)s",
    )


def _execute_run(
    database: Path,
    today: str | None,
    config: Path | None,
    dry_run: bool,
    as_json: bool,
    replan: bool = False,
) -> None:
    settings = load_settings(config)
    day = _parse_today(today)
    err = Console(stderr=True)
    interactive = err.is_terminal and not as_json
    with err.status("starting", spinner="dots") if interactive else _quiet() as status:

        def progress(phase: str) -> None:
            if status is not None:
                status.update(f"{phase}...")

        report = run(
            database, settings, day, dry_run=dry_run, replan=replan, progress=progress
        )
    if as_json:
        click.echo(summary.to_json(report))
    else:
        summary.render(report, Console())


class _quiet:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


@main.command("run")
@click.argument("database", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--today",
    metavar="YYYY-MM-DD",
    help="Plan as of this date (default: today in Central Time).",
)
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    help="YAML configuration file.",
)
@click.option(
    "--dry-run", is_flag=True, help="Compute and report the changes; write nothing."
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the summary as one JSON object."
)
@click.option(
    "--replan",
    is_flag=True,
    help="Plan again even when nothing changed since the day's last run.",
)
@reports_errors
def run_command(
    database: Path,
    today: str | None,
    config: Path | None,
    dry_run: bool,
    as_json: bool,
    replan: bool,
) -> None:
    """Plan every contact's emails and write them to DATABASE's email_schedules.

    A re-run for the same day on unchanged contacts, schedules, campaigns,
    engagement and configuration keeps the plan the last run wrote, and
    records that it did.

    Example: email-scheduler run org.sqlite3 --config scheduler.yaml
    """
    _execute_run(database, today, config, dry_run, as_json, replan)


@main.command("init")
@click.argument("database", type=click.Path(path_type=Path, dir_okay=False))
@reports_errors
def init_command(database: Path) -> None:
    """Create DATABASE with the contacts table and every table the scheduler owns.

    Example: email-scheduler init new-org.sqlite3
    """
    conn = connect(database)
    try:
        schema.initialize(conn)
    finally:
        conn.close()
    click.echo(f"initialized {database}")


@main.command("generate")
@click.argument("database", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--contacts",
    "count",
    type=click.IntRange(min=0),
    default=10_000,
    show_default=True,
    help="Number of contacts.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Same seed, same file."
)
@click.option(
    "--campaigns",
    "with_campaigns",
    is_flag=True,
    help="Add a sample rate-increase campaign (5% enrolled) and an AEP campaign.",
)
@click.option(
    "--history-until",
    metavar="YYYY-MM-DD",
    help="Add the birthday emails sent in the 60 days before this date, with "
    "clicks, health-question answers and sent follow-ups.",
)
@reports_errors
def generate_command(
    database: Path,
    count: int,
    seed: int,
    with_campaigns: bool,
    history_until: str | None,
) -> None:
    """Create a sample org DATABASE of the legacy shape with realistic contacts.

    Example: email-scheduler generate sample.sqlite3 --contacts 100000 --seed 7
    """
    try:
        report = generate_org(
            database,
            count,
            seed,
            campaigns=with_campaigns,
            history_until=_parse_today(history_until) if history_until else None,
        )
    except FileExistsError:
        raise SchedulerError(f"{database} already exists; choose a new path") from None
    click.echo(
        f"generated {report.contacts:,} contacts in {database} ({report.seconds:.1f}s)"
    )


@main.command("demo")
@click.option("--today", metavar="YYYY-MM-DD", help="Plan as of this date.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the summary as one JSON object."
)
@reports_errors
def demo_command(today: str | None, as_json: bool) -> None:
    """Create a 10,000-contact sample org in ./sample (once) and run on it."""
    if not DEMO_DATABASE.exists():
        DEMO_DATABASE.parent.mkdir(parents=True, exist_ok=True)
        generate_org(DEMO_DATABASE, 10_000, seed=0)
        click.echo(f"created sample database {DEMO_DATABASE}", err=True)
    _execute_run(DEMO_DATABASE, today, None, False, as_json)


@main.command("calendar")
@click.argument("database", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--from", "start", metavar="YYYY-MM-DD", help="First day (default: today)."
)
@click.option(
    "--days", type=click.IntRange(1, 800), default=30, show_default=True, help="Days."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@reports_errors
def calendar_command(
    database: Path, start: str | None, days: int, as_json: bool
) -> None:
    """Show the emails still to go out per day and type, against the daily cap.

    A day over the last run's overage limit (daily cap x overage_threshold)
    is marked: balancing could not move its extra emails.

    Example: email-scheduler calendar org.sqlite3 --from 2027-09-01 --days 30
    """
    check_exists(database)
    conn = connect(database, read_only=True)
    try:
        volume = daily_volume(conn, _parse_today(start), days)
    finally:
        conn.close()
    if as_json:
        click.echo(json.dumps(volume.to_dict(), sort_keys=True))
    else:
        summary.render_volume(volume, Console())


@main.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("show")
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    help="YAML configuration file.",
)
@reports_errors
def config_show(config: Path | None) -> None:
    """Print the effective configuration (defaults merged with --config) as JSON.

    Example: email-scheduler config show --config scheduler.yaml
    """
    settings = load_settings(config)
    click.echo(json.dumps(json.loads(settings.to_json()), indent=2, sort_keys=True))
    click.echo(f"# version {settings.version()}", err=True)


@main.group("campaign")
def campaign_group() -> None:
    """Manage campaign types, campaign instances and their enrolled contacts.

    Every change is recorded in the database's campaign_change_log; the
    next run reschedules whatever it affects.
    """


_DB = click.argument("database", type=click.Path(path_type=Path, dir_okay=False))
_JSON = click.option(
    "--json", "as_json", is_flag=True, help="Print the result as JSON."
)
_BY = click.option(
    "--by", metavar="NAME", help="Who makes the change (default: the OS user)."
)


Record = dict[str, Any]


def _yes(record: Record, name: str) -> bool:
    return str(record.get(name)) in ("1", "True")


def _options(record: Record) -> str:
    names = {
        "target_all_contacts": "all contacts",
        "spread_evenly": "spread evenly",
        "respect_exclusion_windows": "respects windows",
        "enable_followups": "follow-ups",
        "skip_failed_underwriting": "skips failed underwriting",
    }
    return ", ".join(text for name, text in names.items() if _yes(record, name))


def _span(first: str, last: str) -> Callable[[Record], str]:
    def show(record: Record) -> str:
        start, end = record.get(first), record.get(last)
        return "" if start is end is None else f"{start or '...'} to {end or '...'}"

    return show


def _field(name: str) -> Callable[[Record], str]:
    return lambda record: "" if record.get(name) is None else str(record[name])


TYPE_TABLE: dict[str, Callable[[Record], str]] = {
    "name": _field("name"),
    "active": lambda r: "yes" if _yes(r, "active") else "no",
    "priority": _field("priority"),
    "days before": _field("days_before_event"),
    "options": _options,
    "instances": _field("instances"),
}
INSTANCE_TABLE: dict[str, Callable[[Record], str]] = {
    "id": _field("id"),
    "type": _field("campaign_type"),
    "name": _field("instance_name"),
    "active": _span("active_start_date", "active_end_date"),
    "spread": _span("spread_start_date", "spread_end_date"),
    "targets": lambda r: "; ".join(
        str(r[name]).replace(",", ", ")
        for name in ("target_states", "target_carriers")
        if r.get(name)
    ),
    "templates": lambda r: " ".join(
        filter(None, (r.get("email_template"), r.get("sms_template")))
    ),
    "enrolled": _field("enrolled"),
}


def _print_records(
    records: list[Record],
    title: str,
    columns: dict[str, Callable[[Record], str]],
    as_json: bool,
) -> None:
    """Print records as one JSON array, or as a table of the chosen columns."""
    if as_json:
        click.echo(json.dumps(records, sort_keys=True))
        return
    console = Console()
    if not records:
        console.print(f"(no {title})")
        return
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for heading in columns:
        wide = heading in ("active", "spread")  # a date fits on one line
        table.add_column(
            heading, min_width=10 if wide else len(heading), overflow="fold"
        )
    for record in records:
        table.add_row(*(show(record) for show in columns.values()))
    console.print(table)


@campaign_group.command("types")
@_DB
@_JSON
@reports_errors
def campaign_types(database: Path, as_json: bool) -> None:
    """List the campaign types of DATABASE.

    Example: email-scheduler campaign types org.sqlite3 --json
    """
    with campaigns.org_database(database) as conn:
        records = campaigns.list_types(conn)
    _print_records(records, "campaign types", TYPE_TABLE, as_json)


@campaign_group.command("list")
@_DB
@click.option(
    "--active-on",
    metavar="YYYY-MM-DD",
    help="Only instances that plan emails on this day.",
)
@_JSON
@reports_errors
def campaign_list(database: Path, active_on: str | None, as_json: bool) -> None:
    """List campaign instances and how many contacts each has enrolled.

    Example: email-scheduler campaign list org.sqlite3 --active-on 2027-02-01
    """
    day = _parse_today(active_on) if active_on else None
    with campaigns.org_database(database) as conn:
        records = campaigns.list_instances(conn, day)
    _print_records(records, "campaign instances", INSTANCE_TABLE, as_json)


@campaign_group.command("add-type")
@_DB
@click.argument("name")
@click.option(
    "--days-before",
    type=int,
    default=0,
    show_default=True,
    help="Days before the trigger date to send (negative: after it).",
)
@click.option(
    "--priority",
    type=int,
    default=CampaignType("").priority,
    show_default=True,
    help="Lower wins when emails of one contact collide.",
)
@click.option(
    "--respect-windows/--ignore-windows",
    default=True,
    show_default=True,
    help="Whether state exclusion windows withhold this campaign.",
)
@click.option(
    "--followups/--no-followups",
    default=True,
    show_default=True,
    help="Whether a sent email of this campaign earns a follow-up.",
)
@click.option(
    "--target-all", is_flag=True, help="Send to every eligible contact, not a list."
)
@click.option(
    "--spread-evenly",
    is_flag=True,
    help="Spread the sends over each instance's spread range.",
)
@click.option(
    "--skip-failed-underwriting",
    is_flag=True,
    help="Skip contacts who failed underwriting.",
)
@_BY
@_JSON
@reports_errors
def campaign_add_type(
    database: Path,
    name: str,
    days_before: int,
    priority: int,
    respect_windows: bool,
    followups: bool,
    target_all: bool,
    spread_evenly: bool,
    skip_failed_underwriting: bool,
    by: str | None,
    as_json: bool,
) -> None:
    """Add a campaign type NAME (its emails are of type campaign_NAME).

    Example: email-scheduler campaign add-type org.sqlite3 rate_increase
    --days-before 14 --priority 5
    """
    kind = CampaignType(
        name=name,
        respect_exclusion_windows=respect_windows,
        enable_followups=followups,
        days_before_event=days_before,
        target_all_contacts=target_all,
        priority=priority,
        spread_evenly=spread_evenly,
        skip_failed_underwriting=skip_failed_underwriting,
    )
    with campaigns.org_database(database) as conn:
        campaigns.add_type(conn, kind, by=campaigns.operator(by))
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(kind), sort_keys=True))
    else:
        click.echo(f"added campaign type {name} (emails: {kind.email_type})")


def _instance_options(command: F) -> F:
    """Add the options that set the fields of a campaign instance."""
    options = [
        click.option(
            "--spread",
            nargs=2,
            metavar="START END",
            help="Spread range, both days included (spread-evenly types).",
        ),
        click.option(
            "--states", help="Target states, e.g. CA,TX (ALL or empty: every state)."
        ),
        click.option(
            "--carriers",
            help="Target carriers, any case, e.g. AETNA (ALL or empty: every one).",
        ),
        click.option("--email-template", help="Template of the email."),
        click.option(
            "--sms-template", help="Template of the SMS (contacts with a phone)."
        ),
        click.option(
            "--metadata",
            metavar="JSON",
            help='A JSON object, e.g. {"trigger_date": "2027-03-01"}.',
        ),
        _BY,
        _JSON,
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _instance_values(**options: Any) -> dict[str, str | None]:
    """Return the instance fields the options set (an empty value clears one)."""
    fields = {
        "name": "instance_name",
        "start": "active_start_date",
        "end": "active_end_date",
        "spread_start": "spread_start_date",
        "spread_end": "spread_end_date",
        "states": "target_states",
        "carriers": "target_carriers",
        "email_template": "email_template",
        "sms_template": "sms_template",
        "metadata": "metadata",
    }
    spread = options.pop("spread", None)
    if spread:
        options["spread_start"], options["spread_end"] = spread
    return {
        fields[name]: value
        for name, value in options.items()
        if name in fields and value is not None
    }


@campaign_group.command("create")
@_DB
@click.argument("campaign_type", metavar="TYPE")
@click.argument("name")
@click.option(
    "--start",
    required=True,
    metavar="YYYY-MM-DD",
    help="First day the instance plans emails.",
)
@click.option(
    "--end", required=True, metavar="YYYY-MM-DD", help="Last day it plans emails."
)
@_instance_options
@reports_errors
def campaign_create(
    database: Path,
    campaign_type: str,
    name: str,
    by: str | None,
    as_json: bool,
    **options: Any,
) -> None:
    """Create an instance NAME of campaign type TYPE and print its id.

    Example: email-scheduler campaign create org.sqlite3 aep aep_2027
    --start 2027-08-15 --end 2027-09-30 --spread 2027-09-01 2027-09-30
    """
    values = _instance_values(name=name, **options)
    with campaigns.org_database(database) as conn:
        record = campaigns.create_instance(
            conn, campaign_type, values, by=campaigns.operator(by)
        )
    if as_json:
        click.echo(json.dumps(record, sort_keys=True))
    else:
        click.echo(f"created campaign instance {record['id']} ({campaign_type}/{name})")


@campaign_group.command("update")
@_DB
@click.argument("instance", type=int)
@click.option("--name", help="New instance name.")
@click.option("--start", metavar="YYYY-MM-DD", help="First day it plans emails.")
@click.option("--end", metavar="YYYY-MM-DD", help="Last day it plans emails.")
@click.option("--spread-start", metavar="YYYY-MM-DD", help="First day of the spread.")
@click.option("--spread-end", metavar="YYYY-MM-DD", help="Last day of the spread.")
@_instance_options
@reports_errors
def campaign_update(
    database: Path, instance: int, by: str | None, as_json: bool, **options: Any
) -> None:
    """Change fields of campaign INSTANCE; an empty value clears a field.

    Each change is logged with its old and new value. Example:
    email-scheduler campaign update org.sqlite3 3 --end 2027-10-15 --by alice
    """
    values = _instance_values(**options)
    if not values:
        raise click.UsageError("nothing to change: give at least one option")
    with campaigns.org_database(database) as conn:
        changes = campaigns.update_instance(
            conn, instance, values, by=campaigns.operator(by)
        )
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(c) for c in changes]))
        return
    for change in changes:
        click.echo(f"{change.field}: {change.old} -> {change.new}")
    if not changes:
        click.echo(f"campaign instance {instance} already had these values")


@campaign_group.command("enroll")
@_DB
@click.argument("instance", type=int)
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--skip-bad-rows",
    is_flag=True,
    help="Enroll the good rows even when some are bad (they are listed).",
)
@_BY
@_JSON
@reports_errors
def campaign_enroll(
    database: Path,
    instance: int,
    file: Path,
    skip_bad_rows: bool,
    by: str | None,
    as_json: bool,
) -> None:
    """Enroll the contacts of a CSV FILE in campaign INSTANCE.

    FILE has the header contact_id,trigger_date or
    contact_id,trigger_date,metadata (a JSON object per contact).

    Every row is checked before anything is written; rows already enrolled
    are left as they are. Example:
    email-scheduler campaign enroll org.sqlite3 3 rate-changes.csv
    """
    with campaigns.org_database(database) as conn:
        report = campaigns.enroll(
            conn, instance, file, skip_bad_rows=skip_bad_rows, by=campaigns.operator(by)
        )
    if as_json:
        click.echo(json.dumps(report.to_dict(), sort_keys=True))
        return
    for bad in report.bad_rows:
        click.echo(f"skipped line {bad.line}: {bad.problem}", err=True)
    click.echo(
        f"enrolled {report.enrolled:,} contacts in campaign instance {instance} "
        f"({report.already_enrolled:,} already enrolled, "
        f"{len(report.bad_rows):,} bad rows skipped) in {report.seconds:.1f}s"
    )


__all__ = ["ConfigError", "main"]
