"""The session database (SQLite through sqlite-utils): sessions, frames, participants, observations, events.

One file, in WAL mode, with a versioned schema (``PRAGMA user_version``) migrated in a transaction on open. Each
frame is written in one transaction, so a crash or ``kill -9`` loses at most the frame being written; sessions a
crash left "running" are marked "interrupted" (ending at their last frame) on the next open. A lock file beside the
file the path leads to (through any symbolic link; held by the operating system, so it dies with its process) keeps a
second fer-agent from writing to the same file; a file with several names (hard links) is not written at all, as
SQLite would keep a write-ahead log per name. Before anything is written
the file is identified (:mod:`fer_agent.store.database`): another application's SQLite file is refused untouched, a
damaged one is refused with the way to save what is readable. The write-ahead log is checkpointed every few hundred
pages and truncated to :data:`WAL_LIMIT_BYTES` after each checkpoint, so it stays small however long the session. No
frame or face image is ever stored: boxes, scores, probabilities and labels only.
"""

from __future__ import annotations

import datetime
import getpass
import logging
import os
import sqlite3
import uuid
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any, TypeVar

import filelock
import platformdirs
from sqlite_utils import Database

from fer_agent.errors import StoreError
from fer_agent.labels import EMOTIONS
from fer_agent.resource import Resource
from fer_agent.store.database import (
    APPLICATION_ID,
    connect_read_only,
    inspect,
    is_damage,
    require_regular_file,
    salvage_hint,
)
from fer_agent.types import Tracked

log = logging.getLogger(__name__)
T = TypeVar("T")

STATUSES = ("running", "finished", "interrupted", "failed")
# The write-ahead log is checkpointed into the database every WAL_CHECKPOINT_PAGES pages (SQLite's default is 1,000
# pages, 4 MB, which is many times a short session's data) and truncated back to WAL_LIMIT_BYTES after each checkpoint.
WAL_CHECKPOINT_PAGES = 256
WAL_LIMIT_BYTES = 1 << 20
# When a session's last frame was captured: its latest row's (the times are local ISO strings, which do not sort
# across a change of the clocks).
LAST_CAPTURE = "SELECT captured_at FROM frames WHERE session_id = ? ORDER BY id DESC LIMIT 1"


def default_database() -> Path:
    """``fer-agent.db`` in the user's data directory (``~/.local/share/fer-agent/`` on Linux)."""
    return Path(platformdirs.user_data_dir("fer-agent")) / "fer-agent.db"


def _migration_1(db: Database) -> None:
    db.table("sessions").create({
        "id": int, "started_at": str, "ended_at": str, "status": str, "source": str, "fps": float,
        "model_version": str, "model_accuracy": float, "detector": str, "pid": int, "message": str,
    }, pk="id", not_null={"started_at", "status", "source"})
    db.table("frames").create({
        "id": int, "session_id": int, "time": float, "captured_at": str, "source": str, "tiles": int, "faces": int,
        "dropped": int, "gallery": int, "ms_capture": float, "ms_layout": float, "ms_detect": float,
        "ms_classify": float, "ms_track": float, "ms_total": float,
    }, pk="id", foreign_keys=[("session_id", "sessions", "id")], not_null={"session_id", "time"})
    db.table("participants").create({
        "id": int, "session_id": int, "label": str, "name": str, "first_seen": float, "last_seen": float,
    }, pk="id", foreign_keys=[("session_id", "sessions", "id")], not_null={"session_id", "label"})
    db.table("observations").create({
        "id": int, "frame_id": int, "session_id": int, "participant_id": int, "time": float, "tile": int,
        "tile_x": int, "tile_y": int, "tile_w": int, "tile_h": int, "face": int,
        "x": int, "y": int, "w": int, "h": int, "score": float,
        **{emotion: float for emotion in EMOTIONS},
        "emotion": str, "smoothed": str, "yaw": float, "facing": int,
    }, pk="id", foreign_keys=[
        ("frame_id", "frames", "id"), ("session_id", "sessions", "id"), ("participant_id", "participants", "id"),
    ], not_null={"frame_id", "session_id", "participant_id", "time", "face"})
    db.table("events").create({
        "id": int, "session_id": int, "time": float, "kind": str, "detail": str,
    }, pk="id", foreign_keys=[("session_id", "sessions", "id")], not_null={"session_id", "time", "kind"})
    db.table("frames").create_index(["session_id", "time"])
    db.table("observations").create_index(["session_id", "time"])
    db.table("observations").create_index(["participant_id"])
    db.table("participants").create_index(["session_id"])
    db.table("events").create_index(["session_id"])


