"""What a database file is, before anything is written to it: a fer-agent database, an empty file, or someone else's.

A fer-agent database carries ``PRAGMA application_id`` = :data:`APPLICATION_ID` (``FERA``), set when it is created;
files written before that (schema versions 1 and 2) are recognised by their tables. Any other SQLite file is another
application's, and is refused without a byte of it changed: it is identified through an ``immutable`` connection,
which takes no lock and makes no companion file (``-wal``, ``-shm``) beside it. A fer-agent database is then checked
with ``PRAGMA quick_check``, so that a damaged file is reported as damaged (with the way to save what is readable)
instead of being read wrongly or appended to.

Files are only ever opened through SQLite here: opening and closing a database file any other way in a process that
holds SQLite connections to it drops their locks (POSIX advisory locks belong to the process, not the descriptor).
"""

from __future__ import annotations

import shutil
import sqlite3
import stat
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from fer_agent.errors import StoreError

APPLICATION_ID = 0x46455241  # "FERA"
TABLES = frozenset({"sessions", "frames", "participants", "observations", "events"})
SESSION_COLUMNS = frozenset({"id", "started_at", "ended_at", "status", "source", "fps", "pid", "message"})


@dataclass(frozen=True)
class DatabaseFile:
    """An SQLite file that is a fer-agent database (``version``: its schema version) or empty (``version`` 0)."""

    version: int = 0


def uri(path: Path, mode: str) -> str:
    """An SQLite URI for ``path`` with an empty authority (a Windows network path ``//server/share/x.db`` then stays
    a path: SQLite refuses any authority but ``localhost``), its characters percent-quoted."""
    posix = path.resolve().as_posix()
    # /home/a.db -> file:///home/a.db; C:/a.db -> file:///C:/a.db; //server/share/a.db -> file:////server/share/a.db
    return f"file://{urllib.parse.quote(posix if posix.startswith('/') else '/' + posix, safe='/:')}?{mode}"


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection that changes nothing in the file. Where SQLite cannot open it read-only as usual
    (read-only media: a CD, a write-protected card, a read-only share, where the shared-memory index of the
    write-ahead log cannot be made), a database without a log beside it is opened ``immutable``: the file then holds
    all its data. With a log beside it but not its index there, it cannot be read in place."""
    try:
        conn = sqlite3.connect(uri(path, "mode=ro"), uri=True)
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError as error:
        if "unable to open" not in str(error) and "readonly" not in str(error):
            raise
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise StoreError(f"{path} cannot be read where it is: its write-ahead log ({wal.name}) is beside it but "
                         f"not the log's index ({path.name}-shm), and none can be made there (read-only media?): "
                         "copy the database and its -wal file to a writable folder and read it there")
    return sqlite3.connect(uri(path, "immutable=1"), uri=True)


def salvage_hint(path: Path) -> str:
    return f"the readable sessions can be saved to a new file with `fer-agent salvage {path} -o NEW.db`"


def is_damage(error: sqlite3.Error) -> bool:
    """SQLite says the file is damaged (SQLITE_CORRUPT, SQLITE_NOTADB), not that it cannot be opened or is busy."""
    name = getattr(error, "sqlite_errorname", "")
    return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or any(
        text in str(error) for text in ("malformed", "not a database"))


def require_regular_file(path: Path) -> None:
    """A database is a regular file: not a folder, a device, a pipe or a socket (SQLite would write over a device),
    and not a link to nothing."""
    if path.is_symlink() and not path.exists():
        raise StoreError(f"{path} is a link to {path.resolve()}, which does not exist (is its drive connected?)")
    if path.exists() and not stat.S_ISREG(path.stat().st_mode):
        kind = "a folder" if path.is_dir() else "not a regular file (a device, a pipe or a socket)"
        raise StoreError(f"{path} is {kind}; name a database file with --db PATH")


def inspect(path: Path, known_version: int) -> DatabaseFile:
    """Identify the existing file at ``path`` without changing it. An empty file is fine (a new database); a
    fer-agent database of a schema this fer-agent knows is fine; anything else is a :class:`StoreError` that says
    what it is: another application's database, a file that is not SQLite, a newer schema, or a damaged file."""
    require_regular_file(path)
    wal = path.with_name(path.name + "-wal")
    logged = (wal.exists() and wal.stat().st_size > 0) or path.with_name(path.name + "-journal").exists()
    if path.stat().st_size == 0 and not logged:
        return DatabaseFile()
    ours = _identify(path, known_version, immutable=True)
    if not ours and logged:
        # Empty without its log, which may hold everything (a file copied while its writer had it open): look again,
        # at a copy of both, so that not even an index of the log is made beside the original. The file alone holds
        # no table, so the copy is the size of the log.
        with tempfile.TemporaryDirectory(prefix="fer-agent-") as folder:
            copy = Path(folder) / path.name
            for suffix in ("", "-wal", "-journal"):
                if path.with_name(path.name + suffix).exists():
                    shutil.copyfile(path.with_name(path.name + suffix), copy.with_name(copy.name + suffix))
            ours = _identify(copy, known_version, immutable=False)
    if not ours:
        return DatabaseFile()
    # Its version and its check with its write-ahead log, if one is beside it: the file alone may lag behind it (a
    # writer at work, or one that crashed).
    conn = connect_read_only(path)
    try:
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.Error as error:
            if is_damage(error):
                raise _damaged(path, str(error)) from None
            raise StoreError(f"{path} cannot be read ({error})") from None
        if version > known_version:
            raise StoreError(f"{path} has schema version {version}, newer than this fer-agent knows "
                             f"({known_version}): upgrade fer-agent")
        check_integrity(conn, path)
    finally:
        conn.close()
    return DatabaseFile(version)


