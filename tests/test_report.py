"""The post-class report, the exports, the session list and purge, on session databases written through the store's
own API (a simulated class with known episodes), with the report opened in a real headless Chromium."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from fer_agent.clock import clock
from fer_agent.errors import StoreError
from fer_agent.labels import EMOTIONS
from fer_agent.reports.html import render_report
from fer_agent.reports.metrics import (
    UNKNOWN_CAUSE,
    Gap,
    default_interval,
    key_moments,
    not_observed,
    observed_share,
    plural,
    timeline,
)
from fer_agent.store.reader import load_session, open_database, select_sessions
from fer_agent.store.writer import MIGRATIONS, Store
from tests.synthetic_session import Episode, record_class

HOSTILE = "<script>alert(1)</script>"
EPISODES = (Episode("negative", 240, 330), Episode("away", 540, 630))
PARTICIPANTS = 16
CAMERA_OFF = 2
CAUSE = "12 of 14 faces vanished at once: the call window may be covered, minimised or its layout changed"
LOST = ((300.0, 390.0, CAUSE),)
# Heads turn away just as the view comes back, and negative expressions rise later on.
LOST_EPISODES = (Episode("away", 390, 480), Episode("negative", 540, 630))
LOST_PARTICIPANTS = 20


def fer_agent(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fer_agent", *args], capture_output=True, text=True, timeout=300,
                          input=input)


@pytest.fixture(scope="module")
def class_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Session 1: a 12-minute class (16 participants, 2 with the camera off, 4 late), named like a script, with
    an event whose detail is markup. Session 2: no frames. Session 3: frames, but every camera off."""
    path = tmp_path_factory.mktemp("report") / "class.db"
    with Store(path) as store:
        session = record_class(store, 12, PARTICIPANTS, camera_off=CAMERA_OFF, late=4, episodes=EPISODES,
                               source=HOSTILE, finish=False)
        store.event(session, 300.0, "gallery_changed", '<img src=x onerror="alert(2)"> 16 -> 15 tiles')
        store.finish_session(session, "interrupted", "<b>power</b> cut")
        empty = store.start_session("empty.mp4", 1.0, "1.0.0", 0.8421, "face_detection_short_range.tflite")
        store.finish_session(empty, "finished")
        record_class(store, 2, 4, camera_off=4, source="cameras-off.mp4")
    return path


@pytest.fixture(scope="module")
def lost_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12-minute class of 20 participants (2 with the camera off), all there throughout, whose view was lost from
    5:00 to 6:30, with the episodes of LOST_EPISODES."""
    path = tmp_path_factory.mktemp("lost") / "lost.db"
    with Store(path) as store:
        record_class(store, 12, LOST_PARTICIPANTS, camera_off=CAMERA_OFF, episodes=LOST_EPISODES, lost=LOST)
    return path


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium, driven by Playwright; skipped where chromium is not installed."""
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("chromium is not installed (.ci/run installs the Debian package chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser
        browser.close()


def render(class_db: Path, session: int, folder: Path) -> Path:
    output = folder / f"session-{session}.html"
    result = fer_agent("report", str(session), "--db", str(class_db), "-o", str(output))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"report of session {session}: {output} (")
    participants, moments = re.search(r"(\d+) participants?, (\d+) key moments?\)", result.stdout).groups()
    assert result.stdout.count(" 1 key moments") == 0 and (moments != "1" or "1 key moment)" in result.stdout)
    return output


