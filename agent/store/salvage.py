"""Save what is readable of a damaged session database into a new one (``fer-agent salvage``).

The damaged file is only read (read-only, and ``immutable`` when nothing is beside it). Each table is read in order
of its row ids, in chunks; where a chunk cannot be read, it is read row by row up to the damage, and the damage is
stepped over by seeking to the next row id that can be read (doubling the step, then bisecting back), so one bad page
loses the rows on it, not the rest of the table. The rows read are written to a new file with the damaged file's
schema version, then migrated to the current one: a session keeps its frames, participants, observations and events
as far as they could be read (sessions that were still running are marked interrupted, ending at their last frame).
A frame whose observations were not all read is counted as incomplete.
"""

from __future__ import annotations

import os
import sqlite3
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich import box
from rich.table import Table

from fer_agent.clock import local_time
from fer_agent.errors import StoreError
from fer_agent.store.database import APPLICATION_ID, connect_read_only
from fer_agent.store.writer import MIGRATIONS, Store

CHUNK_ROWS = 2000
# Written parents before children, so that every row's references are known when it is filtered.
TABLES = ("sessions", "participants", "frames", "events", "observations")


@dataclass(frozen=True)
class SalvagedSession:
    id: int
    started_at: str
    status: str
    frames: int
    observations: int
    incomplete_frames: int


@dataclass(frozen=True)
class Salvage:
    """What was saved: each session, and the damaged stretches skipped per table."""

    sessions: list[SalvagedSession]
    damaged: dict[str, int]

    def table(self, target: str | Path) -> Table:
        """``fer-agent salvage``'s table: each session saved, with its frames, observations and incomplete frames."""
        table = Table(title=f"saved to {target}", box=box.SIMPLE_HEAD, pad_edge=False)
        for column in ("session", "started", "status", "frames", "observations", "incomplete"):
            table.add_column(column, justify="left" if column in ("started", "status") else "right", no_wrap=True)
        for session in self.sessions:
            table.add_row(str(session.id), local_time(session.started_at), session.status, f"{session.frames:,}",
                          f"{session.observations:,}", f"{session.incomplete_frames:,}")
        return table

    def summary(self, target: str | Path) -> str:
        """One line: how many sessions were saved, and the damaged stretches skipped per table."""
        lost = {table: count for table, count in self.damaged.items() if count}
        return (f"saved {len(self.sessions)} session{'s' if len(self.sessions) != 1 else ''} to {target}; "
                + ("damaged stretches skipped: " + ", ".join(f"{table} {count}" for table, count in lost.items())
                   if lost else "every row of the tables could be read"))


def salvage(source: Path, target: Path, step: Callable[[str], None] | None = None) -> Salvage:
    """Copy every readable row of the fer-agent database ``source`` into a new database ``target``. The copy is
    written beside ``target`` under a temporary name and renamed when it is complete, so a failure leaves no half
    copy behind."""
    if target.exists() and target.stat().st_size > 0:
        raise StoreError(f"{target} already exists; salvage writes a new file: choose another -o")
    if target.resolve() == source.resolve():
        raise StoreError("the salvaged copy must go to another file than the damaged one")
    if not target.parent.is_dir():
        raise StoreError(f"{target.parent}: no such folder; choose where the new file goes with -o")
    try:
        conn = connect_read_only(source)
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError as error:
        raise StoreError(f"{source}: nothing can be read from it ({error})") from None
    if not 1 <= version <= len(MIGRATIONS):
        conn.close()
        raise StoreError(f"{source}: not a fer-agent database this version can read (schema version {version})")
    tables: dict[str, tuple[list[str], list[tuple]]] = {}
    damaged: dict[str, int] = {}
    try:
        for table in TABLES:
            if step:
                step(f"reading {table}")
            columns, rows, damaged[table] = _readable_rows(conn, table)
            tables[table] = (columns, rows)
    finally:
        conn.close()
    kept = _consistent(tables)
    if not kept["sessions"][1]:
        raise StoreError(f"{source}: no session could be read from it")
    if step:
        step(f"writing {target}")
    partial = target.with_name(f".{target.name}.salvage-{os.getpid()}")
    try:
        _write(partial, version, kept)
        # The current schema, write-ahead logging and the application id, as any database fer-agent writes; sessions
        # that were still running are marked interrupted, ending at their last frame.
        with Store(partial) as store:
            statuses = dict(store.db.execute("SELECT id, status FROM sessions").fetchall())
        os.replace(partial, target)
    except (sqlite3.Error, OSError) as error:
        raise StoreError(f"{target}: cannot write the salvaged copy ({error})") from None
    finally:
        for leftover in (partial, Path(f"{partial}.lock")):
            leftover.unlink(missing_ok=True)
    return Salvage(_summary(kept, statuses), damaged)


