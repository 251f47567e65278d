"""Report benchmark: time, file size and peak memory of `fer-agent report` and `fer-agent export` on a long class.

    python benchmarks/report.py                      # 90 minutes, 50 participants, 1 frame per second
    python benchmarks/report.py --db /tmp/class.db   # keep (or reuse) the recorded session database

The session is a simulated class (``tests.synthetic_session``) written through the store's own API: every participant
present for the whole lecture, 5 of them with the camera off, two episodes (negative expressions, heads turned away).
Each command runs as its own process, as a user runs it, so the times include Python's start and the imports; the
peak RSS is the process's own (``ru_maxrss`` of the child).
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

# The simulated class comes from the tests' generators (tests/synthetic_session.py), imported from the checkout's root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fer_agent.store.writer import Store  # noqa: E402
from tests.synthetic_session import Episode, record_class  # noqa: E402


def run(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one fer-agent process."""
    started = time.perf_counter()
    pid = os.posix_spawn(sys.executable, [sys.executable, "-m", "fer_agent", *args], os.environ,
                         file_actions=[(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)])
    _pid, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"fer-agent {' '.join(args)} failed")
    return seconds, usage.ru_maxrss / 1024


def in_process(database: Path) -> dict[str, float]:
    """Seconds for the report's stages: reading the session, then everything else (aggregates, charts, page)."""
    from contextlib import closing

    from fer_agent.reports.html import render_report
    from fer_agent.store.reader import load_session, open_database

    render_report(load_session(open_database(database), None))
    started = time.perf_counter()
    with closing(open_database(database)) as conn:
        data = load_session(conn, None)
    loaded = time.perf_counter()
    render_report(data)
    return {"read the session (SQLite -> numpy)": loaded - started,
            "aggregate, draw the charts, render the page": time.perf_counter() - loaded}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=90)
    parser.add_argument("--participants", type=int, default=50)
    parser.add_argument("--db", type=Path, help="session database to reuse or create (default: a temporary one)")
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        database = options.db or Path(folder) / "class.db"
        if not database.exists():
            started = time.perf_counter()
            with Store(database) as store:
                record_class(store, options.minutes, options.participants, camera_off=5, episodes=(
                    Episode("negative", options.minutes * 60 * 0.3, options.minutes * 60 * 0.3 + 180),
                    Episode("away", options.minutes * 60 * 0.6, options.minutes * 60 * 0.6 + 120)))
            print(f"recorded the class in {time.perf_counter() - started:.0f} s")
        with sqlite3.connect(database) as conn:
            observations, frames = conn.execute(
                "SELECT COUNT(*), COUNT(DISTINCT frame_id) FROM observations WHERE session_id = "
                "(SELECT MAX(id) FROM sessions)").fetchone()
        database_mb = database.stat().st_size / 1e6
        stages = in_process(database)
        report = Path(folder) / "report.html"
        commands = {
            "report": ["report", "--db", str(database), "-o", str(report)],
            "export --format json": ["export", "--db", str(database), "-o", str(Path(folder) / "class.json")],
            "export --format csv": ["export", "--db", str(database), "--format", "csv", "-o",
                                    str(Path(folder) / "class")],
        }
        results = {name: [run(args) for _ in range(options.repeats)] for name, args in commands.items()}
        size = report.stat().st_size

    print(f"\n{options.minutes:g}-minute class, {options.participants} participants, {frames:,} frames, "
          f"{observations:,} observations; database {database_mb:.0f} MB")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"median of {options.repeats} runs, each a fresh process (start-up and imports included)\n")
    print("| command | wall time (s) | peak RSS (MB) | output |")
    print("| --- | --- | --- | --- |")
    for name, runs in results.items():
        output = f"{size / 1e6:.2f} MB" if name.startswith("report") else ""
        print(f"| `fer-agent {name}` | {statistics.median(s for s, _ in runs):.2f} "
              f"| {max(m for _, m in runs):.0f} | {output} |")
    print("\nInside `fer-agent report` (in this process, after the imports):\n")
    print("| stage | seconds |")
    print("| --- | --- |")
    for stage, seconds in stages.items():
        print(f"| {stage} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
