"""``fer-agent batch`` on recordings made from the real call screenshots: a real Dask cluster (local, and a loopback
cluster of a scheduler and two worker processes), chunks joined into one session per recording, the same rows as
``fer-agent start --source``, skipping what is analysed, and a batch killed mid-run that resumes without losing or
doubling a session."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_agent.batch import Settings, _recording_key, find_recordings, plan_chunks, run_batch
from fer_agent.paths import default_emotion_model
from tests.galleries import on_canvas

ROOT = Path(__file__).resolve().parents[1]
GALLERIES = ROOT.parent / "shared" / "datasets" / "galleries"
SIZE = (1280, 720)
# Columns that say what was analysed (not when, or how long it took).
OBSERVATION_ROWS = ("SELECT f.time, f.source, f.observed, p.label, o.tile, o.face, o.x, o.y, o.w, o.h, o.angry, "
                    "o.disgust, o.fear, o.happy, o.sad, o.surprise, o.neutral, o.emotion, o.smoothed, o.yaw "
                    "FROM observations o JOIN frames f ON f.id = o.frame_id JOIN participants p "
                    "ON p.id = o.participant_id WHERE o.session_id = ? ORDER BY f.time, o.tile")

pytestmark = pytest.mark.e2e


def screenshot(name: str) -> np.ndarray:
    """A real call screenshot (BGR), centred on a 1280x720 dark canvas, scaled down to fit."""
    path = GALLERIES / name
    if not path.is_file():
        pytest.skip(f"{path} not found (a checkout with ../shared beside it has the real screenshots)")
    return on_canvas(cv2.imread(str(path)), SIZE)


def write_lecture(path: Path, scenes: list[tuple[str, int]], fps: int = 2) -> Path:
    """A recorded lecture: each (screenshot, seconds) in turn, as a screen recording shows a call's gallery."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, SIZE)
    for name, seconds in scenes:
        image = screenshot(name)
        for _ in range(seconds * fps):
            writer.write(image)
    writer.release()
    return path


# 22 participants; another call (11) on screen from 12 s to 18 s, as after a page flip; then the first gallery again.
LECTURE = [("EVOCATION-ITN_2nd_Workshop_7.png", 12), ("slavabzb_13.png", 6), ("EVOCATION-ITN_2nd_Workshop_7.png", 12)]


