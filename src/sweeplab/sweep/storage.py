"""Optuna storages from `sweep.storage`: a journal file (default), SQLite or PostgreSQL URL."""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sweeplab.errors import ConfigError
from sweeplab.secrets import hide_passwords

DEFAULT_JOURNAL = "mlruns/optuna.journal"
HEARTBEAT_SECONDS = 10
GRACE_SECONDS = 40
ALLOWED = "a path ending in .journal, sqlite:///PATH or postgresql+psycopg2://USER@HOST/DB"

# What Optuna warns about sweeplab's own use of heartbeats (an experimental argument, heartbeats outside
# Study.optimize, which ask/tell workers must do): nothing the user did, so not shown on their terminal
# or in worker logs.
for _message in (r"Argument ``heartbeat_interval`` is an experimental feature",
                 r"Heartbeat of storage is supposed to be used with Study.optimize"):
    warnings.filterwarnings("ignore", message=_message)


@dataclass(frozen=True)
class StorageSpec:
    """Where the study lives; `url` is what `optuna trials --storage` takes (the path, for a journal)."""

    url: str
    journal: Path | None = None

    @property
    def local_file(self) -> Path | None:
        if self.journal is not None:
            return self.journal
        if self.url.startswith("sqlite:///"):
            return Path(self.url[len("sqlite:///"):])
        return None


def parse_storage(value: str | None) -> StorageSpec:
    text = value or DEFAULT_JOURNAL
    if text.endswith(".journal") and "://" not in text:
        return StorageSpec(url=str(Path(text).expanduser().resolve()), journal=Path(text).expanduser().resolve())
    if text.startswith("sqlite:///"):
        path = Path(text[len("sqlite:///"):]).expanduser().resolve()
        return StorageSpec(url=f"sqlite:///{path}")
    if text.startswith(("postgresql", "mysql")):
        return StorageSpec(url=text)
    raise ConfigError(f"sweep.storage={hide_passwords(text)}: not a storage sweeplab knows; use {ALLOWED}")


def check_storage(spec: StorageSpec) -> None:
    """Fail with one line when the storage cannot be used; writes nothing."""
    local = spec.local_file
    if local is not None:
        folder = next((p for p in [local.parent, *local.parents] if p.exists()), None)
        if folder is None or not os.access(folder, os.W_OK):
            raise ConfigError(f"sweep.storage={spec.url}: cannot write under {local.parent}")
        return
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(spec.url, connect_args={"connect_timeout": 5}
                                          if spec.url.startswith("postgresql") else {})
        with engine.connect():
            pass
        engine.dispose()
    except Exception as e:  # the drivers raise many kinds; each means "cannot use it"
        reason = str(getattr(e, "orig", e)).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(hide_passwords(f"sweep.storage={spec.url} is unreachable ({reason})")) from None


def open_storage(spec: StorageSpec, on_stale=None):
    """The Optuna storage; RDB storages get heartbeats so trials of dead workers on any host turn FAIL."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    if spec.journal is not None:
        spec.journal.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(spec.journal)))
    if spec.local_file is not None:
        spec.local_file.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.RDBStorage(spec.url, heartbeat_interval=HEARTBEAT_SECONDS,
                                      grace_period=GRACE_SECONDS, heartbeat_stale_trial_callback=on_stale)


@contextmanager
def slot_lock(spec: StorageSpec, study_name: str = ""):
    """Serialises "count trials, then ask" between workers, so none starts one trial too many."""
    with study_lock(spec, study_name, purpose="slots"):
        yield


@contextmanager
def study_lock(spec: StorageSpec, study_name: str, purpose: str = "open"):
    """A lock held by one process at a time among all that use this storage, on any host.

    PostgreSQL: a session-level advisory lock (`pg_advisory_lock`) keyed by a stable 64-bit hash of
    purpose and study name, on a connection of its own; the server releases it if the process dies.
    A journal or SQLite file: an fcntl lock on `<file>.<purpose>.lock` beside it (one host).
    Other databases (MySQL) get no lock: there a rare extra trial is possible.
    """
    local = spec.local_file
    if local is not None:
        local.parent.mkdir(parents=True, exist_ok=True)
        # Not "<file>.lock": Optuna's journal backend takes that name for its own lock.
        with open(f"{local}.{purpose}.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    if not spec.url.startswith("postgresql"):
        yield
        return
    import sqlalchemy

    digest = hashlib.blake2b(f"sweeplab:{purpose}:{study_name}".encode(), digest_size=8).digest()
    key = {"key": int.from_bytes(digest, "big", signed=True)}
    with _lock_engine(spec.url).connect() as connection:
        connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), key)
        try:
            yield
        finally:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), key)


@functools.lru_cache(maxsize=4)
def _lock_engine(url: str):
    """Connections only for locks: not pooled (closing one frees its locks), autocommit (never idle in a transaction)."""
    import sqlalchemy

    return sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool, isolation_level="AUTOCOMMIT",
                                    connect_args={"connect_timeout": 10})