def _readable_rows(conn: sqlite3.Connection, table: str) -> tuple[list[str], list[tuple], int]:
    """The table's columns, every row that can be read (in id order), and how many damaged stretches were skipped."""
    try:
        columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
    except sqlite3.DatabaseError:
        return [], [], 1
    if not columns:
        return [], [], 1
    select = f"SELECT {', '.join(columns)} FROM {table} WHERE id > ? ORDER BY id LIMIT ?"
    id_at = columns.index("id")

    def read(after: int, limit: int) -> list[tuple] | None:
        try:
            return conn.execute(select, [after, limit]).fetchall()
        except sqlite3.DatabaseError:
            return None

    rows: list[tuple] = []
    damaged = 0
    after = 0
    while True:
        chunk = read(after, CHUNK_ROWS)
        if chunk is None:
            # Up to the damage, row by row; then past it.
            while (row := read(after, 1)):
                rows.extend(row)
                after = row[0][id_at]
            if row == []:
                break
            damaged += 1
            readable = _past_damage(read, after)
            if readable is None:
                break
            after = readable
            continue
        if not chunk:
            break
        rows.extend(chunk)
        after = chunk[-1][id_at]
    return columns, rows, damaged


def _past_damage(read: Callable[[int, int], list[tuple] | None], after: int) -> int | None:
    """The smallest id beyond ``after`` from which the table can be read again (None: nowhere)."""
    step = 1
    while read(after + step, 1) is None:
        step *= 2
        if after + step >= 1 << 62:
            return None
    low, high = after + step // 2, after + step
    while high - low > 1:
        middle = (low + high) // 2
        if read(middle, 1) is None:
            low = middle
        else:
            high = middle
    return high


def _consistent(tables: dict[str, tuple[list[str], list[tuple]]]) -> dict[str, tuple[list[str], list[tuple]]]:
    """Only rows whose references were read too: a frame of a session that was lost cannot be kept."""

    def ids(table: str) -> set:
        columns, rows = tables[table]
        return {row[columns.index("id")] for row in rows} if columns else set()

    def keep(table: str, **references: set) -> tuple[list[str], list[tuple]]:
        columns, rows = tables[table]
        if not columns:
            return columns, rows
        positions = {columns.index(column): known for column, known in references.items()}
        return columns, [row for row in rows if all(row[at] in known for at, known in positions.items())]

    kept = {"sessions": tables["sessions"]}
    sessions = ids("sessions")
    for table in ("participants", "frames", "events"):
        kept[table] = keep(table, session_id=sessions)
    frames = {row[kept["frames"][0].index("id")] for row in kept["frames"][1]}
    participants = {row[kept["participants"][0].index("id")] for row in kept["participants"][1]}
    kept["observations"] = keep("observations", session_id=sessions, frame_id=frames, participant_id=participants)
    return kept


def _write(target: Path, version: int, tables: dict[str, tuple[list[str], list[tuple]]]) -> None:
    from sqlite_utils import Database

    db = Database(sqlite3.connect(str(target)))
    try:
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        with db.atomic():
            for migration in MIGRATIONS[:version]:
                migration(db)
            db.execute(f"PRAGMA user_version = {version}")
            for table in TABLES:
                columns, rows = tables[table]
                if not columns:
                    continue
                db.conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                                    f"({', '.join('?' * len(columns))})", rows)
    finally:
        db.close()


def _summary(tables: dict[str, tuple[list[str], list[tuple]]], statuses: dict[int, str]) -> list[SalvagedSession]:
    frame_columns, frames = tables["frames"]
    observation_columns, observations = tables["observations"]
    read_per_frame = Counter(row[observation_columns.index("frame_id")] for row in observations)
    per_session: dict[int, list[int]] = {}
    for row in frames:
        read = read_per_frame.get(row[frame_columns.index("id")], 0)
        counts = per_session.setdefault(row[frame_columns.index("session_id")], [0, 0, 0])
        counts[0] += 1
        counts[1] += read
        counts[2] += read < (row[frame_columns.index("tiles")] or 0)
    columns, sessions = tables["sessions"]
    result = []
    for row in sessions:
        session_id = row[columns.index("id")]
        frame_count, observation_count, incomplete = per_session.get(session_id, [0, 0, 0])
        result.append(SalvagedSession(session_id, row[columns.index("started_at")], statuses[session_id],
                                      frame_count, observation_count, incomplete))
    return result
