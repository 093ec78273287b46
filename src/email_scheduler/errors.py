"""Exceptions raised by the scheduler.

Hierarchy::

    SchedulerError
    ├── ConfigError          bad configuration file or value (exit code 2)
    ├── CampaignError        bad input to a campaign command; nothing written (exit 2)
    ├── DatabaseError        the org database cannot be read or written (exit 1)
    │   └── DatabaseBusyError   the database stayed locked after retries (exit 1)
    └── RunLockedError       another run holds the database (exit code 3)
"""

from __future__ import annotations


class SchedulerError(Exception):
    """Base class of every error the scheduler reports to its user."""

    exit_code = 1


class ConfigError(SchedulerError):
    """The configuration file or one of its values is invalid."""

    exit_code = 2


class CampaignError(SchedulerError):
    """A campaign command was given a value, file or row it cannot accept."""

    exit_code = 2


class DatabaseError(SchedulerError):
    """The org database is missing, unreadable or has an unusable shape."""


class DatabaseBusyError(DatabaseError):
    """The org database stayed locked by another writer after all retries."""


class RunLockedError(SchedulerError):
    """Another scheduler run is working on the same database."""

    exit_code = 3