def open_page(browser, path: Path, width: int = 1200):
    """The page, with every console message, page error, request and dialog it caused."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    seen = {"console": [], "errors": [], "requests": [], "dialogs": []}
    page.on("console", lambda message: seen["console"].append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: seen["errors"].append(str(error)))
    page.on("request", lambda request: seen["requests"].append(request.url))
    page.on("dialog", lambda dialog: (seen["dialogs"].append(dialog.message), dialog.dismiss()))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page, seen


@pytest.mark.e2e
def test_report_in_chromium(class_db: Path, browser, tmp_path: Path) -> None:
    path = render(class_db, 1, tmp_path)
    page, seen = open_page(browser, path)
    assert seen == {"console": [], "errors": [], "requests": [path.as_uri()], "dialogs": []}
    assert page.evaluate("document.scripts.length") == 0
    facts = page.inner_text("#facts")
    for expected in ("12:00", "100% of the time", str(PARTICIPANTS), "720", "1.0.0, 84.2% test accuracy"):
        assert expected in facts
    assert page.locator("#not-observed").count() == 0 and page.locator("svg g[id^=not-observed]").count() == 0
    assert HOSTILE in page.inner_text("header")
    assert "<b>power</b> cut" in page.inner_text("header")
    assert 'onerror="alert(2)"' in page.inner_text("#events")
    charts = page.locator("svg.chart")
    assert charts.count() == 3
    for index in range(3):
        box = charts.nth(index).bounding_box()
        assert box["width"] > 800 and box["height"] > 150
    assert page.locator("svg.chart.mood g[id^=FillBetweenPolyCollection] path").count() == len(EMOTIONS)
    assert page.locator("svg.chart.mood text", has_text="neutral").count() == 1
    for chart, lines in (("attention", 2), ("engagement", 1)):
        # One path per data line, through all 24 half-minute points.
        points = page.eval_on_selector_all(f"svg.chart.{chart} g[id^=line2d] > path",
                                           "paths => paths.map(p => p.getAttribute('d').split('L').length)")
        assert sorted(points)[-lines:] == [24] * lines
    rows = page.locator("#participants-table tbody tr")
    assert rows.count() == PARTICIPANTS
    assert page.locator("#participants-table svg.sparkline").count() == PARTICIPANTS - CAMERA_OFF
    moments = page.locator("#moments-table tbody tr")
    assert moments.count() == 2
    assert "4:00\u20135:30" in moments.nth(0).inner_text()
    assert "Negative expressions rose" in moments.nth(0).inner_text()
    assert "9:00\u201310:30" in moments.nth(1).inner_text() and "Attention dropped" in moments.nth(1).inner_text()
    assert "4.5" in page.inner_text("#engagement .formula")
    screenshot = tmp_path / "report.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 100_000 and page.evaluate("document.body.scrollHeight") > 2500
    page.close()


@pytest.mark.e2e
def test_report_prints_on_a4(class_db: Path, browser, tmp_path: Path) -> None:
    path = render(class_db, 1, tmp_path)
    page, _seen = open_page(browser, path, width=718)
    page.emulate_media(media="print")
    widths = page.evaluate("[...document.querySelectorAll('svg.chart, table')].map(e => e.getBoundingClientRect()"
                           ".right)")
    assert widths and max(widths) <= 718
    pdf = tmp_path / "report.pdf"
    page.pdf(path=str(pdf), format="A4")
    content = pdf.read_bytes()
    assert content.startswith(b"%PDF") and 3 <= len(re.findall(rb"/Type\s*/Page\b", content)) <= 12
    page.close()


@pytest.mark.e2e
@pytest.mark.parametrize(("session", "notice"), [(2, "recorded no frames"), (3, "No face was seen in any of the 120")])
def test_sessions_without_faces_say_so(class_db: Path, browser, tmp_path: Path, session: int, notice: str) -> None:
    path = render(class_db, session, tmp_path)
    page, seen = open_page(browser, path)
    assert seen["console"] == [] and seen["errors"] == [] and seen["requests"] == [path.as_uri()]
    assert notice in page.inner_text("#empty")
    assert page.locator("svg.chart").count() == 0
    page.screenshot(path=str(tmp_path / f"session-{session}.png"))
    page.close()


@pytest.mark.e2e
def test_html_is_self_contained_and_escaped(class_db: Path, tmp_path: Path) -> None:
    html = render(class_db, 1, tmp_path).read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html.lower() and "<link" not in html.lower() and "<img" not in html.lower()
    # The only references are the SVG's own: markers (href="#...") and clip paths (url(#...)).
    assert set(re.findall(r"\bhref=\"(.)", html)) == {"#"} and not re.search(r"<[^>]*\bsrc=", html)
    assert set(re.findall(r"url\((.)", html)) == {"#"}
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;b&gt;power&lt;/b&gt;" in html
    assert "&lt;img src=x onerror=" in html


def test_the_latest_session_is_the_default(class_db: Path, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "fer_agent", "report", "--db", str(class_db)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "fer-agent-session-3.html").is_file()
    assert "report of session 3: fer-agent-session-3.html" in result.stdout


def test_key_moments_are_the_episodes(class_db: Path) -> None:
    with closing(open_database(class_db)) as conn:
        data = load_session(conn, 1)
    line = timeline(data, 30)
    moments = key_moments(line)
    assert [(m.kind, m.start, m.end) for m in moments] == [("negative", 240, 330), ("attention", 540, 630)]
    assert moments[0].before < 0.1 < 0.6 < moments[0].after
    assert moments[1].before > 0.8 > 0.2 > moments[1].after
    assert line.visible.max() <= (PARTICIPANTS - CAMERA_OFF) / PARTICIPANTS + 1e-9


@pytest.mark.e2e
def test_errors_are_one_clear_line(class_db: Path, tmp_path: Path) -> None:
    result = fer_agent("report", "99", "--db", str(class_db))
    assert result.returncode == 1
    assert result.stderr.strip() == ("error: there is no session 99 in this database (it holds sessions 1, 2, 3); "
                                     "`fer-agent sessions` lists them")
    missing = fer_agent("sessions", "--db", str(tmp_path / "none.db"))
    assert missing.returncode == 1 and "no session database there" in missing.stderr
    other = tmp_path / "notes.db"
    sqlite3.connect(other).execute("CREATE TABLE notes (text)").connection.commit()
    assert "not a fer-agent database" in fer_agent("export", "--db", str(other)).stderr
    empty = tmp_path / "empty.db"
    Store(empty).close()
    assert "holds no session yet" in fer_agent("report", "--db", str(empty)).stderr


@pytest.mark.e2e
def test_report_while_the_agent_records(class_db: Path, tmp_path: Path) -> None:
    """The report reads the database read-only, beside a writer that holds the lock."""
    path = tmp_path / "live.db"
    with Store(path) as store:
        record_class(store, 1, 4, finish=False)
        result = fer_agent("report", "--db", str(path), "-o", str(tmp_path / "live.html"))
        assert result.returncode == 0, result.stderr
        assert "<strong>still running</strong>" in (tmp_path / "live.html").read_text(encoding="utf-8")


def test_sessions_lists_every_session(class_db: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "fer_agent", "sessions", "--db", str(class_db)], capture_output=True,
                            text=True, timeout=300, env={**os.environ, "COLUMNS": "160"})
    assert result.returncode == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines() if re.match(r"\s*\d+\s+\d{4}-", line)]
    assert lines[0][-1] == HOSTILE
    assert [(line[0], line[3], line[4], line[5], line[6]) for line in lines] == [
        ("1", "12:00", "interrupted", str(PARTICIPANTS), "720"), ("2", "0:00", "finished", "0", "0"),
        ("3", "2:00", "finished", "4", "120")]


def sql_rows(conn: sqlite3.Connection, query: str, *args) -> list[tuple]:
    return conn.execute(query, args).fetchall()


def test_exports_agree_with_the_database(class_db: Path, tmp_path: Path) -> None:
    json_path = tmp_path / "class.json"
    assert fer_agent("export", "1", "--db", str(class_db), "-o", str(json_path)).stdout.strip() == str(json_path)
    result = fer_agent("export", "1", "--db", str(class_db), "--format", "csv", "-o", str(tmp_path / "class.csv"))
    assert result.stdout.split() == [str(tmp_path / "class-timeline.csv"), str(tmp_path / "class-participants.csv")]
    exported = json.loads(json_path.read_text())
    with open(tmp_path / "class-timeline.csv", newline="") as handle:
        csv_minutes = list(csv.DictReader(handle))
    with open(tmp_path / "class-participants.csv", newline="") as handle:
        csv_people = list(csv.DictReader(handle))
    conn = sqlite3.connect(class_db)
    assert exported["session"]["frames"] == 720 and exported["session"]["source"] == HOSTILE
    means = ", ".join(f"AVG(CASE WHEN face = 1 THEN {e} END)" for e in EMOTIONS)
    # The README's engagement index, written out: emotion weights times 5 facing or 2 turned away, over 0.9 x 5.
    engagement = ("AVG(CASE WHEN face = 1 THEN (0.25 * angry + 0.2 * disgust + 0.3 * fear + 0.6 * happy + 0.3 * sad"
                  " + 0.6 * surprise + 0.9 * neutral) * (CASE WHEN facing = 1 THEN 5 ELSE 2 END) / 4.5 END)")
    minutes = sql_rows(conn, f"""
        SELECT CAST(time / 60 AS INTEGER) AS m, COUNT(*), SUM(face), AVG(face), AVG(COALESCE(facing, 0)),
               COUNT(DISTINCT participant_id), {means},
               AVG(CASE WHEN face = 1 THEN angry + disgust + fear + sad END), {engagement}
        FROM observations WHERE session_id = 1 GROUP BY m ORDER BY m""")
    assert len(minutes) == len(exported["timeline"]) == len(csv_minutes) == 12
    for row, item, text in zip(minutes, exported["timeline"], csv_minutes):
        minute, tiles, faces, visible, facing, people, *mood, negative, engaged = row
        assert (item["start_s"], item["tiles"], item["faces"], item["participants"]) == (minute * 60, tiles, faces,
                                                                                         people)
        assert item["frames"] == 60 and int(text["tiles"]) == tiles and text["start"] == f"{minute}:00"
        expected = [visible, facing, *mood, negative]
        got = [item[key] for key in ("visible", "facing", *EMOTIONS, "negative")]
        assert np.allclose(got, expected, atol=1e-4)
        assert np.allclose([float(text[key]) for key in ("visible", "facing", *EMOTIONS, "negative")], expected,
                           atol=1e-4)
        assert item["engagement"] == pytest.approx(engaged, abs=1e-4) and 0 < engaged <= 1
    people = sql_rows(conn, f"""
        SELECT p.label, COUNT(o.id), SUM(o.face), MIN(o.time), MAX(o.time), AVG(COALESCE(o.facing, 0)), {means},
               {engagement}
        FROM participants p JOIN observations o ON o.participant_id = p.id WHERE p.session_id = 1
        GROUP BY p.id ORDER BY p.id""")
    assert len(people) == len(exported["participants"]) == len(csv_people) == PARTICIPANTS
    for row, item, text in zip(people, exported["participants"], csv_people):
        label, tiles, faces, first, last, facing, *mood, engaged = row
        assert (item["participant"], item["frames"], item["faces"], item["first_seen_s"], item["last_seen_s"]) == (
            label, tiles, faces, first, last)
        assert text["participant"] == label and int(text["frames"]) == tiles
        assert item["presence"] == pytest.approx(tiles / 720, abs=1e-4)
        assert item["facing"] == pytest.approx(facing, abs=1e-4)
        if faces:
            assert np.allclose([item[e] for e in EMOTIONS], mood, atol=1e-4)
            assert item["engagement"] == pytest.approx(engaged, abs=1e-4)
            top = sql_rows(conn, "SELECT emotion, COUNT(*) AS n FROM observations o JOIN participants p ON "
                           "o.participant_id = p.id WHERE p.session_id = 1 AND p.label = ? AND o.face = 1 "
                           "GROUP BY emotion ORDER BY n DESC", label)
            assert item["dominant"] == top[0][0] and item["dominant_share"] == pytest.approx(top[0][1] / faces,
                                                                                             abs=1e-4)
        else:
            assert item["dominant"] is None and text["dominant"] == "" and item["engagement"] is None


def test_exports_of_a_session_without_frames(class_db: Path, tmp_path: Path) -> None:
    fer_agent("export", "2", "--db", str(class_db), "-o", str(tmp_path / "empty.json"))
    exported = json.loads((tmp_path / "empty.json").read_text())
    assert (exported["session"]["frames"], exported["timeline"], exported["participants"]) == (0, [], [])
    fer_agent("export", "2", "--db", str(class_db), "--format", "csv", "-o", str(tmp_path / "empty"))
    header = (tmp_path / "empty-timeline.csv").read_text().splitlines()
    assert len(header) == 1 and header[0].startswith("start,start_s,end_s,frames,participants,tiles,faces")


def table_counts(path: Path) -> dict[tuple[str, int], int]:
    with sqlite3.connect(path) as conn:
        counts = {}
        for table, key in (("sessions", "id"), ("frames", "session_id"), ("observations", "session_id"),
                           ("participants", "session_id"), ("events", "session_id")):
            for session, count in conn.execute(f"SELECT {key}, COUNT(*) FROM {table} GROUP BY {key}"):
                counts[(table, session)] = count
    return counts


@pytest.mark.e2e
def test_purge_removes_exactly_what_it_says(class_db: Path, tmp_path: Path) -> None:
    path = tmp_path / "class.db"
    with sqlite3.connect(class_db) as source, sqlite3.connect(path) as copy:
        source.backup(copy)
    before = table_counts(path)
    declined = fer_agent("purge", "1", "--db", str(path), input="n\n")
    assert declined.returncode == 1 and "Aborted" in declined.stderr and table_counts(path) == before
    result = fer_agent("purge", "1", "--db", str(path), input="y\n")
    assert result.returncode == 0, result.stderr
    removed = {key: count for key, count in before.items() if key[1] == 1}
    assert result.stdout.splitlines()[-1].startswith(
        f"deleted 1 session ({removed[('frames', 1)]:,} frames, {removed[('observations', 1)]:,} observations, "
        f"{removed[('participants', 1)]:,} participants, {removed[('events', 1)]:,} events)")
    assert table_counts(path) == {key: count for key, count in before.items() if key[1] != 1}
    on_disk = b"".join(p.read_bytes() for p in tmp_path.glob("class.db*"))
    assert b"alert(1)" not in on_disk and b"cameras-off.mp4" in on_disk
    with closing(open_database(path)) as conn:
        assert [info.id for info in select_sessions(conn, None, 0)] == [2, 3]
    assert fer_agent("purge", "--older-than", "1", "--db", str(path)).stdout.startswith("no session started more")
    assert fer_agent("purge", "--older-than", "0", "--yes", "--db", str(path)).returncode == 0
    assert table_counts(path) == {}


def test_purge_by_age_and_with_the_agent_running(class_db: Path, tmp_path: Path) -> None:
    import datetime

    with closing(open_database(class_db)) as conn:
        now = datetime.datetime.now().astimezone()
        assert select_sessions(conn, None, 5, now=now + datetime.timedelta(days=4)) == []
        assert [i.id for i in select_sessions(conn, None, 5, now=now + datetime.timedelta(days=6))] == [1, 2, 3]
    path = tmp_path / "busy.db"
    with Store(path) as store:
        record_class(store, 0.1, 2)
        result = fer_agent("purge", "1", "--yes", "--db", str(path))
    assert result.returncode == 1 and "in use by another fer-agent" in result.stderr
    assert table_counts(path)[("sessions", 1)] == 1
    usage = fer_agent("purge", "--db", str(path))
    assert usage.returncode == 2 and "name one SESSION, or --older-than DAYS" in usage.stderr


def load(path: Path):
    with closing(open_database(path)) as conn:
        return load_session(conn, None)


@pytest.mark.e2e
def test_frames_not_observed_are_a_gap_with_its_cause(lost_db: Path) -> None:
    """The frames written with observed = 0 (from 5:00 to 6:30) are one gap, named by the view_lost event's cause, and
    left out of the observed share (what the session loop records is tested in test_agent.py)."""
    data = load(lost_db)
    gaps = not_observed(data)
    assert gaps == [Gap(300.0, 390.0, CAUSE)] and gaps[0].duration == 90
    assert observed_share(data, gaps) == pytest.approx(630 / 720)


def test_key_moments_never_cover_time_not_observed(lost_db: Path) -> None:
    data = load(lost_db)
    line = timeline(data, 30)
    assert list(line.unobserved_frames) == [0] * 10 + [30] * 3 + [0] * 11 and list(line.frames) == [30] * 24
    lost = slice(10, 13)
    for values in (line.visible, line.facing, line.negative, line.engagement, line.mood):
        assert np.isnan(values[lost]).all() and not np.isnan(values[:10]).any() and not np.isnan(values[13:]).any()
    moments = key_moments(line)
    assert [(m.kind, m.start, m.end) for m in moments] == [("attention", 390, 480), ("negative", 540, 630)]
    # The heads that turned as the view came back are measured against the last 3 intervals observed, before the gap.
    assert moments[0].before == pytest.approx(line.facing[7:10].mean())
    assert moments[0].before > 0.8 > 0.5 > moments[0].after
    assert moments[1].before < 0.1 < 0.6 < moments[1].after
    # Per minute, 6:00-7:00 was observed only from 6:30, with the heads turned: it is a partial interval, so the
    # attention moment starts at 7:00, not in the minute the view came back in.
    minutes = timeline(data, 60)
    assert list(minutes.observed) == [1.0] * 5 + [0.0, 0.5] + [1.0] * 5
    assert list(minutes.fully_observed) == [True] * 5 + [False, False] + [True] * 5
    minute_moments = key_moments(minutes)
    assert [(m.kind, m.start, m.end) for m in minute_moments] == [("attention", 420, 480), ("negative", 540, 600)]
    for moment in moments + minute_moments:
        assert moment.end <= 300 or moment.start >= 390


def path_points(d: str) -> list[tuple[str, float]]:
    """An SVG path's commands with their x coordinates."""
    return [(command, float(x)) for command, x in re.findall(r"([ML])\s*(-?[\d.]+)\s", d)]


