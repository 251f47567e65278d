"""The call's window, found by its title and captured where it is at each frame (``--window TEXT``).

Windows are looked up through PyWinCtl (one library for X11, Windows and macOS); their pixels are grabbed with mss,
as for the screen. At each frame the window's current box is taken, so it is followed as it moves and resizes. A
frame where the call cannot be seen says why in ``Frame.hidden`` (and holds no picture): the window is minimised,
closed, off the screen, not shown (another workspace), or at least :data:`COVERED_SHARE` of it lies under other
windows. The analysis records such a frame as not observed, with a ``view_lost`` event that gives the reason. Neither
the reasons nor the source's name hold a window's title, which may name a person (a one-to-one call, a chat): the
source is named by the text given, a covering window by its application.

A window whose title contains ``fer-agent`` or ``fer_agent`` is never taken: it is the terminal running the agent,
whose title often shows the command line (and with it the text looked for).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from rich import box
from rich.markup import escape
from rich.table import Table

from fer_agent.capture.sources import ScreenSource, Source, paced_frames
from fer_agent.errors import CaptureError
from fer_agent.types import Frame

# At least this share of the window under other windows: the call is not seen (points of a SAMPLES x SAMPLES grid
# over the window are asked which window is on top there).
COVERED_SHARE = 0.5
SAMPLES = 4


@dataclass(frozen=True)
class WindowInfo:
    """One top-level window as ``fer-agent windows`` lists it; the box (x, y, w, h) in screen pixels."""

    title: str
    app: str
    box: tuple[int, int, int, int]
    minimised: bool


def _pywinctl() -> Any:
    """The PyWinCtl module; its import connects to the display, and fails in ways of each platform's own."""
    try:
        import pywinctl
    # Xlib's display errors, macOS's missing permissions, ...
    except Exception as error:
        raise CaptureError(f"cannot look up the windows of this display ({error or type(error).__name__}); on a "
                           "machine without a screen, analyse a recording with --source VIDEO") from None
    return pywinctl


def _box(window: Any) -> tuple[int, int, int, int]:
    box = window.box
    return int(box.left), int(box.top), int(box.width), int(box.height)


def list_windows() -> list[WindowInfo]:
    """Every top-level window with a title, in the order the window system gives them."""
    windows = []
    for window in _pywinctl().getAllWindows():
        title = window.title or ""
        if not title.strip():
            continue
        try:
            app = window.getAppName() or ""
        # A window whose process is gone, or is not ours to ask.
        except Exception:
            app = ""
        windows.append(WindowInfo(title, app, _box(window), bool(window.isMinimized)))
    return windows


