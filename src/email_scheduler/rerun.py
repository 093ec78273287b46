"""Recognising a re-run on unchanged inputs, which need not plan again.

A run's plan is a function of its inputs alone (SPEC 2): the contacts, the
rows of email_schedules, the campaigns and their enrollments, the
engagement events, the configuration, the day and the code. A completed
run records a digest of those inputs as they stand once its writes are
in: its own writes included. A later run for the same day that finds the
same digest would plan the same emails and find nothing to change (SPEC
10.2: a second run on an unchanged database changes zero rows). It records
a completed checkpoint that names the run whose plan stands, and writes
nothing else.

What the digest covers:

- the day, the configuration's version, the code (the package's own
  source and the version of the ZIP data);
- email_schedules: its columns and the change log's counter. The triggers
  log every change anyone makes to the table (see `store.snapshot`), so
  the counter moves with any change. A run's digest counts only when
  nobody else changed the table between the run's start and its write;
- the campaign types, instances and enrollments, with the enrollment
  statuses the run wrote, and the engagement events, as read;
- the contacts: the checksum every checkpoint records. It needs every
  contact read, so it is worked out only once everything else matched.

A run plans in full when the previous run did not complete, when the
database needed migrating (triggers missing, say), on a dry run, and when
asked to (`--replan`). As for the snapshots, a change made to
email_schedules while somebody had dropped its triggers goes unseen; a
run with `--replan` sees it.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from email_scheduler.calendar import Ints
from email_scheduler.report import RunReport
from email_scheduler.store import audit
from email_scheduler.store.database import columnar_transaction

if TYPE_CHECKING:
    from email_scheduler.passes import Shared


@cache
def code_version() -> str:
    """Return a digest of the package's source and of the ZIP data's version."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(version("zipcodes").encode())
    package = Path(__file__).resolve().parent
    for source in sorted(package.rglob("*.py")):
        digest.update(source.relative_to(package).as_posix().encode())
        digest.update(source.read_bytes())
    return digest.hexdigest()


def inputs_checksum(
    shared: Shared, change_counter: int, statuses: tuple[Ints, Ints] | None = None
) -> str:
    """Return the digest of a run's inputs other than the contacts, with the
    change log's counter at `change_counter`.

    `statuses` are the (enrollment ids, status) pairs the run wrote: the
    digest is that of the enrollments as they stand after the write.
    """
    campaigns, engagement = shared.campaigns, shared.engagement
    digest = hashlib.blake2b(digest_size=16)
    for text in (
        str(shared.today),
        shared.settings.version(),
        code_version(),
        repr(shared.contact_columns),
        repr(shared.schedule_columns),
        str(shared.rows_without_id),
        str(change_counter),
        repr(sorted(campaigns.types.items())),
        repr(campaigns.instances),
        str(engagement.invalid_metadata),
        str(engagement.invalid_time),
    ):
        digest.update(text.encode())
        digest.update(b"\x00")
    enrollments = campaigns.enrollments
    status = enrollments.status
    if statuses is not None and len(statuses[0]):
        status = status.copy()
        order = np.argsort(enrollments.id, kind="stable")
        ids, new = statuses
        status[order[np.searchsorted(enrollments.id[order], ids)]] = new
    for column in (
        enrollments.id,
        enrollments.contact_id,
        enrollments.instance,
        enrollments.trigger,
        status,
        engagement.contact_id,
        engagement.clicked,
        engagement.answered,
        engagement.answered_with_conditions,
    ):
        digest.update(np.ascontiguousarray(column, dtype=np.int64).tobytes())
        digest.update(b"\x00")
    return digest.hexdigest()


REPEATED = (
    "contacts_read",
    "contacts_eligible",
    "contacts_without_email",
    "data_quality",
    "planned",
    "skipped",
    "balancing",
)
"""What a repeat's report takes from the run whose plan stands."""


def same_inputs(previous: audit.Completed, today: str, inputs: str) -> bool:
    """Return whether `previous` ran for `today` on inputs with this digest
    (contacts apart), and recorded what a repeat reports."""
    return (
        previous.run_date == today
        and previous.inputs_checksum == inputs
        and all(name in previous.summary for name in REPEATED)
    )


def record_repeat(
    columnar: Any, report: RunReport, previous: audit.Completed, inputs: str, now: str
) -> None:
    """Record, in one transaction, that the run found the inputs of
    `previous` unchanged: its plan stands and no row is written. The report
    takes the counts of `previous`, every email of its plan unchanged."""
    for name in REPEATED:
        setattr(report, name, previous.summary[name])
    emails = sum(report.planned.values()) + sum(report.skipped.values())
    report.rows = dict(inserted=0, updated=0, deleted=0, unchanged=emails, conflicts=0)
    report.repeat_of = previous.summary.get("repeat_of") or previous.run_id
    checksums = audit.Checksums(
        contacts=previous.contacts_checksum,
        schedules_before=previous.schedules_checksum,
        schedules_after=previous.schedules_checksum,
        inputs=inputs,
    )
    with columnar_transaction(columnar) as cursor:
        audit.relabel_data_quality(cursor, report.run_id)
        audit.complete_checkpoint(cursor, report, now, checksums)