@pytest.mark.e2e
def test_report_shows_time_not_observed_as_a_gap(lost_db: Path, browser, tmp_path: Path) -> None:
    path = render(lost_db, 1, tmp_path)
    page, seen = open_page(browser, path)
    assert seen == {"console": [], "errors": [], "requests": [path.as_uri()], "dialogs": []}
    assert "88% of the time" in page.inner_text("#facts")
    assert "lost the view of the call once, for 1:30 in all" in page.inner_text("#summary")
    gaps = page.locator("#not-observed-table tbody tr")
    assert gaps.count() == 1 and gaps.nth(0).locator("td").all_inner_texts() == ["5:00", "6:30", "1:30", CAUSE]
    moments = page.locator("#moments-table tbody tr")
    assert moments.count() == 2
    first, second = moments.nth(0).inner_text(), moments.nth(1).inner_text()
    assert "6:30\u20138:00" in first and "Attention dropped" in first
    assert "9:00\u201310:30" in second and "Negative expressions rose" in second
    for chart in ("mood", "attention", "engagement"):
        svg = f"svg.chart.{chart}"
        assert page.locator(f"{svg} g[id^=not-observed]").count() == 1
        assert page.locator(f"{svg} text", has_text="not observed").count() == 1
        # Drawn where 5:00-6:30 is on the 12-minute axis.
        axes = page.locator(f"{svg} g[id=patch_2]").bounding_box()
        span = page.locator(f"{svg} g[id=not-observed-1]").bounding_box()
        assert (span["x"] - axes["x"]) / axes["width"] == pytest.approx(5 / 12, abs=0.003)
        assert span["width"] / axes["width"] == pytest.approx(1.5 / 12, abs=0.003)
        assert page.get_attribute(f"{svg} g[id=not-observed-1] path", "style").startswith("fill: url(#")
    span_x = [x for _c, x in path_points(page.get_attribute("svg.chart.mood g[id=not-observed-1] path", "d"))]
    left, right = min(span_x), max(span_x)
    # The stacked areas stop at the gap's edges, one area per expression on each side of it.
    areas = [path_points(d) for d in page.eval_on_selector_all(
        "svg.chart.mood g[id^=FillBetweenPolyCollection] path", "paths => paths.map(p => p.getAttribute('d'))")]
    assert len(areas) == 2 * len(EMOTIONS)
    assert sorted(max(x for _c, x in area) for area in areas)[:len(EMOTIONS)] == pytest.approx([left] * 7, abs=0.01)
    assert sorted(min(x for _c, x in area) for area in areas)[-len(EMOTIONS):] == pytest.approx([right] * 7, abs=0.01)
    for chart, count in (("attention", 2), ("engagement", 1)):
        lines = [path_points(d) for d in page.eval_on_selector_all(
            f"svg.chart.{chart} g[id^=line2d] > path", "paths => paths.map(p => p.getAttribute('d'))")]
        lines = [points for points in lines if len(points) > 5]
        assert len(lines) == count
        for points in lines:
            # 21 of the 24 half-minute points, in two pieces: no line runs through the 3 intervals not observed.
            assert len(points) == 21 and [c for c, _x in points].count("M") == 2
            assert not any(left < x < right for _c, x in points)
    assert page.locator("#participants-table svg.sparkline g[id=not-observed-1]").count() == (
        LOST_PARTICIPANTS - CAMERA_OFF)
    assert page.locator("#participants-table tbody tr td:nth-child(2)").all_inner_texts() == (
        ["100%"] * LOST_PARTICIPANTS)
    events = page.inner_text("#events")
    assert CAUSE in events and "view_back" in events
    page.close()


