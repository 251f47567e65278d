"""Never damage a user's data: another application's database, a second path to a database being written, a damaged
file, read-only media, how a crashed session ends, and the write-ahead log's size. Real SQLite files, real links, real
damaged files made here, real processes."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fer_agent.errors import StoreError
from fer_agent.store.database import APPLICATION_ID
from fer_agent.store.writer import MIGRATIONS, WAL_CHECKPOINT_PAGES, WAL_LIMIT_BYTES, Store
from fer_agent.tracking.tracker import Tracker
from tests.synthetic_session import record_class

ROOT = Path(__file__).resolve().parents[1]
GALLERIES = ROOT.parent / "shared" / "datasets" / "galleries"
HOLDER = """
import sys
from fer_agent.store.writer import Store
from fer_agent.tracking.tracker import Tracker
sys.path.insert(0, sys.argv[2])
from test_store import observations
store = Store(sys.argv[1])
session = store.start_session("holder", 1.0, "v", None, "d")
tracker = Tracker()
for second in range(3):
    store.write_frame(session, float(second), "holder", tracker.update(observations(5), float(second)), 0, True, {})
print("ready", flush=True)
if sys.stdin.readline().strip() == "finish":
    store.finish_session(session, "finished")
    store.close()
    print("finished", flush=True)
"""


def fer_agent(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fer_agent", *args], capture_output=True, text=True, timeout=300,
                          env=env, cwd=ROOT)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def screenshot() -> Path:
    if not GALLERIES.is_dir():
        pytest.skip(f"the real call screenshots are not at {GALLERIES}")
    return GALLERIES / "slavabzb_2.png"


def written_by_another_application(path: Path, *statements: str) -> None:
    with sqlite3.connect(path) as conn:
        for statement in statements:
            conn.execute(statement)


def contacts(path: Path) -> None:
    written_by_another_application(path, "CREATE TABLE contacts(id INTEGER PRIMARY KEY, name TEXT)",
                                   "INSERT INTO contacts(name) VALUES ('Ada'), ('Grace')")


def own_sessions_table_in_wal(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode = wal")
        conn.execute("CREATE TABLE sessions(id INTEGER PRIMARY KEY, started_at TEXT, status TEXT, source TEXT)")
        conn.execute("INSERT INTO sessions(started_at, status, source) VALUES ('yesterday', 'running', 'gym')")
    sqlite3.connect(path).close()


def user_version_1(path: Path) -> None:
    written_by_another_application(path, "CREATE TABLE contacts(id INTEGER PRIMARY KEY, name TEXT)",
                                   "PRAGMA user_version = 1")


def foreign_application_id(path: Path) -> None:
    written_by_another_application(path, "PRAGMA application_id = 1179142994",
                                   "CREATE TABLE sessions(id INTEGER PRIMARY KEY)")


@pytest.mark.e2e
@pytest.mark.parametrize("make", [contacts, own_sessions_table_in_wal, user_version_1, foreign_application_id])
def test_another_applications_database_is_left_byte_for_byte_untouched(make, detector_env: dict,
                                                                       tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    make(path)
    before, files = digest(path), sorted(os.listdir(tmp_path))
    started = fer_agent("start", "--source", str(screenshot()), "--db", str(path), "--quiet", env=detector_env)
    assert "is not a fer-agent database (it holds another application's data" in one_error_line(started)
    for command in (["sessions"], ["report", "-o", str(tmp_path / "r.html")], ["export", "-o", str(tmp_path / "e")],
                    ["purge", "--older-than", "0", "--yes"]):
        assert "is not a fer-agent database" in one_error_line(fer_agent(*command, "--db", str(path))), command
    assert digest(path) == before
    # Not even SQLite's companion files (-wal, -shm, -journal) were made beside it.
    assert sorted(os.listdir(tmp_path)) == files


def test_another_applications_database_with_its_write_ahead_log_beside_it(tmp_path: Path) -> None:
    """Copied while the other application had it open: its log is beside it, the log's index is not."""
    live, folder = tmp_path / "live", tmp_path / "copy"
    live.mkdir()
    folder.mkdir()
    writer = sqlite3.connect(live / "app.db")
    writer.execute("PRAGMA journal_mode = wal")
    writer.execute("CREATE TABLE contacts(id INTEGER PRIMARY KEY, name TEXT)")
    writer.execute("INSERT INTO contacts(name) VALUES ('Ada')")
    writer.commit()
    for name in ("app.db", "app.db-wal"):
        shutil.copy(live / name, folder / name)
    writer.close()
    before = {name: digest(folder / name) for name in ("app.db", "app.db-wal")}
    for command in (["sessions"], ["purge", "--older-than", "0", "--yes"]):
        assert "is not a fer-agent database" in one_error_line(fer_agent(*command, "--db", str(folder / "app.db")))
    with pytest.raises(StoreError, match="is not a fer-agent database"):
        Store(folder / "app.db")
    assert {name: digest(folder / name) for name in before} == before
    assert sorted(os.listdir(folder)) == ["app.db", "app.db-wal"]


