"""Times as people read them, for every stage that writes one."""

import datetime


def clock(seconds: float) -> str:
    """Time from the start of the lecture (or of a video): 5:07, 1:02:30."""
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def local_time(text: str | None) -> str:
    """A stored ISO timestamp as the minute it names, in the time zone it was recorded in: 2026-11-21 14:05."""
    if not text:
        return "-"
    try:
        return datetime.datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return text
