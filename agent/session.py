"""The agent's loop: frames from a source -> analysis -> tracker -> store, and the live view.

``run_session`` only wires the stages together. It ends when the source ends, at ``duration`` seconds (of source
time: wall time for the screen and webcams, video time for videos), on a stop request between frames (``stop``: the
CLI's handlers of Ctrl-C, SIGTERM and SIGHUP put theirs there, with the reason), or on KeyboardInterrupt, and always
closes the session row with its status, so the database says how it ended (an error it did not expect, a bug, marks
it ``failed`` with the error's type and text, and goes on up); a second Ctrl-C while it closes is ignored.
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
from fer_agent.types import FrameAnalysis, FrameSource, SkippedFile, Tracked
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
    """Stop requests from signals (the CLI's Ctrl-C, SIGTERM and SIGHUP handlers call ``request``), taken by the
    session between frames; a live source's wait for its next frame (``sleep``) ends within ``POLL_SECONDS`` of a
    request. An exception raised from the handler itself would land wherever the main thread happens to be, inside a
    library's code too, and leave its objects half built (MediaPipe's ``Image`` then fails in ``__del__``). The
    handler takes no lock (a handler runs on the main thread, which may hold that lock), so ``sleep`` looks at the
    request between short sleeps instead of waiting on an event."""

    POLL_SECONDS = 0.1

    def __init__(self) -> None:
        self.reason: str | None = None

    def request(self, reason: str) -> None:
        self.reason = reason

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less when a stop is asked for meanwhile."""
        end = time.monotonic() + seconds
        while self.reason is None:
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, self.POLL_SECONDS))

    def check(self) -> None:
        """Raise :class:`StopRequested` when a stop was requested."""
        if self.reason is not None:
            raise StopRequested(self.reason)


class Recorder:
    """What a session records of each analysed frame, whoever analysed it (``run_session`` here, or ``fer-agent
    batch``'s workers): the participants (the tracker), the frame and its observations, the view's events, and
    ``no_faces`` after ``no_face_seconds`` without a face (``faces_back`` when they return). ``on_event(time, kind,
    detail)`` hears each event written."""

    def __init__(self, store: Store, session_id: int, no_face_seconds: float = 120.0,
                 on_event: Callable[[float, str, str], None] | None = None) -> None:
        self.store, self.session_id = store, session_id
        self.no_face_seconds = no_face_seconds
        self.on_event = on_event
        self.tracker = Tracker()
        self.frames = self.dropped = 0
        self._last_face_time = 0.0
        self._faces_missing = False

    def record(self, analysis: FrameAnalysis, analysis_ms: float) -> tuple[list[Tracked], dict[str, float]]:
        """Track and write one frame's analysis (``analysis_ms``: the wall time it took); the tracked places and the
        frame's stage timings."""
        frame = analysis.frame
        tracked_at = time.perf_counter()
        tracked = self.tracker.update(analysis.observations, frame.time)
        milliseconds = {"capture": frame.capture_ms, **analysis.milliseconds,
                        "track": (time.perf_counter() - tracked_at) * 1000}
        milliseconds["total"] = frame.capture_ms + analysis_ms + milliseconds["track"]
        if analysis.event:
            self._event(frame.time, *analysis.event)
        self.store.write_frame(self.session_id, frame.time, frame.name, tracked, frame.dropped, analysis.observed,
                               milliseconds)
        self.frames += 1
        self.dropped += frame.dropped
        if analysis.faces:
            if self._faces_missing:
                self._event(frame.time, "faces_back", f"{analysis.faces} faces")
            self._faces_missing = False
            self._last_face_time = frame.time
        elif not self._faces_missing and frame.time - self._last_face_time >= self.no_face_seconds:
            self._faces_missing = True
            self._event(frame.time, "no_faces", f"no face found for {frame.time - self._last_face_time:.0f} s")
        return tracked, milliseconds

    def skipped(self, skipped: SkippedFile) -> None:
        """A file the source skipped (a folder's unreadable file): an ``unreadable_file`` event."""
        self._event(skipped.time, "unreadable_file", f"{skipped.name}: {skipped.reason}")

    def _event(self, time: float, kind: str, detail: str) -> None:
        self.store.event(self.session_id, time, kind, detail)
        if self.on_event is not None:
            self.on_event(time, kind, detail)


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
    expected = source.expected_frames()
    dashboard = Dashboard(source.name, str(store.path), session_id, expected)
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

    def on_event(time: float, kind: str, detail: str) -> None:
        if kind == "unreadable_file":
            dashboard.note(f"{time:.0f} s: unreadable file skipped: {detail}")
            tell(f"{time:.0f} s: unreadable file skipped: {detail}", warning=True)
        elif kind == "faces_back":
            dashboard.note(f"{time:.0f} s: faces are back")
        elif kind == "no_faces":
            dashboard.note(f"{time:.0f} s: {detail}; is the call on screen?")
            tell(f"{time:.0f} s: {detail}; is the call on screen?", warning=True)
        else:
            dashboard.view_event(time, kind, detail)
            tell(f"{time:.0f} s: {kind.replace('_', ' ')}: {detail}", warning=kind == "view_lost")

    recorder = Recorder(store, session_id, no_face_seconds, on_event)

    def kept() -> str:
        return f"the {recorder.frames} frames before it are kept: session {session_id} in {store.path}"

    skipped_files: list[SkippedFile] = []

    def record_skipped() -> None:
        """The files the source skipped while reading the next frame (a folder's unreadable files): an
        ``unreadable_file`` event each, said like the other events, and listed in the summary."""
        for skipped in source.take_skipped():
            if duration is not None and skipped.time >= duration:
                continue
            skipped_files.append(skipped)
            recorder.skipped(skipped)

    last_refresh = 0.0
    try:
        if live:
            live.start()
        stop = stop or StopSignals()
        iterator = iter(source.frames(stop.sleep))
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
            started = time.perf_counter()
            analysis = analyzer.analyze(frame)
            analysis_ms = (time.perf_counter() - started) * 1000
            if say and minute is not None and int(frame.time // 60) != minute:
                say(dashboard.minute_line(minute))
            minute = int(frame.time // 60)
            tracked, milliseconds = recorder.record(analysis, analysis_ms)
            dashboard.update(analysis, tracked, milliseconds, frame.dropped)
            if live and time.monotonic() - last_refresh >= 1.0:
                live.update(dashboard.render(), refresh=True)
                last_refresh = time.monotonic()
    except StopRequested as request:
        message = request.reason
    except KeyboardInterrupt:
        message = (stop.reason if stop else None) or "stopped by the user (Ctrl-C)"
    except CaptureError as error:
        status, message = "failed", str(error)
        store.event(session_id, dashboard.latest.frame.time if dashboard.latest else 0.0, "capture_error", str(error))
        raise CaptureError(f"{error} ({kept()})") from None
    except FerAgentError as error:
        status, message = "failed", str(error)
        raise type(error)(f"{error} ({kept()})") from None
    except Exception as error:
        # A bug (or a fault of a library under us): the session did not finish, and its row says so and why. The
        # error goes on as it is, for the CLI's one line or --debug's traceback.
        status, message = "failed", unexpected_error(error)
        # A note as Python 3.11's add_note() keeps it (the CLI reads it), written so that 3.10 keeps it too.
        setattr(error, "__notes__", [*getattr(error, "__notes__", []), kept()])
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
    return SessionSummary(session_id, recorder.frames, recorder.dropped, len(recorder.tracker.participants), status,
                          store.path, message,
                          tuple(skipped_files))
