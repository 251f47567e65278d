"""The live agent end to end, as real processes: ``fer-agent start`` on a video, on a real (Xvfb) screen, killed with
-9 and restarted; ``fer-agent analyze --json``; and every error case as one clear line and a non-zero exit."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_agent.labels import EMOTIONS
from tests.conftest import start_xvfb
from tests.synthetic import participants_from_faces, render_gallery

ROOT = Path(__file__).resolve().parents[1]


def agent(*args: str, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fer_agent", *args], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=ROOT)


def spawn(*args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fer_agent", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=ROOT)


def write_gallery_video(path: Path, faces: np.ndarray, seconds: int, fps: int = 2, count: int = 9,
                        size=(1280, 720)) -> None:
    """A recorded lecture: a gallery of ``count`` participants whose faces change every frame."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for index in range(seconds * fps):
        people = participants_from_faces(np.roll(faces, -index, axis=0), count, seed=7)
        writer.write(render_gallery(people, width=size[0], height=size[1]).image[:, :, ::-1])
    writer.release()


def rows(database: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(database) as conn:
        return conn.execute(sql).fetchall()


def wait_for_frames(database: Path, count: int, process: subprocess.Popen, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            if rows(database, "SELECT COUNT(*) FROM frames")[0][0] >= count:
                return
        except sqlite3.Error:
            pass
        time.sleep(0.2)
    raise AssertionError(f"no {count} frames in {database} after {limit} s")


@pytest.fixture(scope="module")
def happy_faces(test_faces) -> np.ndarray:
    faces, majority = test_faces
    return faces[majority == EMOTIONS.index("happy")][:60]


@pytest.mark.e2e
def test_video_to_sqlite(happy_faces: np.ndarray, detector_env: dict, tmp_path: Path) -> None:
    video = tmp_path / "lecture.mp4"
    write_gallery_video(video, happy_faces, seconds=4)
    database = tmp_path / "class.db"
    result = agent("start", "--source", str(video), "--fps", "2", "--db", str(database), "--quiet", env=detector_env)
    assert result.returncode == 0, result.stderr
    assert "session 1 finished: 8 frames (0 dropped), 9 participants" in result.stdout
    assert f"data: {database}" in result.stdout and "fer-agent report 1" in result.stdout
    assert rows(database, "SELECT status, source FROM sessions") == [("finished", str(video))]
    assert rows(database, "SELECT COUNT(*), MIN(tiles), MAX(tiles) FROM frames") == [(8, 9, 9)]
    assert rows(database, "SELECT COUNT(*) FROM participants") == [(9,)]
    assert rows(database, "SELECT MAX(n) FROM (SELECT COUNT(*) AS n FROM observations "
                          "GROUP BY frame_id, participant_id)") == [(1,)]
    faces, happy = rows(database, "SELECT COUNT(*), SUM(emotion = 'happy') FROM observations WHERE face = 1")[0]
    assert faces >= 0.95 * 72 and happy >= 0.75 * faces
    # Each participant keeps one tile: the gallery did not move.
    assert rows(database, "SELECT MAX(n) FROM (SELECT COUNT(DISTINCT tile) AS n FROM observations "
                          "GROUP BY participant_id)") == [(1,)]
    timings = rows(database, "SELECT MIN(ms_follow), MIN(ms_total) FROM frames")[0]
    assert all(value > 0 for value in timings)


@pytest.mark.e2e
def test_analyze_prints_one_json_object_per_image(happy_faces: np.ndarray, detector_env: dict,
                                                  tmp_path: Path) -> None:
    gallery = render_gallery(participants_from_faces(happy_faces, 6, seed=2, camera_off=1), chat_panel=True)
    cv2.imwrite(str(tmp_path / "a.png"), gallery.image[:, :, ::-1])
    cv2.imwrite(str(tmp_path / "b.png"), np.full((200, 300, 3), 30, np.uint8))
    result = agent("analyze", str(tmp_path), "--json", env=detector_env)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [Path(line["source"]).name for line in lines] == ["a.png", "b.png"]
    faces = lines[0]["faces"]
    assert len(faces) == 5 and lines[1]["faces"] == []
    for face, square in zip(faces, gallery.faces):
        x, y, w, h = face["box"]
        sx, sy, side, _ = square
        assert sx <= x + w / 2 <= sx + side and sy <= y + h / 2 <= sy + side
        assert set(face["scores"]) == set(EMOTIONS) and abs(sum(face["scores"].values()) - 1) < 1e-3
        assert face["emotion"] == max(face["scores"], key=face["scores"].get) and 0 < face["score"] <= 1


@pytest.fixture
def gallery_on_screen(xvfb_display: str, happy_faces: np.ndarray, tmp_path: Path):
    """A 1920x1080 gallery shown full screen on the Xvfb display (feh, the Debian image viewer)."""
    import shutil

    if shutil.which("feh") is None:
        pytest.skip("feh is not installed (.ci/run installs the Debian package feh)")
    gallery = render_gallery(participants_from_faces(happy_faces, 12, seed=9, camera_off=2), chat_panel=True)
    path = tmp_path / "gallery.png"
    cv2.imwrite(str(path), gallery.image[:, :, ::-1])
    viewer = subprocess.Popen(["feh", "--fullscreen", "--borderless", "--hide-pointer", str(path)],
                              env={**os.environ, "DISPLAY": xvfb_display}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    yield gallery
    viewer.terminate()
    viewer.wait(timeout=10)


@pytest.mark.e2e
def test_real_screen_capture(gallery_on_screen, xvfb_display: str, detector_env: dict, tmp_path: Path) -> None:
    database = tmp_path / "class.db"
    env = {**detector_env, "DISPLAY": xvfb_display}
    result = agent("start", "--duration", "5", "--db", str(database), env=env)
    assert result.returncode == 0, result.stderr
    assert "finished" in result.stdout
    frames = rows(database, "SELECT tiles, faces, dropped FROM frames")
    times = [at for (at,) in rows(database, "SELECT time FROM frames ORDER BY time")]
    # Frames of the first 5 seconds only, at 1 per second: each tick is either a frame or counted as dropped.
    assert len(frames) >= 2 and times[-1] < 5 and times == sorted(set(times))
    assert 4 <= len(frames) + sum(dropped for _, _, dropped in frames) <= 6
    # Not a terminal: no live view drawn, one line per minute instead.
    assert f"minute 1: {len(frames)} frames observed" in result.stdout and "class mood" not in result.stderr
    # 10 cameras on, 2 off: the participants are the faces (a camera-off tile never showed one).
    assert all(9 <= faces == tiles <= 10 for tiles, faces, _ in frames)
    assert rows(database, "SELECT source FROM sessions") == [("screen:1",)]
    assert rows(database, "SELECT COUNT(*) FROM participants")[0][0] == frames[-1][1]


@pytest.mark.e2e
def test_ctrl_c_between_frames_of_a_slow_live_session_stops_it_at_once(gallery_on_screen, xvfb_display: str,
                                                                       detector_env: dict, tmp_path: Path) -> None:
    """A frame every 100 s of the screen: Ctrl-C while the agent waits for the next one ends the wait, so the
    session closes then (not 100 s later) with the one frame it has, and no frame is taken after the stop."""
    database = tmp_path / "class.db"
    process = spawn("start", "--fps", "0.01", "--db", str(database), "--quiet",
                    env={**detector_env, "DISPLAY": xvfb_display})
    try:
        wait_for_frames(database, 1, process)
        time.sleep(1.0)  # into the wait for the next frame
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert "stopped by the user (Ctrl-C)" in stdout and "Traceback" not in stderr
    assert rows(database, "SELECT status, message FROM sessions") == [("finished", "stopped by the user (Ctrl-C)")]
    assert rows(database, "SELECT COUNT(*) FROM frames") == [(1,)]


@pytest.mark.e2e
def test_the_live_view_in_a_real_80x24_terminal(xvfb_display: str, detector_env: dict, tmp_path: Path) -> None:
    """The real command in tmux at 80x24, watching a real Zoom screenshot on the screen: the screen read back shows
    the whole view, no line past the edge, and every participant."""
    import shutil

    from tests.test_finder import GALLERIES

    if shutil.which("tmux") is None or shutil.which("feh") is None:
        pytest.skip("tmux or feh is not installed (.ci/run installs the Debian packages tmux and feh)")
    call = GALLERIES / "gommy15_zoom4.PNG"
    if not call.is_file():
        pytest.skip(f"the real call screenshots are not at {GALLERIES}")
    database = tmp_path / "class.db"
    viewer = show(call, xvfb_display)
    session = f"fer-agent-test-{os.getpid()}"
    environment = " ".join(f"{key}={value}" for key, value in (
        ("DISPLAY", xvfb_display), ("FER_AGENT_DETECTOR_MODEL", detector_env["FER_AGENT_DETECTOR_MODEL"]),
        ("FER_AGENT_DISCOVERY_MODEL", detector_env["FER_AGENT_DISCOVERY_MODEL"])))
    command = f"env {environment} {sys.executable} -m fer_agent start --duration 30 --db {database}; sleep 30"
    try:
        time.sleep(1.5)
        subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", command], check=True,
                       cwd=ROOT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if rows(database, "SELECT COUNT(*) FROM frames")[0][0] >= 4:
                    break
            except sqlite3.Error:
                pass
            time.sleep(0.5)
        time.sleep(1.5)
        screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True,
                                check=True).stdout
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        viewer.terminate()
        viewer.wait(timeout=10)
    lines = screen.rstrip("\n").split("\n")
    assert len(lines) <= 24 and max(len(line) for line in lines) <= 80, screen
    assert "fer-agent  session 1" in screen and "sees the class: 18 faces" in screen, screen
    assert "attention" in screen and "facing" in screen and "participants (pseudonymous)" in screen, screen
    assert len(set(re.findall(r"\bP(\d+) ", screen))) == 18, screen


@pytest.mark.e2e
def test_kill_9_then_restart_on_the_same_database(happy_faces: np.ndarray, detector_env: dict,
                                                  tmp_path: Path) -> None:
    video = tmp_path / "long.mp4"
    write_gallery_video(video, happy_faces, seconds=40, fps=1, count=4, size=(960, 540))
    database = tmp_path / "class.db"
    process = spawn("start", "--source", str(video), "--fps", "1", "--db", str(database), "--quiet", env=detector_env)
    wait_for_frames(database, 3, process)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    before = rows(database, "SELECT id, time, tiles, faces FROM frames ORDER BY id")
    observations = rows(database, "SELECT * FROM observations ORDER BY id")
    assert len(before) >= 3 and len(observations) == sum(tiles for _, _, tiles, _ in before)
    result = agent("start", "--source", str(video), "--fps", "1", "--duration", "3", "--db", str(database),
                   "--quiet", env=detector_env)
    assert result.returncode == 0, result.stderr
    assert rows(database, "SELECT id, time, tiles, faces FROM frames WHERE session_id = 1 ORDER BY id") == before
    assert rows(database, "SELECT * FROM observations WHERE session_id = 1 ORDER BY id") == observations
    assert rows(database, "SELECT id, status FROM sessions ORDER BY id") == [(1, "interrupted"), (2, "finished")]
    assert rows(database, "SELECT COUNT(*) FROM frames WHERE session_id = 2") == [(3,)]


@pytest.mark.parametrize("stop, reason", [(signal.SIGINT, "stopped by the user (Ctrl-C)"),
                                          (signal.SIGTERM, "stopped by SIGTERM"),
                                          (signal.SIGHUP, "stopped by SIGHUP (the terminal was closed)")])
@pytest.mark.e2e
def test_stop_signals_close_the_session(happy_faces: np.ndarray, detector_env: dict, tmp_path: Path,
                                        stop: int, reason: str) -> None:
    """A real process stopped mid-session by Ctrl-C (SIGINT), SIGTERM (logging out, kill, a service manager) or SIGHUP
    (the terminal window closed): the session is closed with its reason, ended at its last frame, every written
    frame kept, and a report can be made at once."""
    video = tmp_path / "long.mp4"
    write_gallery_video(video, happy_faces, seconds=40, fps=1, count=4, size=(960, 540))
    database = tmp_path / "class.db"
    process = spawn("start", "--source", str(video), "--fps", "1", "--db", str(database), "--quiet", env=detector_env)
    wait_for_frames(database, 3, process)
    process.send_signal(stop)
    try:
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert reason in stdout and f"data: {database}" in stdout
    assert "Traceback" not in stderr
    (status, message, ended), = rows(database, "SELECT status, message, ended_at FROM sessions")
    assert status == "finished" and reason in message
    frames = rows(database, "SELECT time, captured_at, faces FROM frames ORDER BY time")
    assert len(frames) >= 3 and ended == frames[-1][1]
    assert [time for time, _, _ in frames] == [float(second) for second in range(len(frames))]
    assert rows(database, "SELECT COUNT(DISTINCT frame_id) FROM observations") == [(len(frames),)]
    report = tmp_path / "report.html"
    result = agent("report", "--db", str(database), "-o", str(report), env=detector_env)
    assert result.returncode == 0, result.stderr
    assert report.is_file()


@pytest.mark.e2e
def test_no_faces_for_minutes_is_an_event(happy_faces: np.ndarray, detector_env: dict, tmp_path: Path) -> None:
    """12 s of an empty screen, then a gallery of 4: no_faces after the 6 s asked for, faces_back when they come."""
    gallery = cv2.cvtColor(render_gallery(participants_from_faces(happy_faces, 4, seed=1)).image, cv2.COLOR_RGB2BGR)
    height, width = gallery.shape[:2]
    video = tmp_path / "empty.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 1, (width, height))
    for _ in range(12):
        writer.write(np.full((height, width, 3), 40, np.uint8))
    for _ in range(3):
        writer.write(gallery)
    writer.release()
    database = tmp_path / "class.db"
    result = agent("start", "--source", str(video), "--db", str(database), "--quiet", "--no-face-minutes", "0.1",
                   env=detector_env)
    assert result.returncode == 0, result.stderr
    assert rows(database, "SELECT kind, time, detail FROM events") == [("no_faces", 6.0, "no face found for 6 s"),
                                                                       ("faces_back", 12.0, "4 faces")]


@pytest.mark.e2e
def test_monitor_that_disappears(happy_faces: np.ndarray, detector_env: dict, tmp_path: Path) -> None:
    """The display goes away mid-session: one clear error, exit 1, the frames before it kept."""
    import shutil

    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (.ci/run installs the Debian package xvfb)")
    server, display = start_xvfb("1280x720x24")
    try:
        database = tmp_path / "class.db"
        process = spawn("start", "--db", str(database), "--quiet", env={**detector_env, "DISPLAY": display})
        wait_for_frames(database, 2, process)
        server.kill()
        server.wait(timeout=10)
        _, stderr = process.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
    assert process.returncode == 1
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "screen capture failed" in lines[0] and "frames before it are kept" in lines[0]
    assert rows(database, "SELECT status FROM sessions") == [("failed",)]
    assert rows(database, "SELECT COUNT(*) >= 2 FROM frames") == [(1,)]
    assert rows(database, "SELECT kind FROM events") == [("capture_error",)]


def expect_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])


