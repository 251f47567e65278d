"""Reading a session database for the report, the exports and the session list.

The database is opened read-only, so a report can be made while the agent is still recording into it (in WAL mode
SQLite lets readers work beside the one writer). Observations are read in one query into numpy arrays: a 90-minute
class of 50 participants is about 270,000 rows.
"""

from __future__ import annotations

import contextlib
import datetime
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from rich import box
from rich.markup import escape
from rich.table import Table

from fer_agent.clock import clock, local_time
from fer_agent.errors import StoreError
from fer_agent.labels import EMOTIONS
from fer_agent.store.central import central_reading, is_central
from fer_agent.store.database import connect_read_only, inspect, is_damage, salvage_hint
from fer_agent.store.writer import MIGRATIONS


class Readable(Protocol):
    """What the readers read through: a read-only SQLite connection, or a central database's reader
    (:class:`fer_agent.store.central.CentralReader`)."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...


@dataclass(frozen=True)
class SessionInfo:
    """One row of ``sessions`` with its frame and participant counts; ``duration`` in seconds (the last frame's time
    plus one frame interval; 0 without frames)."""

    id: int
    started_at: str
    ended_at: str | None
    status: str
    source: str
    fps: float
    model_version: str | None
    model_accuracy: float | None
    detector: str | None
    message: str | None
    frames: int
    dropped: int
    participants: int
    duration: float


@dataclass(frozen=True)
class Event:
    time: float
    kind: str
    detail: str


@dataclass(frozen=True)
class SessionData:
    """A session's frames (``frame_times`` in order, and ``frame_observed``: False where the agent had lost the view of
    the call, so those frames have no observations) and its observations as arrays, one entry per participant's place
    per observed frame.

    ``participant`` indexes ``labels`` (and ``names``: each participant's name, read off their tile when the session
    was recorded with ``--names``, else None); ``probabilities`` is [N, 7] in EMOTIONS order, NaN where no face was
    seen; ``facing`` is False where no face was seen.
    """

    info: SessionInfo
    frame_times: np.ndarray
    frame_observed: np.ndarray
    labels: list[str]
    time: np.ndarray
    participant: np.ndarray
    face: np.ndarray
    facing: np.ndarray
    probabilities: np.ndarray
    events: list[Event]
    names: list[str | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.frame_observed.shape != self.frame_times.shape or self.frame_observed.dtype != bool:
            raise ValueError(f"frame_observed: expected booleans of shape {self.frame_times.shape}, got "
                             f"{self.frame_observed.dtype} of shape {self.frame_observed.shape}")
        count = len(self.time)
        for name in ("participant", "face", "facing"):
            if getattr(self, name).shape != (count,):
                raise ValueError(f"{name}: expected shape ({count},), got {getattr(self, name).shape}")
        if self.probabilities.shape != (count, len(EMOTIONS)):
            raise ValueError(f"probabilities: expected shape ({count}, {len(EMOTIONS)}), "
                             f"got {self.probabilities.shape}")


def open_database(path: str | Path) -> sqlite3.Connection:
    """Open a fer-agent database read-only (``immutable`` on read-only media); a missing file, another application's
    file, a damaged file, or a newer schema is an error that says which."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise StoreError(f"{path}: no session database there; record a session with `fer-agent start` first, or "
                         "name the database with --db PATH")
    found = inspect(path, len(MIGRATIONS))
    if found.version < 1:
        raise StoreError(f"{path}: this is an empty database, with no session yet; record one with `fer-agent start`")
    try:
        return connect_read_only(path)
    except sqlite3.Error as error:
        raise StoreError(f"{path}: cannot open it read-only ({error})") from None


@contextlib.contextmanager
def reading(path: str | Path) -> Iterator[Readable]:
    """``open_database`` as a context manager that closes the connection, and turns a read that fails on a damaged
    page (one ``quick_check`` did not see) into one clear error. A ``postgresql://`` URL reads the central database
    (what the connecting role may see of it)."""
    if is_central(path):
        with central_reading(str(path)) as central:
            yield central
        return
    conn = open_database(path)
    try:
        yield conn
    except sqlite3.DatabaseError as error:
        if is_damage(error):
            raise StoreError(f"{path} could not be read ({error}): it is damaged; {salvage_hint(Path(path))}"
                             ) from None
        raise StoreError(f"{path} could not be read ({error})") from None
    finally:
        conn.close()


# SessionInfo's fields that are columns of ``sessions``; the others are counted from its frames and participants.
_COUNTED = ("frames", "dropped", "participants", "duration")
_SESSION_COLUMNS = [field.name for field in fields(SessionInfo) if field.name not in _COUNTED]
_SESSIONS = f"""
SELECT {", ".join(f"s.{name}" for name in _SESSION_COLUMNS)}, COUNT(f.id),
       CAST(COALESCE(SUM(f.dropped), 0) AS INTEGER), MAX(f.time),
       (SELECT COUNT(*) FROM participants p WHERE p.session_id = s.id)
FROM sessions s LEFT JOIN frames f ON f.session_id = s.id
{{where}}
GROUP BY s.id ORDER BY s.id
"""