def _migration_2(db: Database) -> None:
    """Face finding no longer depends on a gallery grid. A frame is either observed (the agent saw the call's
    picture; its observations are the participants' places) or not (the view was lost: the window covered, minimised
    or its layout changed; no observations, and the time counts as not observed). Every frame recorded before this
    version was observed. The stage timings follow the new stages: discovery over the whole screen (when it ran)
    and BlazeFace following the known faces."""
    db.execute("ALTER TABLE frames RENAME COLUMN gallery TO observed")
    db.execute("UPDATE frames SET observed = 1")
    db.execute("ALTER TABLE frames RENAME COLUMN ms_layout TO ms_discover")
    db.execute("ALTER TABLE frames RENAME COLUMN ms_detect TO ms_follow")


def _migration_3(db: Database) -> None:
    """Names read off the tiles (``--names``): the time it took, per frame. (A participant's name has its column in
    ``participants`` since the first version; it stays empty without ``--names``.)"""
    db.execute("ALTER TABLE frames ADD COLUMN ms_names REAL")


def _migration_4(db: Database) -> None:
    """Recordings analysed by ``fer-agent batch``: the recording's content hash (sha256) and the settings that decide
    its rows, so that a re-run skips what is already analysed. Empty for sessions recorded by ``start``."""
    db.execute("ALTER TABLE sessions ADD COLUMN content_sha256 TEXT")
    db.execute("ALTER TABLE sessions ADD COLUMN settings TEXT")
    db.table("sessions").create_index(["content_sha256"])


def _migration_5(db: Database) -> None:
    """Sessions that travel (``fer-agent sync`` to a central database): each has a ``uid`` of its own, the same
    wherever it is copied, and an ``owner`` (here the computer account that recorded it; in a central database, the
    database role that sent it). Sessions recorded before get a new uid and their file's owner."""
    db.execute("ALTER TABLE sessions ADD COLUMN uid TEXT")
    db.execute("ALTER TABLE sessions ADD COLUMN owner TEXT")
    for (session_id,) in db.execute("SELECT id FROM sessions").fetchall():
        db.execute("UPDATE sessions SET uid = ?, owner = ? WHERE id = ?", [uuid.uuid4().hex, _owner(), session_id])
    db.execute("CREATE UNIQUE INDEX idx_sessions_uid ON sessions (uid)")