@pytest.fixture(scope="module")
def term(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A term's folder: two lectures in week folders, a folder of screenshots, and a damaged video."""
    folder = tmp_path_factory.mktemp("term")
    write_lecture(folder / "week1" / "lecture.mp4", LECTURE)
    write_lecture(folder / "week2" / "lecture.mp4", [("gommy15_zoom4.PNG", 10)])
    shots = folder / "week3" / "shots"
    shots.mkdir(parents=True)
    for index, name in enumerate(("gregoryfdel_zoom_call.png", "gregoryfdel_zoom_call.png")):
        cv2.imwrite(str(shots / f"{index:03d}.png"), screenshot(name))
    (folder / "week4").mkdir()
    (folder / "week4" / "damaged.mp4").write_bytes(b"\x00garbage" * 100)
    return folder


def batch(*args: str, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    # A wide "terminal", so that rich does not fold the table's paths and the lines under it.
    return subprocess.run([sys.executable, "-m", "fer_agent", "batch", *args], capture_output=True, text=True,
                          timeout=timeout, env={**env, "COLUMNS": "250"}, cwd=ROOT)


def query(database: Path, sql: str, *parameters) -> list[tuple]:
    with sqlite3.connect(database) as conn:
        return conn.execute(sql, parameters).fetchall()


def session_of(database: Path, source: Path) -> int:
    (found,) = query(database, "SELECT id FROM sessions WHERE source = ?", str(source))
    return found[0]


def test_recordings_are_found_and_chunked_on_the_sampling_grid(term: Path) -> None:
    (term / "list.txt").write_text("# the first two weeks\nweek1/lecture.mp4\nweek2/lecture.mp4  # again\n\n")
    recordings, failures = find_recordings([str(term)])
    assert [(r.path.relative_to(term).as_posix(), r.kind) for r in recordings] == [
        ("week1/lecture.mp4", "video"), ("week2/lecture.mp4", "video"), ("week3/shots", "screenshots")]
    assert [(Path(f.name).name, f.status) for f in failures] == [("damaged.mp4", "failed")]
    assert "cannot read this video" in failures[0].message
    listed, _ = find_recordings([str(term / "list.txt"), str(term / "week*" / "*.mp4")])
    assert [r.path.relative_to(term).as_posix() for r in listed] == ["week1/lecture.mp4", "week2/lecture.mp4"]
    assert recordings[0].duration == pytest.approx(30.0)

    chunks = plan_chunks(recordings[0], fps=1.0, chunk_seconds=6.0)
    assert [(c.start, c.end) for c in chunks] == [(0, 6), (6, 12), (12, 18), (18, 24), (24, None)]
    assert sum(c.seconds for c in chunks) == pytest.approx(30.0)
    # A last piece under half a chunk joins the one before it.
    assert [(c.start, c.end) for c in plan_chunks(recordings[0], fps=3.0, chunk_seconds=13.0)] == [
        (0, 13), (13, None)]
    assert [(c.start, c.end) for c in plan_chunks(recordings[2], fps=1.0, chunk_seconds=1.0)] == [(0, None)]
    # Chunks cut at other times are cached apart: a re-run with another --chunk does not take them for its own.
    assert _recording_key("a" * 64, "{}", 600.0) != _recording_key("a" * 64, "{}", 300.0)


def test_a_term_on_the_local_cluster(term: Path, detector_env: dict, tmp_path: Path) -> None:
    database, cache = tmp_path / "term.db", tmp_path / "cache"
    common = ("--db", str(database), "--cache", str(cache), "--workers", "2", "--chunk", "0.1")
    result = batch(str(term), *common, env=detector_env)
    # The damaged video is reported by name and fails the exit code; the others are analysed all the same.
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "failed: " in result.stdout and "damaged.mp4: cannot read this video" in result.stdout
    assert "3 analysed, 0 already analysed, 1 failed" in result.stdout
    # Each recording's session is written as it finishes, so the sessions' order is the order the recordings finished.
    sessions = query(database,
                     "SELECT source, status, content_sha256 IS NOT NULL, settings FROM sessions ORDER BY source")
    assert [(Path(source).relative_to(term).as_posix(), status, hashed)
            for source, status, hashed, _ in sessions] == [
        ("week1/lecture.mp4", "finished", 1), ("week2/lecture.mp4", "finished", 1), ("week3/shots", "finished", 1)]
    assert len({settings for *_, settings in sessions}) == 1
    assert not any(cache.rglob("*.pickle")), "a written recording's chunks are dropped from the cache"

    # The same lecture through `fer-agent start`: the same frames and participants. Chunks start with the faces
    # found afresh (as after a page flip), so after the first boundary a box may differ by a few pixels.
    lecture = term / "week1" / "lecture.mp4"
    alone = tmp_path / "alone.db"
    started = subprocess.run([sys.executable, "-m", "fer_agent", "start", "--source", str(lecture), "--db", str(alone),
                              "--quiet"], capture_output=True, text=True, env=detector_env, cwd=ROOT, timeout=600)
    assert started.returncode == 0, started.stderr
    chunked = query(database, OBSERVATION_ROWS, session_of(database, lecture))
    whole = query(alone, OBSERVATION_ROWS, 1)
    assert [row[:6] for row in chunked] == [row[:6] for row in whole]
    assert [row for row in chunked if row[0] < 6] == [row for row in whole if row[0] < 6]
    participants = "SELECT COUNT(*) FROM participants WHERE session_id = ?"
    assert query(database, participants, session_of(database, lecture)) == query(alone, participants, 1)
    assert query(alone, participants, 1)[0][0] == 22 + 11
    # Each of the 22 is the same participant before the other call and after it, across three chunk boundaries.
    labels = "SELECT DISTINCT p.label FROM observations o JOIN participants p ON p.id = o.participant_id " \
             "WHERE o.session_id = ? AND o.time {} ORDER BY p.label"
    session = session_of(database, lecture)
    assert query(database, labels.format("< 12"), session) == query(database, labels.format(">= 18"), session)

    again = batch(str(term / "week1"), str(term / "week3"), *common, env=detector_env)
    assert again.returncode == 0, again.stderr
    assert "0 analysed, 2 already analysed, 0 failed" in again.stdout
    assert query(database, "SELECT COUNT(*) FROM sessions") == [(3,)]


def test_a_video_that_fails_part_way_is_written_up_to_the_failure_and_tried_again(detector_env: dict,
                                                                                  tmp_path: Path) -> None:
    """A recording cut short after 5 of its 14 seconds (its header still declares 14): its session holds the 5
    frames, is marked failed with the reason, and the next run analyses it again rather than calling it done."""
    from tests.test_bad_inputs import cut_after_frames, write_avi

    video = tmp_path / "lectures" / "cut.avi"
    video.parent.mkdir()
    write_avi(video, seconds=14)
    cut_after_frames(video, keep=5)
    database, cache = tmp_path / "term.db", tmp_path / "cache"
    common = (str(video.parent), "--db", str(database), "--cache", str(cache), "--workers", "1")
    first = batch(*common, env=detector_env)
    assert first.returncode == 1, first.stderr
    assert "0 analysed, 0 already analysed, 1 failed" in first.stdout, first.stdout
    assert "stopped at 0:04 of its 0:14" in first.stdout
    [(status, message)] = query(database, "SELECT status, message FROM sessions")
    assert status == "failed" and "stopped at 0:04 of its 0:14: the file is damaged or cut short" in message
    assert query(database, "SELECT COUNT(*), MAX(time) FROM frames") == [(5, 4.0)]
    assert query(database, "SELECT COUNT(*) FROM observations WHERE face = 1")[0][0] > 0
    again = batch(*common, env=detector_env)
    assert again.returncode == 1 and "0 analysed, 0 already analysed, 1 failed" in again.stdout, again.stdout
    # Tried again, and the failed session of the first run replaced, not kept beside the new one.
    assert query(database, "SELECT COUNT(*), MIN(status) FROM sessions") == [(1, "failed")]
    assert query(database, "SELECT COUNT(*) FROM frames") == [(5,)]


def test_without_chunks_the_rows_are_those_of_start(term: Path, detector_env: dict, tmp_path: Path) -> None:
    lecture = term / "week2" / "lecture.mp4"
    database = tmp_path / "batch.db"
    result = batch(str(lecture), "--db", str(database), "--cache", str(tmp_path / "cache"), "--workers", "1",
                   env=detector_env)
    assert result.returncode == 0, result.stderr
    alone = tmp_path / "alone.db"
    started = subprocess.run([sys.executable, "-m", "fer_agent", "start", "--source", str(lecture), "--db", str(alone),
                              "--quiet"], capture_output=True, text=True, env=detector_env, cwd=ROOT, timeout=600)
    assert started.returncode == 0, started.stderr
    rows = query(database, OBSERVATION_ROWS, 1)
    assert len(rows) >= 10 * 17 and rows == query(alone, OBSERVATION_ROWS, 1)
    session = "SELECT source, fps, model_version, model_accuracy, detector, status FROM sessions"
    assert query(database, session) == query(alone, session)
    events = "SELECT time, kind, detail FROM events"
    assert query(database, events) == query(alone, events)


def test_models_load_once_per_worker(term: Path, detector_env: dict, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FER_AGENT_DETECTOR_MODEL", "FER_AGENT_DISCOVERY_MODEL"):
        monkeypatch.setenv(name, detector_env[name])
    settings = Settings(fps=1.0, emotion_model=str(default_emotion_model()))
    summary = run_batch([str(term / "week1")], settings, tmp_path / "term.db", workers=2, chunk_seconds=3.0,
                        cache=tmp_path / "cache")
    (outcome,) = summary.outcomes
    assert outcome.status == "analysed" and outcome.frames == 30
    # Ten chunks on two worker processes: at most one analyzer (its models loaded) per process. (A worker keeps
    # every analyzer it made until it exits, so no two of its analyzers can share an id.)
    assert summary.workers == 2
    assert 1 <= len(summary.analyzers) <= 2
    assert len({worker for worker, _ in summary.analyzers}) == len(summary.analyzers)


def test_a_killed_batch_resumes_without_losing_or_doubling_a_session(term: Path, detector_env: dict,
                                                                     tmp_path: Path) -> None:
    database, cache = tmp_path / "term.db", tmp_path / "cache"
    recordings = [str(term / "week1"), str(term / "week2"), str(term / "week3")]
    common = ("--db", str(database), "--cache", str(cache), "--workers", "1", "--chunk", "0.05")
    process = subprocess.Popen([sys.executable, "-m", "fer_agent", "batch", *recordings, *common],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=detector_env, cwd=ROOT,
                               start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(list(cache.rglob("*.pickle"))) < 2:
        assert process.poll() is None, process.communicate()
        time.sleep(0.1)
    # kill -9 of the batch and its workers, with chunks of the first lecture finished and others in flight.
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
    kept = len(list(cache.rglob("*.pickle")))
    assert kept >= 2

    result = batch(*recordings, *common, env=detector_env)
    assert result.returncode == 0, result.stderr
    assert "chunks taken from an earlier run" in result.stdout
    sessions = query(database, "SELECT source, status FROM sessions ORDER BY id")
    assert sorted(Path(source).relative_to(term).as_posix() for source, _ in sessions) == [
        "week1/lecture.mp4", "week2/lecture.mp4", "week3/shots"]
    assert {status for _, status in sessions} == {"finished"}
    frames = "SELECT COUNT(*) FROM frames WHERE session_id = ?"
    assert query(database, frames, session_of(database, term / "week1" / "lecture.mp4")) == [(30,)]


def test_a_loopback_cluster_gives_the_rows_of_a_local_run(term: Path, detector_env: dict, tmp_path: Path) -> None:
    dask = Path(sys.executable).with_name("dask")
    scheduler_file = tmp_path / "scheduler.json"
    env = detector_env
    processes = [subprocess.Popen([str(dask), "scheduler", "--host", "127.0.0.1", "--port", "0",
                                   "--scheduler-file", str(scheduler_file), "--no-dashboard"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        import json

        address = json.loads(scheduler_file.read_text())["address"]
        for _ in range(2):
            processes.append(subprocess.Popen([str(dask), "worker", address, "--nthreads", "1", "--nworkers", "1",
                                               "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                              env=env))
        from distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        lecture = term / "week1" / "lecture.mp4"
        remote, local = tmp_path / "remote.db", tmp_path / "local.db"
        result = batch(str(lecture), "--cluster", address, "--db", str(remote), "--cache", str(tmp_path / "c1"),
                       "--chunk", "0.1", env=env)
        assert result.returncode == 0, result.stderr
        assert "on 2 workers" in result.stdout
        result = batch(str(lecture), "--workers", "2", "--db", str(local), "--cache", str(tmp_path / "c2"),
                       "--chunk", "0.1", env=env)
        assert result.returncode == 0, result.stderr
        assert query(remote, OBSERVATION_ROWS, 1) == query(local, OBSERVATION_ROWS, 1)
        assert len(query(remote, OBSERVATION_ROWS, 1)) > 0
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)

    unreachable = batch(str(term / "week2"), "--cluster", "tcp://127.0.0.1:9", "--db", str(tmp_path / "x.db"),
                        env=detector_env, timeout=120)
    assert unreachable.returncode == 1
    assert unreachable.stderr.count("error:") == 1 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" \
        in unreachable.stderr
