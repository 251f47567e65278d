"""A central PostgreSQL database of many instructors' sessions (psycopg, the ``central`` extra).

**One schema definition.** The central tables are made from the SQLite migrations themselves: an in-memory SQLite
database is migrated to the latest version (:data:`fer_agent.store.writer.MIGRATIONS`), and its tables, columns,
types, foreign keys and indexes are created in PostgreSQL (``INTEGER`` -> ``BIGINT``, ``REAL`` -> ``DOUBLE
PRECISION``, ``TEXT`` -> ``TEXT``; each ``id`` an identity column). A central database at an older version gets the
tables, columns and indexes that are missing, so every migration after version 5 must add (tables, columns, indexes),
never rename or drop (tested: the central schema equals SQLite's).

**Each instructor sees their own sessions**, by PostgreSQL's row-level security, not by a check in our Python: a
session's ``owner`` is the database role that sent it (``current_user``, set by the database, which refuses any
other), and a role sees the sessions it owns, and the frames, participants, observations and events of those
sessions, unless it is a member of ``fer_agent_admin``. Instructors are members of ``fer_agent_instructor``.
``fer-agent setup-central URL`` (as the database's owner) creates or migrates the tables, both roles, their grants
and the policies.

**Credentials** come from where libpq looks: the ``PG*`` environment variables (``PGUSER``, ``PGPASSWORD``, ...),
``~/.pgpass``, a service file. A URL with a password in it is refused: a command line is seen by other users and kept
in shell history. No URL or credential is stored.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlite_utils import Database

from fer_agent.errors import StoreError
from fer_agent.store.database import connect_read_only
from fer_agent.store.writer import MIGRATIONS, migrate

INSTRUCTOR = "fer_agent_instructor"
ADMIN = "fer_agent_admin"
VERSION_TABLE = "fer_agent_schema"
# Parents before children: the order tables are created and filled in.
TABLES = ("sessions", "participants", "frames", "observations", "events")
TYPES = {"INTEGER": "BIGINT", "REAL": "DOUBLE PRECISION", "TEXT": "TEXT"}
# The tables whose rows others refer to: a session sent takes their new ids from the central sequences first.
ALLOCATED = ("sessions", "participants", "frames")


def is_central(database: str | Path | None) -> bool:
    """Whether ``--db`` names a PostgreSQL database (a ``postgresql://`` or ``postgres://`` URL)."""
    return isinstance(database, str) and database.startswith(("postgresql://", "postgres://"))


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    not_null: bool
    primary_key: bool


@dataclass(frozen=True)
class Index:
    name: str
    table: str
    columns: tuple[str, ...]
    unique: bool


@dataclass(frozen=True)
class Schema:
    """The tables (columns in order, foreign keys as (column, table)) and indexes of a migrated SQLite database."""

    tables: dict[str, tuple[Column, ...]]
    foreign_keys: dict[str, tuple[tuple[str, str], ...]]
    indexes: tuple[Index, ...]
    version: int


def sqlite_schema(conn: sqlite3.Connection | None = None) -> Schema:
    """The schema of ``conn`` (default: a new in-memory database migrated to the latest version)."""
    if conn is None:
        db = Database(memory=True)
        migrate(db)
        conn = db.conn
    tables = {}
    foreign_keys = {}
    for table in TABLES:
        tables[table] = tuple(Column(row[1], row[2].upper(), bool(row[3]), bool(row[5]))
                              for row in conn.execute(f"PRAGMA table_info({table})"))
        foreign_keys[table] = tuple(sorted((row[3], row[2])
                                           for row in conn.execute(f"PRAGMA foreign_key_list({table})")))
    indexes = []
    for name, table in conn.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                                    "ORDER BY name"):
        unique = bool(conn.execute(f"SELECT \"unique\" FROM pragma_index_list('{table}') WHERE name = ?",
                                   [name]).fetchone()[0])
        columns = tuple(row[2] for row in conn.execute(f"PRAGMA index_info('{name}')"))
        indexes.append(Index(name, table, columns, unique))
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    return Schema(tables, foreign_keys, tuple(indexes), version)


def check_url(url: str) -> None:
    """Refuse a URL that carries a password (in the user part or as ``password=``)."""
    parts = urlsplit(url)
    if parts.password is not None or "password" in parse_qs(parts.query):
        raise StoreError("the database URL has a password in it; give it to PostgreSQL the standard ways instead: "
                         "~/.pgpass, or the PGPASSWORD environment variable (a command line is seen by other users "
                         "and kept in shell history)")


def connect(url: str, autocommit: bool = True) -> Any:
    """A psycopg connection to the central database (credentials from libpq's standard places); with
    ``autocommit``, each ``conn.transaction()`` block is a transaction of its own, committed at its end."""
    check_url(url)
    try:
        import psycopg
    except ImportError as error:
        raise StoreError("a central database needs the central extra (psycopg): pip install 'fer-agent[central]'"
                         ) from error
    try:
        return psycopg.connect(url, connect_timeout=20, autocommit=autocommit)
    except psycopg.Error as error:
        reason = " ".join(str(error).split())
        raise StoreError(f"cannot connect to the central database {_shown(url)}: {reason}") from None