def test_exports_leave_time_not_observed_out(lost_db: Path, tmp_path: Path) -> None:
    json_path = tmp_path / "lost.json"
    assert fer_agent("export", "--db", str(lost_db), "-o", str(json_path)).returncode == 0
    assert fer_agent("export", "--db", str(lost_db), "--format", "csv", "-o", str(tmp_path / "lost")).returncode == 0
    exported = json.loads(json_path.read_text())
    with open(tmp_path / "lost-timeline.csv", newline="") as handle:
        csv_minutes = list(csv.DictReader(handle))
    with open(tmp_path / "lost-participants.csv", newline="") as handle:
        csv_people = list(csv.DictReader(handle))
    assert exported["not_observed"] == [{"start": "5:00", "start_s": 300.0, "end_s": 390.0, "duration_s": 90.0,
                                         "cause": CAUSE}]
    assert exported["session"]["observed"] == 0.875
    minutes = exported["timeline"]
    assert [row["observed"] for row in minutes] == [1.0] * 5 + [0.0, 0.5] + [1.0] * 5
    assert [row["observed"] for row in csv_minutes] == ["1.0"] * 5 + ["0.0", "0.5"] + ["1.0"] * 5
    means = ("visible", "facing", *EMOTIONS, "negative", "engagement")
    assert (minutes[5]["frames"], minutes[5]["tiles"], minutes[5]["faces"], minutes[5]["participants"]) == (60, 0, 0, 0)
    assert all(minutes[5][key] is None for key in means) and all(csv_minutes[5][key] == "" for key in means)
    assert all(row[key] is not None for row in minutes[:5] + minutes[6:] for key in means)
    # The half-observed minute's numbers are its observed half's, as the database has them.
    with closing(sqlite3.connect(lost_db)) as conn:
        [(tiles, visible, facing)] = sql_rows(conn, "SELECT COUNT(*), AVG(face), AVG(COALESCE(facing, 0)) FROM "
                                                    "observations WHERE time >= 360 AND time < 420")
    assert (minutes[6]["frames"], minutes[6]["tiles"]) == (60, tiles) == (60, 30 * LOST_PARTICIPANTS)
    assert (minutes[6]["visible"], minutes[6]["facing"]) == (pytest.approx(visible, abs=1e-4),
                                                             pytest.approx(facing, abs=1e-4))
    # Everyone was there throughout: present in every observed frame, whatever the view did.
    assert [(person["frames"], person["presence"]) for person in exported["participants"]] == (
        [(630, 1.0)] * LOST_PARTICIPANTS)
    assert [person["presence"] for person in csv_people] == ["1.0"] * LOST_PARTICIPANTS


