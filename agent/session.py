"""The agent's loop: frames from a source -> analysis -> tracker -> store, and the live view.

``run_session`` only wires the stages together. It ends when the source ends, at ``duration`` seconds (of source
time: wall time for the screen and webcams, video time for videos), or on KeyboardInterrupt (Ctrl-C; the CLI turns
SIGTERM and SIGHUP into one too, with their reason), and always closes the session row with its status, so the
database says how it ended (an error it did not expect, a bug, marks it ``failed`` with the error's type and text, and
goes on up); a second Ctrl-C while it closes is ignored.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.live import Live

from fer_agent.errors import CaptureError, FerAgentError, unexpected_error
from fer_agent.live.dashboard import Dashboard
from fer_agent.store.writer import Store
from fer_agent.tracking.tracker import Tracker
from fer_agent.types import FrameSource, SkippedFile
from fer_agent.vision.analysis import Analyzer

log = logging.getLogger(__name__)

STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


@contextlib.contextmanager
def _signals_held():
    """Closing the session is not interrupted by a second Ctrl-C or another stop signal (they are ignored until it is
    done); only the main thread can set signal handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = [getattr(signal, name) for name in STOP_SIGNALS if hasattr(signal, name)]
    previous = [signal.signal(number, signal.SIG_IGN) for number in held]
    try:
        yield
    finally:
        for number, handler in zip(held, previous):
            signal.signal(number, handler)


class StopRequested(KeyboardInterrupt):
    """A request to end the session as Ctrl-C does, with its reason (raised between frames for a :class:`StopSignals`
    request)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StopSignals:
    """Stop requests from signals (the CLI's SIGTERM and SIGHUP handlers call ``request``), taken by the session
    between frames. An exception raised from the handler itself would land wherever the main thread happens to be,
    inside a library's code too, and leave its objects half built (MediaPipe's ``Image`` then fails in ``__del__``)."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def request(self, reason: str) -> None:
        self.reason = reason

    def check(self) -> None:
        """Raise :class:`StopRequested` when a stop was requested."""
        if self.reason is not None:
            raise StopRequested(self.reason)


@dataclass(frozen=True)
class SessionSummary:
    session_id: int
    frames: int
    dropped: int
    participants: int
    status: str
    database: Path
    message: str | None = None
    skipped: tuple[SkippedFile, ...] = ()


