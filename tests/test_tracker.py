"""Participant identity across frames, through the real face finder (CenterFace discovery, BlazeFace following) and
the tracker: gallery reordering, joins and leaves, camera off and on, and never one face as two participants."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fer_agent.tracking.tracker import Tracker
from fer_agent.types import KEYPOINTS, Face, Frame, Observation, Tile
from fer_agent.vision.analysis import Analyzer
from tests.conftest import SHIPPED_MODEL
from tests.synthetic import Participant, participants_from_faces, render_gallery


class Session:
    """A session's analyzer and tracker over rendered galleries, one frame per second."""

    def __init__(self, detector_model_path: Path, discovery_model_path: Path) -> None:
        self.analyzer = Analyzer(detector_model_path, discovery_model_path, SHIPPED_MODEL)
        self.tracker = Tracker()
        self.time = 0.0

    def labels(self, people: list[Participant], frames: int = 2) -> dict[str, str]:
        """Show the gallery of ``people`` for ``frames`` seconds; who got which label (by name) in the last frame.
        A participant label appears at most once per frame."""
        gallery = render_gallery(people)
        for _ in range(frames):
            tracked = self.tracker.update(self.analyzer.analyze(Frame(gallery.image, self.time, "g")).observations,
                                          self.time)
            self.time += 1.0
            numbers = [item.participant.number for item in tracked]
            assert len(numbers) == len(set(numbers)), numbers
        result = {}
        for item in tracked:
            x, y, w, h = item.observation.tile.box
            cx, cy = x + w / 2, y + h / 2
            for person, (tx, ty, tw, th) in zip(people, gallery.tiles):
                if tx <= cx <= tx + tw and ty <= cy <= ty + th:
                    assert person.name not in result, f"{person.name} seen twice"
                    result[person.name] = item.participant.label
        return result


@pytest.mark.e2e
def test_ids_survive_reordering_joins_leaves_and_camera_off_and_on(test_faces, detector_model_path: Path,
                                                                    discovery_model_path: Path) -> None:
    faces, _ = test_faces
    people = participants_from_faces(faces, 10, seed=5)
    newcomer, people = people[0], people[1:]
    session = Session(detector_model_path, discovery_model_path)
    first = session.labels(people)
    assert sorted(first.values(), key=lambda label: int(label[1:])) == [f"P{n}" for n in range(1, 10)]
    assert session.labels(people) == first
    # Someone joins at the front: every tile moves and shrinks (3x3 -> 4x3 grid); found within 5 seconds.
    joined = [newcomer] + people
    after_join = session.labels(joined, frames=5)
    assert {name: after_join[name] for name in first} == first
    assert after_join[newcomer.name] == "P10"
    # Someone leaves and the order changes.
    shuffled = [joined[i] for i in (3, 0, 7, 1, 9, 2, 5, 8, 6)]
    after_leave = session.labels(shuffled, frames=5)
    assert {p.name: after_leave[p.name] for p in shuffled} == {p.name: after_join[p.name] for p in shuffled}
    # A camera goes off in place, then comes back on: the others keep their labels, and so does the returning one.
    off = [Participant(p.face, p.name, p.room, camera_on=(i != 4), face_scale=p.face_scale,
                       face_offset=p.face_offset) for i, p in enumerate(shuffled)]
    during = session.labels(off, frames=3)
    assert all(during[p.name] == after_leave[p.name] for i, p in enumerate(shuffled) if i != 4)
    assert session.labels(shuffled, frames=5) == after_leave
    assert len(session.tracker.participants) == 10
    session.analyzer.close()


def test_one_place_is_never_two_participants() -> None:
    tile = Tile(0, (0, 0, 100, 100))
    signature = np.zeros((6, 8, 3), np.float32)
    tracker = Tracker()
    first = tracker.update([Observation(tile, signature, place=1), Observation(tile, signature, place=2)], 0.0)
    assert [item.participant.label for item in first] == ["P1", "P2"]
    # The same look again in a new place, while both participants hold their places: a third participant, not a
    # second place for P1.
    again = tracker.update([Observation(tile, signature, place=1), Observation(tile, signature, place=2),
                            Observation(tile, signature, place=3)], 1.0)
    assert [item.participant.label for item in again] == ["P1", "P2", "P3"]