def windows_table(windows: list[WindowInfo]) -> Table:
    """``fer-agent windows``: one row per window."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("title", overflow="fold")
    for column in ("application", "at (x, y)", "size", "state"):
        table.add_column(column, no_wrap=True)
    for window in windows:
        x, y, w, h = window.box
        table.add_row(escape(window.title), escape(window.app), f"{x}, {y}", f"{w}x{h}",
                      "minimised" if window.minimised else "shown")
    return table


# Never the agent's own terminal (its title may show `fer-agent start ...` or `python -m fer_agent start ...`).
OWN_TITLES = ("fer-agent", "fer_agent")


def _matching(text: str) -> list[Any]:
    wanted = text.casefold()
    return [window for window in _pywinctl().getAllWindows()
            if wanted in (window.title or "").casefold()
            and not any(own in (window.title or "").casefold() for own in OWN_TITLES)]


def find_window(text: str) -> Any:
    """The one window whose title contains ``text`` (any case); a CaptureError that lists the windows when none or
    several match."""
    if not text.strip():
        raise CaptureError("--window: give a part of the call window's title, for example zoom, Meet or Teams")
    found = _matching(text)
    if len(found) == 1:
        return found[0]
    if found:
        titles = "; ".join(repr(window.title) for window in found)
        raise CaptureError(f"--window {text!r}: {len(found)} windows match ({titles}); give more of the title")
    titles = "; ".join(repr(info.title) for info in list_windows()) or "none (is a window manager running?)"
    raise CaptureError(f"--window {text!r}: no window's title contains it; the windows are: {titles} "
                       "(`fer-agent windows` lists them with their places)")


class WindowSource(Source):
    """The window whose title contains ``text``, captured at its current place each frame, paced at ``fps``."""

    live = True

    def __init__(self, text: str, fps: float = 1.0) -> None:
        self.text = text
        self._window = find_window(text)
        self._screen = ScreenSource(fps=fps)
        self._area: dict[str, int] | None = None
        # Named by the text given, not the window's title, which may name a person.
        self.name = f"window {text!r}"
        self.fps = fps

    def hidden(self) -> str:
        """Why the call cannot be seen now ("" when it can), finding the window again when it was closed (a call app
        may open a new one); where it can, its place is kept for :meth:`grab`. The reasons name no window by its
        title (a title may name a person: a one-to-one call, a chat)."""
        try:
            if not self._window.isAlive:
                found = _matching(self.text)
                if len(found) != 1:
                    return "the call window was closed"
                self._window = found[0]
            if self._window.isMinimized:
                return "the call window is minimised"
            if not self._window.isVisible:
                return "the call window is not shown (on another workspace?)"
            self._area = self._on_screen()
        # A window destroyed between two questions (X11 answers BadWindow), or the display gone.
        except Exception as error:
            try:
                alive = self._window.isAlive
            except Exception:
                raise CaptureError(f"{self.name}: the connection to the display was lost "
                                   f"({error or type(error).__name__})") from None
            if not alive:
                return "the call window was closed"
            raise
        if self._area is None:
            return "the call window is off the screen"
        return self._covering(self._area)

    def grab(self) -> np.ndarray:
        """The window's pixels at the place :meth:`hidden` found it."""
        if self._area is None:
            raise CaptureError(f"{self.name}: grab() before hidden() found the window")
        return self._screen.grab(self._area)

    def _on_screen(self) -> dict[str, int] | None:
        """The window's box clipped to the screens, as mss takes it; None when none of it is on a screen."""
        x, y, w, h = _box(self._window)
        desktop = self._screen.desktop
        left, top = max(x, desktop["left"]), max(y, desktop["top"])
        right = min(x + w, desktop["left"] + desktop["width"])
        bottom = min(y + h, desktop["top"] + desktop["height"])
        if right <= left or bottom <= top:
            return None
        return {"left": left, "top": top, "width": right - left, "height": bottom - top}

    def _covering(self, area: dict[str, int]) -> str:
        """Says that the call is covered (and by which application's window) when at least :data:`COVERED_SHARE` of
        the points of a grid over it lie under a window that is shown. Only when some shown window overlaps it are
        the points asked about (the common case, nothing over the call, costs one look at the window list). A point
        whose top window is minimised or not shown (the window system may still list it there), or that cannot be
        asked about (a window closing), is not counted as covered."""
        handle = self._window.getHandle()
        if not any(_overlaps(window, area) for window in _pywinctl().getAllWindows() if window.getHandle() != handle):
            return ""
        covering: Counter[str] = Counter()
        for row in range(SAMPLES):
            for column in range(SAMPLES):
                x = area["left"] + int((column + 0.5) * area["width"] / SAMPLES)
                y = area["top"] + int((row + 0.5) * area["height"] / SAMPLES)
                try:
                    top = _pywinctl().getTopWindowAt(x, y)
                    if top is None or top.getHandle() == handle or top.isMinimized or not top.isVisible:
                        continue
                    covering[top.getAppName() or "another application"] += 1
                # A window that closed while it was asked about.
                except Exception:
                    continue
        share = sum(covering.values()) / SAMPLES ** 2
        if share < COVERED_SHARE:
            return ""
        return f"the call window is covered by another window ({covering.most_common(1)[0][0]}, {share:.0%} of it)"

    def frames(self, sleep: Callable[[float], None] = time.sleep) -> Iterator[Frame]:
        return paced_frames(self.name, self.fps, self.grab, self.hidden, sleep)

    def close(self) -> None:
        self._screen.close()


def _overlaps(window: Any, area: dict[str, int]) -> bool:
    """Whether ``window`` is shown over part of ``area`` (above or below it: the stacking is asked point by point);
    a window closing while it is asked about does not."""
    try:
        if window.isMinimized or not window.isVisible:
            return False
        x, y, w, h = _box(window)
    # A window that closed while it was asked about.
    except Exception:
        return False
    return (x < area["left"] + area["width"] and area["left"] < x + w and y < area["top"] + area["height"]
            and area["top"] < y + h)