def _shown(url: str) -> str:
    """The URL without its user part or parameters, for messages."""
    return re.sub(r"^([a-z]+://)[^@/]*@", r"\1", url.split("?", 1)[0])


def central_version(conn: Any) -> int:
    """The central database's schema version (0: no fer-agent tables yet)."""
    row = conn.execute("SELECT to_regclass(%s)", [VERSION_TABLE]).fetchone()
    if row[0] is None:
        return 0
    return int(conn.execute(f"SELECT version FROM {VERSION_TABLE}").fetchone()[0])


def require_current(conn: Any, url: str) -> None:
    version = central_version(conn)
    if version < len(MIGRATIONS):
        raise StoreError(f"the central database {_shown(url)} has "
                         + ("no fer-agent tables" if version == 0 else f"schema version {version}")
                         + f"; its owner runs `fer-agent setup-central {_shown(url)}` once to "
                           f"{'create' if version == 0 else 'migrate'} them")
    if version > len(MIGRATIONS):
        raise StoreError(f"the central database has schema version {version}, newer than this fer-agent knows "
                         f"({len(MIGRATIONS)}): upgrade fer-agent")


def setup(conn: Any) -> list[str]:
    """Create or migrate the central tables, the two roles, their grants and the row-level security policies, in one
    transaction; the statements run."""
    schema = sqlite_schema()
    statements: list[str] = []
    with conn.transaction():
        for role in (INSTRUCTOR, ADMIN):
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone() is None:
                statements.append(f"CREATE ROLE {role} NOLOGIN")
        if conn.execute("SELECT 1 FROM pg_auth_members m JOIN pg_roles a ON a.oid = m.roleid JOIN pg_roles b "
                        "ON b.oid = m.member WHERE a.rolname = %s AND b.rolname = %s", [INSTRUCTOR, ADMIN]
                        ).fetchone() is None:
            statements.append(f"GRANT {INSTRUCTOR} TO {ADMIN}")
        statements.append(f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version INTEGER NOT NULL)")
        for table in TABLES:
            existing = {row[0] for row in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND table_name = %s", [table])}
            references = dict(schema.foreign_keys[table])
            if not existing:
                statements.append(f"CREATE TABLE {table} (" + ", ".join(
                    _column(column, references) for column in schema.tables[table]) + ")")
                statements.append(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
                statements.append(f"CREATE POLICY fer_agent_own ON {table} USING ({_visible(table)})"
                                  + (" WITH CHECK (owner = current_user)" if table == "sessions" else ""))
            else:
                statements += [f"ALTER TABLE {table} ADD COLUMN {_column(column, references)}"
                               for column in schema.tables[table] if column.name not in existing]
            statements.append(f"GRANT SELECT, INSERT, DELETE ON {table} TO {INSTRUCTOR}")
        statements.append("ALTER TABLE sessions ALTER COLUMN owner SET DEFAULT current_user")
        for index in schema.indexes:
            statements.append(f"CREATE {'UNIQUE ' if index.unique else ''}INDEX IF NOT EXISTS {index.name} ON "
                              f"{index.table} ({', '.join(index.columns)})")
        statements.append(f"GRANT SELECT ON {VERSION_TABLE} TO {INSTRUCTOR}")
        for statement in statements:
            conn.execute(statement)
        # Sending a session takes ids from these sequences (the identity columns' own).
        for table in ALLOCATED:
            (sequence,) = conn.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table]).fetchone()
            statement = f"GRANT USAGE ON SEQUENCE {sequence} TO {INSTRUCTOR}"
            conn.execute(statement)
            statements.append(statement)
        conn.execute(f"DELETE FROM {VERSION_TABLE}")
        conn.execute(f"INSERT INTO {VERSION_TABLE} (version) VALUES (%s)", [schema.version])
    return statements


def _column(column: Column, references: dict[str, str]) -> str:
    if column.primary_key:
        return f"{column.name} BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
    text = f"{column.name} {TYPES[column.type]}"
    if column.not_null:
        text += " NOT NULL"
    if column.name in references:
        text += f" REFERENCES {references[column.name]} (id) ON DELETE CASCADE"
    return text


def _visible(table: str) -> str:
    """Which rows of ``table`` a role sees: its own sessions (all, for an admin), and the rows of those."""
    if table == "sessions":
        return f"owner = current_user OR pg_has_role(current_user, '{ADMIN}', 'MEMBER')"
    return f"EXISTS (SELECT 1 FROM sessions s WHERE s.id = {table}.session_id)"


