"""What the benchmark scripts share: the machine line, the code they measured, Markdown tables."""

from __future__ import annotations

import hashlib
import os
import platform
import sys
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parent.parent
AGENT = ROOT / "agent"
# The test-data generators (tests/synthetic*.py) are imported as ``tests.synthetic``: from the checkout's root.
sys.path.insert(0, str(ROOT))


def machine() -> str:
    """CPU model and cores, Python, onnxruntime and OpenCV versions."""
    import onnxruntime

    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                      if line.startswith("model name")), model)
    return (f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, onnxruntime "
            f"{onnxruntime.__version__}, OpenCV {cv2.__version__}")


def code_fingerprint() -> str:
    """sha256 (12 digits) of the agent package's sources: which state of the code was measured."""
    digest = hashlib.sha256()
    for path in sorted(AGENT.rglob("*.py")):
        digest.update(str(path.relative_to(AGENT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def header_line(what: str) -> tuple[str, str]:
    """The first line a benchmark prints, and the fingerprint it started with."""
    fingerprint = code_fingerprint()
    return (f"machine: {machine()}; {what}; agent/ sources sha256 {fingerprint}; load average (1 min) at the start "
            f"{load()}"), fingerprint


def footer_line(fingerprint: str) -> str:
    now = code_fingerprint()
    changed = "unchanged" if now == fingerprint else f"**changed during the run** (now {now}): re-run"
    return f"load average (1 min) at the end {load()}; agent/ sources {changed}"