def _identify(path: Path, known_version: int, immutable: bool) -> bool:
    """True for a fer-agent database, False for an SQLite file without any content; a StoreError that says what it
    is otherwise. ``immutable``: the file alone, through a connection that takes no lock and makes no companion
    file."""
    try:
        conn = sqlite3.connect(uri(path, "immutable=1"), uri=True) if immutable else connect_read_only(path)
    except sqlite3.Error as error:
        raise StoreError(f"{path}: cannot open it ({error})") from None
    try:
        application_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        session_columns = ({row[1] for row in conn.execute("PRAGMA table_info(sessions)")}
                           if "sessions" in tables else set())
    except sqlite3.Error as error:
        if "not a database" in str(error):
            raise StoreError(f"{path} is not a fer-agent database (not an SQLite file, or its first page is "
                             "damaged); choose another --db") from None
        if is_damage(error):
            raise _damaged(path, str(error)) from None
        raise StoreError(f"{path} cannot be read ({error})") from None
    finally:
        conn.close()
    ours = application_id == APPLICATION_ID or (
        application_id == 0 and 1 <= version <= known_version and tables >= TABLES
        and session_columns >= SESSION_COLUMNS)
    if not ours:
        if application_id == 0 and version == 0 and not tables:
            return False
        owner = (f"application id {application_id:#010x}" if application_id
                 else "tables " + ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
                 if tables else f"user_version {version}")
        raise StoreError(f"{path} is not a fer-agent database (it holds another application's data: {owner}); "
                         "it was left as it is: choose another --db")
    return True


def check_integrity(conn: sqlite3.Connection, path: Path) -> None:
    """``PRAGMA quick_check``: a damaged file is a :class:`StoreError` naming its first problem and the way out."""
    try:
        problems = [line for (text,) in conn.execute("PRAGMA quick_check(1)") for line in text.splitlines()
                    if line and not line.startswith("***")]
    except sqlite3.DatabaseError as error:
        if not is_damage(error):
            raise StoreError(f"{path} cannot be read ({error})") from None
        problems = [str(error)]
    if problems != ["ok"]:
        raise _damaged(path, problems[0] if problems else "quick_check failed")


def _damaged(path: Path, problem: str) -> StoreError:
    return StoreError(f"{path} is damaged ({problem}); {salvage_hint(path)}")