def test_not_observed_stretches(tmp_path: Path) -> None:
    """Two losses, the second until the end of the session; and a loss the agent recorded no cause for."""
    path = tmp_path / "gaps.db"
    with Store(path) as store:
        record_class(store, 2, 4, lost=((20, 30, "the window was covered"), (90, 200, "the window was minimised")))
        session = store.start_session("no cause", 1.0, "1.0.0", 0.8421, "face_detection_short_range.tflite")
        for second in range(20):
            store.write_frame(session, float(second), "no cause", [], 0, not 10 <= second < 15, {"total": 1.0})
        store.finish_session(session, "finished")
    with closing(open_database(path)) as conn:
        two = load_session(conn, 1)
        unexplained = load_session(conn, 2)
    assert not_observed(two) == [Gap(20.0, 30.0, "the window was covered"),
                                 Gap(90.0, 120.0, "the window was minimised")]
    assert observed_share(two, not_observed(two)) == pytest.approx(80 / 120)
    assert [(event.time, event.kind) for event in two.events] == [(20.0, "view_lost"), (30.0, "view_back"),
                                                                   (90.0, "view_lost")]
    assert not_observed(unexplained) == [Gap(10.0, 15.0, UNKNOWN_CAUSE)]


def test_reader_schema_versions(tmp_path: Path) -> None:
    """A version 1 database (before lost views existed) reads as observed throughout; a newer one is refused."""
    path = tmp_path / "old.db"
    with Store(path) as store:
        record_class(store, 0.5, 2)
    with closing(sqlite3.connect(path)) as conn:
        for new, old in (("observed", "gallery"), ("ms_discover", "ms_layout"), ("ms_follow", "ms_detect")):
            conn.execute(f"ALTER TABLE frames RENAME COLUMN {new} TO {old}")
        conn.execute("PRAGMA user_version = 1")
    data = load(path)
    assert len(data.frame_observed) == 30 and data.frame_observed.all() and not_observed(data) == []
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StoreError, match=rf"schema version {len(MIGRATIONS) + 1}, newer than this fer-agent knows "
                                         rf"\({len(MIGRATIONS)}\)"):
        open_database(path)


