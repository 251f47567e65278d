"""What following the call's window (``--window TEXT``) costs per frame, on a real X display.

    python benchmarks/window.py [--windows 2,10,20] [--frames 30]

Starts Xvfb (1920x1080) with the openbox window manager, shows a real call screenshot in a window titled "Zoom
Meeting" (feh) and N other windows (feh, the same picture) around it, then times ``WindowSource.hidden()`` (finding
the window's state and place, and whether others cover it) and ``grab()`` over ``--frames`` calls, for three
arrangements: the other windows beside the call, over three quarters of it, and minimised over it.
Needs the Debian packages xvfb, openbox and feh.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from common import ROOT, footer_line, header_line, table

CALL = ROOT.parent / "shared" / "datasets" / "galleries" / "gregoryfdel_zoom_call.png"


def start_display() -> tuple[list[subprocess.Popen], str]:
    read_end, write_end = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1920x1080x24", "-nolisten",
                               "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(write_end,))
    os.close(write_end)
    with os.fdopen(read_end) as written:
        display = f":{int(written.readline())}"
    manager = subprocess.Popen(["openbox"], env={**os.environ, "DISPLAY": display}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    return [manager, server], display


def show(display: str, title: str, geometry: str) -> subprocess.Popen:
    return subprocess.Popen(["feh", "--title", title, "--geometry", geometry, "--scale-down", str(CALL)],
                            env={**os.environ, "DISPLAY": display}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def measure(frames: int) -> tuple[float, float, str]:
    """Median milliseconds of hidden() and of grab(), and the last state, in this process (DISPLAY set)."""
    from fer_agent.capture.windows import WindowSource

    source = WindowSource("zoom meeting")
    states, grabs = [], []
    state = ""
    for _ in range(frames):
        started = time.perf_counter()
        state = source.hidden()
        states.append((time.perf_counter() - started) * 1000)
        if not state:
            started = time.perf_counter()
            source.grab()
            grabs.append((time.perf_counter() - started) * 1000)
    source.close()
    return statistics.median(states), statistics.median(grabs) if grabs else float("nan"), state or "seen"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--windows", default="2,10,20", help="numbers of other windows")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--arrangement", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arrangement:
        print("\t".join(str(value) for value in measure(args.frames)))
        return
    first, fingerprint = header_line("WindowSource per frame under Xvfb + openbox")
    print(first + "\n")
    rows = []
    for count in (int(value) for value in args.windows.split(",")):
        for arrangement in ("beside", "three quarters covered", "minimised over it"):
            processes, display = start_display()
            viewers = [show(display, "Zoom Meeting", "960x540+480+270")]
            # The call's window first, so that the others open above it.
            time.sleep(1.0)
            for number in range(count):
                x, y = (number % 5) * 380, 0 if number < 5 else 820 + (number // 5) * 10
                if arrangement != "beside":
                    x, y = 480 + number * 10, 270 + number * 10
                size = "720x540" if arrangement == "three quarters covered" else "360x240"
                viewers.append(show(display, f"Other {number}", f"{size}+{x}+{y}"))
            time.sleep(2.0 + count * 0.1)
            if arrangement == "minimised over it":
                subprocess.run([sys.executable, "-c", "import pywinctl\n"
                                "for w in pywinctl.getAllWindows():\n"
                                "    w.minimize() if w.title.startswith('Other') else None"],
                               env={**os.environ, "DISPLAY": display}, check=True)
                time.sleep(1.0)
            result = subprocess.run([sys.executable, __file__, "--arrangement", "x", "--frames", str(args.frames)],
                                    env={**os.environ, "DISPLAY": display}, capture_output=True, text=True, check=True)
            state_ms, grab_ms, state = result.stdout.strip().split("\t")
            rows.append([count, arrangement, f"{float(state_ms):.1f}", f"{float(grab_ms):.1f}", state])
            for process in viewers + processes:
                process.terminate()
                process.wait(timeout=10)
    print(table(["other windows", "arrangement", "hidden() ms (median)", "grab() ms (median)", "state"], rows))
    print(footer_line(fingerprint))


if __name__ == "__main__":
    main()
