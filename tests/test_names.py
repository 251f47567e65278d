"""Names read off the tiles (``--names``): the text rules, the real OCR engine (PP-OCRv4 on onnxruntime) on real call
screenshots, identity by name through a reordered gallery, and privacy in the database file's bytes: no name without
``--names``, none left after ``purge``, none in a ``--pseudonymous`` report. The names themselves are not in this file:
the truth holds their digests (``tests/names_truth.json``), and the privacy tests take the names a session recorded."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_agent.naming import name_key, normalise, same_name
from tests.galleries import digest, load_names
from tests.test_agent import agent, rows
from tests.test_finder import GALLERIES

CALL = "gregoryfdel_zoom_call.png"  # a 3x2 Zoom gallery with a name label on every tile
# Its tiles (x0, x1) x (y0, y1), between the dark gaps.
COLUMNS = ((6, 630), (633, 1269), (1272, 1896))
ROWS = ((114, 477), (479, 831))


def test_normalise_takes_off_badges_and_icons_and_marks_a_cut_name() -> None:
    assert normalise("John Bateman (Me)") == "John Bateman"
    assert normalise("Ana Lima (Guest)") == "Ana Lima" and normalise("Bo Chen (co-host)") == "Bo Chen"
    assert normalise("  Donna Norkeliun...") == "Donna Norkeliun…" == normalise("Donna Norkeliun …")
    assert normalise("\U0001F3A4 Yamila Gorrin") == "Yamila Gorrin"
    assert normalise("(초급) 박명숙") == "(초급) 박명숙"
    # Names that end like a badge are names.
    for name in ("Jaime", "Jerome", "Graeme", "Kayou", "Anne Hume", "Ghost", "Ana Host"):
        assert normalise(name) == name
    assert normalise("X") == "" and normalise("...") == "" and normalise("42") == ""


def test_variants_of_one_name_are_the_same_name() -> None:
    assert name_key("José  Manuel") == name_key("jose manuel") == name_key("JoseManuel")
    assert same_name("Donna Norkeliun...", "Donna Norkeliunas")
    assert same_name("LeaKissner", "Lea Kissner (Me)")
    assert not same_name("Anna", "Annabelle Lee") and not same_name("Alex", "Alexandra Jones")
    assert not same_name("Lea Kissner", "Eric Yuan") and not same_name("Jo…", "Jonas")


@pytest.fixture(scope="module")
def call_picture() -> np.ndarray:
    path = GALLERIES / CALL
    if not path.is_file():
        pytest.skip(f"the real call screenshots are not at {GALLERIES}")
    return cv2.imread(str(path))


@pytest.mark.e2e
def test_analyze_names_json_reads_every_name_of_a_real_call(call_picture: np.ndarray, detector_env: dict) -> None:
    """Each face of the real Zoom screenshot gets the name on its tile, compared with the truth's digests by place."""
    result = agent("analyze", str(GALLERIES / CALL), "--names", "--json", env=detector_env)
    assert result.returncode == 0, result.stderr
    faces = json.loads(result.stdout)["faces"]
    truth = load_names()[CALL]
    assert len(faces) == len(truth) == 6
    for expected in truth:
        cx, cy, _w = expected["face"]
        face = next(f for f in faces if f["box"][0] <= cx <= f["box"][0] + f["box"][2]
                    and f["box"][1] <= cy <= f["box"][1] + f["box"][3])
        assert face["name"] is not None and digest(face["name"]) == expected["name"], face
    plain = agent("analyze", str(GALLERIES / CALL), "--json", env=detector_env)
    assert all("name" not in face for face in json.loads(plain.stdout)["faces"])


def reordered(picture: np.ndarray, order: list[int]) -> np.ndarray:
    """The gallery with its six tiles moved: slot ``s`` shows the tile ``order[s]`` had (as a call app reorders)."""
    slots = [(x0, x1, y0, y1) for y0, y1 in ROWS for x0, x1 in COLUMNS]
    result = picture.copy()
    for slot, tile in enumerate(order):
        x0, x1, y0, y1 = slots[slot]
        a0, a1, b0, b1 = slots[tile]
        result[y0:y1, x0:x1] = cv2.resize(picture[b0:b1, a0:a1], (x1 - x0, y1 - y0))
    return result


def file_bytes(database: Path) -> bytes:
    return b"".join(path.read_bytes() for path in (database, database.with_name(database.name + "-wal"))
                    if path.exists())


