"""The `email-scheduler` command line: parse options, call the library, print."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from email_scheduler import summary
from email_scheduler.config import load_settings
from email_scheduler.errors import ConfigError, SchedulerError
from email_scheduler.generate import generate_org
from email_scheduler.run import org_today, run
from email_scheduler.store import schema
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
    database: Path, today: str | None, config: Path | None, dry_run: bool, as_json: bool
) -> None:
    settings = load_settings(config)
    day = _parse_today(today)
    err = Console(stderr=True)
    interactive = err.is_terminal and not as_json
    with err.status("starting", spinner="dots") if interactive else _quiet() as status:

        def progress(phase: str) -> None:
            if status is not None:
                status.update(f"{phase}...")

        report = run(database, settings, day, dry_run=dry_run, progress=progress)
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
@reports_errors
def run_command(
    database: Path, today: str | None, config: Path | None, dry_run: bool, as_json: bool
) -> None:
    """Plan every contact's emails and write them to DATABASE's email_schedules.

    Example: email-scheduler run org.sqlite3 --config scheduler.yaml
    """
    _execute_run(database, today, config, dry_run, as_json)


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
@reports_errors
def generate_command(database: Path, count: int, seed: int) -> None:
    """Create a sample org DATABASE of the legacy shape with realistic contacts.

    Example: email-scheduler generate sample.sqlite3 --contacts 100000 --seed 7
    """
    try:
        report = generate_org(database, count, seed)
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


__all__ = ["ConfigError", "main"]