def _session_info(row: tuple) -> SessionInfo:
    columns = dict(zip(_SESSION_COLUMNS, row))
    frames, dropped, last_time, participants = row[len(_SESSION_COLUMNS):]
    duration = 0.0 if last_time is None else float(last_time) + 1.0 / (columns["fps"] or 1.0)
    return SessionInfo(**columns, frames=frames, dropped=dropped, participants=participants, duration=duration)


def sessions_table(title: str, sessions: list[SessionInfo]) -> Table:
    """``fer-agent sessions``: one row per session."""
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("id", "started", "duration", "status", "participants", "frames"):
        table.add_column(column, no_wrap=True, justify="left" if column in ("started", "status") else "right")
    table.add_column("source", overflow="fold")
    for info in sessions:
        table.add_row(str(info.id), local_time(info.started_at), clock(info.duration), info.status,
                      str(info.participants), f"{info.frames:,}", escape(info.source))
    return table


def list_sessions(conn: Readable) -> list[SessionInfo]:
    return [_session_info(row) for row in conn.execute(_SESSIONS.format(where=""))]


def session_info(conn: Readable, session_id: int | None) -> SessionInfo:
    """The session ``session_id``, or the latest one when None; unknown ids and empty databases are errors."""
    if session_id is None:
        row = conn.execute(_SESSIONS.format(where="WHERE s.id = (SELECT MAX(id) FROM sessions)")).fetchone()
        if row is None:
            raise StoreError("the database holds no session yet; record one with `fer-agent start`")
        return _session_info(row)
    row = conn.execute(_SESSIONS.format(where="WHERE s.id = ?"), [session_id]).fetchone()
    if row is None:
        ids = [r[0] for r in conn.execute("SELECT id FROM sessions ORDER BY id")]
        known = ("no session" if not ids else f"sessions {', '.join(map(str, ids))}" if len(ids) <= 10
                 else f"{len(ids)} sessions, {ids[0]} to {ids[-1]}")
        raise StoreError(f"there is no session {session_id} in this database (it holds {known}); "
                         "`fer-agent sessions` lists them")
    return _session_info(row)


def select_sessions(conn: Readable, session_id: int | None, older_than_days: float | None,
                    now: datetime.datetime | None = None) -> list[SessionInfo]:
    """Session ``session_id`` (an error when unknown), or every session that started more than ``older_than_days``
    days before ``now``."""
    if session_id is not None:
        return [session_info(conn, session_id)]
    if older_than_days is None:
        raise ValueError("expected a session id or older_than_days")
    cutoff = (now or datetime.datetime.now().astimezone()) - datetime.timedelta(days=older_than_days)
    return [info for info in list_sessions(conn) if _started(info) < cutoff]


def _started(info: SessionInfo) -> datetime.datetime:
    started = datetime.datetime.fromisoformat(info.started_at)
    return started if started.tzinfo else started.astimezone()


def load_session(conn: Readable, session_id: int | None) -> SessionData:
    """Everything the report needs of one session (the latest when ``session_id`` is None)."""
    info = session_info(conn, session_id)
    # Schema version 1 had no lost views: its writer's migration to version 2 marks every frame observed, and a reader
    # cannot migrate, so it reads them that way.
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    observed = "observed" if version >= 2 else "1"
    frames = np.array(conn.execute(f"SELECT time, {observed} FROM frames WHERE session_id = ? ORDER BY time",
                                   [info.id]).fetchall(), dtype=np.float64).reshape(-1, 2)
    participants = conn.execute("SELECT id, label, name FROM participants WHERE session_id = ? ORDER BY id",
                                [info.id]).fetchall()
    rows = conn.execute(
        f"SELECT participant_id, time, face, COALESCE(facing, 0), {', '.join(EMOTIONS)} FROM observations "
        "WHERE session_id = ? ORDER BY id", [info.id]).fetchall()
    table = np.array(rows, dtype=np.float64).reshape(len(rows), 4 + len(EMOTIONS))
    events = [Event(*row) for row in conn.execute(
        "SELECT time, kind, COALESCE(detail, '') FROM events WHERE session_id = ? ORDER BY time, id", [info.id])]
    return SessionData(
        info=info, frame_times=frames[:, 0], frame_observed=frames[:, 1] > 0,
        labels=[label for _id, label, _name in participants],
        time=table[:, 1], participant=np.searchsorted([row_id for row_id, _label, _name in participants], table[:, 0]),
        face=table[:, 2] > 0, facing=table[:, 3] > 0, probabilities=table[:, 4:], events=events,
        names=[name or None for _id, _label, name in participants])
