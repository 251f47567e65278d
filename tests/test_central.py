"""The central PostgreSQL database, on a real PostgreSQL server started for the tests: the schema made from the
SQLite migrations, ``fer-agent sync`` (twice: no duplicates; a running session left alone; a failure part-way leaves
no half session), row-level security between instructors (and an administrator who sees all), the same report from
PostgreSQL as from SQLite, ``--db URL`` for sessions, report, export, purge and batch, and no password on the
command line."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_agent.store.central import TABLES, sqlite_schema
from fer_agent.store.writer import MIGRATIONS, Store

ROOT = Path(__file__).resolve().parents[1]
GALLERIES = ROOT.parent / "shared" / "datasets" / "galleries"
ROLES = {"alice": "alice-secret", "bob": "bob-secret", "carol": "carol-secret"}

pytestmark = pytest.mark.e2e


def fer_agent(*args: str, env: dict, role: str, passwords: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    """fer-agent as one database role: its user and password from PGUSER and PGPASSWORD, as libpq reads them."""
    return subprocess.run([sys.executable, "-m", "fer_agent", *args], capture_output=True, text=True, timeout=timeout,
                          env={**env, "PGUSER": role, "PGPASSWORD": passwords[role], "COLUMNS": "250"}, cwd=ROOT)


def psql(socket: Path, role: str, password: str, database: str = "fer"):
    import psycopg

    return psycopg.connect(host=str(socket), user=role, password=password, dbname=database, autocommit=True)


def lecture(path: Path, name: str, seconds: int) -> Path:
    image = cv2.imread(str(GALLERIES / name))
    if image is None:
        pytest.skip(f"{GALLERIES / name} not found (a checkout with ../shared beside it has the real screenshots)")
    height, width = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 2, (width, height))
    for _ in range(seconds * 2):
        writer.write(np.ascontiguousarray(image[:height, :width]))
    writer.release()
    return path


@pytest.fixture(scope="module")
def central(postgres, detector_env: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The central database ``fer`` set up by its owner with ``fer-agent setup-central``; alice and bob are
    instructors, carol an administrator. Alice's laptop has two sessions, Bob's one (recorded by fer-agent start
    from lectures made of real call screenshots)."""
    socket, superuser = postgres
    with psql(socket, "postgres", superuser, "postgres") as conn:
        conn.execute("CREATE DATABASE fer")
        for role, password in ROLES.items():
            conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    url = f"postgresql:///fer?host={socket}"
    passwords = {**ROLES, "postgres": superuser}
    made = fer_agent("setup-central", url, env=detector_env, role="postgres", passwords=passwords)
    assert made.returncode == 0, made.stderr
    with psql(socket, "postgres", superuser) as conn:
        conn.execute("GRANT fer_agent_instructor TO alice, bob")
        conn.execute("GRANT fer_agent_admin TO carol")
    folder = tmp_path_factory.mktemp("laptops")
    laptops = {"alice": folder / "alice.db", "bob": folder / "bob.db"}
    for role, name, seconds in (("alice", "gregoryfdel_zoom_call.png", 8), ("alice", "slavabzb_14.png", 6),
                                ("bob", "qiyunlab_Zoom_2021.jpg", 6)):
        video = lecture(folder / f"{role}-{name}.mp4", name, seconds)
        started = fer_agent("start", "--source", str(video), "--db", str(laptops[role]), "--quiet",
                            env=detector_env, role=role, passwords=passwords)
        assert started.returncode == 0, started.stderr
    return {"url": url, "socket": socket, "passwords": passwords, "laptops": laptops, "env": detector_env}


def run(central: dict, role: str, *args: str) -> subprocess.CompletedProcess:
    return fer_agent(*args, env=central["env"], role=role, passwords=central["passwords"])


def counts(conn, session_id: int, placeholder: str = "?") -> dict[str, int]:
    return {table: conn.execute(f"SELECT COUNT(*) FROM {table} WHERE session_id = {placeholder}",
                                [session_id]).fetchone()[0] for table in TABLES if table != "sessions"}