def _owner() -> str:
    """The computer account fer-agent runs under."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


# Schema version N is reached by running MIGRATIONS[N - 1]; append, never edit a released migration.
MIGRATIONS: list[Callable[[Database], None]] = [_migration_1, _migration_2, _migration_3, _migration_4, _migration_5]


def schema_version(db: Database) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: Database) -> None:
    """Bring the schema to the latest version, each migration in its own transaction."""
    version = schema_version(db)
    if version > len(MIGRATIONS):
        raise StoreError(f"the database has schema version {version}, newer than this fer-agent knows "
                         f"({len(MIGRATIONS)}): upgrade fer-agent")
    for number in range(version + 1, len(MIGRATIONS) + 1):
        with db.atomic():
            MIGRATIONS[number - 1](db)
            db.execute(f"PRAGMA user_version = {number}")
        log.info("database schema migrated to version %d", number)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).astimezone().isoformat(timespec="seconds")


class Store(Resource):
    """Open (and lock) a session database for writing. Use as a context manager, or call ``close()``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        require_regular_file(self.path)
        real = self.path.resolve()
        if real.exists() and real.stat().st_nlink > 1:
            raise StoreError(f"{self.path} has {real.stat().st_nlink} names (hard links): SQLite keeps a write-ahead "
                             "log per name, so what is written through one name can be lost through another; record "
                             "through one name only (remove the other links), or into a copy")
        # Identified before anything is made beside it: another application's file is left as it is.
        if real.exists():
            inspect(real, len(MIGRATIONS))
        try:
            real.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(f"{self.path}: cannot create its folder ({error.strerror}); choose another --db") from None
        # The writer's lock, beside the file the path leads to (through any symbolic link), held by the operating
        # system: it dies with its process.
        self._lock = filelock.FileLock(f"{real}.lock", timeout=0)
        try:
            self._lock.acquire()
        except filelock.Timeout:
            raise StoreError(f"{self.path} is in use by another fer-agent{self._holder()}; stop it first, or choose "
                             "another --db") from None
        except OSError as error:
            raise StoreError(f"{self.path}: cannot write beside it ({error.strerror}); choose another --db") from None
        created = False
        connection = None
        try:
            created = _create_empty(real)
            connection = sqlite3.connect(str(real), timeout=2.0)
            self.db = Database(connection)
            if self.db.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
                self.db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            self.db.execute("PRAGMA foreign_keys = ON")
            self.db.enable_wal()
            self.db.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT_BYTES}")
            self.db.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
            migrate(self.db)
            self._recover()
        except BaseException as error:
            if connection is not None:
                connection.close()
            if created and real.exists() and real.stat().st_size == 0:
                real.unlink()
            self._lock.release()
            if isinstance(error, sqlite3.DatabaseError):
                raise StoreError(f"{self.path}: {_explain(error, self.path)}") from None
            raise
        self._participants: dict[tuple[int, int], int] = {}
        self._names: dict[tuple[int, int], str | None] = {}

    def _holder(self) -> str:
        """" (process N)": the writer's process, from its running session."""
        try:
            with closing(connect_read_only(self.path.resolve())) as conn:
                row = conn.execute("SELECT pid FROM sessions WHERE status = 'running' ORDER BY id DESC").fetchone()
        except (sqlite3.Error, StoreError):
            return ""
        return f" (process {row[0]})" if row and row[0] else ""

    def _recover(self) -> None:
        """Sessions left "running" by a crash: we hold the lock on this file, so no fer-agent runs them. Mark them
        interrupted, ending at their last frame (at their start, without frames)."""
        for (session_id,) in self.db.execute("SELECT id FROM sessions WHERE status = 'running'").fetchall():
            with self.db.atomic():
                self.db.execute(
                    f"UPDATE sessions SET status = 'interrupted', message = ?, ended_at = COALESCE(({LAST_CAPTURE}), "
                    "started_at) WHERE id = ?",
                    ["the agent stopped without closing the session (crash, power loss or kill -9)", session_id,
                     session_id])
            log.warning("session %d was interrupted; its frames up to the interruption are kept", session_id)

    def _write(self, what: str, action: Callable[[], T]) -> T:
        try:
            with self.db.atomic():
                return action()
        except sqlite3.DatabaseError as error:
            raise StoreError(f"{self.path}: cannot write {what}: {_explain(error, self.path)}") from None

    def start_session(self, source: str, fps: float, model_version: str, model_accuracy: float | None,
                      detector: str, content_sha256: str | None = None, settings: str | None = None) -> int:
        """A new running session; ``content_sha256`` and ``settings`` for a recording analysed by ``batch``."""
        row = {
            "started_at": _now(), "status": "running", "source": source, "fps": fps, "model_version": model_version,
            "model_accuracy": model_accuracy, "detector": detector, "pid": os.getpid(),
            "content_sha256": content_sha256, "settings": settings, "uid": uuid.uuid4().hex, "owner": _owner(),
        }
        return self._write("the session", lambda: _insert(self.db, "sessions", row))

    def analysed(self, content_sha256: str, settings: str) -> tuple[int | None, list[int]]:
        """The finished session of this recording with these settings (None when there is none), and the ids of
        its sessions that did not finish (a batch stopped while writing it, or a recording that failed)."""
        rows = self.db.execute("SELECT id, status FROM sessions WHERE content_sha256 = ? AND settings = ? ORDER BY id",
                               [content_sha256, settings]).fetchall()
        finished = [session_id for session_id, status in rows if status == "finished"]
        return (finished[0] if finished else None), [session_id for session_id, status in rows
                                                     if status != "finished"]

    def write_frame(self, session_id: int, time: float, source: str, tracked: list[Tracked], dropped: int,
                    observed: bool, milliseconds: dict[str, float]) -> int:
        """One frame and its observations, in one transaction; new participants are added on first sight. A frame
        that was not observed (the view was lost) has no observations."""
        if not observed and tracked:
            raise ValueError(f"a frame that was not observed has no observations, got {len(tracked)}")

        def write() -> int:
            frame_id = _insert(self.db, "frames", {
                "session_id": session_id, "time": time, "captured_at": _now(), "source": source,
                "tiles": len(tracked), "faces": sum(t.observation.face is not None for t in tracked),
                "dropped": dropped, "observed": int(observed),
                **{f"ms_{stage}": round(value, 2) for stage, value in milliseconds.items()},
            })
            seen = [self._participant_id(session_id, item, time) for item in tracked]
            if seen:
                self.db.execute(f"UPDATE participants SET last_seen = ? WHERE id IN ({', '.join('?' * len(seen))})",
                                [time, *seen])
            self.db.table("observations").insert_all(
                _observation_row(frame_id, session_id, participant_id, time, item)
                for participant_id, item in zip(seen, tracked))
            return frame_id

        return self._write("a frame", write)

    def _participant_id(self, session_id: int, item: Tracked, time: float) -> int:
        """The participant's row id, adding the row when they are first seen; their name is written when it is first
        read, and again when it changes."""
        key = (session_id, item.participant.number)
        name = item.participant.name
        if key not in self._participants:
            self._participants[key] = _insert(self.db, "participants", {
                "session_id": session_id, "label": item.participant.label, "name": name, "first_seen": time,
                "last_seen": time,
            })
        elif name != self._names.get(key):
            self.db.execute("UPDATE participants SET name = ? WHERE id = ?", [name, self._participants[key]])
        self._names[key] = name
        return self._participants[key]

    def event(self, session_id: int, time: float, kind: str, detail: str = "") -> None:
        self._write("an event", lambda: self.db.table("events").insert(
            {"session_id": session_id, "time": time, "kind": kind, "detail": detail}))

    def finish_session(self, session_id: int, status: str, message: str | None = None) -> None:
        """Close the session: its status, why it ended, and ``ended_at``, the time its last frame was captured (now,
        for a session without frames), so that the time spent closing is not counted as class time."""
        if status not in STATUSES:
            raise ValueError(f"status: expected one of {STATUSES}, got {status!r}")

        def finish() -> None:
            last = self.db.execute(LAST_CAPTURE, [session_id]).fetchone()
            self.db.table("sessions").update(session_id, {"status": status, "ended_at": last[0] if last else _now(),
                                                    "message": message})

        self._write("the session's end", finish)

    def purge(self, session_ids: list[int]) -> dict[str, int]:
        """Delete these sessions and everything recorded with them, in one transaction; returns the rows deleted per
        table. Then VACUUM rewrites the file without the freed pages (SQLite would otherwise keep the deleted rows'
        bytes in them) and the WAL is truncated, so the data is gone from disk, not only from queries."""
        marks = ", ".join("?" * len(session_ids))

        def delete() -> dict[str, int]:
            counts = {table: self.db.execute(f"DELETE FROM {table} WHERE session_id IN ({marks})",
                                             session_ids).rowcount
                      for table in ("observations", "frames", "participants", "events")}
            counts["sessions"] = self.db.execute(f"DELETE FROM sessions WHERE id IN ({marks})", session_ids).rowcount
            return counts

        counts = self._write("the purge", delete)
        try:
            self.db.execute("VACUUM")
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.DatabaseError as error:
            raise StoreError(f"{self.path}: the sessions are deleted, but the file could not be compacted: "
                             f"{_explain(error, self.path)}") from None
        return counts

    def close(self) -> None:
        """Checkpoint the write-ahead log into the database and close; the log is removed with the last connection."""
        try:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.DatabaseError as error:
            log.warning("%s: the write-ahead log could not be checkpointed at close (%s); SQLite replays it on the "
                        "next open", self.path, error)
        self.db.close()
        self._lock.release()