@pytest.mark.e2e
def test_what_is_not_a_database_file_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    pipe = tmp_path / "pipe.db"
    os.mkfifo(pipe)
    with pytest.raises(StoreError, match="is not a regular file"):
        Store(pipe)
    with pytest.raises(StoreError, match="is a folder"):
        Store(tmp_path)
    dangling = tmp_path / "usb.db"
    dangling.symlink_to(tmp_path / "unmounted" / "class.db")
    for command in (["sessions"], ["start", "--source", str(screenshot()), "--quiet"]):
        line = one_error_line(fer_agent(*command, "--db", str(dangling)))
        assert f"usb.db is a link to {tmp_path / 'unmounted' / 'class.db'}, which does not exist" in line
    assert not (tmp_path / "unmounted").exists()


def test_fer_agent_databases_carry_the_application_id_and_older_ones_are_still_recognised(tmp_path: Path) -> None:
    path = tmp_path / "class.db"
    with Store(path) as store:
        record_class(store, 1, 4)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        # A database written before the application id was set (schema versions 1 and 2) has fer-agent's tables.
        conn.execute("PRAGMA application_id = 0")
    result = fer_agent("sessions", "--db", str(path))
    assert result.returncode == 0 and "finished" in result.stdout, result.stderr
    with Store(path) as store:
        assert store.db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert store.db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 1
    # An empty SQLite file (no table, no version) is not another application's data: it becomes a fer-agent database.
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).execute("VACUUM").connection.close()
    Store(empty).close()
    with sqlite3.connect(empty) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


@pytest.mark.e2e
def test_a_second_path_to_a_database_being_written_is_refused(detector_env: dict, tmp_path: Path) -> None:
    path = tmp_path / "cc.db"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(ROOT / "tests")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "ready"
        symbolic, hard = tmp_path / "link.db", tmp_path / "hard.db"
        symbolic.symlink_to(path.name)
        with pytest.raises(StoreError, match=rf"link.db is in use by another fer-agent \(process {holder.pid}\)"):
            Store(symbolic)
        started = fer_agent("start", "--source", str(screenshot()), "--db", str(symbolic), "--quiet",
                            env=detector_env)
        assert "is in use by another fer-agent" in one_error_line(started)
        # SQLite keeps a write-ahead log per name of a file: a file with two names is not written through either.
        os.link(path, hard)
        for other in (hard, path):
            with pytest.raises(StoreError, match="has 2 names \\(hard links\\): SQLite keeps a write-ahead log per "
                                                 "name"):
                Store(other)
        started = fer_agent("start", "--source", str(screenshot()), "--db", str(hard), "--quiet", env=detector_env)
        assert "has 2 names (hard links)" in one_error_line(started)
        # The writer is alive: its session is not marked interrupted by anyone.
        with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as conn:
            assert conn.execute("SELECT status FROM sessions").fetchall() == [("running",)]
        hard.unlink()
        holder.stdin.write("finish\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "finished"
    finally:
        holder.kill()
        holder.wait()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT status FROM sessions").fetchall() == [("finished",)]
        assert conn.execute("SELECT COUNT(*) FROM frames").fetchone()[0] == 3


@pytest.fixture(scope="module")
def three_lectures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lectures") / "class.db"
    with Store(path) as store:
        for number in range(3):
            record_class(store, 3, 12, source=f"lecture-{number}.mp4")
    return path


def damage(path: Path, pages: tuple[float, ...] = (0.4, 0.6)) -> None:
    """Overwrite most of a few pages, at these fractions of the file, with random bytes (a bad sector, a bad copy)."""
    rng = np.random.default_rng(1)
    count = path.stat().st_size // 4096
    with open(path, "r+b") as handle:
        for fraction in pages:
            handle.seek(int(count * fraction) * 4096 + 100)
            handle.write(rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())


@pytest.mark.e2e
def test_a_damaged_database_is_reported_and_its_readable_sessions_can_be_saved(three_lectures: Path, detector_env: dict,
                                                                              tmp_path: Path) -> None:
    path = tmp_path / "damaged.db"
    shutil.copy(three_lectures, path)
    damage(path)
    before = digest(path)
    for command in (["sessions"], ["report", "-o", str(tmp_path / "r.html")], ["export", "-o", str(tmp_path / "e")],
                    ["purge", "1", "--yes"]):
        line = one_error_line(fer_agent(*command, "--db", str(path)))
        assert f"{path} is damaged (" in line and f"`fer-agent salvage {path} -o NEW.db`" in line, command
    started = fer_agent("start", "--source", str(screenshot()), "--db", str(path), "--quiet", env=detector_env)
    assert "is damaged" in one_error_line(started)
    assert digest(path) == before

    saved = tmp_path / "saved.db"
    result = fer_agent("salvage", str(path), "-o", str(saved))
    assert result.returncode == 0, result.stderr
    assert "saved 3 sessions" in result.stdout and "damaged stretches skipped" in result.stdout
    assert digest(path) == before
    with sqlite3.connect(saved) as conn, sqlite3.connect(three_lectures) as original:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 3
        tables = ("sessions", "participants", "frames", "events")
        for table in tables:
            assert (conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
                    == original.execute(f"SELECT COUNT(*) FROM {table}").fetchone()), table
        # Only the observations on the damaged pages are lost; every one saved is as it was recorded.
        kept = conn.execute("SELECT id, participant_id, time, happy FROM observations ORDER BY id").fetchall()
        recorded = original.execute("SELECT id, participant_id, time, happy FROM observations ORDER BY id").fetchall()
        assert 0.8 * len(recorded) < len(kept) < len(recorded)
        assert set(kept) <= set(recorded)
    for session in (1, 2, 3):
        report = fer_agent("report", str(session), "--db", str(saved), "-o", str(tmp_path / f"s{session}.html"))
        assert report.returncode == 0, report.stderr
    assert one_error_line(fer_agent("salvage", str(path), "-o", str(saved))).endswith(
        "already exists; salvage writes a new file: choose another -o")


@pytest.fixture
def read_only_folder(tmp_path: Path):
    """A folder mounted read-only (as a CD, a write-protected card or a read-only share is): (source, mount point).
    Files put in the source folder appear read-only at the mount point."""
    source, mounted = tmp_path / "source", tmp_path / "media"
    source.mkdir()
    mounted.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command to make read-only media")
    try:
        subprocess.run(["mount", "--bind", str(source), str(mounted)], check=True, capture_output=True)
    except (subprocess.CalledProcessError, OSError) as error:
        pytest.skip(f"cannot mount a folder here to make read-only media ({error})")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(mounted)], check=True, capture_output=True)
        with pytest.raises(OSError):
            (mounted / "probe").write_text("x")
        yield source, mounted
    finally:
        subprocess.run(["umount", str(mounted)], check=False, capture_output=True)