@pytest.mark.e2e
def test_error_cases(detector_env: dict, happy_faces: np.ndarray, tmp_path: Path) -> None:
    database = str(tmp_path / "class.db")
    expect_error(agent("start", "--db", database, env=detector_env), "no display to capture", "--source")
    broken_video = tmp_path / "broken.mp4"
    broken_video.write_bytes(b"\x00\x01 not a video" * 50)
    expect_error(agent("start", "--source", str(broken_video), "--db", database, env=detector_env),
                 "cannot read this video")
    broken_image = tmp_path / "shot.png"
    broken_image.write_bytes(b"not a png")
    expect_error(agent("analyze", str(broken_image), env=detector_env), "cannot read this image")
    video = tmp_path / "lecture.mp4"
    write_gallery_video(video, happy_faces, seconds=1, count=4, size=(640, 360))
    broken_model = tmp_path / "emotion.onnx"
    broken_model.write_bytes(b"not onnx")
    expect_error(agent("start", "--source", str(video), "--db", database, "--model", str(broken_model),
                       env=detector_env), "cannot load ONNX model")
    expect_error(agent("start", "--source", str(video), "--db", database, "--model", str(tmp_path / "none.onnx"),
                       env=detector_env), "model file not found")
    broken_detector = tmp_path / "detector.tflite"
    broken_detector.write_bytes(b"not tflite")
    expect_error(agent("start", "--source", str(video), "--db", database,
                       env={**detector_env, "FER_AGENT_DETECTOR_MODEL": str(broken_detector)}),
                 "cannot load face-detector model")
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    expect_error(agent("start", "--source", str(video), "--db", str(not_a_folder / "class.db"), env=detector_env),
                 "cannot create its folder", "--db")
    expect_error(agent("start", "--source", str(video), "--db", str(broken_image), env=detector_env),
                 "not a fer-agent database")


