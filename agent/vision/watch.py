"""Face finding over time: discovery over the whole screen when the picture calls for it, BlazeFace following every
known face each frame, and an honest account of when the agent cannot see the class.

A *place* is where a face was found, followed from frame to frame by BlazeFace on the square around the face's last
box (``fer_agent.vision.finder``). Each frame:

1. **Following.** A place whose square looks as it did when its face was last detected (its 16x16 grey thumbnail
   differs by under ``STILL_LEVELS`` on average) keeps its face for up to ``MAX_STILL_FRAMES`` frames without the
   detector; the others are searched again, the most changed first, at most ``MAX_FOLLOW`` per frame (the rest keep
   their box for a frame). A place whose face is not found (turned away, camera off, left) stays a place without a
   face for ``ABSENT_SECONDS``, then is given up.
2. **Discovery** (CenterFace over the whole screen, about 0.3 s of CPU at 1920x1080) runs on the first frame; when
   the picture changed away from the known faces and ``DISCOVERY_SECONDS`` have passed (a participant who joins is
   found within that time); at once when faces vanish together or most of the screen changes (a gallery reorders,
   a page flips, a panel opens, the view switches). A screen that does not change (a still slide, the desktop) costs
   only the thumbnails. On a live screen the periodic discoveries run beside the frames (``Watcher(background=True)``).
   Discovered faces are matched to places by position and look; a face where no place matches is a new place, and a
   place where someone else's face now is, is given up.
3. **The view.** When faces that were there vanish at once and discovery finds none, the view is *lost* (the call
   window covered or minimised, a shared screen over the gallery): those frames are not observed, and no place is
   kept. When discovery finds faces again, the view is back. When some faces are found after such a change, the
   layout changed: the vanished faces' places are given up at once, so a smaller view is not counted as faces
   turned away.
"""

from __future__ import annotations

import time as clock
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import count

import cv2
import numpy as np

from fer_agent.types import Face
from fer_agent.vision.finder import FaceFinder, centre, crop_square, inside, look_of, reading_rows, square_around

STILL_LEVELS = 3.0
MAX_STILL_FRAMES = 10
MAX_FOLLOW = 24
ABSENT_SECONDS = 60.0
DISCOVERY_SECONDS = 4.0
# The screen in blocks of 64x64 pixels (8x8 cells of a 1/8 scale grey picture); a block whose mean grey level moved
# by more than this changed.
BLOCK_LEVELS = 6.0
SMALL_SCALE = 8
BLOCK = 8
# Most of the screen away from the known faces changed at once: a reorder, a page flip, another view.
UPHEAVAL_SHARE = 0.3
# Faces vanished together: at least this many, and at least this share of the faces found the frame before.
VANISHED_FACES = 2
VANISHED_SHARE = 0.5
# A discovered face is the face of a place when its centre is within this share of the place's face width of the
# place's last face centre, and their looks (8x6 colour grids of the squares) differ by at most LOOK_LEVELS.
SAME_FACE_DISTANCE = 0.6
LOOK_LEVELS = 30.0
# How much of a place's look each discovery renews (lighting and posture drift slowly).
LOOK_UPDATE = 0.2
THUMBNAIL = (16, 16)


@dataclass
class Place:
    """A face followed over frames. ``face`` is None while it is not found; ``box`` is its last face box;
    ``fresh`` says that this frame's pixels in the box differ from the ones last classified."""

    key: int
    box: tuple[int, int, int, int]
    face: Face | None
    thumbnail: np.ndarray
    look: np.ndarray
    seen: float
    fresh: bool = True
    still_frames: int = 0
    probabilities: np.ndarray | None = None
    # The name read off its tile (--names), its label's box and look, and when a reading was last tried.
    name: str | None = None
    name_box: tuple[int, int, int, int] | None = None
    name_look: np.ndarray | None = None
    name_tried: float | None = None

    def square(self, shape: tuple[int, ...]) -> tuple[int, int, int]:
        return square_around(self.box, shape)

    def seen_again(self, look: np.ndarray, time: float) -> None:
        """Discovery saw this place's face at ``time``, with the ``look`` around it."""
        self.seen, self.still_frames = time, 0
        self.look = (1 - LOOK_UPDATE) * self.look + LOOK_UPDATE * look

    def found_again(self, image: np.ndarray, face: Face, look: np.ndarray, time: float) -> None:
        """Discovery found this place's face again as ``face`` in ``image`` (it had lost it, or it moved)."""
        if self.face is None or self.face.box != face.box:
            self.fresh = True
        self.face, self.box = face, face.box
        self.thumbnail = _thumbnail(image, self.square(image.shape))
        self.seen_again(look, time)