@pytest.mark.e2e
def test_an_archive_on_read_only_media_can_be_read(three_lectures: Path, read_only_folder, tmp_path: Path) -> None:
    source, media = read_only_folder
    shutil.copy(three_lectures, source / "class.db")
    path = media / "class.db"
    listed = fer_agent("sessions", "--db", str(path))
    assert listed.returncode == 0 and listed.stdout.count("finished") == 3, listed.stderr
    assert fer_agent("report", "2", "--db", str(path), "-o", str(tmp_path / "r.html")).returncode == 0
    assert fer_agent("export", "3", "--db", str(path), "-o", str(tmp_path / "e.json")).returncode == 0
    started = fer_agent("start", "--source", str(screenshot()), "--db", str(path), "--quiet")
    assert "cannot write beside it (Read-only file system); choose another --db" in one_error_line(started)
    assert sorted(os.listdir(media)) == ["class.db"]


def test_a_log_without_its_index_on_read_only_media_says_what_to_do(read_only_folder, tmp_path: Path) -> None:
    source, media = read_only_folder
    with Store(tmp_path / "live.db") as store:
        record_class(store, 1, 4)
        # Copied while the writer has it open: the last frames are still in the write-ahead log.
        shutil.copy(tmp_path / "live.db", source / "class.db")
        shutil.copy(tmp_path / "live.db-wal", source / "class.db-wal")
    line = one_error_line(fer_agent("sessions", "--db", str(media / "class.db")))
    assert "cannot be read where it is: its write-ahead log (class.db-wal) is beside it but not the log's index" in line
    assert "copy the database and its -wal file to a writable folder" in line


@pytest.mark.e2e
def test_an_interrupted_session_ends_at_its_last_frame(tmp_path: Path) -> None:
    path = tmp_path / "class.db"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(ROOT / "tests")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert holder.stdout.readline().strip() == "ready"
    time.sleep(2.1)
    holder.kill()
    holder.wait()
    with Store(path) as store:
        (last_frame,) = store.db.execute("SELECT MAX(captured_at) FROM frames").fetchone()
        status, ended_at = store.db.execute("SELECT status, ended_at FROM sessions").fetchone()
    assert status == "interrupted" and ended_at == last_frame


@pytest.mark.e2e
def test_the_write_ahead_log_stays_small_during_a_long_session(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from test_store import observations

    path, log = tmp_path / "class.db", tmp_path / "class.db-wal"
    largest = 0
    with Store(path) as store:
        session = store.start_session("long", 1.0, "v", None, "d")
        tracker = Tracker()
        for second in range(900):
            store.write_frame(session, float(second), "long", tracker.update(observations(40), float(second)), 0,
                              True, {})
            largest = max(largest, log.stat().st_size)
        page_size = store.db.execute("PRAGMA page_size").fetchone()[0]
    # Bounded by the checkpoint interval and the size limit (plus the frame being written), not by the data.
    assert path.stat().st_size > 2 * (WAL_LIMIT_BYTES + WAL_CHECKPOINT_PAGES * page_size)
    assert largest <= WAL_LIMIT_BYTES + WAL_CHECKPOINT_PAGES * page_size
    assert largest < 2 * 1024 * 1024  # what the README promises, whatever the constants become
    # Closed: the log is checkpointed and gone.
    assert not log.exists()
