"""``--window TEXT`` and ``fer-agent windows`` on a real X display (Xvfb) with a real window manager (openbox) and
real windows (feh showing a real Zoom screenshot): the window is found by its title, followed as it moves and
resizes during a session, and the time it is minimised or covered is recorded as not observed, with the reason."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import start_xvfb
from tests.test_agent import agent, rows, spawn, wait_for_frames
from tests.test_finder import GALLERIES

CALL = GALLERIES / "gommy15_real_test.png"  # a 2x2 Zoom gallery, 1920x1080


@pytest.fixture(scope="module")
def desktop():
    """An X display with a window manager (the windows' titles, places and states come from it)."""
    if shutil.which("Xvfb") is None or shutil.which("openbox") is None or shutil.which("feh") is None:
        pytest.skip("Xvfb, openbox or feh is not installed (.ci/run installs the Debian packages)")
    if not CALL.is_file():
        pytest.skip(f"the real call screenshots are not at {GALLERIES}")
    server, display = start_xvfb("1600x900x24")
    manager = subprocess.Popen(["openbox"], env={**os.environ, "DISPLAY": display}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    yield display
    manager.terminate()
    manager.wait(timeout=10)
    server.terminate()
    server.wait(timeout=10)


def open_window(display: str, title: str, geometry: str, path: Path = CALL) -> subprocess.Popen:
    """A real window: feh showing ``path`` scaled into ``geometry`` (WxH+X+Y), titled ``title``."""
    viewer = subprocess.Popen(["feh", "--title", title, "--geometry", geometry, "--scale-down", str(path)],
                              env={**os.environ, "DISPLAY": display}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    return viewer


def close(*viewers: subprocess.Popen) -> None:
    for viewer in viewers:
        viewer.terminate()
        viewer.wait(timeout=10)
    time.sleep(0.5)


def window_manager(display: str, script: str) -> None:
    """Moves, resizes, minimises: ``script`` run with ``w``, the window titled "Zoom Meeting", in a process of its
    own (PyWinCtl keeps the display it connected to when first imported)."""
    code = f"import time, pywinctl\nw = pywinctl.getWindowsWithTitle('Zoom Meeting')[0]\n{script}\n"
    subprocess.run([sys.executable, "-c", code], env={**os.environ, "DISPLAY": display}, check=True, timeout=120)


@pytest.mark.e2e
def test_windows_lists_the_windows_with_their_places(desktop: str, detector_env: dict) -> None:
    viewer = open_window(desktop, "Zoom Meeting", "800x450+120+60")
    try:
        result = agent("windows", env={**detector_env, "DISPLAY": desktop})
    finally:
        close(viewer)
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if "Zoom Meeting" in line)
    assert "feh" in line and "800x450" in line and "shown" in line


@pytest.mark.e2e
def test_window_text_matching_none_or_several_lists_the_windows(desktop: str, detector_env: dict,
                                                               tmp_path: Path) -> None:
    env = {**detector_env, "DISPLAY": desktop}
    database = tmp_path / "class.db"
    viewers = [open_window(desktop, "Zoom Meeting", "640x360+0+0"), open_window(desktop, "Zoom Chat", "300x300+700+0"),
               # The agent's own terminal shows the command line in its title: never the call's window.
               open_window(desktop, "fer-agent start --window meeting", "300x200+700+400")]
    try:
        several = agent("start", "--window", "zoom", "--db", str(database), env=env)
        none = agent("check", "--window", "webex", env=env)
        one = agent("check", "--window", "MEETING", env=env)
    finally:
        close(*viewers)
    assert several.returncode == 1
    assert several.stderr.strip().splitlines() == [
        "error: --window 'zoom': 2 windows match ('Zoom Meeting'; 'Zoom Chat'); give more of the title"]
    assert not database.exists()
    assert none.returncode == 1 and "no window's title contains it" in none.stderr
    assert all(title in none.stderr for title in ("'Zoom Meeting'", "'Zoom Chat'", "fer-agent windows"))
    assert one.returncode == 0, one.stderr
    assert "window 'MEETING': 640x360 pixels, 4 faces found" in one.stdout


@pytest.mark.e2e
def test_check_on_a_minimised_window_says_so(desktop: str, detector_env: dict, tmp_path: Path) -> None:
    viewer = open_window(desktop, "Zoom Meeting", "800x450+120+60")
    try:
        window_manager(desktop, "w.minimize(); time.sleep(1)")
        result = agent("check", "--window", "zoom", "--save", str(tmp_path / "check.png"),
                       env={**detector_env, "DISPLAY": desktop})
    finally:
        close(viewer)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: the call window is minimised: nothing of the call can be seen"
    assert not (tmp_path / "check.png").exists()


@pytest.mark.e2e
def test_a_session_follows_the_window_as_it_moves_resizes_and_is_minimised_and_covered(
        desktop: str, detector_env: dict, tmp_path: Path) -> None:
    """The call window moves, is resized, minimised, restored, covered by another window and uncovered, then closed
    and opened again (as a call app may), while a session watches it: every frame is taken from the window where it
    is (the four faces found in each observed frame, within the window's size once it is smaller), the minimised,
    covered and closed times are not observed, each with a view_lost event that says why (naming no window's title),
    and the four participants stay the same four throughout. A minimised window over the call does not cover it."""
    env = {**detector_env, "DISPLAY": desktop}
    database = tmp_path / "class.db"
    viewer = open_window(desktop, "Zoom Meeting", "960x540+40+40")
    process = spawn("start", "--window", "zoom meeting", "--duration", "50", "--db", str(database), "--plain",
                    env=env)
    others: list[subprocess.Popen] = []
    try:
        wait_for_frames(database, 3, process)
        window_manager(desktop, "w.moveTo(400, 250); time.sleep(4); w.resizeTo(640, 360); time.sleep(4);"
                                "w.minimize(); time.sleep(4); w.restore(); time.sleep(4)")
        others.append(open_window(desktop, "Chat with Jane Doe", "1000x600+350+200"))
        time.sleep(4)
        subprocess.run([sys.executable, "-c", "import pywinctl\n"
                        "pywinctl.getWindowsWithTitle('Chat with Jane Doe')[0].minimize()"],
                       env={**os.environ, "DISPLAY": desktop}, check=True, timeout=60)
        time.sleep(3)
        close(viewer)
        time.sleep(3)
        viewer = open_window(desktop, "Zoom Meeting", "640x360+400+250")
        out, err = process.communicate(timeout=120)
    finally:
        close(*others)
        if process.poll() is None:
            process.kill()
        close(viewer)
    assert process.returncode == 0, err
    frames = rows(database, "SELECT id, faces, observed FROM frames ORDER BY id")
    events = rows(database, "SELECT kind, detail FROM events WHERE kind LIKE 'view_%' ORDER BY id")
    assert [kind for kind, _detail in events] == ["view_lost", "view_back"] * 3, events
    assert events[0][1] == "the call window is minimised"
    assert events[2][1].startswith("the call window is covered by another window (feh, ")
    assert events[4][1] == "the call window was closed"
    assert all(faces == 4 for _id, faces, observed in frames if observed)
    assert all(faces == 0 for _id, faces, observed in frames if not observed)
    lost = [observed for _id, _faces, observed in frames].count(0)
    assert lost >= 4, frames
    assert rows(database, "SELECT COUNT(*) FROM participants") == [(4,)]
    # The frames come from the window where it is: before the resize some face lies right of x=640; after it, every
    # face lies inside the 640x360 window.
    rights = rows(database, "SELECT frame_id, MAX(x + w), MAX(y + h) FROM observations WHERE face = 1 "
                            "GROUP BY frame_id ORDER BY frame_id")
    assert rights[0][1] > 640
    assert rights[-1][1] <= 640 and rights[-1][2] <= 360
    assert "view lost: the call window is minimised" in out
    # No window's title is kept: the source is named by the text given.
    assert rows(database, "SELECT DISTINCT source FROM frames") == [("window 'zoom meeting'",)]
    assert not any(title in line for line in out.splitlines() for title in ("Jane Doe", "Zoom Meeting"))


def test_window_goes_with_the_screen_only_and_not_with_a_region(tmp_path: Path) -> None:
    """In process: --window with another source, or with --region, is one clear line before anything is opened."""
    from click.testing import CliRunner

    from fer_agent.cli import main

    runner = CliRunner()
    database = tmp_path / "class.db"
    for args, line in (
            (["start", "--window", "zoom", "--source", "lecture.mp4", "--db", str(database)],
             "error: --window applies to the screen, on whichever monitor the window is: leave out --source"),
            (["check", "--window", "zoom", "--region", "0,0,640,360"],
             "error: --window and --region: give one of them (--window follows the window wherever it is)")):
        result = runner.invoke(main, args)
        assert result.exit_code == 1, result.output
        assert result.stderr.strip() == line
    assert not database.exists()
