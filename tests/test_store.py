"""The session database: schema and migrations, WAL, one transaction per frame, crash recovery, the writer lock, and
its errors, on real SQLite files."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fer_agent.errors import StoreError
from fer_agent.store.writer import MIGRATIONS, Store, schema_version
from fer_agent.tracking.tracker import Tracker
from fer_agent.types import KEYPOINTS, Face, Observation, Tile


def observations(count: int, with_faces: bool = True) -> list[Observation]:
    rng = np.random.default_rng(count)
    result = []
    for index in range(count):
        tile = Tile(index, (index * 100, 0, 96, 54))
        signature = np.full((6, 8, 3), index * 20, np.float32)
        if with_faces and index % 3 != 2:
            probabilities = rng.dirichlet(np.ones(7)).astype(np.float32)
            face = Face((index * 100 + 30, 5, 40, 40), 0.9, np.zeros((len(KEYPOINTS), 2), np.float32))
            result.append(Observation(tile, signature, face, probabilities, 12.5))
        else:
            result.append(Observation(tile, signature))
    return result


def record(store: Store, frames: int, count: int = 5) -> int:
    session = store.start_session("test", 1.0, "1.0.0", 0.84, "blazeface")
    tracker = Tracker()
    for second in range(frames):
        tracked = tracker.update(observations(count), float(second))
        store.write_frame(session, float(second), "test", tracked, 0, True, {"discover": 1.0, "total": 5.0})
    return session


def test_schema_wal_and_rows(tmp_path: Path) -> None:
    path = tmp_path / "class.db"
    with Store(path) as store:
        session = record(store, frames=3)
        store.event(session, 2.0, "no_faces", "no face found for 120 s")
        store.finish_session(session, "finished")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert conn.execute("SELECT status, model_version FROM sessions").fetchall() == [("finished", "1.0.0")]
        assert conn.execute("SELECT COUNT(*), SUM(tiles), SUM(faces) FROM frames").fetchone() == (3, 15, 12)
        assert conn.execute("SELECT label FROM participants ORDER BY id").fetchall() == [
            (f"P{n}",) for n in range(1, 6)]
        rows = conn.execute("SELECT face, emotion, angry + disgust + fear + happy + sad + surprise + neutral, facing "
                            "FROM observations").fetchall()
        assert len(rows) == 15
        for face, emotion, total, facing in rows:
            if face:
                assert emotion is not None and abs(total - 1) < 1e-5 and facing == 1
            else:
                assert emotion is None and total is None
        assert conn.execute("SELECT kind FROM events").fetchall() == [("no_faces",)]


def test_reopening_keeps_data_and_marks_crashed_sessions_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "class.db"
    store = Store(path)
    record(store, frames=4)
    # No finish_session: the process "died". Closing the connection is what the OS does for a killed process.
    store.db.close()
    store._lock.release()
    with Store(path) as again:
        status, message = again.db.execute("SELECT status, message FROM sessions").fetchone()
        assert status == "interrupted" and "kill -9" in message
        assert again.db.execute("SELECT COUNT(*) FROM frames").fetchone()[0] == 4
        record(again, frames=1)
        assert again.db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 2


def test_second_writer_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "class.db"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from fer_agent.store.writer import Store; s = Store(sys.argv[1]); "
         "s.start_session('other', 1.0, 'v', None, 'd'); print('ready', flush=True); time.sleep(60)", str(path)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreError, match=rf"is in use by another fer-agent \(process {holder.pid}\)"):
            Store(path)
    finally:
        holder.kill()
        holder.wait()
    # The lock dies with its process (kill -9 included).
    with Store(path) as store:
        assert store.db.execute("SELECT status FROM sessions").fetchone()[0] == "interrupted"


def test_disk_full_is_a_clear_error_and_keeps_earlier_frames(tmp_path: Path) -> None:
    path = tmp_path / "class.db"
    with Store(path) as store:
        session = record(store, frames=2)
        pages = store.db.execute("PRAGMA page_count").fetchone()[0]
        # SQLite's own limit on the file's size: writes beyond it fail exactly as on a full disk (SQLITE_FULL).
        store.db.execute(f"PRAGMA max_page_count = {pages}")
        tracked = Tracker().update(observations(40), 2.0)
        with pytest.raises(StoreError, match="cannot write a frame: database or disk is full: free some disk space"):
            for second in range(2, 50):
                store.write_frame(session, float(second), "test", tracked, 0, True, {})
    with sqlite3.connect(path) as conn:
        frames = conn.execute("SELECT COUNT(*) FROM frames").fetchone()[0]
        assert frames >= 2
        # No half-written frame: every frame has all its observations.
        assert conn.execute("SELECT COUNT(*) FROM frames WHERE tiles != (SELECT COUNT(*) FROM observations o "
                            "WHERE o.frame_id = frames.id)").fetchone()[0] == 0


def test_unusable_paths(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    with pytest.raises(StoreError, match="cannot create its folder"):
        Store(not_a_folder / "class.db")
    not_a_database = tmp_path / "notes.db"
    not_a_database.write_text("these are my notes, not a database" * 100)
    with pytest.raises(StoreError, match="not a fer-agent database"):
        Store(not_a_database)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "class.db"
    with Store(path) as store:
        store.db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StoreError, match="newer than this fer-agent knows"):
        Store(path)


def test_migration_is_versioned(tmp_path: Path) -> None:
    with Store(tmp_path / "class.db") as store:
        assert schema_version(store.db) == len(MIGRATIONS)
        assert set(store.db.table_names()) >= {"sessions", "frames", "participants", "observations", "events"}