@pytest.mark.e2e
def test_database_in_use_by_another_agent(happy_faces: np.ndarray, detector_env: dict, xvfb_display: str,
                                          tmp_path: Path) -> None:
    video = tmp_path / "lecture.mp4"
    write_gallery_video(video, happy_faces, seconds=2, fps=1, count=4, size=(640, 360))
    database = tmp_path / "class.db"
    # The first agent watches a (real, virtual) screen until it is stopped.
    first = spawn("start", "--db", str(database), "--quiet", env={**detector_env, "DISPLAY": xvfb_display})
    try:
        wait_for_frames(database, 1, first)
        expect_error(agent("start", "--source", str(video), "--db", str(database), env=detector_env),
                     "is in use by another fer-agent", f"process {first.pid}")
    finally:
        first.kill()
        first.wait(timeout=30)


def show(path: Path, display: str) -> subprocess.Popen:
    """A real window: the Debian image viewer feh, full screen on the Xvfb display, over whatever is there."""
    return subprocess.Popen(["feh", "--fullscreen", "--borderless", "--hide-pointer", str(path)],
                            env={**os.environ, "DISPLAY": display}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


@pytest.mark.e2e
def test_a_covered_call_window_is_a_gap_not_an_attention_drop(xvfb_display: str, detector_env: dict,
                                                              tmp_path: Path) -> None:
    """A real Zoom screenshot on the screen; another window covers it for a while, then closes. The agent records
    the view lost and back, the covered time as not observed (and the report shows it as a gap with its cause), no
    phantom participant, and the same participants after the return."""
    import shutil

    from tests.test_finder import GALLERIES

    if shutil.which("feh") is None:
        pytest.skip("feh is not installed (.ci/run installs the Debian package feh)")
    call = GALLERIES / "gommy15_zoom4.PNG"
    if not call.is_file():
        pytest.skip(f"the real call screenshots are not at {GALLERIES}")
    slide = tmp_path / "slide.png"
    picture = np.full((1080, 1920, 3), 250, np.uint8)
    cv2.putText(picture, "Week 5: gradient descent", (200, 400), cv2.FONT_HERSHEY_SIMPLEX, 3, (30, 30, 30), 6)
    cv2.imwrite(str(slide), picture)
    database = tmp_path / "class.db"
    env = {**detector_env, "DISPLAY": xvfb_display}
    viewer = show(call, xvfb_display)
    cover = None
    try:
        time.sleep(1.5)
        process = spawn("start", "--duration", "30", "--fps", "2", "--quiet", "--db", str(database), env=env)
        wait_for_frames(database, 10, process)
        cover = show(slide, xvfb_display)
        time.sleep(6)
        cover.terminate()
        cover.wait(timeout=10)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        for window in (viewer, cover):
            if window is not None and window.poll() is None:
                window.terminate()
                window.wait(timeout=10)
    assert process.returncode == 0, stderr
    events = [kind for kind, in rows(database, "SELECT kind FROM events ORDER BY time, id")]
    assert events == ["view_lost", "view_back"], events
    lost, back = (value for value, in rows(database, "SELECT time FROM events ORDER BY time, id"))
    observed = rows(database, "SELECT time, observed, faces FROM frames ORDER BY time")
    assert all(flag == 0 for t, flag, _ in observed if lost <= t < back)
    assert sum(flag == 0 for _, flag, _ in observed) >= 6
    assert rows(database, "SELECT COUNT(*) FROM observations o JOIN frames f ON o.frame_id = f.id "
                          "WHERE f.observed = 0") == [(0,)]
    before = {p for p, in rows(database, f"SELECT DISTINCT participant_id FROM observations WHERE time < {lost}")}
    after = {p for p, in rows(database, f"SELECT DISTINCT participant_id FROM observations WHERE time >= {back}")}
    faces = max(count for t, flag, count in observed if t < lost)
    assert 16 <= faces <= 19 and len(before) == faces
    assert after == before
    assert rows(database, "SELECT COUNT(*) FROM participants") == [(faces,)]
    report = tmp_path / "report.html"
    result = agent("report", "--db", str(database), "-o", str(report), env=env)
    assert result.returncode == 0, result.stderr
    html = report.read_text()
    assert "Not observed" in html and "vanished at once" in html


@pytest.mark.e2e
def test_check_on_the_real_screen(xvfb_display: str, detector_env: dict, tmp_path: Path) -> None:
    import shutil

    from tests.test_finder import GALLERIES

    if shutil.which("feh") is None:
        pytest.skip("feh is not installed (.ci/run installs the Debian package feh)")
    call = GALLERIES / "gommy15_zoom4.PNG"
    if not call.is_file():
        pytest.skip(f"the real call screenshots are not at {GALLERIES}")
    viewer = show(call, xvfb_display)
    try:
        time.sleep(1.5)
        saved = tmp_path / "check.png"
        result = agent("check", "--save", str(saved), env={**detector_env, "DISPLAY": xvfb_display,
                                                          "COLUMNS": "200"})
    finally:
        viewer.terminate()
        viewer.wait(timeout=10)
    assert result.returncode == 0, result.stderr
    found = int(re.search(r"screen:1: 1920x1080 pixels, (\d+) faces found", result.stdout).group(1))
    assert 17 <= found <= 19
    assert f"P{found}" in result.stdout and "it shows the participants' faces" in result.stdout
    assert cv2.imread(str(saved)).shape == (1080, 1920, 3)