# Sessions of any length: (minutes, participants, the interval chosen, the intervals that makes). The 3-minute class
# has one episode of negative expressions, which is its one key moment.
LENGTHS = ((20 / 60, 8, 2.0, 10), (3, 16, 10.0, 18), (90, 5, 60.0, 90))
ONE_MOMENT = Episode("negative", 90, 130)


@pytest.fixture(scope="module")
def lengths_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sessions 1-3: a class of 20 seconds, one of 3 minutes (with ONE_MOMENT) and one of 90 minutes, as LENGTHS."""
    path = tmp_path_factory.mktemp("lengths") / "lengths.db"
    with Store(path) as store:
        for minutes, people, _interval, _count in LENGTHS:
            record_class(store, minutes, people, episodes=(ONE_MOMENT,) if minutes == 3 else ())
    return path


@pytest.mark.e2e
def test_the_default_interval_fits_the_session(lengths_db: Path) -> None:
    assert [default_interval(seconds) for seconds in (10, 59, 60, 119, 120, 299, 300, 720, 1800, 1801, 5400)] == [
        2, 2, 5, 5, 10, 10, 30, 30, 30, 60, 60]
    # Never under two frames' time, so no interval is without a frame.
    assert (default_interval(20, fps=0.5), default_interval(20, fps=0.2), default_interval(600, fps=0.2)) == (
        5, 10, 30)
    with closing(open_database(lengths_db)) as conn:
        for session, (_minutes, _people, interval, count) in enumerate(LENGTHS, 1):
            data = load_session(conn, session)
            line = timeline(data, default_interval(data.info.duration, data.info.fps))
            assert (line.interval, len(line.starts)) == (interval, count)
            assert (line.frames > 0).all() and not np.isnan(line.engagement).any()


def svg_points(d: str) -> np.ndarray:
    """An SVG path's points (x, y)."""
    return np.array([(float(x), float(y)) for x, y in re.findall(r"[MLC]\s*(-?[\d.]+)\s+(-?[\d.]+)", d)])


