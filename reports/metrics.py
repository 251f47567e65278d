"""What the report and the exports say about a session: the class over time, each participant, the key moments.

Definitions (written out in the report too):

- *Not observed*: frames in which the agent had lost the view of the call (its window covered, minimised or its
  layout changed; the faces it was following vanished at once). They have no observations, so every share and mean
  below is over observed frames only; an interval without an observed frame is a gap (NaN), never a drop to 0, and
  no key moment starts in, ends in, runs through or is measured against an interval that was not fully observed.
- *Mood*: per interval, the mean of the 7 expression probabilities over every face seen in it.
- *Visible*: the share of participants' places (observations: a participant on screen in a frame) with a face found;
  *facing*: the share of places with a face turned at most 30 degrees
  (``fer_agent.vision.analysis.FACING_LIMIT_DEGREES``). A place whose face is not found (turned away, camera off) counts
  as neither.
- *Negative*: the probability of angry + disgust + fear + sad, averaged over faces.
- *Engagement index*, per face: ``E = (sum_k w_k p_k) * g / 4.5``, adapted from the concentration index of Sharma et
  al. (2022): emotion weights ``w`` (neutral 0.9, happy 0.6, surprise 0.6, sad 0.3, fear 0.3, angry 0.25,
  disgust 0.2) times a gaze weight ``g``: 5 when the face is turned towards the screen, 2 when turned away (their
  weights for looking at the screen and looking aside); 4.5 = 0.9 x 5 scales it to 0..1. The class index is the mean
  over the faces seen, so places without a face neither raise nor lower it (they show in *visible*).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fer_agent.labels import EMOTIONS, negative_share
from fer_agent.store.reader import SessionData

EMOTION_WEIGHTS = {"angry": 0.25, "disgust": 0.2, "fear": 0.3, "happy": 0.6, "sad": 0.3, "surprise": 0.6,
                   "neutral": 0.9}
FACING_GAZE_WEIGHT = 5.0
AWAY_GAZE_WEIGHT = 2.0
ENGAGEMENT_SCALE = max(EMOTION_WEIGHTS.values()) * FACING_GAZE_WEIGHT
# Key moments: change against the mean of this many intervals before, and the least change that counts.
BASELINE_INTERVALS = 3
MIN_CHANGE = 0.05
_WEIGHTS = np.array([EMOTION_WEIGHTS[name] for name in EMOTIONS])


def engagement(probabilities: np.ndarray, facing: np.ndarray) -> np.ndarray:
    """The engagement index of each face (NaN where the probabilities are NaN, that is where no face was seen)."""
    gaze = np.where(facing, FACING_GAZE_WEIGHT, AWAY_GAZE_WEIGHT)
    return probabilities @ _WEIGHTS * gaze / ENGAGEMENT_SCALE


# The default interval by the session's length, so that every chart has about 10 to 60 points: (sessions shorter
# than this many seconds, their interval); 30-second intervals up to 30 minutes, then one minute.
INTERVALS = ((60.0, 2.0), (120.0, 5.0), (300.0, 10.0))


def default_interval(duration: float, fps: float = 1.0) -> float:
    """The interval the charts use unless one is chosen: 2 seconds for sessions under a minute, 5 under 2 minutes,
    10 under 5 minutes, 30 up to 30 minutes and one minute beyond; never under two frames' time (at ``fps``), so no
    interval of the session is left without a frame."""
    interval = next((seconds for shorter, seconds in INTERVALS if duration < shorter),
                    30.0 if duration <= 30 * 60 else 60.0)
    least = 2.0 / fps if fps > 0 else 0.0
    steps = sorted({seconds for _shorter, seconds in INTERVALS} | {30.0, 60.0})
    return next((seconds for seconds in steps if seconds >= max(interval, least)), max(60.0, least))


def plural(count: int | float, noun: str, many: str | None = None) -> str:
    """The count with its noun, singular for exactly one: "1 key moment", "2 key moments", "1,200 frames", "1 match",
    "2 matches" (nouns ending in s, x, z, ch or sh take "es"); ``many`` for an irregular plural."""
    if count == 1:
        return f"1 {noun}"
    if many is None:
        many = noun + ("es" if noun.endswith(("s", "x", "z", "ch", "sh")) else "s")
    if isinstance(count, float) and count.is_integer():
        count = int(count)
    return f"{count:,} {many}"


def _mean(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _sums(groups: np.ndarray, values: np.ndarray, count: int) -> np.ndarray:
    """Per group, the sum of ``values`` [N] or of each column of ``values`` [N, K]."""
    if values.ndim == 1:
        return np.bincount(groups, values, count)
    return np.stack([np.bincount(groups, column, count) for column in values.T], axis=1)


def _interval_of(times: np.ndarray, interval: float, count: int) -> np.ndarray:
    """The interval each time falls in; the session's last moments belong to its last interval."""
    return np.minimum((times // interval).astype(np.int64), max(count - 1, 0))


@dataclass(frozen=True)
class Timeline:
    """The class per interval: ``starts`` (seconds from the start of the session) and, per interval, the frames (of
    them ``observed_frames`` and ``unobserved_frames``), distinct participants, tiles (observations) and faces counted,
    the mean ``mood`` [intervals, 7], the ``visible`` and ``facing`` shares of tiles, the ``negative`` share and the
    ``engagement`` index, all over the observed frames. Means over nothing are NaN."""

    interval: float
    starts: np.ndarray
    frames: np.ndarray
    observed_frames: np.ndarray
    unobserved_frames: np.ndarray
    participants: np.ndarray
    tiles: np.ndarray
    faces: np.ndarray
    mood: np.ndarray
    visible: np.ndarray
    facing: np.ndarray
    negative: np.ndarray
    engagement: np.ndarray

    @property
    def ends(self) -> np.ndarray:
        return self.starts + self.interval

    @property
    def observed(self) -> np.ndarray:
        """The share of each interval's frames that were observed (NaN for an interval without frames)."""
        return _mean(self.observed_frames.astype(np.float64), self.frames)

    @property
    def fully_observed(self) -> np.ndarray:
        """Intervals with frames, every one of them observed: the only ones key moments are made of and measured
        against."""
        return (self.frames > 0) & (self.unobserved_frames == 0)


def interval_count(data: SessionData, interval: float) -> int:
    return max(1, math.ceil(data.info.duration / interval)) if data.info.frames else 0


def timeline(data: SessionData, interval: float) -> Timeline:
    if interval <= 0:
        raise ValueError(f"interval: expected seconds > 0, got {interval}")
    count = interval_count(data, interval)
    bins = _interval_of(data.time, interval, count)
    faces = data.face
    seen = data.probabilities[faces]
    tiles = np.bincount(bins, minlength=count)
    face_count = np.bincount(bins[faces], minlength=count)
    people = max(len(data.labels), 1)
    present = np.unique(bins * people + data.participant) // people
    frame_bins = _interval_of(data.frame_times, interval, count)
    observed = np.bincount(frame_bins[data.frame_observed], minlength=count)
    frames = np.bincount(frame_bins, minlength=count)
    return Timeline(
        interval=interval,
        starts=np.arange(count) * interval,
        frames=frames,
        observed_frames=observed,
        unobserved_frames=frames - observed,
        participants=np.bincount(present, minlength=count),
        tiles=tiles,
        faces=face_count,
        mood=_mean(_sums(bins[faces], seen, count), face_count[:, None]),
        visible=_mean(face_count.astype(np.float64), tiles),
        facing=_mean(_sums(bins, data.facing.astype(np.float64), count), tiles),
        negative=_mean(_sums(bins[faces], negative_share(seen), count), face_count),
        engagement=_mean(_sums(bins[faces], engagement(seen, data.facing[faces]), count), face_count),
    )


@dataclass(frozen=True)
class ParticipantSummary:
    """One participant over the session. ``presence``: the share of the session's observed frames with their place
    (time when the view was lost is no one's absence);
    ``visible`` and ``facing``: shares of their tiles; ``dominant``: their most frequent expression (None without a
    face) and ``dominant_share`` of their faces; ``mood``: mean probabilities; ``trend``: engagement per interval of
    the timeline (NaN where they showed no face)."""

    label: str
    first_seen: float
    last_seen: float
    frames: int
    presence: float
    faces: int
    visible: float
    facing: float
    dominant: str | None
    dominant_share: float
    mood: np.ndarray
    engagement: float
    trend: np.ndarray
    name: str | None = None


def participants(data: SessionData, interval: float) -> list[ParticipantSummary]:
    people = len(data.labels)
    count = interval_count(data, interval)
    who, faces = data.participant, data.face
    tiles = np.bincount(who, minlength=people)
    face_count = np.bincount(who[faces], minlength=people)
    facing = _sums(who, data.facing.astype(np.float64), people)
    first = np.full(people, np.inf)
    last = np.full(people, -np.inf)
    np.minimum.at(first, who, data.time)
    np.maximum.at(last, who, data.time)
    seen = data.probabilities[faces]
    label_counts = np.zeros((people, len(EMOTIONS)), np.int64)
    np.add.at(label_counts, (who[faces], seen.argmax(axis=1)), 1)
    mood = _mean(_sums(who[faces], seen, people), face_count[:, None])
    scores = engagement(seen, data.facing[faces])
    mean_score = _mean(_sums(who[faces], scores, people), face_count)
    cell = who[faces] * count + _interval_of(data.time[faces], interval, count)
    trend = _mean(_sums(cell, scores, people * count), np.bincount(cell, minlength=people * count))
    trend = trend.reshape(people, count)
    observed_frames = max(int(data.frame_observed.sum()), 1)
    summaries = []
    for index, label in enumerate(data.labels):
        seen = face_count[index] > 0
        top = int(label_counts[index].argmax())
        summaries.append(ParticipantSummary(
            label=label, first_seen=float(first[index]), last_seen=float(last[index]), frames=int(tiles[index]),
            presence=tiles[index] / observed_frames, faces=int(face_count[index]),
            visible=face_count[index] / max(tiles[index], 1), facing=facing[index] / max(tiles[index], 1),
            dominant=EMOTIONS[top] if seen else None,
            dominant_share=label_counts[index, top] / face_count[index] if seen else 0.0,
            mood=mood[index], engagement=float(mean_score[index]), trend=trend[index],
            name=data.names[index] if index < len(data.names) else None))
    return summaries


@dataclass(frozen=True)
class KeyMoment:
    """A stretch of the lecture where negative expressions rose (``kind`` "negative") or attention, the share of
    participants facing the screen, dropped (``kind`` "attention"): ``before`` is the mean of the intervals before
    it, ``after`` the mean over the stretch."""

    start: float
    end: float
    kind: str
    before: float
    after: float

    @property
    def change(self) -> float:
        """How much worse, in share points (positive)."""
        return self.after - self.before if self.kind == "negative" else self.before - self.after


def key_moments(line: Timeline, count: int = 5, baseline: int = BASELINE_INTERVALS,
                min_change: float = MIN_CHANGE) -> list[KeyMoment]:
    """Up to ``count`` stretches with the largest rise of negative expressions or drop of attention, in time order.

    Only fully observed intervals with a value take part: time when the view was lost is not a change of the class,
    and neither is an interval the view was lost for part of (its class came and went with the view). Each such
    interval is scored against the mean of the ``baseline`` such intervals before it, reaching back over a gap;
    with fewer of them before it, none starts a moment. The best-scoring interval starts a moment, which runs on
    while the next interval is usable and its change stays at least half as large, so a sustained episode is one
    moment, not one per interval; the intervals next to a moment cannot start another. Changes under
    ``min_change`` (share points) are not moments.
    """
    signals = {"negative": line.negative, "attention": -line.facing}
    usable = {kind: line.fully_observed & ~np.isnan(signal) for kind, signal in signals.items()}
    scores = []
    for kind, signal in signals.items():
        indices = np.flatnonzero(usable[kind])
        for position in range(baseline, len(indices)):
            reference = float(signal[indices[position - baseline:position]].mean())
            scores.append((signal[indices[position]] - reference, indices[position], kind, reference))
    blocked = np.zeros(len(line.starts), bool)
    moments: list[KeyMoment] = []
    for score, start, kind, reference in sorted(scores, key=lambda item: -item[0]):
        if len(moments) == count or score < min_change:
            break
        if blocked[start]:
            continue
        signal = signals[kind]
        end = start
        while (end + 1 < len(signal) and usable[kind][end + 1] and not blocked[end + 1]
               and signal[end + 1] - reference >= score / 2):
            end += 1
        blocked[max(start - 1, 0):end + 2] = True
        sign = 1 if kind == "negative" else -1
        moments.append(KeyMoment(float(line.starts[start]), float(line.ends[end]), kind, sign * float(reference),
                                 sign * float(signal[start:end + 1].mean())))
    return sorted(moments, key=lambda moment: moment.start)


@dataclass(frozen=True)
class Gap:
    """A stretch of the session that was not observed: the view of the call was lost from ``start`` to ``end``
    (seconds from the start), for the ``cause`` the agent recorded when it lost it."""

    start: float
    end: float
    cause: str

    @property
    def duration(self) -> float:
        return self.end - self.start


UNKNOWN_CAUSE = "the view of the call was lost (no cause recorded)"


def not_observed(data: SessionData) -> list[Gap]:
    """The runs of consecutive frames that were not observed, in time order. A run ends at the next observed frame,
    or at the end of the session (its last frame covers one frame interval, as in the session's duration). Its cause
    is the detail of the ``view_lost`` event recorded after the last observed frame before it and before its end."""
    lost = np.concatenate([[False], ~data.frame_observed, [False]])
    edges = np.flatnonzero(lost[1:] != lost[:-1])
    times = data.frame_times
    causes = [event for event in data.events if event.kind == "view_lost"]
    gaps = []
    for first, after in zip(edges[::2], edges[1::2]):
        end = float(times[after]) if after < len(times) else data.info.duration
        before = float(times[first - 1]) if first else -math.inf
        cause = next((event.detail for event in causes if before < event.time < end and event.detail), UNKNOWN_CAUSE)
        gaps.append(Gap(float(times[first]), end, cause))
    return gaps


def observed_share(data: SessionData, gaps: list[Gap]) -> float:
    """The share of the session's time that was observed (NaN for a session without frames)."""
    if not data.info.duration:
        return math.nan
    return 1.0 - sum(gap.duration for gap in gaps) / data.info.duration