@pytest.mark.e2e
def test_names_keep_identity_through_reorders_and_stay_only_in_the_database(
        call_picture: np.ndarray, detector_env: dict, tmp_path: Path) -> None:
    """A session over the real gallery, reordered, then another page of the call (another real screenshot), then the
    first page back reordered again (its six people wear the same virtual background, so their looks are alike):
    with --names each person keeps one participant, named, and the report names them; without --names the database
    file holds none of the names; --pseudonymous leaves them out of the report, and the export never has them; purge
    takes them out of the file; nothing printed names anyone."""
    other = GALLERIES / "josehermosillaa_grupo.jpg"
    orders: list[list[int] | None] = [[0, 1, 2, 3, 4, 5], [4, 2, 0, 5, 3, 1], None, [1, 5, 3, 0, 2, 4]]
    frames = tmp_path / "call"
    frames.mkdir()
    for number, order in enumerate(orders):
        page = cv2.imread(str(other)) if order is None else reordered(call_picture, order)
        cv2.imwrite(str(frames / f"{number}.png"), page)
    named, plain = tmp_path / "named.db", tmp_path / "plain.db"
    printed = ""
    for database, extra in ((named, ["--names"]), (plain, [])):
        result = agent("start", "--source", str(frames), "--db", str(database), *extra, env=detector_env)
        assert result.returncode == 0, result.stderr
        printed += result.stdout + result.stderr
    # The first page's six people, each with their name, and the other page's people besides.
    first = dict(rows(named, "SELECT participant_id, name FROM observations JOIN participants "
                             "ON participants.id = participant_id WHERE frame_id = 1"))
    assert {digest(name) for name in first.values()} == {face["name"] for face in load_names()[CALL]}
    names = dict(rows(named, "SELECT id, name FROM participants WHERE name IS NOT NULL"))
    page_two = {row[0] for row in rows(named, "SELECT participant_id FROM observations WHERE frame_id = 3")}
    assert len(page_two) >= 9 and not page_two & set(first)
    # Each tile's person is one participant in every frame of the first page, wherever the tile went.
    slots = [(x0, y0) for y0, _y1 in ROWS for x0, _x1 in COLUMNS]
    holder: dict[int, int] = {}
    for frame_id, order in zip([row[0] for row in rows(named, "SELECT id FROM frames ORDER BY id")], orders):
        if order is None:
            continue
        for participant, x, y, w, h in rows(named, "SELECT participant_id, x, y, w, h FROM observations "
                                                   f"WHERE frame_id = {frame_id} AND face = 1"):
            slot = max(i for i, (x0, y0) in enumerate(slots) if x0 <= x + w / 2 and y0 <= y + h / 2)
            assert holder.setdefault(order[slot], participant) == participant, (frame_id, slot)
    assert len(holder) == 6 and set(holder.values()) == set(first)
    # Names only where asked for, and only in the database: not in the terminal's event and per-minute lines.
    assert "minute 1:" in printed, printed
    for name in names.values():
        assert name.encode() not in file_bytes(plain)
        assert not re.search(rf"\b{re.escape(name)}\b", printed), name
    assert rows(plain, "SELECT COUNT(*) FROM participants WHERE name IS NOT NULL") == [(0,)]
    report, hidden = tmp_path / "named.html", tmp_path / "hidden.html"
    assert agent("report", "--db", str(named), "-o", str(report), env=detector_env).returncode == 0
    assert agent("report", "--db", str(named), "-o", str(hidden), "--pseudonymous", env=detector_env).returncode == 0
    assert all(name in report.read_text() for name in names.values())
    assert not any(name in hidden.read_text() for name in names.values())
    exported = tmp_path / "named.json"
    assert agent("export", "--db", str(named), "-o", str(exported), env=detector_env).returncode == 0
    assert not any(name in exported.read_text() for name in names.values())
    assert agent("purge", "1", "--db", str(named), "--yes", env=detector_env).returncode == 0
    with sqlite3.connect(named) as conn:
        assert conn.execute("SELECT COUNT(*) FROM participants").fetchone() == (0,)
    for name in names.values():
        assert name.encode() not in file_bytes(named)


@pytest.mark.e2e
def test_a_live_session_reads_the_names_beside_the_frames(call_picture: np.ndarray, xvfb_display: str,
                                                        detector_env: dict, tmp_path: Path) -> None:
    """The real call shown on a real (Xvfb) screen, watched live with --names: the names are read on a thread of
    their own and join the participants a few frames in; every participant gets the name on their tile."""
    import os
    import shutil
    import subprocess
    import time

    if shutil.which("feh") is None:
        pytest.skip("feh is not installed (.ci/run installs the Debian package feh)")
    viewer = subprocess.Popen(["feh", "--fullscreen", "--borderless", "--hide-pointer", str(GALLERIES / CALL)],
                              env={**os.environ, "DISPLAY": xvfb_display}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    database = tmp_path / "live.db"
    try:
        time.sleep(1.5)
        result = agent("start", "--names", "--duration", "12", "--db", str(database),
                       env={**detector_env, "DISPLAY": xvfb_display})
    finally:
        viewer.terminate()
        viewer.wait(timeout=10)
    assert result.returncode == 0, result.stderr
    names = [name for (name,) in rows(database, "SELECT name FROM participants")]
    assert sorted(digest(name) for name in names) == sorted(face["name"] for face in load_names()[CALL])