def run_session(source: FrameSource, analyzer: Analyzer, store: Store, *, model_version: str,
                model_accuracy: float | None, detector: str, duration: float | None = None,
                no_face_seconds: float = 120.0, console: Console | None = None,
                say: Callable[[str], None] | None = None, say_events: bool = False,
                stop: StopSignals | None = None) -> SessionSummary:
    """Run one session. ``console``: where the live view is drawn (None: no live view). ``say``: where one line per
    minute of the session goes (``Dashboard.minute_line``), and with ``say_events`` each view event and warning too
    (``--plain``, or output that is not a terminal). ``stop``: where the CLI's signal handlers put their requests,
    taken before each frame."""
    session_id = store.start_session(source.name, source.fps, model_version, model_accuracy, detector)
    tracker = Tracker()
    expected = source.expected_frames()
    dashboard = Dashboard(source.name, str(store.path), session_id, expected)
    frames = dropped = 0
    last_face_time = 0.0
    faces_missing = False
    minute = None
    status, message = "finished", None
    live = Live(dashboard.render(), console=console, refresh_per_second=1, transient=False) if console else None

    def tell(line: str, warning: bool) -> None:
        """An event, once: a line of its own with ``say_events``, in the live view's events when it is drawn (the
        dashboard holds it), else a warning in the log when it is one."""
        if say and say_events:
            say(line)
        elif warning and live is None:
            log.warning(line)

    skipped_files: list[SkippedFile] = []

    def record_skipped() -> None:
        """The files the source skipped while reading the next frame (a folder's unreadable files): an
        ``unreadable_file`` event each, said like the other events, and listed in the summary."""
        for skipped in source.take_skipped():
            if duration is not None and skipped.time >= duration:
                continue
            skipped_files.append(skipped)
            detail = f"{skipped.name}: {skipped.reason}"
            store.event(session_id, skipped.time, "unreadable_file", detail)
            dashboard.note(f"{skipped.time:.0f} s: unreadable file skipped: {detail}")
            tell(f"{skipped.time:.0f} s: unreadable file skipped: {detail}", warning=True)

    last_refresh = 0.0
    try:
        if live:
            live.start()
        iterator = iter(source.frames())
        stop = stop or StopSignals()
        while True:
            stop.check()
            try:
                frame = next(iterator, None)
            finally:
                record_skipped()
            if frame is None or (duration is not None and frame.time >= duration):
                break
            # A live source waited for this frame's time: a stop asked for meanwhile is taken before its analysis.
            stop.check()
            capture_ms = frame.capture_ms
            started = time.perf_counter()
            analysis = analyzer.analyze(frame)
            tracked_at = time.perf_counter()
            tracked = tracker.update(analysis.observations, frame.time)
            milliseconds = {"capture": capture_ms, **analysis.milliseconds,
                            "track": (time.perf_counter() - tracked_at) * 1000}
            milliseconds["total"] = capture_ms + (time.perf_counter() - started) * 1000
            if say and minute is not None and int(frame.time // 60) != minute:
                say(dashboard.minute_line(minute))
            minute = int(frame.time // 60)
            if analysis.event:
                kind, detail = analysis.event
                store.event(session_id, frame.time, kind, detail)
                dashboard.view_event(frame.time, kind, detail)
                tell(f"{frame.time:.0f} s: {kind.replace('_', ' ')}: {detail}", warning=kind == "view_lost")
            store.write_frame(session_id, frame.time, frame.name, tracked, frame.dropped, analysis.observed,
                              milliseconds)
            frames += 1
            dropped += frame.dropped
            if analysis.faces:
                if faces_missing:
                    store.event(session_id, frame.time, "faces_back", f"{analysis.faces} faces")
                    dashboard.note(f"{frame.time:.0f} s: faces are back")
                faces_missing = False
                last_face_time = frame.time
            elif not faces_missing and frame.time - last_face_time >= no_face_seconds:
                faces_missing = True
                detail = f"no face found for {frame.time - last_face_time:.0f} s"
                store.event(session_id, frame.time, "no_faces", detail)
                dashboard.note(f"{frame.time:.0f} s: {detail}; is the call on screen?")
                tell(f"{frame.time:.0f} s: {detail}; is the call on screen?", warning=True)
            dashboard.update(analysis, tracked, milliseconds, frame.dropped)
            if live and time.monotonic() - last_refresh >= 1.0:
                live.update(dashboard.render(), refresh=True)
                last_refresh = time.monotonic()
    except StopRequested as request:
        message = request.reason
    except KeyboardInterrupt:
        message = "stopped by the user (Ctrl-C)"
    except CaptureError as error:
        status, message = "failed", str(error)
        store.event(session_id, dashboard.latest.frame.time if dashboard.latest else 0.0, "capture_error", str(error))
        raise CaptureError(f"{error} (the {frames} frames before it are kept: session {session_id} in {store.path})"
                           ) from None
    except FerAgentError as error:
        status, message = "failed", str(error)
        raise type(error)(f"{error} (the {frames} frames before it are kept: session {session_id} in {store.path})"
                          ) from None
    except Exception as error:
        # A bug (or a fault of a library under us): the session did not finish, and its row says so and why. The
        # error goes on as it is, for the CLI's one line or --debug's traceback.
        status, message = "failed", unexpected_error(error)
        # A note as Python 3.11's add_note() keeps it (the CLI reads it), written so that 3.10 keeps it too.
        setattr(error, "__notes__", [*getattr(error, "__notes__", []),
                                     f"the {frames} frames before it are kept: session {session_id} in {store.path}"])
        raise
    finally:
        with _signals_held():
            # The session's row first: the terminal may be gone already (SIGHUP), and the live view's last drawing
            # could fail on it.
            try:
                store.finish_session(session_id, status, message)
            except FerAgentError as error:
                log.error("could not mark session %d as %s: %s", session_id, status, error)
            try:
                if live:
                    live.update(dashboard.render(), refresh=True)
                    live.stop()
                if say and minute is not None:
                    say(dashboard.minute_line(minute))
            except OSError:
                pass
    return SessionSummary(session_id, frames, dropped, len(tracker.participants), status, store.path, message,
                          tuple(skipped_files))
