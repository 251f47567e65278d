"""What a database file is, before anything is written to it: a fer-agent database, an empty file, or someone else's.

A fer-agent database carries ``PRAGMA application_id`` = :data:`APPLICATION_ID` (``FERA``), set when it is created;
files written before that (schema versions 1 and 2) are recognised by their tables. Any other SQLite file is another
application's, and is refused without a byte of it changed: it is looked at through a read-only connection only.
A database is checked with ``PRAGMA quick_check`` when it is opened, so that a damaged file is reported as damaged
(with the way to save what is readable) instead of being read wrongly or appended to.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from agent.errors import StoreError

APPLICATION_ID = 0x46455241  # "FERA"
TABLES = frozenset({"sessions", "frames", "participants", "observations", "events"})
SESSION_COLUMNS = frozenset({"id", "started_at", "ended_at", "status", "source", "fps", "pid", "message"})


@dataclass(frozen=True)
class DatabaseFile:
    """What is at a database path: ``exists`` False (nothing there), or an SQLite file with ``version`` (its
    ``user_version``; 0 for an empty file) that is a fer-agent database, or empty; ``marked``: it carries our
    application id (False for an empty file and for a fer-agent database written before the id was set)."""

    path: Path
    exists: bool
    version: int = 0
    marked: bool = False


def on_read_only_media(path: Path) -> bool:
    """The file's folder cannot be written (read-only media, a read-only mount or folder)."""
    return not os.access(path.parent, os.W_OK)


def connect_read_only(path: Path, *, untouched: bool = False) -> sqlite3.Connection:
    """A read-only connection that changes nothing in the file. On read-only media (and with ``untouched``, for a file
    that may be another application's) a database without a write-ahead log or rollback journal beside it is opened
    ``immutable``: the file then holds all of its data, and SQLite creates no companion file beside it. With a log
    beside it on read-only media, the log's index must be there too, or it cannot be read there."""
    uri = path.resolve().as_uri()
    wal = path.with_name(path.name + "-wal")
    logged = (wal.exists() and wal.stat().st_size > 0) or path.with_name(path.name + "-journal").exists()
    if on_read_only_media(path) and logged and not path.with_name(path.name + "-shm").exists():
        raise StoreError(f"{path} is on read-only media with its write-ahead log ({wal.name}) but without the log's "
                         f"index ({path.name}-shm): copy the database and its -wal file to a writable folder and read "
                         "it there")
    if (untouched or on_read_only_media(path)) and not logged:
        return sqlite3.connect(f"{uri}?immutable=1", uri=True)
    return sqlite3.connect(f"{uri}?mode=ro", uri=True)


def salvage_hint(path: Path) -> str:
    return f"the readable sessions can be saved to a new file with `fer-agent salvage {path} -o NEW.db`"


def inspect(path: Path, known_version: int) -> DatabaseFile:
    """Identify the file at ``path`` without changing it. A missing or empty file is fine (a new database); a
    fer-agent database of a schema this fer-agent knows is fine; anything else is a :class:`StoreError` that says
    what it is: another application's database, a file that is not SQLite, a newer schema, or a damaged file."""
    if not path.exists():
        return DatabaseFile(path, exists=False)
    if path.is_dir():
        raise StoreError(f"{path} is a folder; name a database file with --db PATH")
    if path.stat().st_size == 0:
        return DatabaseFile(path, exists=True)
    try:
        conn = connect_read_only(path, untouched=True)
    except sqlite3.Error as error:
        raise StoreError(f"{path}: cannot open it ({error})") from None
    try:
        try:
            application_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            session_columns = ({row[1] for row in conn.execute("PRAGMA table_info(sessions)")}
                               if "sessions" in tables else set())
        except sqlite3.DatabaseError as error:
            if "not a database" in str(error):
                raise StoreError(f"{path} is not a fer-agent database (not an SQLite file, or its first page is "
                                 "damaged); choose another --db") from None
            raise _damaged(path, str(error)) from None
        ours = application_id == APPLICATION_ID or (
            application_id == 0 and 1 <= version <= known_version and tables >= TABLES
            and session_columns >= SESSION_COLUMNS)
        if not ours:
            if application_id == 0 and version == 0 and not tables:
                return DatabaseFile(path, exists=True)
            owner = (f"application id {application_id:#010x}" if application_id
                     else "tables " + ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
                     if tables else f"user_version {version}")
            raise StoreError(f"{path} is not a fer-agent database (it holds another application's data: {owner}); "
                             "it was left as it is: choose another --db")
        if version > known_version:
            raise StoreError(f"{path} has schema version {version}, newer than this fer-agent knows ({known_version}): "
                             "upgrade fer-agent")
        check_integrity(conn, path)
        return DatabaseFile(path, exists=True, version=version, marked=application_id == APPLICATION_ID)
    finally:
        conn.close()


def check_integrity(conn: sqlite3.Connection, path: Path) -> None:
    """``PRAGMA quick_check``: a damaged file is a :class:`StoreError` naming its first problem and the way out."""
    try:
        problems = [line for (text,) in conn.execute("PRAGMA quick_check(1)") for line in text.splitlines()
                    if line and not line.startswith("***")]
    except sqlite3.DatabaseError as error:
        problems = [str(error)]
    if problems != ["ok"]:
        raise _damaged(path, problems[0] if problems else "quick_check failed")


def _damaged(path: Path, problem: str) -> StoreError:
    return StoreError(f"{path} is damaged ({problem}); {salvage_hint(path)}")
