"""Partitions of a run's contacts, and setting them aside between passes.

A run plans its contacts in partitions of contact ids (see `run`), and
balances the outgoing emails of all of them before it writes any. Between
the two passes each partition's changes wait on disk, in a private folder
that is removed when the run ends however it ends, so that memory holds
one partition at a time.
"""

from __future__ import annotations

import pickle
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from email_scheduler.store.snapshot import Encoded
from email_scheduler.store.writer import Changes

PARTITION_CONTACTS = 50_000
"""Contacts per partition: large enough that per-partition costs vanish,
small enough that the partitions planned at once (see `passes.WORKERS`)
stay well under the run's memory: at 100,000 two of them took a 3M org's
run past 1 GB."""


@dataclass(frozen=True)
class SetAside:
    """What the writing pass needs of one planned partition."""

    changes: Changes
    """The partition's changes, before balancing dates its outgoing emails."""
    strings: list[str]
    """The partition's vocabulary: the text of every code in the changes."""
    snapshot: Encoded | None
    """The partition's rows as read, encoded (see `store.snapshot`), where
    the writing pass may need them."""


class Shelf:
    """A private folder of set-aside partitions, removed by `close`.

    A run killed outright (SIGKILL, the machine going down) leaves its
    folder behind: hundreds of MB at millions of contacts. A run that
    writes holds the database's run lock, so any other folder of a run that
    writes is such a leftover, and it removes them; a dry run, which takes
    no lock, has folders of its own kind and removes none.
    """

    def __init__(self, beside: Path, *, dry_run: bool = False) -> None:
        prefix = f".{beside.name}.{'dry-run' if dry_run else 'run'}-"
        if not dry_run:
            for leftover in beside.parent.glob(f"{prefix}*"):
                shutil.rmtree(leftover, ignore_errors=True)
        try:
            self.folder = Path(tempfile.mkdtemp(prefix=prefix, dir=beside.parent))
        except OSError:
            # A read-only folder (a dry run of a shared database, say).
            self.folder = Path(tempfile.mkdtemp(prefix="email-scheduler-run-"))

    def put(self, number: int, part: SetAside) -> None:
        """Write one partition to disk."""
        with (self.folder / f"{number}.pickle").open("wb") as handle:
            pickle.dump(part, handle, protocol=pickle.HIGHEST_PROTOCOL)

    def get(self, number: int) -> SetAside:
        """Read one partition back."""
        with (self.folder / f"{number}.pickle").open("rb") as handle:
            part = pickle.load(handle)
        assert isinstance(part, SetAside)
        return part

    def close(self) -> None:
        """Remove the folder and everything in it."""
        shutil.rmtree(self.folder, ignore_errors=True)