def chart_paths(page, chart: str, selector: str) -> list[np.ndarray]:
    return [svg_points(d) for d in page.eval_on_selector_all(f"svg.chart.{chart} {selector}",
                                                              "paths => paths.map(p => p.getAttribute('d'))")]


@pytest.mark.e2e
@pytest.mark.parametrize("session", [1, 2, 3], ids=["20s", "3min", "90min"])
def test_reports_of_any_length_in_chromium(lengths_db: Path, browser, tmp_path: Path, session: int) -> None:
    _minutes, people, interval, count = LENGTHS[session - 1]
    path = render(lengths_db, session, tmp_path)
    page, seen = open_page(browser, path)
    assert seen == {"console": [], "errors": [], "requests": [path.as_uri()], "dialogs": []}
    assert f"{clock(interval)} intervals" in page.inner_text("footer")
    assert f"per {clock(interval)} interval" in page.inner_text("#mood figcaption")
    assert page.locator("svg.chart").count() == 3
    for chart in ("mood", "attention", "engagement"):
        [axes] = chart_paths(page, chart, "g[id=patch_2] path")
        left, right = axes[:, 0].min(), axes[:, 0].max()
        width = right - left
        if chart == "mood":
            # Every expression's area runs the whole session and has a height somewhere.
            areas = chart_paths(page, chart, "g[id^=FillBetweenPolyCollection] path")
            assert len(areas) == len(EMOTIONS)
            for area in areas:
                assert area[:, 0].min() == pytest.approx(left, abs=0.01)
                assert area[:, 0].max() == pytest.approx(right, abs=0.01)
                assert np.ptp(area[:, 1]) > 0
            continue
        # Each data line goes through every interval's centre, from the first to the last.
        lines = [points for points in chart_paths(page, chart, "g[id^=line2d] > path")
                 if len(points) and points[:, 0].max() <= right + 0.01]
        assert [len(points) for points in lines] == [count] * (2 if chart == "attention" else 1)
        for points in lines:
            assert np.ptp(points[:, 0]) == pytest.approx(width * (count - 1) / count, abs=0.05)
            assert not np.isnan(points).any()
    assert page.locator("#participants-table tbody tr").count() == people
    text = page.inner_text("body")
    assert not re.search(r"\b1 (key moments|participants|frames|points|stretches|intervals|faces)\b", text)
    if session == 2:
        assert "1 key moment below." in page.inner_text("#summary")
        assert page.locator("#moments-table tbody tr").count() == 1
        assert "The 1 stretch of the lecture" in page.inner_text("#moments")
    page.close()


