"""Time and peak memory of `fer-agent analyze --json` on pictures far larger than a screen, against an ordinary one.

Each picture is made from a real call screenshot of ../shared/datasets/galleries pasted, enlarged 4x, onto a large
canvas; each run is a fresh process, its peak resident memory read from the operating system (ru_maxrss of the child).

    python benchmarks/large_pictures.py [--galleries ../shared/datasets/galleries] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import footer_line, header_line, table  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = "slavabzb_2.png"


def pictures(galleries: Path, folder: Path) -> list[tuple[str, Path]]:
    shot = Image.open(galleries / SCREENSHOT).convert("RGB")
    made = [("the screenshot itself", galleries / SCREENSHOT)]
    for width, height, suffix in ((7680, 4320, "png"), (12000, 12000, "jpg"), (20000, 20000, "jpg"),
                                  (20000, 20000, "png")):
        canvas = Image.new("RGB", (width, height), (40, 44, 52))
        canvas.paste(shot.resize((shot.width * 4, shot.height * 4), Image.BICUBIC), (width // 3, height // 3))
        path = folder / f"{width}x{height}.{suffix}"
        canvas.save(path, **({"quality": 85} if suffix == "jpg" else {}))
        made.append((f"{width}x{height} {suffix.upper()}", path))
    return made


def measure(path: Path) -> tuple[float, float, str]:
    """Seconds, peak MB, and what analyze said (faces found, or its error)."""
    probe = ("import resource, subprocess, sys; r = subprocess.run([sys.executable, '-m', 'agent', 'analyze', "
             "sys.argv[1], '--json'], capture_output=True, text=True); print(r.returncode); print(r.stdout); "
             "print(r.stderr.strip().splitlines()[-1] if r.stderr.strip() else '', file=sys.stderr); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)")
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - started
    code, *output = result.stdout.strip().splitlines()
    *said, peak_kb = result.stderr.strip().splitlines()
    if code == "0":
        found = len(json.loads(output[0])["faces"])
        outcome = f"{found} face{'s' if found != 1 else ''} found"
    else:
        outcome = f"refused: {said[-1].split('(', 1)[-1].rstrip(')') if said else code}"
    return seconds, int(peak_kb) / 1024, outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--galleries", type=Path, default=ROOT.parent / "shared" / "datasets" / "galleries")
    parser.add_argument("--out", type=Path, help="Keep the pictures here (default: a temporary folder).")
    options = parser.parse_args()
    line, fingerprint = header_line("fer-agent analyze --json, one fresh process per picture")
    print(line)
    with tempfile.TemporaryDirectory() as scratch:
        folder = options.out or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for name, path in pictures(options.galleries, folder):
            seconds, peak, outcome = measure(path)
            rows.append([name, f"{path.stat().st_size / 1e6:.1f} MB", f"{seconds:.1f}", f"{peak:.0f}", outcome])
    print(table(["picture", "file", "seconds", "peak MB", "outcome"], rows))
    print(footer_line(fingerprint))


if __name__ == "__main__":
    main()
