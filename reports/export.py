"""Exports of a session's numbers: the class per interval (a minute by default) and each participant's summary, as
JSON (one file) or CSV (two files: ``<stem>-timeline.csv`` and ``<stem>-participants.csv``).

The definitions are those of :mod:`fer_agent.reports.metrics`, the same as the report's. Shares and probabilities are
0..1, rounded to 4 decimals; times are seconds from the start of the session; a mean over nothing (no face in the
interval, or no observed frame: the view of the call was lost) is empty in CSV and null in JSON. Each interval's
``observed`` is the share of its frames that were observed; the JSON also lists the stretches that were not, with their
causes.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from fer_agent.clock import clock
from fer_agent.errors import FerAgentError
from fer_agent.labels import EMOTIONS
from fer_agent.reports.metrics import (
    Gap,
    ParticipantSummary,
    Timeline,
    not_observed,
    observed_share,
    participants,
    timeline,
)
from fer_agent.store.reader import SessionData

FORMATS = ("csv", "json")
COLUMNS = {
    "timeline": ("start", "start_s", "end_s", "frames", "participants", "tiles", "faces", "observed", "visible",
                 "facing",
                 *EMOTIONS, "negative", "engagement"),
    "participants": ("participant", "first_seen_s", "last_seen_s", "frames", "presence", "faces", "visible",
                     "facing", "dominant", "dominant_share", *EMOTIONS, "engagement"),
}


def _number(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 4)


def timeline_rows(line: Timeline) -> list[dict]:
    return [{
        "start": clock(line.starts[index]), "start_s": float(line.starts[index]), "end_s": float(line.ends[index]),
        "frames": int(line.frames[index]), "participants": int(line.participants[index]),
        "tiles": int(line.tiles[index]), "faces": int(line.faces[index]), "observed": _number(line.observed[index]),
        "visible": _number(line.visible[index]), "facing": _number(line.facing[index]),
        **{name: _number(line.mood[index, k]) for k, name in enumerate(EMOTIONS)},
        "negative": _number(line.negative[index]), "engagement": _number(line.engagement[index]),
    } for index in range(len(line.starts))]


def participant_rows(people: list[ParticipantSummary]) -> list[dict]:
    return [{
        "participant": person.label, "first_seen_s": person.first_seen, "last_seen_s": person.last_seen,
        "frames": person.frames, "presence": _number(person.presence), "faces": person.faces,
        "visible": _number(person.visible), "facing": _number(person.facing), "dominant": person.dominant,
        "dominant_share": _number(person.dominant_share) if person.dominant else None,
        **{name: _number(person.mood[k]) for k, name in enumerate(EMOTIONS)},
        "engagement": _number(person.engagement),
    } for person in people]


def gap_rows(gaps: list[Gap]) -> list[dict]:
    return [{"start": clock(gap.start), "start_s": gap.start, "end_s": gap.end, "duration_s": gap.duration,
             "cause": gap.cause} for gap in gaps]


def session_export(data: SessionData, interval: float = 60.0) -> dict:
    info = data.info
    gaps = not_observed(data)
    return {
        "session": {
            "id": info.id, "started_at": info.started_at, "ended_at": info.ended_at, "status": info.status,
            "source": info.source, "fps": info.fps, "duration_s": info.duration, "frames": info.frames,
            "dropped": info.dropped, "participants": info.participants, "model_version": info.model_version,
            "model_accuracy": info.model_accuracy, "observed": _number(observed_share(data, gaps)),
        },
        "interval_s": interval,
        "timeline": timeline_rows(timeline(data, interval)),
        "participants": participant_rows(participants(data, interval)),
        "not_observed": gap_rows(gaps),
    }


def write_export(export: dict, format: str, output: str | Path) -> list[Path]:
    """Write ``export`` as JSON to ``output``, or as CSV to two files named from ``output``'s stem; returns the
    paths written."""
    if format not in FORMATS:
        raise ValueError(f"format: expected one of {FORMATS}, got {format!r}")
    output = Path(output)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        if format == "json":
            output.write_text(json.dumps(export, indent=2) + "\n", encoding="utf-8")
            return [output]
        stem = output.with_suffix("") if output.suffix.lower() == ".csv" else output
        paths = []
        for table in ("timeline", "participants"):
            path = stem.with_name(f"{stem.name}-{table}.csv")
            with path.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=COLUMNS[table])
                writer.writeheader()
                writer.writerows(export[table])
            paths.append(path)
        return paths
    except OSError as error:
        raise FerAgentError(f"{output}: cannot write the export ({error.strerror or error})") from None