def test_the_central_schema_is_the_sqlite_schema(central: dict, tmp_path: Path) -> None:
    """Compared with a database file the agent wrote, not with the schema reader the central set-up uses: the same
    tables, the same columns with their types as the README maps them, the same foreign keys and indexes."""
    laptop = tmp_path / "laptop.db"
    with Store(laptop):
        pass
    with sqlite3.connect(laptop) as local:
        tables = [name for (name,) in local.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name "
                                                    "NOT LIKE 'sqlite_%' ORDER BY name")]
        version = local.execute("PRAGMA user_version").fetchone()[0]
        expected_columns = {table: [(name, {"INTEGER": "bigint", "REAL": "double precision", "TEXT": "text"}[kind],
                                     "NO" if not_null or key else "YES")
                                    for _, name, kind, not_null, _, key in local.execute(f"PRAGMA table_info({table})")]
                            for table in tables}
        expected_keys = {(table, row[3], row[2]) for table in tables
                         for row in local.execute(f"PRAGMA foreign_key_list({table})")}
        expected_indexes = {name for (name,) in local.execute("SELECT name FROM sqlite_master WHERE type = 'index' "
                                                              "AND name NOT LIKE 'sqlite_%'")}
    assert sorted(TABLES) == tables and version == sqlite_schema().version
    with psql(central["socket"], "carol", ROLES["carol"]) as conn:
        assert conn.execute("SELECT version FROM fer_agent_schema").fetchone()[0] == version
        for table in tables:
            columns = conn.execute("SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                                   "WHERE table_name = %s ORDER BY ordinal_position", [table]).fetchall()
            assert columns == expected_columns[table], table
        keys = set(conn.execute("""
            SELECT source.relname, attribute.attname, target.relname FROM pg_constraint c
            JOIN pg_class source ON source.oid = c.conrelid JOIN pg_class target ON target.oid = c.confrelid
            JOIN pg_attribute attribute ON attribute.attrelid = c.conrelid AND attribute.attnum = ANY(c.conkey)
            WHERE c.contype = 'f'""").fetchall())
        assert keys == expected_keys
        indexes = {row[0] for row in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
        assert expected_indexes <= indexes
        assert all(conn.execute("SELECT relrowsecurity FROM pg_class WHERE relname = %s", [table]).fetchone()[0]
                   for table in TABLES)


def test_sync_sends_each_session_once_with_all_its_rows(central: dict) -> None:
    laptop = central["laptops"]["alice"]
    first = run(central, "alice", "sync", "--to", central["url"], "--db", str(laptop))
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("sent 2 sessions (1 as ") and "0 already there" in first.stdout
    sent = [int(central_id) for central_id in re.findall(r"\d+ as (\d+)", first.stdout)]
    again = run(central, "alice", "sync", "--to", central["url"], "--db", str(laptop))
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("sent 0 sessions; 2 already there")
    with sqlite3.connect(laptop) as local, psql(central["socket"], "alice", ROLES["alice"]) as conn:
        assert conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 2
        for local_id, central_id in zip((1, 2), sent):
            assert counts(conn, central_id, "%s") == counts(local, local_id)
            assert counts(local, local_id)["observations"] > 0
            local_row = local.execute("SELECT uid, started_at, source, status FROM sessions WHERE id = ?",
                                      [local_id]).fetchone()
            assert conn.execute("SELECT uid, started_at, source, status, owner FROM sessions WHERE id = %s",
                                [central_id]).fetchone() == (*local_row, "alice")


def test_a_session_still_recording_is_left_alone(central: dict, tmp_path: Path) -> None:
    laptop = tmp_path / "recording.db"
    with Store(laptop) as store:
        store.start_session("screen:1", 1.0, "1.0.0", None, "centerface + blazeface")
        result = run(central, "bob", "sync", "--to", central["url"], "--db", str(laptop))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("sent 0 sessions; 0 already there; 1 still recording")


def test_a_sync_that_fails_part_way_leaves_no_half_session(central: dict) -> None:
    socket, superuser = central["socket"], central["passwords"]["postgres"]
    with psql(socket, "postgres", superuser) as conn:
        conn.execute("REVOKE INSERT ON observations FROM fer_agent_instructor")
    try:
        failed = run(central, "bob", "sync", "--to", central["url"], "--db", str(central["laptops"]["bob"]))
    finally:
        with psql(socket, "postgres", superuser) as conn:
            conn.execute("GRANT INSERT ON observations TO fer_agent_instructor")
    assert failed.returncode == 1
    assert failed.stderr.count("error:") == 1 and "permission denied for table observations" in failed.stderr
    with psql(socket, "postgres", superuser) as conn:
        assert conn.execute("SELECT COUNT(*) FROM sessions WHERE owner = 'bob'").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM frames f JOIN sessions s ON s.id = f.session_id "
                            "WHERE s.owner = 'bob'").fetchone()[0] == 0
    done = run(central, "bob", "sync", "--to", central["url"], "--db", str(central["laptops"]["bob"]))
    assert done.returncode == 0 and done.stdout.startswith("sent 1 session ("), done.stderr


def test_sync_brings_an_older_laptop_database_up_to_date_first(central: dict, tmp_path: Path) -> None:
    from sqlite_utils import Database

    laptop = tmp_path / "older.db"
    db = Database(laptop)
    for version, migration in enumerate(MIGRATIONS[:4], start=1):
        migration(db)
        db.execute(f"PRAGMA user_version = {version}")
    db.execute("INSERT INTO sessions (started_at, status, source, fps) VALUES ('2026-11-01T10:00:00+00:00', "
               "'finished', 'lecture.mp4', 1.0)")
    db.execute("INSERT INTO frames (session_id, time, observed) VALUES (1, 0.0, 1)")
    db.conn.commit()
    db.close()
    result = run(central, "carol", "sync", "--to", central["url"], "--db", str(laptop))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("sent 1 session (1 as ")
    with sqlite3.connect(laptop) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert conn.execute("SELECT uid IS NOT NULL FROM sessions").fetchone()[0] == 1


def test_each_instructor_sees_only_their_own_sessions(central: dict) -> None:
    for role in ("alice", "bob"):
        synced = run(central, role, "sync", "--to", central["url"], "--db", str(central["laptops"][role]))
        assert synced.returncode == 0, synced.stderr
    with psql(central["socket"], "postgres", central["passwords"]["postgres"]) as conn:
        owners = dict(conn.execute("SELECT id, owner FROM sessions").fetchall())
    bobs = sorted(session for session, owner in owners.items() if owner == "bob")
    alices = sorted(session for session, owner in owners.items() if owner == "alice")
    assert len(bobs) == 1 and len(alices) == 2

    def listed(role: str) -> list[int]:
        result = run(central, role, "sessions", "--db", central["url"])
        assert result.returncode == 0, result.stderr
        rows = re.findall(r"^\s*(\d+)\s+\d{4}-\d\d-\d\d ", result.stdout, re.MULTILINE)
        return sorted(int(match) for match in rows)

    assert listed("bob") == bobs
    assert listed("alice") == alices
    assert listed("carol") == sorted(owners)
    refused = run(central, "bob", "report", str(alices[0]), "--db", central["url"])
    assert refused.returncode == 1 and f"no session {alices[0]}" in refused.stderr
    with psql(central["socket"], "bob", ROLES["bob"]) as conn:
        # Row-level security in the database, whatever the query: Bob's rows only, and no session in Alice's name.
        assert conn.execute("SELECT COUNT(DISTINCT session_id) FROM observations").fetchone()[0] == 1
        import psycopg

        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            conn.execute("INSERT INTO sessions (started_at, status, source, owner) VALUES ('2026', 'finished', 'x', "
                         "'alice')")


def test_a_report_from_postgresql_is_the_report_from_sqlite(central: dict, tmp_path: Path) -> None:
    synced = run(central, "alice", "sync", "--to", central["url"], "--db", str(central["laptops"]["alice"]))
    assert synced.returncode == 0, synced.stderr
    with psql(central["socket"], "alice", ROLES["alice"]) as conn, \
            sqlite3.connect(central["laptops"]["alice"]) as local:
        (uid,) = local.execute("SELECT uid FROM sessions WHERE id = 1").fetchone()
        (central_id,) = conn.execute("SELECT id FROM sessions WHERE uid = %s", [uid]).fetchone()
    local_report, central_report = tmp_path / "local.html", tmp_path / "central.html"
    made = run(central, "alice", "report", "1", "--db", str(central["laptops"]["alice"]), "-o", str(local_report))
    assert made.returncode == 0, made.stderr
    made = run(central, "alice", "report", str(central_id), "--db", central["url"], "-o", str(central_report))
    assert made.returncode == 0, made.stderr
    # The same page, but for the session's number in each database.
    central_page = central_report.read_text()
    assert central_page.replace(f"Session {central_id}", "Session 1") == local_report.read_text()
    exported = run(central, "alice", "export", str(central_id), "--db", central["url"], "-o", str(tmp_path / "c.json"))
    assert exported.returncode == 0, exported.stderr


def test_no_password_on_the_command_line(central: dict) -> None:
    with_password = "postgresql://alice:alice-secret@localhost/fer"
    for args in (("sync", "--to", with_password), ("sessions", "--db", with_password)):
        result = run(central, "alice", *args)
        assert result.returncode in (1, 2)
        assert "~/.pgpass" in result.stderr and "PGPASSWORD" in result.stderr
    # A session is recorded locally, then sent: start does not take a URL for a file name.
    result = run(central, "alice", "start", "--source", "lecture.mp4", "--db", central["url"])
    assert result.returncode == 2 and "then send it to the central database with fer-agent sync" in result.stderr


def test_batch_and_purge_on_the_central_database(central: dict, tmp_path: Path) -> None:
    video = lecture(tmp_path / "week1.mp4", "slavabzb_2.png", 6)
    args = ("batch", str(video), "--db", central["url"], "--cache", str(tmp_path / "cache"), "--workers", "1")
    first = run(central, "bob", *args)
    assert first.returncode == 0, first.stderr
    assert "1 analysed, 0 already analysed, 0 failed" in first.stdout
    again = run(central, "bob", *args)
    assert again.returncode == 0 and "0 analysed, 1 already analysed" in again.stdout, again.stderr
    with psql(central["socket"], "bob", ROLES["bob"]) as conn:
        (session_id,) = conn.execute("SELECT id FROM sessions WHERE source = %s", [str(video)]).fetchone()
        assert counts(conn, session_id, "%s")["frames"] == 6
    refused = run(central, "alice", "purge", str(session_id), "--yes", "--db", central["url"])
    assert refused.returncode == 1 and f"no session {session_id}" in refused.stderr
    purged = run(central, "bob", "purge", str(session_id), "--yes", "--db", central["url"])
    assert purged.returncode == 0 and "deleted 1 session (6 frames" in purged.stdout, purged.stderr
    with psql(central["socket"], "postgres", central["passwords"]["postgres"]) as conn:
        assert conn.execute("SELECT COUNT(*) FROM frames WHERE session_id = %s", [session_id]).fetchone()[0] == 0


def test_a_batch_session_that_cannot_be_sent_waits_for_the_next_batch(central: dict, tmp_path: Path) -> None:
    """The central database refuses the session's rows while a batch sends it (here: its frames may not be
    inserted for a while): the batch still ends, the session waits in the staging database in the cache folder, and
    the next batch with the same --db and --cache sends it, once."""
    video = lecture(tmp_path / "week2.mp4", "slavabzb_7.png", 4)
    cache = tmp_path / "cache"
    args = ("batch", str(video), "--db", central["url"], "--cache", str(cache), "--workers", "1")
    owner = central["passwords"]["postgres"]
    with psql(central["socket"], "postgres", owner) as conn:
        conn.execute("REVOKE INSERT ON frames FROM fer_agent_instructor")
    try:
        refused = run(central, "bob", *args)
    finally:
        with psql(central["socket"], "postgres", owner) as conn:
            conn.execute("GRANT INSERT ON frames TO fer_agent_instructor")
    assert refused.returncode == 0, refused.stderr
    assert "not sent yet" in refused.stdout + refused.stderr, refused.stdout
    (staging,) = cache.rglob("central-*.db")
    with sqlite3.connect(staging) as conn:
        assert conn.execute("SELECT status, source FROM sessions").fetchall() == [("finished", str(video))]
    with psql(central["socket"], "bob", ROLES["bob"]) as conn:
        assert conn.execute("SELECT COUNT(*) FROM sessions WHERE source = %s", [str(video)]).fetchone() == (0,)
    sent = run(central, "bob", *args)
    assert sent.returncode == 0, sent.stderr
    assert "0 analysed, 1 already analysed" in sent.stdout, sent.stdout
    with sqlite3.connect(staging) as conn:
        assert conn.execute("SELECT COUNT(*) FROM sessions").fetchone() == (0,)
    with psql(central["socket"], "bob", ROLES["bob"]) as conn:
        (session_id,) = conn.execute("SELECT id FROM sessions WHERE source = %s", [str(video)]).fetchone()
        assert counts(conn, session_id, "%s")["frames"] == 4
    # Bob's sessions as the other tests of the module expect them.
    assert run(central, "bob", "purge", str(session_id), "--yes", "--db", central["url"]).returncode == 0