class CentralReader:
    """A central database read as the readers read SQLite (``execute(sql, parameters)`` with ``?`` placeholders,
    ``PRAGMA user_version``); what a role reads is what row-level security lets it see."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def execute(self, sql: str, parameters: Any = ()) -> Any:
        if sql.strip().upper() == "PRAGMA USER_VERSION":
            return self.conn.execute(f"SELECT version FROM {VERSION_TABLE}")
        return self.conn.execute(sql.replace("?", "%s"), list(parameters))

    def close(self) -> None:
        self.conn.close()


@contextlib.contextmanager
def central_reading(url: str) -> Iterator[CentralReader]:
    """The central database, checked to be at this fer-agent's schema version, read in one read-only transaction."""
    conn = connect(url, autocommit=False)
    import psycopg

    try:
        # One snapshot for every query of a read (a purge meanwhile does not show half-way).
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        require_current(conn, url)
        yield CentralReader(conn)
    except psycopg.Error as error:
        raise StoreError(f"the central database {_shown(url)} could not be read: {' '.join(str(error).split())}"
                         ) from None
    finally:
        conn.close()


@dataclass
class SyncResult:
    sent: list[tuple[int, int]]
    already: int
    running: int


def sync(local: Path, url: str) -> SyncResult:
    """Send the local database's sessions that have ended (finished, interrupted or failed; never one still
    recording) to the central database, each in one transaction with everything recorded with it. A session is sent
    once, however often this runs (its ``uid`` is unique there); an interrupted sync leaves no part of a session."""
    conn = connect(url)
    import psycopg

    try:
        require_current(conn, url)
        with contextlib.closing(connect_read_only(local)) as source:
            rows = source.execute("SELECT uid, status, id FROM sessions ORDER BY id").fetchall()
            present = {row[0] for row in conn.execute("SELECT uid FROM sessions WHERE uid = ANY(%s)",
                                                      [[uid for uid, _, _ in rows]])}
            result = SyncResult([], 0, 0)
            schema = sqlite_schema()
            for uid, status, session_id in rows:
                if status == "running":
                    result.running += 1
                elif uid in present:
                    result.already += 1
                else:
                    try:
                        with conn.transaction():
                            result.sent.append((session_id, _send(source, conn, session_id, schema)))
                    except psycopg.errors.UniqueViolation:
                        result.already += 1
        return result
    except psycopg.Error as error:
        raise StoreError(f"sync to {_shown(url)} failed: {' '.join(str(error).split())} (every session sent before "
                         "it is kept there; run it again to send the rest)") from None
    finally:
        conn.close()


def _send(source: sqlite3.Connection, conn: Any, session_id: int, schema: Schema) -> int:
    """Copy one session and its rows; the rows others refer to get new ids from the central sequences first, so the
    references can be rewritten. The central session's id. (COPY cannot fill a table under row-level security:
    the rows go in as batched INSERTs.)"""
    new_ids: dict[str, dict[int, int]] = {}
    for table in TABLES:
        columns = [column.name for column in schema.tables[table] if column.name != "owner"]
        key = "id" if table == "sessions" else "session_id"
        rows = source.execute(f"SELECT {', '.join(columns)} FROM {table} WHERE {key} = ? ORDER BY id",
                              [session_id]).fetchall()
        mapping: dict[int, int] = {}
        if rows and table in ALLOCATED:
            ids = conn.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                               [table, len(rows)]).fetchall()
            mapping = dict(zip((row[0] for row in rows), (new_id for (new_id,) in ids)))
        new_ids[table] = mapping
        references = dict(schema.foreign_keys[table])
        positions = {index: new_ids[references[name]] for index, name in enumerate(columns) if name in references}
        sent = columns if table in ALLOCATED else columns[1:]
        values = []
        for row in rows:
            value = list(row)
            for index, table_ids in positions.items():
                value[index] = table_ids[value[index]]
            if table in ALLOCATED:
                value[0] = mapping[row[0]]
                values.append(value)
            else:
                values.append(value[1:])
        if values:
            with conn.cursor() as cursor:
                cursor.executemany(f"INSERT INTO {table} ({', '.join(sent)}) VALUES "
                                   f"({', '.join(['%s'] * len(sent))})", values)
    return new_ids["sessions"][session_id]


def analysed(url: str, content_sha256: str, settings: str) -> tuple[int | None, list[int]]:
    """As :meth:`fer_agent.store.writer.Store.analysed`, among the caller's own sessions of the central database."""
    conn = connect(url)
    try:
        require_current(conn, url)
        rows = conn.execute("SELECT id, status FROM sessions WHERE content_sha256 = %s AND settings = %s "
                            "AND owner = current_user ORDER BY id", [content_sha256, settings]).fetchall()
    finally:
        conn.close()
    finished = [session_id for session_id, status in rows if status == "finished"]
    return (finished[0] if finished else None), [session_id for session_id, status in rows if status != "finished"]


def purge(url: str, session_ids: list[int]) -> dict[str, int]:
    """Delete these sessions (those the role may see: its own, or any for an admin) and everything recorded with them,
    in one transaction; the rows deleted per table. PostgreSQL frees the rows' space at its next VACUUM."""
    conn = connect(url)
    try:
        require_current(conn, url)
        with conn.transaction():
            counts = {table: conn.execute(f"DELETE FROM {table} WHERE session_id = ANY(%s)", [session_ids]).rowcount
                      for table in reversed(TABLES) if table != "sessions"}
            counts["sessions"] = conn.execute("DELETE FROM sessions WHERE id = ANY(%s)", [session_ids]).rowcount
        return counts
    finally:
        conn.close()
