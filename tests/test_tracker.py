"""Participant identity across frames: gallery reordering, joins and leaves, camera off and on."""

from __future__ import annotations

import numpy as np

from agent.analysis import Observation, tile_signature
from agent.gallery import GalleryLayout
from agent.synthetic import Participant, participants_from_faces, render_gallery
from agent.tracker import Tracker


def observe(people: list[Participant]) -> list[Observation]:
    """Observations of a rendered gallery: real tiles and signatures, no faces (identity does not need them)."""
    image = render_gallery(people).image
    return [Observation(tile, tile_signature(tile.crop(image))) for tile in GalleryLayout().tiles(image)]


def labels(tracker: Tracker, people: list[Participant], time: float) -> dict[str, str]:
    """Who got which participant label, by name."""
    return {person.name: item.participant.label
            for person, item in zip(people, tracker.update(observe(people), time))}


def test_ids_survive_reordering_joins_leaves_and_camera_off_and_on(test_faces) -> None:
    faces, _ = test_faces
    people = participants_from_faces(faces, 10, seed=5)
    newcomer, people = people[0], people[1:]
    tracker = Tracker()
    first = labels(tracker, people, 0.0)
    assert sorted(first.values(), key=lambda label: int(label[1:])) == [f"P{n}" for n in range(1, 10)]
    assert labels(tracker, people, 1.0) == first
    # Someone joins at the front: every tile moves and shrinks (3x3 -> 4x3 grid).
    joined = [newcomer] + people
    after_join = labels(tracker, joined, 2.0)
    assert {name: after_join[name] for name in first} == first
    assert after_join[newcomer.name] == "P10"
    # Someone leaves and the order changes.
    shuffled = [joined[i] for i in (3, 0, 7, 1, 9, 2, 5, 8, 6)]
    after_leave = labels(tracker, shuffled, 3.0)
    assert all(after_leave[person.name] == after_join[person.name] for person in shuffled)
    # A camera goes off in place, then comes back on.
    off = [Participant(p.face, p.name, p.room, camera_on=(i != 4), face_scale=p.face_scale,
                       face_offset=p.face_offset) for i, p in enumerate(shuffled)]
    assert labels(tracker, off, 4.0) == after_leave
    assert labels(tracker, off, 5.0) == after_leave
    assert labels(tracker, shuffled, 6.0) == after_leave
    assert len(tracker.participants) == 10


def test_smoothed_expression_follows_over_seconds_not_frames(test_faces) -> None:
    faces, _ = test_faces
    people = participants_from_faces(faces, 1, seed=2)
    image = render_gallery(people).image
    tile = GalleryLayout().tiles(image)[0]
    signature = tile_signature(tile.crop(image))
    happy = np.array([0, 0, 0, 0.9, 0, 0, 0.1], np.float32)
    sad = np.array([0, 0, 0, 0.1, 0.8, 0, 0.1], np.float32)
    from agent.detector import Face

    face = Face((10, 10, 50, 50), 0.9, np.zeros((6, 2), np.float32))
    tracker = Tracker(smoothing_seconds=5.0)
    assert tracker.update([Observation(tile, signature)], 0.0)[0].smoothed is None
    assert tracker.update([Observation(tile, signature, face, happy, 0.0)], 1.0)[0].smoothed == "happy"
    # One sad frame a second later does not flip the smoothed label; ten seconds of sad frames do.
    assert tracker.update([Observation(tile, signature, face, sad, 0.0)], 2.0)[0].smoothed == "happy"
    for second in range(3, 12):
        result = tracker.update([Observation(tile, signature, face, sad, 0.0)], float(second))
    assert result[0].smoothed == "sad"