def test_a_lone_interval_is_drawn(lengths_db: Path) -> None:
    """The 20-second class in one minute-long interval: each line is one point, drawn as a step over the whole
    interval (the whole axis), not a lone marker; the participants' trends too."""
    with closing(open_database(lengths_db)) as conn:
        data = load_session(conn, 1)
    html = render_report(data, 60).html
    for chart, count in (("attention", 2), ("engagement", 1)):
        svg = re.search(rf'<svg class="chart {chart}".*?</svg>', html, re.S).group(0)
        axes = svg_points(re.search(r'<g id="patch_2">\s*<path d="([^"]*)"', svg).group(1))
        steps = [points for points in map(svg_points, re.findall(r'<g id="line2d_\d+">\s*<path d="([^"]*)"', svg))
                 if len(points) == 2 and points[:, 0].min() == pytest.approx(axes[:, 0].min(), abs=0.01)]
        assert len(steps) == count
        assert all(np.ptp(points[:, 0]) == pytest.approx(np.ptp(axes[:, 0]), abs=0.01) for points in steps)
    sparklines = re.findall(r'<svg class="sparkline".*?</svg>', html, re.S)
    assert len(sparklines) == LENGTHS[0][1]
    for sparkline in sparklines:
        assert any(len(points) == 2 and np.ptp(points[:, 0]) > 100
                   for points in map(svg_points, re.findall(r'<g id="line2d_\d+">\s*<path d="([^"]*)"', sparkline)))


def test_counts_read_as_english(lengths_db: Path) -> None:
    assert [plural(n, "key moment") for n in (0, 1, 2)] == ["0 key moments", "1 key moment", "2 key moments"]
    assert (plural(1, "participant"), plural(1200, "frame"), plural(1.0, "point"), plural(3, "stretch")) == (
        "1 participant", "1,200 frames", "1 point", "3 stretches")
    assert plural(2, "person", "people") == "2 people"
    with closing(open_database(lengths_db)) as conn:
        built = render_report(load_session(conn, 2))
    assert built.summary == "16 participants, 1 key moment"