def _insert(db: Database, table: str, row: dict[str, Any]) -> int:
    """Insert one row; its id."""
    row_id = db.table(table).insert(row).last_pk
    if row_id is None:
        raise StoreError(f"SQLite gave no id for the new {table} row")
    return int(row_id)


def _observation_row(frame_id: int, session_id: int, participant_id: int, time: float, item: Tracked) -> dict:
    observation = item.observation
    tx, ty, tw, th = observation.tile.box
    row = {
        "frame_id": frame_id, "session_id": session_id, "participant_id": participant_id, "time": time,
        "tile": observation.tile.index, "tile_x": tx, "tile_y": ty, "tile_w": tw, "tile_h": th,
        "face": int(observation.face is not None), "smoothed": item.smoothed,
    }
    face, probabilities, yaw = observation.face, observation.probabilities, observation.yaw
    if face is not None and probabilities is not None and yaw is not None:
        x, y, w, h = face.box
        row.update({"x": x, "y": y, "w": w, "h": h, "score": round(face.score, 4),
                    **{emotion: float(p) for emotion, p in zip(EMOTIONS, probabilities)},
                    "emotion": observation.emotion, "yaw": round(yaw, 1), "facing": int(bool(observation.facing))})
    return row


def _create_empty(path: Path) -> bool:
    """Create an empty file at ``path`` when there is none (a new database); True when this call created it. An
    existing file is not opened here."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    except FileExistsError:
        return False
    except OSError as error:
        raise StoreError(f"{path}: cannot create the database ({error.strerror}); choose a writable place with "
                         "--db PATH") from None
    return True


def _explain(error: sqlite3.DatabaseError, path: Path) -> str:
    text = str(error)
    if "disk is full" in text or "disk I/O error" in text:
        return f"{text}: free some disk space (everything written before this point is kept)"
    if "readonly" in text or "unable to open" in text:
        return f"{text}: choose a writable place with --db PATH"
    if is_damage(error):
        return f"the database is damaged ({text}); {salvage_hint(path)}"
    if "locked" in text:
        return f"{text}: another program holds the database; close it, or choose another --db"
    return text