@dataclass(frozen=True)
class Watch:
    """One frame's view: the places (in reading order), whether the frame was observed, the event it brings
    (``view_lost``, ``view_back``, ``view_changed``) with its detail, whether discovery ran, and milliseconds per
    stage (``discover``, ``follow``)."""

    places: list[Place]
    observed: bool
    event: tuple[str, str] | None = None
    discovered: bool = False
    milliseconds: dict[str, float] = field(default_factory=dict)


class Watcher:
    """``update(image, time)`` per frame -> :class:`Watch`.

    ``background=True`` (a live screen or camera) runs the periodic discoveries on a thread of their own, while the
    session waits for its next frame: no frame waits for the 0.2 s of a discovery, and the faces it finds join the
    next frame after it ends (confirmed on that frame's pixels). The first discovery, and the urgent ones (faces
    vanished, the screen changed), run on the frame itself, so that the view is judged at once. Files (videos,
    screenshots) are analysed in order, every discovery on its own frame, so that their results do not depend on
    timing. Call ``close()`` at the end."""

    def __init__(self, finder: FaceFinder, background: bool = False) -> None:
        self.finder = finder
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="discovery") if background else None
        self._pending: Future | None = None
        self.places: list[Place] = []
        self.observed = True
        self._keys = count(1)
        self._small: np.ndarray | None = None
        self._small_at_discovery: np.ndarray | None = None
        self._discovered_at: float | None = None
        self._found_before = 0

    def update(self, image: np.ndarray, time: float) -> Watch:
        small = cv2.cvtColor(cv2.resize(image, (max(image.shape[1] // SMALL_SCALE, 1),
                                                max(image.shape[0] // SMALL_SCALE, 1)),
                                        interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY).astype(np.float32)
        started = clock.perf_counter()
        resized = self._small is not None and self._small.shape != small.shape
        if resized:
            # A picture of another size (a resized window, the next screenshot of a folder): the places' boxes are of
            # the old picture. Discovery finds the faces again, and the tracker matches them to who they were.
            self.places = []
        vanished = self._follow(image, time)
        followed = clock.perf_counter()
        upheaval = resized
        if self._small is not None and not resized:
            changed, outside = self._changed_outside_places(self._small, small, image.shape)
            upheaval = bool(outside.any()) and changed.sum() >= UPHEAVAL_SHARE * outside.sum()
        sudden = len(vanished) >= max(VANISHED_FACES, VANISHED_SHARE * self._found_before)
        event = None
        discovered = False
        urgent = sudden or upheaval or self._discovered_at is None
        if urgent or (self._pending is None and self._discovery_due(small, time)):
            self._discovered_at, self._small_at_discovery = time, small
            if urgent or self._background is None:
                self._drop_pending()
                found = self._discover(image, time, self.finder.centerface(image), check_looks=upheaval)
                discovered = True
                event = self._judge_view(found, sudden, upheaval)
                if sudden or upheaval:
                    # The picture changed under the places: a face that discovery does not find where it was is no
                    # longer there (a reorder, another page or view), not a camera switched off.
                    self.places = [place for place in self.places if place.face is not None]
            else:
                self._pending = self._background.submit(self.finder.centerface, image.copy())
        elif self._pending is not None and self._pending.done():
            found = self._discover(image, time, self._pending.result(), check_looks=False)
            self._pending = None
            discovered = True
            event = self._judge_view(found, False, False)
        self._small = small
        self._forget_absent(time)
        self._found_before = sum(place.face is not None for place in self.places)
        return Watch(self._ordered(), self.observed, event, discovered, {
            "follow": (followed - started) * 1000,
            "discover": (clock.perf_counter() - followed) * 1000 if discovered else 0.0,
        })

    def renew(self, place: Place) -> None:
        """``place`` shows someone else now (its tile's name changed: the gallery reordered under a face that looks
        alike): a new key, so that it is matched to whoever it is, as a new place would be."""
        place.key = next(self._keys)

    def hide(self, reason: str) -> Watch:
        """A frame without the call's picture, for ``reason`` (its window minimised, covered, closed): the view is
        lost (a ``view_lost`` event with the reason, when it was not lost already) and the places are given up; the
        next picture is searched whole, and the view is back when faces are found in it."""
        self._drop_pending()
        event = ("view_lost", reason) if self.observed else None
        self.observed = False
        self.places = []
        self._small = self._small_at_discovery = self._discovered_at = None
        self._found_before = 0
        return Watch([], False, event)

    def _follow(self, image: np.ndarray, time: float) -> list[Place]:
        """Follow each place's face; returns the places whose face was there the frame before and is not now."""
        changes = []
        for place in self.places:
            thumbnail = _thumbnail(image, place.square(image.shape))
            change = float(np.abs(thumbnail - place.thumbnail).mean())
            place.fresh = False
            if change < STILL_LEVELS and (place.face is None or place.still_frames < MAX_STILL_FRAMES):
                place.still_frames += 1
            else:
                changes.append((change, place, thumbnail))
        vanished = []
        for rank, (_change, place, thumbnail) in enumerate(sorted(changes, key=lambda item: -item[0])):
            if rank >= MAX_FOLLOW:
                place.fresh = place.face is not None
                continue
            had_face = place.face is not None
            face = self.finder.confirm(image, place.box)
            place.still_frames = 0
            place.thumbnail = thumbnail
            if face is None:
                place.face = None
                if had_face:
                    vanished.append(place)
                continue
            place.face, place.box, place.seen, place.fresh = face, face.box, time, True
            place.thumbnail = _thumbnail(image, place.square(image.shape))
        return vanished

    def _discovery_due(self, small: np.ndarray, time: float) -> bool:
        if (self._small_at_discovery is None or self._discovered_at is None
                or self._small_at_discovery.shape != small.shape):
            return True
        if time - self._discovered_at < DISCOVERY_SECONDS:
            return False
        changed, _outside = self._changed_outside_places(self._small_at_discovery, small,
                                                         (small.shape[0] * SMALL_SCALE, small.shape[1] * SMALL_SCALE))
        return bool(changed.any())

    def _changed_outside_places(self, before: np.ndarray, after: np.ndarray, shape: tuple[int, ...],
                                ) -> tuple[np.ndarray, np.ndarray]:
        """The blocks that changed away from the places' squares, and the blocks away from them: what moves
        inside a square is its face's own business (an expression, a nod), followed there."""
        changed = _changed_blocks(before, after)
        outside = np.ones_like(changed)
        size = SMALL_SCALE * BLOCK
        for place in self.places:
            x, y, side = place.square(shape)
            outside[max(y // size, 0):(y + side) // size + 1, max(x // size, 0):(x + side) // size + 1] = False
        return changed & outside, outside

    def _discover(self, image: np.ndarray, time: float, centerface: list[Face], check_looks: bool) -> list[Face]:
        """Discovery's faces (CenterFace's ``centerface``, from this frame or a recent one) matched to the places;
        returns the faces found. A face followed without a break is its place's face, whatever its look now (an
        expression, a turn of the head); after an upheaval (``check_looks``), and for places without a face, the look
        must match too (someone else may sit there). New faces are confirmed on this frame's pixels."""
        found: list[Face] = []
        unmatched = list(self.places)
        for discovered in self.finder.discover(image, centerface):
            near = [place for place in unmatched
                    if np.hypot(*np.subtract(centre(discovered.box), centre(place.box)))
                    <= SAME_FACE_DISTANCE * max(place.box[2], discovered.box[2])]
            followed = None if check_looks else next(
                ((place, place.face) for place in near if place.face is not None), None)
            if followed is not None:
                # Followed without a break this frame: BlazeFace already has this face.
                place, followed_face = followed
                unmatched.remove(place)
                place.seen_again(look_of(image, place.box), time)
                found.append(followed_face)
                continue
            face = self.finder.settle(image, discovered)
            if any(inside(centre(face.box), other.box) or inside(centre(other.box), face.box) for other in found):
                continue
            found.append(face)
            look = look_of(image, face.box)
            match = next((place for place in near if float(np.abs(look - place.look).mean()) <= LOOK_LEVELS), None)
            if match is None:
                # Someone else's face where a place's face was (a reorder, a camera back on with another look): that
                # place is over; the face starts a new one, which the tracker matches to whoever it is.
                for place in near:
                    unmatched.remove(place)
                    self.places.remove(place)
                self.places.append(Place(next(self._keys), face.box, face,
                                         _thumbnail(image, square_around(face.box, image.shape)), look, time))
                continue
            unmatched.remove(match)
            match.found_again(image, face, look, time)
        claimed = [face.box for face in found]
        # A place without its face where another face now is was taken over.
        self.places = [place for place in self.places if place.face is not None or not any(
            inside(centre(box), _grown(place.box, 0.5)) for box in claimed)]
        return found

    def _judge_view(self, found: list[Face], sudden: bool, upheaval: bool) -> tuple[str, str] | None:
        if not self.observed:
            if found:
                self.observed = True
                return "view_back", f"{len(found)} faces"
            return None
        if not (sudden or upheaval) or self._found_before == 0:
            return None
        before = self._found_before
        if not found:
            self.observed = False
            self.places = []
            return "view_lost", (f"{before} faces vanished at once: the call window may be covered, minimised, or "
                                 "showing another view")
        if len(found) < VANISHED_SHARE * before:
            return "view_changed", f"{before} -> {len(found)} faces: the call's layout changed"
        return None

    def _drop_pending(self) -> None:
        """A discovery still running in the background is overtaken by one on this frame: its result is stale."""
        if self._pending is not None:
            self._pending.result()
            self._pending = None

    def close(self) -> None:
        self._drop_pending()
        if self._background is not None:
            self._background.shutdown()

    def _forget_absent(self, time: float) -> None:
        self.places = [place for place in self.places if place.face is not None or time - place.seen < ABSENT_SECONDS]

    def _ordered(self) -> list[Place]:
        return [place for row in reading_rows(self.places, lambda p: p.box) for place in row]


def _thumbnail(image: np.ndarray, square: tuple[int, int, int]) -> np.ndarray:
    grey = cv2.cvtColor(crop_square(image, *square), cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, THUMBNAIL, interpolation=cv2.INTER_AREA).astype(np.float32)


def _changed_blocks(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Boolean [rows, columns] of BLOCKxBLOCK cells of the small pictures whose mean level moved by BLOCK_LEVELS."""
    difference = np.abs(after - before)
    rows, columns = -(-difference.shape[0] // BLOCK), -(-difference.shape[1] // BLOCK)
    padded = np.zeros((rows * BLOCK, columns * BLOCK), dtype=np.float32)
    padded[:difference.shape[0], :difference.shape[1]] = difference
    return padded.reshape(rows, BLOCK, columns, BLOCK).mean(axis=(1, 3)) > BLOCK_LEVELS


def _grown(box: tuple[int, int, int, int], margin: float) -> tuple[int, int, int, int]:
    x, y, w, h = box
    return int(x - margin * w), int(y - margin * h), int(w * (1 + 2 * margin)), int(h * (1 + 2 * margin))