def test_smoothed_expression_follows_over_seconds_not_frames() -> None:
    tile = Tile(0, (0, 0, 100, 60))
    signature = np.zeros((6, 8, 3), np.float32)
    happy = np.array([0, 0, 0, 0.9, 0, 0, 0.1], np.float32)
    sad = np.array([0, 0, 0, 0.1, 0.8, 0, 0.1], np.float32)
    face = Face((10, 10, 50, 50), 0.9, np.zeros((len(KEYPOINTS), 2), np.float32))
    tracker = Tracker(smoothing_seconds=5.0)
    assert tracker.update([Observation(tile, signature, place=1)], 0.0)[0].smoothed is None
    assert tracker.update([Observation(tile, signature, face, happy, 0.0, 1)], 1.0)[0].smoothed == "happy"
    # One sad frame a second later does not flip the smoothed label; ten seconds of sad frames do.
    assert tracker.update([Observation(tile, signature, face, sad, 0.0, 1)], 2.0)[0].smoothed == "happy"
    for second in range(3, 12):
        result = tracker.update([Observation(tile, signature, face, sad, 0.0, 1)], float(second))
    assert result[0].smoothed == "sad"


@pytest.mark.e2e
def test_a_page_flip_and_back_and_a_speaker_view(test_faces, detector_model_path: Path,
                                                 discovery_model_path: Path) -> None:
    """Gallery page 1, page 2 (other people), page 1 again, then the speaker view (one large face and a strip):
    each change is recovered from within 5 seconds, the people of page 1 keep their labels when they come back, and
    no face is ever two participants. (Who is who across pages rests on the look around each face: someone on page 2
    whose room looks like the room of someone on page 1 may be taken for them; names, issue 13, would settle it.)"""
    faces, _ = test_faces
    everyone = participants_from_faces(faces, 18, seed=11)
    page_one, page_two = everyone[:9], everyone[9:]
    session = Session(detector_model_path, discovery_model_path)
    first = session.labels(page_one)
    assert len(set(first.values())) == 9
    second = session.labels(page_two, frames=5)
    assert len(second) == 9 and len(set(second.values())) == 9
    assert session.labels(page_one, frames=5) == first
    assert 9 < len(session.tracker.participants) <= 18
    # The speaker view: the speaker's tile fills most of the screen, five others in a strip of tiles on top.
    speaker, strip = page_one[0], page_one[1:6]
    screen = np.full((1080, 1920, 3), 26, np.uint8)
    for index, person in enumerate(strip):
        screen[:216, 192 + index * 308:192 + index * 308 + 300] = render_gallery([person], width=300, height=216,
                                                                                 speaker=None).image
    big = render_gallery([speaker], width=1440, height=810, speaker=None)
    screen[240:1050, 240:1680] = big.image
    seen = []
    for _ in range(5):
        tracked = session.tracker.update(
            session.analyzer.analyze(Frame(screen, session.time, "speaker view")).observations, session.time)
        session.time += 1.0
        numbers = [item.participant.number for item in tracked]
        assert len(numbers) == len(set(numbers))
        seen.append(len(tracked))
    # 5 or 6 of the 6: CenterFace misses some of these tightly cropped synthetic faces (see test_finder).
    assert seen[-1] >= 5 and seen[-2:] == [seen[-1]] * 2, seen
    session.analyzer.close()


def test_a_name_decides_before_the_look() -> None:
    """Two participants who look alike (the same virtual background) leave and come back in each other's places:
    by their names they are who they were; a newcomer of another name is never given an absent participant's id."""
    look = np.full((6, 8, 3), 80.0, np.float32)
    face = Face((0, 0, 10, 10), 0.9, np.zeros((len(KEYPOINTS), 2), np.float32))
    scores = np.full(7, 1 / 7, np.float32)

    def seen(place: int, x: int, name: str | None) -> Observation:
        return Observation(Tile(place, (x, 0, 100, 60)), look, face, scores, 0.0, place, name)

    tracker = Tracker()
    first = tracker.update([seen(1, 0, "Ana Lima"), seen(2, 200, "Bo Chen")], 0.0)
    assert [t.participant.name for t in first] == ["Ana Lima", "Bo Chen"]
    swapped = tracker.update([seen(3, 0, "BoChen"), seen(4, 200, "Ana Lima (Me)")], 1.0)
    assert [t.participant.label for t in swapped] == ["P2", "P1"]
    tracker.update([], 2.0)
    stranger = tracker.update([seen(5, 0, "Cy Dorn")], 3.0)
    assert stranger[0].participant.label == "P3"
